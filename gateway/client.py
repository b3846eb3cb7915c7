"""The gateway: one async door to every provider, with limits, retries, cache, cost and latency accounting.

Two paths, one behaviour
------------------------
`litellm.acompletion` speaks to any provider LiteLLM knows, but costs about 4 ms of CPU per call (measured
on a 2-core machine), so at 50 calls in flight with 100 ms latency a single core, not the network, sets the
pace (about 0.40 of the ideal throughput). For OpenAI-compatible servers named with an explicit `api_base`
(`openai/<name>`, `hosted_vllm/<name>`, `lm_studio/<name>`, `llamafile/<name>`: vLLM, llama.cpp, LM Studio,
proxies) the request is already in the provider's format, so the gateway POSTs it directly with aiohttp over a
connection pool shared by all calls of the event loop, and does only what is needed per call (one canonical
JSON + SHA-256 for the cache key, one `json.dumps`, one `json.loads`). Everything else goes through LiteLLM,
imported lazily on the first such call. Both paths share the same code for limits, retries, Retry-After, the
per-call timeout, the cache, redaction, cost and latency, and return the same OpenAI-format body. Set
`OWNBENCH_GATEWAY_DIRECT=0` (or `Gateway(direct=False)`) to send every call through LiteLLM.

Accounting
----------
- `latency_ms` is the wall time of the attempt that succeeded (queueing and back-off excluded);
  `ttft_ms` is the time to the first content or tool-call chunk when `stream: true` is in the params.
- `cost_usd` comes from the candidate's price override, else LiteLLM's price map, else None ("unknown").
  A cached result reports what the answer cost when it was made, with `cached=True`: nothing was spent now.
- API keys are read from the environment at call time (`api_key_env`, else the provider's usual variable)
  and are masked out of every error text; they are never part of the cache key or any stored row.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from gateway.cache import cache_get, cache_get_many, cache_put
from gateway.limits import Limiter
from gateway.pricing import cost_usd, per_token_prices
from gateway.routing import key_env_name, read_key, redact, uses_light_path
from gateway.transport import RETRYABLE, ProviderError, call_litellm, post_direct
from storage.hashing import content_hash


@dataclass(frozen=True)
class ModelConfig:
    model: str  # any LiteLLM model string, e.g. "openai/gpt-4o-mini"
    params: dict = field(default_factory=dict)  # temperature, max_tokens, stream, …
    api_base: str | None = None
    api_key_env: str | None = None  # NAME of the env var; the key is read at call time, never stored/logged
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    max_concurrency: int = 8
    rpm: int | None = None
    tpm: int | None = None
    timeout_s: float = 60.0
    max_attempts: int = 4

    def __hash__(self) -> int:  # params is a dict; hash what identifies the limiter and prices
        return hash((self.model, self.api_base, self.api_key_env, self.max_concurrency, self.rpm, self.tpm))


@dataclass
class CallResult:
    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    latency_ms: float | None
    ttft_ms: float | None
    error: str | None  # reason in words, None on success
    error_kind: str | None  # rate_limit | server | timeout | connection | auth | bad_request | malformed
    attempts: int
    request_hash: str
    cached: bool
    response: dict | None  # the OpenAI-format chat.completion body
    # (request hash, model, entry) of a fresh answer the caller stores itself, in the transaction that stores
    # what it made of it (`Gateway.defer_cache_writes`); None otherwise.
    cache_row: tuple[str, str, dict] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def request_key(cfg: ModelConfig, messages: list[dict], extra: dict) -> str:
    """SHA-256 of the canonical request: model, server, messages, parameters and extra fields (never the key)."""
    return content_hash(
        {"model": cfg.model, "api_base": cfg.api_base, "messages": messages, "params": cfg.params, "extra": extra}
    )


def estimate_tokens(messages: list[dict], params: dict) -> int:
    """A cheap upper-side guess for the tokens-per-minute budget: ~4 characters a token plus max_tokens."""
    chars = sum(len(m.get("content") or "") if isinstance(m.get("content"), str) else 200 for m in messages)
    return chars // 4 + len(messages) * 4 + int(params.get("max_tokens") or params.get("max_completion_tokens") or 256)


class Gateway:
    def __init__(
        self,
        engine: Engine | None = None,
        *,
        use_cache: bool = True,
        direct: bool | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 120.0,
    ) -> None:
        self.engine = engine
        self.use_cache = use_cache and engine is not None
        self.direct = direct if direct is not None else os.environ.get("OWNBENCH_GATEWAY_DIRECT", "1") != "0"
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self._limiters: dict[tuple, Limiter] = {}
        self._sessions: dict[int, Any] = {}  # one aiohttp session (connection pool) per event loop
        self._headers: dict[tuple, dict[str, str]] = {}
        self._prefetched: dict[str, dict | None] = {}  # request hash → cached entry (None: known not cached)
        # Every answer is in the cache once `complete` returns it, so a process killed at any moment has paid
        # for nothing it cannot find again. With `defer_cache_writes` the caller writes `CallResult.cache_row`
        # in the same transaction as its own row (a run: the output), which costs no extra commit per call.
        self.defer_cache_writes = False

    # --- public ---------------------------------------------------------------------------------------------

    def route(self, cfg: ModelConfig) -> str:
        """"direct" or "litellm": the path calls of this configuration take."""
        return "direct" if self.direct and uses_light_path(cfg.model, cfg.api_base) else "litellm"

    def prices(self, cfg: ModelConfig) -> tuple[float, float] | None:
        """USD per input token and per output token, or None when unknown."""
        return per_token_prices(cfg.model, cfg.api_base, cfg.input_price_per_mtok, cfg.output_price_per_mtok)

    def cache_key(self, cfg: ModelConfig, messages: list[dict], **extra: Any) -> str:
        return request_key(cfg, messages, extra)

    def prefetch(self, cfg: ModelConfig, requests: list[list[dict]], **extra: Any) -> int:
        """Look up a batch of requests about to be made in one query, so that each call skips its own lookup
        (one blocking query per call is what costs most when hundreds of calls a second are in flight).
        Returns how many are already cached."""
        if not self.use_cache or not requests:
            return 0
        keys = [request_key(cfg, messages, extra) for messages in requests]
        hits = cache_get_many(self.engine, keys)  # type: ignore[arg-type]
        self._prefetched.update({k: hits.get(k) for k in keys})
        return len(hits)

    async def complete(self, cfg: ModelConfig, messages: list[dict], **extra: Any) -> CallResult:
        """One chat completion. Never raises for provider failures: the result says what went wrong."""
        rhash = request_key(cfg, messages, extra)
        prices = self.prices(cfg)
        if self.use_cache:
            if rhash in self._prefetched:
                entry = self._prefetched.pop(rhash)
            else:
                entry = cache_get(self.engine, rhash)  # type: ignore[arg-type]
            if entry is not None:
                factor = entry.get("price_factor")  # an answer from a Batch API cost a share of the usual price
                paid = (prices[0] * factor, prices[1] * factor) if factor is not None and prices else prices
                return self._result(entry["body"], paid, entry.get("latency_ms"), entry.get("ttft_ms"),
                                    attempts=0, rhash=rhash, cached=True)

        key = read_key(cfg.model, cfg.api_key_env)
        if cfg.api_key_env and key is None:
            return self._failed(
                rhash, 0, "auth",
                f"{cfg.model}: the environment variable {cfg.api_key_env} is not set; "
                f"set it to the API key for this model (no call was made)",
            )
        params = dict(cfg.params)
        stream = bool(params.pop("stream", False))
        stream = bool(extra.pop("stream", stream))
        limiter = self._limiter(cfg)
        est = estimate_tokens(messages, params) if limiter.tpm is not None else 0
        direct = self.route(cfg) == "direct"
        if direct:
            payload = json.dumps(
                {**params, **extra, "model": cfg.model.split("/", 1)[1], "messages": messages,
                 **({"stream": True, "stream_options": {"include_usage": True}} if stream else {})},
                ensure_ascii=False,
            ).encode("utf-8")
            url = cfg.api_base.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
            headers = self._direct_headers(cfg, key)
            session = self._session()

        last: ProviderError | None = None
        attempts = 0
        for attempt in range(1, max(1, cfg.max_attempts) + 1):
            attempts = attempt
            await limiter.acquire(est)
            t0 = time.perf_counter()
            try:
                if direct:
                    body, ttft = await post_direct(session, url, headers, payload, cfg.timeout_s, stream)
                else:
                    body, ttft = await call_litellm(cfg.model, messages, params, extra, cfg.api_base, key,
                                                    cfg.timeout_s, stream)
            except ProviderError as exc:
                last = exc
            else:
                latency = (time.perf_counter() - t0) * 1000
                result = self._result(body, prices, latency, ttft, attempts=attempt, rhash=rhash, cached=False)
                if limiter.tpm is not None and result.prompt_tokens is not None:
                    limiter.tpm.adjust((result.prompt_tokens + (result.completion_tokens or 0)) - est)
                if self.use_cache:
                    row = (rhash, cfg.model, {"body": body, "latency_ms": latency, "ttft_ms": ttft})
                    if self.defer_cache_writes:
                        result.cache_row = row
                    else:
                        cache_put(self.engine, *row)  # type: ignore[arg-type]
                return result
            finally:
                limiter.release()
            if last.kind not in RETRYABLE or attempt >= cfg.max_attempts:
                break
            wait = self._backoff(attempt, last.retry_after)
            if wait is None:
                break
            await asyncio.sleep(wait)
        assert last is not None
        return self._failed(rhash, attempts, last.kind, self._describe(cfg, last, attempts, key))

    async def aclose(self) -> None:
        loop_id = id(asyncio.get_running_loop())
        session = self._sessions.pop(loop_id, None)
        if session is not None:
            await session.close()
        self._sessions.clear()  # sessions of other (finished) loops cannot be closed from here
        self._limiters = {k: v for k, v in self._limiters.items() if k[0] != loop_id}

    # --- internals ------------------------------------------------------------------------------------------

    def _limiter(self, cfg: ModelConfig) -> Limiter:
        k = (id(asyncio.get_running_loop()), cfg.model, cfg.api_base, cfg.max_concurrency, cfg.rpm, cfg.tpm)
        limiter = self._limiters.get(k)
        if limiter is None:
            limiter = self._limiters[k] = Limiter(cfg.max_concurrency, cfg.rpm, cfg.tpm)
        return limiter

    def _session(self) -> Any:
        loop_id = id(asyncio.get_running_loop())
        session = self._sessions.get(loop_id)
        if session is None or session.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
            session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
            self._sessions[loop_id] = session
        return session

    def _direct_headers(self, cfg: ModelConfig, key: str | None) -> dict[str, str]:
        k = (cfg.model, cfg.api_key_env, key)
        headers = self._headers.get(k)
        if headers is None:
            headers = {"Content-Type": "application/json", "User-Agent": "ownbench-gateway"}
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._headers[k] = headers
        return headers

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt: Retry-After when given (None if it asks for too long),
        else exponential back-off with jitter."""
        if retry_after is not None:
            if retry_after > self.max_retry_after_s:
                return None
            return retry_after + random.uniform(0, min(1.0, 0.1 * retry_after + 0.01))
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _describe(self, cfg: ModelConfig, exc: ProviderError, attempts: int, key: str | None) -> str:
        message = redact(exc.message, key)
        if exc.kind == "auth":
            env = key_env_name(cfg.model, cfg.api_key_env)
            return f"{cfg.model}: the provider refused the credentials ({message}); set {env} to a valid API key"
        if exc.kind == "bad_request":
            return f"{cfg.model}: the provider rejected the request ({message}); check the model name and params"
        if exc.kind == "rate_limit" and exc.retry_after is not None and exc.retry_after > self.max_retry_after_s:
            return f"{cfg.model}: rate limited; the provider asked to wait {exc.retry_after:.0f} s ({message})"
        words = {"rate_limit": "rate limited", "server": "server error", "timeout": "timed out",
                 "connection": "connection error", "malformed": "malformed answer"}[exc.kind]
        plural = "s" if attempts != 1 else ""
        return f"{cfg.model}: {words} after {attempts} attempt{plural}: {message}"

    @staticmethod
    def _failed(rhash: str, attempts: int, kind: str, error: str) -> CallResult:
        return CallResult(None, None, None, None, None, None, None, error, kind, attempts, rhash, False, None)

    @staticmethod
    def _result(
        body: dict, prices: tuple[float, float] | None, latency: float | None, ttft: float | None,
        *, attempts: int, rhash: str, cached: bool,
    ) -> CallResult:
        choice = (body.get("choices") or [{}])[0] or {}
        message = choice.get("message") or {}
        usage = body.get("usage") or {}
        pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return CallResult(
            text=message.get("content"),
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=pt,
            completion_tokens=ct,
            cost_usd=cost_usd(prices, pt, ct),
            latency_ms=latency,
            ttft_ms=ttft,
            error=None,
            error_kind=None,
            attempts=attempts,
            request_hash=rhash,
            cached=cached,
            response=body,
        )
