"""Recorded answers imported as runs: keyed by item key, prompt hash or messages; provenance kept and shown;
bad lines reported as file:line with nothing written."""
from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session, func, select

from gateway.imports import prompt_hash
from storage.models import Output, Run
from tests.conftest_loopback import freeze_items, ownbench_cli
from storage.hashing import file_hash


def lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_import_by_key_hash_and_messages_with_provenance(engine, tmp_path: Path) -> None:
    _, label = freeze_items(engine, 5)
    path = lines(tmp_path / "prod answers.jsonl", [
        {"item_key": "item-0000", "output": "Paris.", "latency_ms": 812.5, "prompt_tokens": 9,
         "completion_tokens": 2, "cost_usd": 0.00001},
        {"prompt_hash": prompt_hash([{"role": "user", "content": "question number 1"}]), "output": "Forty-two."},
        {"messages": [{"role": "user", "content": "question number 2"}], "text": "Blue.", "finish_reason": "stop"},
        {"item_id": "item-0003", "error": "provider error: 500 in production"},
    ])
    proc = ownbench_cli("runs", "import", path.name, "--candidate", "prod-model", "--set", label, "--json",
                        cwd=tmp_path, check=True)
    info = json.loads(proc.stdout)
    assert info["created"] and info["imported"] == 4 and info["items"] == 5
    with Session(engine) as s:
        run = s.get(Run, info["run_id"])
        outs = s.exec(select(Output).where(Output.run_id == run.id).order_by(Output.item_id)).all()
    assert run.source == "imported" and run.source_file_hash == file_hash(str(path))
    assert run.source_file == str(path.resolve()) and run.status == "done"
    assert [o.text for o in outs] == ["Paris.", "Forty-two.", "Blue.", None]
    assert outs[0].latency_ms == 812.5 and outs[0].cost_usd == 0.00001 and outs[3].error.startswith("provider")

    listed = json.loads(ownbench_cli("runs", "list", "--json", cwd=tmp_path, check=True).stdout)
    assert listed[0]["source"] == "imported" and listed[0]["source_file_hash"] == run.source_file_hash
    assert listed[0]["provenance"].startswith("imported from prod answers.jsonl (sha256 " + run.source_file_hash[:12])
    table = ownbench_cli("runs", "list", cwd=tmp_path, check=True).stdout
    assert "imported from prod answers.jsonl" in table
    shown = ownbench_cli("runs", "show", str(run.id), cwd=tmp_path, check=True).stdout
    assert run.source_file_hash in shown and "imported from" in shown
    exported = [json.loads(x) for x in ownbench_cli("runs", "export", str(run.id), cwd=tmp_path, check=True)
                .stdout.splitlines()]
    assert len(exported) == 4 and all(e["source"] == "imported" and e["source_file_hash"] == run.source_file_hash
                                      for e in exported)
    assert exported[1]["prompt_hash"] == prompt_hash([{"role": "user", "content": "question number 1"}])

    again = json.loads(ownbench_cli("runs", "import", path.name, "--candidate", "prod-model", "--set", label,
                                    "--json", cwd=tmp_path, check=True).stdout)
    assert not again["created"] and again["run_id"] == run.id  # the same file is not imported twice


def test_bad_lines_are_all_reported_and_nothing_is_written(engine, tmp_path: Path) -> None:
    _, label = freeze_items(engine, 3)
    path = lines(tmp_path / "answers.jsonl", [
        {"item_key": "item-0000", "output": "fine"},
        "{not json",
        {"item_key": "item-9999", "output": "x"},
        {"output": "no key"},
        {"item_key": "item-0001"},
        {"item_key": "item-0002", "output": "ok", "latency_ms": "fast"},
        {"item_key": "item-0000", "output": "again"},
        {"item_key": "item-0001", "output": "x", "colour": "red"},
        {"prompt_hash": "ab" * 32, "output": "x"},
    ])
    proc = ownbench_cli("runs", "import", str(path), "--candidate", "c", "--set", label, cwd=tmp_path)
    assert proc.returncode == 2
    err = " ".join(proc.stderr.split())  # Rich may wrap long lines
    assert "8 bad line(s); nothing was imported" in err
    for lineno, words in [(2, "not valid JSON"), (3, "no item with key 'item-9999'"), (4, "name the item"),
                          (5, "give the answer in output (or text), or an error"), (6, "latency_ms must be a number"),
                          (7, "item 'item-0000' already answered on line 1"), (8, "unknown field(s) colour"),
                          (9, "no item of this version has prompt hash")]:
        assert f"{path}:{lineno}: {words}" in err, (lineno, err)
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Run)).one() == 0
        assert s.exec(select(func.count()).select_from(Output)).one() == 0
