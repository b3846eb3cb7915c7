"""Overview: what the project holds, and the next step in words."""
from __future__ import annotations

import streamlit as st

from ui import common, jobs, queries
from ui.gate import ranking_status
from ui.render import inline

viewer = common.require("review", "The Overview page")  # checked here, where the page reads data
st.title("ownbench")
st.caption("A private, frozen eval set from your logs; a judge calibrated against humans; rankings you can defend.")

url = common.database_url()
c = queries.counts(url, viewer)
row1 = st.columns(6)
for col, (label, key) in zip(row1, [("Eval sets", "eval sets"), ("Versions", "versions"),
                                    ("Candidates", "candidates"), ("Runs", "runs"), ("Outputs", "outputs"),
                                    ("Rubric versions", "rubric versions")]):
    col.metric(label, f"{c[key]:,}")
row2 = st.columns(6)
for col, (label, key) in zip(row2, [("Judge runs", "judge runs"), ("Judgments", "judgments"),
                                    ("Golden units", "golden units"), ("Labels", "labels"),
                                    ("Annotators", "annotators")]):
    col.metric(label, f"{c[key]:,}")



def _judge_model(job: dict) -> str:
    prog, argv = job.get("progress") or {}, (job.get("args") or {}).get("argv") or []
    if prog.get("judge_model"):
        return str(prog["judge_model"])
    return str(argv[argv.index("--judge") + 1]) if "--judge" in argv[:-1] else "?"


@st.fragment(run_every=3)
def judge_progress() -> None:
    """The newest background judge run (e.g. the demo's slice on the local judge), fresh every 3 s."""
    job = queries.latest_judge_job(url, viewer)
    if job is None:
        return
    prog = job.get("progress") or {}
    done, total, unscored = prog.get("done") or 0, prog.get("total"), prog.get("errors") or 0
    status = job["status"]
    if status in ("queued", "running") and job.get("pid") and not jobs.alive(job["pid"]):
        status += " · the process has ended without reporting (see its log on the Runs page)"
    started = job["created_at"].strftime("%Y-%m-%d %H:%M UTC")
    st.subheader("Judge run")
    st.markdown(f"Job {job['id']} · judge {inline(_judge_model(job))} · started {started} · {inline(status)}")
    if total:
        st.progress(min(1.0, done / total), text=f"{done:,} of {total:,} judged · {unscored:,} unscored")
    else:
        st.caption("waiting for the judge run to plan its units")
    if job.get("message") and status == "failed":
        st.error(inline(job["message"], limit=2000))


judge_progress()

st.subheader("Next step")
if c["versions"] == 0:
    st.info("Freeze an eval set from your logs on the **Eval sets** page (or `ownbench ingest`); "
            "`ownbench demo` builds one from real Chatbot Arena prompts.")
elif c["runs"] == 0:
    st.info("Run at least two candidates on the eval set from the **Runs** page (or `ownbench run`).")
elif c["rubric versions"] == 0:
    st.info("Write a rubric on the **Rubrics** page and save it as a version.")
elif c["judge runs"] == 0:
    st.info("Start a judge run on the **Runs** page: the judge scores every output against the rubric.")
    if c["golden units"] == 0:
        st.info("People need not wait for the judge: draw a golden subset by candidate alone on the **Agreement** "
                "page and label it blind on the **Label** page.")
    else:
        st.info(f"{c['golden units']:,} golden units are drawn: label them blind on the **Label** page; agreement "
                "and rankings follow once a judge has run.")
elif c["golden units"] == 0:
    st.info("Draw a golden subset on the **Agreement** page, so that people can label it blind on the **Label** "
            "page; the judge is calibrated against their labels.")
else:
    for line in ranking_status(url, viewer):
        st.info(line)
