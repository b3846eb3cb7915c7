"""The answers production already paid for become runs: an OpenAI Batch output matched to its input by
`custom_id`, and the responses a Langfuse trace or a LangSmith payload logged, with tokens, cost and latency."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import FIXTURES
from sqlmodel import Session, select

from storage.models import Candidate, Item, Output, Run
from tests.conftest_loopback import ownbench_cli

REAL = FIXTURES / "real_exports"


def outputs_of(engine, run_id: int) -> dict[str, Output]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        rows = s.exec(select(Output, Item).join(Item, Item.id == Output.item_id).where(Output.run_id == run_id))
        return {item.item_key: out for out, item in rows}


def test_batch_output_becomes_a_run_matched_by_custom_id(engine, tmp_path: Path) -> None:
    batch_in = shutil.copy(REAL / "openai_batch" / "responses_batch_input.jsonl", tmp_path / "batch_input.jsonl")
    ownbench_cli("ingest", batch_in, "--name", "qa", cwd=tmp_path, check=True)
    # the output file lists answers in completion order, not input order; one request failed
    out = tmp_path / "batch_output.jsonl"
    out.write_text("\n".join(json.dumps(x) for x in [
        {"id": "batch_req_2", "custom_id": "qa-T-002", "error": None, "response": {
            "status_code": 200, "request_id": "req_2", "body": {
                "id": "resp_2", "object": "response", "model": "gpt-5.4-nano-2026-03-01", "status": "completed",
                "output": [{"type": "reasoning", "summary": []},
                           {"type": "message", "role": "assistant", "content": [
                               {"type": "output_text", "text": "damaged_delivery; asks for a photo, then a replacement."}]}],
                "usage": {"input_tokens": 118, "output_tokens": 14, "total_tokens": 132}}}},
        {"id": "batch_req_1", "custom_id": "qa-T-001", "error": None, "response": {
            "status_code": 500, "request_id": "req_1", "body": {"error": {"message": "The server had an error"}}}},
    ]) + "\n", encoding="utf-8")
    proc = ownbench_cli("runs", "import", str(out), "--candidate", "nightly", "--set", "qa", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["format"] == "batch" and info["imported"] == 2 and info["items"] == 2
    assert info["candidate"] == "nightly" and info["not_in_version"] == 0
    outs = outputs_of(engine, info["run_id"])
    assert outs["qa-T-002"].text == "damaged_delivery; asks for a photo, then a replacement."
    assert (outs["qa-T-002"].prompt_tokens, outs["qa-T-002"].completion_tokens) == (118, 14)
    assert outs["qa-T-001"].text is None and outs["qa-T-001"].error == "batch error 500: The server had an error"
    with Session(engine) as s:
        cand = s.exec(select(Candidate).where(Candidate.name == "nightly")).one()
        assert cand.model == "gpt-5.4-nano-2026-03-01"

    # a line without custom_id is refused with its line, and nothing is stored
    bad = tmp_path / "bad_output.jsonl"
    bad.write_text(out.read_text(encoding="utf-8") + json.dumps({"id": "x", "custom_id": "", "response": {}}) + "\n")
    proc = ownbench_cli("runs", "import", str(bad), "--candidate", "other", "--set", "qa", cwd=tmp_path)
    assert proc.returncode == 2 and f"{bad}:3: no custom_id" in proc.stderr
    with Session(engine) as s:
        assert s.exec(select(Candidate).where(Candidate.name == "other")).first() is None


def test_langfuse_trace_answers_become_a_run_with_tokens_cost_and_latency(engine, tmp_path: Path) -> None:
    trace = shutil.copy(REAL / "langfuse_traces" / "pydantic-ai-tools-2025-12-04.json", tmp_path / "trace.json")
    proc = ownbench_cli("ingest", trace, "--name", "jokes", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = ownbench_cli("runs", "import", trace, "--candidate", "production", "--set", "jokes", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    # 4 generations, 3 distinct prompts: the repeated prompt's second answer is counted, not stored twice
    assert info["format"] == "langfuse" and info["imported"] == 3 and info["repeated"] == 1
    logged = {o["id"]: o for o in json.loads(Path(trace).read_text(encoding="utf-8"))["observations"]}
    outs = outputs_of(engine, info["run_id"])
    call = logged["eb0cc14cf7943ad5"]["output"][0]["parts"][0]  # the critic answered with a tool call
    assert call["type"] == "tool_call" and outs["eb0cc14cf7943ad5"].text == (
        f"final_result({json.dumps(call['arguments'])})")
    joke = outs["8976b072313c51f2"]
    assert joke.text == "Why do programmers hate nature?  \nIt has too many bugs!" and joke.finish_reason == "stop"
    assert (joke.prompt_tokens, joke.completion_tokens) == (502, 14)
    assert joke.cost_usd == logged["8976b072313c51f2"]["totalCost"]
    assert joke.latency_ms == 1283.0  # endTime − startTime of the generation
    with Session(engine) as s:
        run = s.get(Run, info["run_id"])
        assert run.source == "imported" and s.get(Candidate, run.candidate_id).model == "gpt-4o-mini-2024-07-18"


def test_agent_loop_trace_answers_become_a_run(engine, tmp_path: Path) -> None:
    # the loop's second call logged no user turn: it continues the first, so both prompts are the question
    trace = shutil.copy(REAL / "langfuse_traces" / "microsoft-agent-2025-10-14.json", tmp_path / "agent.json")
    proc = ownbench_cli("ingest", trace, "--name", "agent", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["items"] == 1
    proc = ownbench_cli("runs", "import", trace, "--candidate", "production", "--set", "agent", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["imported"] == 1 and info["repeated"] == 1
    outs = outputs_of(engine, info["run_id"])
    assert outs["c6b8d4db5f0eac82"].text == 'get_weather({"location": "Portland"})'  # the first call's answer


def test_langsmith_payload_answer_becomes_a_run(engine, tmp_path: Path) -> None:
    payload = shutil.copy(REAL / "langsmith_runs" / "langsmith_py_wrap_openai_.json", tmp_path / "payload.json")
    ownbench_cli("ingest", payload, "--name", "howdy", cwd=tmp_path, check=True)
    proc = ownbench_cli("runs", "import", payload, "--candidate", "prod", "--set", "howdy", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    out = outputs_of(engine, info["run_id"])["d0d84d31-923d-4cb5-94a8-40a0a0087578"]
    assert out.text == "Howdy! How can I assist you today?" and out.finish_reason == "stop"
    assert (out.prompt_tokens, out.completion_tokens) == (9, 9) and round(out.latency_ms, 3) == 1118.333
