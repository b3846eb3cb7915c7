"""A run killed with SIGKILL halfway resumes where it stopped: no output lost, no finished item called again
(counted by the loopback server). Also: budget stops, job cancellation, re-runs served from the cache."""
from __future__ import annotations

import collections
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from storage.models import Item, Job, Output, Run
from tests.conftest_loopback import OWNBENCH, freeze_items, ownbench_cli, write_candidates
from tests.loopback import LoopbackServer


def prompt_counts(server: LoopbackServer) -> collections.Counter:
    return collections.Counter(b["messages"][-1]["content"] for b in server.bodies)


def outputs_by_prompt(engine, run_id: int) -> dict[str, Output]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        rows = s.exec(select(Output, Item).join(Item, Item.id == Output.item_id).where(Output.run_id == run_id)).all()
        return {item.messages[-1]["content"]: out for out, item in rows}


def gateway_runs(engine) -> list[Run]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return list(s.exec(select(Run).where(Run.source == "gateway").order_by(Run.id)))


@pytest.mark.slow
def test_sigkill_halfway_then_resume_loses_nothing_and_repeats_nothing(
    engine, loopback: LoopbackServer, tmp_path: Path
) -> None:
    n = 60
    _, label = freeze_items(engine, n)
    write_candidates(tmp_path / "candidates.yaml", loopback, concurrency=4, input_price_per_mtok=1.0,
                     output_price_per_mtok=3.0)
    loopback.latency = 0.05
    proc = subprocess.Popen([OWNBENCH, "run", "--set", label, "--candidate", "loop"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while loopback.request_count < n // 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    runs = gateway_runs(engine)
    assert len(runs) == 1 and runs[0].status == "running"  # killed: nobody got to mark it
    before = outputs_by_prompt(engine, runs[0].id)
    assert 0 < len(before) < n, "the kill should land halfway"
    assert all(o.error is None for o in before.values())
    calls_before = prompt_counts(loopback)

    # Resume without the cache, so that only the run's own bookkeeping can keep finished items from being called.
    done = ownbench_cli("run", "--set", label, "--candidate", "loop", "--no-cache", cwd=tmp_path, check=True)
    assert f"run {runs[0].id} resuming" in done.stderr

    runs_after = gateway_runs(engine)
    assert [r.id for r in runs_after] == [runs[0].id] and runs_after[0].status == "done"
    after = outputs_by_prompt(engine, runs[0].id)
    assert len(after) == n and all(o.error is None for o in after.values())
    for prompt, out in before.items():  # 0 outputs lost: the same rows, untouched
        assert after[prompt].id == out.id and after[prompt].text == out.text == f"echo: {prompt}"
    calls = prompt_counts(loopback)
    for prompt in before:  # 0 repeated calls for finished items
        assert calls[prompt] == 1, prompt
    assert set(calls) == {f"question number {i}" for i in range(n)}
    # Only items in flight at the kill (at most the concurrency) were called twice.
    assert sum(c - 1 for c in calls.values()) <= 4
    assert sum(calls.values()) == loopback.request_count and sum(calls_before.values()) < loopback.request_count


def test_budget_stops_before_it_is_exceeded_and_resume_continues(
    sqlite_engine, loopback: LoopbackServer, tmp_path: Path
) -> None:
    n = 40
    _, label = freeze_items(sqlite_engine, n)
    # Each answer: ~6 prompt tokens at $1,000/M and 4 completion tokens at $1,000/M ≈ $0.01; max_tokens bounds it.
    write_candidates(tmp_path / "candidates.yaml", loopback, concurrency=2, params={"max_tokens": 8},
                     input_price_per_mtok=1000.0, output_price_per_mtok=1000.0)
    first = ownbench_cli("run", "--set", label, "--candidate", "loop", "--max-cost", "0.1", "--json",
                         cwd=tmp_path, check=True)
    import json

    res = json.loads(first.stdout)
    assert res["status"] == "stopped" and "budget" in res["reason"]
    assert 0 < res["outputs"] < n
    assert res["spend_usd"] <= 0.1
    served = loopback.usage_totals()
    assert res["spend_usd"] == pytest.approx((served["prompt_tokens"] + served["completion_tokens"]) * 1000 / 1e6)

    second = json.loads(ownbench_cli("run", "--set", label, "--candidate", "loop", "--max-cost", "10", "--json",
                                     cwd=tmp_path, check=True).stdout)
    assert second["run_id"] == res["run_id"] and second["resumed"] and second["status"] == "done"
    assert second["outputs"] == n and loopback.request_count == n


def test_unknown_price_refuses_a_budget(sqlite_engine, loopback: LoopbackServer, tmp_path: Path) -> None:
    _, label = freeze_items(sqlite_engine, 3)
    write_candidates(tmp_path / "candidates.yaml", loopback)
    proc = ownbench_cli("run", "--set", label, "--candidate", "loop", "--max-cost", "1", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--max-cost needs a price" in proc.stderr and "input_price_per_mtok" in proc.stderr
    assert loopback.request_count == 0


def test_job_progress_and_cancel(sqlite_engine, loopback: LoopbackServer, tmp_path: Path) -> None:
    from storage.jobs import create_job, request_cancel

    n = 80
    _, label = freeze_items(sqlite_engine, n)
    write_candidates(tmp_path / "candidates.yaml", loopback, concurrency=2)
    loopback.latency = 0.1
    job_id = create_job(sqlite_engine, "run", {"set": label, "candidate": "loop"})
    proc = subprocess.Popen([OWNBENCH, "run", "--set", label, "--candidate", "loop", "--job", str(job_id)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while loopback.request_count < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    request_cancel(sqlite_engine, job_id)
    proc.wait(30)
    assert proc.returncode == 0
    with Session(sqlite_engine) as s:
        job = s.get(Job, job_id)
        run = s.exec(select(Run)).one()
        rows = len(s.exec(select(Output).where(Output.run_id == run.id)).all())
    assert job is not None and job.status == "cancelled" and job.pid == proc.pid
    assert run.status == "cancelled"
    assert 30 <= rows < n and loopback.request_count < n
    assert job.progress is not None and job.progress["total"] == n and job.progress["done"] >= 20


def test_rerun_of_a_finished_run_is_served_from_cache(sqlite_engine, loopback: LoopbackServer, tmp_path: Path) -> None:
    _, label = freeze_items(sqlite_engine, 10)
    write_candidates(tmp_path / "candidates.yaml", loopback, input_price_per_mtok=1.0, output_price_per_mtok=1.0)
    ownbench_cli("run", "--set", label, "--candidate", "loop", cwd=tmp_path, check=True)
    assert loopback.request_count == 10
    ownbench_cli("run", "--set", label, "--candidate", "loop", cwd=tmp_path, check=True)
    assert loopback.request_count == 10  # a new run, every answer from the cache
    runs = gateway_runs(sqlite_engine)
    assert len(runs) == 2 and all(r.status == "done" for r in runs)
    second = outputs_by_prompt(sqlite_engine, runs[1].id)
    assert len(second) == 10 and all(o.cached for o in second.values())
    ownbench_cli("run", "--set", label, "--candidate", "loop", "--no-cache", cwd=tmp_path, check=True)
    assert loopback.request_count == 20


def test_candidate_config_change_starts_a_new_run(sqlite_engine, loopback: LoopbackServer, tmp_path: Path) -> None:
    _, label = freeze_items(sqlite_engine, 6)
    loopback.queue_faults(["401"])  # the first call fails on auth: the run stops "failed", unfinished
    write_candidates(tmp_path / "candidates.yaml", loopback, concurrency=1)
    failed = ownbench_cli("run", "--set", label, "--candidate", "loop", cwd=tmp_path)
    assert failed.returncode == 1 and "OPENAI_API_KEY" in failed.stdout
    assert loopback.request_count == 1  # auth stops the run at once
    write_candidates(tmp_path / "candidates.yaml", loopback, concurrency=1, params={"temperature": 0.5})
    ownbench_cli("run", "--set", label, "--candidate", "loop", cwd=tmp_path, check=True)
    runs = gateway_runs(sqlite_engine)
    assert [r.status for r in runs] == ["failed", "done"]  # another config: not a resume of the failed run
    assert runs[1].config["params"] == {"temperature": 0.5}


def test_job_of_a_bad_invocation_is_marked_failed(sqlite_engine, loopback: LoopbackServer, tmp_path: Path) -> None:
    from storage.jobs import create_job

    write_candidates(tmp_path / "candidates.yaml", loopback)
    job_id = create_job(sqlite_engine, "run", {"set": "nope@1", "candidate": "loop"})
    proc = ownbench_cli("run", "--set", "nope@1", "--candidate", "loop", "--job", str(job_id), cwd=tmp_path)
    assert proc.returncode == 2 and "no eval set version 'nope@1'" in proc.stderr
    with Session(sqlite_engine) as s:
        job = s.get(Job, job_id)
    assert job is not None and job.status == "failed" and "nope@1" in (job.message or "")
