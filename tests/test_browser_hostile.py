"""Hostile content on every page, in a real Chromium: nothing fetches, runs or changes meaning.

Prompts, outputs (one of 200 KB), the reference, comments, the judge's rationales and the names of annotators
and candidates hold images, links, HTML, LaTeX, Streamlit directives and shortcodes, bidi controls and
zero-width characters. Stored straight in the database (as a row written before names were checked, or
by another tool, would be): the app must render such rows safely whatever their source.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, select

from storage.db import make_engine
from storage.models import Annotator, Candidate, Item, Output
from tests.test_browser_app import CHROMIUM, AppServer, _need_chromium, raw_sql
from tests.test_ui_seed import seed_project

pytestmark = pytest.mark.browser

EVIL = "203.0.113.9"  # TEST-NET-3: never routed; any request to it is a leak
HOSTILE = (
    f"Hostile ![img](http://{EVIL}/img.png) [link](http://{EVIL}/go) <https://{EVIL}/auto> www.evil.example "
    f"mail@evil.example\n\n"
    f"<img src=\"http://{EVIL}/tag.png\" onerror=\"window.__pwned=1;alert(1)\"> "
    f"<script>window.__pwned=2;console.log('PWNED')</script> "
    f"<iframe src=\"http://{EVIL}/frame\"></iframe> <a href=\"javascript:alert(3)\">js</a>\n\n"
    "LaTeX $\\frac{1}{2}$ and $$x^2$$ · colour :red[RED-TEXT] · icon :material/home: · emoji :smile: · "
    "bold __init__ · strike ~gone~\n\n"
    "bidi exe\u202etxt.exe · zero\u200bwidth\n\n"
    f"<style>body{{background:url(http://{EVIL}/css.png)}}</style>\n\n"
    f"![ref][r]\n\n[r]: http://{EVIL}/ref.png\n"
)
NAME = f"![n](http://{EVIL}/name.png):red[N]\u202eeman"
BIG = HOSTILE + ("lorem ipsum dolor sit amet " * 7600)  # ≈ 200 KB


def _hostile_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    eng = make_engine(url)
    seeded = seed_project(eng, items=12, golden_items=6, simulated_labels=True, human_agreement=0.5)
    # alice's first unit (the 200 KB output) is still to label: over the raw driver connection, since the
    # engine keeps labels append-only
    raw_sql(eng, f"DELETE FROM label WHERE annotator_id = {int(seeded.annotators['alice'])} "
                 f"AND golden_unit_id = {int(seeded.unit_ids[0])}")
    with Session(eng) as s:
        for item in s.exec(select(Item)):
            item.messages = [{"role": "system", "content": HOSTILE}, {"role": "user", "content": HOSTILE}]
            item.reference = HOSTILE
            s.add(item)
        for i, out in enumerate(s.exec(select(Output).order_by(Output.id))):
            out.text = BIG if i == 0 else HOSTILE
            s.add(out)
        bob = s.exec(select(Annotator).where(Annotator.name == "bob")).one()
        bob.name = NAME
        s.add(bob)
        for k, cand in enumerate(s.exec(select(Candidate).order_by(Candidate.id))):
            cand.name = f"{NAME}-{k}"
            s.add(cand)
        s.commit()
    # rationales and comments as a judge and people could have written them (the engine keeps both tables
    # append-only, so the test writes them over the raw driver connection)
    raw_sql(eng, "UPDATE judgment SET rationale = " + _sql_text(HOSTILE))
    raw_sql(eng, "UPDATE label SET comment = " + _sql_text(HOSTILE))
    eng.dispose()
    return url


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.fixture
def hostile_app(tmp_path: Path) -> Iterator[AppServer]:
    _need_chromium()
    server = AppServer(_hostile_db(tmp_path), tmp_path / "home")
    yield server
    server.stop()


# Anything that could navigate or fetch: every link but the app's own navigation and heading anchors, every
# image or frame but the app's own (its components are srcdoc frames).
DOM_CHECK = """() => ({
    pwned: window.__pwned === undefined ? null : window.__pwned,
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
        .filter(h => !h.startsWith('#') && !h.startsWith(location.origin + '/')),
    katex: document.querySelectorAll('.katex, math').length,
    images: [...document.querySelectorAll('img[src], iframe:not([srcdoc]), object, embed, video, audio')]
        .map(e => e.getAttribute('src') || e.tagName).filter(s => !s.startsWith(location.origin + '/')
            && !s.startsWith('/') && !s.startsWith('data:') && !s.startsWith('./')),
})"""


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=60_000)
    page.wait_for_timeout(800)


def test_hostile_content_on_every_page_fetches_and_runs_nothing(hostile_app: AppServer) -> None:
    from playwright.sync_api import sync_playwright

    server = hostile_app
    own = urlsplit(server.url).netloc
    elsewhere: list[str] = []
    dialogs: list[str] = []
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1200})  # the sidebar name picker in view
        page.on("request", lambda r: None if urlsplit(r.url).netloc == own or r.url.startswith(("data:", "blob:"))
                else elsewhere.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: console.append(m.text))

        found: dict[str, dict] = {}

        def check(where: str) -> None:
            found[where] = page.evaluate(DOM_CHECK)

        def visit(path: str, wait_text: str) -> None:
            page.goto(server.url + path)
            page.get_by_text(wait_text).first.wait_for(timeout=60_000)
            _settle(page)
            check(path)

        visit("/", "Next step")
        visit("/eval-sets", "item(s)")
        page.locator("[data-testid='stExpander'] summary").nth(1).click()  # the first item: prompt and reference
        page.get_by_text("Reference answer").first.wait_for()
        _settle(page)
        check("/eval-sets, an item open")
        visit("/rubrics", "Rubric YAML")
        visit("/runs", "Candidate runs")
        visit("/agreement", "Where the judge and the humans differ")
        page.get_by_text("Judge's rationale").wait_for(timeout=60_000)
        check("/agreement, the disagreement browser")
        visit("/rankings", "Eval set × rubric")
        # a name in the URL is not read at all (a label belongs to whoever is signed in; here the single user
        # picks a name in the sidebar), so a hostile one is neither shown nor stored
        visit("/label?annotator=" + NAME.replace("\u202e", "%E2%80%AE"), "Label")
        # the Label page as alice: the 200 KB output first, then verbatim mode
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").click()
        page.get_by_role("option").filter(has_text="(new name)").click()
        page.get_by_label("New annotator name").fill("alice")
        page.get_by_label("New annotator name").press("Enter")
        page.get_by_text("Unit 1 of").first.wait_for(timeout=60_000)
        _settle(page)
        check("/label, as alice")
        page.get_by_text("Response").first.wait_for()
        shown = page.locator("[data-testid='stMain']").inner_text()
        page.get_by_text("Show all (").click()
        _settle(page)
        check("/label, the whole 200 KB output")
        page.get_by_text("Show text verbatim").click()
        _settle(page)
        check("/label, verbatim")
        verbatim_text = page.locator("[data-testid='stMain']").inner_text()
        browser.close()

    assert elsewhere == [], f"requests to other hosts: {elsewhere}"
    assert dialogs == [] and not any("PWNED" in c for c in console)
    assert len(found) == 12
    for where, dom in found.items():
        assert dom == {"pwned": None, "links": [], "katex": 0, "images": []}, where
    plain = shown.replace("\u2060", "")
    for literal in (":red[RED-TEXT]", ":smile:", ":material/home:", "__init__", "$\\frac{1}{2}$", "exe⟨U+202E⟩txt.exe",
                    "zero⟨U+200B⟩width", "image not loaded: img"):
        assert literal in plain, literal
    assert "😄" not in shown
    assert "⟨U+202E⟩" in verbatim_text and "⟨U+200B⟩" in verbatim_text

