"""`ownbench ingest` and `ownbench sets …` as a user runs them: JSON output, exit codes, refusals."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from ownbench.cli import app

ARENA = FIXTURES / "logs" / "arena_39.jsonl"
OWNBENCH = str(Path(sys.executable).with_name("ownbench"))
runner = CliRunner()


def run(*args: str, ok: bool = True):
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def ingest_arena(*extra: str) -> dict:
    res = run("ingest", str(ARENA), "--name", "arena", "--prompt-field", "turns", "--id-field", "question_id",
              "--metadata-fields", "language,turn", "--sample", "10", "--seed", "1", "--quota", "multi-turn=2",
              "--quota", "longest=1", "--json", *extra)
    return json.loads(res.stdout)


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from ownbench.cli import app\n"
        "for args in (['--help'], ['sets', '--help'], ['ingest', '--help']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('litellm', 'streamlit', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert "ingest" in out and "Turn production logs" in out and "--near-dup-threshold" in out


def test_ingest_json_then_list_show_export(tmp_path: Path) -> None:
    data = ingest_arena()
    assert data["version"] == "arena@1" and data["items"] == 10 and data["created"]
    report = data["report"]
    assert report["records_read"] == 39 and report["sampling"]["quotas"]["multi_turn"]["filled"] == 2
    assert ingest_arena()["created"] is False  # same logs, same seed: the same version

    listed = json.loads(run("sets", "list", "--json").stdout)
    assert [(r["ref"], r["hash"], r["items"]) for r in listed] == [("arena@1", data["hash"], 10)]
    shown = json.loads(run("sets", "show", "arena@1", "--json").stdout)
    assert shown["hash"] == data["hash"] and len(shown["item_list"]) == 10
    assert shown["item_list"][0]["meta"]["language"] == "English"
    human = run("sets", "show", "arena").stdout
    assert "arena@1" in human and "verified" in human and "top terms" in human

    out = tmp_path / "arena.csv"
    assert "Exported 10 items" in run("sets", "export", "arena@1", "-o", str(out)).stdout
    assert out.read_text(encoding="utf-8").startswith("key,prompt,messages,reference,meta,content_hash")
    res = run("sets", "export", "arena@1", "-o", str(tmp_path / "x.xml"), ok=False)
    assert "unknown export format 'xml'" in str(res.exception)


def test_edit_commands_and_diff(tmp_path: Path) -> None:
    ingest_arena()
    keys = [i["key"] for i in json.loads(run("sets", "show", "arena@1", "--json").stdout)["item_list"]]
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "new-1", "messages": [{"role": "user", "content": "Summarise this ticket."}]}) + "\n")
    added = json.loads(run("sets", "add", "arena@1", str(extra), "--note", "support case", "--json").stdout)
    assert added["version"] == "arena@2" and added["diff"]["added"] == ["new-1"] and added["parent"] == "arena@1"
    removed = json.loads(run("sets", "remove", "arena@2", keys[0], "--json").stdout)
    assert removed["diff"]["removed"] == [keys[0]] and removed["items"] == 10
    repl = tmp_path / "repl.jsonl"
    repl.write_text(json.dumps({"id": keys[1], "messages": [{"role": "user", "content": "Reworded."}]}) + "\n")
    replaced = json.loads(run("sets", "replace", "arena@3", str(repl), "--json").stdout)
    assert replaced["version"] == "arena@4" and replaced["diff"]["replaced"] == [keys[1]]
    d = json.loads(run("sets", "diff", "arena@1", "arena@4", "--json").stdout)
    assert ([x["key"] for x in d["added"]], [x["key"] for x in d["removed"]], [x["key"] for x in d["replaced"]]) == (
        ["new-1"], [keys[0]], [keys[1]])
    assert "~ " + keys[1] in run("sets", "diff", "arena@4").stdout  # against its parent
    res = run("sets", "remove", "arena@4", "no-such-key", ok=False)
    assert "no item 'no-such-key' in arena@4" in str(res.exception)


def test_tampering_fails_verify_and_every_other_command_refuses(db_url: str, tmp_path: Path) -> None:
    data = ingest_arena()
    eng = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as conn:
        key = conn.execute(text("SELECT item_key FROM item ORDER BY position LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE item SET reference = 'changed by hand' WHERE item_key = :k"), {"k": key})
    eng.dispose()
    res = subprocess.run([OWNBENCH, "sets", "verify"], capture_output=True, text=True)
    assert res.returncode == 1 and "FAILED arena@1" in res.stderr and f"item '{key}'" in res.stderr
    assert "does not match its hash" in res.stderr
    verify_json = json.loads(run("sets", "verify", "arena@1", "--json", ok=False).stdout)
    assert verify_json["ok"] is False and verify_json["versions"][0]["problems"]
    for args in (["sets", "show", "arena@1"], ["sets", "export", "arena@1", "-o", str(tmp_path / "o.jsonl")],
                 ["sets", "remove", "arena@1", key], ["sets", "diff", "arena@1", data["hash"][:12]]):
        res = subprocess.run([OWNBENCH, *args], capture_output=True, text=True)
        err = " ".join(res.stderr.split())
        assert res.returncode == 2, args
        assert "failed verification" in err and "ownbench sets verify" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_bad_input_exits_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "fine"}]}\n{"messages": [\n', encoding="utf-8")
    res = subprocess.run([OWNBENCH, "ingest", str(bad), "--name", "x"], capture_output=True, text=True)
    err = " ".join(res.stderr.split())
    assert res.returncode == 2
    assert f"{bad}:2: truncated JSON" in err and "--on-error skip" in err
    res = subprocess.run([OWNBENCH, "ingest", str(bad), "--name", "x", "--on-error", "skip", "--json"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and json.loads(res.stdout)["skipped"] == 1
    for args, message in (
        (["ingest", str(bad), "--name", "y", "--format", "xml"], "unknown format 'xml'"),
        (["ingest", str(bad), "--name", "y", "--quota", "weird=3"], "bad quota 'weird=3'"),
        (["sets", "show", "nothing@1"], "no eval set version 'nothing@1'"),
    ):
        res = subprocess.run([OWNBENCH, *args], capture_output=True, text=True)
        assert res.returncode == 2 and message in " ".join(res.stderr.split()), (args, res.stderr)
    res = subprocess.run([OWNBENCH, "ingest", "--name", "z"], capture_output=True, text=True)
    assert res.returncode == 2 and "Missing argument" in res.stderr
