"""Runs under injected faults, through both gateway paths to the loopback server over real HTTP.

Faults are drawn per request (20 %: 429 with Retry-After, 500, dropped connection, malformed JSON, hang past
the timeout). Every item must end as an output or an error row with its reason, and an item ends in error
exactly when each of its attempts drew a fault. Tokens and cost must add up to what the server served."""
from __future__ import annotations

import collections
import random
import threading

import pytest
from sqlmodel import Session, select

from gateway.candidates import CandidateSpec
from gateway.client import Gateway
from gateway.runs import run_candidate, run_totals
from storage.models import Item, Output
from tests.conftest_loopback import freeze_items
from tests.loopback import LoopbackServer

KINDS = ["429", "500", "drop", "malformed", "timeout"]


@pytest.mark.parametrize("path", ["direct", "litellm"])
def test_twenty_percent_faults_every_item_ends_with_output_or_reason(
    path: str, sqlite_engine, loopback: LoopbackServer
) -> None:
    n, attempts = 60, 2
    version_id, _ = freeze_items(sqlite_engine, n)
    rng = random.Random(7)
    lock = threading.Lock()
    drawn: dict[str, list[str | None]] = collections.defaultdict(list)  # prompt → outcome of each attempt

    def script(body: dict) -> dict | None:
        prompt = body["messages"][-1]["content"]
        with lock:
            fault = rng.choice(KINDS) if rng.random() < 0.2 else None
            drawn[prompt].append(fault)
        if fault is None:
            return None
        return {"fault": fault, "retry_after": 0.05, "hang_s": 3}

    loopback.script = script
    spec = CandidateSpec(name="loop", model="openai/loop-model", api_base=loopback.base_url, concurrency=8,
                         timeout_s=0.5, max_attempts=attempts, input_price_per_mtok=3.0, output_price_per_mtok=15.0)
    gw = Gateway(sqlite_engine, direct=(path == "direct"), backoff_base_s=0.01, backoff_max_s=0.05)
    summary = run_candidate(sqlite_engine, spec, version_id, gateway=gw)
    assert summary.status == "done"

    with Session(sqlite_engine) as s:
        rows = s.exec(select(Output, Item).join(Item, Item.id == Output.item_id)
                      .where(Output.run_id == summary.run_id)).all()
    assert len(rows) == n  # every item has its row
    expected_errors = {p for p, outcomes in drawn.items() if all(o is not None for o in outcomes)}
    assert all(len(v) <= attempts for v in drawn.values())
    assert expected_errors, "with this seed some items fail on every attempt"
    for out, item in rows:
        prompt = item.messages[-1]["content"]
        if prompt in expected_errors:
            last = drawn[prompt][-1]
            kind = {"429": "rate_limit", "500": "server", "drop": "connection", "malformed": "malformed",
                    "timeout": "timeout"}[last]  # type: ignore[index]
            assert out.text is None and out.error is not None and out.error.startswith(kind), out.error
            assert "openai/loop-model" in out.error and f"after {attempts} attempts" in out.error
            assert out.cost_usd is None and out.prompt_tokens is None
        else:
            assert out.error is None and out.text == f"echo: {prompt}"
            assert out.attempts == len(drawn[prompt])
    assert summary.status_reason is not None and f"{len(expected_errors)} of {n}" in summary.status_reason

    # Tokens and cost add up to the server's usage numbers and the configured prices.
    served = loopback.usage_totals()
    totals = run_totals(sqlite_engine, summary.run_id)
    assert totals["outputs"] == len(loopback.served) == n - len(expected_errors)
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (served["prompt_tokens"],
                                                                      served["completion_tokens"])
    assert totals["spend_usd"] == pytest.approx(
        (served["prompt_tokens"] * 3.0 + served["completion_tokens"] * 15.0) / 1e6)
    assert summary.progress.errors == len(expected_errors)

    # Running again makes a new run: answers come from the cache, only the failed items are called again.
    loopback.script = None
    before = loopback.request_count
    again = run_candidate(sqlite_engine, spec, version_id, gateway=gw)
    assert again.run_id != summary.run_id and again.status == "done" and again.status_reason is None
    assert loopback.request_count - before == len(expected_errors)
    assert again.progress.cached == n - len(expected_errors)
    assert run_totals(sqlite_engine, again.run_id)["outputs"] == n


def test_resume_retries_error_rows_in_place(sqlite_engine, loopback: LoopbackServer) -> None:
    version_id, _ = freeze_items(sqlite_engine, 10)
    failing = {f"question number {i}" for i in (2, 5, 7)}
    loopback.script = lambda body: {"fault": "500"} if body["messages"][-1]["content"] in failing else None
    spec = CandidateSpec(name="loop", model="openai/loop-model", api_base=loopback.base_url, max_attempts=1)
    gw = Gateway(sqlite_engine, backoff_base_s=0.01)
    first = run_candidate(sqlite_engine, spec, version_id, gateway=gw)
    assert run_totals(sqlite_engine, first.run_id)["errors"] == 3
    with Session(sqlite_engine) as s:  # as if the process had been killed right after writing those rows
        from storage.models import Run

        run = s.get(Run, first.run_id)
        run.status = "running"
        s.add(run)
        s.commit()
    loopback.script = None
    before = loopback.request_count
    second = run_candidate(sqlite_engine, spec, version_id, gateway=gw)
    assert second.run_id == first.run_id and second.resumed and second.status_reason is None
    assert loopback.request_count - before == 3  # only the error rows were called again
    assert sorted(b["messages"][-1]["content"] for b in loopback.bodies[before:]) == sorted(failing)
    totals = run_totals(sqlite_engine, first.run_id)
    assert (totals["outputs"], totals["errors"]) == (10, 0)
    with Session(sqlite_engine) as s:
        assert len(s.exec(select(Output).where(Output.run_id == first.run_id)).all()) == 10
