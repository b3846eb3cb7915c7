"""App benchmarks: save-and-next server time on a loaded database, keypress to the next step in Chromium, and
the first page render after start.

    .venv/bin/python bench/ui.py [--db sqlite|postgresql+psycopg://…] [--iterations 40] [--keypresses 40] [--no-browser]

The database gets 100,000 judgments and 5,000 labels (SIMULATED rows from tests/test_ui_seed.py, bulk
inserted); the timed path is exactly what one keypress on the Label page runs on the server: save the label
and find the next step (the button callback), then progress and the unit view (the fragment's rerun).
In the browser, a keypress is timed from the key going down to the next step (unit or criterion) on screen,
as the annotator sees it. Targets: save-and-next < 300 ms; keypress to next step median < 200 ms and p90 <
300 ms; first render < 2 s. Figures depend on the machine's load.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert
from sqlmodel import Session, select

from analysis import labeling
from storage.db import make_engine, session_scope
from storage.models import Annotator, GoldenAssignment, JudgeRun, Judgment, Label, Output
from tests.test_ui_seed import seed_project

JUDGMENTS = 100_000
LABELS = 5_000


def load(url: str) -> tuple[object, int, int]:
    eng = make_engine(url)
    seeded = seed_project(eng, items=300, golden_items=300, annotators=("alice", "bob", "carol", "dan", "eve"))
    with Session(eng) as s:
        jr = s.get(JudgeRun, seeded.judge_run_id)
        outputs = s.exec(select(Output.id, Output.item_id)).all()
        have = s.exec(select(func.count()).select_from(Judgment)).one()
        rows, k = [], 0
        while have + len(rows) < JUDGMENTS:  # more judge runs' worth of judgments on the same outputs
            oid, iid = outputs[k % len(outputs)]
            rows.append({"judge_run_id": jr.id, "criterion_id": "correct" if k % 2 else "helpful", "item_id": iid,
                         "output_id": oid, "status": "scored", "verdict": "pass" if k % 2 else "2",
                         "score": 1.0 if k % 2 else 2.0, "rationale": "simulated", "version_hash": "x" * 64,
                         "rubric_hash": "y" * 64, "judge_model": jr.judge_model})
            k += 1
        for i in range(0, len(rows), 5000):
            s.execute(insert(Judgment), rows[i:i + 5000])
        # 5,000 labels by the other annotators (alice's queue stays open for the timed path)
        others = [a.id for a in s.exec(select(Annotator).where(Annotator.name != "alice"))]
        assigned = s.exec(select(GoldenAssignment.golden_unit_id, GoldenAssignment.annotator_id)
                          .where(GoldenAssignment.annotator_id.in_(others))).all()  # type: ignore[attr-defined]
        units = {u.id: u for u in s.exec(select(__import__("storage.models", fromlist=["GoldenUnit"]).GoldenUnit))}
        labels = []
        for uid, aid in assigned:
            for crit, verdict, score in (("correct", "pass", 1.0), ("helpful", "3", 3.0)):
                u = units[uid]
                labels.append({"annotator_id": aid, "rubric_version_id": u.rubric_version_id, "criterion_id": crit,
                               "item_id": u.item_id, "output_id": u.output_id, "golden_unit_id": uid,
                               "verdict": verdict, "score": score, "skipped": False, "flagged": False,
                               "inclusion_prob": u.inclusion_prob, "source": "app"})
                if len(labels) >= LABELS:
                    break
            if len(labels) >= LABELS:
                break
        s.execute(insert(Label), labels)
        s.commit()
        counts = (s.exec(select(func.count()).select_from(Judgment)).one(),
                  s.exec(select(func.count()).select_from(Label)).one())
    print(f"database: {counts[0]:,} judgments, {counts[1]:,} labels, "
          f"{len(seeded.unit_ids):,} golden units × 5 annotators")
    return eng, seeded.annotators["alice"], seeded.rubric_version_id


def save_and_next(eng, annotator_id: int, iterations: int) -> list[float]:  # type: ignore[no-untyped-def]
    with Session(eng) as s:
        task = labeling.tasks_for(s, annotator_id)[0]
        step = labeling.next_step(s, annotator_id, task)
    times = []
    for i in range(iterations):
        t0 = time.perf_counter()
        with session_scope(eng) as s:  # the button callback
            labeling.save_label(s, annotator_id, *step, choice="pass" if step[1] == "correct" else "2",
                                comment="bench" if i % 5 == 0 else None)
            step = labeling.next_step(s, annotator_id, task, after=step)
        with session_scope(eng) as s:  # the fragment's rerun
            labeling.progress(s, annotator_id, task)
            labeling.unit_view(s, annotator_id, *step)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def first_render(url: str, home: Path) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    from tests.test_browser_app import ARGS, CHROMIUM, PROXY, AppServer, signed_in_page

    t0 = time.perf_counter()
    server = AppServer(url, home, PROXY)  # alice signed in through the proxy-header mode
    started = time.perf_counter() - t0
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = signed_in_page(browser, "alice")
            t1 = time.perf_counter()
            page.goto(server.url + "/label")
            page.get_by_role("button", name="Skip").wait_for(timeout=60_000)
            render = time.perf_counter() - t1
            browser.close()
    finally:
        server.stop()
    return started, render


STEP = """() => {
    const live = [...document.querySelectorAll("[data-stale='false'] h5, [data-stale='false'] [data-testid='stCaptionContainer']")]
        .map(e => e.innerText).filter(t => t.startsWith("Criterion") || t.startsWith("Unit"));
    return live.join("|");
}"""


def keypresses(url: str, home: Path, n: int) -> list[float]:
    """Milliseconds from a label key going down to the next step on screen, `n` times."""
    from playwright.sync_api import sync_playwright

    from tests.test_browser_app import ARGS, CHROMIUM, PROXY, AppServer, _ready, signed_in_page

    server = AppServer(url, home, PROXY)  # alice signed in through the proxy-header mode
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = signed_in_page(browser, "alice", viewport={"width": 1400, "height": 900})
            page.goto(server.url + "/label")
            page.get_by_role("button", name="Skip").wait_for(timeout=60_000)
            for _ in range(n + 3):  # the first three warm the caches and are not counted
                _ready(page)
                before = page.evaluate(STEP)
                key = "1" if "Criterion 1 of" in before else "2"
                t0 = time.perf_counter()
                page.keyboard.press(key)
                page.wait_for_function(f"() => ({STEP})() !== {before!r} && ({STEP})().includes('Criterion')",
                                       polling="raf", timeout=30_000)
                times.append((time.perf_counter() - t0) * 1000)
            browser.close()
    finally:
        server.stop()
    return times[3:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--keypresses", type=int, default=40)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ownbench-bench-ui-"))
    url = f"sqlite:///{tmp / 'bench.db'}" if args.db == "sqlite" else args.db
    t = time.perf_counter()
    eng, alice, _rubric = load(url)
    print(f"loaded in {time.perf_counter() - t:.1f} s ({url.split('://')[0]})")
    times = save_and_next(eng, alice, args.iterations)
    q = statistics.quantiles(times, n=20)
    print(f"save-and-next server time over {len(times)} keypresses: median {statistics.median(times):.1f} ms, "
          f"p95 {q[18]:.1f} ms, max {max(times):.1f} ms (target < 300 ms)")
    if not args.no_browser:
        keys = keypresses(url, tmp / "home-keys", args.keypresses)
        kq = statistics.quantiles(keys, n=10)
        print(f"keypress to next step in Chromium over {len(keys)} keypresses: median {statistics.median(keys):.0f} ms, "
              f"p90 {kq[8]:.0f} ms, max {max(keys):.0f} ms (targets: median < 200 ms, p90 < 300 ms)")
        started, render = first_render(url, tmp / "home")
        print(f"app server up in {started:.2f} s; first Label page render in the browser {render:.2f} s "
              "(target < 2 s)")


if __name__ == "__main__":
    main()
