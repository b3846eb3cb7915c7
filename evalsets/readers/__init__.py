"""Log readers, one module per format. Each `read(ctx)` streams `LogRecord`s and `ReadError`s.

    openai     OpenAI chat JSONL: {"messages": [...]}, {"request": {"messages"}, "response"}, ShareGPT
    jsonl      any JSONL (or JSON list) with a field mapping
    csv        CSV / TSV with a header row and a field mapping
    parquet    Parquet with a field mapping
    langfuse   Langfuse traces / observations export (JSON or JSONL), or one downloaded trace
    langsmith  LangSmith runs export (JSONL, JSON list or {"runs": [...]})
"""
from __future__ import annotations

import json
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

FORMATS = ("openai", "jsonl", "csv", "parquet", "langfuse", "langsmith")

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
    else:
        raise InputError(f"unknown format {fmt!r}", where="--format", hint=f"one of: auto, {', '.join(FORMATS)}")
    return mod.read


def detect_format(path: str | Path, mapping: FieldMapping | None = None) -> str:
    """Tell the format from the file name, then from the first record's fields."""
    name = base_name(path)
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".csv") or name.endswith(".tsv"):
        return "csv"
    first = _first_record(path)
    if first is None:
        return "jsonl"
    if "run_type" in first or ("inputs" in first and "outputs" in first):
        return "langsmith"
    if "traceId" in first or "observations" in first or ("input" in first and "timestamp" in first and "id" in first):
        return "langfuse"
    if mapping is not None and mapping.prompt_field:
        return "jsonl"
    if any(k in first for k in ("messages", "request", "conversations")) or "messages" in (first.get("body") or {}):
        return "openai"
    return "jsonl"


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
            for wrapper in ("data", "traces", "observations", "runs", "items", "records"):
                if isinstance(obj.get(wrapper), list) and obj[wrapper] and len(obj) <= 3:
                    obj = obj[wrapper][0]
                    break
        else:
            return None
    except (ValueError, RecursionError, AttributeError):  # the reader reports the record with its line
        return None
    return obj if isinstance(obj, dict) else None
