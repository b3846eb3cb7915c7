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
    .venv/bin/python bench/judge.py --local [API_BASE] [--n 20]   # the local judge: s/judgment, unscored share
        (with llama.cpp's timings from local-judge/server.log: prefix reuse, prompt and generation tokens/s,
        and the server's CPU seconds per judgment, about what a judgment takes on an idle core)

Prompts: real Chatbot Arena prompts and recorded answers (lm-sys/FastChat arena_hard_1k, Apache-2.0), read
from ../shared/data at run time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
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


# --- the local judge (make local-judge) -----------------------------------------------------------------------

DEMO = ROOT / "ownbench" / "demo_data" / "arena_hard_1k"
DEMO_MODELS = ("gpt-4", "claude-v1", "gpt-3.5-turbo", "vicuna-13b-v1.5", "Llama-2-70b-chat")


def demo_units(n: int) -> list[tuple[list[dict], str, str]]:
    """(conversation, answer, model) of the demo set: the shipped prompts with the five models' recorded
    answers in turn, so that the judge sees answers of every quality."""
    import gzip

    def rows(path: Path) -> list[dict]:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]

    questions = rows(DEMO / "question.jsonl.gz")
    answers = {m: {r["question_id"]: r["choices"][0]["turns"][0] for r in rows(DEMO / "model_answer" / f"{m}.jsonl.gz")}
               for m in DEMO_MODELS}
    out = []
    for i in range(n):
        q, model = questions[i // len(DEMO_MODELS)], DEMO_MODELS[i % len(DEMO_MODELS)]
        out.append(([{"role": "user", "content": q["turns"][0]}], answers[model].get(q["question_id"], ""), model))
    return out


_PREFIX = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")
_PERF = re.compile(r"(prompt eval|\beval) time =\s*([\d.]+) ms /\s*(\d+) (?:tokens|runs)")


def server_timings(log: Path, offset: int) -> dict[str, Any]:
    """What llama.cpp says in `make local-judge`'s log about the requests after `offset`: prompt tokens reused
    from the previous prompt (the prefix cache) and evaluated, and prompt / generation speed."""
    if not log.exists():
        return {}
    with log.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", errors="replace")
    hits = [(int(a), int(b)) for a, b in _PREFIX.findall(text)]
    sums = {"prompt eval": [0.0, 0], "eval": [0.0, 0]}
    perf = _PERF.findall(text)
    requests = sum(kind.startswith("prompt") for kind, _, _ in perf)
    for kind, ms, count in perf:
        sums["prompt eval" if kind.startswith("prompt") else "eval"][0] += float(ms)
        sums["prompt eval" if kind.startswith("prompt") else "eval"][1] += int(count)
    (p_ms, p_n), (g_ms, g_n) = sums["prompt eval"], sums["eval"]
    reused, evaluated = sum(h for h, _ in hits), sum(r for _, r in hits)
    return {"requests_with_prefix_hit": len(hits),
            "prefix_reused_share": round(reused / (reused + evaluated), 3) if reused + evaluated else None,
            "prompt_tokens_evaluated_mean": round(p_n / requests) if requests else None,
            "prompt_eval_tok_s": round(p_n / p_ms * 1000, 1) if p_ms else None,
            "prompt_eval_s_total": round(p_ms / 1000, 1),
            "generation_tok_s": round(g_n / g_ms * 1000, 1) if g_ms else None,
            "generation_s_total": round(g_ms / 1000, 1)}


def server_cpu_s(log: Path | None) -> float | None:
    """CPU seconds used so far by the server whose pid `make local-judge` wrote beside its log (Linux /proc). Per
    judgment, it is about what a judgment takes on an idle core, whatever else the machine runs."""
    try:
        pid = int((log.parent / "server.pid").read_text()) if log else 0  # type: ignore[union-attr]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_local(base: str, n: int, max_tokens: int, samples_shown: int, template: str | None,
                    server_log: Path | None = None) -> dict[str, Any]:
    """N helpfulness judgments by the local judge, at most as many in flight as the server has slots."""
    from gateway.client import Gateway, ModelConfig
    from gateway.servers import server_slots
    from judging.judge import Judge
    from judging.local_model import model_string
    from judging.rubric import load_rubric, rubric_file

    rubric = load_rubric(rubric_file("helpfulness")[1])  # type: ignore[index]
    crit = rubric.criteria[0]
    slots = server_slots(base) or 1
    gw = Gateway(None, use_cache=False)
    cfg = ModelConfig(model_string(), api_base=base, max_concurrency=slots, timeout_s=300, max_attempts=1,
                      params={"temperature": 0, "max_tokens": max_tokens})
    from judging.prompt import load_template

    judge = Judge(gw, cfg, structured="json_object_schema", max_retries=2,
                  templates={"pointwise": load_template("pointwise", template)})
    work = demo_units(n)
    sem = asyncio.Semaphore(slots)

    async def one(convo: list[dict], out: str, model: str):  # type: ignore[no-untyped-def]
        async with sem:
            return model, await judge.judge(rubric, crit, conversation=convo, output=out)

    offset = server_log.stat().st_size if server_log and server_log.exists() else 0
    load_before, cpu_before = os.getloadavg()[0], server_cpu_s(server_log)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(c, o, m) for c, o, m in work))
    wall = time.perf_counter() - t0
    cpu_after = server_cpu_s(server_log)
    await gw.aclose()
    outs = [o for _, o in results]
    unscored = [o for o in outs if o.status != "scored"]
    reasons: dict[str, int] = {}
    for o in unscored:
        reasons[o.unscored_reason or "?"] = reasons.get(o.unscored_reason or "?", 0) + 1
    tokens = [(o.prompt_tokens or 0, o.completion_tokens or 0, o.calls) for o in outs]
    report = {"template": template or "pointwise", "n": n, "slots": slots, "wall_s": round(wall, 1), "s_per_judgment": round(wall / n, 2),
              "unscored_share": round(len(unscored) / n, 3), "unscored_reasons": reasons,
              "prompt_tokens_mean": round(sum(t[0] for t in tokens) / n), "completion_tokens_mean":
              round(sum(t[1] for t in tokens) / n), "calls_per_judgment": round(sum(t[2] for t in tokens) / n, 2),
              "clipped_share": round(sum(bool(o.details.get("clipped_chars")) for o in outs) / n, 3),
              "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if server_log is not None:
        report["server"] = server_timings(server_log, offset)
        if cpu_before is not None and cpu_after is not None:
            report["server"]["cpu_s_per_judgment"] = round((cpu_after - cpu_before) / n, 2)
    print(json.dumps(report), flush=True)
    print("\nA sample of verdicts with their rationales (check that each rationale supports its score):")
    for model, o in results[:samples_shown]:
        text = (o.rationale or o.unscored_reason or "").replace("\n", " ")
        print(f"  [{model:>16}] {o.verdict or 'unscored':>8}  {text[:220]}")
    return report


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
    ap.add_argument("--local", nargs="?", const="http://127.0.0.1:8090/v1", default=None, metavar="API_BASE",
                    help="judge the demo data with the local judge of `make local-judge` instead (default --n 20)")
    ap.add_argument("--max-tokens", type=int, default=256, help="--local: bound on each verdict's tokens")
    ap.add_argument("--show", type=int, default=10, help="--local: verdicts with rationales to print")
    ap.add_argument("--server-log", type=Path, default=ROOT / "local-judge" / "server.log",
                    help="--local: the server's log, for llama.cpp's timings (prefix reuse, tokens/s)")
    ap.add_argument("--template", action="append", help="--local: judge prompt(s) to compare (pointwise, "
                    "pointwise_compact; repeatable; default pointwise_compact)")
    args = ap.parse_args()
    if args.serve:
        serve(args.port, args.latency)
        return
    if args.local:
        n = args.n if args.n != 1000 else 20
        for template in args.template or ["pointwise_compact"]:
            asyncio.run(run_local(args.local, n, args.max_tokens, args.show, None if template == "pointwise" else template,
                                  args.server_log))
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
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
