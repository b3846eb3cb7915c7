"""Judge runs through a provider's Batch API (`ownbench judge … --batch`).

1. The judge run is opened as usual; the first request of every unit it lacks is built by the same judge
   (prompt, response model, structured-output mode) that live judging uses, so each line's request hash is the
   one a live call would have, and submitted as one batch (answers already in the cache are left out).
2. Each invocation polls the judge run's open batch instead of submitting again; `--wait` keeps polling.
3. When the batch is final its answers go to the cache at the batch price, and the judge run is completed by
   the ordinary judging code reading only those answers: verdicts, unscored reasons (a failed line says why;
   an invalid answer is not re-asked in batch mode), cost and provenance are stored as if they had arrived one
   by one. Check criteria are computed locally as always.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Engine

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
from gateway.client import CallResult, Gateway, ModelConfig, request_key
from judging.judge import Judge
from judging.prompt import load_template
from judging.runs import JudgeRequest, JudgeSummary, Unit, _finish, judge_version, prepare_run


@dataclass
class BatchState:
    judge_run_id: int
    batch_row: int | None
    batch_id: str | None
    status: str  # the provider's status, "nothing to submit", or "stored"
    submitted_now: int  # requests submitted by this invocation (0 when it only polled)
    counts: dict | None
    summary: JudgeSummary | None = None
    client_cpu_s: float = 0.0  # process CPU spent building, submitting and storing (bench/judge.py)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["summary"] = self.summary.to_dict() if self.summary else None
        return out


class _Collector:
    """A gateway that records the requests the judge would make, and answers none of them."""

    def __init__(self) -> None:
        self.requests: list[tuple[list[dict], dict]] = []

    async def complete(self, cfg: ModelConfig, messages: list[dict], **extra: Any) -> CallResult:
        self.requests.append((messages, extra))
        return Gateway._failed(request_key(cfg, messages, extra), 0, "bad_request", "collected for a batch")

    async def aclose(self) -> None:
        return None


async def _collect_requests(req: JudgeRequest, units: list[Unit], template: Any) -> list[tuple[list[dict], dict]]:
    collector = _Collector()
    judge = Judge(collector, req.judge, structured=req.structured, max_retries=0,  # type: ignore[arg-type]
                  templates={req.mode: template})
    for u in units:
        crit = req.rubric.criterion(u.criterion_id)
        if u.output_b_id is None:
            await judge.judge(req.rubric, crit, conversation=u.conversation, output=u.text, reference=u.reference)
        else:
            await judge.judge_pair(req.rubric, crit, conversation=u.conversation, output_a=u.text,
                                   output_b=u.text_b or "", reference=u.reference)
    return collector.requests


def judge_batch(engine: Engine, req: JudgeRequest, *, wait_s: float = 0.0, poll_s: float = 30.0) -> BatchState:
    """Submit (or poll) the judge run's batch; store every answer once the batch is final."""
    cpu0 = time.process_time()
    template = load_template(req.mode, req.template)
    client = BatchClient(req.judge)  # says clearly when the provider has no Batch API here
    try:
        prep = prepare_run(engine, req, template)
        row = open_batch(engine, kind="judge", owner_id=prep.run_id)
        submitted = 0
        if row is not None:
            try:
                row = wait_for(engine, client, row, wait_s=wait_s, poll_s=poll_s)
            except Resubmit:
                row = None
        if row is None:
            graded = [u for u in prep.todo if not req.rubric.criterion(u.criterion_id).is_check]
            requests = asyncio.run(_collect_requests(req, graded, template))
            unique: dict[str, tuple[list[dict], dict]] = {}
            for messages, extra in requests:
                unique.setdefault(request_key(req.judge, messages, extra), (messages, extra))
            cached = cache_get_many(engine, list(unique)) if req.use_cache else {}
            lines = [(f"r{i}", m, e) for i, (h, (m, e)) in enumerate(unique.items()) if h not in cached]
            if lines:
                row_id = submit(engine, client, lines, kind="judge", owner_id=prep.run_id)
                submitted = len(lines)
                row = open_batch(engine, kind="judge", owner_id=prep.run_id)
                assert row is not None and row.id == row_id
                row = wait_for(engine, client, row, wait_s=wait_s, poll_s=poll_s)
        if row is not None and row.status not in FINAL:
            _finish(engine, prep.run_id, "batch", f"waiting for provider batch {row.batch_id} ({row.status})")
            return BatchState(prep.run_id, row.id, row.batch_id, row.status, submitted, row.counts,
                              client_cpu_s=time.process_time() - cpu0)
        results = collect(engine, client, row) if row is not None else {}
        factor = price_factor(req.judge)
        replay = ReplayGateway(engine, req.judge, results, factor)
        summary = asyncio.run(judge_version(engine, replace(req, max_retries=0, new_run=False), gateway=replay))
        if row is not None:
            mark_ingested(engine, row.id)  # type: ignore[arg-type]
        return BatchState(summary.judge_run_id, row.id if row else None, row.batch_id if row else None,
                          "stored" if row is not None else "nothing to submit", submitted,
                          row.counts if row else None, summary, client_cpu_s=time.process_time() - cpu0)
    finally:
        client.close()
