"""Batch mode: a judge run submitted through the loopback server's Batch API (real HTTP: Files + Batches),
killed between submission and completion, resumed by polling. The judge is SIMULATED (scripted verdicts)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from storage.db import session_scope
from storage.models import JudgeRun, Judgment, ProviderBatch
from tests.conftest_loopback import OWNBENCH, ownbench_cli
from tests.loopback import LoopbackServer
from tests.test_judging_support import scripted, seed_version

RUBRIC = """\
name: batch-rubric
description: Resolves the request, and stays short.
criteria:
  - id: resolves
    question: Does the response resolve the user's request?
    type: binary
  - id: short
    question: At most 2000 characters?
    type: check
    check:
      max_chars: 2000
"""


def _judge_args(srv: LoopbackServer, rubric: Path) -> list[str]:
    return ["judge", "--set", "arena", "--rubric", str(rubric), "--judge", "openai/sim-judge", "--api-base",
            srv.base_url, "--input-price", "1", "--output-price", "2", "--batch"]


def test_batch_judge_run_killed_between_submit_and_completion_resumes_by_polling(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sqlite_engine) as s:
        seed_version(s, n_items=4)
    rubric = tmp_path / "batch.yaml"
    rubric.write_text(RUBRIC, encoding="utf-8")
    with LoopbackServer() as srv:
        srv.script = scripted([{"reasoning": "It does.", "verdict": "pass"}])
        srv.batch_hold = True  # the provider has not finished yet
        srv.batch_fail = lambda line: "the model is overloaded" if line["custom_id"] == "r1" else None
        proc = subprocess.Popen([OWNBENCH, *_judge_args(srv, rubric), "--wait", "600", "--poll-interval", "0.2"],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "COLUMNS": "200"})
        row = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with Session(sqlite_engine) as s:
                row = s.exec(select(ProviderBatch)).first()
            if row is not None and row.batch_id is not None:
                break
            time.sleep(0.2)
        assert row is not None and row.batch_id is not None, proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)  # killed while it polls: the batch is at the provider, nothing stored
        proc.wait(timeout=30)
        assert (srv.files_uploaded, srv.batches_created, srv.request_count) == (1, 1, 0)
        with Session(sqlite_engine) as s:
            assert s.exec(select(Judgment)).first() is None
            assert s.exec(select(ProviderBatch)).one().status == "in_progress"

        # still running at the provider: the next invocation polls and submits nothing
        res = ownbench_cli(*_judge_args(srv, rubric), "--json", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        state = json.loads(res.stdout)
        assert (state["submitted_now"], state["status"], state["summary"]) == (0, "in_progress", None)
        with Session(sqlite_engine) as s:
            run = s.get(JudgeRun, state["judge_run_id"])
            assert run.status == "batch" and row.batch_id in (run.status_reason or "")

        srv.batch_hold = False  # the provider finishes
        res = ownbench_cli(*_judge_args(srv, rubric), "--json", cwd=tmp_path)
        assert res.returncode == 1 and "unscored" in res.stderr, res.stderr  # the failed line: said by the exit code
        state = json.loads(res.stdout)
        assert state["status"] == "stored" and state["submitted_now"] == 0
        assert (srv.files_uploaded, srv.batches_created, srv.request_count) == (1, 1, 0)  # nothing twice, no live call
        served = [x for x in srv.served if x.get("batch")]
        assert len(served) == 7 and len(srv.batch_lines) == 8  # 8 outputs; line r1 failed

        # a third invocation finds everything stored and submits nothing
        again = json.loads(ownbench_cli(*_judge_args(srv, rubric), "--json", "--allow-errors", cwd=tmp_path,
                                        check=True).stdout)
        assert again["status"] == "nothing to submit" and srv.files_uploaded == 1 and srv.batches_created == 1

    with Session(sqlite_engine) as s:
        rows = list(s.exec(select(Judgment).where(Judgment.judge_run_id == state["judge_run_id"])))
        batch = s.exec(select(ProviderBatch)).one()
        run = s.get(JudgeRun, state["judge_run_id"])
    assert batch.status == "ingested" and batch.counts == {"total": 8, "completed": 7, "failed": 1}
    assert run.status == "done"
    graded = [j for j in rows if j.criterion_id == "resolves"]
    assert len(graded) == 8 and len([j for j in rows if j.criterion_id == "short"]) == 8
    failed = [j for j in graded if j.status == "unscored"]
    assert len(failed) == 1 and "batch line failed" in failed[0].unscored_reason and "overloaded" in failed[0].unscored_reason
    scored = [j for j in graded if j.status == "scored"]
    assert len(scored) == 7 and {j.verdict for j in scored} == {"pass"}
    for j in scored:  # batch pricing: half of $1 / $2 per million tokens
        assert j.cost_usd == pytest.approx(0.5 * (j.prompt_tokens * 1e-6 + j.completion_tokens * 2e-6))
    assert sum(j.prompt_tokens for j in scored) == sum(x["usage"]["prompt_tokens"] for x in served)
    assert state["summary"]["spend_usd"] == pytest.approx(sum(j.cost_usd for j in scored))


def test_batch_answers_are_cached_for_live_calls_at_the_price_paid(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A live judge run of the same requests afterwards is served from the cache and reports the batch price."""
    import asyncio

    from gateway.client import ModelConfig
    from judging.batch import judge_batch
    from judging.rubric import parse_rubric
    from judging.runs import JudgeRequest, judge_version

    with session_scope(sqlite_engine) as s:
        version_id, _ = seed_version(s, n_items=2)
    rubric = parse_rubric(RUBRIC, "batch.yaml")
    with LoopbackServer() as srv:
        srv.script = scripted([{"reasoning": "It does.", "verdict": "pass"}])
        cfg = ModelConfig("openai/sim-judge", api_base=srv.base_url, max_attempts=1,
                          input_price_per_mtok=1.0, output_price_per_mtok=2.0)
        state = judge_batch(sqlite_engine, JudgeRequest(version_id=version_id, rubric=rubric, judge=cfg))
        assert state.status == "stored" and state.submitted_now == 4 and state.summary.scored == 8
        live = asyncio.run(judge_version(sqlite_engine, JudgeRequest(version_id=version_id, rubric=rubric, judge=cfg,
                                                                     new_run=True)))
        assert srv.request_count == 0  # every answer came from the cache
    with Session(sqlite_engine) as s:
        rows = list(s.exec(select(Judgment).where(Judgment.judge_run_id == live.judge_run_id,
                                                  Judgment.criterion_id == "resolves")))
    assert live.spend_usd == 0 and len(rows) == 4
    for j in rows:
        assert j.cost_usd == pytest.approx(0.5 * (j.prompt_tokens * 1e-6 + j.completion_tokens * 2e-6))


def test_batch_mode_without_a_batch_api_says_what_to_do(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sqlite_engine) as s:
        seed_version(s, n_items=1)
    rubric = tmp_path / "batch.yaml"
    rubric.write_text(RUBRIC, encoding="utf-8")
    res = ownbench_cli("judge", "--set", "arena", "--rubric", str(rubric), "--judge", "anthropic/claude-3-haiku",
                       "--batch", cwd=tmp_path)
    assert res.returncode == 2
    assert "batch mode for anthropic/claude-3-haiku is not supported" in res.stderr
    with Session(sqlite_engine) as s:
        assert s.exec(select(ProviderBatch)).first() is None and s.exec(select(JudgeRun)).first() is None


def test_candidate_run_through_the_batch_api(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`ownbench run --batch`: submitted once, polled, stored with batch pricing; a failed line is an error row."""
    from storage.models import Output, Run
    from tests.conftest_loopback import freeze_items, write_candidates

    freeze_items(sqlite_engine, 5)
    with LoopbackServer() as srv:
        srv.batch_hold = True
        srv.batch_fail = lambda line: "context length exceeded" if line["custom_id"].endswith("3") else None
        cands = write_candidates(tmp_path / "candidates.yaml", srv, input_price_per_mtok=1.0, output_price_per_mtok=2.0)
        args = ["run", "--set", "demo", "--candidate", "loop", "--candidates-file", str(cands), "--batch", "--json"]
        first = json.loads(ownbench_cli(*args, cwd=tmp_path, check=True).stdout)
        assert first["submitted_now"] == 5 and first["status"] == "in_progress"
        second = json.loads(ownbench_cli(*args, cwd=tmp_path, check=True).stdout)
        assert second["submitted_now"] == 0 and second["status"] == "in_progress"
        srv.batch_hold = False
        third = json.loads(ownbench_cli(*args, cwd=tmp_path, check=True).stdout)
        assert third["status"] == "stored" and third["run_id"] == first["run_id"]
        assert (srv.files_uploaded, srv.batches_created, srv.request_count) == (1, 1, 0)
    with Session(sqlite_engine) as s:
        outs = list(s.exec(select(Output).where(Output.run_id == first["run_id"])))
        run = s.get(Run, first["run_id"])
    failed = [o for o in outs if o.error]
    ok = [o for o in outs if not o.error]
    assert len(outs) == 5 and len(failed) == 1 and "context length exceeded" in failed[0].error
    for o in ok:
        assert o.text.startswith("echo: question number")
        assert o.cost_usd == pytest.approx(0.5 * (o.prompt_tokens * 1e-6 + o.completion_tokens * 2e-6))
    assert run.status == "done"


def test_result_lines_are_split_on_newlines_only() -> None:
    """Answers may hold U+2028 or other characters str.splitlines() would split a JSONL line on."""
    from gateway.batch import parse_results

    ok = {"custom_id": "a", "error": None, "response": {"status_code": 200, "body": {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "one\u2028two\x1cthree\x85"}}]}}}
    bad = {"custom_id": "b", "error": {"code": "server_error", "message": "overloaded"}, "response": None}
    text = json.dumps(ok, ensure_ascii=False) + "\n" + json.dumps(bad) + "\n"
    results = parse_results(text)
    assert results["a"].body["choices"][0]["message"]["content"] == "one\u2028two\x1cthree\x85"
    assert results["b"].body is None and "overloaded" in (results["b"].error or "")


def test_a_batch_created_but_not_recorded_is_found_not_created_again(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    """A restart between creating the batch and recording its id: the batch is found by its input file."""
    from gateway.client import ModelConfig
    from judging.batch import judge_batch
    from judging.rubric import parse_rubric
    from judging.runs import JudgeRequest

    with session_scope(sqlite_engine) as s:
        version_id, _ = seed_version(s, n_items=2)
    rubric = parse_rubric(RUBRIC, "batch.yaml")
    with LoopbackServer() as srv:
        srv.script = scripted([{"reasoning": "It does.", "verdict": "pass"}])
        srv.batch_hold = True
        cfg = ModelConfig("openai/sim-judge", api_base=srv.base_url, input_price_per_mtok=1.0, output_price_per_mtok=2.0)
        req = JudgeRequest(version_id=version_id, rubric=rubric, judge=cfg)
        first = judge_batch(sqlite_engine, req)
        assert first.status == "in_progress" and first.submitted_now == 4
        with session_scope(sqlite_engine) as s:  # as if the process died before the batch id was written
            row = s.exec(select(ProviderBatch)).one()
            row.batch_id, row.status = None, "submitting"
            s.add(row)
        srv.batch_hold = False
        second = judge_batch(sqlite_engine, req)
        assert second.status == "stored" and second.submitted_now == 0 and second.batch_id == first.batch_id
        assert (srv.files_uploaded, srv.batches_created) == (1, 1)
        assert second.summary.scored == 8
