"""Diffs between versions and edits that make new ones. A frozen version never changes: adding, removing or
replacing items freezes a new version whose parent is the edited one, with the diff stored on it."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from evalsets.freeze import ItemDraft, freeze, item_payloads, version_label
from evalsets.readers.messages import content_text
from storage.errors import InputError
from storage.hashing import content_hash
from storage.models import EvalSet, EvalSetVersion


def prompt_preview(messages: list[dict[str, Any]], width: int = 80) -> str:
    """The last user turn, on one line, cut to `width` characters."""
    last = next((m for m in reversed(messages) if m.get("role") == "user"), messages[-1] if messages else {})
    text = " ".join(content_text(last.get("content")).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def diff_versions(session: Session, a: EvalSetVersion, b: EvalSetVersion) -> dict[str, Any]:
    """Items added, removed and replaced going from `a` to `b` (by item key), with previews."""
    old = {p["key"]: p for p in item_payloads(session, a)}
    new = {p["key"]: p for p in item_payloads(session, b)}
    replaced = [k for k in new if k in old and content_hash(old[k]) != content_hash(new[k])]
    return {
        "from": {"ref": version_label(session, a), "hash": a.content_hash, "items": len(old)},
        "to": {"ref": version_label(session, b), "hash": b.content_hash, "items": len(new)},
        "added": [{"key": k, "prompt": prompt_preview(new[k]["messages"])} for k in new if k not in old],
        "removed": [{"key": k, "prompt": prompt_preview(old[k]["messages"])} for k in old if k not in new],
        "replaced": [
            {"key": k, "before": prompt_preview(old[k]["messages"]), "after": prompt_preview(new[k]["messages"]),
             "changed": [f for f in ("messages", "reference", "meta") if old[k][f] != new[k][f]]}
            for k in replaced
        ],
        "unchanged": sum(1 for k in new if k in old and k not in replaced),
    }


def edit_version(
    session: Session,
    version: EvalSetVersion,
    *,
    add: Sequence[ItemDraft] = (),
    remove: Sequence[str] = (),
    replace: Sequence[ItemDraft] = (),
    note: str | None = None,
) -> EvalSetVersion:
    """Freeze a new version of `version`'s set: its items with `replace` swapped in by key, `remove` dropped,
    and `add` appended. Unknown keys, keys added twice and empty results are refused."""
    current = item_payloads(session, version)
    keys = {p["key"] for p in current}
    label = version_label(session, version)
    unknown = [k for k in remove if k not in keys] + [d.key for d in replace if d.key not in keys]
    if unknown:
        raise InputError(f"no item {unknown[0]!r} in {label}", where="KEY",
                         hint=f"`ownbench sets show {label}` lists the item keys")
    clash = [d.key for d in add if d.key in keys]
    if clash:
        raise InputError(f"item {clash[0]!r} is already in {label}", hint="use `ownbench sets replace` to change it")
    new_keys = [d.key for d in add] + [d.key for d in replace]
    if len(set(new_keys)) != len(new_keys):
        raise InputError("the same item key is given twice", hint="each key once per edit")
    swap = {d.key: d for d in replace}
    drop = set(remove)
    drafts = [
        swap.get(p["key"]) or ItemDraft(p["key"], p["messages"], p["reference"], p["meta"])
        for p in current if p["key"] not in drop
    ] + list(add)
    if not drafts:
        raise InputError(f"removing these items would leave {label} empty", hint="an eval set needs items")
    eval_set = session.get(EvalSet, version.eval_set_id)
    assert eval_set is not None
    edit = {"edited_from": label, "parent_hash": version.content_hash, "added": len(add),
            "removed": len(drop), "replaced": len(replace), "note": note}
    report = dict(version.sampling_report or {})
    report["edits"] = [*report.get("edits", []), edit]
    return freeze(session, eval_set.name, drafts, parent=version, sampling_report=report,
                  skipped_count=version.skipped_count, source={**(version.source or {}), "edit": edit})
