"""OpenAI request logs (JSONL or a JSON list): `{"messages": [...]}`, the request/response log shape
`{"request": {...}, "response": {...}}`, Batch API input lines `{"custom_id", "method", "url", "body"}` for
`/v1/chat/completions` and `/v1/responses` (the body's `instructions` become the system turn; its model and
parameters are kept in the metadata), and ShareGPT's `{"conversations": [{"from", "value"}]}`."""
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
from evalsets.readers.mapping import MISSING, get_path, key_of, meta_of, reference_of
from evalsets.readers.messages import prompt_from, refuse

ID_FIELDS = ("key", "id", "custom_id", "request_id", "question_id")
PROMPT_KEYS = {"messages", "input", "instructions", "system", "contents", "prompt"}
# Request fields that are not the model's parameters.
NOT_PARAMS = PROMPT_KEYS | {"model", "metadata", "user", "store", "stream", "stream_options", "tools", "tool_choice",
                            "response_format", "text", "extra_headers", "extra_query", "extra_body"}


def _request(obj: dict) -> tuple[str, dict] | None:
    for name in ("body", "request"):
        body = obj.get(name)
        if isinstance(body, dict) and PROMPT_KEYS & set(body):
            return name, body
    return None


def request_meta(body: dict) -> dict[str, Any]:
    """The model and sampling parameters a request was made with."""
    meta: dict[str, Any] = {}
    if isinstance(body.get("model"), str):
        meta["model"] = body["model"]
    params = {k: v for k, v in body.items() if k not in NOT_PARAMS and v is not None}
    for k in ("text", "response_format", "tool_choice"):
        if body.get(k) is not None:
            params[k] = body[k]
    if isinstance(body.get("tools"), list):
        params["tools"] = [t.get("name") or (t.get("function") or {}).get("name") for t in body["tools"]
                           if isinstance(t, dict)]
    if params:
        meta["params"] = params
    return meta


def to_record(obj: dict, ctx: ReadContext, line: int) -> LogRecord:
    mapping = ctx.mapping
    extra: dict[str, Any] = {}
    if mapping.prompt_field:
        raw = get_path(obj, mapping.prompt_field)
        if raw is MISSING:
            raise RecordError(f"missing prompt field {mapping.prompt_field!r}")
        messages = prompt_from(raw, mapping.prompt_field)
    elif "messages" in obj or "conversations" in obj:
        name = "messages" if "messages" in obj else "conversations"
        value = obj[name]
        if isinstance(value, str) and not value.lstrip().startswith("["):  # only JSON text of a list is a list
            raise refuse(f"{name} must be a list of messages, got text")
        messages = prompt_from(value, name)
    elif (req := _request(obj)) is not None:
        name, body = req
        messages = prompt_from(body, name, decode_json=False)  # a request's text is what the model was sent
        extra = request_meta(body)
        if isinstance(obj.get("url"), str):
            extra["endpoint"] = obj["url"]
    else:
        raise RecordError("no 'messages' field (nor 'body' / 'request' with messages or input, nor 'conversations')")
    base = next((obj[k] for k in ("meta", "metadata") if isinstance(obj.get(k), dict)), None)
    if base is None and isinstance(get_path(obj, "request.metadata"), dict):
        base = get_path(obj, "request.metadata")
    meta = {**extra, **(base or {})}
    return LogRecord(
        key=key_of(obj, mapping, ID_FIELDS),
        messages=messages,
        reference=reference_of(obj, mapping, default=obj.get("reference")),
        meta=meta_of(obj, mapping, meta),
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
            yield ctx.refused(line, exc)
        except (TypeError, AttributeError) as exc:  # a shape we did not foresee: still say where
            yield ctx.error(line, f"unexpected record shape ({describe_type(obj)}): {exc}")
