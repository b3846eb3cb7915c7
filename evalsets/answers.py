"""Production answers: the outputs the logs already recorded, as runs of a frozen version.

Sources: an OpenAI Batch output file (matched to the items by `custom_id`, which the Batch input reader keeps
as the item key), and the responses logged in Langfuse, LangSmith, OpenTelemetry and LiteLLM exports (matched
by the record's id, else by the prompt itself, read with the same readers that built the eval set). Answers
are grouped per model: each model that answered becomes one imported run, with the tokens, cost and latency
the log recorded.

Records of the log that are not in the version (the set is a sample) or that repeat an already answered item
are counted, not errors; a record whose answer cannot be read is an error located at its line.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from evalsets.readers import FieldMapping, ReadContext, ReadError, detect_format
from evalsets.readers.base import RecordError, iter_json_records
from evalsets.readers.mapping import get_path
from evalsets.readers.messages import content_text, tool_calls_text
from evalsets.readers.traces import Step, error_at
from gateway.imports import ImportResult, answer_values, prompt_hash, store_run
from storage.errors import InputError
from storage.hashing import file_hash
from storage.models import Item

MAX_REPORTED = 20


@dataclass
class Answer:
    source: str
    key: str | None
    messages: list[dict[str, Any]] | None
    model: str | None
    values: dict[str, Any]  # text | error, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_ms


@dataclass
class ProductionImport:
    runs: list[tuple[str, ImportResult]]  # (model, result)
    answers: int
    not_in_version: int
    repeated: int
    ignored: Counter = field(default_factory=Counter)


# --- answers out of the provider responses ----------------------------------------------------------------


def response_text(body: Any) -> tuple[str | None, str | None]:
    """(answer text, finish reason) of a provider response or a logged output, whatever its shape."""
    if body is None:
        return None, None
    if isinstance(body, str):
        stripped = body.strip()
        if stripped[:1] in ("{", "[") :
            try:
                return response_text(json.loads(stripped))
            except ValueError:
                pass
        return body, None
    if isinstance(body, list):
        msgs = [m for m in body if isinstance(m, dict)]
        assistant = [m for m in msgs if m.get("role") in ("assistant", "model")]
        if assistant:
            return response_text(assistant[-1])
        if msgs and all(m.get("type") in ("message", "function_call", "reasoning") for m in msgs):
            return response_text({"output": msgs})
        if body and all(isinstance(x, str) for x in body):
            return "\n".join(body), None
        return None, None
    if not isinstance(body, dict):
        return None, None
    if isinstance(body.get("choices"), list) and body["choices"]:  # chat completions
        choice = body["choices"][0]
        msg = choice.get("message") or choice.get("delta") or {}
        text = msg.get("content") if isinstance(msg, dict) else None
        if text is None and isinstance(choice.get("text"), str):
            text = choice["text"]
        if not text and isinstance(msg, dict) and msg.get("tool_calls"):
            text = tool_calls_text(msg)
        return (text if isinstance(text, str) else content_text(text) if text else text), choice.get("finish_reason")
    if isinstance(body.get("output"), list):  # Responses
        parts, calls = [], []
        for item in body["output"]:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "message":
                parts += [c.get("text", "") for c in item.get("content") or []
                          if isinstance(c, dict) and c.get("type") in ("output_text", "text")]
            elif item.get("type") == "function_call":
                calls.append(f"{item.get('name')}({item.get('arguments', '')})")
        text = "".join(parts) or "\n".join(calls) or body.get("output_text")
        return text, body.get("status")
    if isinstance(body.get("candidates"), list) and body["candidates"]:  # Gemini
        cand = body["candidates"][0]
        return _parts_text((cand.get("content") or {}).get("parts")), cand.get("finish_reason", cand.get("finishReason"))
    if isinstance(body.get("content"), dict) and "parts" in body["content"]:  # Gemini LlmResponse (ADK)
        return _parts_text(body["content"]["parts"]), body.get("finish_reason")
    if isinstance(body.get("parts"), list):  # OTel output message
        return _parts_text(body["parts"]), body.get("finish_reason")
    if body.get("type") == "message" and isinstance(body.get("content"), list):  # Anthropic
        return _parts_text(body["content"]), body.get("stop_reason")
    if isinstance(body.get("generations"), list) and body["generations"]:  # LangChain LLMResult
        gen = body["generations"][0]
        gen = gen[0] if isinstance(gen, list) and gen else gen
        if isinstance(gen, dict):
            msg = gen.get("message") or {}
            text = gen.get("text") or get_path(msg, "kwargs.content")
            return (text if isinstance(text, str) else None), get_path(gen, "generation_info.finish_reason") or None
    ak = body.get("additional_kwargs") if isinstance(body.get("additional_kwargs"), dict) else {}
    calls = body.get("tool_calls") or ak.get("tool_calls")
    for k in ("content", "text", "output", "completion", "answer", "response"):
        v = body.get(k)
        if isinstance(v, str):
            return v or (tool_calls_text({"tool_calls": calls}) if calls else v), body.get("finish_reason")
        if isinstance(v, (list, dict)) and v:
            return response_text(v)
    if calls:
        return tool_calls_text({"tool_calls": calls}), None
    return None, None


def _parts_text(parts: Any) -> str | None:
    """The text of content parts; a turn that only called tools reads as its calls, one a line."""
    if not isinstance(parts, list):
        return None
    texts, calls = [], []
    for p in parts:
        if isinstance(p, str):
            texts.append(p)
        elif isinstance(p, dict) and not p.get("thought") and p.get("type") not in ("thinking", "reasoning"):
            if isinstance(p.get("text"), str):
                texts.append(p["text"])
            elif isinstance(p.get("content"), str):
                texts.append(p["content"])
            elif p.get("type") in ("tool_call", "tool_use") or "function_call" in p or "functionCall" in p:
                fc = p.get("function_call") or p.get("functionCall") or p
                args = fc.get("arguments", fc.get("input", fc.get("args")))
                calls.append(f"{fc.get('name')}({args if isinstance(args, str) else json.dumps(args)})")
    if texts:
        return "".join(texts)
    return "\n".join(calls) if calls else None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _int(v: Any) -> int | None:
    n = _num(v)
    return int(n) if n is not None and n >= 0 else None


def _ms_between(start: Any, end: Any) -> float | None:
    try:
        a = datetime.fromisoformat(str(start))
        b = datetime.fromisoformat(str(end))
    except ValueError:
        return None
    ms = (b - a).total_seconds() * 1000
    return ms if ms >= 0 else None


class NoAnswer(Exception):
    """The record logged its prompt but no answer (e.g. a stream cut short): counted, not an error."""


def _values(text: str | None, error: str | None = None, **extra: Any) -> dict[str, Any]:
    obj = {"output": text, "error": error, **{k: v for k, v in extra.items() if v is not None}}
    if text is None and error is None:
        raise NoAnswer()
    return answer_values(obj)


# --- per format -------------------------------------------------------------------------------------------


def _usage(u: Any) -> tuple[int | None, int | None]:
    if not isinstance(u, dict):
        return None, None
    prompt = u.get("prompt_tokens", u.get("input_tokens", u.get("input", u.get("promptTokens"))))
    completion = u.get("completion_tokens", u.get("output_tokens", u.get("output", u.get("completionTokens"))))
    return _int(prompt), _int(completion)


def batch_output(ctx: ReadContext) -> Iterator[Answer | ReadError]:
    """OpenAI Batch output lines: `{"custom_id", "response": {"status_code", "body"}, "error"}`."""
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield ctx.error(line, err)
            continue
        cid = obj.get("custom_id")
        if not isinstance(cid, str) or not cid:
            yield ctx.error(line, "no custom_id: not an OpenAI Batch output line")
            continue
        try:
            resp = obj.get("response") or {}
            body = resp.get("body") if isinstance(resp, dict) else None
            if obj.get("error") or (isinstance(resp, dict) and (resp.get("status_code") or 200) >= 400):
                e = obj.get("error") or (body or {}).get("error") or {}
                msg = e.get("message") if isinstance(e, dict) else str(e)
                code = resp.get("status_code") if isinstance(resp, dict) else None
                values = _values(None, f"batch error{f' {code}' if code else ''}: {msg or 'unknown'}")
                model = None
            else:
                if not isinstance(body, dict):
                    raise ValueError("response.body is missing")
                text, finish = response_text(body)
                if text is None:
                    raise ValueError("response.body holds no answer text")
                pt, ct = _usage(body.get("usage"))
                values = _values(text, finish_reason=finish, prompt_tokens=pt, completion_tokens=ct)
                model = body.get("model")
        except ValueError as exc:
            yield ctx.error(line, str(exc))
            continue
        yield Answer(f"{ctx.name}:{line}", cid, None, model, values)


def _logged(fmt: str, ctx: ReadContext) -> Iterator[Answer | ReadError]:
    """Answers logged beside the prompts: the same reader builds the prompt, the record gives the answer."""
    if fmt == "langfuse":
        yield from _langfuse(ctx)
    elif fmt == "langsmith":
        yield from _langsmith(ctx)
    elif fmt == "otel":
        yield from _otel(ctx)
    elif fmt == "litellm":
        yield from _litellm(ctx)
    else:
        raise InputError(f"a {fmt} file holds prompts, not production answers", where=ctx.path,
                         hint="runs import takes an ownbench answers JSONL, an OpenAI Batch output, or a Langfuse, "
                              "LangSmith, OpenTelemetry or LiteLLM export")


def _calls(reader: Any, ctx: ReadContext) -> Iterator[tuple[Any, Any, Step] | ReadError]:
    """(record, logged call, step) for each prompt the reader builds from the file (agent loops rebuilt the
    same way); a refused prompt is never an item of any version, so it is counted, not an error."""
    for rec, step, refused in reader.generations(ctx):
        if refused:
            ctx.ignored["records whose prompt is refused"] += 1
        elif isinstance(rec, ReadError):
            yield rec
        else:
            assert step is not None
            yield rec, step.unit, step


def _langfuse(ctx: ReadContext) -> Iterator[Answer | ReadError]:
    from evalsets.readers import langfuse

    for got in _calls(langfuse, ctx):
        if isinstance(got, ReadError):
            yield got
            continue
        rec, unit, step = got
        try:
            text, finish = response_text(unit.get("output"))
            if text == "None":  # Agno logs a turn that only called tools as the text "None"
                text = None
            usage = unit.get("usageDetails") or {}
            pt = _int(usage.get("input", unit.get("inputUsage", unit.get("promptTokens"))))
            ct = _int(usage.get("output", unit.get("outputUsage", unit.get("completionTokens"))))
            cost = _num(unit.get("totalCost") or unit.get("calculatedTotalCost")
                        or (unit.get("costDetails") or {}).get("total"))
            latency = _ms_between(unit.get("startTime"), unit.get("endTime"))
            if latency is None and _num(unit.get("latency")) is not None:
                latency = _num(unit.get("latency")) * 1000  # type: ignore[operator]  # Langfuse: seconds
            failed = unit.get("level") == "ERROR" and text is None
            values = _values(text, (unit.get("statusMessage") or "logged as an error") if failed else None,
                             finish_reason=finish, prompt_tokens=pt,
                             completion_tokens=ct, cost_usd=cost, latency_ms=latency)
        except NoAnswer:
            ctx.ignored["records without a logged answer"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - RecordError or a bad answer: located
            where = step.pointer.removesuffix("input").rstrip(".")
            yield error_at(ctx, step, str(exc), f"{where}.output" if where else "output")
            continue
        yield Answer(rec.source, rec.key, rec.messages, unit.get("model"), values)


def _langsmith(ctx: ReadContext) -> Iterator[Answer | ReadError]:
    from evalsets.readers import langsmith

    for got in _calls(langsmith, ctx):
        if isinstance(got, ReadError):
            yield got
            continue
        rec, run, step = got
        try:
            outputs = run.get("outputs")
            text, finish = response_text(outputs)
            err_text = run.get("error") if isinstance(run.get("error"), str) and run.get("error") else None
            pt, ct = _usage((outputs or {}).get("usage_metadata") or (outputs or {}).get("usage")
                            or get_path(outputs or {}, "llm_output.token_usage") if isinstance(outputs, dict) else None)
            pt = pt if pt is not None else _int(run.get("prompt_tokens"))  # the run's own columns (bulk export)
            ct = ct if ct is not None else _int(run.get("completion_tokens"))
            values = _values(text, err_text if text is None else None, finish_reason=finish, prompt_tokens=pt,
                             completion_tokens=ct, latency_ms=_ms_between(run.get("start_time"), run.get("end_time")),
                             cost_usd=_num(run.get("total_cost")))
        except NoAnswer:
            ctx.ignored["records without a logged answer"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - RecordError or a bad answer: located
            yield error_at(ctx, step, str(exc), step.pointer)
            continue
        yield Answer(rec.source, rec.key, rec.messages, rec.meta.get("model"), values)


def _otel(ctx: ReadContext) -> Iterator[Answer | ReadError]:
    from evalsets.readers import otel

    for got in _calls(otel, ctx):
        if isinstance(got, ReadError):
            yield got
            continue
        rec, span, step = got
        a = span["attributes"]
        try:
            text, finish = None, None
            for k in ("gen_ai.output.messages", "ai.response.text", "ai.response.object", "gen_ai.completion",
                      "output.value"):
                if a.get(k) not in (None, ""):
                    text, finish = (a[k], None) if k.startswith("ai.response") else response_text(a[k])
                    break
            if text is None and "gen_ai.completion.0.content" in a:
                text = a["gen_ai.completion.0.content"]
            if text is None and "llm.output_messages.0.message.content" in a:
                text = a["llm.output_messages.0.message.content"]
            if text is None and "llm.output_messages.0.message.contents.0.message_content.text" in a:
                text = a["llm.output_messages.0.message.contents.0.message_content.text"]
            pt = _int(a.get("gen_ai.usage.input_tokens", a.get("gen_ai.usage.prompt_tokens",
                      a.get("llm.token_count.prompt", a.get("ai.usage.promptTokens", a.get("ai.usage.inputTokens"))))))
            ct = _int(a.get("gen_ai.usage.output_tokens", a.get("gen_ai.usage.completion_tokens",
                      a.get("llm.token_count.completion",
                            a.get("ai.usage.completionTokens", a.get("ai.usage.outputTokens"))))))
            fr = a.get("gen_ai.response.finish_reasons") or a.get("ai.response.finishReason")
            finish = finish or (fr[0] if isinstance(fr, list) and fr else fr if isinstance(fr, str) else None)
            latency = None
            if span.get("start_ns") is not None and span.get("end_ns") is not None:
                latency = max(0, span["end_ns"] - span["start_ns"]) / 1e6
            values = _values(text if isinstance(text, str) else None, finish_reason=finish, prompt_tokens=pt,
                             completion_tokens=ct, latency_ms=latency)
        except NoAnswer:
            ctx.ignored["records without a logged answer"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - RecordError or a bad answer: located
            yield error_at(ctx, step, str(exc), step.pointer)
            continue
        model = a.get("gen_ai.response.model") or rec.meta.get("model")
        yield Answer(rec.source, rec.key, rec.messages, model, values)


def _litellm(ctx: ReadContext) -> Iterator[Answer | ReadError]:
    from evalsets.readers import litellm_spend

    for line, row, err in litellm_spend.rows(ctx):
        if err is not None or row is None:
            yield ctx.error(line, err or "not a row")
            continue
        try:
            rec = litellm_spend.to_record(row, ctx, line)
        except RecordError:
            ctx.ignored["records whose prompt is refused"] += 1  # never an item of any version
            continue
        try:
            response = litellm_spend._json(row.get("response"))
            text, finish = response_text(response)
            failed = str(row.get("status") or "").lower() == "failure"
            values = _values(text if not failed else None,
                             ("logged as a failure" if failed else None), finish_reason=finish,
                             prompt_tokens=_int(row.get("prompt_tokens")),
                             completion_tokens=_int(row.get("completion_tokens")), cost_usd=_num(row.get("spend")),
                             latency_ms=_ms_between(row.get("startTime"), row.get("endTime")))
        except NoAnswer:
            ctx.ignored["records without a logged answer"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - RecordError or a bad answer: located
            yield ctx.error(line, str(exc))
            continue
        yield Answer(rec.source, rec.key, rec.messages, row.get("model") or None, values)


# --- detection and import ---------------------------------------------------------------------------------


def answers_format(path: str | Path) -> str:
    """"batch" for an OpenAI Batch output, "ownbench" for the answers JSONL, else the log format."""
    from evalsets.readers import _first_record

    name = Path(path).name.lower()
    first = None if name.endswith((".csv", ".parquet", ".pq")) else _first_record(path)
    if first is not None:
        if "custom_id" in first and ("response" in first or "error" in first) and "body" not in first:
            return "batch"
        if {"item_key", "item_id", "prompt_hash"} & set(first) or ("messages" in first and
                                                                  ({"output", "text", "error"} & set(first))):
            return "ownbench"
    return detect_format(path)


def read_answers(path: str | Path, fmt: str) -> tuple[list[Answer], list[ReadError], Counter]:
    ctx = ReadContext(str(path), FieldMapping())
    answers: list[Answer] = []
    errors: list[ReadError] = []
    stream = batch_output(ctx) if fmt == "batch" else _logged(fmt, ctx)
    for a in stream:
        (errors if isinstance(a, ReadError) else answers).append(a)  # type: ignore[arg-type]
    return answers, errors, ctx.ignored


def import_production(session: Session, path: str | Path, candidate: str, version_id: int,
                      fmt: str) -> ProductionImport:
    """Match the log's answers to the version's items and store one imported run per model."""
    path = Path(path)
    answers, errors, ignored = read_answers(path, fmt)
    if errors:
        more = f"\n  … and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        raise InputError(f"{len(errors)} record(s) whose answer cannot be read; nothing was imported:\n  "
                         + "\n  ".join(map(str, errors[:MAX_REPORTED])) + more,
                         hint="fix or remove these records and import again")
    items = list(session.exec(select(Item).where(Item.version_id == version_id).order_by(Item.position)))
    by_key = {i.item_key: i for i in items}
    by_hash: dict[str, Item] = {}
    for i in items:
        by_hash.setdefault(prompt_hash(i.messages), i)
    per_model: dict[str, list[tuple[Item, dict]]] = defaultdict(list)
    answered: set[tuple[str, int]] = set()
    missing = repeated = 0
    for a in answers:
        item = by_key.get(a.key) if a.key is not None else None
        if item is None and a.messages is not None:
            item = by_hash.get(prompt_hash(a.messages))
        if item is None:
            missing += 1
            continue
        model = a.model or "unknown model"
        if (model, item.id) in answered:  # type: ignore[operator]
            repeated += 1
            continue
        answered.add((model, item.id))  # type: ignore[arg-type]
        per_model[model].append((item, a.values))
    unknown = per_model.pop("unknown model", None)
    if unknown is not None:  # failed requests name no model: they belong to the one model that answered
        if len(per_model) == 1:
            (model, rows), = per_model.items()
            seen = {item.id for item, _ in rows}
            rows += [(item, v) for item, v in unknown if item.id not in seen]
        else:
            per_model["unknown model"] = unknown
    if not per_model:
        raise InputError(
            f"none of the {len(answers)} answers in {path.name} belongs to an item of this version",
            where=str(path),
            hint="import the answers of the log this version was ingested from (matched by id, custom_id or prompt)",
        )
    digest = file_hash(str(path))
    runs = []
    several = len(per_model) > 1
    for model, rows in sorted(per_model.items()):
        name = f"{candidate}/{model}" if several else candidate
        result = store_run(session, path, digest, name, version_id, rows, len(items), model=model,
                           config={"production_log": fmt, "model": model})
        runs.append((model, result))
    return ProductionImport(runs, len(answers), missing, repeated, ignored)
