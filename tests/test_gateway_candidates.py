"""candidates.yaml: validation errors name the file, the line and the key; storing is an upsert with a hash."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from gateway.candidates import load_candidates, upsert_candidate
from storage.db import session_scope
from storage.errors import InputError
from storage.models import Candidate
from tests.conftest_loopback import ownbench_cli

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
candidates:
  - name: a
    model: openai/gpt-4o-mini
    params: {temperature: 0}
    api_key_env: OPENAI_API_KEY
  - name: b
    model: openai/local
    api_base: http://127.0.0.1:8000/v1
    input_price_per_mtok: 0
    output_price_per_mtok: 0
    concurrency: 16
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "candidates.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_candidates(path)
    return info.value


def test_example_file_is_valid() -> None:
    specs = load_candidates(ROOT / "ownbench" / "project_template" / "candidates.yaml")
    assert len(specs) >= 2 and len({s.name for s in specs}) == len(specs)


def test_good_file_loads(tmp_path: Path) -> None:
    a, b = load_candidates(write(tmp_path, GOOD))
    assert (a.name, a.model, a.params, a.api_key_env) == ("a", "openai/gpt-4o-mini", {"temperature": 0}, "OPENAI_API_KEY")
    assert b.concurrency == 16 and b.model_config_for(concurrency=3).max_concurrency == 3
    assert b.model_config_for().input_price_per_mtok == 0.0


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("candidates:\n  - name: a\n    model: m\n    temprature: 0.2\n", 4, "candidates[0] (name 'a').temprature"),
        ("candidates:\n  - name: a\n    params: {}\n", 2, "candidates[0] (name 'a').model: Field required"),
        ("candidates:\n  - name: a\n    model: m\n  - name: b\n    model: m\n    rpm: lots\n", 6, ".rpm"),
        ("candidates:\n  - name: a\n    model: m\n    input_price_per_mtok: 1\n", 2, "give both"),
        ("candidates:\n  - name: a\n    model: m\n    concurrency: 0\n", 4, "greater than or equal to 1"),
        ("candidates:\n  - name: a\n    model: m\n  - name: a\n    model: n\n", 4, "already used"),
        ("candidates:\n  - name: a\n    model: m\n    api_base: localhost:8000\n", 4, "http://"),
        ("candidates:\n  - name: a\n    model: m\n    params: {model: x}\n", 4, "cannot be a param"),
        ("candidates: [\n", 2, "not valid YAML"),
        ("models: []\n", 1, "candidates"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    err = error_of(path)
    assert err.where == f"{path}:{line}", err.message
    assert words in err.message


def test_a_pasted_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    secret = "sk-live-SENTINEL-123456789abcdef"
    err = error_of(write(tmp_path, f"candidates:\n  - name: a\n    model: m\n    api_key_env: {secret}\n"))
    assert err.where.endswith(":4") and "NAME of an environment variable" in err.message  # type: ignore[union-attr]
    assert "SENTINEL" not in err.message
    err = error_of(write(tmp_path, f"candidates:\n  - name: a\n    model: m\n    api_key: {secret}\n"))
    assert "do not belong" in err.message and "api_key_env" in err.message and "SENTINEL" not in err.message


def test_upsert_updates_the_row_and_its_hash(engine, tmp_path: Path) -> None:
    specs = load_candidates(write(tmp_path, GOOD))
    with session_scope(engine) as s:
        first = upsert_candidate(s, specs[0]).config_hash
    changed = load_candidates(write(tmp_path, GOOD.replace("{temperature: 0}", "{temperature: 1}")))
    limits_only = load_candidates(write(tmp_path, GOOD.replace("concurrency: 16", "concurrency: 2")))
    with session_scope(engine) as s:
        second = upsert_candidate(s, changed[0]).config_hash
        upsert_candidate(s, changed[1])
    assert first != second
    assert changed[1].config_hash() == limits_only[1].config_hash()  # limits do not change the outputs
    with Session(engine) as s:
        rows = s.exec(select(Candidate).order_by(Candidate.name)).all()
    assert [(r.name, r.params) for r in rows] == [("a", {"temperature": 1}), ("b", {})]


def test_cli_bad_file_exits_2_with_file_and_line(sqlite_engine, tmp_path: Path) -> None:
    write(tmp_path, "candidates:\n  - name: a\n    model: m\n    colour: blue\n")
    proc = ownbench_cli("candidates", "add", "candidates.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "candidates.yaml:4" in proc.stderr and "colour" in proc.stderr
    with Session(sqlite_engine) as s:
        assert s.exec(select(Candidate)).all() == []
    ok = ownbench_cli("candidates", "add", str(write(tmp_path, GOOD)), cwd=tmp_path, check=True)
    assert "candidate a" in ok.stdout and "candidate b" in ok.stdout
    listed = ownbench_cli("candidates", "list", cwd=tmp_path, check=True)
    assert "openai/local" in listed.stdout


def test_cli_run_bad_usage_exits_2(sqlite_engine, tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    missing_set = ownbench_cli("run", "--set", "nope@1", "--candidate", "a", cwd=tmp_path)
    assert missing_set.returncode == 2 and "no eval set version 'nope@1'" in missing_set.stderr
    unknown = ownbench_cli("run", "--set", "nope@1", "--candidate", "zzz", cwd=tmp_path)
    assert unknown.returncode == 2 and "no candidate named 'zzz'" in unknown.stderr
    no_flag = ownbench_cli("run", "--candidate", "a", cwd=tmp_path)
    assert no_flag.returncode == 2 and "--set" in no_flag.stderr
