"""The app in a real browser: Debian's chromium driven by Playwright against the app as `ownbench app` serves it.

The database is seeded with SIMULATED judgments and golden assignments (tests/test_ui_seed.py); the labels
are made here, with the keyboard, as an annotator would.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from storage.db import make_engine
from storage.models import Label
from tests.conftest import IN_CI, ROOT
from tests.test_ui_seed import seed_project

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppServer:
    """The app as `ownbench app` serves it (`python -m ui.serve`) on a free port against one database."""

    def __init__(self, db_url: str, home: Path, extra_env: dict[str, str] | None = None, *, port: int | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OWNBENCH_AUTH", "OWNBENCH_PROXY"))}
        env.update({"OWNBENCH_DATABASE_URL": db_url, "OWNBENCH_HOME": str(home), **(extra_env or {})})
        self.log = home / "streamlit.log"
        home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ui.serve", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", *(extra_args or [])],
            cwd=ROOT, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("streamlit did not start:\n" + self.log.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def browser() -> Iterator[object]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


PROXY = {"OWNBENCH_AUTH_HEADER": "X-Forwarded-User", "OWNBENCH_PROXY_SECRET": "test-proxy-secret"}


def signed_in_page(browser, who: str, **context):  # type: ignore[no-untyped-def]
    """A page whose requests come as from the authenticating proxy, for the annotator `who`."""
    ctx = browser.new_context(extra_http_headers={"X-Forwarded-User": who,
                                                  "X-Ownbench-Proxy-Secret": PROXY["OWNBENCH_PROXY_SECRET"]},
                              **context)
    return ctx.new_page()


@pytest.fixture
def seeded_app(tmp_path: Path) -> Iterator[tuple[AppServer, str, object]]:
    _need_chromium()
    url = f"sqlite:///{tmp_path / 'app.db'}"
    eng = make_engine(url)
    seeded = seed_project(eng)
    server = AppServer(url, tmp_path / "home", PROXY)
    yield server, url, seeded
    server.stop()
    eng.dispose()


def _ready(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the step's buttons (and so their shortcuts) are on the page and the fragment is idle."""
    from playwright.sync_api import expect

    # While a fragment reruns, Streamlit can show the stale step beside the new one: wait for a single step.
    expect(page.get_by_role("button", name="Skip")).to_have_count(1, timeout=30_000)
    # The status widget shows only after a delay, so it can still be hidden while a run is under way;
    # the app root's script state is what says the page is idle (a key pressed mid-run may be lost).
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for()
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def _labels(url: str) -> list[Label]:
    eng = make_engine(url, migrate=False)
    with Session(eng) as s:
        rows = list(s.exec(select(Label).order_by(Label.id)))
    eng.dispose()
    return rows


def test_label_three_units_with_the_keyboard_and_find_them_after_reload(browser, seeded_app) -> None:  # type: ignore[no-untyped-def]
    server, url, seeded = seeded_app
    page = signed_in_page(browser, "alice")
    page.goto(server.url + "/label")
    page.get_by_text("Unit 1 of 18").wait_for(timeout=30_000)
    for unit in range(1, 4):
        page.get_by_text(f"Unit {unit} of 18").wait_for()
        _ready(page)
        page.get_by_text("Criterion 1 of 2").wait_for()
        page.keyboard.press("1")  # correct: pass
        page.get_by_text("Criterion 2 of 2").wait_for()
        _ready(page)
        page.keyboard.press("3" if unit != 2 else "2")  # helpful: level
        page.get_by_text(f"Unit {unit + 1} of 18").wait_for()
    page.get_by_text("3 of 18 units done").wait_for()
    rows = _labels(url)
    assert [(r.criterion_id, r.verdict) for r in rows] == [
        ("correct", "pass"), ("helpful", "3"), ("correct", "pass"), ("helpful", "2"),
        ("correct", "pass"), ("helpful", "3"),
    ]
    assert {r.annotator_id for r in rows} == {seeded.annotators["alice"]}
    assert [r.golden_unit_id for r in rows[::2]] == seeded.unit_ids[:3]

    page.reload()
    page.get_by_text("3 of 18 units done").wait_for(timeout=30_000)
    page.get_by_text("Unit 4 of 18").wait_for()
    _ready(page)
    # skip with the keyboard, then come back with B and re-label: a new row, the latest counts
    page.keyboard.press("S")
    page.get_by_text("Criterion 2 of 2").wait_for()
    _ready(page)
    page.locator("button:not([disabled])", has_text="Back").wait_for()
    page.keyboard.press("B")
    page.get_by_text("You skipped this before").wait_for()
    _ready(page)
    page.keyboard.press("0")
    page.get_by_text("Criterion 2 of 2").wait_for()
    rows = _labels(url)
    assert [(r.verdict, r.skipped) for r in rows[-2:]] == [(None, True), ("fail", False)]
    page.close()


def test_untrusted_output_does_not_execute_or_fetch(browser, seeded_app) -> None:  # type: ignore[no-untyped-def]
    server, _url, _seeded = seeded_app
    page = signed_in_page(browser, "bob")
    dialogs: list[str] = []
    outside: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: outside.append(r.url) if "203.0.113.9" in r.url or r.url.startswith(
        server.url + "/x") else None)
    page.goto(server.url + "/label")
    page.get_by_text("Unit 1 of 18").wait_for(timeout=30_000)
    page.get_by_text("window.__xss = 1", exact=False).first.wait_for()  # shown as text
    page.wait_for_timeout(1500)
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("() => [...document.scripts].some(s => s.textContent.includes('__xss'))") is False
    assert page.locator("img[src*='203.0.113.9'], a[href*='203.0.113.9']").count() == 0
    assert dialogs == [] and outside == []
    page.close()


def raw_sql(eng, statement: str) -> None:  # type: ignore[no-untyped-def]
    """A test's own edit of the stored state, over the raw driver connection: the engine itself refuses to change
    or delete labels and judgments (they are append-only)."""
    conn = eng.raw_connection()
    try:
        conn.cursor().execute(statement)
        conn.commit()
    finally:
        conn.close()


def test_ranking_is_withheld_before_the_gate_and_shown_after(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Before: no labels. After: simulated labels from two annotators on 60 golden units (see test_ui_seed)."""
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    eng = make_engine(url)
    seed_project(eng, items=20, golden_items=20, simulated_labels=True, human_agreement=0.97)
    with Session(eng) as s:  # keep the labels aside: first look at the page without them
        kept = [r.model_dump() for r in s.exec(select(Label))]
    raw_sql(eng, "DELETE FROM label")
    server = AppServer(url, tmp_path / "home")
    try:
        page = browser.new_page()
        page.goto(server.url + "/rankings")
        page.get_by_text("Ranking withheld").first.wait_for(timeout=60_000)
        assert page.get_by_text("Calibrated estimates").count() == 0
        with Session(eng) as s:
            s.add_all(Label(**row) for row in kept)
            s.commit()
        page.wait_for_timeout(11_000)  # read queries are cached for 10 s
        page.reload()
        page.get_by_text("Calibrated estimates").first.wait_for(timeout=60_000)
        assert page.get_by_text("Ranking withheld").count() == 0
        page.close()
    finally:
        server.stop()
        eng.dispose()


def test_label_page_keeps_the_criterion_in_view_and_remembers_the_earlier_label(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import Session as DbSession

    from storage.models import Output

    url = f"sqlite:///{tmp_path / 'long.db'}"
    eng = make_engine(url)
    seeded = seed_project(eng)
    with DbSession(eng) as s:  # the first unit's response runs over many screens
        out = s.get(Output, seeded.xss_output_id)
        out.text = "\n\n".join(f"Paragraph {i}: " + "a long answer " * 40 for i in range(120))
        s.add(out)
        s.commit()
    server = AppServer(url, tmp_path / "home", PROXY)
    try:
        page = signed_in_page(browser, "alice", viewport={"width": 1400, "height": 900})
        page.goto(server.url + "/label")
        page.get_by_text("Unit 1 of 18").wait_for(timeout=30_000)
        _ready(page)
        page.get_by_text("Show all (").wait_for()
        assert page.get_by_text("Paragraph 119:").count() == 0  # collapsed to its start
        main = "[data-testid='stMain']"
        page.evaluate(f"() => document.querySelector(\"{main}\").scrollTo(0, 2500)")
        page.wait_for_timeout(300)
        box = page.get_by_text("Criterion 1 of 2").bounding_box()
        assert box is not None and 0 <= box["y"] <= 900, box  # the panel stayed in view
        assert page.get_by_role("button", name="Pass").first.is_visible()
        page.get_by_placeholder("Why?").fill("first thought")
        page.get_by_placeholder("Why?").press("Enter")
        page.evaluate("() => document.activeElement.blur()")
        _ready(page)
        page.keyboard.press("Shift+1")  # Shift works as well as the bare key
        page.get_by_text("Criterion 2 of 2").wait_for()
        _ready(page)
        assert page.evaluate(f"() => document.querySelector(\"{main}\").scrollTop") == 0  # the next step opens at the top
        page.keyboard.press("Shift+B")
        page.get_by_text("You labeled pass this before").wait_for()
        _ready(page)
        assert page.get_by_placeholder("Why?").input_value() == "first thought"
        # the earlier choice is the one highlighted
        primary = "[data-stale='false'] button[kind='primary']"
        page.wait_for_timeout(500)
        assert page.locator(primary, has_text="Pass").count() >= 1
        assert page.locator(primary, has_text="Fail").count() == 0
        rows = _labels(url)
        assert [(r.verdict, r.comment) for r in rows] == [("pass", "first thought")]
        page.close()
    finally:
        server.stop()
        eng.dispose()


def test_rankings_names_its_judge_run_and_compare_says_withheld(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A newer judge run over a few outputs does not take over; a criterion without labels is withheld in
    Compare, never "no significant regression"; an imported candidate is not offered for a run and a failed
    run says why on the Runs page."""
    from storage.hashing import content_hash
    from storage.models import Candidate, JudgeRun, Judgment, Output, Run

    url = f"sqlite:///{tmp_path / 'rank.db'}"
    eng = make_engine(url)
    seeded = seed_project(eng, items=20, golden_items=20, simulated_labels=True, human_agreement=0.97)
    raw_sql(eng, "DELETE FROM label WHERE criterion_id = 'helpful'")
    with Session(eng) as s:
        partial = JudgeRun(version_id=seeded.version_id, rubric_version_id=seeded.rubric_version_id,
                           judge_model="openai/judge-partial", status="done", mode="pointwise")
        s.add(partial)
        s.flush()
        for o in s.exec(select(Output).limit(5)):
            s.add(Judgment(judge_run_id=partial.id, criterion_id="correct", item_id=o.item_id, output_id=o.id,
                           verdict="pass", score=1.0, rationale="r", version_hash="x", rubric_hash="y",
                           judge_model="openai/judge-partial"))
        imported = Candidate(name="prod-log", model="imported", config_hash=content_hash({"imported": "prod-log"}))
        s.add(imported)
        s.flush()
        s.add(Run(candidate_id=imported.id, version_id=seeded.version_id, source="imported", status="failed",
                  status_reason="the answer file ended early"))
        s.commit()
        partial_id = partial.id
    server = AppServer(url, tmp_path / "home")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url + "/rankings")
        page.get_by_text(f"Showing judge run {seeded.judge_run_id} ").wait_for(timeout=60_000)
        page.get_by_text("the newest of those that judged the most outputs").wait_for()
        assert page.get_by_text(f"Showing judge run {partial_id} ").count() == 0
        page.get_by_text("Calibrated estimates").first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Compare").click()
        page.get_by_text("Withheld on helpful").first.wait_for(timeout=60_000)
        assert page.get_by_text("No significant regression", exact=True).count() == 0
        page.goto(server.url + "/runs")
        page.get_by_text("the answer file ended early").first.wait_for(timeout=60_000)
        page.get_by_text("Run 4 (prod-log").wait_for()
        page.locator("[data-testid='stSelectbox']", has_text="Candidate").click()
        options = page.get_by_role("option").all_inner_texts()
        assert options and not any("prod-log" in o for o in options), options
        page.close()
    finally:
        server.stop()
        eng.dispose()
