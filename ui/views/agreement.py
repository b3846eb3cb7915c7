"""Agreement: draw the golden subset, watch labeling progress, judge–human agreement with intervals, bias
diagnostics, Alt-Test, and the disagreement browser (the only place where the judge's rationale is shown,
after the humans have labeled)."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st
from sqlalchemy import func
from sqlmodel import Session, select

from analysis import adjudication, golden, labeling, reports
from analysis.manifest import MARKDOWN_HEADING
from analysis import pairwise as analysis_pairwise
from storage.errors import InputError
from storage.models import Annotator, GoldenUnit, Item, Judgment, Label, Output
from ui import common, queries, report_view
from ui.gate import pair_title
from ui.render import default_why, inline, safe_markdown, show_chat, show_judge_run, show_text

viewer = common.require("review", "The Agreement page")  # checked here, where the page reads data
st.title("Agreement")
url = common.database_url()
eng = common.engine()


def golden_section(version_id: int, rubric_id: int, judge_run_id: int | None, mode: str = "pointwise") -> None:
    """Draw (more of) the golden subset and watch labeling progress. Without a judge run only the draw by
    candidate alone is possible; with one, the strata can follow the judge's verdicts; pairwise units come from
    a pairwise judge run, drawn within each pair of candidates."""
    with Session(eng) as s:
        n_units = s.exec(select(func.count()).select_from(GoldenUnit).where(
            GoldenUnit.version_id == version_id, GoldenUnit.rubric_version_id == rubric_id,
            GoldenUnit.mode == mode)).one()
        task_list = [t for t in labeling.all_tasks(s)
                     if (t.version_id, t.rubric_version_id, t.mode) == (version_id, rubric_id, mode)]
        progress = [p for t in task_list for p in labeling.progress_all(s, t, viewer=viewer)]
    if mode == "pairwise":
        strategies = [golden.PAIR_STRATEGY]
    else:
        strategies = ["stratified", "uncertainty", "candidate"] if judge_run_id is not None else ["candidate"]
    title = "Golden subset" if mode == "pointwise" else "Pairwise golden subset"
    with st.expander(f"{title}: {n_units} units drawn", expanded=n_units == 0):
        with st.form("draw-golden"):
            c1, c2, c3 = st.columns(3)
            n = c1.number_input("Units to draw", min_value=1, value=60, step=10)
            k = c2.number_input("Annotators per unit (k)", min_value=1, value=2)
            seed = c3.number_input("Seed", min_value=0, value=0)
            names = st.text_input("Annotators (comma separated)",
                                  value=", ".join(common.annotator_names(url)) or (common.current_annotator() or ""))
            strategy = st.radio("Strategy", strategies, horizontal=True,
                                help="stratified: candidate × judge verdict; uncertainty: more draws where the judge "
                                     "was unsure; candidate: by candidate alone, no judge needed; candidate pair: "
                                     "pairwise units at random within each pair of candidates. Inclusion "
                                     "probabilities stay known either way.")
            if st.form_submit_button("Draw and assign", type="primary"):
                try:
                    with common.session() as s:
                        sel = golden.select_golden(
                            s, version_id, rubric_id, judge_run_id if strategy != "candidate" else None, int(n),
                            seed=int(seed), strategy=strategy, mode=mode,
                            annotators=[x.strip() for x in names.split(",") if x.strip()], k=int(k))
                    st.session_state["agr-drawn"] = (f"Drew {sel.created} units ({sel.total} in the subset, "
                                                     f"{sel.strata} strata); {sel.assignments} assignments.")
                    common.clear_read_caches()
                    st.rerun()  # the expander's title and the progress table count the new units
                except InputError as exc:
                    common.show_input_error(exc)
        if st.session_state.get("agr-drawn"):
            st.success(st.session_state.pop("agr-drawn"))
        if progress:
            st.dataframe(pd.DataFrame([{
                "annotator": p.annotator, "assigned units": p.assigned_units, "done units": p.done_units,
                "labels": p.labels, "skipped": p.skipped, "flagged": p.flagged} for p in progress]),
                hide_index=True, width="stretch")


def pick_pair(pairs: list[tuple[int, int]]) -> tuple[int, int]:
    with Session(eng) as s:
        titles = {p: pair_title(s, *p) for p in pairs}
    return st.selectbox("Eval set × rubric", pairs, format_func=lambda p: titles[p], key="agr-pair")


judged = queries.judged_pairs(url, viewer)
# pairs with a judge run first; then those without, where people can still draw by candidate alone and label
pairs = list(dict.fromkeys([(v, r) for v, r, _j, _m in judged] + queries.labelable_pairs(url, viewer)))
if not judged:
    st.info("Agreement needs a judge run: start one on the **Runs** page. People need not wait for it: draw a "
            "golden subset by candidate alone here and label it on the **Label** page.")
if not pairs:
    st.caption("Drawing needs candidate outputs on a frozen eval set and a stored rubric.")
    st.stop()
version_id, rubric_id = pick_pair(pairs)
modes = {j: m for v, r, j, m in judged if (v, r) == (version_id, rubric_id)}
if not modes:
    if judged:
        st.info("No judge run on this eval set and rubric yet: draw a golden subset by candidate alone, or start a "
                "judge run on the **Runs** page.")
    golden_section(version_id, rubric_id, None)
    st.stop()
run_rows = {r["id"]: r for r in queries.judge_run_list(url, viewer, version_id, rubric_id)}
judge_run_id = st.selectbox("Judge run", list(modes), key="agr-judge",  # newest first: the latest is the default
                            format_func=lambda j: f"judge run {j} ({modes[j]}, {run_rows[j]['judge_model']}, "
                                                  f"{run_rows[j]['started_at']:%Y-%m-%d %H:%M})" if j in run_rows
                            else f"judge run {j} ({modes[j]})")
if judge_run_id in run_rows:
    show_judge_run(st, run_rows[judge_run_id], default_why(list(run_rows.values()), judge_run_id, next(iter(modes))))
golden_section(version_id, rubric_id, judge_run_id, modes[judge_run_id])
if modes[judge_run_id] == "pairwise":
    st.subheader("Position bias")
    with Session(eng) as s:
        bias = analysis_pairwise.position_bias_section(s, version_id, rubric_id, judge_run_id)
    st.dataframe(pd.DataFrame([{
        "criterion": b["criterion"],
        **{name: b[key].fmt() if b.get(key) else "n/a" for name, key in (
            ("first-position win share [95 % CI]", "first_position_share"),
            ("swap inconsistency [95 % CI]", "swap_inconsistency"))}} for b in bias]),
        hide_index=True, width="stretch")
    st.subheader("Judge–human agreement (pairwise)")
    try:
        with Session(eng) as s:
            pw_md = reports.agreement_report(s, version_id, rubric_id, judge_run_id, viewer=viewer).to_markdown()
        # the same text as `ownbench agreement --markdown` (names in it are untrusted: the renderer shows it)
        st.markdown(safe_markdown(pw_md.split("\n", 2)[-1].split(f"\n{MARKDOWN_HEADING}\n", 1)[0]))
        st.download_button("Markdown", pw_md, file_name="agreement-pairwise.md", mime="text/markdown")
    except InputError as exc:
        common.show_input_error(exc)
    st.info("Bradley–Terry strengths from this pairwise run, corrected with the pairwise golden labels, are on the "
            "**Rankings** page.")
    st.stop()

# --- the report -------------------------------------------------------------------------------------------------
try:
    with Session(eng) as s:
        report = reports.agreement_report(s, version_id, rubric_id, judge_run_id, viewer=viewer)
    data = report.to_dict()
except InputError as exc:
    common.show_input_error(exc)
    data = None
if data is not None:
    st.subheader("Judge–human agreement")
    report_view.show_agreement(data)
    agreement_md = report.to_markdown()
    with st.expander("As Markdown (the same text as `ownbench agreement --markdown`)"):
        st.code(agreement_md, language="markdown")
    d1, d2 = st.columns(2)
    d1.download_button("Markdown", agreement_md, file_name="agreement.md", mime="text/markdown")
    d2.download_button("JSON", json.dumps(data, indent=2, ensure_ascii=False, default=str), file_name="agreement.json",
                       mime="application/json")
    st.caption("Both files carry a manifest of what they were computed from; `ownbench reports verify FILE` checks "
               "it against the database.")

# --- disagreements ----------------------------------------------------------------------------------------------
st.subheader("Where the judge and the humans differ")
with Session(eng) as s:
    labels = s.exec(
        select(Label, Annotator.name).join(Annotator, Annotator.id == Label.annotator_id)
        .where(Label.rubric_version_id == rubric_id, Label.skipped.is_(False), Label.output_b_id.is_(None))  # type: ignore[attr-defined,union-attr]
        .order_by(Label.id)  # type: ignore[arg-type]
    ).all()
    latest: dict[tuple[int, str, str], str] = {}
    for lab, who in labels:
        latest[(lab.output_id, lab.criterion_id, who)] = lab.verdict or ""
    outputs = {o for o, _c, _w in latest}
    judgments = {}
    if outputs:
        for j in s.exec(select(Judgment).where(Judgment.judge_run_id == judge_run_id,
                                               Judgment.output_id.in_(outputs),  # type: ignore[attr-defined]
                                               Judgment.output_b_id.is_(None)).order_by(Judgment.id)):  # type: ignore[union-attr,arg-type]
            judgments[(j.output_id, j.criterion_id)] = j
rows = []
for (oid, crit), j in judgments.items():
    humans = {w: v for (o, c, w), v in latest.items() if o == oid and c == crit}
    verdict = j.verdict if j.status == "scored" else "unscored"
    if humans and any(v != verdict for v in humans.values()):
        rows.append({"output": oid, "criterion": crit, "judge": verdict,
                     "humans": ", ".join(f"{w}: {v}" for w, v in sorted(humans.items())), "judgment": j.id})
with Session(eng) as s:  # units assigned to this reviewer stay blind until they have labeled them
    blind = adjudication.still_blind(s, viewer, rubric_id)
rows = [r for r in rows if (r["output"], r["criterion"]) not in blind]
if not rows:
    st.caption("No disagreements among the labeled units yet.")
else:
    st.dataframe(pd.DataFrame(rows).drop(columns=["judgment"]), hide_index=True, width="stretch")
    idx = st.selectbox("Look at", range(len(rows)), key="agr-dis",
                       format_func=lambda i: f"output {rows[i]['output']} · {rows[i]['criterion']} · judge "
                                             f"{rows[i]['judge']} vs {rows[i]['humans']}")
    with Session(eng) as s:
        j = s.get(Judgment, rows[idx]["judgment"])
        out = s.get(Output, rows[idx]["output"])
        item = s.get(Item, out.item_id) if out else None
        comments = s.exec(select(Label.comment, Annotator.name).join(Annotator, Annotator.id == Label.annotator_id)
                          .where(Label.output_id == rows[idx]["output"], Label.criterion_id == rows[idx]["criterion"],
                                 Label.comment.is_not(None))).all()  # type: ignore[union-attr]
    left, right = st.columns(2)
    with left:
        if item is not None:
            show_chat(st, item.messages)
        st.markdown("**Output**")
        with st.container(border=True):
            show_text(st, (out.text if out else "") or "")
    with right:
        st.markdown(f"**Judge verdict:** {inline(rows[idx]['judge'])}")
        st.markdown("**Judge's rationale**")
        show_text(st, (j.rationale or j.unscored_reason or "") if j else "", plain=True)
        st.markdown(f"**Humans:** {inline(rows[idx]['humans'])}")
        for comment, who in comments:
            st.caption(f"{inline(who)}: {inline(comment, limit=2000)}")
