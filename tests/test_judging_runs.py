"""Judge runs over a frozen version: provenance on every judgment, resume without repeated calls, pairwise,
jobs, and the `ownbench judge` command. Judges are SIMULATED by the loopback server (scripted verdicts)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from gateway.client import ModelConfig
from judging.prompt import load_template
from judging.rubric import load_rubric
from judging.runs import JudgeRequest, judge_version
from storage.db import session_scope
from storage.models import EvalSetVersion, JudgeRun, Judgment, RubricVersion
from tests.loopback import LoopbackServer
from tests.test_judging_support import RUBRICS, first_position_bias, prefers, scripted, seed_version, verdict_reply

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with LoopbackServer(hang_s=5) as srv:
        srv.script = scripted([{"reasoning": "Addresses the request.", "verdict": 4}])
        yield srv


def request(server: LoopbackServer, version_id: int, rubric: str = "helpfulness", **kw) -> JudgeRequest:  # type: ignore[no-untyped-def]
    cfg = ModelConfig("openai/sim-judge", api_base=server.base_url, max_concurrency=kw.pop("concurrency", 4),
                      timeout_s=kw.pop("timeout_s", 10), max_attempts=1,
                      input_price_per_mtok=1.0, output_price_per_mtok=2.0)
    return JudgeRequest(version_id=version_id, rubric=load_rubric(RUBRICS / f"{rubric}.yaml"), judge=cfg, **kw)


def seeded(engine, **kw) -> tuple[int, dict[str, int]]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return seed_version(s, **kw)


def test_pointwise_run_stores_every_judgment_with_its_provenance(engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    version_id, _ = seeded(engine, n_items=3)
    summary = asyncio.run(judge_version(engine, request(server, version_id)))
    assert (summary.total, summary.judged, summary.scored, summary.unscored) == (6, 6, 6, 0)
    assert summary.status == "done" and not summary.resumed
    assert server.request_count == 6
    usage = server.usage_totals()
    with Session(engine) as s:
        version = s.get(EvalSetVersion, version_id)
        run = s.get(JudgeRun, summary.judge_run_id)
        rubric_row = s.get(RubricVersion, run.rubric_version_id)  # type: ignore[union-attr]
        rows = list(s.exec(select(Judgment).where(Judgment.judge_run_id == run.id)))  # type: ignore[union-attr]
    assert run.status == "done" and run.template_hash == load_template("pointwise").hash  # type: ignore[union-attr]
    assert run.params["candidates"] == ["claude-v1", "gpt-4"]  # type: ignore[union-attr,index]
    assert len(rows) == 6 and len({(r.output_id, r.criterion_id) for r in rows}) == 6
    for r in rows:
        assert (r.status, r.verdict, r.score) == ("scored", "4", 4.0)
        assert r.version_hash == version.content_hash  # type: ignore[union-attr]
        assert r.rubric_hash == rubric_row.content_hash  # type: ignore[union-attr]
        assert r.judge_model == "openai/sim-judge" and r.template_hash == run.template_hash  # type: ignore[union-attr]
        assert r.latency_ms and r.prompt_tokens and r.completion_tokens and r.cost_usd and r.request_hash
    assert sum(r.prompt_tokens for r in rows) == usage["prompt_tokens"]  # type: ignore[misc]
    assert summary.spend_usd == pytest.approx(sum(r.cost_usd for r in rows))  # type: ignore[misc]


def test_a_compact_template_makes_its_own_judge_run_with_its_own_version(engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    version_id, _ = seeded(engine, n_items=2)
    full = asyncio.run(judge_version(engine, request(server, version_id)))
    compact = asyncio.run(judge_version(engine, request(server, version_id, template="pointwise_compact")))
    assert compact.judge_run_id != full.judge_run_id and compact.judged == 4
    with Session(engine) as s:
        run = s.get(JudgeRun, compact.judge_run_id)
        rows = list(s.exec(select(Judgment).where(Judgment.judge_run_id == compact.judge_run_id)))
    assert run.template_hash == load_template("pointwise", "pointwise_compact").hash  # type: ignore[union-attr]
    assert {r.template_hash for r in rows} == {run.template_hash}  # type: ignore[union-attr]
    # the compact prompt's system message, not the full one's (which opens with "You are an impartial evaluator")
    assert server.bodies[-1]["messages"][0]["content"].startswith("You grade ONE assistant response")


def test_resume_judges_only_what_is_missing_and_makes_no_repeated_calls(engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    version_id, _ = seeded(engine, n_items=4)
    first = asyncio.run(judge_version(engine, request(server, version_id, limit=2)))
    assert (first.judged, first.status) == (4, "stopped")
    calls_after_first = server.request_count
    second = asyncio.run(judge_version(engine, request(server, version_id, use_cache=False)))
    assert second.resumed and second.judge_run_id == first.judge_run_id
    assert (second.total, second.already, second.judged) == (8, 4, 4)
    assert server.request_count == calls_after_first + 4  # only the missing units, even without the cache
    third = asyncio.run(judge_version(engine, request(server, version_id)))
    assert (third.already, third.judged) == (8, 0) and server.request_count == calls_after_first + 4
    with Session(engine) as s:
        rows = list(s.exec(select(Judgment).where(Judgment.judge_run_id == first.judge_run_id)))
        assert len(rows) == 8 and s.get(JudgeRun, first.judge_run_id).status == "done"  # type: ignore[union-attr]


def test_a_new_run_reuses_cached_answers_and_pays_nothing(sqlite_engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    version_id, _ = seeded(sqlite_engine, n_items=2)
    first = asyncio.run(judge_version(sqlite_engine, request(server, version_id)))
    calls = server.request_count
    again = asyncio.run(judge_version(sqlite_engine, request(server, version_id, new_run=True)))
    assert again.judge_run_id != first.judge_run_id and again.judged == 4
    assert server.request_count == calls and again.spend_usd == 0.0 and first.spend_usd > 0
    with Session(sqlite_engine) as s:
        rows = list(s.exec(select(Judgment).where(Judgment.judge_run_id == again.judge_run_id)))
    assert all(r.details["cached"] for r in rows)  # type: ignore[index]


def test_unscored_judgments_keep_their_reason_and_can_be_retried(sqlite_engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    version_id, _ = seeded(sqlite_engine, n_items=2)
    server.script = lambda body: {"fault": "500", "message": "overloaded"}
    first = asyncio.run(judge_version(sqlite_engine, request(server, version_id)))
    assert (first.scored, first.unscored) == (0, 4) and first.unscored_reasons == {"provider error": 4}
    with Session(sqlite_engine) as s:
        rows = list(s.exec(select(Judgment)))
    assert all(r.status == "unscored" and r.verdict is None and r.score is None for r in rows)
    assert all("overloaded" in (r.unscored_reason or "") for r in rows)
    server.script = scripted([{"reasoning": "fine", "verdict": 3}])
    retry = asyncio.run(judge_version(sqlite_engine, request(server, version_id, retry_unscored=True, use_cache=False)))
    assert retry.resumed and (retry.judged, retry.scored) == (4, 4)
    with Session(sqlite_engine) as s:
        assert len(s.exec(select(Judgment)).all()) == 8  # append-only: the unscored rows stay


def test_outputs_without_text_and_items_without_reference_are_skipped_and_counted(sqlite_engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    version_id, _ = seeded(sqlite_engine, n_items=3, missing={"gpt-4": [0]})
    server.script = scripted([{"reasoning": "matches", "verdict": "pass"}])
    summary = asyncio.run(judge_version(sqlite_engine, request(server, version_id, "correctness")))
    assert summary.skipped == {"no output text": 1}
    assert summary.total == 5 and summary.scored == 5
    body = json.dumps(server.bodies[0]["messages"])
    assert "reference-" in body  # the reference answer is shown for a criterion that uses it


def test_pairwise_run_judges_each_pair_in_both_orders(engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    version_id, runs = seeded(engine, n_items=2, candidates=("gpt-4", "claude-v1", "vicuna-7b-v1.5"))
    server.script = first_position_bias
    summary = asyncio.run(judge_version(engine, request(server, version_id, mode="pairwise",
                                                          candidates=["gpt-4", "claude-v1", "vicuna-7b-v1.5"])))
    assert summary.total == 6 and server.request_count == 12  # 3 pairs × 2 items, each asked twice
    with Session(engine) as s:
        run = s.get(JudgeRun, summary.judge_run_id)
        rows = list(s.exec(select(Judgment).where(Judgment.judge_run_id == summary.judge_run_id)))
    assert run.mode == "pairwise" and run.template_hash == load_template("pairwise").hash  # type: ignore[union-attr]
    assert all(r.output_b_id is not None and r.output_id != r.output_b_id for r in rows)
    assert all((r.verdict, r.score, r.details["disagreement"]) == ("tie", 0.5, True) for r in rows)  # type: ignore[index]


def test_pairwise_consistent_preference_wins(sqlite_engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    version_id, _ = seeded(sqlite_engine, n_items=2, candidates=("gpt-4", "claude-v1"))
    from storage.models import Output

    with session_scope(sqlite_engine) as s:  # give claude-v1's answers a marker the simulated judge prefers
        for o in s.exec(select(Output)):
            if o.run_id == 2:
                o.text = "MARKER " + (o.text or "")
                s.add(o)
    server.script = prefers("MARKER")
    summary = asyncio.run(judge_version(sqlite_engine, request(server, version_id, mode="pairwise",
                                                                 candidates=["gpt-4", "claude-v1"])))
    with Session(sqlite_engine) as s:
        rows = list(s.exec(select(Judgment)))
    assert summary.scored == 2 and all((r.verdict, r.score) == ("B", 0.0) for r in rows)
    assert all(r.details["disagreement"] is False for r in rows)  # type: ignore[index]


def test_job_progress_and_cancellation(sqlite_engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    from storage.jobs import create_job, request_cancel
    from storage.models import Job

    version_id, _ = seeded(sqlite_engine, n_items=6)
    job_id = create_job(sqlite_engine, "judge", {"set": "arena@1"})

    def slow_then_cancel(body: dict) -> dict:
        if server.request_count == 2:
            request_cancel(sqlite_engine, job_id)
        return {**verdict_reply(body, {"reasoning": "ok", "verdict": 3}), "delay": 0.3}

    server.script = slow_then_cancel
    summary = asyncio.run(judge_version(sqlite_engine, request(server, version_id, concurrency=1, job_id=job_id)))
    assert summary.status == "cancelled" and 0 < summary.judged < 12
    with Session(sqlite_engine) as s:
        job = s.get(Job, job_id)
        assert job.status == "cancelled" and job.pid == os.getpid()  # type: ignore[union-attr]
        assert job.progress["done"] == summary.judged and job.progress["total"] == 12  # type: ignore[index,union-attr]
        assert len(s.exec(select(Judgment)).all()) == summary.judged  # what was paid for is kept


# --- the command --------------------------------------------------------------------------------------------


def cli(*args: str, env_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OWNBENCH_DATABASE_URL": env_url}
    return subprocess.run([str(Path(sys.executable).with_name("ownbench")), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_cli_never_sends_more_calls_than_the_server_has_slots(sqlite_engine, server: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from ownbench.cli import app

    seeded(sqlite_engine, n_items=4)
    server.slots, server.latency = 1, 0.05  # a llama.cpp-like server with one slot (GET /props)
    args = ["judge", "--set", "arena@1", "--rubric", str(RUBRICS / "helpfulness.yaml"), "--judge", "openai/sim-judge",
            "--api-base", server.base_url, "--concurrency", "8", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert server.request_count == 8 and server.max_in_flight == 1
    assert f"judge server {server.base_url} has 1 slot(s): 1 call(s) in flight, timeout 300 s" in result.output
    server.slots = None  # a server that says nothing keeps the concurrency asked for
    server.reset()
    again = CliRunner().invoke(app, [*args, "--new-run", "--no-cache"])
    assert again.exit_code == 0, again.output
    assert server.max_in_flight > 1 and "slot" not in again.output


def test_cli_judges_resumes_and_exports(sqlite_engine, server: LoopbackServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from ownbench.cli import app

    seeded(sqlite_engine, n_items=2)
    args = ["judge", "--set", "arena@1", "--rubric", str(RUBRICS / "helpfulness.yaml"), "--judge", "openai/sim-judge",
            "--api-base", server.base_url, "--concurrency", "4", "--json"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert (data["judged"], data["scored"], data["version"]) == (4, 4, "arena@1")
    again = runner.invoke(app, args)
    assert json.loads(again.stdout)["judged"] == 0 and server.request_count == 4
    # the app names a stored rubric version as NAME@HASHPREFIX: the same judge run, nothing to do
    by_name = runner.invoke(app, [*args[:3], "--rubric", data["rubric"], *args[5:]])
    assert by_name.exit_code == 0, by_name.output
    assert json.loads(by_name.stdout)["judge_run_id"] == data["judge_run_id"] and server.request_count == 4
    out = tmp_path / "judgments.jsonl"
    exported = runner.invoke(app, ["judgments", "export", "--set", "arena@1", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and {r["verdict"] for r in rows} == {"4"} and rows[0]["judge"] == "openai/sim-judge"
    listed = runner.invoke(app, ["rubrics", "list", "--json"])
    assert [r["name"] for r in json.loads(listed.stdout)["stored"]] == ["helpfulness"]


def test_cli_bad_usage_exits_2_with_a_clear_message(sqlite_engine, server: LoopbackServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = str(sqlite_engine.url)
    seeded(sqlite_engine, n_items=1)
    # A long path would push the location past the terminal width; it must still print on one line.
    deep = tmp_path / ("rubrics-kept-in-a-folder-with-a-long-name" * 2)
    deep.mkdir()
    (deep / "bad_type.yaml").write_text((ROOT / "tests/fixtures/rubrics/bad_type.yaml").read_text())
    bad_rubric = cli("judge", "--set", "arena@1", "--rubric", str(deep / "bad_type.yaml"), env_url=url)
    assert bad_rubric.returncode == 2
    assert f"{deep / 'bad_type.yaml'}:6: criteria[0].type: 'ordnal' is not one of" in bad_rubric.stderr
    assert "did you mean 'ordinal'?" in bad_rubric.stderr
    no_set = cli("judge", "--set", "nope@1", "--rubric", str(RUBRICS / "helpfulness.yaml"), env_url=url)
    assert no_set.returncode == 2 and "no eval set version 'nope@1'" in no_set.stderr
    bad_cand = cli("judge", "--set", "arena@1", "--rubric", str(RUBRICS / "helpfulness.yaml"), "--candidates", "gpt-5",
                   "--api-base", server.base_url, env_url=url)
    assert bad_cand.returncode == 2 and "candidate 'gpt-5' is not a known candidate" in bad_cand.stderr
    assert "claude-v1, gpt-4" in bad_cand.stderr
    bad_crit = cli("judge", "--set", "arena@1", "--rubric", str(RUBRICS / "helpfulness.yaml"), "--criteria", "tone",
                   env_url=url)
    assert bad_crit.returncode == 2 and "no criterion 'tone'" in bad_crit.stderr
    pair_one = cli("judge", "--set", "arena@1", "--rubric", str(RUBRICS / "helpfulness.yaml"), "--mode", "pairwise",
                   "--candidates", "gpt-4", "--api-base", server.base_url, env_url=url)
    assert pair_one.returncode == 2 and "at least two candidates" in pair_one.stderr
    validate = cli("rubrics", "validate", str(RUBRICS / "safety.yaml"), str(ROOT / "tests/fixtures/rubrics/levels_gap.yaml"),
                   env_url=url)
    assert validate.returncode == 2 and "levels_gap.yaml:9: criteria[0].levels: level 3" in validate.stderr
    assert "ok " in validate.stdout and "safety@" in validate.stdout
    with Session(sqlite_engine) as s:
        assert s.exec(select(JudgeRun)).all() == []  # nothing started by any of the refused commands


def test_one_criterion_after_the_other_so_consecutive_prompts_share_their_system_message(
        sqlite_engine, server: LoopbackServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = (RUBRICS / "helpfulness.yaml").read_text().replace("$schema=rubric.schema.json", "")
    text += ("  - id: concise\n    question: Is the response free of padding?\n    type: binary\n"
             "    uses_reference: false\n")
    path = tmp_path / "two.yaml"
    path.write_text(text)
    version_id, _ = seeded(sqlite_engine, n_items=3)
    # SIMULATED judge: the loopback answers any verdict request with a verdict valid for both criteria' shapes
    server.script = lambda body: {"content": json.dumps(
        {"reasoning": "Short and on topic.",
         "verdict": "pass" if "free of padding" in body["messages"][0]["content"] else 4})}
    req = request(server, version_id, concurrency=1, structured="json")
    req.rubric = load_rubric(path)
    summary = asyncio.run(judge_version(sqlite_engine, req))
    assert summary.judged == 12 and summary.scored == 12
    systems = [b["messages"][0]["content"] for b in server.bodies]
    changes = sum(a != b for a, b in zip(systems, systems[1:]))
    assert len(set(systems)) == 2 and changes == 1  # 6 units of one criterion, then 6 of the other
