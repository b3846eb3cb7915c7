"""Battles whose verdicts were kept but whose answers were not (Chatbot Arena votes and the like).

A pairwise label or judgment names two outputs, so the candidates of a battle need a run on the version. When
only the verdicts exist, `record_battle_runs` stores, per candidate without a run, one imported run whose
outputs say in their `error` that the answer was not kept: nothing can be judged, shown or labeled on them (the
paths that skip failed outputs skip these too), yet verdicts on them can be imported and counted.

`arena_rows` reads the Chatbot Arena battle format (`question_id, model_a, model_b, winner, judge` per line;
other fields are listed as ignored) as pairwise label rows: `winner` model_a → A, model_b → B, tie and
"tie (bothbad)" → tie, the latter recorded in the label's comment so the mapping stays visible.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from sqlmodel import Session, select

from storage.errors import InputError
from storage.hashing import file_hash
from storage.models import Candidate, Item, Run
from storage.rowfiles import read_rows

ARENA_FIELDS = ("question_id", "model_a", "model_b", "winner", "judge")
ARENA_WINNERS = {"model_a": "A", "model_b": "B", "tie": "tie", "tie (bothbad)": "tie"}
MERGED = ("tie (bothbad)",)
NOT_KEPT = "answer not kept: only verdicts on this candidate's answers were imported (from {file})"


def arena_rows(path: Path, ignored: Counter | None = None) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, pairwise label row) per arena battle, or (line, reason) for a line that is not one. Fields other
    than ARENA_FIELDS are counted in `ignored`."""
    for line, row in read_rows(path):
        if isinstance(row, str):
            yield line, row
            continue
        missing = [f for f in ARENA_FIELDS if row.get(f) in (None, "")]
        if missing:
            yield line, f"missing {', '.join(missing)} (an arena battle has {', '.join(ARENA_FIELDS)})"
            continue
        if ignored is not None:
            ignored.update(k for k in row if k not in ARENA_FIELDS)
        winner = str(row["winner"]).strip()
        label = ARENA_WINNERS.get(winner)
        if label is None:
            yield line, f"winner {winner!r} is not one of {', '.join(ARENA_WINNERS)}"
            continue
        yield line, {"item_key": str(row["question_id"]), "candidate_a": str(row["model_a"]),
                     "candidate_b": str(row["model_b"]), "annotator": str(row["judge"]), "label": label,
                     # only a merged verdict loses information; it is kept in the comment
                     "comment": f"arena winner: {winner}" if winner in MERGED else None}


def battle_rows(path: Path, fmt: str) -> Iterator[tuple[int, tuple[str, str, str] | str]]:
    """(line, (item key, candidate A, candidate B)) of a file of battles: arena votes, pairwise labels
    (item_key, candidate_a, candidate_b) or pairwise judgments (item, candidate, candidate_b)."""
    rows = arena_rows(path) if fmt == "arena" else read_rows(path, strip_csv=True)
    for line, row in rows:
        if isinstance(row, str):
            yield line, row
            continue
        key = row.get("item_key") or row.get("item")
        a = row.get("candidate_a") or row.get("candidate")
        b = row.get("candidate_b")
        if key in (None, "") or a in (None, "") or b in (None, ""):
            yield line, "a battle needs item_key (or item), candidate_a (or candidate) and candidate_b"
            continue
        yield line, (str(key), str(a), str(b))


def record_battle_runs(session: Session, path: str | Path, version_id: int, fmt: str = "pairwise") -> dict[str, Any]:
    """One imported run per battle candidate that has no run on the version, its outputs marked not kept, on
    the items it fought on. Candidates with a run are left alone (their outputs are the ones verdicts name).
    Battles on items outside the version are counted, not errors (the version may be a sample)."""
    from gateway.imports import store_run

    p = Path(path)
    if not p.is_file():
        raise InputError(f"file {str(path)!r} does not exist", where="FILE")
    items = {i.item_key: i for i in session.exec(select(Item).where(Item.version_id == version_id))}
    with_run = set(session.exec(
        select(Candidate.name).join(Run, Run.candidate_id == Candidate.id).where(Run.version_id == version_id)).all())
    fought: dict[str, dict[int, Item]] = {}
    problems: list[str] = []
    battles = outside = 0
    for line, row in battle_rows(p, fmt):
        if isinstance(row, str):
            problems.append(f"{p.name}:{line}: {row}")
            continue
        key, a, b = row
        if a == b:
            problems.append(f"{p.name}:{line}: candidate_a and candidate_b are the same")
            continue
        battles += 1
        item = items.get(key)
        if item is None:
            outside += 1
            continue
        for cand in (a, b):
            fought.setdefault(cand, {})[item.id] = item  # type: ignore[index]
    if problems:
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InputError(f"{len(problems)} bad line(s); nothing was recorded:\n  " + "\n  ".join(problems[:20]) + more,
                         hint="fix the lines and run it again")
    if battles == outside:
        raise InputError(f"no battle of {p.name} is on an item of this version", where=p.name,
                         hint="battles are matched to items by item key (arena: question_id)")
    digest = file_hash(p)
    created, kept = [], sorted(c for c in fought if c in with_run)
    total = len(items)
    for cand in sorted(c for c in fought if c not in with_run):
        rows = [(item, {"text": None, "error": NOT_KEPT.format(file=p.name)}) for item in fought[cand].values()]
        res = store_run(session, p, digest, cand, version_id, rows, total,
                        config={"answers_kept": False, "battles_file": p.name})
        res.run.status_reason = (f"answers not kept: {len(rows)} of {total} items fought on in the battles of "
                                 f"{p.name}; only verdicts on them can be imported")
        created.append({"candidate": cand, "run_id": res.run.id, "items": len(rows), "created": res.created})
    session.flush()
    return {"battles": battles, "not_in_version": outside, "runs": created, "candidates_with_runs": kept}
