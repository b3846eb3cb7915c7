"""Judges: every pointwise judge run of an eval set × rubric side by side against the same golden labels, which
one narrows the calibrated intervals most per dollar, and panels built from several of them."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from sqlmodel import Session

from analysis import judges
from judging.panel import ORDINAL_RULES, TIE_RULE, build_panel
from storage.errors import InputError
from ui import common, queries
from ui.gate import pair_title
from ui.render import escape_markdown, show_judge_run

st.title("Judges")
viewer = common.require("review", "The Judges page")  # checked here, where the page reads data
url = common.database_url()
eng = common.engine()

judged = [p for p in queries.judged_pairs(url, viewer) if p[3] == "pointwise"]
if not judged:
    st.info("Compare judges once the same eval set has been judged with a rubric (**Runs** page) and humans have "
            "labeled its golden subset (**Label** page).")
    st.stop()
with Session(eng) as s:
    titles = {(v, r): pair_title(s, v, r) for v, r, _j, _m in judged}
pairs = list(dict.fromkeys((v, r) for v, r, _j, _m in judged))
version_id, rubric_id = st.selectbox("Eval set × rubric", pairs, format_func=lambda p: titles[p], key="judges-pair")
margin = st.slider("Margin: recommend the cheapest judge within this share of the narrowest width", 0.0, 0.5, 0.10, 0.01)


@st.cache_data(ttl=common.QUERY_TTL, show_spinner="Comparing the judges…")
def compared(url: str, version_id: int, rubric_id: int, margin: float) -> tuple[dict[str, Any], str]:
    with Session(common._engine_for(url)) as s:
        report = judges.compare_judges(s, version_id, rubric_id, viewer=viewer, margin=margin, n_boot=500)
        return report.to_dict(), report.to_markdown()


def _est(e: dict | None) -> str:
    if not e or e.get("value") is None:
        return "n/a"
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


try:
    data, markdown = compared(url, version_id, rubric_id, margin)
except InputError as exc:
    common.show_input_error(exc)
    st.stop()

rec = data.get("recommendation") or {}
(st.success if rec.get("judge_run") else st.warning)(escape_markdown(rec.get("text", "")))
df = pd.DataFrame([{
    "judge run": j["judge_run"], "judge": j["judge_model"], "kind": j["source"],
    "α judge–human [95 % CI]": _est(j.get("alpha")), "κ judge–human [95 % CI]": _est(j.get("kappa")),
    "leniency": _est(j.get("leniency")), "verbosity / 1k chars": _est(j.get("verbosity")),
    "self-preference": _est(j.get("self_preference")), "position bias": j.get("position_bias"),
    "position bias from pairwise run": j.get("position_bias_run"),
    "unscored share": j.get("unscored_share"), "judgments": j.get("judgments"),
    "$ / 1k judgments": j.get("cost_per_1k_usd"), "latency p50 ms": j.get("latency_p50_ms"),
    "latency p95 ms": j.get("latency_p95_ms"), "width": j.get("width"), "human-only width": j.get("human_width"),
    "width ratio": j.get("width_ratio"), "labels ×": j.get("label_multiplier"),
    "narrowing per $": j.get("narrowing_per_usd"),
} for j in data.get("judges") or []])
st.dataframe(df, hide_index=True, width="stretch")
st.caption("Width: mean calibrated 95 % interval width over model-graded criteria and candidates, divided by each "
           "criterion's scale range; human-only width from the same golden labels. A ratio below 1 means the judge "
           "narrows the intervals; labels × is how many times more golden labels human-only estimates would need. "
           "Check criteria are exact and the same for every judge: they are left out.")
plot = df.dropna(subset=["width", "$ / 1k judgments"])
if not plot.empty:
    pts = alt.Chart(plot).mark_circle(size=140).encode(
        x=alt.X("$ / 1k judgments:Q", title="cost, $ per 1,000 judgments"),
        y=alt.Y("width:Q", title="mean calibrated interval width (lower is better)"),
        color=alt.Color("kind:N"), tooltip=["judge run", "judge", "width", "human-only width", "$ / 1k judgments"])
    st.altair_chart(pts.properties(title="What each judge buys"), width="stretch")
all_runs = {r["id"]: r for r in queries.judge_run_list(url, viewer, version_id, rubric_id)}
for pb_run in dict.fromkeys(j["position_bias_run"] for j in data.get("judges") or [] if j.get("position_bias_run")):
    show_judge_run(st, all_runs[pb_run], "position bias of its judge model, from the latest pairwise run of that "
                                         "judge on this eval set and rubric")
for j in data.get("judges") or []:
    for note in j.get("notes") or []:
        st.caption(f"judge run {j['judge_run']}: {note}")

st.subheader("Build a panel")
runs = [(int(j["judge_run"]), f"#{j['judge_run']} {j['judge_model']}") for j in data.get("judges") or []
        if j["source"] != "panel"]
with st.form("panel"):
    chosen = st.multiselect("Member judge runs, the most trusted first (it breaks ties)", [r for r, _ in runs],
                            format_func=lambda r: dict(runs)[r])
    rule = st.radio("Ordinal criteria", ORDINAL_RULES, horizontal=True)
    st.caption(f"Binary and categorical criteria: majority vote; ties go to the {TIE_RULE}.")
    if st.form_submit_button("Store the panel as a judge run", type="primary"):
        try:
            with common.session() as s:
                res = build_panel(s, [int(r) for r in chosen], ordinal=rule)
            compared.clear()
            st.success(f"Panel judge run #{res.judge_run_id} " + ("stored" if res.created else "already stored")
                       + f": {res.scored} scored, {res.unscored} unscored.")
        except InputError as exc:
            common.show_input_error(exc)
st.download_button("Markdown", markdown, file_name="judges.md", mime="text/markdown")
