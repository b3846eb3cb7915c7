"""Ingest benchmark: 1,000,000 log records built from the real ShareGPT prompts in ../shared/data (varied, with
exact and near duplicates, some multi-turn), then read + dedupe + sample 300 + freeze into a fresh SQLite
database. Prints records/s and peak RSS. Target on the 2-core reference machine: < 60 s and < 1.5 GB.

Cases (each in its own process, so that each peak RSS is its own):
    openai  1,000,000 OpenAI chat JSONL lines
    otel    1,000,000 OpenTelemetry GenAI spans in OTLP JSON (`gen_ai.input.messages` with parts, system
            instructions apart), 100 spans per export request a line as the collector's file exporter writes

    .venv/bin/python bench/ingest.py [--case all|openai|otel] [--lines 1000000] [--sample 300] [--keep DIR]
                                     [--logs FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# shared/ beside the checkout (or beside the folder of checkouts, for a worktree)
SHAREGPT = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
                ROOT.parent / "shared") / "data" / "chat_logs" / "sharegpt_first_prompts_2978.json"

PREFIXES = ["", "", "", "Please help: ", "Quick question. ", "Hi! ", "Context: ticket {n}. ", "[{n}] "]
SUFFIXES = ["", "", "", " Thanks!", " Please be concise.", " Answer in bullet points.", " (ref {n})", " ASAP"]


def generate(path: Path, lines: int, seed: int = 0) -> None:
    """Production-like lines: each picks a real prompt and varies it; about a third are exact repeats, a
    third differ only in case/spacing or by a short prefix/suffix (near duplicates), the rest mix two prompts
    or carry a follow-up turn."""
    rng = random.Random(seed)
    data = json.loads(SHAREGPT.read_text(encoding="utf-8"))
    prompts = [d["conversations"][0]["value"] for d in data
               if d["conversations"][0]["from"] == "human" and d["conversations"][0]["value"].strip()]
    rng.shuffle(prompts)  # the file is sorted by length; popularity should not follow length
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(lines):
            p = prompts[int(rng.paretovariate(1.2) * 7) % len(prompts)]  # a few prompts are very common
            r = rng.random()
            if r < 0.33:
                msgs = [{"role": "user", "content": p}]
            elif r < 0.45:
                msgs = [{"role": "user", "content": "  " + p.upper() if rng.random() < 0.5 else p.replace(" ", "  ")}]
            elif r < 0.75:
                n = rng.randrange(10**6)
                msgs = [{"role": "user", "content": rng.choice(PREFIXES).format(n=n) + p + rng.choice(SUFFIXES).format(n=n)}]
            elif r < 0.93:
                q = rng.choice(prompts)
                cut_p, cut_q = p[: rng.randrange(20, 400)], q[rng.randrange(0, max(1, len(q) // 2)):][:600]
                msgs = [{"role": "user", "content": f"{cut_p}\n\n{cut_q}"}]
            else:
                msgs = [{"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": p[:800]},
                        {"role": "assistant", "content": "(answer)"},
                        {"role": "user", "content": rng.choice(prompts)[:300]}]
            rec = {"id": f"req-{i}", "messages": msgs, "metadata": {"user": f"u{rng.randrange(5000)}", "app": "support"}}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


SPANS_PER_LINE = 100


def _attr(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def generate_otel(path: Path, spans: int, seed: int = 0) -> None:
    """The same prompt mix as `generate`, as GenAI client spans: messages with parts in
    `gen_ai.input.messages` (JSON text), the system prompt in `gen_ai.system_instructions`, usage, models."""
    rng = random.Random(seed)
    data = json.loads(SHAREGPT.read_text(encoding="utf-8"))
    prompts = [d["conversations"][0]["value"] for d in data
               if d["conversations"][0]["from"] == "human" and d["conversations"][0]["value"].strip()]
    rng.shuffle(prompts)
    models = ["gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5"]
    system = json.dumps([{"type": "text", "content": "You are a helpful assistant."}])

    def part(text: str) -> dict:
        return {"type": "text", "content": text}

    t = 1_760_000_000_000_000_000
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, spans, SPANS_PER_LINE):
            batch = []
            for i in range(start, min(spans, start + SPANS_PER_LINE)):
                p = prompts[int(rng.paretovariate(1.2) * 7) % len(prompts)]
                r = rng.random()
                if r < 0.33:
                    msgs = [{"role": "user", "parts": [part(p)]}]
                elif r < 0.75:
                    n = rng.randrange(10**6)
                    msgs = [{"role": "user", "parts": [part(rng.choice(PREFIXES).format(n=n) + p
                                                            + rng.choice(SUFFIXES).format(n=n))]}]
                elif r < 0.93:
                    q = rng.choice(prompts)
                    msgs = [{"role": "user", "parts": [part(p[: rng.randrange(20, 400)] + "\n\n" + q[:600])]}]
                else:
                    msgs = [{"role": "user", "parts": [part(p[:800])]},
                            {"role": "assistant", "parts": [{"type": "tool_call", "id": f"call_{i}", "name": "search",
                                                             "arguments": {"q": p[:40]}}]},
                            {"role": "tool", "parts": [{"type": "tool_call_response", "id": f"call_{i}",
                                                        "response": "(result)"}]},
                            {"role": "assistant", "parts": [part("(answer)")]},
                            {"role": "user", "parts": [part(rng.choice(prompts)[:300])]}]
                model = rng.choice(models)
                t += rng.randrange(10**6, 10**9)
                batch.append({
                    "traceId": f"{rng.getrandbits(128):032x}", "spanId": f"{i:016x}", "name": f"chat {model}",
                    "kind": 3, "startTimeUnixNano": str(t), "endTimeUnixNano": str(t + rng.randrange(10**8, 10**10)),
                    "attributes": [
                        _attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", "openai"),
                        _attr("gen_ai.request.model", model), _attr("gen_ai.request.temperature", 0.2),
                        _attr("gen_ai.system_instructions", system),
                        _attr("gen_ai.input.messages", json.dumps(msgs, ensure_ascii=False)),
                        _attr("gen_ai.usage.input_tokens", rng.randrange(10, 2000)),
                        _attr("gen_ai.usage.output_tokens", rng.randrange(10, 800)),
                    ],
                    "status": {},
                })
            request = {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "support-bot")]},
                                          "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                                                          "spans": batch}]}]}
            fh.write(json.dumps(request, ensure_ascii=False) + "\n")


def cpu_s() -> float:
    """CPU seconds of this process and of the worker processes it has waited for."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=("all", "openai", "otel"), default="all")
    ap.add_argument("--lines", type=int, default=1_000_000, help="log records (lines, or spans for otel)")
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--keep", type=Path, default=None, help="write the log file here and keep it")
    ap.add_argument("--logs", type=Path, default=None, help="ingest this file (written earlier with --keep) "
                                                             "instead of generating one")
    args = ap.parse_args()
    if args.case == "all":
        for case in ("openai", "otel"):
            print(f"== {case}", flush=True)
            cmd = [sys.executable, __file__, "--case", case, "--lines", str(args.lines), "--sample", str(args.sample)]
            subprocess.run(cmd + (["--keep", str(args.keep)] if args.keep else []), check=True)
        return

    from evalsets.ingest import IngestOptions, ingest
    from storage.db import make_engine, session_scope

    with tempfile.TemporaryDirectory() as tmp:
        logs = args.logs or (args.keep or Path(tmp)) / ("logs.jsonl" if args.case == "openai" else "otlp_spans.jsonl")
        unit = "lines" if args.case == "openai" else "spans"
        if args.logs is None:
            logs.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            (generate if args.case == "openai" else generate_otel)(logs, args.lines)
            print(f"generated {args.lines:,} {unit} ({logs.stat().st_size / 1e6:,.0f} MB) in "
                  f"{time.perf_counter() - t0:.1f} s (not timed below)")
        else:
            print(f"ingesting {logs} ({logs.stat().st_size / 1e6:,.0f} MB; --lines {args.lines:,})")
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        # wall and CPU seconds per stage: on a shared machine the CPU time tells what the code costs
        stages: dict[str, tuple[float, float]] = {}
        last = {"stage": None, "t": time.perf_counter(), "cpu": cpu_s()}

        def progress(stage: str, done: int, total) -> None:
            now, cpu = time.perf_counter(), cpu_s()
            if stage != last["stage"]:
                if last["stage"]:
                    stages[last["stage"]] = (now - last["t"], cpu - last["cpu"])
                last.update(stage=stage, t=now, cpu=cpu)

        t0, c0 = time.perf_counter(), cpu_s()
        with session_scope(engine) as s:
            result = ingest(s, [logs], "bench", IngestOptions(fmt=args.case, sample=args.sample, seed=0), progress)
        elapsed, cpu = time.perf_counter() - t0, cpu_s() - c0
        stages[last["stage"]] = (time.perf_counter() - last["t"], cpu_s() - last["cpu"])
    rep = result.report
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ingest + dedupe + sample {args.sample} + freeze: {elapsed:.1f} s, {args.lines / elapsed:,.0f} records/s, "
          f"peak RSS {peak_mb:,.0f} MB; CPU {cpu:.1f} s; load average {os.getloadavg()[0]:.2f}")
    print("stages: " + ", ".join(f"{k} {w:.1f} s (CPU {c:.1f} s)" for k, (w, c) in stages.items()))
    print(f"records {rep['records_read']:,}; exact duplicates {rep['duplicates']['exact']:,}; "
          f"distinct {rep['pool']['distinct_records']:,}; reservoir {rep['pool']['reservoir_sampled']} "
          f"(cap {rep['pool']['cap']:,}); near duplicates in pool {rep['duplicates']['near']:,}; "
          f"pool {rep['pool']['size']:,}; clusters {rep['sampling'].get('k')}; items {result.version.item_count}")
    print(f"targets: < 60 s {'met' if elapsed < 60 else 'MISSED'}; < 1.5 GB {'met' if peak_mb < 1536 else 'MISSED'}")


if __name__ == "__main__":
    main()
