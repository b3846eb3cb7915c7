"""`ownbench demo` on the shipped real data: what it builds, that it invents nothing, and the judge job."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from storage.models import (
    Annotator,
    Candidate,
    EvalSet,
    GoldenUnit,
    Job,
    Judgment,
    Label,
    Output,
    RubricVersion,
    Run,
)
from tests.conftest import ROOT


def _demo(env_extra: dict[str, str], home: Path) -> dict:
    env = {**os.environ, "OWNBENCH_HOME": str(home), "OWNBENCH_DEMO_NO_BROWSER": "1", "OWNBENCH_LOCAL_JUDGE": "off",
           **env_extra}
    env.pop("OWNBENCH_JUDGE_MODEL", None) if "OWNBENCH_JUDGE_MODEL" not in env_extra else None
    out = subprocess.run([sys.executable, "-c", "from ownbench.cli import main; main()", "demo", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_demo_builds_from_shipped_data_without_inventing_verdicts(sqlite_engine: Engine, tmp_path: Path) -> None:
    result = _demo({"OWNBENCH_DATABASE_URL": str(sqlite_engine.url)}, tmp_path / "home")
    assert result["version"] == "arena-hard@1" and result["items"] == 250
    assert result["judge_job_id"] is None and "No judge is configured" in result["judge_message"]
    with Session(sqlite_engine) as s:
        runs = s.exec(select(Run, Candidate.name).join(Candidate)).all()
        assert sorted(n for _r, n in runs) == sorted(
            ["gpt-4", "claude-v1", "gpt-3.5-turbo", "vicuna-13b-v1.5", "Llama-2-70b-chat"])
        for run, _name in runs:
            assert run.source == "imported" and len(run.source_file_hash or "") == 64
            assert len(run.config["shipped_file_sha256"]) == 64
        assert s.exec(select(func.count()).select_from(Output)).one() == 5 * 250
        assert s.exec(select(func.count()).select_from(Judgment)).one() == 0
        assert s.exec(select(func.count()).select_from(Label)).one() == 0
        assert {r.name for r in s.exec(select(RubricVersion))} >= {"helpfulness"}
        names = {e.name for e in s.exec(select(EvalSet))}
    assert "arena-hard" in names
    # a second run reuses everything
    again = _demo({"OWNBENCH_DATABASE_URL": str(sqlite_engine.url)}, tmp_path / "home")
    assert again["version_id"] == result["version_id"]
    with Session(sqlite_engine) as s:
        assert s.exec(select(func.count()).select_from(Run)).one() == 5


def test_demo_starts_a_judge_run_when_a_judge_is_configured(sqlite_engine: Engine, tmp_path: Path) -> None:
    from tests.loopback import LoopbackServer

    with LoopbackServer(latency=0.2) as server:
        result = _demo({"OWNBENCH_DATABASE_URL": str(sqlite_engine.url), "OWNBENCH_JUDGE_MODEL": "openai/demo-judge",
                        "OWNBENCH_JUDGE_API_BASE": server.base_url, "OWNBENCH_DEMO_JUDGE_LIMIT": "2"},
                       tmp_path / "home")
        job_id = result["judge_job_id"]
        assert job_id is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with Session(sqlite_engine) as s:
                job = s.get(Job, job_id)
                if job.status in ("done", "failed", "cancelled"):
                    break
            time.sleep(0.5)
        assert job.status == "done", job.message
        assert server.request_count > 0
        with Session(sqlite_engine) as s:
            # the loopback echoes instead of giving verdicts: every judgment is unscored with a reason
            rows = s.exec(select(Judgment)).all()
            assert rows and all(j.status == "unscored" and j.unscored_reason for j in rows)


def test_without_a_judge_people_can_draw_and_label_the_demo(sqlite_engine: Engine, tmp_path: Path) -> None:
    """The demo with no judge configured: a golden subset drawn by candidate alone, then labeled blind."""
    from tests.test_ui_pages import all_text, draw_golden, page

    _demo({"OWNBENCH_DATABASE_URL": str(sqlite_engine.url)}, tmp_path / "home")
    overview = page("overview")
    assert any("draw a golden subset by candidate alone" in i.value for i in overview.info)
    at = page("agreement")
    assert "Agreement needs a judge run" in at.info[0].value
    assert next(r for r in at.radio if r.label == "Strategy").options == ["candidate"]
    draw_golden(at, "dana", 10, k=1)
    with Session(sqlite_engine) as s:
        units = s.exec(select(GoldenUnit)).all()
        assert len(units) == 10 and {u.selection["strategy"] for u in units} == {"candidate"}
        assert len({u.stratum for u in units}) == 5  # one stratum per imported candidate
        for u in units:  # drawn in its candidate / that candidate's outputs with text
            same = sum(g.stratum == u.stratum for g in units)
            assert u.inclusion_prob == pytest.approx(same / u.selection["stratum_size"])
            assert 240 <= u.selection["stratum_size"] <= 250
        names = [c.name for c in s.exec(select(Candidate))]
    label = page("label", annotator="dana")
    text = all_text(label)
    assert "Unit 1 of 10" in text
    for name in names:
        assert name not in text, name  # blind: no model name on the Label page
    choice = next(b for b in label.button if b.key and b.key.startswith("choice:"))
    choice.click().run()
    assert not label.exception
    with Session(sqlite_engine) as s:
        saved = s.exec(select(Label)).all()
        assert len(saved) == 1 and saved[0].golden_unit_id in {u.id for u in units} and saved[0].verdict
        assert saved[0].annotator_id == s.exec(select(Annotator.id).where(Annotator.name == "dana")).one()


def _verdict_script(body: dict) -> dict:
    """A SIMULATED local judge: the loopback answers every request with the same valid verdict."""
    return {"content": json.dumps({"reasoning": "It answers the question directly.", "verdict": 4})}


def test_demo_judges_a_slice_on_the_local_judge_and_the_overview_shows_its_progress(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    from tests.loopback import LoopbackServer
    from tests.test_ui_pages import all_text, page

    with LoopbackServer(slots=1, script=_verdict_script) as server:  # stands in for `make local-judge`
        result = _demo({"OWNBENCH_DATABASE_URL": str(sqlite_engine.url), "OWNBENCH_LOCAL_JUDGE": server.base_url,
                        "OWNBENCH_DEMO_JUDGE_LIMIT": "2"}, tmp_path / "home")
        job_id = result["judge_job_id"]
        assert job_id is not None, result["judge_message"]
        message = result["judge_message"]
        assert "local judge found" in message and "first 2 items × 5 candidates = 10 outputs" in message
        assert "1 call(s) in flight" in message and "Overview" in message
        # the readiness check was a real chat completion asking for a verdict, before any judge call
        assert server.bodies[0]["response_format"]["type"] == "json_object"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with Session(sqlite_engine) as s:
                job = s.get(Job, job_id)
                if job.status in ("done", "failed", "cancelled"):
                    break
            time.sleep(0.5)
        assert job.status == "done", job.message
        argv = job.args["argv"]
        assert argv[argv.index("--concurrency") + 1] == "1"  # the server's slots
        assert argv[argv.index("--template") + 1] == "pointwise_compact"
        with Session(sqlite_engine) as s:
            rows = s.exec(select(Judgment)).all()
        assert len(rows) == 10 and all(j.status == "scored" and j.verdict == "4" for j in rows)
        assert {j.judge_model for j in rows} == {"openai/qwen2.5-coder-0.5b"}
    from ui.render import inline

    at = page("overview")
    overview, lines = all_text(at), [m.value for m in at.markdown]
    assert any(f"Job {job_id}" in line and inline("openai/qwen2.5-coder-0.5b") in line  # through the renderer
               for line in lines), lines
    assert "10 of 10 judged · 0 unscored" in overview


def test_demo_looks_for_a_local_judge_that_gives_real_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    from ownbench.demo_project import find_local_judge
    from tests.loopback import LoopbackServer

    with LoopbackServer() as server:  # lists models, but answers "echo: …" instead of a verdict
        monkeypatch.setenv("OWNBENCH_LOCAL_JUDGE", server.base_url)
        found = find_local_judge()
        assert found.config is None and "gave no valid verdict" in found.message
        port = server.port
    monkeypatch.setenv("OWNBENCH_LOCAL_JUDGE", f"http://127.0.0.1:{port}/v1")  # nothing listens there now
    found = find_local_judge()
    assert found.config is None and "make local-judge" in found.message and "run `make demo` again" in found.message
