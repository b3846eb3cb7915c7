"""Ingest benchmark: 1,000,000 log lines built from the real ShareGPT prompts in ../shared/data (varied, with
exact and near duplicates, some multi-turn), then read + dedupe + sample 300 + freeze into a fresh SQLite
database. Prints lines/s and peak RSS. Target on the 2-core reference machine: < 60 s and < 1.5 GB.

    .venv/bin/python bench/ingest.py [--lines 1000000] [--sample 300] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHAREGPT = ROOT.parent / "shared" / "data" / "chat_logs" / "sharegpt_first_prompts_2978.json"

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--keep", type=Path, default=None, help="write the log file here and keep it")
    args = ap.parse_args()

    from evalsets.ingest import IngestOptions, ingest
    from storage.db import make_engine, session_scope

    with tempfile.TemporaryDirectory() as tmp:
        logs = (args.keep or Path(tmp)) / "logs.jsonl"
        logs.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        generate(logs, args.lines)
        gen_s = time.perf_counter() - t0
        size_mb = logs.stat().st_size / 1e6
        print(f"generated {args.lines:,} lines ({size_mb:,.0f} MB) in {gen_s:.1f} s (not timed below)")
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        stages: dict[str, float] = {}
        last = {"stage": None, "t": time.perf_counter()}

        def progress(stage: str, done: int, total) -> None:
            now = time.perf_counter()
            if stage != last["stage"]:
                if last["stage"]:
                    stages[last["stage"]] = now - last["t"]
                last.update(stage=stage, t=now)

        t0 = time.perf_counter()
        with session_scope(engine) as s:
            result = ingest(s, [logs], "bench", IngestOptions(fmt="openai", sample=args.sample, seed=0), progress)
        elapsed = time.perf_counter() - t0
        stages[last["stage"]] = time.perf_counter() - last["t"]
    rep = result.report
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ingest + dedupe + sample {args.sample} + freeze: {elapsed:.1f} s, {args.lines / elapsed:,.0f} lines/s, "
          f"peak RSS {peak_mb:,.0f} MB")
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
    print(f"records {rep['records_read']:,}; exact duplicates {rep['duplicates']['exact']:,}; "
          f"distinct {rep['pool']['distinct_records']:,}; reservoir {rep['pool']['reservoir_sampled']} "
          f"(cap {rep['pool']['cap']:,}); near duplicates in pool {rep['duplicates']['near']:,}; "
          f"pool {rep['pool']['size']:,}; clusters {rep['sampling'].get('k')}; items {result.version.item_count}")
    print(f"targets: < 60 s {'met' if elapsed < 60 else 'MISSED'}; < 1.5 GB {'met' if peak_mb < 1536 else 'MISSED'}")


if __name__ == "__main__":
    main()
