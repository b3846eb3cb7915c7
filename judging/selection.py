"""Which items and which runs a judge run or an import covers; kept apart from the judge so that reading stored
judgments does not load the provider client libraries."""
from __future__ import annotations

from sqlmodel import Session, select

from storage.errors import InputError
from storage.models import Candidate, EvalSet, EvalSetVersion, Item, Run


def version_label(session: Session, version: EvalSetVersion) -> str:
    eval_set = session.get(EvalSet, version.eval_set_id)
    return f"{eval_set.name if eval_set else '?'}@{version.number}"


def items_of(session: Session, version: EvalSetVersion) -> list[Item]:
    return list(session.exec(select(Item).where(Item.version_id == version.id).order_by(Item.position)))  # type: ignore[arg-type]


def select_runs(session: Session, version: EvalSetVersion, names: list[str] | None) -> list[tuple[Candidate, Run]]:
    """The latest run of each named candidate (default: every candidate with a run) on this version."""
    runs = list(session.exec(select(Run).where(Run.version_id == version.id).order_by(Run.id)))
    latest: dict[int, Run] = {}
    for run in runs:
        latest[run.candidate_id] = run  # ordered by id: the last one wins
    cands = {c.id: c for c in session.exec(select(Candidate).where(Candidate.id.in_(list(latest))))}  # type: ignore[union-attr]
    by_name = {c.name: c for c in cands.values()}
    label = version_label(session, version)
    if names is None:
        chosen = sorted(by_name.values(), key=lambda c: c.name)
        if not chosen:
            raise InputError(f"no candidate has a run on {label}", where="--set",
                             hint=f"run candidates first: `ownbench run --set {label} --candidates …`")
    else:
        chosen = []
        for name in names:
            if name not in by_name:
                known = session.exec(select(Candidate).where(Candidate.name == name)).first()
                why = "has no run on this version" if known else "is not a known candidate"
                raise InputError(f"candidate {name!r} {why}", where="--candidates",
                                 hint=f"candidates with a run on {label}: {', '.join(sorted(by_name)) or 'none'}")
            chosen.append(by_name[name])
        if len(set(names)) != len(names):
            raise InputError("a candidate is named twice", where="--candidates", hint="name each candidate once")
    return [(c, latest[c.id]) for c in chosen]  # type: ignore[index]
