"""Provider Batch APIs: submit many chat completions as one file, collect the answers within the provider's window
(24 h) at the provider's batch price (OpenAI and Anthropic: half the usual price).

Speaks the OpenAI Files + Batches endpoints over HTTP (`POST /files`, `POST /batches`, `GET /batches/{id}`,
`GET /files/{id}/content`), which OpenAI itself and OpenAI-compatible servers and proxies with an `api_base`
serve. Every line's body is exactly what the gateway's direct path would POST, so its answer is cached under the
same request hash as a live call, and a later live or batch request for it costs nothing.

Restart-safe: the `provider_batch` row is written before the file is uploaded and updated after each step, so the
next invocation polls the batch it finds instead of submitting again. A row left in `submitting` with an uploaded
file is resolved by listing the provider's batches for that file before anything is created again.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.cache import cache_put_many
from gateway.client import CallResult, ModelConfig, request_key
from gateway.pricing import price_map
from gateway.routing import provider_of, read_key, redact
from storage.db import session_scope
from storage.errors import InputError
from storage.models import ProviderBatch, utcnow

BATCH_PRICE_FACTOR = 0.5  # OpenAI and Anthropic batch prices: half the usual per-token price
OPENAI_BASE = "https://api.openai.com/v1"
FINAL = ("completed", "failed", "expired", "cancelled")
ENDPOINT = "/v1/chat/completions"


def batch_base(cfg: ModelConfig) -> str:
    """The Files/Batches server of a configuration, or InputError when batch mode cannot reach it."""
    if cfg.api_base:
        return cfg.api_base.rstrip("/")
    if provider_of(cfg.model) == "openai":
        return OPENAI_BASE
    raise InputError(
        f"batch mode for {cfg.model} is not supported here",
        where="--batch",
        hint="batch mode speaks the OpenAI Files + Batches API: use an openai/… model, or an OpenAI-compatible "
             "api_base (a proxy such as LiteLLM's in front of the provider); or run without --batch",
    )


def price_factor(cfg: ModelConfig) -> float:
    """The share of the usual price a batch answer costs: LiteLLM's batch prices when it lists them, else 50 %."""
    if cfg.input_price_per_mtok is None and not cfg.api_base:
        entry = price_map().get(cfg.model.split("/", 1)[-1]) or price_map().get(cfg.model) or {}
        full, batch = entry.get("input_cost_per_token"), entry.get("input_cost_per_token_batches")
        if full and batch:
            return float(batch) / float(full)
    return BATCH_PRICE_FACTOR


def line_body(cfg: ModelConfig, messages: list[dict], extra: dict) -> dict[str, Any]:
    """The request body of one line: what the gateway's direct path would POST (never streamed)."""
    params = {k: v for k, v in cfg.params.items() if k != "stream"}
    return {**params, **{k: v for k, v in extra.items() if k != "stream"}, "model": cfg.model.split("/", 1)[-1],
            "messages": messages}


@dataclass
class LineResult:
    """One line's outcome: the answer body, or the reason it failed."""

    body: dict | None
    error: str | None


class BatchClient:
    """The OpenAI Files + Batches endpoints of one server, over HTTP."""

    def __init__(self, cfg: ModelConfig, *, timeout_s: float = 120.0) -> None:
        import httpx

        self.cfg, self.base = cfg, batch_base(cfg)
        self._key = read_key(cfg.model, cfg.api_key_env)
        headers = {"User-Agent": "ownbench-batch"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def _json(self, resp: Any, what: str) -> dict:
        if resp.status_code >= 400:
            raise InputError(f"{what} failed at {self.base}: HTTP {resp.status_code}: "
                             f"{redact(resp.text[:300], self._key)}", where="--batch",
                             hint="check the api_base, the API key and that the server offers the Batch API")
        return resp.json()

    def upload(self, jsonl: bytes) -> str:
        files = {"file": ("ownbench-batch.jsonl", jsonl, "application/jsonl")}
        return self._json(self.http.post("/files", data={"purpose": "batch"}, files=files), "uploading the batch file")["id"]

    def create(self, input_file_id: str, metadata: dict[str, str]) -> dict:
        body = {"input_file_id": input_file_id, "endpoint": ENDPOINT, "completion_window": "24h", "metadata": metadata}
        return self._json(self.http.post("/batches", json=body), "creating the batch")

    def find(self, input_file_id: str) -> dict | None:
        """A batch already created for this input file (a restart between upload and creation)."""
        data = self._json(self.http.get("/batches", params={"limit": 100}), "listing batches")
        return next((b for b in data.get("data") or [] if b.get("input_file_id") == input_file_id), None)

    def retrieve(self, batch_id: str) -> dict:
        return self._json(self.http.get(f"/batches/{batch_id}"), "reading the batch status")

    def content(self, file_id: str) -> str:
        resp = self.http.get(f"/files/{file_id}/content")
        if resp.status_code >= 400:
            self._json(resp, "downloading the batch results")
        return resp.text


def parse_results(text: str) -> dict[str, LineResult]:
    """Output or error file lines → custom id → answer or reason (a failed line never becomes an answer)."""
    out: dict[str, LineResult] = {}
    for raw in text.split("\n"):  # not splitlines(): JSON strings may hold U+2028 and other separators
        if not raw.strip():
            continue
        line = json.loads(raw)
        cid = str(line.get("custom_id"))
        resp = line.get("response") or {}
        err = line.get("error")
        status = resp.get("status_code")
        body = resp.get("body")
        if err or status != 200 or not isinstance(body, dict) or not body.get("choices"):
            if err:
                why = f"{err.get('code') or 'error'}: {err.get('message') or ''}".strip()
            else:
                msg = ((body or {}).get("error") or {}).get("message") if isinstance(body, dict) else None
                why = f"HTTP {status}: {msg or 'no answer'}"
            out[cid] = LineResult(None, f"batch line failed ({why})")
        else:
            out[cid] = LineResult(body, None)
    return out


# --- the batch lifecycle, recorded in `provider_batch` ----------------------------------------------------------


def open_batch(engine: Engine, *, kind: str, owner_id: int) -> ProviderBatch | None:
    """The batch of this run / judge run not yet stored (at most one is open at a time)."""
    col = ProviderBatch.judge_run_id if kind == "judge" else ProviderBatch.run_id
    with session_scope(engine) as s:
        row = s.exec(select(ProviderBatch).where(ProviderBatch.kind == kind, col == owner_id,
                                                 ProviderBatch.status != "ingested")
                     .order_by(ProviderBatch.id.desc())).first()  # type: ignore[union-attr]
        if row is not None:
            s.expunge(row)
        return row


def _update(engine: Engine, row_id: int, **fields: Any) -> None:
    with session_scope(engine) as s:
        row = s.get(ProviderBatch, row_id)
        assert row is not None
        for k, v in fields.items():
            setattr(row, k, v)
        row.updated_at = utcnow()
        s.add(row)


def submit(engine: Engine, client: BatchClient, requests: list[tuple[str, list[dict], dict]], *, kind: str,
           owner_id: int) -> int:
    """Record, upload and create a batch of (custom id, messages, extra); returns the `provider_batch` id."""
    cfg = client.cfg
    lines, hashes = [], {}
    for cid, messages, extra in requests:
        hashes[cid] = request_key(cfg, messages, extra)
        lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT,
                                 "body": line_body(cfg, messages, extra)}, ensure_ascii=False))
    with session_scope(engine) as s:
        row = ProviderBatch(kind=kind, run_id=owner_id if kind == "run" else None,
                            judge_run_id=owner_id if kind == "judge" else None, model=cfg.model,
                            api_base=cfg.api_base, requests=hashes, request_count=len(requests))
        s.add(row)
        s.flush()
        row_id = row.id
    assert row_id is not None
    file_id = client.upload(("\n".join(lines) + "\n").encode("utf-8"))
    _update(engine, row_id, input_file_id=file_id)
    _create(engine, client, row_id, file_id, kind, owner_id)
    return row_id


def _create(engine: Engine, client: BatchClient, row_id: int, file_id: str, kind: str, owner_id: int) -> None:
    batch = client.create(file_id, {"ownbench": f"{kind} {owner_id}"})
    _update(engine, row_id, batch_id=batch["id"], status=batch.get("status") or "validating",
            counts=batch.get("request_counts"))


def poll(engine: Engine, client: BatchClient, row: ProviderBatch) -> ProviderBatch:
    """Bring the row up to date with the provider (creating the batch if a restart came between the steps)."""
    assert row.id is not None
    if row.batch_id is None:
        if row.input_file_id is None:  # nothing reached the provider: start this batch again from its requests
            _update(engine, row.id, status="ingested", error="abandoned before upload; resubmitted")
            raise Resubmit()
        found = client.find(row.input_file_id)
        if found is None:
            _create(engine, client, row.id, row.input_file_id, row.kind, row.judge_run_id or row.run_id or 0)
        else:
            _update(engine, row.id, batch_id=found["id"], status=found.get("status") or "validating")
    with session_scope(engine) as s:
        fresh = s.get(ProviderBatch, row.id)
        assert fresh is not None and fresh.batch_id is not None
        batch_id = fresh.batch_id
    batch = client.retrieve(batch_id)
    status = batch.get("status") or "unknown"
    _update(engine, row.id, status=status, counts=batch.get("request_counts"),
            output_file_id=batch.get("output_file_id"), error_file_id=batch.get("error_file_id"),
            completed_at=utcnow() if status in FINAL else None,
            error=json.dumps(batch.get("errors"))[:2000] if batch.get("errors") else None)
    with session_scope(engine) as s:
        out = s.get(ProviderBatch, row.id)
        assert out is not None
        s.expunge(out)
        return out


class Resubmit(Exception):
    """A recorded batch never reached the provider; the caller submits its requests again."""


def collect(engine: Engine, client: BatchClient, row: ProviderBatch) -> dict[str, LineResult]:
    """The answers of a finished batch by request hash; successful ones are cached at the batch price."""
    results: dict[str, LineResult] = {}
    for file_id in (row.output_file_id, row.error_file_id):
        if file_id:
            results.update(parse_results(client.content(file_id)))
    if row.status != "completed":
        why = f"batch {row.batch_id} ended {row.status}" + (f": {row.error}" if row.error else "")
        for cid in row.requests:
            results.setdefault(cid, LineResult(None, why))
    factor = price_factor(client.cfg)
    by_hash: dict[str, LineResult] = {}
    entries = []
    for cid, rhash in row.requests.items():
        r = results.get(cid) or LineResult(None, f"batch {row.batch_id} returned no line for this request")
        by_hash[rhash] = r
        if r.body is not None:
            entries.append((rhash, row.model, {"body": r.body, "latency_ms": None, "ttft_ms": None,
                                               "price_factor": factor, "batch_id": row.batch_id}))
    cache_put_many(engine, entries)
    return by_hash


def mark_ingested(engine: Engine, row_id: int) -> None:
    _update(engine, row_id, status="ingested")


class ReplayGateway:
    """A gateway that answers only from a collected batch: no call leaves the machine.

    Used to store a batch's answers exactly as live answers would be stored (same judge, same parsing); a request
    the batch does not hold (a re-ask) gets an error saying so, so its judgment is unscored with that reason."""

    def __init__(self, engine: Engine, cfg: ModelConfig, results: dict[str, LineResult], factor: float) -> None:
        from gateway.pricing import per_token_prices

        self.engine, self.results, self.factor = engine, results, factor
        prices = per_token_prices(cfg.model, cfg.api_base, cfg.input_price_per_mtok, cfg.output_price_per_mtok)
        self.full = prices
        self.prices_paid = (prices[0] * factor, prices[1] * factor) if prices else None

    async def complete(self, cfg: ModelConfig, messages: list[dict], **extra: Any) -> CallResult:
        from gateway.cache import cache_get
        from gateway.client import Gateway

        rhash = request_key(cfg, messages, extra)
        r = self.results.get(rhash)
        if r is None:
            entry = cache_get(self.engine, rhash)  # answered before (live or by an earlier batch): free now
            if entry is not None:
                f = entry.get("price_factor")
                paid = (self.full[0] * f, self.full[1] * f) if f is not None and self.full else self.full
                return Gateway._result(entry["body"], paid, entry.get("latency_ms"), entry.get("ttft_ms"),
                                       attempts=0, rhash=rhash, cached=True)
            return Gateway._failed(rhash, 0, "bad_request", "not part of the batch (batch mode makes no re-asks)")
        if r.body is None:
            return Gateway._failed(rhash, 1, "server", r.error or "batch line failed")
        return Gateway._result(r.body, self.prices_paid, None, None, attempts=1, rhash=rhash, cached=False)

    async def aclose(self) -> None:
        return None


def wait_for(engine: Engine, client: BatchClient, row: ProviderBatch, *, wait_s: float, poll_s: float) -> ProviderBatch:
    """Poll until the batch is final or `wait_s` has passed (0: poll once)."""
    deadline = time.monotonic() + wait_s
    row = poll(engine, client, row)
    while row.status not in FINAL and time.monotonic() + poll_s <= deadline:
        time.sleep(poll_s)
        row = poll(engine, client, row)
    return row
