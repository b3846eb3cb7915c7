"""Candidate runs through a provider's Batch API (`ownbench run … --batch`): the same lifecycle as batch judge
runs (gateway/batch.py): the run's missing items are submitted once as one batch, each invocation polls it, and
when it is final every answer is stored by the ordinary run code as if it had arrived one by one (cache, cost
at the batch price, an error row with the provider's reason for a failed line)."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.batch import (
    FINAL,
    BatchClient,
    ReplayGateway,
    Resubmit,
    collect,
    mark_ingested,
    open_batch,
    price_factor,
    submit,
    wait_for,
)
from gateway.cache import cache_get_many
from gateway.candidates import CandidateSpec
from gateway.client import Gateway, ModelConfig, request_key
from gateway.runs import execute_run, open_run, pending_items, run_config
from storage.db import session_scope
from storage.models import Item, Run


class _RunReplay(ReplayGateway):
    """The replay gateway with what `execute_run` also asks of a gateway."""

    defer_cache_writes = False  # toggled by execute_run; a replayed answer carries no cache row to write

    def __init__(self, engine: Engine, cfg: ModelConfig, results: dict, factor: float) -> None:
        super().__init__(engine, cfg, results, factor)
        self._route = Gateway(None).route(cfg)

    def prices(self, cfg: ModelConfig) -> tuple[float, float] | None:
        return self.prices_paid

    def prefetch(self, cfg: ModelConfig, requests: list[list[dict]], **extra: Any) -> int:
        return 0

    def flush_cache(self) -> None:
        return None


@dataclass
class RunBatchState:
    run_id: int
    batch_row: int | None
    batch_id: str | None
    status: str  # the provider's status, "nothing to submit", or "stored"
    submitted_now: int
    counts: dict | None
    outputs_stored: int = 0
    errors: int = 0
    spend_usd: float = 0.0
    client_cpu_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_batch(engine: Engine, spec: CandidateSpec, version_id: int, *, wait_s: float = 0.0, poll_s: float = 30.0,
              fresh: bool = False, use_cache: bool = True) -> RunBatchState:
    """Submit (or poll) the batch of this candidate's run on the version; store every answer once it is final."""
    cpu0 = time.process_time()
    cfg = spec.model_config_for()
    client = BatchClient(cfg)
    try:
        config = run_config(spec, Gateway(None).route(cfg), max_cost_usd=None, use_cache=use_cache)
        with session_scope(engine) as s:
            run, _ = open_run(s, spec, version_id, config, fresh=fresh)
            items = [(i.id, i.messages) for i in pending_items(s, run.id, version_id)]  # type: ignore[arg-type]
            total = len(s.exec(select(Item.id).where(Item.version_id == version_id)).all())
            run_id = run.id
        assert run_id is not None
        row = open_batch(engine, kind="run", owner_id=run_id)
        submitted = 0
        if row is not None:
            try:
                row = wait_for(engine, client, row, wait_s=wait_s, poll_s=poll_s)
            except Resubmit:
                row = None
        if row is None:
            hashes = {request_key(cfg, m, {}): (iid, m) for iid, m in items}
            cached = cache_get_many(engine, list(hashes)) if use_cache else {}
            lines = [(f"i{iid}", m, {}) for h, (iid, m) in hashes.items() if h not in cached]
            if lines:
                submit(engine, client, lines, kind="run", owner_id=run_id)
                submitted = len(lines)
                row = open_batch(engine, kind="run", owner_id=run_id)
                assert row is not None
                row = wait_for(engine, client, row, wait_s=wait_s, poll_s=poll_s)
        if row is not None and row.status not in FINAL:
            _status(engine, run_id, "stopped", f"waiting for provider batch {row.batch_id} ({row.status})")
            return RunBatchState(run_id, row.id, row.batch_id, row.status, submitted, row.counts,
                                 client_cpu_s=time.process_time() - cpu0)
        results = collect(engine, client, row) if row is not None else {}
        replay = _RunReplay(engine, cfg, results, price_factor(cfg))
        status, reason, progress = asyncio.run(execute_run(engine, run_id, items, cfg, total=total,
                                                           already_done=total - len(items), gateway=replay))  # type: ignore[arg-type]
        _status(engine, run_id, status, reason, finished=True)
        if row is not None:
            mark_ingested(engine, row.id)  # type: ignore[arg-type]
        return RunBatchState(run_id, row.id if row else None, row.batch_id if row else None,
                             "stored" if row is not None else "nothing to submit", submitted,
                             row.counts if row else None, outputs_stored=progress.outputs, errors=progress.errors,
                             spend_usd=progress.spend_usd, client_cpu_s=time.process_time() - cpu0)
    finally:
        client.close()


def _status(engine: Engine, run_id: int, status: str, reason: str | None, *, finished: bool = False) -> None:
    from storage.models import utcnow

    with session_scope(engine) as s:
        run = s.get(Run, run_id)
        if run is not None:
            run.status, run.status_reason = status, reason
            run.finished_at = utcnow() if finished else None
            s.add(run)
