"""The one message normaliser on every provider's shape, and the files no real export in the fixtures covers
(Langfuse CSV and API responses, LiteLLM spend logs, LangSmith bulk-export Parquet, Phoenix span lists): the same
conversation whatever the shape, and a clear refusal, located, for what is not a prompt."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evalsets.readers import FieldMapping, LogRecord, ReadContext, ReadError, detect_format, reader_for
from evalsets.readers.base import RecordError
from evalsets.readers.mapping import parse_path
from evalsets.readers.messages import conversation, prompt_from

SYSTEM = {"role": "system", "content": "Answer in French."}
ASK = {"role": "user", "content": "What is the weather in Paris?"}
CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]}
RESULT = {"role": "tool", "content": "rainy", "tool_call_id": "c1"}
THANKS = {"role": "user", "content": "Thanks, and tomorrow?"}
EXPECTED = [SYSTEM, ASK, CALL, RESULT, {"role": "assistant", "content": "Il pleut."}, THANKS]

SHAPES = {
    "openai chat": {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "rainy"},
        {"role": "assistant", "content": "Il pleut."},
        {"role": "user", "content": "Thanks, and tomorrow?"}]},
    "openai responses": {"model": "gpt-4.1", "instructions": "Answer in French.", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "What is the weather in Paris?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "rainy"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Il pleut."}]},
        {"role": "user", "content": "Thanks, and tomorrow?"}]},
    "anthropic messages": {"model": "claude-sonnet-4-5", "system": [{"type": "text", "text": "Answer in French."}],
                           "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "…", "signature": "x"},
                                          {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": [{"type": "text", "text": "rainy"}]}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Il pleut."}]},
        {"role": "user", "content": [{"type": "text", "text": "Thanks, and tomorrow?"}]}]},
    "gemini contents": {"model": "gemini-2.5-flash", "config": {"systemInstruction": {"parts": [{"text": "Answer in French."}]}},
                        "contents": [
        {"role": "user", "parts": [{"text": "What is the weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "weather", "response": "rainy"}}]},
        {"role": "model", "parts": [{"text": "Il pleut."}]},
        {"role": "user", "parts": [{"text": "Thanks, and tomorrow?"}]}]},
    "otel genai parts": [
        {"role": "system", "parts": [{"type": "text", "content": "Answer in French."}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "rainy"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Il pleut."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Thanks, and tomorrow?"}]}],
    "vercel ai sdk": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]},
        {"role": "assistant", "content": [{"type": "tool-call", "toolCallId": "c1", "toolName": "weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "c1", "toolName": "weather",
                                      "output": {"type": "text", "value": "rainy"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Il pleut."}]},
        {"role": "user", "content": [{"type": "text", "text": "Thanks, and tomorrow?"}]}],
}


def strip_names(msgs: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "name"} for m in msgs]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_is_the_same_conversation(shape: str) -> None:
    value = SHAPES[shape]
    assert strip_names(conversation(value, "input")) == EXPECTED
    assert strip_names(conversation(json.dumps(value), "input")) == EXPECTED  # stored as JSON text inside a string
    assert strip_names(prompt_from(value, "input")) == EXPECTED  # ends with a user turn: the whole of it


@pytest.mark.parametrize(("value", "reason", "kind"), [
    ("", "input is empty", "empty prompt"),
    ("  \n\t", "input is empty", "empty prompt"),
    ('{"ticket": 7, "status": "open"}', "input is JSON text of an unknown shape", "JSON text of an unknown shape"),
    ('"What is up?"', "input is JSON-quoted text", "JSON-quoted cell"),
    ([{"role": "assistant", "content": "Hello!"}], "the conversation has no user turn (roles: assistant)", "no user turn"),
    ([{"role": "user", "content": "   "}], "the last user turn is empty", "empty prompt"),
    ({"ticket": 7}, "input is an object without messages or text (fields: ticket)", "unrecognised message shape"),
])
def test_what_is_not_a_prompt_is_refused_with_its_reason(value: object, reason: str, kind: str) -> None:
    with pytest.raises(RecordError) as info:
        prompt_from(value, "input")
    assert str(info.value).startswith(reason) and info.value.kind == kind  # type: ignore[attr-defined]


def test_plain_text_that_only_looks_like_json_stays_text() -> None:
    assert prompt_from("[draft] please fix the intro", "input") == [
        {"role": "user", "content": "[draft] please fix the intro"}]
    assert prompt_from('{"ticket": 7}', "input", decode_json=False) == [{"role": "user", "content": '{"ticket": 7}'}]


def test_bracket_paths_name_keys_with_dots() -> None:
    assert parse_path('attributes["ai.prompt.messages"]') == ["attributes", "ai.prompt.messages"]
    assert parse_path("attributes['gen_ai.prompt'].0.content") == ["attributes", "gen_ai.prompt", "0", "content"]
    assert parse_path("data[3].input") == ["data", "3", "input"]


# --- files ------------------------------------------------------------------------------------------------------


def read(path: Path, fmt: str | None = None, **mapping) -> tuple[list[LogRecord], list[ReadError], ReadContext]:
    ctx = ReadContext(str(path), FieldMapping(**mapping))
    out = list(reader_for(fmt or detect_format(path))(ctx))
    return [r for r in out if isinstance(r, LogRecord)], [e for e in out if isinstance(e, ReadError)], ctx


def test_langfuse_api_response_names_each_bad_record_by_json_path(tmp_path: Path) -> None:
    gen = {"id": "g0", "traceId": "t", "type": "GENERATION", "model": "gpt-4o", "input": json.dumps(SHAPES["openai chat"])}
    rows = [dict(gen, id=f"g{i}") for i in range(20)]
    rows[17] = dict(gen, id="g17", input="   ")
    rows[18] = dict(gen, id="g18", input='{"foo": 1}')
    rows[19] = dict(gen, id="g19", input=None)  # logged nothing: counted
    path = tmp_path / "observations.json"
    path.write_text(json.dumps({"data": rows, "meta": {"page": 1}}), encoding="utf-8")  # one line, as the API sends
    records, errors, ctx = read(path)
    assert len(records) == 17 and strip_names(records[0].messages) == EXPECTED
    assert records[0].meta["model"] == "gpt-4o"
    assert [str(e) for e in errors] == [
        f"{path}:1 $.data[17].input: input is empty",
        (f"{path}:1 $.data[18].input: input is JSON text of an unknown shape: input (JSON text) is an object "
         "without messages or text (fields: foo); name the field with --prompt-field")]
    assert ctx.ignored["generations that logged no input"] == 1


def test_langfuse_ui_csv_export_decodes_its_json_cells(tmp_path: Path) -> None:
    path = tmp_path / "traces.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "timestamp", "name", "input", "output", "sessionId", "latency"])
        w.writerow(['"t1"', '"2025-06-01T10:00:00Z"', '"qa"', json.dumps({"query": "How do refunds work?"}),
                    json.dumps("Within 14 days."), "null", "1.2"])
        w.writerow(['"t2"', '"2025-06-01T10:01:00Z"', '"qa"', json.dumps(json.dumps(SHAPES["openai chat"])),
                    "null", "null", "0.8"])
        w.writerow(['"t3"', '"2025-06-01T10:02:00Z"', '"qa"', "", "null", "null", "0.1"])
        w.writerow(['"t4"', '"2025-06-01T10:03:00Z"', '"qa"', json.dumps(""), "null", "null", "0.1"])
    assert detect_format(path) == "langfuse"
    records, errors, _ = read(path)
    assert [(r.key, strip_names(r.messages)) for r in records] == [
        ("t1", [{"role": "user", "content": "How do refunds work?"}]), ("t2", EXPECTED)]
    assert [str(e) for e in errors] == [f"{path}:4: column 'input' is empty", f"{path}:5: column 'input' is empty"]
    # read as a plain CSV, the JSON-quoted cells are refused instead of stored with their quotes
    records, errors, _ = read(path, "csv", prompt_field="name")
    assert records == [] and errors[0].kind == "JSON-quoted cell" and str(errors[0]).startswith(f"{path}:2: field")


def test_litellm_spend_logs(tmp_path: Path) -> None:
    rows = [
        {"request_id": "r1", "call_type": "acompletion", "model": "gpt-4o-mini", "spend": 0.00012,
         "prompt_tokens": 20, "completion_tokens": 5, "startTime": "2025-06-01T10:00:00.000Z",
         "endTime": "2025-06-01T10:00:00.750Z", "status": "success",
         "messages": json.dumps(SHAPES["openai chat"]["messages"]),  # type: ignore[index]
         "response": json.dumps({"choices": [{"message": {"role": "assistant", "content": "Demain, soleil."},
                                              "finish_reason": "stop"}]}),
         "proxy_server_request": "{}"},
        {"request_id": "r2", "call_type": "acompletion", "model": "gpt-4o-mini", "spend": 0.0,
         "messages": "{}", "response": "{}", "proxy_server_request": "{}", "status": "success"},
    ]
    path = tmp_path / "spend_logs.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    assert detect_format(path) == "litellm"
    records, errors, _ = read(path)
    assert [(r.key, strip_names(r.messages)) for r in records] == [("r1", EXPECTED)]
    assert records[0].meta["model"] == "gpt-4o-mini" and errors[0].kind == "no prompt logged"
    assert str(errors[0]).startswith(f"{path}:1 $[1]: the row holds no prompt")

    from evalsets.answers import read_answers

    answers, errs, ignored = read_answers(path, "litellm")
    assert errs == [] and ignored["records whose prompt is refused"] == 1
    v = answers[0].values
    assert (v["text"], v["finish_reason"], v["cost_usd"], v["latency_ms"], v["prompt_tokens"]) == (
        "Demain, soleil.", "stop", 0.00012, 750.0, 20)


def test_langsmith_bulk_export_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "runs.parquet"
    pq.write_table(pa.table({
        "id": ["a", "b"], "name": ["ChatAnthropic", "agent"], "run_type": ["llm", "chain"],
        "inputs": [json.dumps({"messages": [SHAPES["anthropic messages"]["messages"]],  # type: ignore[index]
                               "system": "Answer in French."}), json.dumps({"question": "hi"})],
        "outputs": [json.dumps({"generations": [[{"text": "Demain, soleil."}]]}), "{}"],
        "extra": [json.dumps({"metadata": {"ls_model_name": "claude-sonnet-4-5"}}), "{}"],
    }), path)
    assert detect_format(path) == "langsmith"
    records, errors, ctx = read(path)
    assert errors == [] and [(r.key, strip_names(r.messages)) for r in records] == [("a", EXPECTED)]
    assert records[0].meta["model"] == "claude-sonnet-4-5" and ctx.ignored == {"chain runs": 1}


def test_phoenix_span_list_with_openinference_message_lists(tmp_path: Path) -> None:
    spans = [
        {"name": "ChatCompletion", "span_kind": "LLM", "context.span_id": "s1", "context.trace_id": "t1",
         "attributes.openinference.span.kind": "LLM", "attributes.llm.model_name": "gpt-4o",
         "attributes.llm.input_messages": [
             {"message.role": "system", "message.content": "Answer in French."},
             {"message.role": "user", "message.content": "What is the weather in Paris?"},
             {"message.role": "assistant", "message.tool_calls": [
                 {"tool_call.id": "c1", "tool_call.function.name": "weather",
                  "tool_call.function.arguments": '{"city": "Paris"}'}]},
             {"message.role": "tool", "message.content": "rainy", "message.tool_call_id": "c1"},
             {"message.role": "assistant", "message.content": "Il pleut."},
             {"message.role": "user", "message.content": "Thanks, and tomorrow?"}]},
        {"name": "retrieve", "span_kind": "RETRIEVER", "context.span_id": "s2",
         "attributes.openinference.span.kind": "RETRIEVER", "attributes.input.value": "paris weather"},
    ]
    path = tmp_path / "phoenix_spans.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in spans), encoding="utf-8")
    assert detect_format(path) == "otel"
    records, errors, ctx = read(path)
    assert errors == [] and ctx.ignored == {"spans that are not LLM calls": 1}
    assert [(r.key, r.messages) for r in records] == [("s1", EXPECTED)]


def test_chat_batch_input_keeps_model_and_params(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps({"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions", "body": {
        **SHAPES["openai chat"], "temperature": 0.3, "max_tokens": 200}}) + "\n", encoding="utf-8")  # type: ignore[dict-item]
    records, errors, _ = read(path)
    assert errors == [] and records[0].key == "req-1" and strip_names(records[0].messages) == EXPECTED
    assert records[0].meta == {"model": "gpt-4o", "endpoint": "/v1/chat/completions",
                               "params": {"temperature": 0.3, "max_tokens": 200}}


def test_a_first_record_over_the_sniffing_window_is_still_detected(tmp_path: Path) -> None:
    long_prompt = "word " * 300_000  # 1.5 MB: the first record does not fit in the 1 MiB read to detect formats
    span = {"name": "chat", "attributes": [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": long_prompt}]}])}}]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}, indent=2), encoding="utf-8")
    assert detect_format(path) == "otel"
    records, errors, _ = read(path)
    assert errors == [] and records[0].messages == [{"role": "user", "content": long_prompt}]


def test_span_events_of_the_older_conventions(tmp_path: Path) -> None:
    span = {"name": "chat gpt-4o", "attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
            "events": [
                {"name": "gen_ai.system.message", "attributes": {"gen_ai.system": "openai"},
                 "body": {"content": "Answer in French."}},
                {"name": "gen_ai.user.message", "body": {"content": "What is the weather in Paris?"}},
                {"name": "gen_ai.choice", "body": {"message": {"content": "Il pleut."}}}]}
    path = tmp_path / "spans.json"
    path.write_text(json.dumps([span]), encoding="utf-8")
    records, errors, _ = read(path)
    assert errors == [] and records[0].messages == [SYSTEM, ASK] and records[0].meta["model"] == "gpt-4o"
