"""Resolving what users type (--set, --rubric, candidate names) to stored rows, with errors that say what to do."""
from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from storage.errors import InputError
from storage.models import Candidate, EvalSetVersion, RubricVersion


def resolve_rubric(session: Session, ref: str) -> RubricVersion:
    """A rubric version by file path (its content hash must be stored), name (latest version), id or hash prefix."""
    found: RubricVersion | None = None
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        from judging.rubric import load_rubric

        digest = load_rubric(path).content_hash
        found = session.exec(select(RubricVersion).where(RubricVersion.content_hash == digest)).first()
        if found is None:
            raise InputError(f"rubric file {ref!r} has never been used to judge (its version is not stored)",
                             where="--rubric", hint="judge with it first, or name the stored rubric version")
        return found
    found = session.exec(select(RubricVersion).where(RubricVersion.name == ref)
                         .order_by(RubricVersion.id.desc())).first()  # type: ignore[union-attr]
    if found is None and ref.isdigit():
        found = session.get(RubricVersion, int(ref))
    if found is None and len(ref) >= 8:
        matches = list(session.exec(select(RubricVersion).where(RubricVersion.content_hash.startswith(ref))))  # type: ignore[attr-defined]
        found = matches[0] if len(matches) == 1 else None
    if found is None:
        known = ", ".join(sorted({r.name for r in session.exec(select(RubricVersion))})) or "none yet"
        raise InputError(f"no rubric version {ref!r}", where="--rubric",
                         hint=f"give a rubric file, a rubric name, or a hash prefix; stored rubrics: {known}")
    return found


def resolve_candidate(session: Session, name: str, where: str) -> Candidate:
    cand = session.exec(select(Candidate).where(Candidate.name == name)).first()
    if cand is None:
        known = ", ".join(c.name for c in session.exec(select(Candidate).order_by(Candidate.name))) or "none yet"
        raise InputError(f"no candidate {name!r}", where=where, hint=f"candidates: {known}")
    return cand


def resolve_version(session: Session, ref: str) -> EvalSetVersion:
    from evalsets.freeze import resolve_version as _resolve

    return _resolve(session, ref)
