"""Rankings: withheld, with the reason, until the gate passes; then calibrated estimates with 95 % intervals,
pairwise significance, cost and latency, the quality–cost Pareto chart and the baseline-vs-candidate view."""
from __future__ import annotations

import json
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy import func
from sqlmodel import Session, select

from analysis import reports
from analysis.manifest import MARKDOWN_HEADING
from analysis.people import Viewer
from storage.errors import InputError
from storage.models import JudgeRun, Judgment, RubricVersion
from ui import common, queries
from ui.gate import pair_title
from ui.render import default_why, inline, safe_markdown, show_judge_run

viewer = common.require("review", "The Rankings page")  # checked here, where the page reads data
st.title("Rankings")
url = common.database_url()
eng = common.engine()

judged = queries.judged_pairs(url, viewer)
if not judged:
    st.info("Rankings need candidate runs, a judge run and a labeled golden subset. Start with the **Runs** page.")
    st.stop()
with Session(eng) as s:
    titles = {(v, r): pair_title(s, v, r) for v, r, _j, _m in judged}
pairs = list(dict.fromkeys((v, r) for v, r, _j, _m in judged))
version_id, rubric_id = st.selectbox("Eval set × rubric", pairs, format_func=lambda p: titles[p], key="rank-pair")
with Session(eng) as s:
    rubric_row = s.get(RubricVersion, rubric_id)
    criteria_spec = list((rubric_row.spec or {}).get("criteria") or []) if rubric_row else []


@st.cache_data(ttl=common.QUERY_TTL, show_spinner=False)
def judge_runs(url: str, version_id: int, rubric_id: int) -> list[dict[str, Any]]:
    """The pair's pointwise judge runs, newest first, with how many outputs each judged."""
    with Session(common._engine_for(url)) as s:
        runs = s.exec(select(JudgeRun).where(JudgeRun.version_id == version_id,
                                             JudgeRun.rubric_version_id == rubric_id, JudgeRun.mode == "pointwise")
                      .order_by(JudgeRun.id.desc())).all()  # type: ignore[union-attr]
        counts = dict(s.exec(select(Judgment.judge_run_id, func.count(func.distinct(Judgment.output_id)))
                             .where(Judgment.judge_run_id.in_([r.id for r in runs]))  # type: ignore[union-attr]
                             .group_by(Judgment.judge_run_id)).all())
        return [{"id": r.id, "model": r.judge_model, "status": r.status, "started": r.started_at,
                 "outputs": int(counts.get(r.id, 0))} for r in runs]


def default_run(runs: list[dict[str, Any]]) -> int:
    """The newest run among those that judged the most outputs (a newer run on a few items does not take over)."""
    most = max(r["outputs"] for r in runs)
    return next(i for i, r in enumerate(runs) if r["outputs"] == most)


@st.cache_data(ttl=common.QUERY_TTL, show_spinner="Computing the ranking…")
def ranking(url: str, version_id: int, rubric_id: int, judge_run_id: int | None,
            viewer: Viewer) -> tuple[dict[str, Any], str]:
    with Session(common._engine_for(url)) as s:
        report = reports.ranking_report(s, version_id, rubric_id, viewer=viewer, judge_run_id=judge_run_id)
        return report.to_dict(), report.to_markdown()


def _est(e: dict | None) -> str:
    if not e or e.get("value") is None:
        return "n/a"
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def _scale_of(c: dict[str, Any], df: pd.DataFrame) -> tuple[float, float]:
    """The criterion's own scale (0–1 for binary, min–max for ordinal), widened if an interval runs past it."""
    spec = next((cr for cr in criteria_spec if str(cr.get("id")) == str(c["criterion"])), {})
    lo, hi = (0.0, 1.0) if c.get("type") == "binary" else (float(spec.get("min", 1)), float(spec.get("max", 5)))
    return min(lo, float(df["low"].min(skipna=True) if df["low"].notna().any() else lo)), \
        max(hi, float(df["high"].max(skipna=True) if df["high"].notna().any() else hi))


def show_criterion(c: dict[str, Any]) -> pd.DataFrame | None:
    if c.get("note"):
        st.info(safe_markdown(str(c["note"])))
        return None
    if c.get("withheld"):
        reasons = "\n".join(f"- {inline(w)}" for w in c["withheld"])
        st.warning("**Ranking withheld.**\n\n" + reasons, icon="🔒")
        st.caption("A calibrated ranking is shown once each criterion has enough golden labels, spread over every "
                   "candidate: label more on the **Label** page. Judge–human agreement (see **Agreement**) does not "
                   "hold it back; it decides whether judge-only numbers may be shown beside it.")
        return None
    rows = c.get("rows") or []
    if not rows:
        st.info("No candidate has outputs judged on this criterion.")
        return None
    if c.get("alpha_judge_vs_human") is not None:
        st.caption(f"Judge–human Krippendorff's alpha: {c['alpha_judge_vs_human']:.3f}")
    df = pd.DataFrame([{
        "rank": r.get("rank_label"), "candidate": r["candidate"],
        "estimate": (r.get("calibrated") or {}).get("value"), "low": (r.get("calibrated") or {}).get("low"),
        "high": (r.get("calibrated") or {}).get("high"), "calibrated [95 % CI]": _est(r.get("calibrated")),
        "n golden": r.get("golden"), "human only [95 % CI]": _est(r.get("human_only")),
        "outputs": r.get("outputs"), "unscored": r.get("unscored"),
        "$ / 1k items": r.get("cost_per_1k_usd"), "latency p50 ms": r.get("latency_p50_ms"),
        "latency p95 ms": r.get("latency_p95_ms"),
        "Pareto": None if r.get("cost_per_1k_usd") is None else bool(r.get("pareto")),
    } for r in rows])
    st.dataframe(df.drop(columns=["estimate", "low", "high"]), hide_index=True, width="stretch")
    order = df.sort_values("estimate", ascending=False)["candidate"].tolist()
    base = alt.Chart(df).encode(y=alt.Y("candidate:N", sort=order, title=None))
    scale = alt.Scale(domain=list(_scale_of(c, df)), nice=False, clamp=False)
    forest = (base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", title="calibrated estimate, 95 % interval",
                                                           scale=scale), x2="high:Q")
              + base.mark_point(filled=True, size=90).encode(x="estimate:Q",
                                                            tooltip=["candidate", "calibrated [95 % CI]", "n golden"]))
    st.altair_chart(forest.properties(height=36 * len(df) + 40, title="Calibrated estimates"), width="stretch")
    costed = df[df["$ / 1k items"].notna()]
    if len(costed) < len(df) and len(costed):
        st.caption(f"No cost is known for {len(df) - len(costed)} candidate(s) (imported answers carry none): they are "
                   "left out of the quality–cost chart and not marked on the Pareto front.")
    if len(costed):
        pts = alt.Chart(costed).mark_circle(size=140).encode(
            x=alt.X("$ / 1k items:Q", title="cost, $ per 1,000 items"), y=alt.Y("estimate:Q", title="calibrated estimate"),
            color=alt.Color("Pareto:N", title="Pareto front"), tooltip=["candidate", "calibrated [95 % CI]", "$ / 1k items"])
        names = alt.Chart(costed).mark_text(dx=9, align="left").encode(x="$ / 1k items:Q", y="estimate:Q", text="candidate:N")
        st.altair_chart((pts + names).properties(title="Quality against cost"), width="stretch")
    else:
        st.caption("No cost is known for these runs (imported answers carry none): no quality–cost chart.")
    pairs = c.get("pairs") or []
    if pairs:
        st.markdown("**Pairwise differences** (paired bootstrap over items, Holm-adjusted)")
        pdf = pd.DataFrame([{"a": p["a"], "b": p["b"], "difference": (p.get("difference") or {}).get("value"),
                             "p (Holm)": p.get("p_holm")} for p in pairs])
        both = pd.concat([pdf, pdf.rename(columns={"a": "b", "b": "a"}).assign(difference=-pdf["difference"])])
        heat = alt.Chart(both).mark_rect().encode(
            x=alt.X("b:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=220, labelOverlap=False)),
            y=alt.Y("a:N", sort=order, title=None, axis=alt.Axis(labelLimit=260, labelOverlap=False)),
            color=alt.condition("datum['p (Holm)'] < 0.05", alt.Color("difference:Q", scale=alt.Scale(scheme="redblue")),
                                alt.value("#eeeeee")),
            tooltip=["a", "b", "difference", "p (Holm)"])
        st.altair_chart(heat.properties(title="a − b where significant (Holm p < 0.05); grey: not significant",
                                        width=max(240, 60 * len(order)), height=max(160, 32 * len(order))))
    for w in c.get("warnings") or []:
        st.caption(f"note: {safe_markdown(str(w))}")
    return df


runs = judge_runs(url, version_id, rubric_id)
judge_run_id: int | None = None
if runs:
    labels = {r["id"]: f"judge run {r['id']} · {r['model']} · {r['outputs']:,} outputs judged · {r['status']} · "
                       f"{r['started']:%Y-%m-%d %H:%M}" for r in runs}
    judge_run_id = st.selectbox("Judge run", list(labels), index=default_run(runs), format_func=labels.get,
                                key=f"rank-judge:{version_id}:{rubric_id}")
    picked = next(r for r in runs if r["id"] == judge_run_id)
    default_is = ("the latest" if runs[default_run(runs)] is runs[0]
                  else "the newest of those that judged the most outputs")
    why = default_why(runs, judge_run_id, runs[default_run(runs)]["id"], "pointwise judge run", default_is)
    show_judge_run(st, {**picked, "mode": "pointwise", "judge_model": picked["model"], "started_at": picked["started"]},
                   f"{why}; {picked['outputs']:,} outputs judged. Golden labels count for this run's outputs only")
pairwise_runs = queries.judge_run_list(url, viewer, version_id, rubric_id, "pairwise")
pairwise_run_id: int | None = None
if pairwise_runs:
    pw_labels = {r["id"]: f"judge run {r['id']} · {r['judge_model']} · {r['judgments']:,} pairs judged · "
                          f"{r['started_at']:%Y-%m-%d %H:%M}" for r in pairwise_runs}
    pairwise_run_id = st.selectbox("Pairwise judge run (Bradley–Terry)", list(pw_labels), format_func=pw_labels.get,
                                   key=f"rank-pairwise:{version_id}:{rubric_id}")
    show_judge_run(st, next(r for r in pairwise_runs if r["id"] == pairwise_run_id),
                   default_why(pairwise_runs, pairwise_run_id, pairwise_runs[0]["id"], "pairwise judge run")
                   + ": the Bradley–Terry strengths below come from it")
try:
    # the report takes one judge run: the pointwise one when there is one; the pairwise section is asked for
    # apart when another pairwise run than the latest is chosen
    data, markdown = ranking(url, version_id, rubric_id, judge_run_id if runs else pairwise_run_id, viewer)
    pairwise = data.get("pairwise")
    if runs and pairwise_run_id is not None and (pairwise or {}).get("judge_run") != pairwise_run_id:
        pairwise = ranking(url, version_id, rubric_id, pairwise_run_id, viewer)[0].get("pairwise")
except InputError as exc:
    common.show_input_error(exc)
    st.stop()

criteria = data.get("criteria") or []
tables: dict[str, pd.DataFrame] = {}
for tab, c in zip(st.tabs([inline(c["criterion"]) for c in criteria]) if criteria else [], criteria):
    with tab:
        df = show_criterion(c)
        if df is not None:
            tables[str(c["criterion"])] = df



def show_pairwise(section: dict[str, Any]) -> None:
    """Bradley–Terry strengths of a pairwise judge run: corrected with the golden pairwise labels, beside the
    human-only strengths from the same labels (and judge-only where the gate allows)."""
    st.subheader("Bradley–Terry strengths (pairwise)")
    for c in section.get("criteria") or []:
        st.markdown(f"**{inline(c['criterion'])}**: {c.get('battles', 0):,} battles, {c.get('unscored', 0):,} "
                    f"unscored, {c.get('golden', 0):,} golden")
        for key in ("note", "withheld", "judge_hidden"):
            if c.get(key):
                st.caption(safe_markdown(str(c[key])))
        human = {r["candidate"]: r["strength"] for r in c.get("human_only") or []}
        judge = {r["candidate"]: r["strength"] for r in c.get("judge_only") or []}
        if c.get("calibrated"):
            st.dataframe(pd.DataFrame([{
                "rank": f"{r['rank'][0]}" if r["rank"][0] == r["rank"][1] else f"{r['rank'][0]}–{r['rank'][1]}",
                "candidate": r["candidate"], "corrected strength [95 % CI]": _est(r["strength"]),
                "human only, golden battles [95 % CI]": _est(human.get(r["candidate"])),
                **({"judge only [95 % CI]": _est(judge.get(r["candidate"]))} if judge else {}),
            } for r in c["calibrated"]]), hide_index=True, width="stretch")


if pairwise:
    show_pairwise(pairwise)

if tables:
    st.subheader("Compare: baseline vs candidate")
    names = sorted({n for df in tables.values() for n in df["candidate"]})
    c1, c2 = st.columns(2)
    base_name = c1.selectbox("Baseline", names, key="cmp-base")
    cand_name = c2.selectbox("Candidate", [n for n in names if n != base_name] or names, key="cmp-cand")
    if st.button("Compare") and base_name != cand_name:
        try:
            with Session(eng) as s:
                cmp = reports.compare_report(s, version_id, rubric_id, base_name, cand_name, viewer=viewer,
                                             judge_run_id=judge_run_id)
            cmp_md = cmp.to_markdown()
            withheld = [c["criterion"] for c in cmp.criteria if c.get("withheld")]
            if cmp.regressed:
                st.error("Significant regression")
            elif withheld:
                st.warning(f"Withheld on {', '.join(inline(w) for w in withheld)}: too few golden labels for a "
                           "verdict there" + ("." if len(withheld) == len(cmp.criteria) else
                                              "; no significant regression on the other criteria."), icon="🔒")
            else:
                st.success("No significant regression")
            st.markdown(safe_markdown(cmp_md.split("\n", 2)[-1].split(f"\n{MARKDOWN_HEADING}\n", 1)[0]))
            st.download_button("Compare report (Markdown, with its manifest)", cmp_md,
                               file_name=f"compare-{base_name}-{cand_name}.md", mime="text/markdown")
        except InputError as exc:
            common.show_input_error(exc)

    st.subheader("Export")
    e1, e2, e3 = st.columns(3)
    csv = pd.concat([df.assign(criterion=k) for k, df in tables.items()]).to_csv(index=False)
    e1.download_button("CSV", csv, file_name="ranking.csv", mime="text/csv")
    e2.download_button("Markdown", markdown, file_name="ranking.md", mime="text/markdown")
    e3.download_button("JSON", json.dumps(data, indent=2, ensure_ascii=False, default=str), file_name="ranking.json",
                       mime="application/json")
    st.caption("The Markdown and JSON files carry a manifest of what they were computed from (version and rubric "
               "hashes, judge run, digests of the judgments and labels); `ownbench reports verify FILE` checks it "
               "against the database. The CSV holds the table only.")
