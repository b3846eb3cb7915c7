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

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from storage.errors import InputError
from storage.hashing import content_hash, file_hash
from storage.models import Candidate, Item, Output, Run, utcnow
from storage.rowfiles import decoded_lines, parse_json
from storage.names import check_name

_KNOWN = {"item_key", "item_id", "prompt_hash", "messages", "output", "text", "error", "finish_reason",
          "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "ttft_ms", "model", "meta"}
_INTS = ("prompt_tokens", "completion_tokens")
_FLOATS = ("cost_usd", "latency_ms", "ttft_ms")
MAX_REPORTED = 20
MAX_INT = 2**31 - 1  # an INTEGER column on PostgreSQL


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
    obj = parse_json(raw)
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
            try:
                digest = prompt_hash(obj["messages"])
            except (RecursionError, TypeError, ValueError):
                raise ValueError("messages are nested too deeply or hold values JSON cannot hash") from None
        else:
            digest = str(obj["prompt_hash"]).lower()
        item = by_hash.get(digest)
        if item is None:
            raise ValueError(f"no item of this version has prompt hash {digest[:16]}…")
    else:
        raise ValueError("name the item with item_key, prompt_hash or messages")
    return item, answer_values(obj)


def answer_values(obj: dict) -> dict[str, Any]:
    """The stored fields of one answer (output or error, finish reason, tokens, cost, latency), checked."""
    text = obj.get("output", obj.get("text"))
    error = obj.get("error")
    if text is None and error is None:
        raise ValueError("give the answer in output (or text), or an error")
    if text is not None and not isinstance(text, str):
        raise ValueError("output must be a string")
    if error is not None and not isinstance(error, str):
        raise ValueError("error must be a string")
    finish = obj.get("finish_reason")
    if finish is not None and (not isinstance(finish, str) or len(finish) > 50):
        raise ValueError("finish_reason must be a string of at most 50 characters")
    for name, value in (("output", text), ("error", error), ("finish_reason", finish)):
        if value is not None and "\x00" in value:  # PostgreSQL text cannot hold NUL
            raise ValueError(f"{name} contains a NUL character (\\u0000); remove it")
    values: dict[str, Any] = {"text": text, "error": error, "finish_reason": obj.get("finish_reason")}
    for name in _INTS:
        v = obj.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_INT):
            raise ValueError(f"{name} must be a whole number from 0 to {MAX_INT:,}")
        values[name] = v
    for name in _FLOATS:
        v = obj.get(name)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v < math.inf):
            raise ValueError(f"{name} must be a number, finite and ≥ 0")
        values[name] = float(v) if v is not None else None
    return values


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
    for lineno, raw, why in decoded_lines(path):
        if raw is None:
            problems.append(f"{path}:{lineno}: {why}")
            continue
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

    return store_run(session, path, digest, candidate_name, version_id, rows, len(items))


def store_run(session: Session, path: Path, digest: str, candidate_name: str, version_id: int,
              rows: list[tuple[Item, dict]], total_items: int, model: str | None = None,
              config: dict[str, Any] | None = None) -> ImportResult:
    """One imported run holding `rows` (item, answer values), unless this file was imported for this
    candidate and version before (then that run is returned)."""
    candidate = session.exec(select(Candidate).where(Candidate.name == candidate_name)).first()
    if candidate is None:
        candidate_name = check_name(candidate_name, "candidate", where="--candidate")
        models = {v.get("model") for _, v in rows if v.get("model")}
        candidate = Candidate(name=candidate_name,
                              model=model or (next(iter(models)) if len(models) == 1 else "imported"),
                              config_hash=content_hash({"imported": candidate_name}))
        session.add(candidate)
        session.flush()
    existing = session.exec(
        select(Run).where(Run.candidate_id == candidate.id, Run.version_id == version_id,
                          Run.source == "imported", Run.source_file_hash == digest)
    ).first()
    if existing is not None:
        return ImportResult(existing, False, len(rows), total_items)
    run = Run(candidate_id=candidate.id, version_id=version_id, source="imported", source_file=str(path.resolve()),
              source_file_hash=digest, status="done", finished_at=utcnow(),
              config={"candidate": candidate_name, "imported_lines": len(rows), "file_name": path.name,
                      **(config or {})},
              status_reason=f"imported {len(rows)} of {total_items} items from {path.name}")
    session.add(run)
    session.flush()
    session.add_all(
        Output(run_id=run.id, item_id=item.id, request_hash=None, cached=False, attempts=0,  # type: ignore[arg-type]
               **{k: v for k, v in values.items() if k != "model"})
        for item, values in rows
    )
    session.flush()
    return ImportResult(run, True, len(rows), total_items)


def provenance(run: Run) -> str:
    """How a run came to be, in words, for every place that lists it."""
    if run.source == "imported":
        name = Path(run.source_file).name if run.source_file else "?"
        return f"imported from {name} (sha256 {(run.source_file_hash or '')[:12]}…)"
    route = (run.config or {}).get("route")
    return f"gateway ({route})" if route else "gateway"
