"""Human labels in and out.

Import: JSONL or CSV rows with `item` (the item key), `candidate` (its name), `criterion`, `label` and
`annotator` (optional `comment`, `inclusion_prob`). The unit is the candidate's output on that item in its
latest run on the version. Labels are validated against the rubric; every bad row is reported as
file:line: reason and nothing is written unless every row is good. An import may declare its units a
uniform random sample of the set (`uniform=True`), or give each row an `inclusion_prob`; only then do the
labels count for calibration (otherwise: agreement only).

Export: one row per verdict, judge or human, each saying which (`source`: "judge" or "human").
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from analysis.data import criteria_of, latest_judge_run
from storage.errors import InputError
from storage.hashing import file_hash
from storage.models import Annotator, Candidate, Item, Judgment, Label, Output, RubricVersion, Run
from storage.names import check_name
from storage.rowfiles import read_rows

REQUIRED = ("item", "candidate", "criterion", "label", "annotator")


def _normalize(criterion: dict[str, Any], value: Any) -> tuple[str, float | None]:
    kind = criterion.get("type")
    text = str(value).strip()
    if kind == "binary":
        low = text.lower()
        if low in ("pass", "true", "yes", "1"):
            return "pass", 1.0
        if low in ("fail", "false", "no", "0"):
            return "fail", 0.0
        raise ValueError(f"label {text!r} is not pass or fail")
    if kind == "ordinal":
        try:
            level = int(float(text))
        except ValueError:
            raise ValueError(f"label {text!r} is not a level") from None
        if float(text) != level or not int(criterion["min"]) <= level <= int(criterion["max"]):
            raise ValueError(f"label {text!r} is not a level from {criterion['min']} to {criterion['max']}")
        return str(level), float(level)
    labels = list(criterion.get("labels") or [])
    if text not in labels:
        raise ValueError(f"label {text!r} is not one of {', '.join(labels)}")
    return text, None


def import_labels(
    session: Session, path: str | Path, version_id: int, rubric_version_id: int, *, uniform: bool = False
) -> dict[str, Any]:
    """Validate every row, then append the labels; returns counts. Raises InputError (nothing written)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"label file {str(path)!r} does not exist", where="labels import")
    if p.suffix.lower() not in (".jsonl", ".csv"):
        raise InputError(f"{p.name}: unsupported format {p.suffix!r}", hint="use .jsonl or .csv")
    digest = file_hash(p)
    if session.exec(select(Label).where(Label.source_file_hash == digest,
                                        Label.rubric_version_id == rubric_version_id)).first():
        raise InputError(f"{p.name} was already imported for this rubric version (same content)",
                         hint="labels are append-only; a changed file is a new import")
    rubric = session.get(RubricVersion, rubric_version_id)
    crits = {str(c["id"]): c for c in criteria_of(rubric)}  # type: ignore[arg-type]
    items = {i.item_key: i for i in session.exec(select(Item).where(Item.version_id == version_id))}
    runs: dict[str, Run] = {}
    for run, cand in session.exec(select(Run, Candidate).join(Candidate, Run.candidate_id == Candidate.id)
                                  .where(Run.version_id == version_id).order_by(Run.id)):  # type: ignore[arg-type]
        runs[cand.name] = run
    outputs: dict[tuple[int, int], Output] = {}
    for o in session.exec(select(Output).where(Output.run_id.in_([r.id for r in runs.values()]))):  # type: ignore[union-attr]
        outputs[(o.run_id, o.item_id)] = o
    problems: list[str] = []
    good: list[dict[str, Any]] = []
    for line, row in read_rows(p, strip_csv=True):
        where = f"{p.name}:{line}"
        if isinstance(row, str):
            problems.append(f"{where}: {row}")
            continue
        missing = [f for f in REQUIRED if row.get(f) in (None, "")]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        crit = crits.get(str(row["criterion"]))
        item = items.get(str(row["item"]))
        run = runs.get(str(row["candidate"]))
        if crit is None:
            problems.append(f"{where}: criterion {row['criterion']!r} is not in rubric {rubric.name!r} "  # type: ignore[union-attr]
                            f"(criteria: {', '.join(crits)})")
            continue
        if item is None:
            problems.append(f"{where}: item {row['item']!r} is not in this eval set version")
            continue
        if run is None:
            problems.append(f"{where}: candidate {row['candidate']!r} has no run on this version")
            continue
        out = outputs.get((run.id, item.id))  # type: ignore[arg-type]
        if out is None:
            problems.append(f"{where}: candidate {row['candidate']!r} has no output for item {row['item']!r}")
            continue
        try:
            verdict, score = _normalize(crit, row["label"])
        except ValueError as exc:
            problems.append(f"{where}: criterion {crit['id']!r}: {exc}")
            continue
        try:
            who = check_name(row["annotator"], "annotator", where=f"{where}: annotator")
        except InputError as exc:
            problems.append(exc.what if exc.where is None else f"{exc.where}: {exc.what} ({exc.hint})")
            continue
        prob = row.get("inclusion_prob")
        if prob not in (None, ""):
            try:
                prob = float(prob)
            except (TypeError, ValueError):
                problems.append(f"{where}: inclusion_prob {prob!r} is not a number")
                continue
            if not 0 < prob <= 1:
                problems.append(f"{where}: inclusion_prob {prob} must be in (0, 1]")
                continue
        else:
            prob = None
        good.append({"annotator": who, "criterion": crit["id"], "item": item, "output": out,
                     "verdict": verdict, "score": score, "prob": prob, "comment": row.get("comment") or None})
    if problems:
        shown = "\n  ".join(problems[:30])
        more = f"\n  … and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise InputError(f"{len(problems)} bad row(s); nothing was imported:\n  {shown}{more}",
                         hint="fix the rows and import again")
    if not good:
        raise InputError(f"{p.name} holds no labels", where=p.name)
    if uniform:
        if any(g["prob"] is not None for g in good):
            raise InputError("the file gives inclusion_prob per row and is also declared uniform", where="--uniform",
                             hint="use one or the other")
        units = {g["output"].id for g in good}
        runs_in_file = {g["output"].run_id for g in good}
        population = sum(1 for run_id, _ in outputs if run_id in runs_in_file)
        prob_all = len(units) / max(population, 1)
        for g in good:
            g["prob"] = prob_all
    people: dict[str, Annotator] = {}
    for g in good:
        name = g["annotator"]
        if name not in people:
            a = session.exec(select(Annotator).where(Annotator.name == name)).first()
            if a is None:
                a = Annotator(name=name)
                session.add(a)
                session.flush()
            people[name] = a
        session.add(Label(annotator_id=people[name].id, rubric_version_id=rubric_version_id,  # type: ignore[arg-type]
                          criterion_id=g["criterion"], item_id=g["item"].id, output_id=g["output"].id,
                          verdict=g["verdict"], score=g["score"], comment=g["comment"], inclusion_prob=g["prob"],
                          source="imported", source_file=str(p), source_file_hash=digest))
    session.flush()
    return {"labels": len(good), "annotators": len(people), "calibration_usable": sum(g["prob"] is not None for g in good),
            "file_hash": digest}


def export_rows(session: Session, version_id: int, rubric_version_id: int, judge_run_id: int | None = None) -> list[dict[str, Any]]:
    """Every latest judgment and every latest human label, one row each, saying which it is."""
    items = {i.id: i.item_key for i in session.exec(select(Item).where(Item.version_id == version_id))}
    cands = {c.id: c.name for c in session.exec(select(Candidate))}
    run_cand = {r.id: r.candidate_id for r in session.exec(select(Run).where(Run.version_id == version_id))}
    out_cand = {o.id: cands[run_cand[o.run_id]] for o in session.exec(
        select(Output).where(Output.run_id.in_(list(run_cand))))}  # type: ignore[union-attr]
    rows: list[dict[str, Any]] = []
    try:
        run = latest_judge_run(session, version_id, rubric_version_id) if judge_run_id is None else None
        jr_id = judge_run_id or (run.id if run else None)
    except InputError:
        jr_id = None
    if jr_id is not None:
        latest: dict[tuple, Judgment] = {}
        for j in session.exec(select(Judgment).where(Judgment.judge_run_id == jr_id).order_by(Judgment.id)):  # type: ignore[arg-type]
            latest[(j.criterion_id, j.output_id, j.output_b_id)] = j
        for j in latest.values():
            rows.append({"source": "judge", "rater": j.judge_model, "item": items.get(j.item_id),
                         "candidate": out_cand.get(j.output_id),
                         "candidate_b": out_cand.get(j.output_b_id) if j.output_b_id else None,
                         "criterion": j.criterion_id, "status": j.status, "verdict": j.verdict, "score": j.score,
                         "reason": j.unscored_reason, "golden": None, "inclusion_prob": None})
    names = {a.id: a.name for a in session.exec(select(Annotator))}
    latest_l: dict[tuple, Label] = {}
    for lab in session.exec(select(Label).where(Label.rubric_version_id == rubric_version_id).order_by(Label.id)):  # type: ignore[arg-type]
        if lab.item_id in items:
            latest_l[(lab.annotator_id, lab.criterion_id, lab.output_id, lab.output_b_id)] = lab
    for lab in latest_l.values():
        rows.append({"source": "human", "rater": names.get(lab.annotator_id), "item": items.get(lab.item_id),
                     "candidate": out_cand.get(lab.output_id),
                     "candidate_b": out_cand.get(lab.output_b_id) if lab.output_b_id else None,
                     "criterion": lab.criterion_id, "status": "skipped" if lab.skipped else "labeled",
                     "verdict": lab.verdict, "score": lab.score, "reason": lab.comment,
                     "golden": lab.golden_unit_id is not None, "inclusion_prob": lab.inclusion_prob})
    return rows


def write_export(rows: list[dict[str, Any]], path: str | Path) -> int:
    p = Path(path)
    fields = ["source", "rater", "item", "candidate", "candidate_b", "criterion", "status", "verdict", "score",
              "reason", "golden", "inclusion_prob"]
    if p.suffix.lower() == ".csv":
        with p.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    else:
        with p.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(rows)
