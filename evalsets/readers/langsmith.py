"""LangSmith runs exported as JSONL (one run a line), a JSON list, or `{"runs": [...]}`.

LLM runs (`run_type: "llm"`) carry the prompt the model saw: `inputs.messages` (LangChain's list of message
lists, serialised or plain) or `inputs.prompts`. Other runs (chains, tools, retrievers) are counted as ignored,
unless `--prompt-field` names where their prompt is (e.g. `inputs.question`).
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
from evalsets.readers.langfuse import input_messages
from evalsets.readers.mapping import MISSING, get_path, meta_of, reference_of
from evalsets.readers.messages import normalise_messages, prompt_of


def llm_messages(inputs: Any) -> list[dict[str, Any]]:
    if not isinstance(inputs, dict):
        raise RecordError(f"inputs must be an object, got {describe_type(inputs)}")
    if "messages" in inputs:
        msgs = inputs["messages"]
        if isinstance(msgs, list) and msgs and isinstance(msgs[0], list):  # one list per batch element
            if len(msgs) > 1:
                raise RecordError(f"inputs.messages holds a batch of {len(msgs)} conversations; only one is supported")
            msgs = msgs[0]
        return prompt_of(normalise_messages(msgs, "inputs.messages"))
    if "prompts" in inputs:
        prompts = inputs["prompts"]
        if not isinstance(prompts, list) or len(prompts) != 1 or not isinstance(prompts[0], str):
            raise RecordError("inputs.prompts must be a list holding one prompt text")
        return [{"role": "user", "content": prompts[0]}]
    if isinstance(inputs.get("prompt"), str):
        return [{"role": "user", "content": inputs["prompt"]}]
    raise RecordError(f"LLM run without inputs.messages or inputs.prompts (fields: {', '.join(list(inputs)[:8])})")


def _meta(run: dict, ctx: ReadContext) -> dict[str, Any]:
    meta: dict[str, Any] = {"langsmith_run_type": run.get("run_type")}
    if run.get("name"):
        meta["name"] = run["name"]
    if run.get("tags"):
        meta["tags"] = run["tags"]
    md = get_path(run, "extra.metadata")
    if isinstance(md, dict) and md.get("ls_model_name"):
        meta["model"] = md["ls_model_name"]
    return meta_of(run, ctx.mapping, meta)


def to_record(run: dict, ctx: ReadContext, line: int) -> LogRecord | None:
    field = ctx.mapping.prompt_field
    if field:
        value = get_path(run, field)
        if value is MISSING:
            ctx.ignored[f"runs without {field}"] += 1
            return None
        messages = input_messages(value, field)
    else:
        run_type = run.get("run_type")
        if run_type is None:
            raise RecordError("not a LangSmith run: no 'run_type' field")
        if run_type != "llm":
            ctx.ignored[f"{run_type} runs"] += 1
            return None
        messages = llm_messages(run.get("inputs"))
    key = run.get(ctx.mapping.id_field or "id")
    return LogRecord(
        key=str(key) if isinstance(key, (str, int)) and key != "" else None,
        messages=messages,
        reference=reference_of(run, ctx.mapping),
        meta=_meta(run, ctx),
        source=f"{ctx.name}:{line}",
    )


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield ctx.error(line, err)
            continue
        try:
            rec = to_record(obj, ctx, line)
        except RecordError as exc:
            yield ctx.error(line, str(exc))
            continue
        if rec is not None:
            yield rec
