"""Rankings: withheld, with the reason, until the gate passes; then calibrated estimates with 95 % intervals,
pairwise significance, cost and latency, the quality–cost Pareto chart and the baseline-vs-candidate view."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from sqlmodel import Session

from storage.errors import InputError
from ui import common, queries, report_view
from ui.gate import pair_title

st.title("Rankings")
url = common.database_url()
eng = common.engine()

reports = common.optional("analysis.reports", "ranking_report")
if reports is None:
    common.missing("Rankings", "analysis.reports")
    st.stop()
judged = queries.judged_pairs(url)
if not judged:
    st.info("Rankings need candidate runs, a judge run and a labeled golden subset. Start with the **Runs** page.")
    st.stop()
with Session(eng) as s:
    titles = {(v, r): pair_title(s, v, r) for v, r, _j in judged}
pairs = list(dict.fromkeys((v, r) for v, r, _j in judged))
version_id, rubric_id = st.selectbox("Eval set × rubric", pairs, format_func=lambda p: titles[p], key="rank-pair")


@st.cache_data(ttl=common.QUERY_TTL, show_spinner="Computing the ranking…")
def ranking(url: str, version_id: int, rubric_id: int) -> tuple[dict[str, Any], str]:
    with Session(common._engine_for(url)) as s:
        report = reports.ranking_report(s, version_id, rubric_id)
        return report.to_dict(), report.to_markdown()


try:
    data, markdown = ranking(url, version_id, rubric_id)
except InputError as exc:
    common.show_input_error(exc)
    st.stop()

withheld = list(data.get("withheld") or [])
if withheld:
    st.warning("**Ranking withheld.** " + " ".join(str(w) for w in withheld), icon="🔒")
    st.caption("A ranking is shown only once judge–human agreement and the number of golden labels pass the "
               "configured gate: label more on the **Label** page and watch the **Agreement** page.")
    st.stop()

rows = report_view.records(data.get("rows")) or []
if not rows:
    st.info("The ranking has no rows.")
    st.stop()
df = pd.DataFrame([report_view.flat(r) for r in rows])


def _col(*names: str) -> str | None:
    for n in names:
        if n in df.columns:
            return n
    for n in names:
        hit = next((c for c in df.columns if c.endswith(n) or c.startswith(n)), None)
        if hit:
            return hit
    return None


name_c = _col("candidate", "name")
est_c = _col("estimate", "calibrated", "mean")
lo_c, hi_c = _col("ci_low", "low", "lower"), _col("ci_high", "high", "upper")
if lo_c is None and "ci" in df.columns:
    ci = [r.get("ci") for r in rows]
    df["ci_low"] = [c[0] if c else None for c in ci]
    df["ci_high"] = [c[1] if c else None for c in ci]
    lo_c, hi_c = "ci_low", "ci_high"
cost_c = _col("cost_per_item_usd", "cost_usd", "cost")
lat_c = _col("latency_p50_ms", "latency_ms", "latency")

st.subheader("Calibrated estimates with 95 % intervals")
st.dataframe(df, hide_index=True, width="stretch")
if name_c and est_c and lo_c and hi_c:
    order = df.sort_values(est_c, ascending=False)[name_c].tolist()
    base = alt.Chart(df).encode(y=alt.Y(f"{name_c}:N", sort=order, title=None))
    forest = (base.mark_rule().encode(x=alt.X(f"{lo_c}:Q", title="calibrated estimate (95 % interval)"), x2=f"{hi_c}:Q")
              + base.mark_point(filled=True, size=80).encode(x=f"{est_c}:Q", tooltip=list(df.columns)))
    st.altair_chart(forest.properties(height=40 * len(df) + 40), width="stretch")
if name_c and est_c and cost_c:
    st.subheader("Quality against cost")
    best = df.sort_values([cost_c, est_c], ascending=[True, False])
    frontier, top = [], float("-inf")
    for _, r in best.iterrows():
        if r[est_c] > top:
            frontier.append(r[name_c])
            top = r[est_c]
    df["Pareto frontier"] = df[name_c].isin(frontier)
    chart = alt.Chart(df).mark_circle(size=120).encode(
        x=alt.X(f"{cost_c}:Q", title="cost"), y=alt.Y(f"{est_c}:Q", title="calibrated estimate"),
        color="Pareto frontier:N", tooltip=list(df.columns))
    labels = alt.Chart(df).mark_text(dx=8, align="left").encode(x=f"{cost_c}:Q", y=f"{est_c}:Q", text=f"{name_c}:N")
    st.altair_chart(chart + labels, width="stretch")

sig = data.get("pairwise") or data.get("significance")
if sig:
    st.subheader("Pairwise significance (paired, Holm-adjusted)")
    table = report_view.records(sig)
    if table:
        st.dataframe(pd.DataFrame([report_view.flat(r) for r in table]), hide_index=True, width="stretch")
    else:
        st.json(sig)

compare = common.optional("analysis.reports", "compare_report")
if compare is not None and name_c:
    st.subheader("Compare: baseline vs candidate")
    names = df[name_c].tolist()
    c1, c2 = st.columns(2)
    base_name = c1.selectbox("Baseline", names, key="cmp-base")
    cand_name = c2.selectbox("Candidate", [n for n in names if n != base_name] or names, key="cmp-cand")
    if st.button("Compare"):
        try:
            with Session(eng) as s:
                cmp = compare.compare_report(s, version_id, rubric_id, base_name, cand_name)
            report_view.show_tables(cmp.to_dict())
            st.code(cmp.to_markdown(), language="markdown")
        except (InputError, TypeError) as exc:
            st.error(str(exc))

st.subheader("Export")
e1, e2 = st.columns(2)
e1.download_button("CSV", df.to_csv(index=False), file_name="ranking.csv", mime="text/csv")
e2.download_button("Markdown", markdown, file_name="ranking.md", mime="text/markdown")
