"""Rubrics: a YAML editor with live validation (every problem with its line), a preview of the judge prompt on
a sample item, saving as a new version, and the version history with diffs."""
from __future__ import annotations

import difflib

import streamlit as st
from sqlmodel import Session, select

from judging import prompt as prompt_mod
from judging import rubric as rubric_mod
from storage.errors import InputError
from storage.models import Item, Output, RubricVersion
from ui import common
from ui.render import inline

viewer = common.require("operate", "The Rubrics page")  # checked here, where the page reads data
st.title("Rubrics")
url = common.database_url()
eng = common.engine()

with Session(eng) as s:
    stored = s.exec(select(RubricVersion).order_by(RubricVersion.name, RubricVersion.id.desc())).all()  # type: ignore[union-attr]
sources = {f"stored: {r.name} · {r.content_hash[:12]}": r.yaml_text for r in stored}
# The project's rubrics/ (the app runs in the project folder), then the shipped rubrics it does not shadow.
sources.update({(f"file: rubrics/{p.name}" if origin == "project" else f"shipped: {p.name}"):
                p.read_text(encoding="utf-8") for origin, p in rubric_mod.rubric_files()})
sources["(empty)"] = ""

edit, history = st.tabs(["Edit", "History"])
with edit:
    start = st.selectbox("Start from", list(sources), key="rub-start")
    if st.session_state.get("rub-loaded") != start:
        st.session_state["rub-text"] = sources[start]
        st.session_state["rub-loaded"] = start
    text = st.text_area("Rubric YAML", key="rub-text", height=460,
                        help="Validated as you edit (Ctrl+Enter or click outside to apply).")
    rubric, problems = rubric_mod.validate_rubric_text(text, "<editor>")
    if problems:
        st.error(f"{len(problems)} problem(s):")
        for p in problems:
            where = f"line {p.line}" + (f", column {p.column}" if p.column else "") if p.line else "rubric"
            st.markdown(f"- **{inline(where)}**" + (f" · {inline(p.key)}" if p.key else "") + f": {inline(p.message)}"
                        + (f"  \n  hint: {inline(p.hint)}" if p.hint else ""))
    elif rubric is not None:
        st.success(f"Valid: {inline(rubric.name)}, {len(rubric.criteria)} criteria, hash {rubric.content_hash[:12]}")
        if st.button("Save as a new version", type="primary"):
            try:
                with common.session() as s:
                    existed = s.exec(select(RubricVersion).where(RubricVersion.content_hash == rubric.content_hash)).first()
                    row = rubric_mod.store_rubric(s, rubric)
                    msg = (f"Already stored as {inline(row.name)} · {row.content_hash[:12]}" if existed else
                           f"Saved {inline(row.name)} · {row.content_hash[:12]}")
                common.clear_read_caches()
                st.success(msg)
            except InputError as exc:
                common.show_input_error(exc)

        st.subheader("Judge prompt preview")
        versions = common.version_choices(url)
        if not versions:
            st.caption("Freeze an eval set to preview the prompt on one of its items.")
        else:
            c1, c2, c3 = st.columns(3)
            with c1:
                vid = common.pick("Eval set version", versions, key="rub-version")
            with Session(eng) as s:
                items = s.exec(select(Item).where(Item.version_id == vid).order_by(Item.position).limit(200)).all()
            pos = c2.number_input("Item", min_value=1, max_value=max(1, len(items)), value=1)
            crit = c3.selectbox("Criterion", [c.id for c in rubric.criteria])
            if items:
                item = items[int(pos) - 1]
                with Session(eng) as s:
                    out = s.exec(select(Output).where(Output.item_id == item.id, Output.text.is_not(None))).first()  # type: ignore[union-attr]
                chosen = rubric.criterion(crit)
                if chosen.is_check:  # computed locally: no prompt; show what the check says of this output
                    from judging.checks import run_check

                    st.caption(f"`{crit}` is a check: computed locally, no judge call "
                               f"({', '.join(chosen.check.tests())}).")
                    if out is not None:
                        r = run_check(chosen.check, text=out.text or "", reference=item.reference,
                                      latency_ms=out.latency_ms, cost_usd=out.cost_usd)
                        st.code(f"{r.verdict or 'unscored'}: {r.rationale or r.unscored_reason}", language=None,
                                wrap_lines=True)
                else:
                    try:
                        rendered = prompt_mod.render_prompt(
                            rubric, crit, messages=item.messages, output=out.text if out else "(no output yet)",
                            reference=item.reference)
                        st.code(rendered.text, language=None, wrap_lines=True)
                        st.caption(f"template {rendered.template_hash[:12]}")
                    except InputError as exc:
                        common.show_input_error(exc)

with history:
    names = sorted({r.name for r in stored})
    if not names:
        st.info("No rubric stored yet.")
    else:
        name = st.selectbox("Rubric", names, key="rub-hist")
        rows = [r for r in stored if r.name == name]
        for i, row in enumerate(rows):
            with st.expander(f"{row.content_hash[:12]} · {row.created_at:%Y-%m-%d %H:%M}"
                             + (" · latest" if i == 0 else ""), expanded=i == 0):
                older = rows[i + 1] if i + 1 < len(rows) else None
                if older is None:
                    st.code(row.yaml_text, language="yaml")
                else:
                    diff = "\n".join(difflib.unified_diff(
                        older.yaml_text.splitlines(), row.yaml_text.splitlines(),
                        fromfile=older.content_hash[:12], tofile=row.content_hash[:12], lineterm=""))
                    st.code(diff or "(same text)", language="diff")
