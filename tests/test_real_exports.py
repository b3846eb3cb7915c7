"""Files written by Langfuse, LangSmith, OpenTelemetry instrumentations, the Vercel AI SDK, OpenAI Batch and
FastChat (tests/fixtures/real_exports, with their provenance): each one is read with the prompt a user of that
tool expects — the conversation up to the last user turn, system prompt included — and nothing else."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES

from evalsets.readers import FieldMapping, LogRecord, ReadContext, ReadError, detect_format, reader_for
from tests.conftest_loopback import ownbench_cli

REAL = FIXTURES / "real_exports"
LANGFUSE = REAL / "langfuse_traces"


def read(path: Path, fmt: str | None = None, **mapping) -> tuple[list[LogRecord], list[ReadError], ReadContext]:
    ctx = ReadContext(str(path), FieldMapping(**mapping))
    out = list(reader_for(fmt or detect_format(path))(ctx))
    return [r for r in out if isinstance(r, LogRecord)], [e for e in out if isinstance(e, ReadError)], ctx


def source(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def observation(trace: dict, obs_id: str) -> dict:
    return next(o for o in trace["observations"] if o["id"] == obs_id)


def by_key(records: list[LogRecord]) -> dict[str, list[dict]]:
    return {r.key: r.messages for r in records}


def test_every_real_file_is_detected_by_content() -> None:
    expected = {"langfuse_traces": "langfuse", "langsmith_runs": "langsmith", "otel_spans": "otel",
                "openai_batch": "openai", "sharegpt": "openai"}
    files = sorted(p for p in REAL.rglob("*.json*"))
    assert len(files) == 22
    for path in files:
        assert detect_format(path) == expected[path.parent.name], path


# --- Langfuse: single traces downloaded from the UI, 13 frameworks ------------------------------------------------


def test_langfuse_gemini_request_as_json_text_is_parsed() -> None:
    # google-genai logs the request: {"model", "contents": "What is Langfuse?"}
    records, errors, _ = read(LANGFUSE / "google-gemini-2025-08-01.json")
    assert errors == [] and [r.messages for r in records] == [[{"role": "user", "content": "What is Langfuse?"}]]
    assert records[0].meta["model"] == "gemini-2.5-flash"


def test_langfuse_google_adk_system_instruction_and_function_parts() -> None:
    path = LANGFUSE / "google-adk-2025-08-28.json"
    records, errors, _ = read(path)
    system = source(path)["observations"][0]["input"]["config"]["system_instruction"]
    prompt = [{"role": "system", "content": system}, {"role": "user", "content": "hi"}]
    assert errors == [] and by_key(records) == {"bded677884f031ce": prompt, "f6e4c65297e40c96": prompt}
    assert system.startswith("Always greet using the say_hello tool.")


def test_langfuse_agno_python_reprs_and_role_transcripts() -> None:
    records, errors, _ = read(LANGFUSE / "agno-2025-06-11.json")
    info = "<additional_information>\n- Use markdown to format your answers.\n</additional_information>"
    user = {"role": "user", "content": "What is currently trending on Twitter?"}
    assert errors == []
    assert by_key(records) == {
        "b38a82eaa62b551e": [{"role": "system", "content": info}, user],  # messages logged as Python reprs
        "fc7f61b57ecebbaf": [{"role": "developer", "content": info}, user],  # "developer: …\nuser: …" text
        "1f883bb9668167c0": [{"role": "developer", "content": info}, user],
        "ca136de468e156c9": [{"role": "system", "content": info}, user],
    }


def test_langfuse_autogen_transcript() -> None:
    records, errors, _ = read(LANGFUSE / "autogen-2025-06-06.json")
    assert errors == [] and by_key(records) == {"83517f9062f5ada4": [
        {"role": "system", "content": "You are a helpful AI assistant. Solve tasks using your tools. "
                                      "Reply with TERMINATE when the task has been completed."},
        {"role": "user", "content": "Say 'Hello World!'"}]}


def test_langfuse_beeai_generations_without_input_are_counted_not_guessed() -> None:
    path = LANGFUSE / "beeai-2025-08-01.json"
    records, errors, ctx = read(path)
    trace = source(path)
    assert errors == [] and ctx.ignored["generations that logged no input"] == 2
    for r in records:  # the tools system prompt, then the user's text part as text
        logged = observation(trace, r.key)["input"]
        assert r.messages[:2] == [logged[0], {"role": "user", "content": logged[1]["content"][0]["text"]}]
        assert [p["type"] for p in logged[1]["content"]] == ["text"]
        assert r.messages[1]["content"].startswith("Message: I'm planning a trip to Barcelona, Spain.")
    assert len(records) == 3


def test_langfuse_vertex_langchain_drops_tool_definitions() -> None:
    path = LANGFUSE / "google-vertex-tools-langchain-2025-09-19.json"
    records, errors, _ = read(path)
    logged = source(path)["observations"][0]["input"]
    assert errors == [] and len(records) == 1
    assert records[0].messages == [
        logged[0], logged[1], logged[2],
        {"role": "assistant", "content": "Hello! I'm your assistant and I'll be happy to help you today.\n\n"
                                         "\nTo better assist you, could you please share your full name?"},
        {"role": "user", "content": "John Smith"},
    ]


def test_langfuse_koog_and_langgraph_tool_messages() -> None:
    records, errors, _ = read(LANGFUSE / "koog-2025-08-26.json")
    koog = [{"role": "system", "content": "You are a nice and polite assistant."},
            {"role": "user", "content": "Greet and say goodbye to the user in the same message. Use provided tools "
                                        "to generate a proper greeting. The user name is Bob."}]
    assert errors == [] and by_key(records) == {"e44e72cf2d221781": koog, "042f9350c3729147": koog}
    records, errors, _ = read(LANGFUSE / "langgraph-2025-08-22.json")
    graph = [{"role": "user", "content": "Be helpful!"},
             {"role": "user", "content": "Search the web for 'example' and summarize."}]
    assert errors == [] and by_key(records) == {"4f6535aaebcda355": graph, "5ba09605e0929d78": graph}


def test_langfuse_llamaindex_openai_agents_and_assistants() -> None:
    records, errors, _ = read(LANGFUSE / "llamaindex-2025-06-05.json")
    assert errors == [] and by_key(records) == {"7ca8b22f6628d0c7": [{"role": "user", "content": "What is Langfuse?"}]}
    records, errors, _ = read(LANGFUSE / "openai-agents-2025-09-30.json")  # Responses items without a role
    tokyo = [{"role": "user", "content": "What's the weather in Tokyo?"}]
    assert errors == [] and by_key(records) == {"90d94774e8e3724d": tokyo, "98870087af69bf06": tokyo}
    records, errors, _ = read(LANGFUSE / "openai-assistants-2024-05-29.json")
    assert errors == [] and [r.messages for r in records] == [[
        {"role": "assistant", "content": "I am a math tutor that likes to help math students, how can I help?"},
        {"role": "user", "content": "I need to solve the equation `3x + 11 = 14`. Can you help me?"}]]


def test_langfuse_pydantic_ai_otel_parts_with_tool_calls_and_results() -> None:
    records, errors, _ = read(LANGFUSE / "pydantic-ai-tools-2025-12-04.json")
    writer = {"role": "system", "content": "You are a creative joke writer. When asked to get inspiration, you will "
              "call THREE of the available suggestion tools to gather ideas. When asked to write a joke, create a "
              "funny joke based on the suggestions you received."}
    ask = {"role": "user", "content": "Select and call THREE of the available tools to get joke suggestions about "
                                      "'programming'."}
    prompts = by_key(records)
    assert errors == [] and prompts["00d2804abb764b1b"] == [writer, ask] == prompts["be64c23f44dd98be"]
    assert prompts["eb0cc14cf7943ad5"] == [
        {"role": "system", "content": "You are a joke critic. Evaluate if the joke is funny and well-crafted."},
        {"role": "user", "content": "Rate this joke:\n\nWhy do programmers hate nature?  \nIt has too many bugs!"}]
    full = prompts["8976b072313c51f2"]
    assert full[:2] == [writer, ask] and [m["role"] for m in full] == [
        "system", "user", "assistant", "tool", "tool", "tool", "assistant", "user"]
    assert full[2]["content"] is None and [c["function"] for c in full[2]["tool_calls"]] == [
        {"name": "get_pun_suggestion", "arguments": '{"topic": "programming"}'},
        {"name": "get_dad_joke_suggestion", "arguments": '{"topic": "programming"}'},
        {"name": "get_one_liner_suggestion", "arguments": '{"topic": "programming"}'}]
    assert full[3] == {"role": "tool", "tool_call_id": "call_X0OSgjUukT5inyEQvuZQnHrk", "name": "get_pun_suggestion",
                       "content": "Pun idea: Play on words related to 'programming' - think about homophones or "
                                  "double meanings"}
    assert full[7] == {"role": "user", "content": "Now write a funny joke about 'programming' based on the "
                                                  "suggestions you received. Just output the joke, nothing else."}


def test_langfuse_agent_loop_step_continues_the_earlier_generation_of_its_trace() -> None:
    # Microsoft Agent Framework logs the second call of the loop with only [tool call, tool result], and the
    # file lists it before the first call: it is rebuilt from the first call (earlier by start time)
    path = LANGFUSE / "microsoft-agent-2025-10-14.json"
    records, errors, _ = read(path)
    question = [{"role": "user", "content": "What's the weather like in Portland?"}]
    assert errors == [] and by_key(records) == {"c6b8d4db5f0eac82": question, "3c2d6f2f26930c50": question}
    step = next(r for r in records if r.key == "3c2d6f2f26930c50")
    assert step.meta["continues"] == "c6b8d4db5f0eac82"
    assert step.source == f"{path}:1 $.observations[1]"


# --- LangSmith SDK payloads, OTel spans, Batch input, ShareGPT ---------------------------------------------------


@pytest.mark.parametrize(("name", "run_id", "model", "text"), [
    ("langsmith_js_wrap_openai_default.json", "dc34609e-3eeb-459d-bc2a-6fedb01d2e6e", "gpt-4o-mini", "howdy"),
    ("langsmith_py_wrap_openai_.json", "d0d84d31-923d-4cb5-94a8-40a0a0087578", "gpt-4o-mini", "howdy"),
    ("langsmith_py_wrap_openai_stream.json", "fe8ffecb-72ce-4cd2-bdb7-01f34654c391", "gpt-4o-mini", "howdy"),
    ("langsmith_py_wrap_openai_reasoning.json", "a8b34ded-ccd2-4fb7-bccb-9cd625066a14", "o1-mini",
     ("Write a bash script that takes a matrix represented as a string with format '[1,2],[3,4],[5,6]' and "
      "prints the transpose in the same format.")),
])
def test_langsmith_sdk_payloads(name: str, run_id: str, model: str, text: str) -> None:
    records, errors, _ = read(REAL / "langsmith_runs" / name)
    assert errors == [] and len(records) == 1
    assert records[0].key == run_id and records[0].messages == [{"role": "user", "content": text}]
    assert records[0].meta["model"] == model


def test_otel_genai_and_openinference_spans_give_the_messages_not_the_request() -> None:
    for name in ("otel_genai_client_span_tool_calls.json", "openinference_client_span_tool_calls.json"):
        records, errors, _ = read(REAL / "otel_spans" / name)
        assert errors == [] and [r.messages for r in records] == [[{"role": "user", "content": "Weather in Paris?"}]]
        assert records[0].meta["params"]["temperature"] == 0.5 and records[0].meta["provider"] == "openai"


def test_otel_full_conversations_keep_tool_calls_and_results() -> None:
    from evalsets.readers.messages import conversation
    from evalsets.readers.otel import llm_input, spans_of

    for name in ("otel_genai_client_span_tool_calls.json", "openinference_client_span_tool_calls.json"):
        (_, span), = spans_of(source(REAL / "otel_spans" / name))
        attr, value, system = llm_input(span)  # type: ignore[misc]
        msgs = conversation(value, attr, system=system)
        assert msgs[0] == {"role": "user", "content": "Weather in Paris?"}
        assert msgs[1]["role"] == "assistant" and msgs[1]["content"] == "Absolutely! Let me check the weather for you."
        assert msgs[1]["tool_calls"][0]["id"] == "1234"
        assert msgs[1]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert json.loads(msgs[1]["tool_calls"][0]["function"]["arguments"]) == {"location": "Paris"}
        assert msgs[2] == {"role": "tool", "content": "rainy, 57°F", "tool_call_id": "1234"}


def test_vercel_ai_sdk_spans_llm_calls_only() -> None:
    path = REAL / "otel_spans" / "vercel_v6_all-spans.json"
    records, errors, ctx = read(path)
    assert errors == [] and ctx.ignored["spans that are not LLM calls"] == 6
    assert by_key(records) == {
        "39d6e9b3ddec9996": [{"role": "user", "content": "Write a haiku about programming."}],
        "6c0201026326855d": [{"role": "system", "content": "You are a helpful assistant."},
                             {"role": "user", "content": "What is 2 + 2?"},
                             {"role": "assistant", "content": "2 + 2 equals 4."},
                             {"role": "user", "content": "And what is 3 + 3?"}],
        "bf098ec12458e605": [{"role": "user", "content": "Generate a simple recipe for scrambled eggs."}],
        "5a81ef3ffb5d8603": [{"role": "user", "content": "Write a short poem about TypeScript."}],
    }
    assert records[1].source == f"{path}:88 $[2]" and records[1].meta["model"] == "gpt-4o-mini"
    # a key with dots, reached with brackets: the parent spans' own prompt
    records, errors, ctx = read(path, "otel", prompt_field='attributes["ai.prompt"]')
    assert errors == [] and ctx.ignored["spans without attributes[\"ai.prompt\"]"] == 6
    assert [r.messages for r in records[:3]] == [
        [{"role": "user", "content": "Write a haiku about programming."}],  # {"prompt": …}
        by_key(read(path)[0])["6c0201026326855d"],  # {"messages": […]}: the same conversation as its LLM call
        [{"role": "user", "content": "Generate a simple recipe for scrambled eggs."}]]


def test_responses_batch_keeps_instructions_model_and_params() -> None:
    path = REAL / "openai_batch" / "responses_batch_input.jsonl"
    records, errors, _ = read(path)
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert errors == [] and [r.key for r in records] == ["qa-T-001", "qa-T-002"]
    for r, line in zip(records, lines):
        assert r.messages == [{"role": "system", "content": "Return concise internal support QA tags and a "
                                                            "one-sentence summary."},
                              {"role": "user", "content": line["body"]["input"]}]  # sent as text: kept as text
        assert r.meta == {"model": "gpt-5.4-nano", "endpoint": "/v1/responses",
                          "params": {"reasoning": {"effort": "low"}, "text": {"verbosity": "low"},
                                     "max_output_tokens": 160}}


def test_sharegpt_dummy_conversations() -> None:
    records, errors, _ = read(REAL / "sharegpt" / "dummy_conversation_first25.json")
    assert errors == [] and len(records) == 25
    assert records[0].key == "identity_0" and records[0].messages == [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am Vicuna, a language model trained by researchers from Large Model "
                                         "Systems Organization (LMSYS)."},
        {"role": "user", "content": "Have a nice day!"}]


# --- through the command line, into the database -----------------------------------------------------------------


def test_every_real_file_ingests_with_exit_0(engine, tmp_path: Path) -> None:
    files = sorted(str(p) for p in REAL.rglob("*.json*"))
    proc = ownbench_cli("ingest", *files, "--name", "real", "--sample", "0", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["items"] > 40
    agent = str(LANGFUSE / "microsoft-agent-2025-10-14.json")
    proc = ownbench_cli("ingest", agent, "--name", "agent", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
