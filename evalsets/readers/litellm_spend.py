"""LiteLLM proxy spend logs (`LiteLLM_SpendLogs` rows exported as JSON, JSONL or CSV): each row is one call
through the proxy, with `request_id`, `model`, `spend`, token counts, the `messages` sent (when the proxy
stores prompts) or the whole `proxy_server_request`, and the `response`."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from evalsets.readers.base import (
    LogRecord,
    ReadContext,
    ReadError,
    RecordError,
    base_name,
    iter_json_records,
    iter_lines,
)
from evalsets.readers.mapping import MISSING, get_path, meta_of, reference_of
from evalsets.readers.messages import prompt_from, refuse

JSON_COLUMNS = ("messages", "response", "metadata", "proxy_server_request", "request_tags")


def _json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def to_record(row: dict, ctx: ReadContext, line: int) -> LogRecord:
    row = {k: (_json(v) if k in JSON_COLUMNS else v) for k, v in row.items()}
    field = ctx.mapping.prompt_field
    if field:
        value = get_path(row, field)
        if value is MISSING:
            raise RecordError(f"missing prompt field {field!r}")
        messages = prompt_from(value, field)
    elif isinstance(row.get("messages"), list) and row["messages"]:
        messages = prompt_from(row["messages"], "messages")
    elif isinstance(row.get("proxy_server_request"), dict) and row["proxy_server_request"]:
        body = row["proxy_server_request"]
        messages = prompt_from(body.get("body", body), "proxy_server_request", decode_json=False)
    else:
        raise refuse("the row holds no prompt: 'messages' and 'proxy_server_request' are empty (the proxy stores "
                     "them only with store_prompts_in_spend_logs: true)", "no prompt logged")
    meta: dict[str, Any] = {"litellm_call_type": row.get("call_type")}
    for src in ("model", "model_group", "custom_llm_provider", "spend", "status"):
        if row.get(src) not in (None, ""):
            meta[src] = row[src]
    key = row.get(ctx.mapping.id_field or "request_id")
    return LogRecord(key=str(key) if key not in (None, "") else None, messages=messages,
                     reference=reference_of(row, ctx.mapping), meta=meta_of(row, ctx.mapping, meta),
                     source=f"{ctx.name}:{line}")


def rows(ctx: ReadContext) -> Iterator[tuple[int, dict | None, str | None]]:
    if base_name(ctx.path).endswith(".csv"):
        state = {"line": 0}

        def lines() -> Iterator[str]:
            for lineno, text, err in iter_lines(ctx):
                state["line"] = lineno
                yield "" if err is not None else text + "\n"

        csv.field_size_limit(max(ctx.max_record_bytes, 131072))
        reader = csv.DictReader(lines())
        while True:
            start = state["line"] + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, None, f"malformed CSV: {exc}"
                continue
            yield start, row, None
    else:
        yield from iter_json_records(ctx)


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    for line, row, err in rows(ctx):
        if err is not None or row is None:
            yield ctx.error(line, err or "not a row")
            continue
        try:
            yield to_record(row, ctx, line)
        except RecordError as exc:
            yield ctx.refused(line, exc)
