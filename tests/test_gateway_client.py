"""The gateway against the loopback OpenAI-compatible server over real HTTP, on both paths:
"direct" (aiohttp POST to an OpenAI-compatible api_base) and "litellm" (litellm.acompletion)."""
from __future__ import annotations

import asyncio
import time

import pytest

from gateway.client import CallResult, Gateway, ModelConfig
from tests.loopback import LoopbackServer

PATHS = ["direct", "litellm"]


def call(gw: Gateway, cfg: ModelConfig, messages: list[dict], **extra) -> CallResult:
    async def go() -> CallResult:
        try:
            return await gw.complete(cfg, messages, **extra)
        finally:
            await gw.aclose()

    return asyncio.run(go())


def gateway(path: str, engine=None, **kw) -> Gateway:
    return Gateway(engine, direct=(path == "direct"), backoff_base_s=0.01, backoff_max_s=0.05, **kw)


def cfg_for(server: LoopbackServer, **kw) -> ModelConfig:
    return ModelConfig(model="openai/loop-model", api_base=server.base_url, **kw)


USER = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.parametrize("path", PATHS)
def test_answer_tokens_and_cost_match_server(path: str, loopback: LoopbackServer) -> None:
    gw = gateway(path)
    cfg = cfg_for(loopback, params={"temperature": 0.3, "max_tokens": 50},
                  input_price_per_mtok=2.0, output_price_per_mtok=8.0)
    assert gw.route(cfg) == path
    r = call(gw, cfg, USER)
    assert r.error is None, r.error
    assert r.text == "echo: What is the capital of France?"
    assert r.finish_reason == "stop"
    served = loopback.served[0]["usage"]
    assert (r.prompt_tokens, r.completion_tokens) == (served["prompt_tokens"], served["completion_tokens"])
    assert r.cost_usd == pytest.approx((served["prompt_tokens"] * 2.0 + served["completion_tokens"] * 8.0) / 1e6)
    assert r.latency_ms is not None and r.latency_ms > 0 and r.ttft_ms is None
    assert r.attempts == 1 and not r.cached
    body = loopback.bodies[0]
    assert body["model"] == "loop-model" and body["temperature"] == 0.3 and body["max_tokens"] == 50
    assert body["messages"] == USER
    assert r.response is not None and r.response["choices"][0]["message"]["content"] == r.text


@pytest.mark.parametrize("path", PATHS)
def test_unknown_price_is_none_not_zero(path: str, loopback: LoopbackServer) -> None:
    r = call(gateway(path), cfg_for(loopback), USER)
    assert r.error is None and r.prompt_tokens is not None
    assert r.cost_usd is None


@pytest.mark.parametrize("path", PATHS)
def test_streaming_records_ttft_and_usage(path: str, loopback: LoopbackServer) -> None:
    loopback.latency = 0.15
    loopback.chunk_delay = 0.05
    loopback.script = lambda body: "one two three four five six seven eight nine ten eleven twelve"
    r = call(gateway(path), cfg_for(loopback, params={"stream": True}), USER)
    assert r.error is None, r.error
    assert loopback.bodies[0]["stream"] is True
    assert r.text == "one two three four five six seven eight nine ten eleven twelve"
    assert r.completion_tokens == 12 and r.prompt_tokens == loopback.served[0]["usage"]["prompt_tokens"]
    assert r.ttft_ms is not None and r.latency_ms is not None
    assert 150 <= r.ttft_ms < r.latency_ms  # the second chunk comes 50 ms after the first


@pytest.mark.parametrize("path", PATHS)
def test_tool_calls_come_back_in_the_response(path: str, loopback: LoopbackServer) -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]
    loopback.script = lambda body: {"tool_calls": calls}
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    r = call(gateway(path), cfg_for(loopback), USER, tools=tools, tool_choice="auto")
    assert r.error is None, r.error
    assert r.finish_reason == "tool_calls"
    got = r.response["choices"][0]["message"]["tool_calls"]  # type: ignore[index]
    assert got[0]["function"]["name"] == "lookup" and got[0]["function"]["arguments"] == '{"q": "x"}'
    assert loopback.bodies[0]["tools"] == tools and loopback.bodies[0]["tool_choice"] == "auto"


@pytest.mark.parametrize("path", PATHS)
def test_retries_transient_faults_then_succeeds(path: str, loopback: LoopbackServer) -> None:
    loopback.queue_faults(["500", "drop", "malformed"])
    r = call(gateway(path), cfg_for(loopback, max_attempts=4), USER)
    assert r.error is None, r.error
    assert r.attempts == 4 and loopback.request_count == 4
    assert loopback.faults_sent == ["500", "drop", "malformed"]


@pytest.mark.parametrize("path", PATHS)
def test_bounded_attempts_then_error_with_reason(path: str, loopback: LoopbackServer) -> None:
    loopback.faults = {"503": 1.0}
    r = call(gateway(path), cfg_for(loopback, max_attempts=3), USER)
    assert r.text is None and r.error_kind == "server"
    assert "after 3 attempts" in (r.error or "") and "503" in (r.error or "")
    assert loopback.request_count == 3 and r.attempts == 3


@pytest.mark.parametrize("path", PATHS)
def test_retry_after_is_honoured(path: str, loopback: LoopbackServer) -> None:
    loopback.retry_after = 1
    loopback.queue_faults(["429"])
    r = call(gateway(path), cfg_for(loopback), USER)
    assert r.error is None, r.error
    assert r.attempts == 2 and loopback.request_count == 2
    gap = loopback.arrivals[1] - loopback.arrivals[0]
    assert gap >= 1.0  # back-off alone (base 10 ms) would have retried at once


@pytest.mark.parametrize("path", PATHS)
def test_timeout_is_retried_and_reported(path: str, loopback: LoopbackServer) -> None:
    loopback.faults = {"timeout": 1.0}
    loopback.hang_s = 5
    t0 = time.monotonic()
    r = call(gateway(path), cfg_for(loopback, timeout_s=0.3, max_attempts=2), USER)
    assert r.error_kind == "timeout" and "timed out after 2 attempts" in (r.error or "")
    assert loopback.request_count == 2
    assert time.monotonic() - t0 < 5  # the gateway did not wait for the hung server


@pytest.mark.parametrize("path", PATHS)
def test_unauthorized_fails_fast_naming_the_variable(
    path: str, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentinel = "sk-SENTINEL-9f8e7d6c5b4a-do-not-store"
    monkeypatch.setenv("LOOP_KEY", sentinel)
    loopback.require_key = "the-right-key"  # the server echoes the wrong key back in its 401 message
    r = call(gateway(path), cfg_for(loopback, api_key_env="LOOP_KEY", max_attempts=4), USER)
    assert r.error_kind == "auth" and loopback.request_count == 1
    assert "LOOP_KEY" in (r.error or "") and "openai/loop-model" in (r.error or "")
    assert sentinel not in (r.error or "") and "SENTINEL" not in (r.error or "")
    assert loopback.auth_headers == [f"Bearer {sentinel}"]  # the key did reach the provider


def test_missing_key_variable_fails_without_a_call(loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOP_KEY_UNSET", raising=False)
    r = call(gateway("direct"), cfg_for(loopback, api_key_env="LOOP_KEY_UNSET"), USER)
    assert r.error_kind == "auth" and "LOOP_KEY_UNSET is not set" in (r.error or "")
    assert loopback.request_count == 0


@pytest.mark.parametrize("path", PATHS)
def test_bad_request_is_not_retried(path: str, loopback: LoopbackServer) -> None:
    loopback.queue_faults(["400"])
    r = call(gateway(path), cfg_for(loopback, max_attempts=4), USER)
    assert r.error_kind == "bad_request" and loopback.request_count == 1
    assert "openai/loop-model" in (r.error or "")


@pytest.mark.parametrize("path", PATHS)
def test_cache_hit_makes_no_request(path: str, loopback: LoopbackServer, sqlite_engine) -> None:
    cfg = cfg_for(loopback, input_price_per_mtok=1.0, output_price_per_mtok=1.0)
    first = call(gateway(path, sqlite_engine), cfg, USER)
    assert first.error is None and not first.cached and loopback.request_count == 1
    again = call(gateway(path, sqlite_engine), cfg, USER)
    assert again.cached and again.attempts == 0 and loopback.request_count == 1
    assert again.text == first.text and again.request_hash == first.request_hash
    assert again.cost_usd == first.cost_usd  # what the answer cost when it was made
    forced = call(gateway(path, sqlite_engine, use_cache=False), cfg, USER)
    assert not forced.cached and loopback.request_count == 2
    other = call(gateway(path, sqlite_engine), cfg, USER, response_format={"type": "json_object"})
    assert not other.cached and loopback.request_count == 3  # extra fields are part of the key


def test_prefetched_batch_serves_hits_and_calls_the_rest(loopback: LoopbackServer, sqlite_engine) -> None:
    cfg = cfg_for(loopback)
    other = [{"role": "user", "content": "And of Spain?"}]
    first = call(gateway("direct", sqlite_engine), cfg, USER)
    assert first.error is None and loopback.request_count == 1
    gw = gateway("direct", sqlite_engine)
    assert gw.prefetch(cfg, [USER, other]) == 1  # one of the two is already cached

    async def both() -> list[CallResult]:
        try:
            return [await gw.complete(cfg, USER), await gw.complete(cfg, other)]
        finally:
            await gw.aclose()

    hit, miss = asyncio.run(both())
    assert hit.cached and hit.text == first.text
    assert not miss.cached and miss.error is None and loopback.request_count == 2
    assert call(gateway("direct", sqlite_engine), cfg, other).cached  # the new answer was stored


def test_failed_calls_are_not_cached(loopback: LoopbackServer, sqlite_engine) -> None:
    loopback.queue_faults(["400"])
    bad = call(gateway("direct", sqlite_engine), cfg_for(loopback), USER)
    assert bad.error is not None
    good = call(gateway("direct", sqlite_engine), cfg_for(loopback), USER)
    assert good.error is None and not good.cached and loopback.request_count == 2


@pytest.mark.parametrize("path", PATHS)
def test_concurrency_limit_per_model(path: str, loopback: LoopbackServer) -> None:
    loopback.latency = 0.1
    gw = gateway(path)
    cfg = cfg_for(loopback, max_concurrency=3)

    async def go() -> list[CallResult]:
        try:
            return await asyncio.gather(*(gw.complete(cfg, [{"role": "user", "content": f"q{i}"}]) for i in range(12)))
        finally:
            await gw.aclose()

    results = asyncio.run(go())
    assert all(r.error is None for r in results)
    assert loopback.request_count == 12 and loopback.max_in_flight == 3
    assert sorted(r.text for r in results) == sorted(f"echo: q{i}" for i in range(12))


def test_rpm_limit_spaces_requests(loopback: LoopbackServer) -> None:
    gw = gateway("direct")
    cfg = cfg_for(loopback, rpm=60)  # one a second, a burst of up to 10

    async def go() -> None:
        try:
            await asyncio.gather(*(gw.complete(cfg, [{"role": "user", "content": f"r{i}"}]) for i in range(12)))
        finally:
            await gw.aclose()

    asyncio.run(go())
    assert loopback.request_count == 12
    assert loopback.arrivals[-1] - loopback.arrivals[0] >= 1.5  # the 11th and 12th waited for refills
