"""Background jobs (candidate runs and judge runs) whose state lives in the database, so that the app can show
progress after a browser reload and cancel a run that another process is executing."""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.models import Job, utcnow


def create_job(engine: Engine, kind: str, args: dict[str, Any]) -> int:
    with Session(engine) as s:
        job = Job(kind=kind, args=args)
        s.add(job)
        s.commit()
        assert job.id is not None
        return job.id


def update_job(
    engine: Engine,
    job_id: int,
    *,
    status: str | None = None,
    progress: dict[str, Any] | None = None,
    message: str | None = None,
    pid: int | None = None,
) -> None:
    """Record progress (done, total, errors, spend_usd …) or a new status; called by the running process."""
    with Session(engine) as s:
        job = s.get(Job, job_id)
        if job is None:
            return
        if status is not None:
            job.status = status
        if progress is not None:
            job.progress = {**(job.progress or {}), **progress}
        if message is not None:
            job.message = message
        if pid is not None:
            job.pid = pid
        job.updated_at = utcnow()
        s.add(job)
        s.commit()


def request_cancel(engine: Engine, job_id: int) -> None:
    with Session(engine) as s:
        job = s.get(Job, job_id)
        if job is not None and job.status in ("queued", "running"):
            job.cancel_requested = True
            job.updated_at = utcnow()
            s.add(job)
            s.commit()


def cancel_requested(engine: Engine, job_id: int) -> bool:
    """Polled by the running process between calls; it then stops cleanly and marks the job cancelled."""
    with Session(engine) as s:
        job = s.get(Job, job_id)
        return bool(job and job.cancel_requested)
