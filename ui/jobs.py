"""Background runs started from the app: `ownbench run … --job ID` / `ownbench judge … --job ID` as detached
subprocesses (the same code path as the CLI). Their state lives in the Job table, so a browser reload, a
closed tab or a restarted app server changes nothing about them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import Engine

from storage.db import project_dir
from storage.jobs import create_job, request_cancel, update_job

CLI = [sys.executable, "-c", "from ownbench.cli import main; main()"]
JUDGE_MODEL_ENV = "OWNBENCH_JUDGE_MODEL"
JUDGE_API_BASE_ENV = "OWNBENCH_JUDGE_API_BASE"
JUDGE_API_KEY_ENV = "OWNBENCH_JUDGE_API_KEY_ENV"
HOW_TO_CONFIGURE_JUDGE = (
    "No judge is configured. Set `OWNBENCH_JUDGE_MODEL` to a LiteLLM model string (e.g. `openai/gpt-4o-mini`) "
    "with the provider's key in its usual variable (e.g. `OPENAI_API_KEY`) before starting the app, or run the "
    "local judge with `make local-judge` and use the judge model `openai/qwen2.5-coder-0.5b` with API base "
    "`http://127.0.0.1:8090/v1` (a weak judge: good to try the whole path, not to trust). You can also type a "
    "judge model below."
)


def log_dir() -> Path:
    from storage.db import data_home

    return data_home() / "jobs"


def start(engine: Engine, kind: str, args: list[str], secrets: dict[str, str] | None = None) -> int:
    """Create the job, then start `ownbench <args> --job ID` detached; returns the job id.

    `secrets` (provider keys from `.streamlit/secrets.toml`) reach the process as environment variables only,
    never its arguments, the job row or its log; a variable already set in the environment wins."""
    job_id = create_job(engine, kind, {"argv": list(args)})
    argv = [*CLI, *args, "--job", str(job_id)]
    log_dir().mkdir(parents=True, exist_ok=True)
    log_path = log_dir() / f"job-{job_id}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=str(project_dir()), env={**(secrets or {}), **os.environ})
    update_job(engine, job_id, pid=proc.pid, message=f"started (pid {proc.pid})")
    return job_id


def cancel(engine: Engine, job_id: int) -> None:
    """Ask the running process to stop after its current call; it marks the job cancelled itself."""
    request_cancel(engine, job_id)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child of this server stays a zombie until reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def log_tail(job_id: int, lines: int = 30) -> str:
    path = log_dir() / f"job-{job_id}.log"
    if not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 8000))
        text = fh.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def judge_from_env() -> dict[str, str]:
    cfg = {"model": os.environ.get(JUDGE_MODEL_ENV, "").strip()}
    if os.environ.get(JUDGE_API_BASE_ENV):
        cfg["api_base"] = os.environ[JUDGE_API_BASE_ENV].strip()
    if os.environ.get(JUDGE_API_KEY_ENV):
        cfg["api_key_env"] = os.environ[JUDGE_API_KEY_ENV].strip()
    return cfg
