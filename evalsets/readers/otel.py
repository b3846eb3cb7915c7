"""OpenTelemetry spans of LLM calls: an OTLP JSON export (`{"resourceSpans": [{"scopeSpans": [{"spans"}]}]}`,
one document or one export request a line as the collector's file exporter writes), a flat list of spans
(Phoenix / Arize and Vercel AI SDK exports: `[{"name", "attributes": {...}}]`, also with `attributes.`-prefixed
columns), or a span's attributes alone.

Only LLM-call spans become records; others (agents, tools, chains, HTTP) are counted as ignored. The prompt
is read from, in order: OTel GenAI semantic conventions (`gen_ai.input.messages` + `gen_ai.system_instructions`;
the older indexed `gen_ai.prompt.N.*`; `gen_ai.*.message` span events), OpenInference (`llm.input_messages.N.
message.*`, flattened or as a list), the Vercel AI SDK (`ai.prompt.messages`), then `input.value` of an LLM span.
`--prompt-field` names any attribute; keys with dots go in brackets: `attributes["ai.prompt.messages"]`.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from evalsets.readers.base import (
    LogRecord,
    ReadContext,
    ReadError,
    RecordError,
    iter_json_records,
    loads,
)
from evalsets.readers.mapping import MISSING, get_path, meta_of, reference_of
from evalsets.readers.messages import conversation, refuse
from evalsets.readers.traces import Read, Refused, Step, resolve, time_ns

LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "completion"}
PARAMS = ("temperature", "top_p", "top_k", "max_tokens", "frequency_penalty", "presence_penalty", "seed",
          "stop_sequences")


_PARAM_KEYS = tuple((p, f"gen_ai.request.{p}") for p in PARAMS)


# --- spans out of the file --------------------------------------------------------------------------------


def any_value(v: Any) -> Any:
    """An OTLP JSON `AnyValue` as a plain value."""
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return {kv.get("key"): any_value(kv.get("value")) for kv in (v["kvlistValue"] or {}).get("values", [])}
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def otlp_attributes(attrs: Any) -> dict[str, Any]:
    if isinstance(attrs, dict):
        return flatten(attrs)
    out: dict[str, Any] = {}
    if isinstance(attrs, list):
        for a in attrs:
            try:  # the common case: {"key", "value": {"stringValue"}}, without the general decoding
                v = a["value"]
                out[a["key"]] = v["stringValue"] if "stringValue" in v else any_value(v)
            except (KeyError, TypeError):  # a key or value missing, or not objects
                if type(a) is dict:
                    out[a.get("key")] = any_value(a.get("value"))
    return out


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested attribute objects as dotted keys (`{"llm": {"model_name"}}` → `llm.model_name`); lists stay."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not key.endswith((".value", "_parameters")):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


ATTR_PREFIXES = ("gen_ai.", "llm.", "ai.", "openinference.")


def spans_of(obj: dict) -> Iterator[tuple[str, dict]]:
    """(JSON path inside the record, span as {"name", "attributes", "events", "trace_id", "span_id",
    "start_ns", "end_ns"}) for every span a record holds."""
    if isinstance(obj.get("resourceSpans"), list):
        for i, rs in enumerate(obj["resourceSpans"]):
            for j, ss in enumerate((rs or {}).get("scopeSpans") or (rs or {}).get("instrumentationLibrarySpans") or []):
                for k, sp in enumerate((ss or {}).get("spans") or []):
                    if isinstance(sp, dict):
                        yield f".resourceSpans[{i}].scopeSpans[{j}].spans[{k}]", _otlp_span(sp)
        return
    if isinstance(obj.get("spans"), list):  # {"spans": [...]}
        for k, sp in enumerate(obj["spans"]):
            if isinstance(sp, dict):
                yield f".spans[{k}]", _flat_span(sp)
        return
    yield "", _flat_span(obj)


def _otlp_span(sp: dict) -> dict[str, Any]:
    events = sp.get("events")
    return {"name": sp.get("name"), "attributes": otlp_attributes(sp.get("attributes")),
            "events": [{"name": e.get("name"), "attributes": otlp_attributes(e.get("attributes")),
                        "body": any_value(e.get("body"))} for e in events if isinstance(e, dict)] if events else [],
            "trace_id": sp.get("traceId"), "span_id": sp.get("spanId"),
            "start_ns": time_ns(sp.get("startTimeUnixNano")), "end_ns": time_ns(sp.get("endTimeUnixNano"))}


def _flat_span(sp: dict) -> dict[str, Any]:
    if isinstance(sp.get("attributes"), (dict, list)):
        attrs = otlp_attributes(sp["attributes"])
    elif any(k.startswith("attributes.") for k in sp):  # Phoenix dataframe columns
        attrs = flatten({k.removeprefix("attributes."): v for k, v in sp.items() if k.startswith("attributes.")})
    elif any(str(k).startswith(ATTR_PREFIXES) for k in sp):  # the attributes alone
        attrs = flatten(sp)
    else:
        attrs = {}
    ctx = sp.get("spanContext") or sp.get("context") or {}
    return {"name": sp.get("name"), "attributes": attrs,
            "events": [{"name": e.get("name"), "attributes": otlp_attributes(e.get("attributes")),
                        "body": e.get("body")} for e in sp.get("events") or [] if isinstance(e, dict)],
            "trace_id": ctx.get("traceId") or ctx.get("trace_id") or sp.get("context.trace_id") or sp.get("traceId"),
            "span_id": ctx.get("spanId") or ctx.get("span_id") or sp.get("context.span_id") or sp.get("spanId"),
            "start_ns": time_ns(sp.get("startTime", sp.get("start_time", sp.get("startTimeUnixNano")))),
            "end_ns": time_ns(sp.get("endTime", sp.get("end_time", sp.get("endTimeUnixNano"))))}


# --- the LLM call in a span -------------------------------------------------------------------------------


_INDEXED = re.compile(r"^(gen_ai\.prompt|gen_ai\.completion|llm\.input_messages|llm\.output_messages)\.(\d+)\.(.+)$")


def _indexed(attrs: dict, prefix: str) -> list[dict[str, Any]]:
    """Indexed flattened messages (`gen_ai.prompt.0.role`, `llm.input_messages.0.message.role`) as nested
    objects in index order."""
    rows: dict[int, dict[str, Any]] = {}
    for k, v in attrs.items():
        m = _INDEXED.match(k)
        if m and m.group(1) == prefix:
            rest = m.group(3).removeprefix("message.")
            rows.setdefault(int(m.group(2)), {})[rest] = v
    return [_nest(rows[i]) for i in sorted(rows)]


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in flat.items():
        cur = out
        parts = k.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
            if not isinstance(cur, dict):
                break
        else:
            cur[parts[-1]] = v
    return _lists(out)


def _lists(node: Any) -> Any:
    """`{"0": …, "1": …}` back into lists."""
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def _openinference_message(m: dict) -> dict[str, Any]:
    """An OpenInference message (`role`, `content` or `contents[].message_content`, `tool_calls[].tool_call`)."""
    m = {k.removeprefix("message."): v for k, v in m.items()}
    if isinstance(m.get("message"), dict):
        m = m["message"]
    msg: dict[str, Any] = {"role": m.get("role")}
    if isinstance(m.get("contents"), list):
        parts = []
        for c in m["contents"]:
            c = c.get("message_content", c) if isinstance(c, dict) else c
            if isinstance(c, dict):
                c = _nest({k.removeprefix("message_content."): v for k, v in c.items()})
            if isinstance(c, dict) and c.get("type") == "image":
                parts.append({"type": "image_url", "image_url": {"url": get_path(c, "image.image.url")}})
            elif isinstance(c, dict):
                parts.append({"type": "text", "text": c.get("text", "")})
        msg["content"] = parts
    else:
        msg["content"] = m.get("content")
    calls = m.get("tool_calls")
    if isinstance(calls, list) and calls:
        msg["tool_calls"] = []
        for c in calls:
            c = c.get("tool_call", c) if isinstance(c, dict) else {}
            c = _nest({k.removeprefix("tool_call."): v for k, v in c.items()})
            fn = c.get("function") or {}
            msg["tool_calls"].append({"id": c.get("id", ""), "type": "function",
                                      "function": {"name": fn.get("name"), "arguments": fn.get("arguments")}})
    for k in ("tool_call_id", "name"):
        if m.get(k):
            msg[k] = m[k]
    return msg


_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def _event_messages(events: list[dict]) -> list[dict[str, Any]]:
    msgs = []
    for e in events:
        role = _EVENT_ROLES.get(e.get("name") or "")
        if role is None:
            continue
        body = e.get("body") if isinstance(e.get("body"), dict) else {}
        data = {**{k.removeprefix("gen_ai."): v for k, v in (e.get("attributes") or {}).items()}, **body}
        msg: dict[str, Any] = {"role": data.get("role") or role, "content": data.get("content")}
        if data.get("tool_calls"):
            msg["tool_calls"] = data["tool_calls"]
        if data.get("id") and role == "tool":
            msg["tool_call_id"] = data["id"]
        msgs.append(msg)
    return msgs


def _instructions(a: dict) -> Any:
    """`gen_ai.system_instructions`: a list of parts, recorded as JSON text."""
    value = a.get("gen_ai.system_instructions")
    if isinstance(value, str) and value.lstrip().startswith("["):
        return _parsed_instructions(value)
    return value


@lru_cache(maxsize=256)
def _parsed_instructions(text: str) -> Any:
    """Parsed once per distinct text: an application sends the same few system prompts on every call.
    The result is only read (the normaliser builds new messages from it)."""
    try:
        return loads(text)
    except ValueError:
        return text


def llm_input(span: dict) -> tuple[str, Any, Any] | None:
    """(attribute, value, system) holding an LLM span's input, or None when the span is not an LLM call."""
    a = span["attributes"]
    if "gen_ai.input.messages" in a:
        return "gen_ai.input.messages", a["gen_ai.input.messages"], _instructions(a)
    if any(k.startswith("gen_ai.prompt.") for k in a):
        return "gen_ai.prompt.*", _indexed(a, "gen_ai.prompt"), _instructions(a)
    if any(k.startswith("llm.input_messages.") for k in a):
        return "llm.input_messages.*", [_openinference_message(m) for m in _indexed(a, "llm.input_messages")], None
    if isinstance(a.get("llm.input_messages"), list):
        return "llm.input_messages", [_openinference_message(m) for m in a["llm.input_messages"]], None
    if "ai.prompt.messages" in a:
        return "ai.prompt.messages", a["ai.prompt.messages"], None
    events = _event_messages(span.get("events") or [])
    if events:
        return "events gen_ai.*.message", events, None
    if "gen_ai.prompt" in a:
        return "gen_ai.prompt", a["gen_ai.prompt"], None
    if is_llm_span(a):
        if a.get("input.value") not in (None, ""):
            return "input.value", a["input.value"], None
        raise refuse("an LLM span without its input messages (the instrumentation did not record content; "
                     "enable its content capture, e.g. OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)",
                     "LLM span without input")
    return None


def is_llm_span(a: dict) -> bool:
    return (str(a.get("openinference.span.kind", "")).upper() == "LLM"
            or a.get("gen_ai.operation.name") in LLM_OPERATIONS)


def span_meta(span: dict) -> dict[str, Any]:
    a = span["attributes"]
    meta: dict[str, Any] = {"otel_span": span.get("name")}
    model = (a.get("gen_ai.request.model") or a.get("llm.model_name") or a.get("ai.model.id")
             or a.get("gen_ai.response.model"))
    if model:
        meta["model"] = model
    provider = a.get("gen_ai.provider.name") or a.get("gen_ai.system") or a.get("llm.provider") \
        or a.get("ai.model.provider")
    if provider:
        meta["provider"] = provider
    params = {p: a[k] for p, k in _PARAM_KEYS if k in a}
    inv = a.get("llm.invocation_parameters")
    if isinstance(inv, str):
        try:
            inv = loads(inv)
        except ValueError:
            inv = None
    if isinstance(inv, dict):
        params.update({k: v for k, v in inv.items() if k not in ("model", "messages")})
    if params:
        meta["params"] = params
    if span.get("trace_id"):
        meta["trace_id"] = span["trace_id"]
    return meta


def to_step(span: dict, ctx: ReadContext, line: int, pointer: str, source: str) -> Step | None:
    """The span as an LLM call (its whole input conversation), or None when it is not one."""
    field = ctx.mapping.prompt_field
    if field:
        value = get_path(span, field)
        if value is MISSING:
            ctx.ignored[f"spans without {field}"] += 1
            return None
        messages = conversation(value, field)
    else:
        found = llm_input(span)
        if found is None:
            ctx.ignored["spans that are not LLM calls"] += 1
            return None
        attr, value, system = found
        messages = conversation(value, attr, system=system)
    key = span.get("span_id")
    rec = LogRecord(key=str(key) if key else None, messages=messages, reference=reference_of(span, ctx.mapping),
                    meta=meta_of(span, ctx.mapping, span_meta(span)), source=source)
    trace = span.get("trace_id")
    return Step(rec, str(trace) if trace else None, span.get("start_ns"), line, pointer, ctx.record_path, span)


def output_value(span: Any) -> Any:
    """What the span logged as the model's answer (messages, text), for rebuilding an agent loop."""
    a = (span.get("attributes") or {}) if isinstance(span, dict) else {}
    for k in ("gen_ai.output.messages", "gen_ai.completion", "output.value", "ai.response.text"):
        if a.get(k) not in (None, ""):
            return a[k]
    if any(k.startswith("llm.output_messages.") for k in a):
        return [_openinference_message(m) for m in _indexed(a, "llm.output_messages")]
    if any(k.startswith("gen_ai.completion.") for k in a):
        return _indexed(a, "gen_ai.completion")
    return None


def iter_spans(ctx: ReadContext) -> Iterator[tuple[int, str, dict | None, str | None]]:
    """(line, JSON path, span, error) for every span of the file."""
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield line, "", None, err
            continue
        for pointer, span in spans_of(obj):
            yield line, pointer, span, None


def steps(ctx: ReadContext, only: set[str] | None = None) -> Iterator[Step | Refused | ReadError]:
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield ctx.error(line, err)
            continue
        yield from _record_steps(ctx, line, obj, only)


def _record_steps(ctx: ReadContext, line: int, obj: dict, only: set[str] | None) \
        -> Iterator[Step | Refused | ReadError]:
    for pointer, span in spans_of(obj):
        if only is not None and str(span.get("trace_id")) not in only:
            continue
        where = f"{ctx.record_path or '$'}{pointer}"
        source = f"{ctx.name}:{line}" + (f" {where}" if where != "$" else "")
        try:
            step = to_step(span, ctx, line, pointer, source)
        except RecordError as exc:
            yield Refused(ctx.refused(line, exc, pointer or None))
            continue
        if step is not None:
            yield step


def generations(ctx: ReadContext) -> Iterator[Read]:
    """Every LLM call of the file, as its prompt or the reason it has none (`traces.resolve`)."""
    return resolve(ctx, lambda only: steps(ctx, only), output_value)


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    for got in generations(ctx):
        yield got.result
