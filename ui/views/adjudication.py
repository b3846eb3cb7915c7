"""Adjudication: golden units where the annotators disagree; a reviewer records the adjudicated label with a
note. It is stored apart from the annotators' labels; calibration uses it where one exists."""
from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlmodel import Session

from analysis import adjudication, labeling
from storage.errors import InputError
from ui import common, queries
from ui.gate import pair_title
from ui.render import inline, show_chat, show_text

viewer = common.require("review", "The Adjudication page")  # checked here, where the page reads data
st.title("Adjudication")
st.caption("Golden units where annotators' latest labels differ. Your adjudicated label is kept apart from "
           "theirs (agreement still compares their own labels); calibration and rankings use it instead of the "
           "annotators' mean. Units assigned to you stay hidden until you have labeled them yourself.")
url = common.database_url()
eng = common.engine()

pairs = [(v, r) for v, r, _n in queries.golden_pairs(url, viewer)]
if not pairs:
    st.info("No golden subset yet: draw one on the **Agreement** page.")
    st.stop()
with Session(eng) as s:
    titles = {p: pair_title(s, *p) for p in pairs}
version_id, rubric_id = st.selectbox("Eval set × rubric", pairs, format_func=lambda p: titles[p], key="adj-pair")
show_settled = st.toggle("Also show units already adjudicated", key="adj-settled")
try:
    with Session(eng) as s:
        items = adjudication.queue(s, viewer, version_id, rubric_id, include_settled=show_settled)
except InputError as exc:
    common.show_input_error(exc)
    st.stop()
if not items:
    st.success("Nothing to adjudicate: no disagreement among the labeled units you may see.")
    st.stop()
st.dataframe(pd.DataFrame([{
    "unit": d.golden_unit_id, "criterion": d.criterion_id,
    "labels": "; ".join(f"{x['annotator']}: {x['verdict']}" for x in d.labels),
    "adjudicated": (d.adjudicated or {}).get("verdict")} for d in items]), hide_index=True, width="stretch")
idx = st.selectbox("Adjudicate", range(len(items)), key="adj-pick",
                   format_func=lambda i: f"unit {items[i].golden_unit_id} · {items[i].criterion_id}")
with Session(eng) as s:
    d = adjudication.with_content(s, viewer, items[idx])
left, right = st.columns([3, 2], gap="medium")
with left:
    st.markdown("##### Prompt")
    show_chat(st, d.messages)
    st.markdown("##### Response")
    with st.container(border=True):
        show_text(st, d.output)
with right:
    st.markdown(f"##### Criterion {inline(d.criterion_id)}")
    show_text(st, str(d.criterion.get("question", "")))
    st.markdown("**Annotators' labels**")
    for x in d.labels:
        st.text(f"{x['annotator']}: {x['verdict']}" + (f" — {x['comment']}" if x.get("comment") else ""))
    if d.adjudicated:
        st.text(f"Adjudicated {d.adjudicated['verdict']} by {d.adjudicated['by']}: {d.adjudicated['note']}")
    choices = labeling.choices_for(d.criterion, "pointwise")
    with st.form(f"adj-form:{d.golden_unit_id}:{d.criterion_id}"):
        choice = st.radio("Adjudicated label", [c for c, _ in choices], horizontal=True,
                          format_func=lambda c: dict(choices)[c])
        note = st.text_area("Note (required): why this label", key="adj-note")
        if st.form_submit_button("Record adjudication", type="primary"):
            try:
                with common.session() as s:
                    adjudication.record(s, viewer, version_id, rubric_id, d.golden_unit_id, d.criterion_id,
                                        str(choice), note)
                common.clear_read_caches()
                st.success(f"Recorded: unit {d.golden_unit_id} · {d.criterion_id} is {choice}.")
            except InputError as exc:
                common.show_input_error(exc)
