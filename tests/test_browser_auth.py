"""Sign-in, roles and blindness in a real Chromium, through a real OIDC provider on loopback (oidc-provider-mock,
started here) and through the proxy-header mode.

People: olga (owner), rita (reviewer), ana and ben (annotators), signed in by e-mail. Judgments, ben's labels and
comments are SIMULATED (tests/test_ui_seed.py); ana's label is made here, with the keyboard.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session, select

from analysis import people
from storage.db import make_engine
from storage.models import Adjudication, Annotator, GoldenUnit, Label
from tests import test_browser_app
from tests.test_browser_app import AppServer, _need_chromium, _ready, free_port
from tests.test_ui_seed import CANDIDATE_NAMES, MODEL_NAMES, RATIONALE, seed_project

pytestmark = pytest.mark.browser
browser = test_browser_app.browser  # the Chromium fixture

OWNER, REVIEWER, ANA, BEN = "olga@example.org", "rita@example.org", "ana@example.org", "ben@example.org"
STRANGER = "eve@example.org"  # signs in at the provider, but nobody gave her a role here
USERS = {OWNER: "olga", REVIEWER: "rita", ANA: "ana", BEN: "ben", STRANGER: "eve"}
SECRETS = ["cand-secret-", "model-alpha-9000", "model-beta-9000", "model-gamma-9000", "judge-model-zeta",
           "JUDGE-RATIONALE", "COMMENT-OF-ben"]
assert all(any(s in n for s in SECRETS) for n in CANDIDATE_NAMES + MODEL_NAMES) and RATIONALE.startswith(SECRETS[5])
PAGES = ["", "eval-sets", "rubrics", "runs", "label", "agreement", "adjudication", "rankings", "people"]


def signed_in_as(identity: str) -> re.Pattern[str]:
    """The sidebar's words for a person: the renderer for untrusted text puts a word joiner (U+2060) where
    markdown would otherwise make a link of an e-mail address, so allow one between any two characters."""
    return re.compile("Signed in as " + "\u2060?".join(map(re.escape, identity)))


class Provider:
    """oidc-provider-mock on a free loopback port, with one predefined user per person."""

    def __init__(self, home: Path) -> None:
        exe = shutil.which("oidc-provider-mock", path=str(Path(sys.executable).parent))
        if exe is None:
            pytest.fail("oidc-provider-mock is missing: `pip install -e '.[dev]'` installs it")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [exe, "--port", str(self.port)]
        for email, sub in USERS.items():
            argv += ["--user-claims", json.dumps({"sub": sub, "email": email, "name": sub.title()})]
        self.log = home / "oidc.log"
        home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(argv, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/.well-known/openid-configuration", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("oidc-provider-mock did not start:\n" + self.log.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@dataclass
class Deployment:
    server: AppServer
    url: str
    seeded: object
    unit_ids: list[int]


def _people(url: str) -> list[int]:
    """olga, rita, ana, ben with roles; ben has labeled (with a comment) everything; one unit where ana and ben
    already disagree on "correct" (the adjudication test's unit). Returns the golden unit ids."""
    eng = make_engine(url)
    with Session(eng) as s:
        people.add(s, OWNER, "owner")
        people.add(s, REVIEWER, "reviewer")
        units = list(s.exec(select(GoldenUnit).order_by(GoldenUnit.id)))
        ids = {a.name: a.id for a in s.exec(select(Annotator))}
        for u in units:
            for crit, verdict, score in (("correct", "pass", 1.0), ("helpful", "3", 3.0)):
                s.add(Label(annotator_id=ids[BEN], rubric_version_id=u.rubric_version_id, criterion_id=crit,
                            item_id=u.item_id, output_id=u.output_id, golden_unit_id=u.id, verdict=verdict,
                            score=score, inclusion_prob=u.inclusion_prob, comment="COMMENT-OF-ben"))
        last = units[-1]  # ana's disagreement sits at the end of her queue, away from the units she labels here
        s.add(Label(annotator_id=ids[ANA], rubric_version_id=last.rubric_version_id, criterion_id="correct",
                    item_id=last.item_id, output_id=last.output_id, golden_unit_id=last.id, verdict="fail",
                    score=0.0, inclusion_prob=last.inclusion_prob, comment="COMMENT-OF-ana"))
        s.commit()
        out = [int(u.id) for u in units]  # type: ignore[arg-type]
    eng.dispose()
    return out


@pytest.fixture
def oidc_app(tmp_path: Path) -> Iterator[tuple[Deployment, Provider]]:
    _need_chromium()
    provider = Provider(tmp_path / "oidc")
    url = f"sqlite:///{tmp_path / 'app.db'}"
    eng = make_engine(url)
    seeded = seed_project(eng, annotators=(ANA, BEN))
    eng.dispose()
    units = _people(url)
    port = free_port()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a-cookie-secret-for-this-test-only"\n'
        'client_id = "ownbench-test"\n'
        'client_secret = "ownbench-test-secret"\n'
        f'server_metadata_url = "{provider.url}/.well-known/openid-configuration"\n', encoding="utf-8")
    server = AppServer(url, tmp_path / "home", port=port, extra_args=["--secrets.files", str(secrets)])
    yield Deployment(server, url, seeded, units), provider
    server.stop()
    provider.stop()


def _sign_in(browser, dep: Deployment, email: str):  # type: ignore[no-untyped-def]
    """A fresh browser context signed in as `email` through the provider's page."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(dep.server.url + "/")
    page.get_by_role("button", name="Sign in").click(timeout=30_000)
    page.get_by_role("button", name=USERS[email]).click(timeout=30_000)
    page.wait_for_url(dep.server.url + "/**", timeout=30_000)
    page.get_by_text(signed_in_as(email)).wait_for(timeout=30_000)
    return ctx, page


def _nav(page) -> set[str]:  # type: ignore[no-untyped-def]
    links = page.locator("[data-testid='stSidebarNav'] a")
    return {links.nth(i).inner_text().strip().split("\n")[-1].strip() for i in range(links.count())}  # after the icon


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_each_role_reaches_only_its_pages_and_annotators_see_nothing_blind(browser, oidc_app) -> None:  # type: ignore[no-untyped-def]
    dep, _provider = oidc_app
    # an annotator: the Label page only, and a crawl of every URL leaks nothing, on screen or on the websocket
    ctx, page = _sign_in(browser, dep, ANA)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(
        payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload)))
    page.reload()
    page.get_by_text("Unit 1 of 18").wait_for(timeout=30_000)
    assert _nav(page) == {"Label"} or page.locator("[data-testid='stSidebarNav']").count() == 0
    for path in PAGES:
        page.goto(f"{dep.server.url}/{path}")
        page.get_by_text(signed_in_as(ANA)).wait_for(timeout=30_000)
        page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=30_000)
        page.wait_for_timeout(300)
        body = page.inner_text("body")
        assert _leaks(body) == [], (path, _leaks(body))
        assert "Judge–human agreement" not in body and "Where the judge and the humans differ" not in body
    assert any("Unit 1 of 18" in f for f in frames), "the websocket frames were not captured"
    assert _leaks("\n".join(frames)) == []
    ctx.close()

    # a reviewer: agreement, adjudication, rankings, runs, people; not eval sets or rubrics
    ctx, page = _sign_in(browser, dep, REVIEWER)
    page.get_by_text("Overview").first.wait_for()
    assert {"Agreement", "Adjudication", "Rankings", "Runs", "People", "Label"} <= _nav(page)
    assert not {"Eval sets", "Rubrics"} & _nav(page)
    page.goto(dep.server.url + "/people")
    page.get_by_text("Reassign unlabeled units").wait_for(timeout=30_000)
    assert page.get_by_text("Roles", exact=True).count() == 0  # managing people is for owners
    ctx.close()

    # the owner: everything, including roles
    ctx, page = _sign_in(browser, dep, OWNER)
    assert {"Eval sets", "Rubrics", "Agreement", "Adjudication", "Rankings", "Runs", "People"} <= _nav(page)
    page.goto(dep.server.url + "/people")
    page.get_by_text("Roles", exact=True).wait_for(timeout=30_000)
    ctx.close()

    # signed in at the provider, but without a role here: nothing but the reason, and no person row is created
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(dep.server.url + "/agreement")
    page.get_by_role("button", name="Sign in").click(timeout=30_000)
    page.get_by_role("button", name=USERS[STRANGER]).click(timeout=30_000)
    page.get_by_text("who has no role in this project yet").wait_for(timeout=30_000)
    assert _leaks(page.inner_text("body")) == [] and _nav(page) == set()
    ctx.close()
    eng = make_engine(dep.url, migrate=False)
    with Session(eng) as s:
        assert s.exec(select(Annotator).where(Annotator.name == STRANGER)).first() is None
    eng.dispose()


def test_a_label_belongs_to_the_signed_in_person_whatever_the_url_says(browser, oidc_app) -> None:  # type: ignore[no-untyped-def]
    dep, _provider = oidc_app
    ctx, page = _sign_in(browser, dep, ANA)
    page.goto(dep.server.url + f"/label?annotator={BEN}")
    page.get_by_text("Unit 1 of 18").wait_for(timeout=30_000)
    _ready(page)
    page.keyboard.press("1")
    page.get_by_text("Criterion 2 of 2").wait_for(timeout=30_000)
    eng = make_engine(dep.url, migrate=False)
    with Session(eng) as s:
        ana = s.exec(select(Annotator).where(Annotator.name == ANA)).one()
        mine = s.exec(select(Label).where(Label.source == "app", Label.annotator_id == ana.id,
                                          Label.golden_unit_id == dep.unit_ids[0])).all()
        assert [(lab.criterion_id, lab.verdict) for lab in mine] == [("correct", "pass")]
        assert s.exec(select(Annotator).where(Annotator.name.like("%annotator=%"))).first() is None  # type: ignore[attr-defined]
    eng.dispose()
    ctx.close()


def test_adjudication_end_to_end(browser, oidc_app) -> None:  # type: ignore[no-untyped-def]
    dep, _provider = oidc_app
    ctx, page = _sign_in(browser, dep, REVIEWER)
    page.goto(dep.server.url + "/adjudication")
    page.get_by_text("Annotators' labels").wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert f"{ANA}: fail" in body and f"{BEN}: pass" in body
    assert _leaks(body.replace("COMMENT-OF-ben", "")) == []  # reviewers see comments, never candidate names
    page.get_by_label("Note (required): why this label").fill("ben read the criterion as written")
    page.get_by_text("Pass", exact=True).click()
    page.get_by_role("button", name="Record adjudication").click()
    page.get_by_text("Recorded").wait_for(timeout=30_000)
    eng = make_engine(dep.url, migrate=False)
    with Session(eng) as s:
        adj = s.exec(select(Adjudication)).one()
        rita = s.exec(select(Annotator).where(Annotator.name == REVIEWER)).one()
        assert (adj.golden_unit_id, adj.criterion_id, adj.verdict) == (dep.unit_ids[-1], "correct", "pass")
        assert adj.adjudicator_id == rita.id and adj.note == "ben read the criterion as written"
        assert {x["annotator"]: x["verdict"] for x in adj.labels} == {ANA: "fail", BEN: "pass"}
    eng.dispose()
    ctx.close()


# --- header mode ---------------------------------------------------------------------------------------------------


@pytest.fixture
def header_app(tmp_path: Path) -> Iterator[Deployment]:
    _need_chromium()
    url = f"sqlite:///{tmp_path / 'app.db'}"
    eng = make_engine(url)
    seeded = seed_project(eng, annotators=(ANA, BEN))
    eng.dispose()
    units = _people(url)
    server = AppServer(url, tmp_path / "home", extra_env={
        "OWNBENCH_AUTH_HEADER": "X-Forwarded-Email", "OWNBENCH_PROXY_SECRET": "proxy-shared-secret"})
    yield Deployment(server, url, seeded, units)
    server.stop()


def test_header_mode_refuses_a_request_without_the_proxy_secret(browser, header_app) -> None:  # type: ignore[no-untyped-def]
    dep = header_app
    forged = browser.new_context(extra_http_headers={"X-Forwarded-Email": OWNER})
    page = forged.new_page()
    page.goto(dep.server.url + "/agreement")
    page.get_by_text("Refused: this request did not come through the authenticating proxy").wait_for(timeout=30_000)
    assert _leaks(page.inner_text("body")) == [] and "Agreement" not in page.inner_text("body")
    forged.close()
    wrong = browser.new_context(extra_http_headers={"X-Forwarded-Email": OWNER,
                                                    "X-Ownbench-Proxy-Secret": "proxy-shared-secreT"})
    page = wrong.new_page()
    page.goto(dep.server.url + "/")
    page.get_by_text("Refused").wait_for(timeout=30_000)
    wrong.close()
    proxied = browser.new_context(extra_http_headers={"X-Forwarded-Email": ANA,
                                                      "X-Ownbench-Proxy-Secret": "proxy-shared-secret"})
    page = proxied.new_page()
    page.goto(dep.server.url + "/label")
    page.get_by_text("Unit 1 of 18").wait_for(timeout=30_000)
    assert _leaks(page.inner_text("body")) == []
    proxied.close()
