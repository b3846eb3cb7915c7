"""The Judges page and the Runs page's batch table, with Streamlit's AppTest on a seeded database whose
judgments and labels are SIMULATED (tests/test_ui_seed.py)."""
from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.db import session_scope
from storage.models import JudgeRun, ProviderBatch
from tests.test_ui_pages import all_text, page
from tests.test_ui_seed import JUDGE_MODEL, seed_project


def test_judges_page_compares_judge_runs_and_stores_a_panel(sqlite_engine: Engine) -> None:
    seed_project(sqlite_engine, simulated_labels=True)
    at = page("judges")
    text = all_text(at)
    assert JUDGE_MODEL in text and "human-only width" in text
    with Session(sqlite_engine) as s:
        run_id = s.exec(select(JudgeRun.id).where(JudgeRun.mode == "pointwise")).first()
    # a panel needs two members: one is refused with the reason, nothing stored
    at.multiselect[0].set_value([run_id])
    next(b for b in at.button if b.label == "Store the panel as a judge run").click().run()
    assert any("at least two judge runs" in e.value for e in at.error)
    with Session(sqlite_engine) as s:
        assert s.exec(select(JudgeRun).where(JudgeRun.source == "panel")).first() is None


def test_runs_page_shows_provider_batches(sqlite_engine: Engine) -> None:
    seed_project(sqlite_engine, simulated_labels=False)
    with session_scope(sqlite_engine) as s:
        run_id = s.exec(select(JudgeRun.id)).first()
        s.add(ProviderBatch(kind="judge", judge_run_id=run_id, model="openai/sim-judge", batch_id="batch_abc123",
                            status="in_progress", request_count=12, requests={},
                            counts={"total": 12, "completed": 5, "failed": 0}))
    at = page("runs")
    text = all_text(at)
    assert "Provider batches" in text and "batch_abc123" in text and "in_progress" in text


def test_rubric_editor_previews_a_check_on_a_real_output_instead_of_a_prompt(sqlite_engine: Engine) -> None:
    seed_project(sqlite_engine, simulated_labels=False)
    at = page("rubrics")
    at.text_area(key="rub-text").input(
        "name: checks\ndescription: Exact checks.\ncriteria:\n  - id: short\n    question: Short?\n"
        "    type: check\n    check:\n      max_chars: 100000\n").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    text = all_text(at)
    assert "is a check: computed locally, no judge call (max_chars)" in text
    assert "pass: max_chars: pass" in text
