"""People and progress: each annotator's assigned, done, skipped and flagged units, median seconds per label and
agreement with peers; reassigning unlabeled units; and, for owners, who has which role."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis import labeling, people, progress
from storage.errors import InputError
from storage.models import ROLES
from ui import common

viewer = common.require("review", "The People page")  # checked here, where the page reads data
st.title("People")

with common.session() as s:
    tasks = labeling.all_tasks(s)
if not tasks:
    st.info("Nobody has golden units yet: draw a golden subset on the **Agreement** page.")
else:
    titles = {i: f"{t.title} ({t.mode})" for i, t in enumerate(tasks)}
    task = tasks[st.selectbox("Golden subset", list(titles), format_func=lambda i: titles[i], key="people-task")]
    with common.session() as s:
        rows = progress.people_progress(s, viewer, task)
    st.dataframe(pd.DataFrame([{
        "annotator": p.annotator, "assigned": p.assigned_units, "done": p.done_units, "labels": p.labels,
        "skipped": p.skipped, "flagged": p.flagged,
        "median s / label": round(p.median_seconds, 1) if p.median_seconds is not None else None,
        "agreement with peers": round(p.peer_agreement, 3) if p.peer_agreement is not None else None,
        "peer comparisons": p.peer_comparisons} for p in rows]), hide_index=True, width="stretch")
    st.caption("Median seconds between consecutive labels, pauses over 10 minutes left out. Agreement with peers: "
               "share of the times another annotator labeled the same unit and criterion with the same verdict.")
    names = [p.annotator for p in rows]
    with common.session() as s:
        everyone = [a.name for a in people.everyone(s)]
    with st.form("reassign"):
        st.markdown("**Reassign unlabeled units** (the draw and its inclusion probabilities stay as they are)")
        c1, c2, c3 = st.columns(3)
        src = c1.selectbox("From", names, key="re-from")
        dst = c2.selectbox("To", everyone, key="re-to")
        n = c3.number_input("How many (0: all)", min_value=0, value=0, key="re-n")
        if st.form_submit_button("Reassign"):
            try:
                with common.session() as s:
                    moved = progress.reassign(s, viewer, task, str(src), str(dst), int(n) or None)
                st.success(f"Moved {moved} unlabeled unit(s) from {src} to {dst}.")
                common.clear_read_caches()
            except InputError as exc:
                common.show_input_error(exc)

if viewer.can("manage_people"):
    st.subheader("Roles")
    with common.session() as s:
        st.dataframe(pd.DataFrame([{"name": a.name, "role": a.role} for a in people.everyone(s)]),
                     hide_index=True, width="stretch")
    with st.form("add-person"):
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Identity (the e-mail they sign in with)", key="person-name")
        role = c2.selectbox("Role", ROLES, index=2, key="person-role")
        add, change, remove = st.columns(3)
        actions = {"add": add.form_submit_button("Add"), "role": change.form_submit_button("Change role"),
                   "remove": remove.form_submit_button("Remove")}
        picked = next((a for a, pressed in actions.items() if pressed), None)
        if picked:
            try:
                with common.session() as s:
                    if picked == "add":
                        people.add(s, name, str(role))
                    elif picked == "role":
                        people.set_role(s, name.strip(), str(role))
                    else:
                        people.remove(s, name.strip())
                st.success("Saved.")
                common.clear_read_caches()
            except InputError as exc:
                common.show_input_error(exc)
