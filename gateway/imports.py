"""Bring your own outputs: recorded answers (production logs, another harness) become an imported run.

Each JSONL line names its item by `item_key` (alias `item_id`: the item's key in the version), by
`prompt_hash` (SHA-256 of the canonical JSON of the item's messages, see `prompt_hash`), or by `messages`
(hashed the same way), and carries `output` (alias `text`) or `error`. Optional: finish_reason, prompt_tokens,
completion_tokens, cost_usd, latency_ms, ttft_ms.

The whole file is checked before anything is written: every bad line is reported as `file:line: reason`,
and then nothing is stored. The run keeps its provenance: source "imported", the file's path and SHA-256.
Importing the same file again for the same candidate and version returns the run made the first time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from storage.errors import InputError
from storage.hashing import content_hash, file_hash
from storage.models import Candidate, Item, Output, Run, utcnow
from storage.names import check_name

_KNOWN = {"item_key", "item_id", "prompt_hash", "messages", "output", "text", "error", "finish_reason",
          "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "ttft_ms", "model", "meta"}
_INTS = ("prompt_tokens", "completion_tokens")
_FLOATS = ("cost_usd", "latency_ms", "ttft_ms")
MAX_REPORTED = 20


def prompt_hash(messages: list[dict]) -> str:
    """The hash an imported line may use to name an item: SHA-256 of its messages' canonical JSON."""
    return content_hash(messages)


@dataclass
class ImportResult:
    run: Run
    created: bool
    imported: int
    total_items: int


def _parse_line(raw: str, by_key: dict[str, Item], by_hash: dict[str, Item]) -> tuple[Item, dict]:
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(obj) - _KNOWN)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}")
    key = obj.get("item_key", obj.get("item_id"))
    if key is not None:
        item = by_key.get(str(key))
        if item is None:
            raise ValueError(f"no item with key {str(key)!r} in this version")
    elif obj.get("prompt_hash") is not None or obj.get("messages") is not None:
        if obj.get("messages") is not None:
            if not isinstance(obj["messages"], list):
                raise ValueError("messages must be a list of {role, content} objects")
            digest = prompt_hash(obj["messages"])
        else:
            digest = str(obj["prompt_hash"]).lower()
        item = by_hash.get(digest)
        if item is None:
            raise ValueError(f"no item of this version has prompt hash {digest[:16]}…")
    else:
        raise ValueError("name the item with item_key, prompt_hash or messages")
    text = obj.get("output", obj.get("text"))
    error = obj.get("error")
    if text is None and error is None:
        raise ValueError("give the answer in output (or text), or an error")
    if text is not None and not isinstance(text, str):
        raise ValueError("output must be a string")
    if error is not None and not isinstance(error, str):
        raise ValueError("error must be a string")
    values: dict[str, Any] = {"text": text, "error": error, "finish_reason": obj.get("finish_reason")}
    for name in _INTS:
        v = obj.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise ValueError(f"{name} must be a whole number ≥ 0")
        values[name] = v
    for name in _FLOATS:
        v = obj.get(name)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
            raise ValueError(f"{name} must be a number ≥ 0")
        values[name] = float(v) if v is not None else None
    return item, values


def import_run(session: Session, path: str | Path, candidate_name: str, version_id: int) -> ImportResult:
    """Validate the whole file, then store one imported run with one row per line (in the caller's session)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}", where="FILE")
    digest = file_hash(str(path))
    items = list(session.exec(select(Item).where(Item.version_id == version_id).order_by(Item.position)))
    by_key = {i.item_key: i for i in items}
    by_hash: dict[str, Item] = {}
    for i in items:
        by_hash.setdefault(prompt_hash(i.messages), i)

    rows: list[tuple[Item, dict]] = []
    problems: list[str] = []
    seen: dict[int, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                item, values = _parse_line(raw, by_key, by_hash)
            except ValueError as exc:
                problems.append(f"{path}:{lineno}: {exc}")
                continue
            if item.id in seen:
                problems.append(f"{path}:{lineno}: item {item.item_key!r} already answered on line {seen[item.id]}")
                continue
            seen[item.id] = lineno  # type: ignore[index]
            rows.append((item, values))
    if problems:
        more = f"\n  … and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise InputError(
            f"{len(problems)} bad line(s); nothing was imported:\n  " + "\n  ".join(problems[:MAX_REPORTED]) + more,
            hint="fix these lines (each needs item_key, prompt_hash or messages, and output or error) and import again",
        )
    if not rows:
        raise InputError("the file holds no answers", where=str(path))

    candidate = session.exec(select(Candidate).where(Candidate.name == candidate_name)).first()
    if candidate is None:
        candidate_name = check_name(candidate_name, "candidate", where="--candidate")
        models = {v.get("model") for _, v in rows if v.get("model")}
        candidate = Candidate(name=candidate_name, model=next(iter(models)) if len(models) == 1 else "imported",
                              config_hash=content_hash({"imported": candidate_name}))
        session.add(candidate)
        session.flush()
    existing = session.exec(
        select(Run).where(Run.candidate_id == candidate.id, Run.version_id == version_id,
                          Run.source == "imported", Run.source_file_hash == digest)
    ).first()
    if existing is not None:
        return ImportResult(existing, False, len(rows), len(items))
    run = Run(candidate_id=candidate.id, version_id=version_id, source="imported", source_file=str(path.resolve()),
              source_file_hash=digest, status="done", finished_at=utcnow(),
              config={"candidate": candidate_name, "imported_lines": len(rows), "file_name": path.name},
              status_reason=f"imported {len(rows)} of {len(items)} items from {path.name}")
    session.add(run)
    session.flush()
    session.add_all(
        Output(run_id=run.id, item_id=item.id, request_hash=None, cached=False, attempts=0,  # type: ignore[arg-type]
               **values)
        for item, values in rows
    )
    session.flush()
    return ImportResult(run, True, len(rows), len(items))


def provenance(run: Run) -> str:
    """How a run came to be, in words, for every place that lists it."""
    if run.source == "imported":
        name = Path(run.source_file).name if run.source_file else "?"
        return f"imported from {name} (sha256 {(run.source_file_hash or '')[:12]}…)"
    route = (run.config or {}).get("route")
    return f"gateway ({route})" if route else "gateway"
