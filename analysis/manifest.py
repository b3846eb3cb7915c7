"""The manifest every report carries: what it was computed from, in a form `ownbench reports verify` can check.

A manifest names the eval set version and rubric version (their hashes and a digest of their stored rows), the
judge run(s), the software version, and for each set of rows the report read (judgments, labels, golden units
and assignments, outputs) a SHA-256 digest over the rows' values in id order, so that a changed, added or
deleted row changes the digest. For judgments, outputs and labels the values are the columns reports compute from
(`analysis.stored.COLUMNS_IN_WORDS`, also written into the manifest under "columns"); the smaller sets are digested
whole. Beside each digest it keeps a 4-byte fingerprint per row, so that a check can
say how many rows changed, appeared or disappeared, and which. `body_sha256` covers the report's own text (the
Markdown above the manifest, or the canonical JSON without the manifest), so an edited report file is caught
too. This is tamper-evidence, not a signature: whoever can write the database and the report can forge both.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from storage.errors import InputError
from storage.models import (
    Adjudication,
    EvalSetVersion,
    GoldenAssignment,
    GoldenUnit,
    JudgeRun,
    Judgment,
    Label,
    Output,
    RubricVersion,
    Run,
)

FORMAT = "ownbench-report-manifest/3"
# Format 1 digested each row as canonical JSON (about 30 µs a row); format 2 streams every column of every row
# through vectorised per-value hashes (analysis/rowdigest.py); format 3 digests judgments, outputs and labels by
# the columns reports compute from (analysis/stored.py: not a rationale's or an output's wording), from the very
# arrays the report computed with, so a million judgments are read once, not twice. Reports written in formats 1
# and 2 still verify, each by its own rules.
FORMAT_2 = "ownbench-report-manifest/2"
FORMAT_1 = "ownbench-report-manifest/1"
FORMATS = (FORMAT, FORMAT_2, FORMAT_1)
MARKDOWN_HEADING = "## Manifest"
_FENCE_RE = re.compile(r"^## Manifest\n.*?^```json\n(?P<json>.*?)^```\s*$", re.DOTALL | re.MULTILINE)
FINGERPRINT_BYTES = 4

# What each digest covers, in words (`reports verify` and the README use the same names).
SCOPES = {
    "judgments": "every judgment of the judge run(s)",
    "labels": "every human label on this rubric version for outputs of this eval set version",
    "adjudications": "the reviewers' adjudicated labels on those golden units (calibration uses them)",
    "golden_units": "the golden units drawn for this eval set version and rubric version",
    "golden_assignments": "the assignments of those golden units to annotators",
    "outputs": "the outputs of the candidate runs the judge run(s) judged",
    "judge_runs": "the judge run rows themselves (model, template, parameters, status)",
}


def software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ownbench")
    except PackageNotFoundError:  # pragma: no cover - running from a tree without an install
        return "unknown"


# --- digests over rows ------------------------------------------------------------------------------------------


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return (v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, bytes):
        return base64.b64encode(v).decode("ascii")
    return v


def _row_digest(table: str, row: dict[str, Any]) -> bytes:
    """SHA-256 of one row: the table name and every column's value (canonical JSON, sorted keys)."""
    text = json.dumps([table, {k: _value(v) for k, v in row.items()}], sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"), default=str, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).digest()


def _encode_ids(ids: Any) -> str:
    """Sorted ids as ranges: [1, 2, 3, 7, 9, 10] → "1-3,7,9-10" (a million consecutive ids → one range)."""
    import numpy as np

    arr = np.asarray(ids, np.int64)
    if not arr.size:
        return ""
    breaks = np.flatnonzero(np.diff(arr) != 1)
    starts = np.concatenate([[0], breaks + 1]).tolist()
    ends = np.concatenate([breaks, [arr.size - 1]]).tolist()
    lo, hi = arr[starts].tolist(), arr[ends].tolist()
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in zip(lo, hi))


def _decode_ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        ids.extend(range(int(lo), int(hi or lo) + 1))
    return ids


@dataclass
class RowSet:
    """The digest of a set of rows, and a fingerprint per row id."""

    rows: dict[int, bytes] = field(default_factory=dict)  # id → full SHA-256 of the row

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for rid in sorted(self.rows):
            h.update(rid.to_bytes(8, "big", signed=True) + self.rows[rid])
        return h.hexdigest()

    def to_dict(self) -> dict[str, Any]:
        ids = sorted(self.rows)
        return {"sha256": self.sha256, "rows": len(ids), "ids": _encode_ids(ids),
                "fingerprints": base64.b64encode(b"".join(self.rows[i][:FINGERPRINT_BYTES] for i in ids)).decode()}


def _rowset(session: Session, model: Any, where: ColumnElement[bool] | None) -> RowSet:
    table = model.__table__
    stmt = select(table)
    if where is not None:
        stmt = stmt.where(where)
    out = RowSet()
    for row in session.connection().execute(stmt):
        m = dict(row._mapping)
        out.rows[int(m["id"])] = _row_digest(table.name, m)
    return out


def _scopes(session: Session, version_id: int, rubric_version_id: int, judge_runs: list[int],
            fmt: str = FORMAT, reads: dict | None = None) -> dict[str, Any]:
    from analysis.rowdigest import columnset_rowset, streamed_rowset

    rowset = _rowset if fmt == FORMAT_1 else streamed_rowset
    judged_runs = select(Output.run_id).join(Judgment, Judgment.output_id == Output.id).where(  # type: ignore[arg-type]
        Judgment.judge_run_id.in_(judge_runs)).distinct()  # type: ignore[union-attr]
    version_outputs = select(Output.id).join(Run, Run.id == Output.run_id).where(Run.version_id == version_id)  # type: ignore[arg-type]
    units = select(GoldenUnit.id).where(GoldenUnit.version_id == version_id,
                                        GoldenUnit.rubric_version_id == rubric_version_id)
    if fmt == FORMAT:
        from analysis.stored import judged_outputs, judgments_of, labels_of, outputs_of

        judgments = judgments_of(session, judge_runs, reads)
        outputs = judged_outputs(judgments, outputs_of(session, version_id, reads))
        large = {"judgments": columnset_rowset(judgments),
                 "labels": columnset_rowset(labels_of(session, version_id, rubric_version_id, reads)),
                 "outputs": columnset_rowset(outputs)}
    else:
        large = {
            "judgments": rowset(session, Judgment, Judgment.judge_run_id.in_(judge_runs)),  # type: ignore[union-attr]
            "labels": rowset(session, Label, (Label.rubric_version_id == rubric_version_id)
                             & Label.output_id.in_(version_outputs)),  # type: ignore[union-attr]
            "outputs": rowset(session, Output, Output.run_id.in_(judged_runs)),  # type: ignore[union-attr]
        }
    return {
        "judgments": large["judgments"],
        "labels": large["labels"],
        "adjudications": rowset(session, Adjudication, Adjudication.golden_unit_id.in_(units)),  # type: ignore[union-attr]
        "golden_units": rowset(session, GoldenUnit, GoldenUnit.id.in_(units)),  # type: ignore[union-attr]
        "golden_assignments": rowset(session, GoldenAssignment, GoldenAssignment.golden_unit_id.in_(units)),  # type: ignore[union-attr]
        "outputs": large["outputs"],
        "judge_runs": rowset(session, JudgeRun, JudgeRun.id.in_(judge_runs)),  # type: ignore[union-attr]
    }


def _one_row(session: Session, model: Any, row_id: int) -> str | None:
    table = model.__table__
    row = session.connection().execute(select(table).where(table.c.id == row_id)).first()
    return _row_digest(table.name, dict(row._mapping)).hex() if row is not None else None


# --- building -----------------------------------------------------------------------------------------------------


def build_manifest(session: Session, report: str, version_id: int, rubric_version_id: int,
                   judge_runs: list[int | None], parameters: dict[str, Any] | None = None,
                   reads: dict | None = None) -> dict[str, Any]:
    """The manifest of a report computed now from these rows (the report's text digest is added on output).
    `reads`: the arrays the report already read (`analysis.stored`), digested as they are instead of read again."""
    from analysis.stored import COLUMNS_IN_WORDS
    from evalsets.freeze import version_label

    runs = sorted({int(r) for r in judge_runs if r is not None})
    version = session.get(EvalSetVersion, version_id)
    rubric = session.get(RubricVersion, rubric_version_id)
    return {
        "format": FORMAT,
        "report": report,
        "software": {"ownbench": software_version()},
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "parameters": parameters or {},
        "version": {"id": version_id, "label": version_label(session, version) if version else None,
                    "hash": version.content_hash if version else None,
                    "row_sha256": _one_row(session, EvalSetVersion, version_id)},
        "rubric": {"id": rubric_version_id, "name": rubric.name if rubric else None,
                   "hash": rubric.content_hash if rubric else None,
                   "row_sha256": _one_row(session, RubricVersion, rubric_version_id)},
        "judge_runs": runs,
        "columns": COLUMNS_IN_WORDS,
        "digests": {name: rs.to_dict()
                    for name, rs in _scopes(session, version_id, rubric_version_id, runs, reads=reads).items()},
    }


def _body_digest_json(data: dict[str, Any]) -> str:
    # as the CLI prints it (anything unusual as its str), so that the digest survives the round trip
    body = json.dumps({k: v for k, v in data.items() if k != "manifest"}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"), default=str, allow_nan=True)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _body_digest_markdown(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def attach_json(data: dict[str, Any], manifest: dict[str, Any] | None) -> dict[str, Any]:
    """The report's dict with its manifest (and the digest of everything else) under "manifest"."""
    if manifest is None:
        return data
    return {**data, "manifest": {**manifest, "body_sha256": _body_digest_json(data)}}


def attach_markdown(body: str, manifest: dict[str, Any] | None) -> str:
    """The Markdown report followed by a "Manifest" section holding the manifest as a JSON block."""
    if manifest is None:
        return body
    body = body.rstrip() + "\n"
    full = {**manifest, "body_sha256": _body_digest_markdown(body)}
    return (body + f"\n{MARKDOWN_HEADING}\n\nWhat this report was computed from; `ownbench reports verify FILE` "
            "recomputes it from the database and says what changed.\n\n```json\n"
            + json.dumps(full, indent=1, ensure_ascii=False) + "\n```\n")


# --- reading and verifying ------------------------------------------------------------------------------------


def read_report(text: str, where: str) -> tuple[dict[str, Any], str]:
    """(manifest, recomputed body digest) from a report's text: JSON, or Markdown with a Manifest section."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc})", where=where, hint="pass a report written by `ownbench "
                             "agreement|rank|compare --json` or `--output`") from None
        manifest = data.get("manifest") if isinstance(data, dict) else None
        if not isinstance(manifest, dict):
            raise InputError("the JSON report has no \"manifest\"", where=where,
                             hint="reports written before manifests existed cannot be verified; write it again")
        body_digest = _body_digest_json(data)
    else:
        matches = list(_FENCE_RE.finditer(text))
        if not matches:
            raise InputError(f"no \"{MARKDOWN_HEADING}\" section with a ```json block", where=where,
                             hint="pass a report written by `ownbench agreement|rank|compare --output FILE`, "
                                  "`--markdown` or `--json`, or downloaded from the app")
        m = matches[-1]
        try:
            manifest = json.loads(m.group("json"))
        except ValueError as exc:
            line = text.count("\n", 0, m.start("json")) + 1
            raise InputError(f"the manifest block is not valid JSON ({exc})", where=f"{where}:{line}") from None
        body_digest = _body_digest_markdown(text[:m.start()].rstrip() + "\n")
    _check_shape(manifest, where)
    return manifest, body_digest


def _check_shape(manifest: Any, where: str) -> None:
    def bad(what: str) -> InputError:
        return InputError(f"manifest: {what}", where=where, hint="the manifest block was edited or truncated; "
                          "write the report again")

    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
        raise bad(f"\"format\" is not {FORMAT!r} (or the earlier {FORMAT_2!r} or {FORMAT_1!r})")
    for key, kind in (("version", dict), ("rubric", dict), ("judge_runs", list), ("digests", dict)):
        if not isinstance(manifest.get(key), kind):
            raise bad(f"{key!r} is missing or not a {kind.__name__}")
    for key in ("version", "rubric"):
        if not isinstance(manifest[key].get("id"), int):
            raise bad(f"{key}.id is missing or not a number")
    if not all(isinstance(r, int) for r in manifest["judge_runs"]):
        raise bad("judge_runs must be numbers")
    for name, d in manifest["digests"].items():
        if name not in SCOPES:
            raise bad(f"unknown digest {name!r}")
        if not isinstance(d, dict) or not all(isinstance(d.get(k), str) for k in ("sha256", "ids", "fingerprints")):
            raise bad(f"digest {name!r} lacks sha256, ids or fingerprints")
        try:
            ids = _decode_ids(d["ids"])
            fps = base64.b64decode(d["fingerprints"], validate=True)
        except ValueError:
            raise bad(f"digest {name!r}: ids or fingerprints are not readable") from None
        if len(fps) != len(ids) * FINGERPRINT_BYTES:
            raise bad(f"digest {name!r}: {len(ids)} ids but {len(fps) // FINGERPRINT_BYTES} fingerprints")


@dataclass
class Finding:
    what: str  # "version", "rubric", "judgments", … or "report text"
    changed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "changed": self.changed, "detail": self.detail}


def _sample(ids: list[int], n: int = 10) -> str:
    shown = ", ".join(str(i) for i in ids[:n])
    return shown + (f", … ({len(ids) - n} more)" if len(ids) > n else "")


def _compare_rows(name: str, then: dict[str, Any], now: Any) -> Finding:
    if then["sha256"] == now.sha256:
        return Finding(name, False, f"unchanged ({now.n_rows} row{'' if now.n_rows == 1 else 's'})")
    old_ids = _decode_ids(then["ids"])
    fps = base64.b64decode(then["fingerprints"])
    old = {rid: fps[k * FINGERPRINT_BYTES:(k + 1) * FINGERPRINT_BYTES] for k, rid in enumerate(old_ids)}
    changed = sorted(i for i in old.keys() & now.rows.keys() if now.rows[i][:FINGERPRINT_BYTES] != old[i])
    deleted = sorted(old.keys() - now.rows.keys())
    added = sorted(now.rows.keys() - old.keys())
    parts = [f"{len(old)} rows then, {now.n_rows} now"]
    if changed:
        parts.append(f"{len(changed)} changed (ids {_sample(changed)})")
    if deleted:
        parts.append(f"{len(deleted)} deleted (ids {_sample(deleted)})")
    if added:
        parts.append(f"{len(added)} added (ids {_sample(added)})")
    if not (changed or deleted or added):
        parts.append("the digest differs but no row's fingerprint does (a change the 4-byte fingerprints miss)")
    return Finding(name, True, "digest differs: " + "; ".join(parts))


def verify_manifest(session: Session, manifest: dict[str, Any], body_digest: str) -> list[Finding]:
    """Every part of the manifest recomputed from the database now, each with what changed in words."""
    from evalsets.freeze import verify as verify_version

    findings: list[Finding] = []
    if manifest.get("body_sha256") is not None:
        same = manifest["body_sha256"] == body_digest
        findings.append(Finding("report text", not same, "unchanged" if same else
                                "the report's text (above its manifest) was edited after it was written"))
    v = manifest["version"]
    version = session.get(EvalSetVersion, v["id"])
    if version is None:
        findings.append(Finding("version", True, f"eval set version {v['id']} ({v.get('label')}) is not in this "
                                "database (is OWNBENCH_DATABASE_URL the database the report was made from?)"))
    else:
        problems = []
        if version.content_hash != v.get("hash"):
            problems.append(f"hash was {str(v.get('hash'))[:12]}…, is {version.content_hash[:12]}…")
        if _one_row(session, EvalSetVersion, version.id) != v.get("row_sha256"):  # type: ignore[arg-type]
            problems.append("its stored row changed")
        problems += verify_version(session, version)
        findings.append(Finding("version", bool(problems), "; ".join(problems) if problems else
                                f"unchanged ({v.get('label')}, {version.content_hash[:12]}…)"))
    r = manifest["rubric"]
    rubric = session.get(RubricVersion, r["id"])
    if rubric is None:
        findings.append(Finding("rubric", True, f"rubric version {r['id']} ({r.get('name')}) is not in this database"))
    else:
        problems = []
        if rubric.content_hash != r.get("hash"):
            problems.append(f"hash was {str(r.get('hash'))[:12]}…, is {rubric.content_hash[:12]}…")
        if _one_row(session, RubricVersion, rubric.id) != r.get("row_sha256"):  # type: ignore[arg-type]
            problems.append("its stored row (text or criteria) changed")
        findings.append(Finding("rubric", bool(problems), "; ".join(problems) if problems else
                                f"unchanged ({rubric.name}, {rubric.content_hash[:12]}…)"))
    now = _scopes(session, v["id"], r["id"], manifest["judge_runs"], manifest["format"])
    for name, then in manifest["digests"].items():
        f = _compare_rows(name, then, now[name])
        f.what = f"{name} ({SCOPES[name]})" if f.changed else name
        findings.append(f)
    return findings
