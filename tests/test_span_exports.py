"""Spans emitted by the OpenTelemetry SDK with the GenAI semantic conventions (as instrumentations write them),
encoded by the OTLP exporter's own encoder into OTLP JSON lines (as the collector's file exporter writes them),
then ingested as an eval set and imported as the production run."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from sqlmodel import Session, select

from evalsets.readers import FieldMapping, LogRecord, ReadContext, ReadError, detect_format, reader_for
from storage.models import Candidate, Output, Run
from tests.conftest_loopback import ownbench_cli


class OtlpJsonFileExporter(SpanExporter):
    """One OTLP/JSON `ExportTraceServiceRequest` a line, like the collector's file exporter."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(MessageToDict(encode_spans(spans))) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


SYSTEM = "You answer questions about the product catalogue."


def emit(path: Path) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-assistant"}))
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileExporter(path)))
    tracer = provider.get_tracer("ownbench.tests")
    with tracer.start_as_current_span("invoke_agent shop") as agent:  # not an LLM call: ignored
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        # current conventions: JSON messages with parts, system instructions apart
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
                "gen_ai.input.messages": json.dumps([
                    {"role": "user", "parts": [{"type": "text", "content": "Is the blue kettle in stock?"}]},
                    {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "stock",
                                                     "arguments": {"sku": "KET-BLUE"}}]},
                    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                                "response": {"available": 3}}]},
                    {"role": "assistant", "parts": [{"type": "text", "content": "Yes, 3 are left."}]},
                    {"role": "user", "parts": [{"type": "text", "content": "And in red?"}]},
                ]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop", "parts": [
                    {"type": "text", "content": "The red one is sold out."}]}]),
                "gen_ai.usage.input_tokens": 61, "gen_ai.usage.output_tokens": 7,
                "gen_ai.response.finish_reasons": ("stop",),
            })
        # older conventions (OpenLLMetry): indexed prompt attributes
        with tracer.start_as_current_span("openai.chat") as span:
            span.set_attributes({
                "gen_ai.system": "openai", "llm.request.type": "chat", "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4.1", "gen_ai.response.model": "gpt-4.1-2025-04-14",
                "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": SYSTEM,
                "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Do you ship to Norway?",
                "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Yes, within 5 days.",
                "gen_ai.usage.prompt_tokens": 30, "gen_ai.usage.completion_tokens": 6,
            })
        # content capture off: an LLM call whose prompt was not recorded
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"})
    provider.shutdown()


def read(path: Path) -> tuple[list[LogRecord], list[ReadError], ReadContext]:
    ctx = ReadContext(str(path), FieldMapping())
    out = list(reader_for(detect_format(path))(ctx))
    return [r for r in out if isinstance(r, LogRecord)], [e for e in out if isinstance(e, ReadError)], ctx


def test_sdk_spans_in_otlp_json_are_read_as_conversations(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    emit(path)
    assert detect_format(path) == "otel"
    records, errors, ctx = read(path)
    assert [r.messages for r in records] == [
        [{"role": "system", "content": SYSTEM},
         {"role": "user", "content": "Is the blue kettle in stock?"},
         {"role": "assistant", "content": None, "tool_calls": [
             {"id": "call_1", "type": "function", "function": {"name": "stock", "arguments": '{"sku": "KET-BLUE"}'}}]},
         {"role": "tool", "content": '{\n  "available": 3\n}', "tool_call_id": "call_1"},
         {"role": "assistant", "content": "Yes, 3 are left."},
         {"role": "user", "content": "And in red?"}],
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Do you ship to Norway?"}],
    ]
    assert records[0].meta["model"] == "gpt-4o-mini" and records[0].meta["params"] == {"temperature": 0.2}
    assert records[0].source.startswith(f"{path}:1 $.resourceSpans[0].scopeSpans[0].spans[0]")
    assert ctx.ignored == {"spans that are not LLM calls": 1}
    assert len(errors) == 1 and errors[0].kind == "LLM span without input"
    assert str(errors[0]).startswith(f"{path}:3 $.resourceSpans[0].scopeSpans[0].spans[0]: an LLM span without")


def test_sdk_spans_become_an_eval_set_and_the_production_runs(engine, tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    emit(path)
    proc = ownbench_cli("ingest", str(path), "--name", "shop", "--on-error", "skip", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["items"] == 2
    proc = ownbench_cli("runs", "import", str(path), "--candidate", "prod", "--set", "shop", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["format"] == "otel" and [r["candidate"] for r in info["runs"]] == [
        "prod/gpt-4.1-2025-04-14", "prod/gpt-4o-mini-2024-07-18"]
    with Session(engine) as s:
        outs = {s.get(Candidate, s.get(Run, o.run_id).candidate_id).model: o for o in s.exec(select(Output))}
    kettle, norway = outs["gpt-4o-mini-2024-07-18"], outs["gpt-4.1-2025-04-14"]
    assert (kettle.text, kettle.prompt_tokens, kettle.completion_tokens, kettle.finish_reason) == (
        "The red one is sold out.", 61, 7, "stop")
    assert (norway.text, norway.prompt_tokens, norway.completion_tokens) == ("Yes, within 5 days.", 30, 6)
    assert kettle.latency_ms is not None and kettle.latency_ms >= 0
