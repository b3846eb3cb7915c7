"""Log readers, one module per format. Each `read(ctx)` streams `LogRecord`s and `ReadError`s.

    openai     OpenAI chat JSONL: {"messages": [...]}, {"request": {"messages"}, "response"}, ShareGPT
    jsonl      any JSONL (or JSON list) with a field mapping
    csv        CSV / TSV with a header row and a field mapping
    parquet    Parquet with a field mapping
    langfuse   Langfuse traces / observations export (JSON or JSONL), or one downloaded trace
    langsmith  LangSmith runs export (JSONL, JSON list, {"runs": [...]}, bulk-export Parquet) and SDK payloads
               ({"post": [...], "patch": [...]})
    otel       OpenTelemetry spans: OTLP JSON (resourceSpans), flat span lists (Phoenix, Arize, Vercel AI SDK)
    litellm    LiteLLM proxy spend logs (JSON, JSONL or CSV)

Every reader turns messages into the item's conversation through `messages` (the one normaliser); the readers
of traces (langfuse, langsmith, otel) also share `traces`, the rule for an agent loop's later calls.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from evalsets.readers.base import (
    DEFAULT_MAX_RECORD_BYTES,
    LogRecord,
    ReadContext,
    ReadError,
    base_name,
    open_binary,
)
from evalsets.readers.mapping import FieldMapping
from storage.errors import InputError

FORMATS = ("openai", "jsonl", "csv", "parquet", "langfuse", "langsmith", "otel", "litellm")

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "FORMATS",
    "FieldMapping",
    "LogRecord",
    "ReadContext",
    "ReadError",
    "detect_format",
    "reader_for",
]


def reader_for(fmt: str) -> Callable[[ReadContext], Iterator[LogRecord | ReadError]]:
    if fmt == "openai":
        from evalsets.readers import openai_chat as mod
    elif fmt == "jsonl":
        from evalsets.readers import jsonl_generic as mod  # type: ignore[no-redef]
    elif fmt == "csv":
        from evalsets.readers import csv_table as mod  # type: ignore[no-redef]
    elif fmt == "parquet":
        from evalsets.readers import parquet_table as mod  # type: ignore[no-redef]
    elif fmt == "langfuse":
        from evalsets.readers import langfuse as mod  # type: ignore[no-redef]
    elif fmt == "langsmith":
        from evalsets.readers import langsmith as mod  # type: ignore[no-redef]
    elif fmt == "otel":
        from evalsets.readers import otel as mod  # type: ignore[no-redef]
    elif fmt == "litellm":
        from evalsets.readers import litellm_spend as mod  # type: ignore[no-redef]
    else:
        raise InputError(f"unknown format {fmt!r}", where="--format", hint=f"one of: auto, {', '.join(FORMATS)}")
    return mod.read


def detect_format(path: str | Path, mapping: FieldMapping | None = None) -> str:
    """Tell the format from the file name, then from the first record's fields."""
    name = base_name(path)
    if name.endswith((".parquet", ".pq")):
        return _parquet_format(path)
    if name.endswith((".csv", ".tsv")):
        return _csv_format(path)
    first = _first_record(path)
    if first is None:
        return "jsonl"
    if "post" in first or "patch" in first or "run_type" in first or ("inputs" in first and "outputs" in first):
        return "langsmith"
    if "resourceSpans" in first or "spanContext" in first or "span_kind" in first or "context.span_id" in first \
            or any(str(k).startswith(("gen_ai.", "llm.input_messages", "ai.prompt", "openinference.")) for k in first) \
            or (isinstance(first.get("attributes"), (dict, list)) and "name" in first):
        return "otel"
    if "request_id" in first and "spend" in first and ("messages" in first or "proxy_server_request" in first):
        return "litellm"
    if "traceId" in first or "observations" in first or ("input" in first and "timestamp" in first and "id" in first):
        return "langfuse"
    if mapping is not None and mapping.prompt_field:
        return "jsonl"
    if any(k in first for k in ("messages", "request", "conversations")) or \
            {"messages", "input"} & set(first.get("body") or {}):
        return "openai"
    return "jsonl"


def _csv_format(path: str | Path) -> str:
    """Langfuse's and LiteLLM's CSV exports by their header; any other CSV is read with a field mapping."""
    try:
        with open_binary(path) as fh:
            header = fh.readline(1 << 16).decode("utf-8", errors="replace").lstrip("\ufeff")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", where=str(path)) from exc
    cols = {c.strip().strip('"') for c in header.split(",")}
    if "request_id" in cols and "spend" in cols:
        return "litellm"
    if "input" in cols and ({"traceId", "sessionId", "latency", "observations"} & cols):
        return "langfuse"
    return "csv"


def _parquet_format(path: str | Path) -> str:
    import pyarrow.parquet as pq

    try:
        names = set(pq.ParquetFile(path).schema_arrow.names)
    except Exception:  # noqa: BLE001 - the parquet reader reports an unreadable file with its location
        return "parquet"
    return "langsmith" if {"run_type", "inputs"} <= names else "parquet"


def _first_record(path: str | Path) -> dict | None:
    """The first record, parsed from at most the first 1 MiB: enough to tell formats apart."""
    try:
        with open_binary(path) as fh:
            head = fh.read(1 << 20).decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", where=str(path)) from exc
    decoder = json.JSONDecoder()
    try:
        if head.startswith("["):
            obj, _ = decoder.raw_decode(head, 1 + len(head[1:]) - len(head[1:].lstrip()))
        elif head.startswith("{"):
            obj, _ = decoder.raw_decode(head)
            for wrapper in ("data", "traces", "observations", "runs", "items", "records", "spans"):
                if isinstance(obj.get(wrapper), list) and obj[wrapper] and len(obj) <= 3:
                    obj = obj[wrapper][0]
                    break
        else:
            return None
    except json.JSONDecodeError:
        # a first record over 1 MiB (a big OTLP export, a long trace): tell the format by the keys it starts with
        keys = _KEY.findall(head[:16384])
        return dict.fromkeys(keys) if keys else None
    except (ValueError, RecursionError, AttributeError):  # the reader reports the record with its line
        return None
    return obj if isinstance(obj, dict) else None


_KEY = re.compile(r'"([^"\\]{1,80})"\s*:')
