"""An agent loop's later LLM calls, logged with only what is new since the call before (no user turn): each
trace format rebuilds them from the earlier calls of the same trace, ordered by start time, and refuses one
that no earlier call gives a user turn, at its own location."""
from __future__ import annotations

import json
from pathlib import Path

from evalsets.answers import read_answers
from evalsets.readers import FieldMapping, LogRecord, ReadContext, ReadError, detect_format, reader_for

CALL = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup",
                                        "arguments": {"q": "order 42"}}]}
RESULT = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "shipped"}]}
CALL_2 = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_2", "name": "lookup",
                                          "arguments": {"q": "order 7"}}]}
RESULT_2 = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_2", "response": "lost"}]}
SYSTEM = {"role": "system", "parts": [{"type": "text", "content": "You track orders."}]}


def read(path: Path) -> tuple[list[LogRecord], list[ReadError]]:
    ctx = ReadContext(str(path), FieldMapping())
    out = list(reader_for(detect_format(path))(ctx))
    return [r for r in out if isinstance(r, LogRecord)], [e for e in out if isinstance(e, ReadError)]


def user(text: str) -> dict:
    return {"role": "user", "parts": [{"type": "text", "content": text}]}


def generation(ident: str, start: str, inp: list, out: list | None = None, trace: str = "t1") -> dict:
    return {"id": ident, "traceId": trace, "type": "GENERATION", "name": "chat", "model": "gpt-4o",
            "startTime": f"2025-10-14T16:44:{start}Z", "endTime": f"2025-10-14T16:44:{start}Z",
            "input": inp, "output": out}


def write(tmp_path: Path, name: str, obj: dict) -> Path:
    """A JSON document with one record a line (`$.data[1]` is on line 3)."""
    path = tmp_path / name
    rest = "".join(f', {json.dumps(k)}: {json.dumps(v)}' for k, v in obj.items() if k != "data")
    body = ",\n".join(json.dumps(r) for r in obj["data"])
    path.write_text(f'{{"data": [\n{body}\n]{rest}}}\n', encoding="utf-8")
    return path


def test_langfuse_continuation_is_rebuilt_from_the_call_it_answers(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"  # one trace downloaded from the UI, pretty-printed
    path.write_text(json.dumps({"trace": {"id": "t1"}, "observations": [
        generation("g2", "05.000", [SYSTEM, CALL, RESULT], [{"role": "assistant", "parts": [
            {"type": "text", "content": "It shipped."}]}]),
        generation("g1", "01.000", [SYSTEM, user("Where is order 42?")], [CALL]),
    ]}, indent=2), encoding="utf-8")
    records, errors = read(path)
    question = [{"role": "system", "content": "You track orders."}, {"role": "user", "content": "Where is order 42?"}]
    assert errors == [] and {r.key: r.messages for r in records} == {"g1": question, "g2": question}
    assert records[1].meta["continues"] == "g1"
    # the logged answers of both calls are read, the continuation's matched by its id
    answers, errors, _ = read_answers(path, "langfuse")
    assert errors == [] and {a.key: a.values["text"] for a in answers} == {"g1": 'lookup({"q": "order 42"})',
                                                                           "g2": "It shipped."}


def test_continuation_of_the_latest_earlier_call_by_start_time_not_file_order(tmp_path: Path) -> None:
    # the tool result's call is in no logged output: the latest call before it (by start time) is continued
    path = write(tmp_path, "observations.json", {"data": [
        generation("k", "09.000", [RESULT_2]),
        generation("g2", "05.000", [user("And order 7?")]),
        generation("g1", "01.000", [user("Where is order 42?")], [CALL]),
    ], "meta": {"page": 1}})
    records, errors = read(path)
    assert errors == []
    assert {r.key: r.messages for r in records} == {
        "g1": [{"role": "user", "content": "Where is order 42?"}],
        "g2": [{"role": "user", "content": "And order 7?"}],
        "k": [{"role": "user", "content": "And order 7?"}]}
    assert next(r for r in records if r.key == "k").meta["continues"] == "g2"


def test_continuation_with_no_earlier_user_turn_is_refused_with_its_location(tmp_path: Path) -> None:
    # listed after the question, but it started before it; and a call of another trace gives nothing
    path = write(tmp_path, "observations.json", {"data": [
        generation("g1", "05.000", [user("Where is order 42?")], [CALL]),
        generation("k", "01.000", [CALL, RESULT]),
        generation("o", "00.000", [user("Other question")], [CALL], trace="t2"),
    ]})
    records, errors = read(path)
    assert sorted(r.key for r in records) == ["g1", "o"]
    assert [str(e) for e in errors] == [
        (f"{path}:3 $.data[1].input: the conversation has no user turn (roles: assistant, tool), "
         "and no earlier LLM call of its trace t1 has one")]
    assert errors[0].kind == "no user turn"


def otlp_span(span_id: str, start: int, messages: list, output: list | None = None) -> dict:
    attrs = [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
             {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(messages)}}]
    if output is not None:
        attrs.append({"key": "gen_ai.output.messages", "value": {"stringValue": json.dumps(output)}})
    return {"traceId": "aa" * 16, "spanId": span_id, "name": "chat gpt-4o", "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 10), "attributes": attrs}


def test_otel_spans_of_one_trace_across_export_lines(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    lines = [{"resourceSpans": [{"scopeSpans": [{"spans": [otlp_span(sid, start, msgs, out)]}]}]}
             for sid, start, msgs, out in (("s2", 200, [CALL, RESULT], None),
                                            ("s1", 100, [user("Where is order 42?")], [CALL]))]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    records, errors = read(path)
    assert errors == [] and {r.key: r.messages for r in records} == {
        "s1": [{"role": "user", "content": "Where is order 42?"}], "s2": [{"role": "user", "content": "Where is order 42?"}]}
    assert records[1].source == f"{path}:1 $.resourceSpans[0].scopeSpans[0].spans[0]"


def test_langsmith_llm_runs_of_one_trace(tmp_path: Path) -> None:
    def run(ident: str, start: str, messages: list, outputs: dict | None = None) -> dict:
        return {"id": ident, "trace_id": "root", "parent_run_id": "root", "run_type": "llm", "name": "ChatOpenAI",
                "start_time": f"2025-10-14T16:44:{start}", "inputs": {"messages": messages}, "outputs": outputs}

    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "order 42"}'}}]}
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (
        run("r2", "05.000000", [call, {"role": "tool", "tool_call_id": "call_1", "content": "shipped"}]),
        run("r1", "01.000000", [{"role": "user", "content": "Where is order 42?"}],
            {"choices": [{"message": call, "finish_reason": "tool_calls"}]}),
    )) + "\n", encoding="utf-8")
    records, errors = read(path)
    question = [{"role": "user", "content": "Where is order 42?"}]
    assert errors == [] and {r.key: r.messages for r in records} == {"r1": question, "r2": question}
