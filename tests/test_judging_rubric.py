"""Rubric files: the shipped ones are valid; malformed ones name file, line and key; versions by hash."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from sqlmodel import Session, select

from judging.rubric import (
    RUBRICS_DIR,
    SCHEMA_HEADER,
    RubricError,
    load_rubric,
    parse_rubric,
    store_rubric,
    validate_rubric_text,
)
from storage.models import RubricVersion

FIXTURES = Path(__file__).with_name("fixtures") / "rubrics"
SHIPPED = sorted(RUBRICS_DIR.glob("*.yaml"))


def test_three_rubrics_are_shipped_with_the_schema_header() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"helpfulness", "correctness", "safety"} <= names
    for path in SHIPPED:
        assert path.read_text().splitlines()[0] == SCHEMA_HEADER


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_rubric_is_valid_for_the_editor_schema_and_the_loader(path: Path) -> None:
    schema = json.loads((RUBRICS_DIR / "rubric.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load(path.read_text())
    data = {**data, "criteria": [
        {**c, "levels": {str(k): v for k, v in c["levels"].items()}} if "levels" in c else c for c in data["criteria"]
    ]}
    jsonschema.validate(data, schema)  # what yaml-language-server checks while typing
    rubric = load_rubric(path)
    assert rubric.criteria and rubric.content_hash == load_rubric(path).content_hash


def test_shipped_rubrics_cover_the_three_criterion_types() -> None:
    types = {load_rubric(RUBRICS_DIR / f"{n}.yaml").criteria[0].type for n in ("helpfulness", "correctness", "safety")}
    assert types == {"ordinal", "binary", "categorical"}
    correctness = load_rubric(RUBRICS_DIR / "correctness.yaml")
    assert correctness.criteria[0].uses_reference


# file, expected line, expected key (or "" for a whole-file problem), a word the message must contain
MALFORMED = [
    ("unknown_key.yaml", 5, "criteria[0].questoin", "unknown key"),
    ("bad_type.yaml", 6, "criteria[0].type", "ordnal"),
    ("missing_question.yaml", 4, "criteria[0].question", "missing"),
    ("levels_gap.yaml", 9, "criteria[0].levels", "level 3"),
    ("level_out_of_range.yaml", 13, "criteria[0].levels.5", "outside"),
    ("bad_example_label.yaml", 11, "criteria[0].examples[0].label", "hostile"),
    ("duplicate_ids.yaml", 7, "criteria[1].id", "used twice"),
    ("labels_on_binary.yaml", 7, "criteria[0].labels", "does not belong"),
    ("yaml_syntax.yaml", 6, "", "YAML syntax error"),
    ("boolean_label.yaml", 10, "criteria[0].examples[0].label", "bool"),
    ("bad_temperature.yaml", 5, "judge.temperature", "maximum"),
    ("bad_id.yaml", 4, "criteria[0].id", "Is OK"),
    ("duplicate_key.yaml", 6, "criteria[0].question", "more than once"),
    ("ordinal_label_string.yaml", 13, "criteria[0].examples[0].label", "good"),
    ("min_above_max.yaml", 8, "criteria[0].max", "greater than min"),
    ("reference_missing_in_example.yaml", 9, "criteria[0].examples[0]", "reference"),
    ("empty.yaml", 1, "", "empty"),
    ("top_level_list.yaml", 1, "", "mapping"),
    ("bad_mode.yaml", 4, "judge.mode", "pairwize"),
]


@pytest.mark.parametrize("name,line,key,word", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_rubric_names_file_line_and_key(name: str, line: int, key: str, word: str) -> None:
    path = FIXTURES / name
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    problems = info.value.problems
    match = [p for p in problems if p.line == line and p.key == key and word in p.message]
    assert match, [str(p) for p in problems]
    assert all(p.source == str(path) for p in problems)
    # the message users see starts with file:line and carries a hint
    assert info.value.message.startswith(f"{path}:{problems[0].line}:")
    assert problems[0].hint


def test_hints_suggest_the_intended_word() -> None:
    problems = validate_rubric_text((FIXTURES / "bad_type.yaml").read_text(), "r.yaml")[1]
    assert problems[0].hint == "did you mean 'ordinal'?"
    problems = validate_rubric_text((FIXTURES / "unknown_key.yaml").read_text(), "r.yaml")[1]
    assert [p.hint for p in problems] == ["did you mean 'question'?"]  # not also "question is missing"


def test_editor_validation_reports_every_problem_at_once() -> None:
    text = (RUBRICS_DIR / "helpfulness.yaml").read_text()
    text = text.replace("type: ordinal", "type: ordinal\n    colour: red").replace("      5: Fully", "      6: Fully")
    rubric, problems = validate_rubric_text(text, "<editor>")
    assert rubric is None
    keys = {p.key for p in problems}
    assert "criteria[0].colour" in keys and "criteria[0].levels" in keys and "criteria[0].levels.6" in keys
    assert all(p.line and p.source == "<editor>" for p in problems)
    assert [p.line for p in problems] == sorted(p.line for p in problems)  # type: ignore[type-var]


def test_missing_file_is_an_input_error_with_the_shipped_rubrics_as_hint(tmp_path: Path) -> None:
    from storage.errors import InputError

    with pytest.raises(InputError) as info:
        load_rubric(tmp_path / "nope.yaml")
    assert "helpfulness.yaml" in (info.value.hint or "")


def test_any_change_of_text_is_a_new_version_but_line_endings_are_not() -> None:
    text = (RUBRICS_DIR / "correctness.yaml").read_text()
    base = parse_rubric(text).content_hash
    assert parse_rubric(text.replace("\n", "\r\n")).content_hash == base
    assert parse_rubric(text + "# a comment\n").content_hash != base
    assert parse_rubric(text.replace("temperature: 0", "temperature: 0.2")).content_hash != base


def test_verdicts_are_normalised_and_checked_against_the_criterion() -> None:
    rubric = load_rubric(RUBRICS_DIR / "helpfulness.yaml")
    c = rubric.criteria[0]
    assert c.normalize("4") == "4" and c.normalize(4.0) == "4" and c.score_of("4") == 4.0
    for bad in ("6", 0, "four", 3.5, True):
        with pytest.raises(ValueError):
            c.normalize(bad)
    binary = load_rubric(RUBRICS_DIR / "correctness.yaml").criteria[0]
    assert binary.normalize("PASS") == "pass" and binary.score_of("fail") == 0.0
    cat = load_rubric(RUBRICS_DIR / "safety.yaml").criteria[0]
    assert cat.normalize("over_refusal") == "over_refusal" and cat.score_of("over_refusal") is None


def test_store_rubric_is_idempotent_and_links_versions_of_the_same_name(engine) -> None:  # type: ignore[no-untyped-def]
    text = (RUBRICS_DIR / "helpfulness.yaml").read_text()
    v1 = parse_rubric(text, "rubrics/helpfulness.yaml")
    v2 = parse_rubric(text.replace("temperature: 0", "temperature: 0.3"), "rubrics/helpfulness.yaml")
    with Session(engine) as s:
        r1 = store_rubric(s, v1)
        again = store_rubric(s, v1)
        r2 = store_rubric(s, v2)
        s.commit()
        assert again.id == r1.id and r1.parent_id is None
        assert r2.parent_id == r1.id and r2.content_hash != r1.content_hash
        assert r1.yaml_text == text and r1.spec["criteria"][0]["levels"]["5"].startswith("Fully")
        assert r1.spec["judge"] == {"model": "openai/gpt-4o-mini", "temperature": 0.0, "mode": "pointwise",
                                    "structured_output": "tools"}
        assert len(s.exec(select(RubricVersion)).all()) == 2
