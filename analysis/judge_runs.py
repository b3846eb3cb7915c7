"""Judge runs as a person looks for them: which set, rubric, judge model and mode, how many judgments, when;
and the one place that picks "the latest" judge run for a command and says which one it took."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, func, select

from storage.models import EvalSet, EvalSetVersion, JudgeRun, Judgment, RubricVersion


def list_judge_runs(session: Session, version_id: int | None = None, rubric_version_id: int | None = None,
                    mode: str | None = None) -> list[dict[str, Any]]:
    """Judge runs, newest first, with their counts (one grouped query, not a row per judgment)."""
    query = (select(JudgeRun, RubricVersion.name, RubricVersion.content_hash, EvalSet.name, EvalSetVersion.number)
             .join(RubricVersion, RubricVersion.id == JudgeRun.rubric_version_id)
             .join(EvalSetVersion, EvalSetVersion.id == JudgeRun.version_id)
             .join(EvalSet, EvalSet.id == EvalSetVersion.eval_set_id)
             .order_by(JudgeRun.id.desc()))  # type: ignore[union-attr]
    if version_id is not None:
        query = query.where(JudgeRun.version_id == version_id)
    if rubric_version_id is not None:
        query = query.where(JudgeRun.rubric_version_id == rubric_version_id)
    if mode is not None:
        query = query.where(JudgeRun.mode == mode)
    rows = session.exec(query).all()
    counts: dict[int, dict[str, int]] = {}
    ids = [jr.id for jr, *_ in rows]
    if ids:
        for jid, status, n in session.exec(
            select(Judgment.judge_run_id, Judgment.status, func.count())
            .where(Judgment.judge_run_id.in_(ids)).group_by(Judgment.judge_run_id, Judgment.status)  # type: ignore[attr-defined]
        ).all():
            counts.setdefault(jid, {})[status] = int(n)
    out = []
    for jr, rname, rhash, sname, number in rows:
        c = counts.get(jr.id, {})
        out.append({"id": jr.id, "set": f"{sname}@{number}", "rubric": rname, "rubric_version": rhash[:12],
                    "judge_model": jr.judge_model, "mode": jr.mode, "source": jr.source, "status": jr.status,
                    "judgments": sum(c.values()), "scored": c.get("scored", 0), "unscored": c.get("unscored", 0),
                    "started_at": jr.started_at, "finished_at": jr.finished_at})
    return out


def pick_judge_run(session: Session, version_id: int, rubric_version_id: int, judge_run_id: int | None,
                   mode: str | None = None) -> tuple[JudgeRun | None, str | None]:
    """The judge run a command works on: the one asked for, or the latest for this version and rubric (of
    `mode` when given, else pointwise when there is one, else pairwise). Returns the run and, when it was picked
    by default, a sentence saying which one and how to choose another."""
    if judge_run_id is not None:
        return session.get(JudgeRun, judge_run_id), None
    modes = [mode] if mode else ["pointwise", "pairwise"]
    for m in modes:
        run = session.exec(select(JudgeRun).where(JudgeRun.version_id == version_id,
                                                  JudgeRun.rubric_version_id == rubric_version_id,
                                                  JudgeRun.mode == m).order_by(JudgeRun.id.desc())).first()  # type: ignore[union-attr]
        if run is not None:
            total = session.exec(select(func.count()).select_from(JudgeRun).where(
                JudgeRun.version_id == version_id, JudgeRun.rubric_version_id == rubric_version_id)).one()
            return run, (f"using judge run {run.id} ({run.mode}, judge {run.judge_model}, started "
                         f"{str(run.started_at)[:19]}): the latest {run.mode} run of {total} for this set and rubric; "
                         "choose another with --judge-run (list them with `ownbench judge-runs list`)")
    return None, None
