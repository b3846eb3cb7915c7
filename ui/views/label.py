"""Label: blind labeling of the golden subset, one unit × criterion at a time, with one-key shortcuts.

The page shows the prompt, the output(s) in this annotator's order, and the criterion with its levels; it
never reads a candidate, run, judgment or another annotator's label (analysis.labeling.unit_view holds
exactly what is shown). Saving and moving on reruns only the labeling fragment.
"""
from __future__ import annotations

from typing import Any

import streamlit as st
import streamlit.components.v1 as components

from analysis import labeling
from storage.errors import InputError
from ui import common
from ui.render import inline, safe_markdown, show_chat, show_text

NAV_KEYS = {"next": "N", "back": "B", "skip": "S", "flag": "F"}
# The criterion panel stays in view while a long response scrolls; the Shift twins of the buttons are hidden.
PAGE_CSS = """<style>
[data-testid="stLayoutWrapper"]:has(> .st-key-criterion-panel) { position: sticky; top: 3.75rem; z-index: 1;
  align-self: flex-start; max-height: calc(100vh - 4.5rem); overflow-y: auto; }
[data-testid="stLayoutWrapper"]:has(> [class*="st-key-twin-"]) { position: absolute; width: 1px; height: 1px;
  overflow: hidden; clip-path: inset(50%); }
</style>"""
LONG_OUTPUT = 12_000  # characters (a few screens): longer outputs show their start and a "Show all" switch


def shortcut_for(criterion: dict[str, Any], mode: str, choice: str, index: int) -> str | None:
    """One key per label: digits for levels and categories, 1/0 for pass/fail, 1/2/T for pairs."""
    if mode == "pairwise":
        return {"first": "1", "second": "2", "tie": "T"}[choice]
    kind = criterion.get("type")
    if kind == "binary":
        return {"pass": "1", "fail": "0"}[choice]
    if kind == "ordinal":
        return choice if len(choice) == 1 and choice.isdigit() else None
    return str(index + 1) if index < 9 else None


def _state_key(annotator_id: int, task: labeling.LabelingTask) -> str:
    return f"label-step:{annotator_id}:{task.version_id}:{task.rubric_version_id}:{task.mode}"


def _act(annotator_id: int, task: labeling.LabelingTask, step: tuple[int, str], action: str,
         choice: str | None = None) -> None:
    """Button callback: save (label or skip) and move on, or just move; runs before the fragment reruns."""
    key = _state_key(annotator_id, task)
    step_id = f"{step[0]}:{step[1]}"
    history: list = st.session_state.setdefault(key + ":history", [])
    st.session_state.pop("label-error", None)
    if action == "flag":
        st.session_state[f"flagged:{step_id}"] = not st.session_state.get(f"flagged:{step_id}", False)
        return
    if action == "back":
        if history:
            st.session_state[key] = history.pop()
        return
    try:
        with common.session() as s:
            if action in ("label", "skip"):
                labeling.save_label(
                    s, annotator_id, step[0], step[1],
                    choice=choice,
                    skipped=action == "skip",
                    flagged=bool(st.session_state.get(f"flagged:{step_id}", False)),
                    comment=st.session_state.get(f"comment:{step_id}"),
                )
            nxt = labeling.next_step(s, annotator_id, task, after=step)
    except InputError as exc:
        st.session_state["label-error"] = exc.message
        return
    history.append(step)
    st.session_state[key] = nxt


@st.fragment
def labeling_panel(annotator_id: int, task: labeling.LabelingTask, plain: bool) -> None:
    key = _state_key(annotator_id, task)
    with common.session() as s:
        if key not in st.session_state:
            st.session_state[key] = labeling.next_step(s, annotator_id, task)
        step = st.session_state[key]
        prog = labeling.progress(s, annotator_id, task)
        view = labeling.unit_view(s, annotator_id, *step) if step is not None else None

    done_share = prog.steps_done / prog.steps_total if prog.steps_total else 0.0
    st.progress(done_share, text=(
        f"{prog.done_units} of {prog.assigned_units} units done · {prog.labels} labels · "
        f"{prog.skipped} skipped · {prog.flagged} flagged"
    ))
    if st.session_state.get("label-error"):
        st.error(st.session_state["label-error"])
    if view is None:
        st.success("Your queue is done: every assigned unit has a label from you. Thank you!")
        if st.session_state.get(key + ":history"):
            st.button("Back to the last unit", key="back-last", shortcut=NAV_KEYS["back"],
                      on_click=_act, args=(annotator_id, task, ("", ""), "back"))
            _shift_twin(NAV_KEYS["back"], "back-last", (annotator_id, task, ("", ""), "back"))
        return

    step_id = f"{view.golden_unit_id}:{view.criterion['id']}"
    crit_index = next(i for i, c in enumerate(view.criteria) if c["id"] == view.criterion["id"])
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.caption(f"Unit {view.position + 1} of {view.queue_size}")
        st.markdown("##### Prompt")
        show_chat(st, view.messages, plain=plain)
        if view.reference is not None:
            with st.expander("Reference answer", expanded=False):
                show_text(st, view.reference, plain=plain)
        if len(view.outputs) == 1:
            st.markdown("##### Response")
            with st.container(border=True):
                _long_text(view.outputs[0], plain, f"{step_id}:0")
        else:
            cols = st.columns(2)
            for i, (col, text) in enumerate(zip(cols, view.outputs)):
                with col:
                    st.markdown(f"##### Response {i + 1}")
                    with st.container(border=True):
                        _long_text(text, plain, f"{step_id}:{i}")
    with right, st.container(key="criterion-panel"):
        _criterion_panel(annotator_id, task, view, step_id, crit_index)


# One frame for the whole page (not one per step, which would cost every keypress a new document): it watches
# the step heading and scrolls to the top when the step changes. It runs from this page and fetches nothing.
TO_TOP = """<script>
const doc = window.parent.document;
let last = null, queued = false;
function check() {
  queued = false;
  const texts = sel => [...doc.querySelectorAll(sel)].map(e => e.textContent);
  const crit = texts("[data-stale='false'] h5").filter(t => t.startsWith("Criterion")).join("|");
  const unit = texts("[data-stale='false'] [data-testid='stCaptionContainer']").filter(t => t.startsWith("Unit"));
  const step = unit.join("|") + "|" + crit;
  if (crit && step !== last) {
    if (last !== null) {
      const main = doc.querySelector('[data-testid="stMain"]');
      if (main) { main.scrollTo(0, 0); }
      window.parent.scrollTo(0, 0);
    }
    last = step;
  }
}
new MutationObserver(() => { if (!queued) { queued = true; window.parent.requestAnimationFrame(check); } })
  .observe(doc.body, {childList: true, subtree: true});
</script>"""


def _long_text(text: str, plain: bool, key: str) -> None:
    """An output past a few screens shows its start, with a switch to show all of it."""
    if len(text) <= LONG_OUTPUT:
        show_text(st, text, plain=plain)
        return
    cut = text.rfind("\n", 0, LONG_OUTPUT)
    head = text[: cut if cut > LONG_OUTPUT // 2 else LONG_OUTPUT]
    whole = st.toggle(f"Show all ({len(text):,} characters)", key=f"show-all:{key}")
    show_text(st, text if whole else head, plain=plain)
    if not whole:
        st.caption(f"… {len(text) - len(head):,} more characters: switch on “Show all” above to read them.")


def _criterion_panel(annotator_id: int, task: labeling.LabelingTask, view: labeling.UnitView, step_id: str,
                     crit_index: int) -> None:
    crit = view.criterion
    st.markdown(f"##### Criterion {crit_index + 1} of {len(view.criteria)}: {inline(crit['id'])}")
    st.markdown(safe_markdown(str(crit.get("question", ""))))
    if view.mode == "pairwise":
        st.caption("Which response is better on this criterion?")
    levels = crit.get("levels") or {}
    if levels and view.mode != "pairwise":
        st.markdown("\n".join(f"- **{inline(k)}**: {inline(v)}" for k, v in levels.items()))
    earlier = None
    if view.latest:
        earlier = None if view.latest["skipped"] else view.latest["verdict"]
        was = "skipped" if view.latest["skipped"] else f"labeled {inline(view.latest['verdict'])}"
        st.caption(f"You {was} this before (highlighted); a new label is added and the latest counts.")
    comment_key = f"comment:{step_id}"
    if comment_key not in st.session_state and view.latest and view.latest.get("comment"):
        st.session_state[comment_key] = view.latest["comment"]
    flagged = st.session_state.get(f"flagged:{step_id}", bool(view.latest and view.latest.get("flagged")))
    st.session_state[f"flagged:{step_id}"] = flagged
    step = (view.golden_unit_id, str(crit["id"]))
    missing_reference = bool(crit.get("uses_reference")) and not view.reference
    if missing_reference:
        st.warning("This criterion compares the response with the item's reference answer, and this item has "
                   "none: it cannot be judged here. Skip it (S).")
    else:
        choices = labeling.choices_for(crit, view.mode)
        shorts = [caption.split(" — ")[0] if crit.get("type") == "ordinal" else caption for _c, caption in choices]
        # long captions (pairwise, categories) one per row, so that no button is cut off
        per_row = 1 if max(len(x) for x in shorts) > 12 else min(len(choices), 5)
        cols = st.columns(per_row)
        for i, ((choice, caption), short) in enumerate(zip(choices, shorts)):
            key = shortcut_for(crit, view.mode, choice, i)
            with cols[i % per_row]:
                st.button(inline(short) + (f" ({key})" if key and per_row == 1 else ""),
                          key=f"choice:{step_id}:{choice}", help=inline(caption),
                          type="primary" if earlier in (None, choice) else "secondary",
                          shortcut=key, width="stretch",
                          on_click=_act, args=(annotator_id, task, step, "label", choice))
            _shift_twin(key, f"choice:{step_id}:{choice}", (annotator_id, task, step, "label", choice))
    st.text_input("Comment (optional)", key=comment_key,
                  placeholder="Why? (Enter to keep it, then Tab out to use the keys)")
    nav = st.columns(2)
    for i, (action, text) in enumerate(zip(("back", "next", "skip", "flag"),
                                           ("Back", "Next", "Skip", "Unflag" if flagged else "Flag"))):
        disabled = action == "back" and not st.session_state.get(_state_key(annotator_id, task) + ":history")
        with nav[i % 2]:
            st.button(text, key=f"{action}:{step_id}", shortcut=NAV_KEYS[action], width="stretch",
                      on_click=_act, args=(annotator_id, task, step, action), disabled=disabled)
        if not disabled:
            _shift_twin(NAV_KEYS[action], f"{action}:{step_id}", (annotator_id, task, step, action))
    if flagged:
        st.warning("Flagged: the flag is saved with your label or skip.", icon="🚩")
    st.caption("Keys (with or without Shift): the label's key saves and moves on · N next without saving · "
               "B back · S skip · F flag. Skip records that you could not judge this unit.")


def _shift_twin(key: str | None, name: str, args: tuple) -> None:
    """The same action on Shift+key (caps lock, or a habit from other tools): a hidden twin button."""
    if key is None:
        return
    with st.container(key=f"twin-{name}".replace(":", "-")):
        st.button("\u200b", key=f"shift:{name}", shortcut=f"Shift+{key}", on_click=_act, args=args)


def main() -> None:
    st.title("Label")
    name = common.current_annotator()
    if not name:
        st.info("Pick your name in the sidebar to start labeling.")
        return
    try:
        with common.session() as s:
            annotator = labeling.ensure_annotator(s, name)
            tasks = labeling.tasks_for(s, annotator.id)
            annotator_id = int(annotator.id)
    except InputError as exc:
        common.show_input_error(exc)
        return
    if not tasks:
        st.info(f"No golden units are assigned to {inline(name)} yet. Draw a golden subset with {inline(name)} among the "
                "annotators on the Agreement page (or `ownbench golden select`), then come back. Before any judge "
                "has run, draw by candidate alone.")
        return
    titles = {i: t.title for i, t in enumerate(tasks)}
    chosen = st.selectbox("Golden subset", list(titles), format_func=lambda i: titles[i], key="label-task") \
        if len(tasks) > 1 else 0
    plain = st.toggle("Show text verbatim (no markdown)", key="label-plain")
    st.html(PAGE_CSS)
    components.html(TO_TOP, height=0)
    labeling_panel(annotator_id, tasks[chosen], plain)


main()
