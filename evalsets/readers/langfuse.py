"""Langfuse exports: the traces or observations table exported as JSON (`[...]`, `{"data": [...]}`) or JSONL,
and a single trace downloaded as JSON (the trace with its `observations`).

Generations (observations of type GENERATION) carry the prompt the model saw; a trace without generations
contributes its own `input`. Spans, events and other observation types are counted as ignored.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from evalsets.readers.base import (
    LogRecord,
    ReadContext,
    ReadError,
    RecordError,
    describe_type,
    iter_json_records,
)
from evalsets.readers.mapping import MISSING, get_path, meta_of, reference_of
from evalsets.readers.messages import normalise_messages, prompt_of, user_turns

TEXT_INPUT_KEYS = ("messages", "input", "query", "question", "prompt", "text", "user_input", "message")


def input_messages(value: Any, where: str) -> list[dict[str, Any]]:
    """Langfuse stores whatever the SDK captured: a message list, `{"messages": [...]}`, plain text, the
    decorator's `{"args": [...], "kwargs": {...}}`, or an object with one text field."""
    if isinstance(value, str):
        if not value.strip():
            raise RecordError(f"{where} is empty")
        return [{"role": "user", "content": value}]
    if isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            return user_turns(value, where)
        return prompt_of(normalise_messages(value, where))
    if isinstance(value, dict):
        if "kwargs" in value and isinstance(value["kwargs"], dict) and "messages" in value["kwargs"]:
            return input_messages(value["kwargs"]["messages"], f"{where}.kwargs.messages")
        if isinstance(value.get("args"), list) and value["args"] and isinstance(value["args"][0], (str, list)):
            return input_messages(value["args"][0], f"{where}.args[0]")
        for key in TEXT_INPUT_KEYS:
            if key in value and isinstance(value[key], (str, list)):
                return input_messages(value[key], f"{where}.{key}")
        raise RecordError(
            f"{where} is an object without messages or text (fields: {', '.join(list(value)[:8])}); "
            f"pass --prompt-field {where}.<field>"
        )
    if value is None:
        raise RecordError(f"{where} is missing")
    raise RecordError(f"{where} must be messages or text, got {describe_type(value)}")


def _meta(obj: dict, ctx: ReadContext, kind: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"langfuse": kind}
    for src, dst in (("name", "name"), ("model", "model"), ("traceId", "trace_id"), ("tags", "tags")):
        if obj.get(src) not in (None, "", []):
            meta[dst] = obj[src]
    if isinstance(obj.get("metadata"), dict) and obj["metadata"]:
        meta["metadata"] = obj["metadata"]
    return meta_of(obj, ctx.mapping, meta)


def _record(obj: dict, ctx: ReadContext, line: int, kind: str) -> LogRecord:
    field = ctx.mapping.prompt_field or "input"
    value = get_path(obj, field)
    if value is MISSING:
        raise RecordError(f"missing prompt field {field!r}")
    key = obj.get(ctx.mapping.id_field or "id")
    return LogRecord(
        key=str(key) if isinstance(key, (str, int)) and key != "" else None,
        messages=input_messages(value, field),
        reference=reference_of(obj, ctx.mapping),
        meta=_meta(obj, ctx, kind),
        source=f"{ctx.name}:{line}",
    )


def records_of(obj: dict, ctx: ReadContext, line: int) -> Iterator[LogRecord]:
    observations = obj.get("observations")
    if isinstance(observations, list) and observations and isinstance(observations[0], dict):
        generations = [o for o in observations if isinstance(o, dict) and o.get("type") == "GENERATION"]
        if generations:
            for g in generations:
                yield _record(g, ctx, line, "generation")
            return
    if "traceId" in obj and "type" in obj:  # an observation
        if obj["type"] != "GENERATION":
            ctx.ignored[f"observation of type {obj['type']}"] += 1
            return
        yield _record(obj, ctx, line, "generation")
        return
    yield _record(obj, ctx, line, "trace")


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield ctx.error(line, err)
            continue
        try:
            yield from records_of(obj, ctx, line)
        except RecordError as exc:
            yield ctx.error(line, str(exc))
