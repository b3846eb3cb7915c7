"""Check criteria: exact local tests of outputs beside model-graded criteria.

The model-graded judge here is SIMULATED by the loopback server (scripted verdicts over real HTTP); check
verdicts are computed by ownbench itself and compared with expectations computed independently in the test.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from analysis.people import CLI
from gateway.client import ModelConfig
from judging.checks import CHECK_JUDGE, CHECKS_VERSION, CheckSpec, normalize_answer, run_check
from judging.rubric import RubricError, load_rubric, parse_rubric, rubric_from_version, validate_rubric_text
from judging.runs import JudgeRequest, judge_version
from storage.db import session_scope
from storage.models import Annotator, Judgment, Label, Output, RubricVersion
from tests.loopback import LoopbackServer
from tests.test_judging_support import scripted, seed_version

MIXED = """\
name: support-mixed
description: Model-graded helpfulness beside exact checks.
criteria:
  - id: helpful
    question: Does the response help the user?
    type: binary
  - id: short
    question: Is the response at most 1500 characters long?
    type: check
    check:
      max_chars: 1500
  - id: no_apology
    question: Does the response avoid apologising?
    type: check
    check:
      not_contains: {any: ["I'm sorry", "I apologize"]}
      ignore_case: true
  - id: has_digit
    question: Does the response contain a number?
    type: check
    check:
      regex: '\\d'
"""


def check(**kw) -> CheckSpec:  # type: ignore[no-untyped-def]
    return CheckSpec.model_validate(kw)


# --- exact on crafted outputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, text, verdict", [
    ({"regex": r"TICKET-\d{4}"}, "see TICKET-1234 for details", "pass"),
    ({"regex": r"TICKET-\d{4}"}, "see TICKET-12 for details", "fail"),
    ({"not_regex": r"(?i)as an ai"}, "As an AI, I cannot", "fail"),
    ({"not_regex": r"(?i)as an ai"}, "Here is the answer", "pass"),
    ({"contains": "refund"}, "We issued a refund.", "pass"),
    ({"contains": ["refund", "order"]}, "We issued a refund.", "fail"),  # a list: all of them
    ({"contains": {"any": ["refund", "order"]}}, "Your order ships today", "pass"),
    ({"contains": {"all": ["refund", "order"]}}, "Your order ships today", "fail"),
    ({"contains": "REFUND", "ignore_case": True}, "a refund", "pass"),
    ({"not_contains": ["sorry", "apologize"]}, "I apologize for that", "fail"),  # a list: none of them
    ({"not_contains": {"all": ["sorry", "apologize"]}}, "I apologize for that", "pass"),  # not all of them
    ({"not_contains": {"all": ["sorry", "apologize"]}}, "sorry, I apologize", "fail"),
    ({"json_valid": True}, ' {"a": [1, 2]}\n', "pass"),
    ({"json_valid": True}, '```json\n{"a": 1}\n```', "fail"),  # fenced JSON is not JSON
    ({"json_schema": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}}, '{"id": 7}', "pass"),
    ({"json_schema": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}}, '{"id": "7"}', "fail"),
    ({"json_schema": {"type": "object"}}, "not json", "fail"),
    ({"max_chars": 5}, "héllo", "pass"),  # code points, not bytes
    ({"max_chars": 4}, "héllo", "fail"),
    ({"min_chars": 6}, "héllo", "fail"),
    ({"max_chars": 10, "min_chars": 2}, "ok", "pass"),
])
def test_each_test_gives_the_exact_verdict(spec: dict, text: str, verdict: str) -> None:
    r = run_check(check(**spec), text=text)
    assert (r.status, r.verdict) == ("scored", verdict), r.rationale


def test_reference_latency_and_cost_tests_and_what_cannot_be_evaluated() -> None:
    eq = check(equals_reference=True)
    assert normalize_answer("  The answer is  CANBERRA.\n") == "the answer is canberra"
    assert run_check(eq, text="canberra", reference="Canberra.").verdict == "pass"
    assert run_check(eq, text="Ｃａｎｂｅｒｒａ", reference="Canberra").verdict == "pass"  # NFKC: full-width letters
    assert run_check(eq, text="Sydney", reference="Canberra.").verdict == "fail"
    r = run_check(eq, text="Canberra", reference=None)
    assert r.status == "unscored" and "no reference answer" in (r.unscored_reason or "")
    fast = check(max_latency_ms=500, max_cost=0.001)
    assert run_check(fast, text="x", latency_ms=499.0, cost_usd=0.0009).verdict == "pass"
    assert run_check(fast, text="x", latency_ms=501.0, cost_usd=0.0009).verdict == "fail"
    assert run_check(fast, text="x", latency_ms=10.0, cost_usd=0.002).verdict == "fail"
    r = run_check(fast, text="x", latency_ms=10.0, cost_usd=None)
    assert r.status == "unscored" and "no recorded cost" in (r.unscored_reason or "")
    # a definite failure is a failure even when another test cannot be evaluated
    assert run_check(fast, text="x", latency_ms=900.0, cost_usd=None).verdict == "fail"


def test_a_catastrophically_backtracking_pattern_is_unscored_not_a_hang() -> None:
    r = run_check(check(regex=r"^(a|aa)+$"), text="a" * 40 + "b")
    assert r.status == "unscored"
    assert "took over" in (r.unscored_reason or "") and "backtracking" in (r.unscored_reason or "")
    huge = run_check(check(not_regex="x"), text="y" * 300_000)
    assert huge.status == "unscored" and "300,000 characters" in (huge.unscored_reason or "")


# --- schema errors with file:line --------------------------------------------------------------------------


BAD = """\
name: bad-checks
description: Broken checks.
criteria:
  - id: pattern
    question: Has a ticket id?
    type: check
    check:
      regex: 'TICKET-(\\d+'
  - id: typo
    question: Short?
    type: check
    check:
      max_char: 800
  - id: missing
    question: Valid JSON?
    type: check
  - id: graded
    question: Helpful?
    type: binary
    check:
      json_valid: true
  - id: bounds
    question: Medium length?
    type: check
    check:
      min_chars: 900
      max_chars: 800
  - id: schema_file
    question: Matches the schema?
    type: check
    check:
      json_schema: schemas/missing.json
  - id: inline_schema
    question: Matches?
    type: check
    check:
      json_schema: {type: objekt}
"""


def test_check_problems_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(RubricError) as exc:
        load_rubric(path)
    found = {(p.line, p.key): p for p in exc.value.problems}
    assert str(path) in str(exc.value)
    pattern = found[(8, "criteria[0].check.regex")]
    assert "does not compile" in pattern.message
    typo = found[(13, "criteria[1].check.max_char")]
    assert "unknown key" in typo.message and "max_chars" in (typo.hint or "")
    missing = found[(14, "criteria[2].check")]
    assert "required key 'check' is missing" in missing.message
    graded = found[(20, "criteria[3].check")]
    assert "does not belong to a binary criterion" in graded.message
    bounds = found[(26, "criteria[4].check.min_chars")]
    assert "greater than max_chars" in bounds.message
    schema_file = found[(32, "criteria[5].check.json_schema")]
    assert "does not exist" in schema_file.message and "missing.json" in schema_file.message
    inline = found[(37, "criteria[6].check.json_schema")]
    assert "not a valid JSON schema" in inline.message
    assert all(p.source == str(path) for p in exc.value.problems)


def test_cli_validate_exits_2_with_file_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ownbench.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    res = CliRunner().invoke(app, ["rubrics", "validate", str(path)])
    assert res.exit_code == 2
    assert f"{path}:8: criteria[0].check.regex:" in res.output.replace("\n", " ") or f"{path}:8" in res.output


def test_schema_file_beside_the_rubric_is_part_of_its_version(tmp_path: Path, sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "schemas").mkdir()
    schema = tmp_path / "schemas" / "ticket.json"
    schema.write_text(json.dumps({"type": "object", "required": ["ticket"]}), encoding="utf-8")
    text = ("name: tickets\ndescription: Ticket JSON.\ncriteria:\n  - id: ticket_json\n    question: Ticket JSON?\n"
            "    type: check\n    check:\n      json_schema: schemas/ticket.json\n")
    path = tmp_path / "tickets.yaml"
    path.write_text(text, encoding="utf-8")
    first = load_rubric(path)
    c = first.criterion("ticket_json")
    assert c.is_check and c.type == "binary" and c.check.schema_doc == {"type": "object", "required": ["ticket"]}
    assert run_check(c.check, text='{"ticket": 1}').verdict == "pass"
    assert run_check(c.check, text='{"order": 1}').verdict == "fail"
    schema.write_text(json.dumps({"type": "object", "required": ["order"]}), encoding="utf-8")
    second = load_rubric(path)
    assert second.content_hash != first.content_hash  # the schema file's content is part of the version
    from judging.rubric import store_rubric

    with session_scope(sqlite_engine) as s:
        row = store_rubric(s, first)
        schema.unlink()  # a stored version does not depend on the file any more
        again = rubric_from_version(row)
    assert again.content_hash == first.content_hash
    assert again.criterion("ticket_json").check.schema_doc == {"type": "object", "required": ["ticket"]}


def test_model_graded_rubrics_keep_their_version_hash() -> None:
    """Adding checks to the vocabulary must not change the version of rubrics without checks."""
    rubric = parse_rubric(MIXED.split("  - id: short")[0])
    assert "check" not in rubric.spec["criteria"][0]
    ok, problems = validate_rubric_text(MIXED)
    assert not problems and ok is not None
    assert ok.spec["criteria"][1]["check"] == {"max_chars": 1500, "ignore_case": False}
    assert ok.spec["criteria"][1]["type"] == "binary"


# --- end to end: a rubric mixing checks and judge criteria -------------------------------------------------


def test_mixed_rubric_judged_end_to_end_over_the_loopback(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import re

    rubric = parse_rubric(MIXED, "mixed.yaml")
    with session_scope(engine) as s:
        version_id, runs = seed_version(s, n_items=6)
    with LoopbackServer() as srv:
        srv.script = scripted([{"reasoning": "It helps.", "verdict": "pass"}])
        cfg = ModelConfig("openai/sim-judge", api_base=srv.base_url, max_attempts=1,
                          input_price_per_mtok=1.0, output_price_per_mtok=2.0)
        summary = asyncio.run(judge_version(engine, JudgeRequest(version_id=version_id, rubric=rubric, judge=cfg)))
        calls = srv.request_count
    assert summary.status == "done" and summary.total == 6 * 2 * 4 and summary.unscored == 0
    assert calls == 12  # one judge call per output for `helpful`; the checks made none
    with Session(engine) as s:
        rows = list(s.exec(select(Judgment, Output.text).join(Output, Judgment.output_id == Output.id)
                           .where(Judgment.judge_run_id == summary.judge_run_id)))
    by_crit: dict[str, list] = {}
    for j, text in rows:
        by_crit.setdefault(j.criterion_id, []).append((j, text))
    assert {j.judge_model for j, _ in by_crit["helpful"]} == {"openai/sim-judge"}
    expected = {
        "short": lambda t: len(t) <= 1500,
        "no_apology": lambda t: "i'm sorry" not in t.lower() and "i apologize" not in t.lower(),
        "has_digit": lambda t: re.search(r"\d", t) is not None,
    }
    for cid, rule in expected.items():
        assert len(by_crit[cid]) == 12
        for j, text in by_crit[cid]:
            assert (j.judge_model, j.template_hash, j.status) == (CHECK_JUDGE, CHECKS_VERSION, "scored")
            assert j.verdict == ("pass" if rule(text) else "fail"), (cid, j.rationale)
            assert j.score == (1.0 if rule(text) else 0.0) and j.cost_usd == 0.0
    verdicts = {j.verdict for j, _ in by_crit["short"]}
    assert verdicts == {"pass", "fail"}  # the real answers cross the bound both ways

    # reports: the checks are ranked directly (exact, no gate) while the judge criterion waits for labels
    from analysis.reports import agreement_report, ranking_report

    with Session(engine) as s:
        rv = s.exec(select(RubricVersion).where(RubricVersion.name == "support-mixed")).one()
        report = ranking_report(s, version_id, rv.id, viewer=CLI, n_boot=200)
    by = {c["criterion"]: c for c in report.criteria}
    assert by["helpful"]["withheld"] and not by["helpful"]["rows"]
    short = by["short"]
    assert short["exact"] and not short["withheld"] and len(short["rows"]) == 2
    for row in short["rows"]:
        texts = [t for j, t in by_crit["short"] if j.output_id in _outputs_of(engine, runs[row["candidate"]])]
        assert row["calibrated"].value == pytest.approx(sum(len(t) <= 1500 for t in texts) / len(texts))
    md = report.to_markdown()
    assert "## short (check, exact)" in md and "no calibration" in md

    # humans label a check criterion: agreement is shown like any judge's
    with session_scope(engine) as s:
        ann = Annotator(name="ana")
        s.add(ann)
        s.flush()
        for j, text in by_crit["short"]:
            human = "pass" if len(text) <= 1500 else "fail"
            s.add(Label(annotator_id=ann.id, rubric_version_id=rv.id, criterion_id="short", item_id=j.item_id,  # type: ignore[arg-type]
                        output_id=j.output_id, verdict=human, score=1.0 if human == "pass" else 0.0))
    with Session(engine) as s:
        agreement = agreement_report(s, version_id, rv.id, viewer=CLI, n_boot=200)
    entry = next(c for c in agreement.criteria if c["criterion"] == "short")
    assert entry["check"] and entry["alpha_judge_vs_human"]["value"] == pytest.approx(1.0)
    assert "short (check" in agreement.to_markdown()


def _outputs_of(engine, run_id: int) -> set[int]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return set(s.exec(select(Output.id).where(Output.run_id == run_id)))


def test_checks_only_rubric_needs_no_judge_model(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest_loopback import ownbench_cli

    with session_scope(sqlite_engine) as s:
        seed_version(s, n_items=3)
    path = tmp_path / "checks.yaml"
    path.write_text("name: only-checks\ndescription: Checks only.\ncriteria:\n  - id: short\n    question: Short?\n"
                    "    type: check\n    check:\n      max_chars: 1500\n", encoding="utf-8")
    res = ownbench_cli("judge", "--set", "arena", "--rubric", str(path), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["judge_model"] == CHECK_JUDGE and out["scored"] == 6 and out["spend_usd"] == 0
