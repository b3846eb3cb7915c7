"""Freeze, verify and resolve versions. A frozen version never changes; its id is the SHA-256 of its content."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from sqlmodel import Session, func, select

from storage.errors import InputError, IntegrityError
from storage.hashing import content_hash
from storage.models import EvalSet, EvalSetVersion, Item


@dataclass
class ItemDraft:
    """An item before it is frozen: the conversation up to its last user turn, and what came with it."""

    key: str
    messages: list[dict[str, Any]]
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return item_payload(self.key, self.messages, self.reference, self.meta)


def item_payload(key: str, messages: list, reference: str | None, meta: dict | None) -> dict[str, Any]:
    """The canonical content of an item; its hash and the version's hash are computed over this."""
    return {"key": key, "messages": messages, "reference": reference, "meta": meta or {}}


def version_hash(payloads: Iterable[dict[str, Any]]) -> str:
    """SHA-256 of the version's canonical JSON: sorted keys, UTF-8, items in order."""
    return content_hash({"items": list(payloads)})


def diff_payloads(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Item keys added, removed and replaced (same key, other content) going from `old` to `new`."""
    before = {p["key"]: content_hash(p) for p in old}
    after = {p["key"]: content_hash(p) for p in new}
    return {
        "added": [k for k in after if k not in before],
        "removed": [k for k in before if k not in after],
        "replaced": [k for k in after if k in before and before[k] != after[k]],
    }


def freeze(
    session: Session,
    set_name: str,
    drafts: Sequence[ItemDraft],
    *,
    parent: EvalSetVersion | None = None,
    sampling_report: dict | None = None,
    skipped_count: int = 0,
    source: dict | None = None,
    description: str | None = None,
) -> EvalSetVersion:
    """Store `drafts` as a new frozen version of `set_name` (created if new) and return it.

    Freezing the same content again returns the existing version. The caller's session commits: a failure
    anywhere leaves neither the version nor any of its items behind.
    """
    if not drafts:
        raise InputError("no items to freeze", hint="check the input files and the --on-error/--sample options")
    keys = [d.key for d in drafts]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InputError(f"item key {dup!r} occurs more than once", hint="item keys must be unique in a version")
    payloads = [d.payload() for d in drafts]
    digest = version_hash(payloads)

    eval_set = session.exec(select(EvalSet).where(EvalSet.name == set_name)).first()
    if eval_set is None:
        eval_set = EvalSet(name=set_name, description=description)
        session.add(eval_set)
        session.flush()
    existing = session.exec(
        select(EvalSetVersion).where(EvalSetVersion.eval_set_id == eval_set.id, EvalSetVersion.content_hash == digest)
    ).first()
    if existing is not None:
        return existing
    if parent is None:
        parent = latest_version(session, eval_set.id)
    diff = diff_payloads(item_payloads(session, parent), payloads) if parent is not None else None
    number = (session.exec(
        select(func.max(EvalSetVersion.number)).where(EvalSetVersion.eval_set_id == eval_set.id)
    ).one() or 0) + 1
    version = EvalSetVersion(
        eval_set_id=eval_set.id,
        number=number,
        content_hash=digest,
        parent_id=parent.id if parent is not None else None,
        item_count=len(drafts),
        skipped_count=skipped_count,
        sampling_report=sampling_report,
        diff=diff,
        source=source,
    )
    session.add(version)
    session.flush()
    session.add_all(
        Item(
            version_id=version.id,
            position=i,
            item_key=p["key"],
            messages=p["messages"],
            reference=p["reference"],
            meta=p["meta"],
            content_hash=content_hash(p),
        )
        for i, p in enumerate(payloads)
    )
    session.flush()
    return version


def latest_version(session: Session, eval_set_id: int) -> EvalSetVersion | None:
    return session.exec(
        select(EvalSetVersion)
        .where(EvalSetVersion.eval_set_id == eval_set_id)
        .order_by(EvalSetVersion.number.desc())  # type: ignore[attr-defined]
    ).first()


def items_of(session: Session, version: EvalSetVersion) -> list[Item]:
    return list(session.exec(select(Item).where(Item.version_id == version.id).order_by(Item.position)))


def item_payloads(session: Session, version: EvalSetVersion) -> list[dict[str, Any]]:
    return [item_payload(i.item_key, i.messages, i.reference, i.meta) for i in items_of(session, version)]


def verify(session: Session, version: EvalSetVersion) -> list[str]:
    """Recompute every hash from stored content; return the mismatches in words (empty when intact)."""
    import hashlib
    import json

    from sqlalchemy import select as core_select

    from storage.hashing import canonical_json
    from storage.stream import stream_rows

    problems: list[str] = []
    t = Item.__table__  # type: ignore[attr-defined]
    stmt = core_select(t.c.item_key, t.c.messages, t.c.reference, t.c.meta, t.c.content_hash, t.c.position).where(
        t.c.version_id == version.id).order_by(t.c.position)
    # the driver's own values, not ORM objects (seconds for a hundred thousand items); SQLite hands JSON as text
    as_text = session.connection().dialect.name == "sqlite"
    whole = hashlib.sha256(b'{"items":[')
    n = 0
    for rows in stream_rows(session, stmt, 20_000):
        for key, messages, reference, meta, stored, position in rows:
            if as_text:
                messages = None if messages is None else json.loads(messages)
                meta = None if meta is None else json.loads(meta)
            # each item's canonical text once: the version's text is the items' texts joined in order
            text = canonical_json(item_payload(key, messages, reference, meta)).encode("utf-8")
            if hashlib.sha256(text).hexdigest() != stored:
                problems.append(f"item {key!r} (position {position}): content does not match its hash")
            whole.update(b"," + text if n else text)
            n += 1
    whole.update(b"]}")
    if n != version.item_count:
        problems.append(f"version holds {n} items, but {version.item_count} were frozen")
    if whole.hexdigest() != version.content_hash:
        problems.append(f"version hash {version.content_hash[:12]}… does not match its items")
    return problems


def resolve_version(session: Session, ref: str, *, check: bool = True) -> EvalSetVersion:
    """`name@N`, `name` (latest), or a hash prefix → the version; refuses one that fails verification."""
    name, _, number = ref.partition("@")
    version: EvalSetVersion | None = None
    eval_set = session.exec(select(EvalSet).where(EvalSet.name == name)).first()
    if eval_set is not None:
        if number in ("", "latest"):
            version = latest_version(session, eval_set.id)
        elif number.isdigit():
            version = session.exec(
                select(EvalSetVersion).where(
                    EvalSetVersion.eval_set_id == eval_set.id, EvalSetVersion.number == int(number)
                )
            ).first()
    elif not number and len(ref) >= 8:
        matches = list(session.exec(select(EvalSetVersion).where(EvalSetVersion.content_hash.startswith(ref))))  # type: ignore[attr-defined]
        version = matches[0] if len(matches) == 1 else None
    if version is None:
        known = ", ".join(s.name for s in session.exec(select(EvalSet).order_by(EvalSet.name))) or "none yet"
        raise InputError(
            f"no eval set version {ref!r}",
            where="--set",
            hint=f"use NAME@VERSION, NAME (latest) or a hash prefix; sets: {known}; see `ownbench sets list`",
        )
    if check:
        check_version(session, version, ref)
    return version


def check_version(session: Session, version: EvalSetVersion, ref: str | None = None) -> None:
    """Refuse a version whose stored content no longer matches its hash (IntegrityError, exit 2)."""
    problems = verify(session, version)
    if problems:
        raise IntegrityError(
            f"version {ref or version_label(session, version)} failed verification: " + "; ".join(problems[:5]),
            hint="this version was changed after it was frozen; run `ownbench sets verify` and re-freeze from the source",
        )


def version_label(session: Session, version: EvalSetVersion) -> str:
    eval_set = session.get(EvalSet, version.eval_set_id)
    return f"{eval_set.name if eval_set else '?'}@{version.number}"
