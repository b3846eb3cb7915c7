"""Which path a model takes, prices from override / LiteLLM's map / unknown, key redaction, Retry-After parsing."""
from __future__ import annotations

import email.utils
import time

import pytest

from gateway.client import Gateway, ModelConfig
from gateway.pricing import cost_usd, map_price, per_token_prices
from gateway.routing import key_env_name, redact
from gateway.transport import assemble_stream, parse_retry_after


@pytest.mark.parametrize(
    ("model", "api_base", "route"),
    [
        ("openai/qwen", "http://127.0.0.1:8000/v1", "direct"),
        ("hosted_vllm/meta-llama/Llama-3-8B", "http://127.0.0.1:8000/v1", "direct"),
        ("openai/gpt-4o-mini", None, "litellm"),  # OpenAI itself: LiteLLM handles model quirks
        ("anthropic/claude-3-5-haiku-20241022", None, "litellm"),
        ("ollama/llama3", "http://127.0.0.1:11434", "litellm"),
    ],
)
def test_route(model: str, api_base: str | None, route: str) -> None:
    assert Gateway().route(ModelConfig(model, api_base=api_base)) == route
    assert Gateway(direct=False).route(ModelConfig(model, api_base=api_base)) == "litellm"


def test_prices_override_then_map_then_unknown() -> None:
    assert per_token_prices("openai/gpt-4o-mini", None, 2.0, 4.0) == (2e-6, 4e-6)
    mapped = map_price("openai/gpt-4o-mini")
    assert mapped is not None and mapped[0] > 0 and mapped[1] > mapped[0]
    assert per_token_prices("gpt-4o-mini", None, None, None) == mapped
    assert per_token_prices("openai/no-such-model-xyz", None, None, None) is None
    # A custom server named like an OpenAI model is not OpenAI: no price from the map.
    assert per_token_prices("openai/gpt-4o-mini", "http://127.0.0.1:8000/v1", None, None) is None
    assert per_token_prices("openai/local", "http://127.0.0.1:8000/v1", 0.0, 0.0) == (0.0, 0.0)
    assert cost_usd(None, 10, 10) is None and cost_usd((1e-6, 2e-6), None, 3) is None
    assert cost_usd((1e-6, 2e-6), 1000, 500) == pytest.approx(0.002)


def test_key_env_names() -> None:
    assert key_env_name("anthropic/claude-x", None) == "ANTHROPIC_API_KEY"
    assert key_env_name("gpt-4o", None) == "OPENAI_API_KEY"
    assert key_env_name("openai/x", "MY_KEY") == "MY_KEY"
    assert key_env_name("someprovider/x", None) == "SOMEPROVIDER_API_KEY"


def test_redact() -> None:
    key = "abc123-secret-value"
    text = f"Incorrect API key provided: {key}. Header was Bearer {key}; other sk-proj-ABCDEFGH12345678 too"
    out = redact(text, key)
    assert key not in out and "ABCDEFGH12345678" not in out and out.count("[redacted]") >= 3


def test_retry_after_forms() -> None:
    assert parse_retry_after("2") == 2.0 and parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 31


def test_assemble_stream_with_tool_calls() -> None:
    chunks = [
        {"id": "x", "created": 1, "model": "m", "choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    ]
    body = assemble_stream(chunks)
    msg = body["choices"][0]["message"]
    assert msg["content"] is None and msg["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert body["choices"][0]["finish_reason"] == "tool_calls" and body["usage"]["completion_tokens"] == 4
