"""Judge throughput: N judge calls, one criterion, C in flight, against an OpenAI-compatible server that
answers every request with a valid verdict after a fixed latency (tests/loopback.py, in its own process).

Compared in the same run, on the same prompts and server:
  ownbench   Instructor over the gateway (judging.judge.Judge), as `ownbench judge` uses it;
  pipeline   the whole `ownbench judge` path: plan from the database, judge, write judgments (SQLite);
  litellm    plain Instructor over LiteLLM: instructor.from_litellm(litellm.acompletion).
  batch      `ownbench judge --batch`: build every request, upload one file, create and poll the batch (the
             loopback server answers it at once), cache the answers and store the judgments. Its wall time is
             not comparable (a real batch takes up to 24 h); its client CPU per judgment is the figure.

Ideal time = ceil(N / C) × latency; ratio = ideal / wall time (1.0 = only the server's latency counts).
CPU ms per judgment = this process's CPU time / N (the server's CPU is not counted).

    .venv/bin/python bench/judge.py [--n 1000] [--concurrency 50] [--latency 0.1] [--skip-litellm]

Prompts: real Chatbot Arena prompts and recorded answers (lm-sys/FastChat arena_hard_1k, Apache-2.0), read
from ../shared/data at run time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "arena_hard_1k"


# --- the server (a separate process) ---------------------------------------------------------------------


def serve(port: int, latency: float) -> None:
    from tests.loopback import LoopbackServer

    def script(body: dict) -> dict:
        args = json.dumps({"reasoning": "It answers the question directly and correctly.", "verdict": 4})
        tools = body.get("tools")
        if tools:
            name = tools[0]["function"]["name"]
            return {"tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}]}
        return {"content": args}

    server = LoopbackServer(port=port, latency=latency, script=script, record=False)

    async def run() -> None:
        await server._startup()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the loopback server did not start")
    return proc, f"http://127.0.0.1:{port}/v1"


# --- workloads -----------------------------------------------------------------------------------------------


def samples(n: int) -> list[tuple[list[dict], str]]:
    questions = [json.loads(line) for line in (DATA / "question.jsonl").read_text().splitlines()]
    answers = {}
    for line in (DATA / "model_answer" / "gpt-4.jsonl").read_text().splitlines():
        r = json.loads(line)
        answers[r["question_id"]] = r["choices"][0]["turns"][0]
    out = []
    for i in range(n):
        q = questions[i % len(questions)]
        # distinct prompts, so that nothing could be served from any cache
        out.append(([{"role": "user", "content": f"{q['turns'][0]}\n(#{i})"}], answers.get(q["question_id"], "")))
    return out


async def run_ownbench(base: str, n: int, conc: int) -> tuple[float, float, int]:
    from gateway.client import Gateway, ModelConfig
    from judging.judge import Judge
    from judging.rubric import load_rubric

    rubric = load_rubric(ROOT / "rubrics" / "helpfulness.yaml")
    crit = rubric.criteria[0]
    gw = Gateway(None, use_cache=False)
    cfg = ModelConfig("openai/bench-judge", api_base=base, max_concurrency=conc, timeout_s=30, max_attempts=2)
    judge = Judge(gw, cfg)
    work = samples(n)
    for convo, out in work[:conc]:  # warm-up: connections, first-call imports
        await judge.judge(rubric, crit, conversation=convo, output=out + " warm")
    queue = list(work)
    scored = 0

    async def worker() -> None:
        nonlocal scored
        while queue:
            convo, out = queue.pop()
            o = await judge.judge(rubric, crit, conversation=convo, output=out)
            scored += o.status == "scored"

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    await gw.aclose()
    return wall, cpu, scored


def _seeded(n: int):  # type: ignore[no-untyped-def]
    """A SQLite database with one version of n items and one run whose outputs are the recorded answers."""
    from evalsets.freeze import ItemDraft, freeze
    from storage.db import make_engine, session_scope
    from storage.models import Candidate, Output, Run

    tmp = tempfile.mkdtemp(prefix="ownbench-bench-")
    engine = make_engine(f"sqlite:///{tmp}/bench.db")
    work = samples(n)
    with session_scope(engine) as s:
        version = freeze(s, "bench", [ItemDraft(key=f"q{i}", messages=m) for i, (m, _) in enumerate(work)])
        cand = Candidate(name="gpt-4", model="openai/gpt-4", config_hash="0" * 64)
        s.add(cand)
        s.flush()
        run = Run(candidate_id=cand.id, version_id=version.id, status="done")  # type: ignore[arg-type]
        s.add(run)
        s.flush()
        from evalsets.freeze import items_of

        for item, (_, text) in zip(items_of(s, version), work):
            s.add(Output(run_id=run.id, item_id=item.id, text=text or "empty"))  # type: ignore[arg-type]
        vid = version.id
    return engine, vid


def run_pipeline(base: str, n: int, conc: int) -> tuple[float, float, int]:
    from gateway.client import ModelConfig
    from judging.rubric import load_rubric
    from judging.runs import JudgeRequest, judge_version

    engine, vid = _seeded(n)
    cfg = ModelConfig("openai/bench-judge", api_base=base, max_concurrency=conc, timeout_s=30, max_attempts=2)
    req = JudgeRequest(version_id=vid, rubric=load_rubric(ROOT / "rubrics" / "helpfulness.yaml"), judge=cfg,  # type: ignore[arg-type]
                       use_cache=False)
    c0, t0 = time.process_time(), time.perf_counter()
    summary = asyncio.run(judge_version(engine, req))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    return wall, cpu, summary.scored


def run_batch(base: str, n: int, conc: int) -> tuple[float, float, int]:
    from gateway.client import ModelConfig
    from judging.batch import judge_batch
    from judging.rubric import load_rubric
    from judging.runs import JudgeRequest

    engine, vid = _seeded(n)
    cfg = ModelConfig("openai/bench-judge", api_base=base, max_concurrency=conc, timeout_s=120, max_attempts=2)
    req = JudgeRequest(version_id=vid, rubric=load_rubric(ROOT / "rubrics" / "helpfulness.yaml"), judge=cfg,  # type: ignore[arg-type]
                       use_cache=False)
    c0, t0 = time.process_time(), time.perf_counter()
    state = judge_batch(engine, req, wait_s=600, poll_s=0.2)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    return wall, cpu, state.summary.scored if state.summary else 0


async def run_litellm(base: str, n: int, conc: int) -> tuple[float, float, int]:
    import instructor
    import litellm

    from judging.prompt import render_prompt
    from judging.rubric import load_rubric
    from judging.verdicts import verdict_model

    rubric = load_rubric(ROOT / "rubrics" / "helpfulness.yaml")
    crit = rubric.criteria[0]
    model = verdict_model(crit)
    client = instructor.from_litellm(litellm.acompletion)
    work = samples(n)

    async def one(convo: list[dict], out: str) -> bool:
        prompt = render_prompt(rubric, crit, messages=convo, output=out)
        r = await client.chat.completions.create(model="openai/bench-judge", api_base=base, api_key="unused",
                                                 messages=prompt.messages, response_model=model, max_retries=2,
                                                 temperature=0, max_tokens=1024)
        return r.verdict == 4  # type: ignore[attr-defined]

    sem = asyncio.Semaphore(conc)

    async def bounded(convo: list[dict], out: str) -> bool:
        async with sem:
            return await one(convo, out)

    await asyncio.gather(*(bounded(c, o + " warm") for c, o in work[:conc]))
    c0, t0 = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(bounded(c, o) for c, o in work))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, sum(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.port, args.latency)
        return
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    ideal = math.ceil(args.n / args.concurrency) * args.latency
    proc, base = start_server(args.latency)
    rows: list[dict[str, Any]] = []
    try:
        variants = [("ownbench (Instructor over the gateway)", lambda: asyncio.run(run_ownbench(base, args.n, args.concurrency)))]
        if not args.skip_pipeline:
            variants.append(("ownbench judge run (plan + judge + store, SQLite)", lambda: run_pipeline(base, args.n, args.concurrency)))
        if not args.skip_batch:
            variants.append(("ownbench judge --batch (build, submit, poll, store)", lambda: run_batch(base, args.n, args.concurrency)))
        if not args.skip_litellm:
            variants.append(("Instructor over LiteLLM (from_litellm(acompletion))", lambda: asyncio.run(run_litellm(base, args.n, args.concurrency))))
        for name, fn in variants:
            wall, cpu, ok = fn()
            rows.append({"variant": name, "n": args.n, "scored": ok, "wall_s": round(wall, 2),
                         "ratio_to_ideal": round(ideal / wall, 2), "cpu_ms_per_judgment": round(cpu * 1000 / args.n, 2)})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"\n{args.n} judge calls, one criterion, {args.concurrency} in flight, server latency "
          f"{args.latency * 1000:.0f} ms; ideal {ideal:.2f} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'variant':55} {'wall s':>7} {'ratio':>6} {'CPU ms/judgment':>16}")
    for r in rows:
        print(f"{r['variant']:55} {r['wall_s']:>7} {r['ratio_to_ideal']:>6} {r['cpu_ms_per_judgment']:>16}")


if __name__ == "__main__":
    main()
