"""Analysis at scale over stored judgments, on SQLite or PostgreSQL (generated data, seeded; nothing here is real).

1. `agreement` on 100,000 units, each judged and labeled by 2 annotators (binary criterion, 2,000 bootstrap
   resamples).
2. `rank` over 1,000,000 judgments (20 candidates × 50,000 items) with 2,000 golden labels (declared uniform
   sample), 2,000 paired bootstrap resamples over items (the default).
3. `judgments import` of a 100,000-row JSONL file.

Each measured step runs in its own process; its peak resident memory (ru_maxrss from wait4, Python and
libraries included) is its own. "seconds" is the step itself, inside the process; "process" adds interpreter
start-up and imports. Seeding is not timed. Targets: agreement < 5 s and < 400 MB, rank < 10 s and < 1 GB,
import < 10 s.

Run: .venv/bin/python bench/scale.py --backend sqlite|postgres|both [--scale 0.1] [--steps agreement,rank,import]
     (SQLite: a file in a temporary directory; PostgreSQL: a database ownbench_scale_bench, dropped and created
     on the server of --postgres-url, default postgres@127.0.0.1:5432)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUBRIC = ROOT / "rubrics" / "correctness.yaml"


def _engine(url: str):  # type: ignore[no-untyped-def]
    from storage.db import make_engine

    return make_engine(url)


def _bulk(engine, table, rows: list[dict], chunk: int = 20_000) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        for i in range(0, len(rows), chunk):
            conn.execute(table.insert(), rows[i:i + chunk])


def seed(url: str, name: str, items: int, candidates: int, golden: int, annotators: int) -> dict:
    """A frozen version, one done run per candidate, a judge run with a judgment per output, and labels."""
    import numpy as np
    from sqlmodel import Session, select

    from evalsets.freeze import ItemDraft, freeze, items_of
    from judging.rubric import load_rubric, store_rubric
    from storage.models import Annotator, Candidate, JudgeRun, Judgment, Label, Output, Run

    rng = np.random.default_rng(0)
    eng = _engine(url)
    with Session(eng) as s:
        version = freeze(s, name, [ItemDraft(key=f"{name}-{i:06d}", messages=[{"role": "user", "content": f"q {i}"}])
                                   for i in range(items)])
        rv = store_rubric(s, load_rubric(RUBRIC))
        item_ids = [i.id for i in items_of(s, version)]
        runs = []
        for c in range(candidates):
            cand = Candidate(name=f"{name}-c{c:02d}", model=f"openai/{name}-c{c:02d}", config_hash=f"{name}{c}".ljust(64, "0"))
            s.add(cand)
            s.flush()
            run = Run(candidate_id=cand.id, version_id=version.id, status="done")
            s.add(run)
            s.flush()
            runs.append(run.id)
        jr = JudgeRun(version_id=version.id, rubric_version_id=rv.id, judge_model="openai/bench-judge", status="done")
        s.add(jr)
        people = [Annotator(name=f"{name}-ann{a}") for a in range(annotators)]
        s.add_all(people)
        s.commit()
        ids = {"version": version.id, "rubric": rv.id, "judge_run": jr.id, "runs": runs,
               "annotators": [p.id for p in people], "version_hash": version.content_hash,
               "rubric_hash": rv.content_hash, "label": f"{name}@{version.number}"}
    rates = np.linspace(0.55, 0.85, candidates)
    _bulk(eng, Output.__table__, [{"run_id": r, "item_id": it, "text": "x" * 40, "latency_ms": 100.0, "cost_usd": 1e-4,
                                   "attempts": 1, "cached": False} for r in runs for it in item_ids])
    with Session(eng) as s:
        outs = s.exec(select(Output.id, Output.run_id, Output.item_id).where(Output.run_id.in_(runs))).all()
    truth = {o: float(rng.random() < rates[runs.index(r)]) for o, r, _ in outs}
    jrows = []
    for o, _, it in outs:
        y = truth[o]
        j = y if rng.random() < (0.85 if y else 0.75) else 1 - y
        jrows.append({"judge_run_id": ids["judge_run"], "criterion_id": "correct", "item_id": it, "output_id": o,
                      "status": "scored", "verdict": "pass" if j else "fail", "score": j,
                      "version_hash": ids["version_hash"], "rubric_hash": ids["rubric_hash"],
                      "judge_model": "openai/bench-judge"})
    _bulk(eng, Judgment.__table__, jrows)
    del jrows
    labeled = outs if golden >= len(outs) else [outs[k] for k in rng.choice(len(outs), golden, replace=False)]
    prob = None if golden >= len(outs) else golden / len(outs)
    lrows = []
    for a in ids["annotators"]:
        for o, _, it in labeled:
            y = truth[o] if rng.random() < 0.95 else 1 - truth[o]
            lrows.append({"annotator_id": a, "rubric_version_id": ids["rubric"], "criterion_id": "correct",
                          "item_id": it, "output_id": o, "verdict": "pass" if y else "fail", "score": y,
                          "inclusion_prob": prob, "skipped": False, "flagged": False, "source": "imported"})
    _bulk(eng, Label.__table__, lrows)
    return ids


def _peak_mb() -> float:
    """This process's own peak RSS: VmHWM belongs to the address space exec created. (ru_maxrss, from getrusage or
    wait4, keeps the peak of the process that forked it, here the seeding parent, on Linux.)"""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(url: str, what: str, ids: dict, path: str | None) -> dict:
    from sqlmodel import Session

    eng = _engine(url)
    t0 = time.perf_counter()
    with Session(eng) as s:
        if what == "agreement":
            from analysis.people import CLI
            from analysis.reports import agreement_report

            rep = agreement_report(s, ids["version"], ids["rubric"], ids["judge_run"], viewer=CLI, n_boot=2000)
            c = rep.criteria[0]
            result = {"units": c["units"], "alpha_humans": (c.get("alpha_humans") or {}).get("value")}
        elif what == "rank":
            from analysis.people import CLI
            from analysis.reports import ranking_report

            rep = ranking_report(s, ids["version"], ids["rubric"], viewer=CLI, judge_run_id=ids["judge_run"])
            c = rep.criteria[0]
            result = {"candidates": len(c.get("rows", [])), "pairs": len(c.get("pairs", [])),
                      "withheld": c.get("withheld")}
        else:
            from evalsets.freeze import resolve_version
            from judging.imports import import_judgments
            from judging.rubric import load_rubric

            summary = import_judgments(s, path, version=resolve_version(s, ids["label"]),  # type: ignore[arg-type]
                                       rubric=load_rubric(RUBRIC), judge_name="external")
            s.commit()
            result = {"rows": summary.rows}
    return {"step": what, "seconds": round(time.perf_counter() - t0, 2), "peak_rss_mb": round(_peak_mb()), **result}


SIZES = {  # the sizes; --scale shrinks them for a quick profile
    "agree_items": 100_000, "rank_items": 50_000, "rank_candidates": 20, "rank_golden": 2_000, "import_rows": 100_000,
}
TARGETS = {"agreement": (5, 400), "rank": (10, 1000), "import": (10, None)}


def _postgres_url(base: str) -> str:
    """A fresh database for this benchmark on the server of `base` (dropped and created)."""
    from sqlalchemy import create_engine, text

    admin, _, _ = base.rpartition("/")
    name = "ownbench_scale_bench"
    eng = create_engine(f"{admin}/postgres", isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    eng.dispose()
    return f"{admin}/{name}"


def _run_step(url: str, what: str, ids: dict, path: Path) -> dict:
    """One measured step in a child process, which reports its own peak RSS (see `_peak_mb`)."""
    cmd = [sys.executable, __file__, "--database-url", url, "--step", what, "--ids", json.dumps(ids), "--file", str(path)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status = os.waitpid(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit(f"{what} failed:\n{stderr}")
    res = json.loads(stdout.strip().splitlines()[-1])
    res["process_seconds"] = round(wall, 2)  # interpreter start and imports included
    return res


def bench(url: str, sizes: dict, steps: list[str]) -> list[dict]:
    backend = url.split(":", 1)[0].split("+")[0]
    tmp = Path(tempfile.mkdtemp(prefix="ownbench-scale-"))
    t = time.perf_counter()
    agree = seed(url, "agree", items=sizes["agree_items"], candidates=1, golden=10**9, annotators=2)
    rank = seed(url, "rank", items=sizes["rank_items"], candidates=sizes["rank_candidates"],
                golden=sizes["rank_golden"], annotators=1) if "rank" in steps else {}
    print(f"[{backend}] seeded in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    path = tmp / "judgments.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(min(sizes["import_rows"], sizes["agree_items"])):
            fh.write(json.dumps({"item": f"agree-{i:06d}", "candidate": "agree-c00", "criterion": "correct",
                                 "verdict": "pass" if i % 3 else "fail"}) + "\n")
    out = []
    for what, ids in (("agreement", agree), ("rank", rank), ("import", agree)):
        if what not in steps:
            continue
        res = {"backend": backend, **_run_step(url, what, ids, path)}
        out.append(res)
        print(json.dumps(res), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    ap.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                    help="server for --backend postgres|both (a database ownbench_scale_bench is created there)")
    ap.add_argument("--database-url", default=None, help="use this database as is (overrides --backend)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the sizes (e.g. 0.1 for a quick profile)")
    ap.add_argument("--steps", default="agreement,rank,import")
    ap.add_argument("--step", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ids", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--file", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(step(args.database_url, args.step, json.loads(args.ids), args.file)))
        return
    sizes = {k: v if k == "rank_candidates" else max(10, int(v * args.scale)) for k, v in SIZES.items()}
    steps = args.steps.split(",")
    if args.database_url:
        urls = [args.database_url]
    else:
        backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
        urls = [f"sqlite:///{Path(tempfile.mkdtemp(prefix='ownbench-scale-')) / 'bench.db'}" if b == "sqlite"
                else _postgres_url(args.postgres_url) for b in backends]
    print(f"sizes {sizes}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results = [r for url in urls for r in bench(url, sizes, steps)]
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for r in results:
        s_max, mb_max = TARGETS[r["step"]]
        line = f"[{r['backend']}] {r['step']}: {r['seconds']} s (target < {s_max} s)"
        if mb_max:
            line += f", peak {r['peak_rss_mb']} MB (target < {mb_max} MB)"
        else:
            line += f", peak {r['peak_rss_mb']} MB"
        print(line + f"; process {r['process_seconds']} s with start-up")


if __name__ == "__main__":
    main()
