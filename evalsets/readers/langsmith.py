"""LangSmith runs: exported as JSONL (one run a line), a JSON list, `{"runs": [...]}` or bulk-export Parquet
(`inputs` / `outputs` / `extra` as JSON text), and the SDK's own payloads `{"post": [...], "patch": [...]}`
(a patch completes the run posted with the same id, or the same `dotted_order`).

LLM runs (`run_type: "llm"`) carry the prompt the model saw: `inputs.messages` (LangChain's list of message
lists, serialised or plain, or a wrapped client's request), `inputs.input` / `inputs.contents` (Responses,
Gemini) or `inputs.prompts`. An LLM run whose input has no user turn (an agent loop's later step) continues an
earlier LLM run of its trace (`traces`). Other runs (chains, tools, retrievers) are counted as ignored, unless
`--prompt-field` names where their prompt is (e.g. `inputs.question`).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from evalsets.readers.base import (
    LogRecord,
    ReadContext,
    ReadError,
    RecordError,
    base_name,
    describe_type,
    iter_json_records,
)
from evalsets.readers.mapping import MISSING, get_path, meta_of, reference_of
from evalsets.readers.messages import conversation, refuse
from evalsets.readers.traces import Read, Refused, Step, resolve, time_ns

JSON_COLUMNS = ("inputs", "outputs", "extra", "events", "tags", "serialized")


def llm_messages(inputs: Any) -> list[dict[str, Any]]:
    if not isinstance(inputs, dict):
        raise refuse(f"inputs must be an object, got {describe_type(inputs)}")
    msgs = inputs.get("messages")
    if isinstance(msgs, list) and msgs and isinstance(msgs[0], list):  # one list per batch element
        if len(msgs) > 1:
            raise refuse(f"inputs.messages holds a batch of {len(msgs)} conversations; only one is supported")
        return conversation(dict(inputs, messages=msgs[0]), "inputs", decode_json=False)
    if "prompts" in inputs:
        prompts = inputs["prompts"]
        if not isinstance(prompts, list) or len(prompts) != 1 or not isinstance(prompts[0], str):
            raise refuse("inputs.prompts must be a list holding one prompt text")
        return conversation([{"role": "user", "content": prompts[0]}], "inputs.prompts")
    if {"messages", "input", "contents"} & set(inputs) or isinstance(inputs.get("prompt"), str):
        if "messages" not in inputs and "contents" not in inputs and isinstance(inputs.get("prompt"), str):
            return conversation(inputs["prompt"], "inputs.prompt", decode_json=False)
        return conversation(inputs if "input" not in inputs or "model" in inputs or "instructions" in inputs
                           else {**inputs, "model": None}, "inputs", decode_json=False)
    raise refuse(f"LLM run without inputs.messages or inputs.prompts (fields: {', '.join(list(inputs)[:8])})")


def _meta(run: dict, ctx: ReadContext) -> dict[str, Any]:
    meta: dict[str, Any] = {"langsmith_run_type": run.get("run_type")}
    if run.get("name"):
        meta["name"] = run["name"]
    if run.get("tags"):
        meta["tags"] = run["tags"]
    md = get_path(run, "extra.metadata")
    if isinstance(md, dict) and md.get("ls_model_name"):
        meta["model"] = md["ls_model_name"]
    elif isinstance(get_path(run, "inputs.model"), str):
        meta["model"] = run["inputs"]["model"]
    params = get_path(run, "extra.invocation_params")
    if isinstance(params, dict):
        meta["params"] = {k: v for k, v in params.items() if k not in ("messages", "model", "tools") and v is not None}
    if run.get("trace_id"):
        meta["trace_id"] = run["trace_id"]
    return meta_of(run, ctx.mapping, meta)


def to_step(run: dict, ctx: ReadContext, line: int, pointer: str = "") -> Step | None:
    """The run as an LLM call (its whole input conversation), or None when it is not one."""
    field = ctx.mapping.prompt_field
    if field:
        value = get_path(run, field)
        if value is MISSING:
            ctx.ignored[f"runs without {field}"] += 1
            return None
        messages = conversation(value, field)
    else:
        run_type = run.get("run_type")
        if run_type is None:
            raise RecordError("not a LangSmith run: no 'run_type' field")
        if run_type != "llm":
            ctx.ignored[f"{run_type} runs"] += 1
            return None
        messages = llm_messages(run.get("inputs"))
    key = run.get(ctx.mapping.id_field or "id")
    rec = LogRecord(
        key=str(key) if isinstance(key, (str, int)) and key != "" else None,
        messages=messages,
        reference=reference_of(run, ctx.mapping),
        meta=_meta(run, ctx),
        source=f"{ctx.name}:{line}",
    )
    return Step(rec, _trace_of(run), time_ns(run.get("start_time")), line, pointer, ctx.record_path, run)


def _trace_of(run: dict) -> str | None:
    """The run's trace (its root run), else its parent: where an agent loop's earlier steps are."""
    ident = run.get("trace_id") or run.get("parent_run_id")
    return str(ident) if ident else None


def merge_payload(obj: dict) -> list[tuple[str, dict]]:
    """The runs of an SDK payload, each post completed by its patches: (JSON path, run)."""
    posts = obj.get("post") or []
    runs: list[tuple[str, dict]] = [(f".post[{i}]", dict(r)) for i, r in enumerate(posts) if isinstance(r, dict)]
    by_id = {r.get("id"): r for _, r in runs if r.get("id")}
    by_order = {r.get("dotted_order"): r for _, r in runs if r.get("dotted_order")}
    for i, patch in enumerate(obj.get("patch") or []):
        if not isinstance(patch, dict):
            continue
        target = by_id.get(patch.get("id")) or by_order.get(patch.get("dotted_order"))
        if target is None:
            runs.append((f".patch[{i}]", dict(patch)))
            continue
        for k, v in patch.items():
            if v not in (None, {}, []) or k not in target:
                target[k] = v
    return runs


def iter_runs(ctx: ReadContext) -> Iterator[tuple[int, str, dict | None, str | None]]:
    """(line, JSON path, run, error) for every run in the file, whatever its shape."""
    if base_name(ctx.path).endswith((".parquet", ".pq")):
        yield from _parquet_runs(ctx)
        return
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield line, "", None, err
            continue
        if "post" in obj or "patch" in obj:
            for pointer, run in merge_payload(obj):
                yield line, pointer, run, None
        else:
            yield line, "", obj, None


def _parquet_runs(ctx: ReadContext) -> Iterator[tuple[int, str, dict | None, str | None]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(ctx.path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        yield 1, "", None, f"not a readable Parquet file: {exc}"
        return
    row = 0
    for batch in pf.iter_batches(batch_size=2048):
        for obj in batch.to_pylist():
            row += 1
            for k in JSON_COLUMNS:
                if isinstance(obj.get(k), str) and obj[k][:1] in ("{", "["):
                    try:
                        obj[k] = json.loads(obj[k])
                    except ValueError:
                        pass
            yield row, "", obj, None


def steps(ctx: ReadContext, only: set[str] | None = None) -> Iterator[Step | Refused | ReadError]:
    for line, pointer, run, err in iter_runs(ctx):
        if err is not None or run is None:
            yield ctx.error(line, err or "not a run")
            continue
        if only is not None and _trace_of(run) not in only:
            continue
        try:
            step = to_step(run, ctx, line, pointer)
        except RecordError as exc:
            yield Refused(ctx.refused(line, exc, pointer or None))
            continue
        if step is not None:
            yield step


def _outputs(run: Any) -> Any:
    return run.get("outputs") if isinstance(run, dict) else None


def generations(ctx: ReadContext) -> Iterator[Read]:
    """Every run of the file, as its prompt or the reason it has none (`traces.resolve`)."""
    return resolve(ctx, lambda only: steps(ctx, only), _outputs)


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    for got in generations(ctx):
        yield got.result
