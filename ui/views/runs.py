"""Runs: start candidate runs and judge runs in the background, watch progress, spend and errors, cancel."""
from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlmodel import Session, select

from storage.hashing import content_hash
from storage.models import Candidate, EvalSet, EvalSetVersion, RubricVersion
from ui import common, jobs, queries
from ui.batches import batches_table
from ui.render import inline

viewer = common.require("review", "The Runs page")  # checked here, where the page reads data
st.title("Runs")
url = common.database_url()
eng = common.engine()


def _version_ref(version_id: int) -> str:
    with Session(eng) as s:
        v = s.get(EvalSetVersion, version_id)
        es = s.get(EvalSet, v.eval_set_id) if v else None
        return f"{es.name}@{v.number}" if v and es else str(version_id)


def _rubric_ref(rubric_id: int) -> str:
    with Session(eng) as s:
        r = s.get(RubricVersion, rubric_id)
        return f"{r.name}@{r.content_hash[:12]}" if r else str(rubric_id)


@st.fragment(run_every=2)
def jobs_panel() -> None:
    """Fresh from the Job table every 2 s (only this fragment reruns)."""
    rows = queries.jobs_table(url, viewer)
    if not rows:
        st.caption("No background runs yet.")
        return
    for job in rows[:15]:
        prog = job.get("progress") or {}
        done, total = prog.get("done"), prog.get("total")
        running = job["status"] in ("queued", "running")
        gone = running and job.get("pid") and not jobs.alive(job["pid"])
        with st.container(border=True):
            head, action = st.columns([5, 1])
            with head:
                status = job["status"] + (" · cancel requested" if job["cancel_requested"] and running else "")
                if gone:
                    status += " · the process has ended without reporting (see its log)"
                st.markdown(f"**Job {job['id']}** · {inline(job['kind'])} · {inline(status)}")
                st.caption(inline(" ".join(str(a) for a in (job.get("args") or {}).get("argv", []))))
                if total:
                    st.progress(min(1.0, (done or 0) / total), text=(
                        f"{done or 0} of {total} · errors {prog.get('errors', 0)} · "
                        f"spend ${prog.get('spend_usd') or 0:,.4f}"))
                elif prog:
                    st.caption(inline(", ".join(f"{k} {v}" for k, v in prog.items())))
                if job.get("message"):
                    (st.error if job["status"] == "failed" else st.caption)(inline(job["message"], limit=2000))
            with action:
                if running and not job["cancel_requested"] and st.button("Cancel", key=f"cancel-{job['id']}"):
                    jobs.cancel(eng, job["id"])
                    st.rerun(scope="fragment")
            tail = jobs.log_tail(job["id"])
            if tail:
                with st.expander("Log"):
                    st.code(tail, language=None)


versions = common.version_choices(url)
rubrics = common.rubric_choices(url)
start_run, start_judge = st.tabs(["Start a candidate run", "Start a judge run"])

with start_run:
    with Session(eng) as s:
        # an imported candidate has no configuration to call: its answers came from a file
        candidates = [(c.name, c.model) for c in s.exec(select(Candidate).order_by(Candidate.name))
                      if c.config_hash != content_hash({"imported": c.name})]
    if not versions:
        st.info("Freeze an eval set first (Eval sets page).")
    elif not candidates:
        st.info("No candidate to run yet (imported answers are not re-run): declare candidates in a candidates.yaml "
                "and run `ownbench candidates add candidates.yaml`.")
    else:
        with st.form("start-run"):
            vid = common.pick("Eval set version", versions, key="run-version")
            cand = st.selectbox("Candidate", [c for c, _ in candidates],
                                format_func=lambda n: f"{n} ({dict(candidates)[n]})")
            max_cost = st.number_input("Stop before spend exceeds (USD, 0 = no limit)", min_value=0.0, value=0.0)
            if st.form_submit_button("Start run", type="primary"):
                args = ["run", "--set", _version_ref(vid), "--candidate", cand]
                if max_cost > 0:
                    args += ["--max-cost", str(max_cost)]
                job_id = jobs.start(eng, "run", args, secrets=common.secret_env())
                st.success(f"Started job {job_id}; it goes on if you close this page.")

with start_judge:
    env_judge = jobs.judge_from_env()
    if not env_judge.get("model"):
        st.warning(jobs.HOW_TO_CONFIGURE_JUDGE)
    if not versions or not rubrics:
        st.info("A judge run needs a frozen eval set version with runs and a stored rubric.")
    else:
        with st.form("start-judge"):
            vid = common.pick("Eval set version", versions, key="judge-version")
            rid = common.pick("Rubric version", rubrics, key="judge-rubric")
            model = st.text_input("Judge model (LiteLLM string)", value=env_judge.get("model", ""))
            api_base = st.text_input("API base (optional)", value=env_judge.get("api_base", ""))
            key_env = st.text_input("API key variable (optional)", value=env_judge.get("api_key_env", ""),
                                    help="The NAME of the environment variable or `.streamlit/secrets.toml` "
                                         "entry holding the judge's key; the key itself is never stored.")
            limit = st.number_input("Only the first N items (0 = all)", min_value=0, value=0, step=10)
            mode = st.radio("Mode", ["rubric's default", "pointwise", "pairwise"], horizontal=True, key="judge-mode",
                            help="pairwise: the outputs of each pair of candidates on an item, asked in both orders "
                                 "(Bradley–Terry strengths and position bias)")
            with Session(eng) as s:
                judged = [c.name for c in s.exec(select(Candidate).order_by(Candidate.name))]
            chosen = st.multiselect("Candidates (empty = all with a run)", judged, key="judge-candidates")
            if st.form_submit_button("Start judge run", type="primary"):
                if not model.strip():
                    st.error("Give a judge model. " + jobs.HOW_TO_CONFIGURE_JUDGE)
                else:
                    args = ["judge", "--set", _version_ref(vid), "--rubric", _rubric_ref(rid),
                            "--judge", model.strip()]
                    if api_base.strip():
                        args += ["--api-base", api_base.strip()]
                    if key_env.strip():
                        args += ["--api-key-env", key_env.strip()]
                    if limit:
                        args += ["--limit", str(int(limit))]
                    if mode != "rubric's default":
                        args += ["--mode", mode]
                    if chosen:
                        args += ["--candidates", ",".join(chosen)]
                    job_id = jobs.start(eng, "judge", args, secrets=common.secret_env())
                    st.success(f"Started job {job_id}; it goes on if you close this page.")

st.subheader("Background runs")
jobs_panel()

st.subheader("Candidate runs")
runs = queries.runs_table(url, viewer)
for r in runs:
    if r["status"] in ("failed", "stopped", "cancelled") and r.get("reason"):
        (st.error if r["status"] == "failed" else st.warning)(
            f"Run {r['run']} ({inline(r['candidate'])} on {inline(r['set'])}) {r['status']}: {inline(r['reason'], limit=2000)}")
if runs:
    st.dataframe(pd.DataFrame(runs), hide_index=True, width="stretch")
else:
    st.caption("No runs yet.")

st.subheader("Judge runs")
jruns = queries.judge_runs_table(url, viewer)
for r in jruns:
    if r["status"] in ("failed", "stopped", "cancelled") and r.get("reason"):
        (st.error if r["status"] == "failed" else st.warning)(
            f"Judge run {r['judge run']} ({inline(r['set'])}) {r['status']}: {inline(r['reason'], limit=2000)}")
if jruns:
    st.dataframe(pd.DataFrame(jruns), hide_index=True, width="stretch")
else:
    st.caption("No judge runs yet." + ("" if env_judge.get("model") else " " + jobs.HOW_TO_CONFIGURE_JUDGE))

st.subheader("Provider batches")
batches = batches_table(url)
if batches:
    st.dataframe(pd.DataFrame(batches), hide_index=True, width="stretch")
    st.caption("Batches are submitted with `--batch` on `ownbench judge`; run the same command again to collect "
               "the answers once the provider has finished (nothing is submitted twice).")
else:
    st.caption("No provider batches: `ownbench judge … --batch` submits through the provider's Batch API at half price.")
