"""Report manifests and `ownbench reports verify`: a report says what it was computed from, and a judgment or
label changed behind its back with plain SQL is found, named and counted. On SQLite and PostgreSQL.
The judge verdicts and human labels in the database are SIMULATED (see tests/test_analysis_reports.py)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlmodel import select

from analysis.manifest import FORMAT, read_report
from storage.append_only import AppendOnlyViolation
from storage.db import session_scope
from storage.errors import InputError
from storage.models import Judgment, Label
from tests.test_analysis_reports import seed_study

OWNBENCH = str(Path(sys.executable).with_name("ownbench"))
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OWNBENCH, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=240,
                          check=False)


def raw_sql(engine, statement: str) -> int:
    """Plain SQL on a DBAPI connection, outside everything ownbench does: what someone with database access can do."""
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(statement)
        n = cur.rowcount
        conn.commit()
        return n
    finally:
        conn.close()


def test_flipped_judgments_and_deleted_labels_are_found(engine, tmp_path):
    seed_study(engine, items=60, golden=40, k=1, seed=3)
    md, js = tmp_path / "rank.md", tmp_path / "rank.json"
    rank = run("rank", "--set", "support@1", "--rubric", "support", "--bootstrap", "100", "--output", str(md),
               "--json")
    assert rank.returncode == 0, rank.stderr
    js.write_text(rank.stdout, encoding="utf-8")
    manifest = json.loads(rank.stdout)["manifest"]
    assert manifest["format"] == FORMAT and manifest["report"] == "rank"
    assert manifest["version"]["label"] == "support@1" and len(manifest["version"]["hash"]) == 64
    assert manifest["judge_runs"] == [1] and manifest["software"]["ownbench"]
    with session_scope(engine) as s:
        n_judgments = len(s.exec(select(Judgment.id)).all())
        n_labels = len(s.exec(select(Label.id)).all())
    assert manifest["digests"]["judgments"]["rows"] == n_judgments
    assert manifest["digests"]["labels"]["rows"] == n_labels > 0
    assert "## Manifest" in md.read_text()

    for report in (md, js):
        ok = run("reports", "verify", str(report))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "unchanged" in ok.stdout

    # flip 100 pass/fail verdicts behind ownbench's back
    flipped = raw_sql(engine, "UPDATE judgment SET verdict = CASE verdict WHEN 'pass' THEN 'fail' ELSE 'pass' END, "
                              "score = 1 - score WHERE id IN (SELECT id FROM judgment WHERE criterion_id = 'correct' "
                              "AND status = 'scored' ORDER BY id LIMIT 100)")
    assert flipped == 100
    for report in (md, js):
        res = run("reports", "verify", str(report), "--json")
        assert res.returncode == 1, res.stdout + res.stderr
        found = {f["what"].split(" (")[0]: f for f in json.loads(res.stdout)["findings"]}
        assert found["judgments"]["changed"] and "100 changed" in found["judgments"]["detail"]
        assert not found["labels"]["changed"] and not found["version"]["changed"]
        assert not found["report text"]["changed"]
    text_out = run("reports", "verify", str(md))
    assert text_out.returncode == 1 and "CHANGED" in text_out.stdout and "100 changed" in text_out.stdout

    # a deleted label is counted as deleted, by id
    label_id = raw_sql(engine, "DELETE FROM label WHERE id = (SELECT MIN(id) FROM label)")
    assert label_id == 1
    res = run("reports", "verify", str(js), "--json")
    found = {f["what"].split(" (")[0]: f for f in json.loads(res.stdout)["findings"]}
    assert res.returncode == 1 and "1 deleted" in found["labels"]["detail"]


def test_edited_report_text_and_a_fresh_report(engine, tmp_path):
    seed_study(engine, items=40, golden=30, k=1, seed=5)
    md = tmp_path / "agreement.md"
    res = run("agreement", "--set", "support@1", "--rubric", "support", "--bootstrap", "100", "--output", str(md))
    assert res.returncode == 0, res.stderr
    body = md.read_text(encoding="utf-8")
    assert run("reports", "verify", str(md)).returncode == 0
    # someone improves a number in the report itself
    md.write_text(re.sub(r"\| (\d)\.(\d{3}) \[", lambda m: "| 0.999 [", body, count=1), encoding="utf-8")
    edited = run("reports", "verify", str(md))
    assert edited.returncode == 1 and "report's text was edited" in edited.stdout
    # a new human label after the report was written: the report is out of date, and says by how much
    cols = ", ".join(c.name for c in Label.__table__.columns if c.name != "id")
    raw_sql(engine, f"INSERT INTO label ({cols}) SELECT {cols} FROM label WHERE id = (SELECT MIN(id) FROM label)")
    md.write_text(body, encoding="utf-8")
    res = run("reports", "verify", str(md))
    assert res.returncode == 1 and "1 added" in res.stdout


def test_compare_carries_a_manifest(sqlite_engine, tmp_path):
    seed_study(sqlite_engine, items=60, golden=45, k=1, seed=2)
    md = tmp_path / "compare.md"
    res = run("compare", "--set", "support@1", "--baseline", "baseline", "--candidate", "other", "--rubric", "support",
              "--bootstrap", "200", "--output", str(md), "--markdown")
    assert res.returncode in (0, 1), res.stderr
    assert res.stdout == md.read_text(encoding="utf-8")
    manifest, _ = read_report(md.read_text(encoding="utf-8"), str(md))
    assert manifest["report"] == "compare" and manifest["parameters"] == {"baseline": "baseline", "candidate": "other"}
    assert run("reports", "verify", str(md)).returncode == 0


def test_verify_refuses_what_is_not_a_report(sqlite_engine, tmp_path):
    plain = tmp_path / "notes.md"
    plain.write_text("# Ranking\n\nno manifest here\n", encoding="utf-8")
    broken = tmp_path / "broken.md"
    broken.write_text("# Ranking\n\n## Manifest\n\n```json\n{\"format\": \"ownbench-report-manifest/1\",\n```\n",
                      encoding="utf-8")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"manifest": {"format": FORMAT, "version": {"id": "x"}}}), encoding="utf-8")
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path, needle in ((plain, "no \"## Manifest\" section"), (broken, "broken.md:6"),
                         (wrong, "manifest:"), (binary, "not UTF-8"), (tmp_path / "missing.md", "no such file"),
                         (tmp_path, "directory")):
        res = run("reports", "verify", str(path))
        assert res.returncode == 2, (path, res.stdout, res.stderr)
        assert needle in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(InputError, match="no \"manifest\""):
        read_report('{"header": {}}', "r.json")


def test_judgments_and_labels_are_append_only(engine):
    seed_study(engine, items=10, golden=5, k=1)

    def snapshot():
        with session_scope(engine) as s:
            return ([(j.id, j.verdict, j.score) for j in s.exec(select(Judgment).order_by(Judgment.id))],
                    [(lab.id, lab.verdict) for lab in s.exec(select(Label).order_by(Label.id))])

    before = snapshot()
    assert before[0] and before[1]
    with pytest.raises(AppendOnlyViolation, match="UPDATE on 'judgment' refused"), session_scope(engine) as s:
        s.exec(select(Judgment)).first().verdict = "fail"
    with pytest.raises(AppendOnlyViolation, match="DELETE on 'label' refused"), session_scope(engine) as s:
        s.delete(s.exec(select(Label)).first())
    with pytest.raises(AppendOnlyViolation), engine.begin() as conn:
        conn.execute(update(Judgment).values(score=0))
    with pytest.raises(AppendOnlyViolation), engine.begin() as conn:
        conn.execute(text('DELETE FROM "label"'))
    assert snapshot() == before  # nothing was changed by any of them


# Statements that would change or remove judgments or labels, as our code would write them.
_MUTATION = re.compile(
    r"(update|delete)\(\s*(Judgment|Label)\b|(UPDATE|DELETE\s+FROM)\s+\"?(judgment|label)\b"
    r"|\.delete\(\s*(judgment|label|j|lab)\b",
    re.IGNORECASE,
)


def test_no_code_path_updates_or_deletes_judgments_or_labels():
    offenders = []
    for package in ("analysis", "evalsets", "gateway", "judging", "ownbench", "stats", "storage", "ui"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "append_only.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _MUTATION.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "judgments and labels are append-only:\n" + "\n".join(offenders)
    assert _MUTATION.search("s.execute(update(Judgment).values(score=1))")
    assert _MUTATION.search('conn.execute(text("DELETE FROM label WHERE id = 1"))')


def test_earlier_formats_still_verify_and_every_format_finds_a_changed_verdict(engine):
    """Reports written before the streamed digests (format 1, one canonical JSON per row) and before the column
    digests (format 2, every column of every row) verify by their own rules; all three name the same changed
    verdict. A rationale is free text no number depends on: formats 1 and 2 covered it, format 3 says it does not."""
    from analysis.manifest import FORMAT_1, FORMAT_2, _scopes, build_manifest, verify_manifest

    seed_study(engine, items=30, golden=20, k=1, seed=7)
    with session_scope(engine) as s:
        new = build_manifest(s, "rank", 1, 1, [1])
        older = [{**new, "format": fmt, "digests": {k: v.to_dict() for k, v in _scopes(s, 1, 1, [1], fmt).items()}}
                 for fmt in (FORMAT_2, FORMAT_1)]
        assert new["format"] == FORMAT and "rationale" not in new["columns"]["judgments"]
        for m in older:
            assert new["digests"]["judgments"]["rows"] == m["digests"]["judgments"]["rows"]
            assert new["digests"]["judgments"]["sha256"] != m["digests"]["judgments"]["sha256"]
        for m in (new, *older):
            assert not any(f.changed for f in verify_manifest(s, m, "")), m["format"]
        target = s.exec(select(Judgment.id).where(Judgment.status == "scored").order_by(Judgment.id)).first()
        verdict = s.get(Judgment, target).verdict
    raw_sql(engine, f"UPDATE judgment SET rationale = 'edited' WHERE id = {target}")
    with session_scope(engine) as s:
        for m in (new, *older):
            found = {f.what.split(" (")[0]: f for f in verify_manifest(s, m, "")}
            assert found["judgments"].changed == (m is not new), m["format"]
    flipped = "fail" if verdict == "pass" else "pass"
    raw_sql(engine, f"UPDATE judgment SET verdict = '{flipped}' WHERE id = {target}")
    with session_scope(engine) as s:
        for m in (new, *older):
            found = {f.what.split(" (")[0]: f for f in verify_manifest(s, m, "")}
            assert found["judgments"].changed and f"1 changed (ids {target})" in found["judgments"].detail, m["format"]
            assert not found["labels"].changed and not found["outputs"].changed
