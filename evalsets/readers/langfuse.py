"""Langfuse exports: the traces or observations table exported from the UI as JSON (`[...]`), JSONL or CSV
(every cell JSON-encoded), public-API responses (`{"data": [...], "meta": {...}}` of traces or observations,
or one trace with its observations), and a single trace downloaded as JSON (`{"trace", "observations"}`).

Generations (observations of type GENERATION) carry the prompt the model saw; a trace without generations
contributes its own `input`. Spans, events and other observation types are counted as ignored, and so are
generations that logged no input at all. Each generation is its own record: a bad one is reported at its JSON
path and never hides the others of its trace. Inputs logged as JSON text are parsed by the message
normaliser; text of an unknown JSON shape is refused. A generation whose input has no user turn (an agent
loop's later step) continues an earlier generation of its trace (`traces`).
"""
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
from evalsets.readers.messages import KIND_QUOTED, conversation, refuse
from evalsets.readers.traces import Read, Refused, Step, resolve, time_ns

GENERATION = "GENERATION"


def input_messages(value: Any, where: str) -> list[dict[str, Any]]:
    """What Langfuse stored as an input, as a conversation: messages, request bodies, text, decorator arguments."""
    return conversation(value, where)


def _meta(obj: dict, ctx: ReadContext, kind: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"langfuse": kind}
    for src, dst in (("name", "name"), ("model", "model"), ("traceId", "trace_id"), ("tags", "tags"),
                     ("modelParameters", "params")):
        if obj.get(src) not in (None, "", [], {}):
            meta[dst] = obj[src]
    if isinstance(obj.get("metadata"), dict) and obj["metadata"]:
        meta["metadata"] = obj["metadata"]
    return meta_of(obj, ctx.mapping, meta)


def _step(obj: dict, ctx: ReadContext, line: int, kind: str, pointer: str, trace: str | None) -> Step | None:
    field = ctx.mapping.prompt_field or "input"
    value = get_path(obj, field)
    if value is MISSING:
        raise RecordError(f"missing prompt field {field!r}")
    if value is None and kind == "generation":
        ctx.ignored["generations that logged no input"] += 1
        return None
    key = obj.get(ctx.mapping.id_field or "id")
    source = f"{ctx.name}:{line}" + (f" {ctx.record_path or '$'}{pointer}" if pointer else "")
    rec = LogRecord(
        key=str(key) if isinstance(key, (str, int)) and key != "" else None,
        messages=input_messages(value, field),
        reference=reference_of(obj, ctx.mapping),
        meta=_meta(obj, ctx, kind),
        source=source,
    )
    return Step(rec, trace, time_ns(obj.get("startTime")), line, f"{pointer}.{field}" if pointer else field,
                ctx.record_path, obj)


def units(obj: dict) -> Iterator[tuple[str, dict, str]]:
    """(JSON path inside the record, object, kind) for each prompt-bearing part of a record; ignored parts
    come with kind "ignored:<reason>"."""
    observations = obj.get("observations")
    trace = obj.get("trace") if isinstance(obj.get("trace"), dict) else obj
    if isinstance(observations, list) and observations and isinstance(observations[0], dict):
        generations = [(i, o) for i, o in enumerate(observations) if isinstance(o, dict) and o.get("type") == GENERATION]
        if generations:
            for i, g in generations:
                yield f".observations[{i}]", g, "generation"
            for o in observations:
                if isinstance(o, dict) and o.get("type") != GENERATION:
                    yield "", o, f"ignored:observation of type {o.get('type')}"
            return
    if "traceId" in obj and "type" in obj:  # an observation
        if obj["type"] != GENERATION:
            yield "", obj, f"ignored:observation of type {obj['type']}"
            return
        yield "", obj, "generation"
        return
    yield (".trace" if trace is not obj else ""), trace, "trace"


def _trace_of(obj: dict, unit: dict, kind: str, ctx: ReadContext, line: int) -> str | None:
    """The trace a generation belongs to: its `traceId`, else the trace holding it in this record."""
    if kind != "generation":
        return None
    trace = obj.get("trace") if isinstance(obj.get("trace"), dict) else obj
    ident = unit.get("traceId") or (trace.get("id") if unit is not obj else None)
    return str(ident) if ident else f"{line} {ctx.record_path or '$'}"


def steps_of(obj: dict, ctx: ReadContext, line: int, only: set[str] | None = None) -> Iterator[Step | Refused | ReadError]:
    """The LLM calls of one record (`only`: of those traces alone)."""
    field = ctx.mapping.prompt_field or "input"
    for pointer, unit, kind in units(obj):
        if kind.startswith("ignored:"):
            ctx.ignored[kind.removeprefix("ignored:")] += 1
            continue
        trace = _trace_of(obj, unit, kind, ctx, line)
        if only is not None and trace not in only:
            continue
        try:
            step = _step(unit, ctx, line, kind, pointer, trace)
        except RecordError as exc:
            yield Refused(ctx.refused(line, exc, f"{pointer}.{field}" if pointer else field))
            continue
        if step is not None:
            yield step


def steps(ctx: ReadContext, only: set[str] | None = None) -> Iterator[Step | Refused | ReadError]:
    if base_name(ctx.path).endswith(".csv"):
        yield from _read_csv(ctx, only)
        return
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield ctx.error(line, err)
            continue
        yield from steps_of(obj, ctx, line, only)


def _output(unit: Any) -> Any:
    return unit.get("output") if isinstance(unit, dict) else None


def generations(ctx: ReadContext) -> Iterator[Read]:
    """Every generation of the file, as its prompt or the reason it has none (`traces.resolve`)."""
    return resolve(ctx, lambda only: steps(ctx, only), _output)


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    for got in generations(ctx):
        yield got.result


def decode_cell(text: str) -> Any:
    """A cell of Langfuse's CSV export: JSON-encoded (`"\\"text\\""`, `{…}`, `null`); an empty cell is None."""
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # a plain cell (timestamps, ids in some versions)


def _read_csv(ctx: ReadContext, only: set[str] | None) -> Iterator[Step | Refused | ReadError]:
    """Langfuse's CSV export: one trace or observation a row, every cell JSON-encoded."""
    state = {"line": 0}

    def lines() -> Iterator[str]:
        for lineno, text, err in iter_lines(ctx):
            state["line"] = lineno
            yield "" if err is not None else text + "\n"

    csv.field_size_limit(max(ctx.max_record_bytes, 131072))
    reader = csv.reader(lines())
    header: list[str] | None = None
    while True:
        start = state["line"] + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield ctx.error(start, f"malformed CSV: {exc}")
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            yield ctx.error(start, f"row has {len(row)} fields, the header has {len(header)}")
            continue
        obj = {h: decode_cell(v) for h, v in zip(header, row)}
        field = ctx.mapping.prompt_field or "input"
        raw = dict(zip(header, row)).get(field.split(".")[0], "")
        if raw.strip() == "" or (isinstance(obj.get(field), str) and not obj[field].strip()):
            yield Refused(ctx.refused(start, refuse(f"column {field!r} is empty", "empty prompt")))
            continue
        if not raw.lstrip().startswith(('"', "{", "[", "n")):
            yield Refused(ctx.refused(start, refuse(
                f"column {field!r} is not JSON-encoded as Langfuse writes it; read this file with --format csv",
                KIND_QUOTED)))
            continue
        yield from steps_of(obj, ctx, start, only)
    if header is None:
        yield ctx.error(1, "the file is empty: no header row and no log records")
