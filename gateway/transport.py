"""The two ways a request reaches a provider; both return an OpenAI-format chat.completion body or raise
`ProviderError` with the kind of failure, the HTTP status and any Retry-After the provider sent.

- `post_direct`: one POST with aiohttp over a shared connection pool to an OpenAI-compatible `api_base`.
- `call_litellm`: `litellm.acompletion`, for every other model string. LiteLLM is imported on first use only.
"""
from __future__ import annotations

import asyncio
import email.utils
import gc
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

RETRYABLE = frozenset({"rate_limit", "server", "timeout", "connection", "malformed"})


@dataclass
class ProviderError(Exception):
    kind: str  # rate_limit | server | timeout | connection | auth | bad_request | malformed
    message: str
    status: int | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.message


def kind_of_status(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status in (408, 504):
        return "timeout"
    if status >= 500:
        return "server"
    return "bad_request"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        msg = err.get("message") if isinstance(err, dict) else None
        return str(msg if msg else err)[:500]
    except ValueError:
        return raw[:300].decode("utf-8", "replace")


# --- the direct path ---------------------------------------------------------------------------------------------


async def post_direct(
    session: Any, url: str, headers: dict[str, str], payload: bytes, timeout_s: float, stream: bool
) -> tuple[dict, float | None]:
    import aiohttp

    t0 = time.perf_counter()
    try:
        async with session.post(
            url, data=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            if resp.status >= 400:
                raw = await resp.read()
                raise ProviderError(
                    kind_of_status(resp.status),
                    f"HTTP {resp.status}: {_error_message(raw)}",
                    resp.status,
                    parse_retry_after(resp.headers.get("Retry-After")),
                )
            if stream:
                return await _read_sse(resp, t0)
            raw = await resp.read()
    except asyncio.TimeoutError:
        raise ProviderError("timeout", f"no answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise ProviderError("connection", f"connection failed: {exc.__class__.__name__}: {exc}") from None
    try:
        body = json.loads(raw)
    except ValueError:
        raise ProviderError("malformed", f"the answer is not JSON: {raw[:120]!r}") from None
    if not isinstance(body, dict) or not body.get("choices"):
        raise ProviderError("malformed", f"the answer has no choices: {raw[:120]!r}")
    return body, None


async def _read_sse(resp: Any, t0: float) -> tuple[dict, float | None]:
    chunks: list[dict] = []
    ttft: float | None = None
    buffer = b""
    async for line in resp.content:
        buffer += line
        if not buffer.endswith(b"\n"):
            continue
        text, buffer = buffer.strip(), b""
        if not text.startswith(b"data:"):
            continue
        data = text[5:].strip()
        if data == b"[DONE]":
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ProviderError("malformed", f"a stream chunk is not JSON: {data[:120]!r}") from None
        if ttft is None:
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content") or delta.get("tool_calls"):
                    ttft = (time.perf_counter() - t0) * 1000
                    break
        chunks.append(chunk)
    if not chunks:
        raise ProviderError("malformed", "the stream ended without any chunk")
    return assemble_stream(chunks), ttft


def assemble_stream(chunks: list[dict]) -> dict:
    """One chat.completion body from the chunks of a stream (content, tool calls, finish reason, usage)."""
    content: list[str] = []
    calls: dict[int, dict] = {}
    finish, usage, role = None, None, "assistant"
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            role = delta.get("role") or role
            if delta.get("content"):
                content.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(tc.get("index", 0), {"id": None, "type": "function",
                                                             "function": {"name": "", "arguments": ""}})
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": role, "content": "".join(content) if content or not calls else None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    first = chunks[0]
    return {
        "id": first.get("id"), "object": "chat.completion", "created": first.get("created"),
        "model": first.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


# --- the LiteLLM path ------------------------------------------------------------------------------------------

_litellm: Any = None


def freeze_imported_objects() -> None:
    """Move every object alive now (modules, LiteLLM's price map and pydantic models: some 400,000 of them)
    out of the cyclic garbage collector's reach. They live as long as the process, yet each full collection
    walked them all again: about 0.2 s of CPU a time, one or two times per 1,000 LiteLLM calls, i.e. 5-10 % of
    the path's CPU. Garbage is collected first, so nothing unreachable is kept; objects made later are
    collected as usual."""
    gc.collect()
    gc.freeze()


def litellm_module() -> Any:
    global _litellm
    if _litellm is None:
        # The price map is read from the file LiteLLM ships; do not fetch it from the network at import.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = False
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        freeze_imported_objects()
        _litellm = litellm
    return _litellm


def _litellm_error(exc: Exception, timeout_s: float) -> ProviderError:
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    headers = None
    for attr in ("litellm_response_headers", "response"):
        obj = getattr(exc, attr, None)
        headers = getattr(obj, "headers", obj if isinstance(obj, dict) else None)
        if headers:
            break
    retry_after = None
    if headers:
        try:
            retry_after = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
        except AttributeError:
            retry_after = None
    message = str(getattr(exc, "message", None) or exc).replace("\n", " ")[:500]
    if "Timeout" in names or isinstance(exc, asyncio.TimeoutError):
        return ProviderError("timeout", f"no answer within {timeout_s:g} s", status)
    if "RateLimitError" in names:
        return ProviderError("rate_limit", f"HTTP 429: {message}", 429, retry_after)
    if "AuthenticationError" in names or "PermissionDeniedError" in names or "Missing credentials" in message:
        return ProviderError("auth", f"HTTP {status or 401}: {message}", status or 401)
    if any(sign in message for sign in ("JSONDecodeError", "Expecting ", "Unterminated string", "Extra data")):
        return ProviderError("malformed", f"the answer is not JSON: {message}", status)
    # LiteLLM sometimes wraps the OpenAI SDK's connection error as an InternalServerError (status 500)
    if "APIConnectionError" in names or message.rstrip(".").endswith("Connection error"):
        return ProviderError("connection", message, status, retry_after)
    if {"BadRequestError", "NotFoundError", "UnprocessableEntityError", "ContextWindowExceededError",
            "ContentPolicyViolationError", "UnsupportedParamsError"} & names:
        return ProviderError("bad_request", f"HTTP {status or 400}: {message}", status or 400)
    if isinstance(status, int) and status >= 400:
        return ProviderError(kind_of_status(status), f"HTTP {status}: {message}", status, retry_after)
    return ProviderError("server", f"{type(exc).__name__}: {message}", status, retry_after)


async def call_litellm(
    model: str, messages: list[dict], params: dict, extra: dict, api_base: str | None, api_key: str | None,
    timeout_s: float, stream: bool,
) -> tuple[dict, float | None]:
    litellm = litellm_module()
    kwargs: dict[str, Any] = {**params, **extra}
    # The request's timeout is LiteLLM's; the retries are the gateway's: LiteLLM and the SDK make one attempt.
    kwargs.update(model=model, messages=messages, timeout=timeout_s, max_retries=0)
    if api_base:
        kwargs["api_base"] = api_base
    if api_key:
        kwargs["api_key"] = api_key
    elif api_base:
        kwargs["api_key"] = "EMPTY"  # a local OpenAI-compatible server needs no key, but the SDK wants one
    t0 = time.perf_counter()
    try:
        if not stream:
            # a last-resort deadline on this task, not `wait_for`, which wraps every call in a task of its own
            async with asyncio.timeout(timeout_s + 5):
                resp = await litellm.acompletion(**kwargs)
            body = resp.model_dump()
            if not body.get("choices"):
                raise ProviderError("malformed", "the answer has no choices")
            return body, None
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        ttft: float | None = None
        chunks: list[dict] = []

        async def consume() -> None:
            nonlocal ttft
            async for chunk in await litellm.acompletion(**kwargs):
                data = chunk.model_dump()
                if ttft is None and any(
                    (c.get("delta") or {}).get("content") or (c.get("delta") or {}).get("tool_calls")
                    for c in data.get("choices") or []
                ):
                    ttft = (time.perf_counter() - t0) * 1000
                chunks.append(data)

        async with asyncio.timeout(timeout_s + 5):
            await consume()
        if not chunks:
            raise ProviderError("malformed", "the stream ended without any chunk")
        return assemble_stream(chunks), ttft
    except ProviderError:
        raise
    except asyncio.TimeoutError:
        raise ProviderError("timeout", f"no answer within {timeout_s:g} s") from None
    except Exception as exc:  # noqa: BLE001 - every provider failure becomes a classified ProviderError
        raise _litellm_error(exc, timeout_s) from None
