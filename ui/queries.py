"""Read queries the pages share, cached for a few seconds (`st.cache_data(ttl=…)`); writes never go here.

Each public query takes the viewer and refuses unless their role may review (candidate names, judge runs, the
project's counts); the cached functions behind them are private so that a cache hit never skips the check."""
from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy import func
from sqlmodel import Session, select

from analysis.people import Viewer
from storage.models import (
    Annotator,
    Candidate,
    EvalSet,
    EvalSetVersion,
    GoldenUnit,
    Job,
    JudgeRun,
    Judgment,
    Label,
    Output,
    RubricVersion,
    Run,
)
from ui.common import QUERY_TTL, _engine_for


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _counts(url: str) -> dict[str, int]:
    tables = {
        "eval sets": EvalSet, "versions": EvalSetVersion, "candidates": Candidate, "runs": Run,
        "outputs": Output, "rubric versions": RubricVersion, "judge runs": JudgeRun, "judgments": Judgment,
        "golden units": GoldenUnit, "labels": Label, "annotators": Annotator,
    }
    with Session(_engine_for(url)) as s:
        out = {name: int(s.exec(select(func.count()).select_from(t)).one()) for name, t in tables.items()}
        out["labels"] = int(s.exec(select(func.count()).select_from(Label).where(Label.skipped.is_(False))).one())  # type: ignore[attr-defined]
        return out


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _runs_table(url: str) -> list[dict[str, Any]]:
    with Session(_engine_for(url)) as s:
        rows = s.exec(
            select(Run, Candidate.name, Candidate.model, EvalSet.name, EvalSetVersion.number)
            .join(Candidate, Candidate.id == Run.candidate_id)
            .join(EvalSetVersion, EvalSetVersion.id == Run.version_id)
            .join(EvalSet, EvalSet.id == EvalSetVersion.eval_set_id)
            .order_by(Run.id.desc())  # type: ignore[union-attr]
        ).all()
        stats = {
            rid: (n, errs, cost, lat)
            for rid, n, errs, cost, lat in s.exec(
                select(Output.run_id, func.count(), func.count(Output.error), func.sum(Output.cost_usd),
                       func.avg(Output.latency_ms)).group_by(Output.run_id)
            ).all()
        }
        out = []
        for run, cname, model, sname, number in rows:
            n, errs, cost, lat = stats.get(run.id, (0, 0, None, None))
            out.append({
                "run": run.id, "candidate": cname, "model": model, "set": f"{sname}@{number}",
                "source": run.source, "status": run.status, "outputs": n, "errors": errs,
                "spend $": round(cost, 4) if cost is not None else None,
                "mean latency ms": round(lat) if lat is not None else None,
                "started": run.started_at, "reason": run.status_reason,
            })
        return out


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _judge_runs_table(url: str) -> list[dict[str, Any]]:
    with Session(_engine_for(url)) as s:
        rows = s.exec(
            select(JudgeRun, RubricVersion.name, EvalSet.name, EvalSetVersion.number)
            .join(RubricVersion, RubricVersion.id == JudgeRun.rubric_version_id)
            .join(EvalSetVersion, EvalSetVersion.id == JudgeRun.version_id)
            .join(EvalSet, EvalSet.id == EvalSetVersion.eval_set_id)
            .order_by(JudgeRun.id.desc())  # type: ignore[union-attr]
        ).all()
        stats = {
            jid: (n, unscored, cost)
            for jid, n, unscored, cost in s.exec(
                select(Judgment.judge_run_id, func.count(), func.count(Judgment.unscored_reason),
                       func.sum(Judgment.cost_usd)).group_by(Judgment.judge_run_id)
            ).all()
        }
        out = []
        for jr, rname, sname, number in rows:
            n, unscored, cost = stats.get(jr.id, (0, 0, None))
            out.append({
                "judge run": jr.id, "set": f"{sname}@{number}", "rubric": rname, "judge": jr.judge_model,
                "mode": jr.mode, "source": jr.source, "status": jr.status, "judgments": n, "unscored": unscored,
                "spend $": round(cost, 4) if cost is not None else None, "started": jr.started_at,
                "reason": jr.status_reason,
            })
        return out


def _jobs_table(url: str, limit: int = 50) -> list[dict[str, Any]]:
    """Jobs are read fresh: their progress is what the Runs page watches."""
    with Session(_engine_for(url)) as s:
        jobs = s.exec(select(Job).order_by(Job.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
        return [j.model_dump() for j in jobs]


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _golden_pairs(url: str) -> list[tuple[int, int, int]]:
    """(version id, rubric version id, golden units) with a golden subset, most units first."""
    with Session(_engine_for(url)) as s:
        rows = s.exec(
            select(GoldenUnit.version_id, GoldenUnit.rubric_version_id, func.count())
            .group_by(GoldenUnit.version_id, GoldenUnit.rubric_version_id)
        ).all()
        return sorted(((int(v), int(r), int(n)) for v, r, n in rows), key=lambda t: -t[2])


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _judged_pairs(url: str) -> list[tuple[int, int, int, str]]:
    """(version id, rubric version id, judge run id, mode) of every judge run, newest first."""
    with Session(_engine_for(url)) as s:
        rows = s.exec(select(JudgeRun.version_id, JudgeRun.rubric_version_id, JudgeRun.id, JudgeRun.mode)
                      .order_by(JudgeRun.id.desc())).all()  # type: ignore[union-attr]
        return [(int(v), int(r), int(j), str(m)) for v, r, j, m in rows]


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _labelable_pairs(url: str) -> list[tuple[int, int]]:
    """(version id, rubric version id) for every version with a candidate run and every stored rubric version,
    newest first: what a golden subset can be drawn on before any judge has run."""
    with Session(_engine_for(url)) as s:
        versions = s.exec(select(Run.version_id).distinct().order_by(Run.version_id.desc())).all()  # type: ignore[union-attr]
        rubrics = s.exec(select(RubricVersion.id).order_by(RubricVersion.id.desc())).all()  # type: ignore[union-attr]
        return [(int(v), int(r)) for v in versions for r in rubrics]


# --- the doors: every read above passes through the viewer's role -----------------------------------------------


def counts(url: str, viewer: Viewer) -> dict[str, int]:
    viewer.require("review", "the project's counts")
    return _counts(url)


def runs_table(url: str, viewer: Viewer) -> list[dict[str, Any]]:
    viewer.require("review", "runs")
    return _runs_table(url)


def judge_runs_table(url: str, viewer: Viewer) -> list[dict[str, Any]]:
    viewer.require("review", "judge runs")
    return _judge_runs_table(url)


def jobs_table(url: str, viewer: Viewer, limit: int = 50) -> list[dict[str, Any]]:
    viewer.require("review", "background jobs")
    return _jobs_table(url, limit)


def latest_judge_job(url: str, viewer: Viewer) -> dict[str, Any] | None:
    """The newest background judge run (its job row, read fresh), or None."""
    viewer.require("review", "background jobs")
    with Session(_engine_for(url)) as s:
        job = s.exec(select(Job).where(Job.kind == "judge").order_by(Job.id.desc()).limit(1)).first()  # type: ignore[union-attr]
        return job.model_dump() if job is not None else None


def golden_pairs(url: str, viewer: Viewer) -> list[tuple[int, int, int]]:
    viewer.require("review", "golden subsets")
    return _golden_pairs(url)


def judged_pairs(url: str, viewer: Viewer) -> list[tuple[int, int, int, str]]:
    viewer.require("review", "judge runs")
    return _judged_pairs(url)


def judge_run_list(url: str, viewer: Viewer, version_id: int, rubric_id: int, mode: str | None = None) -> list[dict[str, Any]]:
    """The judge runs of one eval set version × rubric version, newest first (id, mode, judge model, counts,
    start date): what a page chooses from and names."""
    viewer.require("review", "judge runs")
    return _judge_run_list(url, version_id, rubric_id, mode)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _judge_run_list(url: str, version_id: int, rubric_id: int, mode: str | None) -> list[dict[str, Any]]:
    from analysis.judge_runs import list_judge_runs

    with Session(_engine_for(url)) as s:
        return list_judge_runs(s, version_id, rubric_id, mode)


def labelable_pairs(url: str, viewer: Viewer) -> list[tuple[int, int]]:
    viewer.require("review", "eval sets with runs")
    return _labelable_pairs(url)
