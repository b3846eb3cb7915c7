"""OpenAI chat logs (JSONL or a JSON list): `{"messages": [...]}`, the request/response log shape
`{"request": {"messages": [...]}, "response": {...}}`, the Batch API input `{"custom_id", "body": {...}}` and
ShareGPT's `{"conversations": [{"from", "value"}]}`. Content may be a string or an array of content parts."""
from __future__ import annotations

from collections.abc import Iterator

from evalsets.readers.base import (
    LogRecord,
    ReadContext,
    ReadError,
    RecordError,
    describe_type,
    iter_json_records,
)
from evalsets.readers.mapping import MISSING, get_path, key_of, meta_of, reference_of
from evalsets.readers.messages import normalise_messages, prompt_of

ID_FIELDS = ("key", "id", "custom_id", "request_id", "question_id")


def conversation(obj: dict) -> tuple[str, object]:
    for path in ("messages", "request.messages", "body.messages", "input.messages", "conversations"):
        value = get_path(obj, path)
        if value is not MISSING:
            return path, value
    raise RecordError("no 'messages' field (nor 'request.messages', 'body.messages' or 'conversations')")


def to_record(obj: dict, ctx: ReadContext, line: int) -> LogRecord:
    mapping = ctx.mapping
    if mapping.prompt_field:
        where, raw = mapping.prompt_field, get_path(obj, mapping.prompt_field)
        if raw is MISSING:
            raise RecordError(f"missing prompt field {where!r}")
    else:
        where, raw = conversation(obj)
    messages = prompt_of(normalise_messages(raw, where))
    base = next((obj[k] for k in ("meta", "metadata") if isinstance(obj.get(k), dict)), None)
    if base is None and isinstance(get_path(obj, "request.metadata"), dict):
        base = get_path(obj, "request.metadata")
    return LogRecord(
        key=key_of(obj, mapping, ID_FIELDS),
        messages=messages,
        reference=reference_of(obj, mapping, default=obj.get("reference")),
        meta=meta_of(obj, mapping, base),
        source=f"{ctx.name}:{line}",
    )


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield ctx.error(line, err)
            continue
        try:
            yield to_record(obj, ctx, line)
        except RecordError as exc:
            yield ctx.error(line, str(exc))
        except (TypeError, AttributeError) as exc:  # a shape we did not foresee: still say where
            yield ctx.error(line, f"unexpected record shape ({describe_type(obj)}): {exc}")
