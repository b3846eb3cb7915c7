"""Human labels in and out.

Import: JSONL or CSV rows with `item` (the item key), `candidate` (its name), `criterion`, `label` and
`annotator` (optional `comment`, `inclusion_prob`). The unit is the candidate's output on that item in its
latest run on the version. Labels are validated against the rubric; every bad row is reported as
file:line: reason and nothing is written unless every row is good. An import may declare its units a
uniform random sample of the set (`uniform=True`), or give each row an `inclusion_prob`; only then do the
labels count for calibration (otherwise: agreement only).

Pairwise labels (which of two candidates' outputs on one item is better): rows with `item_key` (or `item`),
`candidate_a`, `candidate_b`, `annotator` and `label` one of `A`, `B` or `tie` (`criterion` optional when the
rubric has one criterion); the same design declarations apply, and usable pairwise labels correct the
Bradley–Terry strengths of `ownbench rank`. A column or field outside these is refused, with file and line.

Export: one row per verdict, judge or human, each saying which (`source`: "judge" or "human").
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from analysis.data import criteria_of, latest_judge_run
from analysis.names import check_annotator_name, get_or_create_annotator
from analysis.people import Viewer
from storage.errors import InputError
from storage.hashing import file_hash
from storage.models import (
    Adjudication,
    Annotator,
    Candidate,
    GoldenUnit,
    Item,
    Judgment,
    Label,
    Output,
    RubricVersion,
    Run,
)
from storage.rowfiles import read_rows

REQUIRED = ("item", "candidate", "criterion", "label", "annotator")
FIELDS = ("item", "item_key", "candidate", "candidate_a", "candidate_b", "criterion", "label", "annotator",
          "inclusion_prob", "comment")
PAIR_LABELS = {"a": ("A", 1.0), "b": ("B", 0.0), "tie": ("tie", 0.5)}


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
        except (ValueError, OverflowError):  # "abc", "nan", "inf", "1e400"
            raise ValueError(f"label {text!r} is not a level") from None
        if float(text) != level and int(criterion["min"]) <= float(text) <= int(criterion["max"]):
            raise ValueError(f"label {text!r} is not a whole level: levels are the whole numbers "
                             f"{criterion['min']} to {criterion['max']} (one annotator's label, not an average)")
        if float(text) != level or not int(criterion["min"]) <= level <= int(criterion["max"]):
            raise ValueError(f"label {text!r} is not a level from {criterion['min']} to {criterion['max']}")
        return str(level), float(level)
    labels = list(criterion.get("labels") or [])
    if text not in labels:
        raise ValueError(f"label {text!r} is not one of {', '.join(labels)}")
    return text, None


def import_labels(
    session: Session, path: str | Path, version_id: int, rubric_version_id: int, *, uniform: bool = False,
    fmt: str = "ownbench",
) -> dict[str, Any]:
    """Validate every row, then append the labels; returns counts. Raises InputError (nothing written).
    `fmt="arena"` reads Chatbot Arena battles (see analysis.battles): votes on items outside the version are
    counted (the version may be a sample), the fields it does not use are listed as ignored."""
    from analysis.battles import arena_rows
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
    modes: set[str] = set()
    ignored: Counter = Counter()
    outside = 0
    rows = (arena_rows(p, ignored) if fmt == "arena"
            else read_rows(p, allowed=FIELDS, named=FIELDS, strip_csv=True))
    for line, row in rows:
        where = f"{p.name}:{line}"
        if isinstance(row, str):
            problems.append(f"{where}: {row}")
            continue
        pairwise = row.get("candidate_b") not in (None, "")
        row = dict(row)
        if row.get("item") in (None, ""):
            row["item"] = row.get("item_key")
        if row.get("candidate") in (None, ""):
            row["candidate"] = row.get("candidate_a")
        if pairwise and row.get("criterion") in (None, "") and len(crits) == 1:
            row["criterion"] = next(iter(crits))
        missing = [f for f in REQUIRED if row.get(f) in (None, "")]
        if missing:
            names = {"item": "item_key" if pairwise else "item", "candidate": "candidate_a" if pairwise else "candidate"}
            problems.append(f"{where}: missing {', '.join(names.get(f, f) for f in missing)}")
            continue
        modes.add("pairwise" if pairwise else "pointwise")
        crit = crits.get(str(row["criterion"]))
        item = items.get(str(row["item"]))
        run = runs.get(str(row["candidate"]))
        if crit is None:
            problems.append(f"{where}: criterion {row['criterion']!r} is not in rubric {rubric.name!r} "  # type: ignore[union-attr]
                            f"(criteria: {', '.join(crits)})")
            continue
        if item is None and fmt == "arena":
            outside += 1
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
        out_b = None
        if pairwise:
            run_b = runs.get(str(row["candidate_b"]))
            if run_b is None:
                problems.append(f"{where}: candidate_b {row['candidate_b']!r} has no run on this version")
                continue
            if run_b.id == run.id:
                problems.append(f"{where}: candidate_a and candidate_b are the same")
                continue
            out_b = outputs.get((run_b.id, item.id))  # type: ignore[arg-type]
            if out_b is None:
                problems.append(f"{where}: candidate_b {row['candidate_b']!r} has no output for item {row['item']!r}")
                continue
            pair = PAIR_LABELS.get(str(row["label"]).strip().lower())
            if pair is None:
                problems.append(f"{where}: pairwise label {row['label']!r} is not A, B or tie")
                continue
            verdict, score = pair
        else:
            try:
                verdict, score = _normalize(crit, row["label"])
            except ValueError as exc:
                problems.append(f"{where}: criterion {crit['id']!r}: {exc}")
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
        try:
            annotator = check_annotator_name(row["annotator"])
        except InputError as exc:
            problems.append(f"{where}: {exc.what}")
            continue
        comment = row.get("comment")
        if comment is not None and not isinstance(comment, str):
            problems.append(f"{where}: comment must be text")
            continue
        if comment and "\x00" in comment:  # PostgreSQL text cannot hold NUL
            problems.append(f"{where}: comment contains a NUL character (\\u0000)")
            continue
        good.append({"annotator": annotator, "criterion": crit["id"], "item": item, "output": out,
                     "output_b": out_b, "verdict": verdict, "score": score, "prob": prob, "comment": row.get("comment") or None})
    if problems:
        shown = "\n  ".join(problems[:30])
        more = f"\n  … and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise InputError(f"{len(problems)} bad row(s); nothing was imported:\n  {shown}{more}",
                         hint="fix the rows and import again")
    if not good:
        raise InputError(f"{p.name} holds no labels", where=p.name)
    if len(modes) > 1:
        raise InputError(f"{p.name} mixes pointwise rows (candidate) and pairwise rows (candidate_a, candidate_b)",
                         where=p.name, hint="import them as two files")
    if uniform and "pairwise" in modes:
        # the population of a pairwise unit: every item both candidates of a labeled pair answered
        run_of = {o.id: run_id for (run_id, _), o in outputs.items()}
        items_of_run: dict[int, set[int]] = {}
        for run_id, item_id in outputs:
            items_of_run.setdefault(run_id, set()).add(item_id)
        pairs = {tuple(sorted((run_of[g["output"].id], run_of[g["output_b"].id]))) for g in good}
        population = sum(len(items_of_run[a] & items_of_run[b]) for a, b in pairs)
        units = {(g["output"].id, g["output_b"].id) for g in good}
        if any(g["prob"] is not None for g in good):
            raise InputError("the file gives inclusion_prob per row and is also declared uniform", where="--uniform",
                             hint="use one or the other")
        for g in good:
            g["prob"] = len(units) / max(population, 1)
        uniform = False
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
            people[name] = get_or_create_annotator(session, name)
        session.add(Label(annotator_id=people[name].id, rubric_version_id=rubric_version_id,  # type: ignore[arg-type]
                          criterion_id=g["criterion"], item_id=g["item"].id, output_id=g["output"].id,
                          output_b_id=g["output_b"].id if g["output_b"] is not None else None,
                          verdict=g["verdict"], score=g["score"], comment=g["comment"], inclusion_prob=g["prob"],
                          source="imported", source_file=str(p), source_file_hash=digest))
    session.flush()
    res = {"labels": len(good), "annotators": len(people), "calibration_usable": sum(g["prob"] is not None for g in good),
           "mode": next(iter(modes)), "file_hash": digest}
    if fmt == "arena":
        mapped = Counter(g["comment"] for g in good if g["comment"])
        res.update(format="arena", not_in_version=outside, ignored_fields=sorted(ignored),
                   mapped={k.removeprefix("arena winner: "): n for k, n in mapped.items()})
    return res


def export_rows(session: Session, version_id: int, rubric_version_id: int, judge_run_id: int | None = None, *,
                viewer: Viewer) -> list[dict[str, Any]]:
    """Every latest judgment, every latest human label and every latest adjudicated label, one row each, saying
    which it is (source judge / human / adjudicated). Reviewers and owners only: it holds everything."""
    viewer.require("review", "the export of judgments and labels")
    items = {i.id: i.item_key for i in session.exec(select(Item).where(Item.version_id == version_id))}
    cands = {c.id: c.name for c in session.exec(select(Candidate))}
    run_cand = {r.id: r.candidate_id for r in session.exec(select(Run).where(Run.version_id == version_id))}
    out_cand = {o.id: cands[run_cand[o.run_id]] for o in session.exec(
        select(Output).where(Output.run_id.in_(list(run_cand))))}  # type: ignore[union-attr]
    rows: list[dict[str, Any]] = []
    run_ids: list[int] = []
    if judge_run_id is not None:
        run_ids = [judge_run_id]
    else:  # the latest pointwise and the latest pairwise run, each when there is one
        for mode in ("pointwise", "pairwise"):
            try:
                run_ids.append(latest_judge_run(session, version_id, rubric_version_id, mode).id)  # type: ignore[arg-type]
            except InputError:
                pass
    for jr_id in run_ids:
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
    latest_a: dict[tuple, Adjudication] = {}
    for adj in session.exec(select(Adjudication).where(Adjudication.rubric_version_id == rubric_version_id)
                            .order_by(Adjudication.id)):  # type: ignore[arg-type]
        latest_a[(adj.golden_unit_id, adj.criterion_id)] = adj
    for adj in latest_a.values():
        unit = session.get(GoldenUnit, adj.golden_unit_id)
        if unit is None or unit.item_id not in items:
            continue
        # marked: source "adjudicated", the reviewer as rater, the note as reason; calibration uses this label
        rows.append({"source": "adjudicated", "rater": names.get(adj.adjudicator_id), "item": items[unit.item_id],
                     "candidate": out_cand.get(adj.output_id),
                     "candidate_b": out_cand.get(adj.output_b_id) if adj.output_b_id else None,
                     "criterion": adj.criterion_id, "status": "adjudicated", "verdict": adj.verdict,
                     "score": adj.score, "reason": adj.note, "golden": True, "inclusion_prob": unit.inclusion_prob})
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
