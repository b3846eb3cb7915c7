"""Every page with Streamlit's AppTest on a seeded database.

The seeded judgments, golden units and (where asked for) labels are SIMULATED (tests/test_ui_seed.py); the
background-job tests run the real `ownbench judge` subprocess against the loopback OpenAI-compatible server.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from storage.models import GoldenAssignment, GoldenUnit, Job, JudgeRun, Label, RubricVersion
from tests.test_ui_seed import CANDIDATE_NAMES, JUDGE_MODEL, MODEL_NAMES, RATIONALE, seed_project

APP = str(Path(__file__).resolve().parents[1] / "ui" / "app.py")


def page(name: str, annotator: str | None = None, **query: str) -> AppTest:
    """The page in single-user mode; `annotator` is the name picked in the sidebar (never a URL parameter)."""
    at = AppTest.from_file(APP, default_timeout=60)
    if annotator:
        at.session_state["annotator"] = annotator
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"views/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def all_text(at: AppTest) -> str:
    """Every element's protobuf as text: what the browser would receive."""
    out: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def draw_golden(at: AppTest, annotators: str, units: int, k: int | None = None) -> None:
    """Fill in the Agreement page's draw form and submit it; the draw must succeed."""
    next(t for t in at.text_input if t.label == "Annotators (comma separated)").input(annotators)
    next(n for n in at.number_input if n.label == "Units to draw").set_value(units)
    if k is not None:
        next(n for n in at.number_input if n.label == "Annotators per unit (k)").set_value(k)
    next(b for b in at.button if b.label == "Draw and assign").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]


@pytest.fixture
def seeded(sqlite_engine: Engine):  # type: ignore[no-untyped-def]
    return seed_project(sqlite_engine, simulated_labels=True)


def test_overview_counts_and_next_step(sqlite_engine: Engine, seeded) -> None:  # type: ignore[no-untyped-def]
    at = page("overview")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Candidates"] == "3" and metrics["Judgments"] == "72" and metrics["Golden units"] == "18"
    assert metrics["Labels"] == "72"  # 18 units × 2 criteria × 2 annotators, simulated
    assert any("rankings" in i.value.lower() for i in at.info)


def test_overview_on_an_empty_database_says_where_to_start(sqlite_engine: Engine) -> None:
    at = page("overview")
    assert "Freeze an eval set" in at.info[0].value


def test_label_page_shows_nothing_but_the_unit(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine, simulated_labels=False)
    # bob has simulated labels from an earlier session of the seed: none here; give alice's neighbour a label
    with Session(sqlite_engine) as s:
        s.add(Label(annotator_id=seeded.annotators["bob"], rubric_version_id=seeded.rubric_version_id,
                    criterion_id="correct", item_id=1, output_id=1, golden_unit_id=seeded.unit_ids[0],
                    verdict="fail", score=0.0, comment="COMMENT-OF-bob"))
        s.commit()
    at = page("label", annotator="alice")
    text = all_text(at)
    assert "Criterion 1 of 2" in text and "Is the answer factually correct?" in text
    for secret in [*CANDIDATE_NAMES, *MODEL_NAMES, JUDGE_MODEL, RATIONALE, "COMMENT-OF-bob", "stratum"]:
        assert secret not in text, secret
    # the output's markup arrives as inert text, never as HTML
    assert "&lt;script>" in text and "<img src=x" not in text


def test_label_save_and_next_appends_labels(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine)
    at = page("label", annotator="alice")
    assert [b.label for b in at.button if b.key and b.key.startswith("choice:")] == ["Pass", "Fail"]
    at.text_input(key=f"comment:{seeded.unit_ids[0]}:correct").input("looks right")
    next(b for b in at.button if b.label == "Pass").click().run()
    assert "Criterion 2 of 2" in all_text(at)
    next(b for b in at.button if b.label == "3").click().run()
    next(b for b in at.button if b.label == "Skip").click().run()
    next(b for b in at.button if b.label == "Flag").click().run()
    assert "Flagged" in all_text(at)
    next(b for b in at.button if b.label == "2").click().run()
    assert "Unit 3 of 18" in all_text(at) and "2 of 18 units done" in all_text(at)
    with Session(sqlite_engine) as s:
        rows = s.exec(select(Label).order_by(Label.id)).all()
    assert [(r.criterion_id, r.verdict, r.skipped, r.flagged, r.comment) for r in rows] == [
        ("correct", "pass", False, False, "looks right"), ("helpful", "3", False, False, None),
        ("correct", None, True, False, None), ("helpful", "2", False, True, None)]
    assert rows[2].golden_unit_id == rows[3].golden_unit_id == seeded.unit_ids[1]


def test_label_page_without_assignments_says_what_to_do(sqlite_engine: Engine) -> None:
    seed_project(sqlite_engine)
    at = page("label", annotator="carol")
    assert "No golden units are assigned to carol" in at.info[0].value
    assert "`ownbench golden select`" in at.info[0].value  # a command that exists
    at = page("label")
    assert "Pick your name" in at.info[0].value


def test_eval_sets_page_lists_versions_and_searches_items(sqlite_engine: Engine, seeded) -> None:  # type: ignore[no-untyped-def]
    at = page("eval_sets")
    text = all_text(at)
    assert "support@1" in text
    at.text_input(key="sets-search").input("q003").run()
    assert "1 item(s)" in all_text(at)


def test_rubric_editor_validates_with_line_numbers_and_saves(sqlite_engine: Engine, seeded) -> None:  # type: ignore[no-untyped-def]
    at = page("rubrics")
    at.selectbox(key="rub-start").select("file: rubrics/helpfulness.yaml").run()
    good = at.text_area(key="rub-text").value
    assert "Valid: helpfulness" in at.success[0].value
    broken = good.replace("type: ordinal", "type: ordinall", 1)
    at.text_area(key="rub-text").input(broken).run()
    line = next(i for i, ln in enumerate(broken.splitlines(), 1) if "ordinall" in ln)
    assert at.error and f"line {line}" in all_text(at)
    at.text_area(key="rub-text").input(good.replace("temperature: 0", "temperature: 0.2", 1)).run()
    next(b for b in at.button if b.label == "Save as a new version").click().run()
    assert any("Saved helpfulness" in s.value for s in at.success)
    with Session(sqlite_engine) as s:
        assert len(s.exec(select(RubricVersion).where(RubricVersion.name == "helpfulness")).all()) == 2
    assert "--- system ---" in all_text(at)  # the judge prompt preview


def test_runs_page_says_how_to_configure_a_judge(sqlite_engine: Engine, seeded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("OWNBENCH_JUDGE_MODEL", raising=False)
    at = page("runs")
    assert "No judge is configured" in at.warning[0].value
    assert "cand-secret-alpha" in all_text(at)  # the runs table


def _wait_job(engine: Engine, job_id: int, statuses: tuple[str, ...], timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as s:
            job = s.get(Job, job_id)
            if job is not None and job.status in statuses:
                return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not reach {statuses}: {job}")


def test_runs_page_starts_a_judge_run_in_the_background_and_cancels(sqlite_engine: Engine, seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.loopback import LoopbackServer

    with LoopbackServer(latency=0.4) as server:
        at = page("runs")
        at.secrets["LOOPBACK_JUDGE_KEY"] = "sk-secrets-toml-sentinel-7731"
        form_text = {t.label: t for t in at.text_input}
        form_text["Judge model (LiteLLM string)"].input("openai/loopback-judge")
        form_text["API base (optional)"].input(server.base_url)
        form_text["API key variable (optional)"].input("LOOPBACK_JUDGE_KEY")
        next(b for b in at.button if b.label == "Start judge run").click().run()
        assert at.success and "Started job" in at.success[0].value
        with Session(sqlite_engine) as s:
            job = s.exec(select(Job)).one()
        assert job.kind == "judge" and job.pid and "--judge" in job.args["argv"]
        running = _wait_job(sqlite_engine, job.id, ("running", "failed", "done"))
        assert running.status == "running", running.message
        at.run()  # a reload of the page: the job is still listed, with its progress
        cancel = next(b for b in at.button if b.label == "Cancel")
        cancel.click().run()
        done = _wait_job(sqlite_engine, job.id, ("cancelled", "done", "failed"))
        assert done.status == "cancelled", (done.status, done.message)
        assert server.request_count > 0
        # the key from secrets.toml reached the provider, and nothing else: not the job row, not its log
        assert "Bearer sk-secrets-toml-sentinel-7731" in server.auth_headers
    with Session(sqlite_engine) as s:
        assert s.exec(select(JudgeRun).where(JudgeRun.judge_model == "openai/loopback-judge")).first() is not None
        assert "sentinel" not in repr(s.exec(select(Job)).one())
    assert not any("sentinel" in f.read_text(errors="replace") for f in tmp_path.rglob("*.log"))


def test_runs_page_starts_a_pairwise_judge_run(sqlite_engine: Engine, seeded) -> None:  # type: ignore[no-untyped-def]
    at = page("runs")
    form_text = {t.label: t for t in at.text_input}
    form_text["Judge model (LiteLLM string)"].input("openai/loopback-judge")
    form_text["API base (optional)"].input("http://127.0.0.1:9/v1")  # nothing listens: the job fails, no matter
    at.radio(key="judge-mode").set_value("pairwise")
    names = at.multiselect(key="judge-candidates").options
    at.multiselect(key="judge-candidates").set_value(names[:2])
    next(b for b in at.button if b.label == "Start judge run").click().run()
    assert at.success and "Started job" in at.success[0].value
    with Session(sqlite_engine) as s:
        job = s.exec(select(Job)).one()
    argv = job.args["argv"]
    assert argv[argv.index("--mode") + 1] == "pairwise"
    assert argv[argv.index("--candidates") + 1] == ",".join(names[:2])
    _wait_job(sqlite_engine, job.id, ("failed", "done", "cancelled"), timeout=120)


def test_agreement_page_draws_golden_and_shows_rationale_only_here(sqlite_engine: Engine, seeded) -> None:  # type: ignore[no-untyped-def]
    at = page("agreement")
    text = all_text(at)
    assert "Golden subset: 18 units drawn" in text
    # simulated humans disagree with the simulated judge somewhere: the browser shows the judge's rationale
    assert RATIONALE in text
    with Session(sqlite_engine) as s:
        before = len(s.exec(select(GoldenAssignment)).all())
    names = next(t for t in at.text_input if t.label == "Annotators (comma separated)")
    names.input("dana, erin")
    next(n for n in at.number_input if n.label == "Units to draw").set_value(4)
    next(b for b in at.button if b.label == "Draw and assign").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with Session(sqlite_engine) as s:
        after = len(s.exec(select(GoldenAssignment)).all())
    # the seeded subset was drawn under another design: a further batch would lose the known probabilities
    assert after == before and any("another design" in e.value for e in at.error)


def test_agreement_page_draws_a_golden_subset_with_known_probabilities(sqlite_engine: Engine) -> None:
    seed_project(sqlite_engine, golden_items=0)  # simulated judge verdicts, nothing drawn yet
    at = page("agreement")
    draw_golden(at, "dana, erin", 4)
    with Session(sqlite_engine) as s:
        units = s.exec(select(GoldenUnit)).all()
        assignments = s.exec(select(GoldenAssignment)).all()
    assert len(units) == 4 and len(assignments) == 8  # 4 units × 2 annotators
    assert all(u.inclusion_prob is not None and 0 < u.inclusion_prob <= 1 for u in units)


def test_rankings_page_before_the_gate(sqlite_engine: Engine) -> None:
    seed_project(sqlite_engine)  # no labels yet: the ranking must be withheld, with the reason
    at = page("rankings")
    text = all_text(at)
    assert "Ranking withheld" in text and "label 30 more" in text
    assert "Calibrated estimates" not in text and not at.get("arrow_vega_lite_chart")
    assert "withheld" in page("overview").info[0].value


def test_agreement_report_and_gated_ranking_after_labels(sqlite_engine: Engine) -> None:
    """Simulated labels that mostly agree with the simulated judge: the report shows alphas with intervals."""
    seed_project(sqlite_engine, simulated_labels=True)
    at = page("agreement")
    text = all_text(at)
    assert "Krippendorff" in text and "Alt-Test" in text
    assert {"Markdown", "JSON"} <= {b.label for b in at.get("download_button")}
    assert "reports verify" in text  # the downloads carry a manifest, and the page says how to check it


def test_rankings_unlock_once_the_gate_passes(sqlite_engine: Engine) -> None:
    """60 golden units, two simulated annotators who agree with the simulated judge 97 % of the time."""
    seed_project(sqlite_engine, items=20, golden_items=20, simulated_labels=True, human_agreement=0.97)
    at = page("rankings")
    text = all_text(at)
    assert "Calibrated estimates" in text, text[:3000]
    assert "cand-secret-alpha" in text and "calibrated [95 % CI]" in text
    assert at.get("arrow_vega_lite_chart") or "vega" in text.lower()
    assert {"CSV", "Markdown", "JSON"} <= {b.label for b in at.get("download_button")}
    assert "reports verify" in text


def test_agreement_page_draws_pairwise_units_from_a_pairwise_run(sqlite_engine: Engine) -> None:
    """Judge verdicts are SIMULATED (tests/test_analysis_pairwise.py); the draw and the labeling are the app's."""
    from tests.test_analysis_pairwise import _seed_pairwise

    _seed_pairwise(sqlite_engine, golden_per_pair=0)
    with Session(sqlite_engine) as s:
        pairwise_run = s.exec(select(JudgeRun).where(JudgeRun.mode == "pairwise")).one().id
    at = page("agreement")
    at.selectbox(key="agr-judge").set_value(pairwise_run).run()
    assert next(r for r in at.radio if r.label == "Strategy").options == ["candidate pair"]
    assert any("first-position win share" in str(df.value.columns.tolist()) for df in at.dataframe)
    draw_golden(at, "pat", 6, k=1)
    with Session(sqlite_engine) as s:
        units = s.exec(select(GoldenUnit)).all()
    assert len(units) == 6 and all(u.mode == "pairwise" and u.output_b_id for u in units)
    label = page("label", annotator="pat")
    assert "Unit 1 of 6" in all_text(label)
    choices = [b for b in label.button if b.key and b.key.startswith("choice:")]
    assert len(choices) == 3  # first, second, tie
    choices[0].click().run()
    with Session(sqlite_engine) as s:
        saved = s.exec(select(Label)).one()
    assert saved.output_b_id is not None and saved.verdict in {"A", "B"}


def test_agreement_page_draws_by_candidate_where_no_judge_has_run_yet(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine, golden_items=0)  # a judge run on the first rubric only (SIMULATED)
    with Session(sqlite_engine) as s:
        first = s.get(RubricVersion, seeded.rubric_version_id)
        second = RubricVersion(name=first.name, content_hash="f" * 64, yaml_text=first.yaml_text, spec=first.spec)
        s.add(second)
        s.commit()
        second_id = second.id
    at = page("agreement")
    pair = next(p for p in at.selectbox(key="agr-pair").options if "(ffffffff)" in p)
    at.selectbox(key="agr-pair").select(pair).run()
    assert any("No judge run on this eval set and rubric yet" in i.value for i in at.info)
    assert next(r for r in at.radio if r.label == "Strategy").options == ["candidate"]
    draw_golden(at, "dana", 3, k=1)
    with Session(sqlite_engine) as s:
        units = s.exec(select(GoldenUnit)).all()
    assert len(units) == 3 and {u.rubric_version_id for u in units} == {second_id}


def _captions(at: AppTest) -> list[str]:
    """Caption texts as shown (the renderer's markdown escapes and word joiners removed)."""
    return [c.value.replace("\\", "").replace("\u2060", "") for c in at.caption]


def test_pages_say_which_judge_run_they_took_by_default(sqlite_engine: Engine) -> None:
    """A pointwise and a newer pairwise judge run on one set × rubric (judge verdicts SIMULATED, see
    tests/test_analysis_pairwise.py). Each page names the run it took (id, mode, judge, date) and why; the judge
    model's name, text someone wrote, goes through the renderer (a markdown image in it stays inert)."""
    from tests.test_analysis_pairwise import _seed_pairwise

    _seed_pairwise(sqlite_engine, golden_per_pair=20)
    with Session(sqlite_engine) as s:
        runs = {r.mode: r for r in s.exec(select(JudgeRun))}
        runs["pairwise"].judge_model = "judge ![x](http://evil.test/x.png)"
        s.add(runs["pairwise"])
        s.commit()
        pw, pt = runs["pairwise"], runs["pointwise"]
        pw_id, pt_id, pw_at, pt_at, pt_model = pw.id, pt.id, pw.started_at, pt.started_at, pt.judge_model

    def said(run_id: int, mode: str, model: str, started: Any) -> str:
        return f"Showing judge run {run_id} ({mode}, judge {model}, started {started:%Y-%m-%d %H:%M} UTC)"

    at = page("agreement")  # the newest run is the default
    shown = _captions(at)
    assert any(said(pw_id, "pairwise", "judge ![x](http://evil.test/x.png)", pw_at) in c
               and "the latest of 2 judge runs" in c for c in shown), shown
    assert "agreement without ties" in all_text(at) and "Confusion, rows judge" in all_text(at)  # pairwise agreement
    raw = [c.value for c in at.caption if "Showing judge run" in c.value]
    assert raw and all("](http" not in c and "![" not in c for c in raw)  # escaped: no image, no link
    at.selectbox(key="agr-judge").set_value(pt_id).run()
    assert any(said(pt_id, "pointwise", pt_model, pt_at) in c and "chosen among 2" in c for c in _captions(at))

    at = page("rankings")
    shown = _captions(at)
    assert any(said(pt_id, "pointwise", pt_model, pt_at) in c and "the only pointwise judge run" in c for c in shown)
    assert any(said(pw_id, "pairwise", "judge ![x](http://evil.test/x.png)", pw_at) in c
               and "Bradley–Terry strengths below come from it" in c for c in shown), shown
    assert "Bradley–Terry strengths (pairwise)" in all_text(at)

    lines = " ".join(i.value.replace("\\", "").replace("\u2060", "") for i in page("overview").info)
    assert f"the latest pointwise judge run, {pt_id} with judge {pt_model}" in lines
    assert f"the latest pairwise judge run, {pw_id} with judge" in lines


def test_rankings_page_with_only_a_pairwise_run(sqlite_engine: Engine) -> None:
    """As after importing arena-style votes and pairwise verdicts: no pointwise run at all (pairwise judge
    verdicts SIMULATED, tests/test_analysis_pairwise.py; the pointwise run of that seed is removed)."""
    from tests.test_analysis_pairwise import _seed_pairwise

    _seed_pairwise(sqlite_engine, golden_per_pair=20)
    with Session(sqlite_engine) as s:
        pointwise = s.exec(select(JudgeRun).where(JudgeRun.mode == "pointwise")).one().id
        pw = s.exec(select(JudgeRun).where(JudgeRun.mode == "pairwise")).one()
        pw_id, pw_model = pw.id, pw.judge_model
    conn = sqlite_engine.raw_connection()  # the ORM refuses to delete judgments (append-only): a test's own edit
    try:
        conn.cursor().execute(f"DELETE FROM judgment WHERE judge_run_id = {pointwise}")
        conn.cursor().execute(f"DELETE FROM judge_run WHERE id = {pointwise}")
        conn.commit()
    finally:
        conn.close()
    at = page("rankings")
    assert any(f"Showing judge run {pw_id} (pairwise, judge {pw_model}" in c and "the only pairwise judge run" in c
               for c in _captions(at)), _captions(at)
    text = all_text(at)
    assert "Bradley–Terry strengths (pairwise)" in text and "human only, golden battles" in text
    lines = " ".join(i.value.replace("\\", "").replace("\u2060", "") for i in page("overview").info)
    assert f"the latest pairwise judge run, {pw_id} with judge {pw_model}" in lines and "pointwise judge run" not in lines
