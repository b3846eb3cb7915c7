"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It answers `POST /v1/chat/completions` (plain JSON, or Server-Sent Events when the body says `"stream": true`,
with the usage numbers in the last chunk) and `GET /v1/models`. Nothing in ownbench is patched: the gateway,
LiteLLM and the openai client reach it over real HTTP.

What a test can steer, at construction or at any time later (attributes are read per request):

- `latency` (seconds before the answer; with streaming, before the first chunk), `chunk_delay` between chunks;
- `script(body) -> reply`: a scripted reply per request. The reply is `None` (the default reply), a string (the
  content) or a dict with any of `content`, `tool_calls`, `finish_reason`, `usage` (merged over the computed
  numbers), `delay` (seconds, instead of `latency`), or `fault` (see below) with `retry_after` / `message`;
- `faults`: rates per fault kind, e.g. `{"429": 0.1, "500": 0.05}`, drawn from a seeded generator;
  `queue_faults(["429", "drop"])` makes the next requests fail in that order.
  Fault kinds: "429" (with `Retry-After: retry_after` seconds), "500", "503", "400", "401", "403",
  "timeout" (the server hangs for `hang_s` seconds), "drop" (the connection is closed without an answer),
  "malformed" (a 200 whose body is not JSON);
- `slots`: when set, `GET /props` answers `{"total_slots": slots}` as a llama.cpp server does;
- `require_key`: when set, a request without `Authorization: Bearer <require_key>` gets a 401 whose message
  echoes the key it was given (as some providers do), so tests can check the key is redacted downstream.

What it records: `request_count`, `bodies` (every request body received), `auth_headers`, `arrivals`
(monotonic clock), `served` (for each
200 answer actually sent: the content and the usage numbers), `faults_sent` (kind per injected fault).

The default reply is deterministic: "echo: " followed by the last user message (cut at 200 characters);
`prompt_tokens` is the number of whitespace-separated words in all messages plus 3 per message,
`completion_tokens` the number of words in the reply.

Batch API (OpenAI Files + Batches): `POST /v1/files` (multipart upload), `GET /v1/files/{id}/content`,
`POST /v1/batches`, `GET /v1/batches/{id}`, `GET /v1/batches`. A batch answers each line with the same
`script` as live requests (a scripted `fault` fails the line: it goes to the error file); `batch_fail(line)`
may also fail a line on purpose (return a message). While `batch_hold` is true every batch stays
`in_progress`; the first retrieval after it is cleared completes the batch. Recorded: `files_uploaded`,
`batches_created`, `batch_lines` (custom ids answered).

Manual use and benchmarks: `python tests/loopback.py --port 8011 --latency 0.1`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable

from aiohttp import web

FAULT_KINDS = ("429", "500", "503", "400", "401", "403", "timeout", "drop", "malformed")
Reply = Any  # None | str | dict


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def default_content(body: dict) -> str:
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    last = _text_of(users[-1].get("content")) if users else ""
    return "echo: " + last[:200]


def count_prompt_tokens(body: dict) -> int:
    messages = body.get("messages") or []
    return sum(len(_text_of(m.get("content")).split()) + 3 for m in messages)


class LoopbackServer:
    """An OpenAI-compatible server in a background thread; `with LoopbackServer() as srv: srv.base_url`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        script: Callable[[dict], Reply] | None = None,
        faults: dict[str, float] | None = None,
        retry_after: float | None = 1.0,
        hang_s: float = 30.0,
        require_key: str | None = None,
        seed: int = 0,
        record: bool = True,
        model: str = "loopback-model",
        slots: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.latency, self.chunk_delay = latency, chunk_delay
        self.script = script
        self.faults = dict(faults or {})
        self.retry_after, self.hang_s = retry_after, hang_s
        self.require_key = require_key
        self.record = record
        self.model = model
        self.batch_hold = False
        self.batch_fail: Callable[[dict], str | None] | None = None
        self.slots = slots
        self.rng = random.Random(seed)
        self._queued: deque[str] = deque()
        self._lock = threading.Lock()
        self.reset()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- what tests read -------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget what was received and served (the counters start again from zero)."""
        with self._lock:
            self.request_count = 0
            self.bodies: list[dict] = []
            self.auth_headers: list[str | None] = []
            self.arrivals: list[float] = []  # time.monotonic() of each request, for Retry-After checks
            self.served: list[dict] = []
            self.faults_sent: list[str] = []
            self.in_flight = 0
            self.max_in_flight = 0  # the most requests the server held at once
            self.files: dict[str, bytes] = {}
            self.batches: dict[str, dict] = {}
            self.files_uploaded = 0
            self.batches_created = 0
            self.batch_lines: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def queue_faults(self, kinds: Iterable[str]) -> None:
        """The next requests fail with these faults, one each, in order."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
            self._queued.append(kind)

    def usage_totals(self) -> dict[str, int]:
        return {
            "prompt_tokens": sum(s["usage"]["prompt_tokens"] for s in self.served),
            "completion_tokens": sum(s["usage"]["completion_tokens"] for s in self.served),
        }

    # --- lifecycle --------------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches", self._list_batches)
        app.router.add_get("/v1/batches/{batch_id}", self._retrieve_batch)
        app.router.add_get("/props", self._props)
        return app

    def start(self) -> "LoopbackServer":
        self._thread = threading.Thread(target=self._serve_in_thread, name="loopback-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"loopback server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            fut.result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _serve_in_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _startup(self) -> None:
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- handlers ---------------------------------------------------------------------------------------------

    async def _props(self, request: web.Request) -> web.Response:
        """llama.cpp's server description: `total_slots` when `slots` is set (a local server), else 404."""
        if self.slots is None:
            raise web.HTTPNotFound()
        return web.json_response({"total_slots": self.slots})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    def _pick_fault(self) -> str | None:
        if self._queued:
            return self._queued.popleft()
        for kind, rate in self.faults.items():
            if rate and self.rng.random() < rate:
                return kind
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        auth = request.headers.get("Authorization")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "request body is not JSON", "invalid_request_error")
        with self._lock:
            self.request_count += 1
            if self.record:
                self.bodies.append(body)
                self.auth_headers.append(auth)
                self.arrivals.append(time.monotonic())
        if self.require_key is not None and auth != f"Bearer {self.require_key}":
            given = (auth or "").removeprefix("Bearer ")
            return _error(401, f"Incorrect API key provided: {given}", "invalid_request_error", code="invalid_api_key")

        self.in_flight += 1  # only the server's own loop touches these two
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, body)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, body: dict) -> web.StreamResponse:
        reply = self.script(body) if self.script is not None else None
        if isinstance(reply, str):
            reply = {"content": reply}
        reply = dict(reply or {})
        fault = reply.get("fault") or self._pick_fault()
        delay = reply.get("delay", self.latency)
        if fault:
            return await self._fault(request, fault, reply, delay)
        if delay:
            await asyncio.sleep(delay)

        content = reply.get("content")
        tool_calls = reply.get("tool_calls")
        if content is None and tool_calls is None:
            content = default_content(body)
        finish = reply.get("finish_reason") or ("tool_calls" if tool_calls else "stop")
        completion_tokens = len((content or "").split()) + (
            len(json.dumps(tool_calls).split()) if tool_calls else 0
        )
        usage = {"prompt_tokens": count_prompt_tokens(body), "completion_tokens": completion_tokens}
        usage.update(reply.get("usage") or {})
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        created = int(time.time())
        rid = f"chatcmpl-loop{self.request_count}"
        model = body.get("model") or self.model

        if self.record:  # before the answer leaves: a client may read `served` the moment it has it
            with self._lock:
                self.served.append({"content": content, "tool_calls": tool_calls, "usage": usage})
        if body.get("stream"):
            resp = await self._stream(request, rid, created, model, content, tool_calls, finish, usage)
        else:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if tool_calls:
                message["tool_calls"] = tool_calls
            payload = {
                "id": rid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage,
            }
            resp = web.Response(body=json.dumps(payload).encode(), content_type="application/json")
        return resp

    async def _stream(
        self, request: web.Request, rid: str, created: int, model: str,
        content: str | None, tool_calls: list | None, finish: str, usage: dict,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        def chunk(delta: dict, finish_reason: str | None = None, with_usage: bool = False) -> bytes:
            obj: dict[str, Any] = {
                "id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            if with_usage:
                obj["choices"] = []
                obj["usage"] = usage
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        await resp.write(chunk({"role": "assistant", "content": ""}))
        words = (content or "").split(" ")
        pieces = [" ".join(words[i:i + 8]) + (" " if i + 8 < len(words) else "") for i in range(0, len(words), 8)]
        for piece in pieces if content else []:
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await resp.write(chunk({"content": piece}))
        for i, call in enumerate(tool_calls or []):
            await resp.write(chunk({"tool_calls": [{"index": i, **call}]}))
        await resp.write(chunk({}, finish))
        await resp.write(chunk({}, with_usage=True))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _fault(self, request: web.Request, kind: str, reply: dict, delay: float) -> web.StreamResponse:
        with self._lock:
            self.faults_sent.append(kind)
        if kind == "timeout":
            assert self._stopping is not None
            try:
                await asyncio.wait_for(self._stopping.wait(), reply.get("hang_s", self.hang_s))
            except asyncio.TimeoutError:
                pass
            return _error(504, "the server hung and gave up", "timeout")
        if delay:
            await asyncio.sleep(min(delay, 0.05))
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()  # nothing more is written on this connection
        if kind == "malformed":
            return web.Response(body=b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess',
                                content_type="application/json")
        status = int(reply.get("status") or kind)
        if status == 429:
            retry_after = reply.get("retry_after", self.retry_after)
            headers = {"Retry-After": _fmt(retry_after)} if retry_after is not None else None
            return _error(429, reply.get("message", "Rate limit reached, slow down"), "rate_limit_error",
                          headers=headers)
        kinds = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error"}
        return _error(status, reply.get("message", f"injected HTTP {status}"), kinds.get(status, "server_error"))


    # --- Batch API ----------------------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "batch" or upload is None or not hasattr(upload, "file"):
            return _error(400, "expected multipart fields purpose=batch and file", "invalid_request_error")
        data = upload.file.read()
        with self._lock:
            self.files_uploaded += 1
            fid = f"file-loop{len(self.files) + 1}"
            self.files[fid] = data
        return web.json_response({"id": fid, "object": "file", "bytes": len(data), "purpose": "batch",
                                  "filename": getattr(upload, "filename", "batch.jsonl"), "created_at": int(time.time())})

    async def _file_content(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["file_id"])
        if data is None:
            return _error(404, "no such file", "invalid_request_error")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        fid = body.get("input_file_id")
        if fid not in self.files or body.get("endpoint") != "/v1/chat/completions":
            return _error(400, "unknown input_file_id or endpoint", "invalid_request_error")
        with self._lock:
            self.batches_created += 1
            bid = f"batch_loop{len(self.batches) + 1}"
            lines = [json.loads(x) for x in self.files[fid].decode().split("\n") if x.strip()]
            self.batches[bid] = {"id": bid, "object": "batch", "endpoint": body["endpoint"], "input_file_id": fid,
                                 "completion_window": body.get("completion_window"), "status": "in_progress",
                                 "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
                                 "metadata": body.get("metadata"), "errors": None,
                                 "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
        return web.json_response(self.batches[bid])

    async def _list_batches(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": list(self.batches.values()), "has_more": False})

    async def _retrieve_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "no such batch", "invalid_request_error")
        if batch["status"] == "in_progress" and not self.batch_hold:
            self._complete_batch(batch)
        return web.json_response(batch)

    def _complete_batch(self, batch: dict) -> None:
        out, err = [], []
        for line in (json.loads(x) for x in self.files[batch["input_file_id"]].decode().split("\n") if x.strip()):
            cid, body = line["custom_id"], line["body"]
            reply = self.script(body) if self.script is not None else None
            reply = {"content": reply} if isinstance(reply, str) else dict(reply or {})
            failure = (self.batch_fail(line) if self.batch_fail is not None else None) or (
                f"injected {reply['fault']}" if reply.get("fault") else None)
            with self._lock:
                self.batch_lines.append(cid)
            if failure:
                err.append({"id": f"batch_req_{cid}", "custom_id": cid, "error": None, "response": {
                    "status_code": 500, "request_id": f"req_{cid}",
                    "body": {"error": {"message": failure, "type": "server_error"}}}})
                continue
            content, tool_calls = reply.get("content"), reply.get("tool_calls")
            if content is None and tool_calls is None:
                content = default_content(body)
            usage = {"prompt_tokens": count_prompt_tokens(body), "completion_tokens": len((content or "").split()) + (
                len(json.dumps(tool_calls).split()) if tool_calls else 0)}
            usage.update(reply.get("usage") or {})
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if tool_calls:
                message["tool_calls"] = tool_calls
            finish = reply.get("finish_reason") or ("tool_calls" if tool_calls else "stop")
            if self.record:
                with self._lock:
                    self.served.append({"content": content, "tool_calls": tool_calls, "usage": usage,
                                        "batch": batch["id"]})
            out.append({"id": f"batch_req_{cid}", "custom_id": cid, "error": None, "response": {
                "status_code": 200, "request_id": f"req_{cid}", "body": {
                    "id": f"chatcmpl-{cid}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model") or self.model, "usage": usage,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}]}}})
        with self._lock:
            for kind, rows in (("output_file_id", out), ("error_file_id", err)):
                if rows:
                    fid = f"file-loop{len(self.files) + 1}"
                    self.files[fid] = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
                    batch[kind] = fid
            batch["status"] = "completed"
            batch["completed_at"] = int(time.time())
            batch["request_counts"] = {"total": len(out) + len(err), "completed": len(out), "failed": len(err)}


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _error(status: int, message: str, kind: str, *, code: str | None = None,
           headers: dict | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(status=status, body=json.dumps(payload).encode(), content_type="application/json",
                        headers=headers)


def _parse_faults(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, rate = part.partition("=")
        if kind not in FAULT_KINDS:
            raise SystemExit(f"--faults: unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        out[kind] = float(rate)
    return out


def schema_verdict(body: dict) -> Reply:
    """A simulated judge: a valid verdict for a judge request (the verdict drawn from the schema's enum by a hash
    of the request, so verdicts vary), as a tool call or JSON content like the request asked; None otherwise."""
    tools = body.get("tools") or []
    fmt = body.get("response_format") or {}
    params = (tools[0].get("function", {}).get("parameters") if tools
              else (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema"))
    enum = (((params or {}).get("properties") or {}).get("verdict") or {}).get("enum")
    if not enum:
        return None
    digest = sum(json.dumps(body.get("messages"), sort_keys=True).encode())
    args = json.dumps({"reasoning": "Simulated verdict from the loopback server.", "verdict": enum[digest % len(enum)]})
    if tools:
        name = tools[0]["function"]["name"]
        return {"tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}]}
    return {"content": args}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible loopback server (tests, benchmarks).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--faults", default="", help="e.g. 429=0.05,500=0.05,drop=0.01")
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--require-key", default=None)
    parser.add_argument("--verdicts", action="store_true",
                        help="answer judge requests with a valid (simulated) verdict from their schema")
    args = parser.parse_args(argv)
    server = LoopbackServer(host=args.host, port=args.port, latency=args.latency, faults=_parse_faults(args.faults),
                            retry_after=args.retry_after, require_key=args.require_key, record=False,
                            script=schema_verdict if args.verdicts else None)

    async def serve() -> None:
        await server._startup()
        print(f"loopback server on {server.base_url} (latency {args.latency} s)", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
