"""People, roles and who may read what; sign-in settings that refuse to start; adjudication and reassignment.

The judgments and labels in the seeded database are SIMULATED (tests/test_ui_seed.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from analysis import adjudication, labeling, people, progress
from analysis.data import load_study
from analysis.labels import export_rows
from analysis.people import CLI, AccessDenied, Viewer
from analysis.reports import agreement_report, ranking_report
from storage.errors import InputError
from storage.models import Annotator, GoldenAssignment, GoldenUnit
from tests.conftest import ROOT
from tests.test_ui_seed import seed_project
from ui import auth

OWNBENCH = str(Path(sys.executable).with_name("ownbench"))


def _viewer(s: Session, name: str) -> Viewer:
    v = people.signed_in(s, name, "oidc")
    assert v is not None
    return v


# --- sign-in settings ----------------------------------------------------------------------------------------------


def test_deployment_modes_and_refusals() -> None:
    assert auth.deployment_mode({}, oidc=False) == "single-user"
    assert auth.deployment_mode({}, oidc=True) == "oidc"
    with pytest.raises(auth.ConfigError, match="OWNBENCH_PROXY_SECRET"):
        auth.deployment_mode({"OWNBENCH_AUTH_HEADER": "X-Email"}, oidc=False)
    assert auth.deployment_mode({"OWNBENCH_AUTH_HEADER": "X-Email", "OWNBENCH_PROXY_SECRET": "s"}, oidc=False) == "header"
    with pytest.raises(auth.ConfigError, match="pick one"):
        auth.deployment_mode({"OWNBENCH_AUTH_HEADER": "X-Email", "OWNBENCH_PROXY_SECRET": "s"}, oidc=True)
    auth.check_address("single-user", "127.0.0.1", insecure=False)
    with pytest.raises(auth.ConfigError, match="--insecure"):
        auth.check_address("single-user", "0.0.0.0", insecure=False)
    auth.check_address("single-user", "0.0.0.0", insecure=True)
    auth.check_address("oidc", "0.0.0.0", insecure=False)


def test_proxy_secret_is_compared_whole() -> None:
    env = {"OWNBENCH_AUTH_HEADER": "X-Email", "OWNBENCH_PROXY_SECRET": "s3cret"}
    assert auth.header_trusted({"X-Ownbench-Proxy-Secret": "s3cret"}, env)
    assert not auth.header_trusted({"X-Ownbench-Proxy-Secret": "s3cre"}, env)
    assert not auth.header_trusted({"X-Ownbench-Proxy-Secret": "s3cretX"}, env)
    assert not auth.header_trusted({}, env)
    assert not auth.header_trusted({"X-Ownbench-Proxy-Secret": ""}, {**env, "OWNBENCH_PROXY_SECRET": ""})
    env["OWNBENCH_PROXY_SECRET_HEADER"] = "X-Other"
    assert auth.header_trusted({"X-Other": "s3cret"}, env)


def _serve(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OWNBENCH_AUTH", "OWNBENCH_PROXY"))}
    full.update({"OWNBENCH_HOME": str(tmp_path), **env})
    return subprocess.run([sys.executable, "-m", "ui.serve", "--server.headless", "true", *args], cwd=ROOT,
                          env=full, capture_output=True, text=True, timeout=120, check=False)


def test_header_mode_without_the_secret_refuses_to_start(tmp_path: Path) -> None:
    done = _serve(["--server.port", "1"], {"OWNBENCH_AUTH_HEADER": "X-Forwarded-Email", "OWNBENCH_PROXY_SECRET": ""},
                  tmp_path)
    assert done.returncode == 2
    assert "OWNBENCH_PROXY_SECRET" in done.stderr and "X-Forwarded-Email" in done.stderr


def test_single_user_mode_refuses_a_public_address(tmp_path: Path) -> None:
    done = _serve(["--server.port", "1", "--server.address", "0.0.0.0",
                   "--secrets.files", str(tmp_path / "none.toml")], {}, tmp_path)
    assert done.returncode == 2 and "--insecure" in done.stderr and "single-user" in done.stderr


def test_ownbench_app_refuses_a_public_address_without_insecure(tmp_path: Path) -> None:
    done = subprocess.run([OWNBENCH, "app", "--address", "0.0.0.0", "--port", "1"], capture_output=True, text=True,
                          env={**os.environ, "OWNBENCH_HOME": str(tmp_path)}, timeout=120, check=False)
    assert done.returncode == 2 and "--insecure" in done.stderr


# --- people ------------------------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OWNBENCH, "users", *args], capture_output=True, text=True, env=os.environ.copy(),
                          timeout=120, check=False)


def test_users_cli_add_list_role_remove(sqlite_engine: Engine) -> None:
    assert _cli("add", "owner@example.org", "--role", "owner").returncode == 0
    assert _cli("add", "ana@example.org").returncode == 0
    bad = _cli("add", "eve@example.org", "--role", "admin")
    assert bad.returncode == 2 and "unknown role 'admin'" in bad.stderr and "owner, reviewer, annotator" in bad.stderr
    bad = _cli("add", "![x](http://203.0.113.9/p.png)")
    assert bad.returncode == 2 and "holds '!' (U+0021)" in bad.stderr
    assert _cli("add", "ana@example.org").returncode == 2  # already there
    assert _cli("role", "ana@example.org", "reviewer").returncode == 0
    last = _cli("remove", "owner@example.org")
    assert last.returncode == 2 and "last owner" in last.stderr
    assert _cli("remove", "ana@example.org").returncode == 0
    listed = _cli("list").stdout
    assert "owner@example.org" in listed and "ana@example.org" not in listed
    assert "removed    ana@example.org" in _cli("list", "--all").stdout
    with Session(sqlite_engine) as s:
        assert people.signed_in(s, "ana@example.org", "oidc") is None  # removed: cannot sign in
        assert people.signed_in(s, "stranger@example.org", "oidc") is None  # nobody is created by signing in
        assert s.exec(select(Annotator).where(Annotator.name == "stranger@example.org")).first() is None
        first = people.signed_in(s, "boss@example.org", "oidc", owners=("boss@example.org",))
        assert first is not None and first.role == "owner"


# --- blind everywhere, enforced where data is read --------------------------------------------------------------


def test_annotators_are_refused_by_the_query_layer(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine, simulated_labels=True)
    with Session(sqlite_engine) as s:
        alice = _viewer(s, "alice")
        assert alice.role == "annotator"
        vid, rid = seeded.version_id, seeded.rubric_version_id
        task = labeling.tasks_for(s, seeded.annotators["alice"])[0]
        for call in (lambda: agreement_report(s, vid, rid, viewer=alice, n_boot=50),
                     lambda: ranking_report(s, vid, rid, viewer=alice, n_boot=100),
                     lambda: export_rows(s, vid, rid, viewer=alice),
                     lambda: labeling.progress_all(s, task, viewer=alice),
                     lambda: adjudication.queue(s, alice, vid, rid),
                     lambda: progress.people_progress(s, alice, task)):
            with pytest.raises(AccessDenied, match="alice"):
                call()
        people.set_role(s, "bob", "reviewer")
        bob = _viewer(s, "bob")
        assert agreement_report(s, vid, rid, viewer=bob, n_boot=50).criteria


def _disagreeing_seed(engine: Engine):  # type: ignore[no-untyped-def]
    return seed_project(engine, simulated_labels=True, human_agreement=0.5, seed=3)


def test_adjudication_end_to_end_changes_calibration_and_is_exported(sqlite_engine: Engine) -> None:
    seeded = _disagreeing_seed(sqlite_engine)
    vid, rid = seeded.version_id, seeded.rubric_version_id
    with Session(sqlite_engine) as s:
        people.add(s, "rita", "reviewer")
        rita = _viewer(s, "rita")
        todo = adjudication.queue(s, rita, vid, rid)
        assert todo, "the seeded labels disagree somewhere"
        first = next(d for d in todo if d.criterion_id == "correct")
        assert {x["annotator"] for x in first.labels} == {"alice", "bob"}
        before = load_study(s, vid, rid).criteria["correct"]
        with pytest.raises(InputError, match="note"):
            adjudication.record(s, rita, vid, rid, first.golden_unit_id, "correct", "pass", "  ")
        with pytest.raises(InputError, match="not a valid label"):
            adjudication.record(s, rita, vid, rid, first.golden_unit_id, "correct", "maybe", "why")
        adj = adjudication.record(s, rita, vid, rid, first.golden_unit_id, "correct", "fail", "alice misread it")
        s.commit()
        assert adj.adjudicator_id == rita.annotator_id and adj.note == "alice misread it"
        assert {x["annotator"] for x in adj.labels} == {"alice", "bob"}  # provenance: what it resolved
        assert all((d.golden_unit_id, d.criterion_id) != (first.golden_unit_id, "correct")
                   for d in adjudication.queue(s, rita, vid, rid))  # settled: off the queue
        after = load_study(s, vid, rid).criteria["correct"]
        unit = s.get(GoldenUnit, first.golden_unit_id)
        r, c = load_study(s, vid, rid).output_index[unit.output_id]
        assert before.human_mean[r, c] == pytest.approx(0.5)  # one pass, one fail
        assert after.human_mean[r, c] == 0.0 and after.adjudicated == 1
        assert np.isnan(before.human_mean).sum() == np.isnan(after.human_mean).sum()
        assert set(after.humans) == set(before.humans)  # agreement still compares the annotators' own labels
        assert all(np.array_equal(after.humans[k], before.humans[k], equal_nan=True) for k in before.humans)
        rows = export_rows(s, vid, rid, viewer=CLI)
        marked = [row for row in rows if row["source"] == "adjudicated"]
        assert len(marked) == 1 and marked[0]["rater"] == "rita" and marked[0]["verdict"] == "fail"
        assert marked[0]["reason"] == "alice misread it"
        md = ranking_report(s, vid, rid, viewer=CLI, n_boot=100, force=True).to_markdown()
        assert "calibration uses the adjudicated label" in md


def test_a_reviewer_assigned_a_unit_stays_blind_until_they_label_it(sqlite_engine: Engine) -> None:
    seeded = _disagreeing_seed(sqlite_engine)
    vid, rid = seeded.version_id, seeded.rubric_version_id
    with Session(sqlite_engine) as s:
        people.add(s, "rita", "reviewer")
        rita = _viewer(s, "rita")
        todo = adjudication.queue(s, rita, vid, rid)
        target = todo[0]
        s.add(GoldenAssignment(golden_unit_id=target.golden_unit_id, annotator_id=rita.annotator_id, position=0))
        s.flush()
        hidden = adjudication.queue(s, rita, vid, rid)
        assert all(d.golden_unit_id != target.golden_unit_id for d in hidden)
        unit = s.get(GoldenUnit, target.golden_unit_id)
        assert (unit.output_id, target.criterion_id) in adjudication.still_blind(s, rita, rid)
        with pytest.raises(InputError, match="no disagreement"):
            adjudication.record(s, rita, vid, rid, target.golden_unit_id, target.criterion_id, "pass", "x")
        labeling.save_label(s, rita.annotator_id, target.golden_unit_id, target.criterion_id,
                            choice="pass" if target.criterion_id == "correct" else "2")
        assert (unit.output_id, target.criterion_id) not in adjudication.still_blind(s, rita, rid)
        assert any(d.golden_unit_id == target.golden_unit_id and d.criterion_id == target.criterion_id
                   for d in adjudication.queue(s, rita, vid, rid))


def test_people_progress_and_reassign_keep_the_draw(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine, simulated_labels=False)
    with Session(sqlite_engine) as s:
        people.add(s, "carol", "annotator")
        people.add(s, "rita", "reviewer")
        rita = _viewer(s, "rita")
        task = labeling.tasks_for(s, seeded.annotators["alice"])[0]
        for unit_id in seeded.unit_ids[:2]:  # alice labels two units
            for crit, choice in (("correct", "pass"), ("helpful", "3")):
                labeling.save_label(s, seeded.annotators["alice"], unit_id, crit, choice=choice)
        labeling.save_label(s, seeded.annotators["bob"], seeded.unit_ids[0], "correct", choice="pass")
        rows = {p.annotator: p for p in progress.people_progress(s, rita, task)}
        assert rows["alice"].done_units == 2 and rows["alice"].assigned_units == 18
        assert rows["alice"].peer_comparisons == 1 and rows["alice"].peer_agreement == 1.0
        assert rows["alice"].median_seconds is not None and rows["alice"].median_seconds >= 0
        units_before = [(u.id, u.inclusion_prob, u.stratum) for u in s.exec(select(GoldenUnit).order_by(GoldenUnit.id))]
        moved = progress.reassign(s, rita, task, "alice", "carol", limit=5)
        assert moved == 5
        carol = s.exec(select(Annotator).where(Annotator.name == "carol")).one()
        got = s.exec(select(GoldenAssignment.golden_unit_id).where(GoldenAssignment.annotator_id == carol.id)).all()
        assert len(got) == 5 and not set(got) & set(seeded.unit_ids[:2])  # labeled units stay with alice
        assert [(u.id, u.inclusion_prob, u.stratum) for u in
                s.exec(select(GoldenUnit).order_by(GoldenUnit.id))] == units_before
        assert progress.reassign(s, rita, task, "alice", "bob") == 0  # bob already holds every unit
        with pytest.raises(InputError, match="no role"):
            progress.reassign(s, rita, task, "alice", "nobody")
        with pytest.raises(AccessDenied):
            progress.reassign(s, _viewer(s, "carol"), task, "alice", "carol")


def test_the_app_itself_refuses_untrusted_header_settings_and_requests(sqlite_engine: Engine,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Started without ui.serve's check (`streamlit run ui/app.py`), the page still refuses; nothing is read."""
    from streamlit.testing.v1 import AppTest

    seed_project(sqlite_engine)
    app = str(ROOT / "ui" / "app.py")
    monkeypatch.setenv("OWNBENCH_AUTH_HEADER", "X-Email")
    monkeypatch.delenv("OWNBENCH_PROXY_SECRET", raising=False)
    at = AppTest.from_file(app, default_timeout=60).run()
    assert any("Refused" in e.value and "OWNBENCH_PROXY_SECRET" in e.value for e in at.error)
    assert not at.metric
    monkeypatch.setenv("OWNBENCH_PROXY_SECRET", "s3cret")  # configured, but this request has no secret header
    at = AppTest.from_file(app, default_timeout=60).run()
    assert any("did not come through the authenticating proxy" in e.value for e in at.error)
    assert not at.metric
