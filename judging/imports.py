"""Judgments made elsewhere (another tool, another team's judge), imported so they can be calibrated too.

One row per judgment, JSONL or CSV, with these fields:

    item        the item key in the version
    candidate   the candidate's name (pointwise: whose output; pairwise: output A)
    candidate_b pairwise only: the candidate of output B
    criterion   a criterion id of the rubric
    verdict     pass/fail, a level, a label, or A/B/tie (pairwise); empty with `unscored_reason` for a failure
    judge       the judge's name (or give --judge-name for the whole file)
    rationale   optional
    unscored_reason  optional: the judge produced no verdict, and why
    first       pairwise, optional: which output was shown first, A or B. A pair given in both orders (two rows,
                first A and first B, verdicts about A and B) becomes one judgment whose verdict is the agreed one
                (a tie when the orders disagree), and the judge's position bias can then be measured

Each row is checked against the version, the candidates' latest runs and the rubric; every bad row is reported
as file:line: reason and nothing is written unless the whole file is good. One judge run per judge name,
`source="imported"` with the file's SHA-256; importing the same file again changes nothing.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from sqlmodel import Session, select

from judging.rubric import Rubric, store_rubric
from judging.selection import select_runs
from judging.verdicts import PAIRWISE_SCORES
from storage.errors import InputError
from storage.hashing import file_hash
from storage.models import EvalSetVersion, Item, JudgeRun, Judgment, Output, utcnow
from storage.rowfiles import read_rows

FIELDS = ("item", "candidate", "candidate_b", "criterion", "verdict", "judge", "rationale", "unscored_reason", "first")
REQUIRED = ("item", "candidate", "criterion")
# Provenance columns written by `export_rows`: accepted and ignored, so an export can be imported elsewhere.
PROVENANCE = ("score", "status", "judge_run", "version_hash", "rubric_hash", "template_hash", "latency_ms",
              "prompt_tokens", "completion_tokens", "cost_usd")
MAX_REPORTED = 20
INSERT_BATCH = 5_000


@dataclass
class ImportSummary:
    judge_runs: dict[str, int]  # judge name → judge run id
    rows: int
    scored: int
    unscored: int
    mode: str
    already_imported: bool
    rounded: int = 0  # ordinal verdicts rounded to the nearest level (--round); each judgment records its value

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def import_judgments(
    session: Session,
    path: str | Path,
    *,
    version: EvalSetVersion,
    rubric: Rubric,
    judge_name: str | None = None,
    round_levels: bool = False,
) -> ImportSummary:
    """Validate every row, then store the judgments (all or nothing: the caller's session commits)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"file {str(path)!r} does not exist", where="FILE", hint="give a .jsonl or .csv file")
    if p.suffix.lower() not in (".jsonl", ".csv", ".json"):
        raise InputError(f"cannot read {p.name}: use .jsonl or .csv", where=str(path))
    digest = file_hash(str(p))
    rubric_row = store_rubric(session, rubric)
    criteria = {c.id: c for c in rubric.criteria}
    # keys and ids only: a hundred thousand items or outputs as ORM objects (messages, texts) cost gigabytes
    items: dict[str, int] = dict(session.exec(select(Item.item_key, Item.id).where(Item.version_id == version.id)).all())  # type: ignore[arg-type]
    selected = {c.name: run for c, run in select_runs(session, version, None)}
    outputs: dict[tuple[int, int], int] = {
        (run_id, item_id): oid for run_id, item_id, oid in session.exec(
            select(Output.run_id, Output.item_id, Output.id).where(Output.run_id.in_([r.id for r in selected.values()])))  # type: ignore[union-attr]
    }

    errors: list[str] = []
    parsed: list[dict[str, Any]] = []
    seen: dict[tuple, int] = {}
    orientation: dict[tuple, tuple[int, int]] = {}
    modes: Counter = Counter()

    def bad(line: int, reason: str) -> None:
        errors.append(f"{p}:{line}: {reason}")

    def output_of(cand: str, item_id: int, line: int, field: str) -> int | None:
        run = selected.get(cand)
        if run is None:
            bad(line, f"{field} {cand!r} has no run on this version (candidates: {', '.join(sorted(selected)) or 'none'})")
            return None
        o = outputs.get((run.id, item_id))  # type: ignore[arg-type]
        if o is None:
            bad(line, f"{field} {cand!r} has no output for this item in its latest run (#{run.id})")
        return o

    for line, row in read_rows(p, allowed=FIELDS + PROVENANCE, named=FIELDS):
        if isinstance(row, str):
            bad(line, row)
            continue
        missing = [f for f in REQUIRED if not _text(row.get(f))]
        if missing:
            bad(line, f"missing {', '.join(missing)}")
            continue
        key, cand, crit_id = _text(row["item"]), _text(row["candidate"]), _text(row["criterion"])
        cand_b = _text(row.get("candidate_b"))
        judge = _text(row.get("judge")) or judge_name
        if judge is None:
            bad(line, "no judge name: add a `judge` field or give --judge-name")
            continue
        if len(judge) > 300:
            bad(line, f"judge name is {len(judge)} characters long; the limit is 300")
            continue
        nul = next((f for f in ("judge", "rationale", "unscored_reason") if "\x00" in str(row.get(f) or "")), None)
        if nul is not None:  # PostgreSQL text cannot hold NUL
            bad(line, f"{nul} contains a NUL character (\\u0000); remove it")
            continue
        item_id = items.get(key)  # type: ignore[arg-type]
        if item_id is None:
            bad(line, f"item {key!r} is not in this version")
            continue
        crit = criteria.get(crit_id)  # type: ignore[arg-type]
        if crit is None:
            bad(line, f"criterion {crit_id!r} is not in rubric {rubric.name!r} ({', '.join(criteria)})")
            continue
        out_a = output_of(cand, item_id, line, "candidate")  # type: ignore[arg-type]
        out_b = output_of(cand_b, item_id, line, "candidate_b") if cand_b else None  # type: ignore[arg-type]
        if out_a is None or (cand_b and out_b is None):
            continue
        if cand_b == cand:
            bad(line, "candidate and candidate_b are the same")
            continue
        mode = "pairwise" if cand_b else "pointwise"
        modes[mode] += 1
        raw_verdict = row.get("verdict")
        rounded_from = None
        reason = _text(row.get("unscored_reason"))
        verdict: str | None
        score: float | None
        if _text(raw_verdict) is None:
            if reason is None:
                bad(line, "no verdict: give one, or an `unscored_reason` saying why the judge produced none")
                continue
            verdict, score = None, None
        elif reason is not None:
            bad(line, "a row has either a verdict or an unscored_reason, not both")
            continue
        elif mode == "pairwise":
            v = str(raw_verdict).strip()
            v = {"a": "A", "b": "B", "tie": "tie"}.get(v.lower(), v)
            if v not in PAIRWISE_SCORES:
                bad(line, f"pairwise verdict {raw_verdict!r} is not A, B or tie")
                continue
            verdict, score = v, PAIRWISE_SCORES[v]
        else:
            if round_levels and crit.type == "ordinal":
                try:
                    number = float(raw_verdict)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    number = None
                if number is not None and not number.is_integer() and crit.min <= number <= crit.max:
                    # half up, as a person rounds (Python's round() would take 2.5 to 2)
                    rounded_from, raw_verdict = number, int(np.floor(number + 0.5))
            try:
                verdict = crit.normalize(raw_verdict)
            except ValueError as exc:
                bad(line, f"verdict for {crit.id!r} ({crit.type}): {exc}")
                continue
            score = crit.score_of(verdict)
        first = _text(row.get("first"))
        if first is not None:
            first = {"a": "A", "b": "B"}.get(first.lower())
            if mode != "pairwise" or first is None:
                bad(line, f"`first` is {row.get('first')!r}: it says which output of a pairwise row was shown "
                          "first, A or B")
                continue
        if out_b is not None:
            # one orientation per pair: a row naming the same two outputs the other way round is turned round
            swap = {"A": "B", "B": "A"}
            oriented = orientation.setdefault((judge, crit.id, frozenset((out_a, out_b))), (out_a, out_b))
            if oriented != (out_a, out_b):
                out_a, out_b = out_b, out_a
                verdict = swap.get(verdict or "", verdict)
                score = PAIRWISE_SCORES[verdict] if verdict is not None else None
                first = swap.get(first) if first else None
        unit = (judge, crit.id, out_a, out_b, first)
        if unit in seen:
            bad(line, f"the same unit and criterion as line {seen[unit]} (one judgment per unit per judge"
                      + (" and order)" if first else ")"))
            continue
        seen[unit] = line
        parsed.append({"judge": judge, "item_id": item_id, "output_id": out_a,
                       "output_b_id": out_b, "criterion_id": crit.id, "verdict": verdict,
                       "score": score, "rationale": _text(row.get("rationale")), "unscored_reason": reason,
                       "line": line, "mode": mode, "first": first,
                       **({"details": {"rounded_from": rounded_from}} if mode == "pointwise" and rounded_from is not None
                          else {})})
    if len(modes) > 1:
        errors.append(f"{p}: mixes pointwise rows ({modes['pointwise']}) and pairwise rows ({modes['pairwise']}); "
                      "import them as two files")
    if not parsed and not errors:
        errors.append(f"{p}: no rows")
    if errors:
        more = f"\n… and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        raise InputError(
            f"{len(errors)} bad row(s), nothing imported:\n" + "\n".join(errors[:MAX_REPORTED]) + more,
            hint=f"fields: {', '.join(FIELDS)}; verdicts must be valid for the rubric's criteria",
        )

    if modes.get("pairwise"):
        parsed = _merge_orders(parsed)
    mode = next(iter(modes))
    judges = sorted({r["judge"] for r in parsed})
    existing = {
        r.judge_model: r for r in session.exec(select(JudgeRun).where(
            JudgeRun.source == "imported", JudgeRun.source_file_hash == digest,
            JudgeRun.version_id == version.id, JudgeRun.rubric_version_id == rubric_row.id))
    }
    if all(j in existing for j in judges):
        return ImportSummary({j: existing[j].id for j in judges}, len(parsed),  # type: ignore[misc]
                             sum(r["verdict"] is not None for r in parsed),
                             sum(r["verdict"] is None for r in parsed), mode, True)
    runs: dict[str, JudgeRun] = {}
    for j in judges:
        run = JudgeRun(version_id=version.id, rubric_version_id=rubric_row.id, judge_model=j, template_hash=None,  # type: ignore[arg-type]
                       mode=mode, source="imported", source_file=str(p), source_file_hash=digest,
                       params={"rows": sum(r["judge"] == j for r in parsed), "round_levels": round_levels},
                       status="done", finished_at=utcnow())
        session.add(run)
        runs[j] = run
    session.flush()
    # one multi-row INSERT per batch (executemany) inside the caller's transaction: all or nothing still, at a
    # fraction of the cost of one ORM object per row; every column is given, as the ORM would fill it
    now = utcnow()
    table = Judgment.__table__  # type: ignore[attr-defined]
    batch: list[dict[str, Any]] = []
    conn = session.connection()
    for r in parsed:
        batch.append({
            "judge_run_id": runs[r["judge"]].id, "criterion_id": r["criterion_id"], "item_id": r["item_id"],
            "output_id": r["output_id"], "output_b_id": r["output_b_id"],
            "status": "scored" if r["verdict"] is not None else "unscored", "verdict": r["verdict"],
            "score": r["score"], "rationale": r["rationale"], "unscored_reason": r["unscored_reason"],
            "details": {"imported_from": f"{p.name}:{r['line']}", **r.get("details", {})},
            "version_hash": version.content_hash, "rubric_hash": rubric_row.content_hash, "judge_model": r["judge"],
            "template_hash": None, "latency_ms": None, "prompt_tokens": None, "completion_tokens": None,
            "cost_usd": None, "request_hash": None, "created_at": now,
        })
        if len(batch) >= INSERT_BATCH:
            conn.execute(table.insert(), batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)
    return ImportSummary({j: run.id for j, run in runs.items()}, len(parsed),  # type: ignore[misc]
                         sum(r["verdict"] is not None for r in parsed), sum(r["verdict"] is None for r in parsed),
                         mode, False, sum("rounded_from" in r.get("details", {}) for r in parsed))


def _merge_orders(parsed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one pair given in both orders become one judgment, as a judge run of ownbench stores it: the
    verdict is the agreed one, a tie when the orders disagree, unscored when either order is; `details.orders`
    keeps each order's verdict about positions so the position bias can be measured."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in parsed:
        groups.setdefault((r["judge"], r["criterion_id"], r["output_id"], r["output_b_id"]), []).append(r)
    out = []
    for rows in groups.values():
        ordered = [r for r in rows if r["first"] is not None]
        if not ordered:
            out.extend(rows)
            continue
        orders = []
        for r in sorted(ordered, key=lambda r: r["first"]):
            entry: dict[str, Any] = {"first": r["first"], "status": "scored" if r["verdict"] else "unscored"}
            if r["verdict"]:
                entry["verdict"] = r["verdict"]
                # what the judge said about positions: "1" when the output shown first won
                entry["position_verdict"] = ("tie" if r["verdict"] == "tie" else
                                             "1" if r["verdict"] == r["first"] else "2")
            else:
                entry["unscored_reason"] = r["unscored_reason"]
            orders.append(entry)
        merged = dict(ordered[0])
        merged["line"] = min(r["line"] for r in ordered)
        merged["details"] = {"orders": orders, "imported_lines": sorted(r["line"] for r in ordered)}
        if len(orders) == 2 and all(o["status"] == "scored" for o in orders):
            # as `judging.judge.combine_orders` (not imported: it would load the judge's client libraries)
            disagreed = orders[0]["verdict"] != orders[1]["verdict"]
            verdict = "tie" if disagreed else orders[0]["verdict"]
            merged.update(verdict=verdict, score=PAIRWISE_SCORES[verdict], unscored_reason=None)
            merged["details"]["disagreement"] = disagreed
        elif any(o["status"] != "scored" for o in orders):
            reasons = "; ".join(f"{o['first']} shown first: {o['unscored_reason']}" for o in orders
                                if o["status"] != "scored")
            merged.update(verdict=None, score=None, unscored_reason=reasons)
        out.append(merged)
    return out


def export_rows(session: Session, judge_run_ids: list[int]) -> Iterator[dict[str, Any]]:
    """Judgments of these judge runs in the import format plus provenance (importable elsewhere as-is)."""
    from storage.models import Candidate, Item, Run

    for run_id in judge_run_ids:
        run = session.get(JudgeRun, run_id)
        if run is None:
            raise InputError(f"no judge run #{run_id}", where="--judge-run")
        rows = session.exec(select(Judgment).where(Judgment.judge_run_id == run_id).order_by(Judgment.id))  # type: ignore[arg-type]
        names: dict[int, str] = {}
        keys: dict[int, str] = {}
        for j in rows:
            for oid in filter(None, (j.output_id, j.output_b_id)):
                if oid not in names:
                    o = session.get(Output, oid)
                    r = session.get(Run, o.run_id) if o else None
                    c = session.get(Candidate, r.candidate_id) if r else None
                    names[oid] = c.name if c else "?"
            if j.item_id not in keys:
                it = session.get(Item, j.item_id)
                keys[j.item_id] = it.item_key if it else "?"
            yield {
                "item": keys[j.item_id], "candidate": names[j.output_id],
                "candidate_b": names.get(j.output_b_id) if j.output_b_id else None,  # type: ignore[arg-type]
                "criterion": j.criterion_id, "verdict": j.verdict, "judge": j.judge_model,
                "rationale": j.rationale, "unscored_reason": j.unscored_reason,
                "score": j.score, "status": j.status, "judge_run": run_id, "version_hash": j.version_hash,
                "rubric_hash": j.rubric_hash, "template_hash": j.template_hash, "latency_ms": j.latency_ms,
                "prompt_tokens": j.prompt_tokens, "completion_tokens": j.completion_tokens, "cost_usd": j.cost_usd,
            }
