"""Showing the statistics area's reports (`.to_dict()` / `.to_markdown()`) without re-computing anything:
the app prints the same numbers as the CLI."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui.render import inline, safe_markdown


def records(value: Any) -> list[dict[str, Any]] | None:
    """A list of flat-ish dicts (a table), or None."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return None


def flat(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if not isinstance(v2, (dict, list)):
                    out[f"{k} {k2}"] = v2
        elif isinstance(v, list):
            if len(v) == 2 and all(isinstance(x, (int, float)) or x is None for x in v):
                out[f"{k}"] = f"[{_num(v[0])}, {_num(v[1])}]"
        else:
            out[k] = v
    return out


def _num(x: Any) -> str:
    return "—" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def show_tables(data: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Every table-shaped entry of a report dict as a dataframe, everything scalar as a short list."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list)) and k not in skip}
    if scalars:
        st.caption(" · ".join(f"{inline(k)}: {inline(v)}" for k, v in scalars.items()))
    for key, value in data.items():
        if key in skip:
            continue
        rows = records(value)
        if rows is not None:
            st.markdown(f"**{inline(key.replace('_', ' '))}**")
            st.dataframe(pd.DataFrame([flat(r) for r in rows]), hide_index=True, width="stretch")
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            st.markdown(f"**{inline(key.replace('_', ' '))}**")
            st.dataframe(pd.DataFrame([{"": k, **flat(v)} for k, v in value.items()]), hide_index=True,
                         width="stretch")


def confusion_chart(matrix: list[list[float]], labels: list[str], *, title: str, rows_title: str = "human label",
                    cols_title: str = "judge verdict") -> alt.Chart:
    """A confusion heatmap: judge verdict (columns) against the human label (rows), counts in the cells."""
    rows = [{"row": labels[i], "col": labels[j], "count": matrix[i][j]}
            for i in range(min(len(labels), len(matrix))) for j in range(min(len(labels), len(matrix[i])))]
    df = pd.DataFrame(rows)
    base = alt.Chart(df).encode(
        x=alt.X("col:N", sort=labels, title=cols_title),
        y=alt.Y("row:N", sort=labels, title=rows_title),
    )
    heat = base.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")),
                                   tooltip=["row", "col", "count"])
    text = base.mark_text().encode(text="count:Q")
    return (heat + text).properties(title=title, width=260, height=260)


def _est(e: dict | None) -> str:
    if not e or e.get("value") is None:
        return "n/a" + (f" (n={e['n']})" if e and e.get("n") is not None else "")
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def show_agreement(data: dict[str, Any]) -> None:
    """The agreement report per criterion: alphas and kappas with intervals, confusion, bias, Alt-Test."""
    crits = data.get("criteria") or []
    if not crits:
        st.info("No criterion to report.")
        return
    for tab, c in zip(st.tabs([inline(c["criterion"]) for c in crits]), crits):
        with tab:
            st.caption(f"{inline(c.get('type'))} criterion ({inline(c.get('level'))}) · {c.get('labels_total', 0)} human labels on "
                       f"{c.get('units', 0)} units by {len(c.get('annotators') or [])} annotator(s) · "
                       f"{c.get('unscored', 0)} unscored judgments")
            if c.get("note"):
                st.info(safe_markdown(str(c["note"])))
                continue
            summary = [{"measure": name, "value [95 % CI]": _est(c.get(key)), "n": (c.get(key) or {}).get("n")}
                       for name, key in (("Krippendorff's alpha, judge vs human", "alpha_judge_vs_human"),
                                         ("Krippendorff's alpha, all humans", "alpha_humans"),
                                         ("Krippendorff's alpha, humans + judge", "alpha_with_judge"),
                                         ("Fleiss' kappa, humans", "fleiss_humans")) if c.get(key)]
            if summary:
                st.dataframe(pd.DataFrame(summary), hide_index=True, width="stretch")
            pairs = c.get("pairs") or []
            if pairs:
                st.dataframe(pd.DataFrame([{
                    "raters": " vs ".join(p["raters"]), "kind": p.get("kind"), "n": p.get("n"),
                    "agreement": _est(p.get("percent")), "Cohen's κ": _est(p.get("kappa")),
                    "κ linear": _est(p.get("kappa_linear")), "κ quadratic": _est(p.get("kappa_quadratic")),
                } for p in pairs]), hide_index=True, width="stretch")
            names = [str(x) for x in c.get("label_names") or []]
            charts = [p for p in pairs if p.get("kind") == "judge-human" and p.get("confusion")]
            if charts and names:
                cols = st.columns(min(3, len(charts)))
                for i, p in enumerate(charts):
                    with cols[i % len(cols)]:
                        st.altair_chart(confusion_chart(p["confusion"], names, title=" vs ".join(p["raters"]),
                                                        rows_title=p["raters"][0], cols_title=p["raters"][1]))
            bias = c.get("bias") or {}
            if bias:
                st.markdown("**Judge bias on golden units**")
                lines = []
                if bias.get("leniency"):
                    lines.append(f"- leniency (judge − human): {_est(bias['leniency'])}")
                if bias.get("verbosity"):
                    lines.append(f"- verbosity slope per 1,000 characters: {_est(bias['verbosity'])}")
                sp = bias.get("self_preference") or {}
                if sp.get("difference"):
                    lines.append(f"- self-preference (own family {inline(bias.get('judge_family'))} − others): "
                                 f"{_est(sp['difference'])}")
                st.markdown("\n".join(lines) or "not enough labels yet")
            at = c.get("alt_test")
            if at:
                st.markdown("**Alt-Test** (may the judge replace a human annotator?)")
                if at.get("passed") is None:
                    st.caption(safe_markdown(str(at.get("reason"))))
                else:
                    verdict = "may replace a human annotator" if at["passed"] else "may NOT replace a human annotator"
                    st.write(f"Winning rate {at['winning_rate']:.3f} vs threshold {at['threshold']} "
                             f"(ε={at['epsilon']}): the judge {verdict}; advantage probability "
                             f"{at['advantage_probability']:.3f}.")
