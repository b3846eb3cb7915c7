"""Showing the statistics area's reports (`.to_dict()` / `.to_markdown()`) without re-computing anything:
the app prints the same numbers as the CLI."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st


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
        st.caption(" · ".join(f"{k}: {v}" for k, v in scalars.items()))
    for key, value in data.items():
        if key in skip:
            continue
        rows = records(value)
        if rows is not None:
            st.markdown(f"**{key.replace('_', ' ')}**")
            st.dataframe(pd.DataFrame([flat(r) for r in rows]), hide_index=True, width="stretch")
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            st.markdown(f"**{key.replace('_', ' ')}**")
            st.dataframe(pd.DataFrame([{"": k, **flat(v)} for k, v in value.items()]), hide_index=True,
                         width="stretch")


def confusion_chart(matrix: list[list[float]], labels: list[str], *, title: str) -> alt.Chart:
    """A confusion heatmap: judge verdict (columns) against the human label (rows), counts in the cells."""
    rows = [{"human": labels[i], "judge": labels[j], "count": matrix[i][j]}
            for i in range(len(labels)) for j in range(len(labels))]
    df = pd.DataFrame(rows)
    base = alt.Chart(df).encode(
        x=alt.X("judge:N", sort=labels, title="judge verdict"),
        y=alt.Y("human:N", sort=labels, title="human label"),
    )
    heat = base.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")),
                                   tooltip=["human", "judge", "count"])
    text = base.mark_text().encode(text="count:Q")
    return (heat + text).properties(title=title, width=260, height=260)


def _find_confusions(obj: Any, path: str = "") -> list[tuple[str, list[list[float]], list[str]]]:
    """Every {"labels": [...], "matrix": [[...]]} inside a report dict, with where it was found."""
    found = []
    if isinstance(obj, dict):
        labels, matrix = obj.get("labels"), obj.get("matrix")
        if isinstance(labels, list) and isinstance(matrix, list) and matrix and isinstance(matrix[0], list):
            found.append((path, matrix, [str(x) for x in labels]))
        for k, v in obj.items():
            found += _find_confusions(v, f"{path} {k}".strip())
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            name = v.get("criterion") or v.get("id") if isinstance(v, dict) else None
            found += _find_confusions(v, f"{path} {name or i}".strip())
    return found


def show_agreement(data: dict[str, Any]) -> None:
    show_tables(data)
    charts = _find_confusions(data)
    if charts:
        cols = st.columns(min(3, len(charts)))
        for i, (where, matrix, labels) in enumerate(charts):
            with cols[i % len(cols)]:
                st.altair_chart(confusion_chart(matrix, labels, title=where or "confusion"))
