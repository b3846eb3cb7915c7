"""Shared helpers for the judging tests (no tests here).

The judges in these tests are SIMULATED: the loopback server answers with scripted verdicts over real HTTP,
so that each failure path of the judge can be provoked on purpose. No verdict here is a real model's.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from sqlmodel import Session

from tests.conftest import SHARED_DATA

RUBRICS = Path(__file__).resolve().parents[1] / "rubrics"


def tool_name(body: dict) -> str | None:
    tools = body.get("tools") or []
    return tools[0]["function"]["name"] if tools else None


def verdict_reply(body: dict, args: dict | str) -> dict:
    """A reply carrying `args` the way the request asked for it: a tool call, or JSON content."""
    raw = args if isinstance(args, str) else json.dumps(args)
    name = tool_name(body)
    if name:
        return {"tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": raw}}]}
    return {"content": raw}


def scripted(answers: list[dict | str]) -> Callable[[dict], dict]:
    """Answer each request with the next of `answers` (the last one repeats)."""
    state = {"i": 0}

    def script(body: dict) -> dict:
        i = min(state["i"], len(answers) - 1)
        state["i"] += 1
        return verdict_reply(body, answers[i])

    return script


def block_text(body: dict, name: str) -> str | None:
    """The text inside the nonce-tagged block `name` of the judge's user message."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    m = re.search(rf"<{name}-([0-9a-f]{{16}})>\n(.*?)\n</{name}-\1>", user, re.S)
    return m.group(2) if m else None


def prefers(word: str) -> Callable[[dict], dict]:
    """A simulated pairwise judge that prefers the response containing `word`, whichever position it is in."""
    def script(body: dict) -> dict:
        one, two = block_text(body, "response-1") or "", block_text(body, "response-2") or ""
        verdict = "1" if word in one and word not in two else "2" if word in two and word not in one else "tie"
        return verdict_reply(body, {"reasoning": f"the one with {word!r}", "verdict": verdict})
    return script


def first_position_bias(body: dict) -> dict:
    """A simulated pairwise judge that always prefers whatever is shown first."""
    return verdict_reply(body, {"reasoning": "the first one", "verdict": "1"})


def arena_items(n: int) -> list[dict[str, Any]]:
    """Real Chatbot Arena prompts with GPT-4 reference answers (lm-sys/FastChat arena_hard_1k, Apache-2.0)."""
    base = SHARED_DATA / "arena_hard_1k"
    refs = {}
    for line in (base / "reference_answer" / "gpt-4.jsonl").read_text().splitlines():
        r = json.loads(line)
        refs[r["question_id"]] = r["choices"][0]["turns"][0]
    out = []
    for line in (base / "question.jsonl").read_text().splitlines():
        q = json.loads(line)
        out.append({"key": str(q["question_id"]), "prompt": q["turns"][0], "reference": refs.get(q["question_id"])})
        if len(out) == n:
            break
    return out


def arena_answers(model: str) -> dict[str, str]:
    path = SHARED_DATA / "arena_hard_1k" / "model_answer" / f"{model}.jsonl"
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out[str(r["question_id"])] = r["choices"][0]["turns"][0]
    return out


def seed_version(session: Session, n_items: int = 4, candidates: tuple[str, ...] = ("gpt-4", "claude-v1"),
                 *, missing: dict[str, list[int]] | None = None) -> tuple[int, dict[str, int]]:
    """A frozen version of real prompts and a done run per candidate with its real recorded answers.

    `missing` lists, per candidate, item positions whose output failed (no text). Returns (version id,
    {candidate name: run id})."""
    from evalsets.freeze import ItemDraft, freeze
    from storage.models import Candidate, Output, Run

    items = arena_items(n_items)
    version = freeze(session, "arena", [
        ItemDraft(key=i["key"], messages=[{"role": "user", "content": i["prompt"]}], reference=i["reference"])
        for i in items
    ])
    from evalsets.freeze import items_of

    rows = items_of(session, version)
    runs = {}
    for name in candidates:
        cand = Candidate(name=name, model=f"openai/{name}", config_hash=name.ljust(64, "0")[:64])
        session.add(cand)
        session.flush()
        run = Run(candidate_id=cand.id, version_id=version.id, status="done")  # type: ignore[arg-type]
        session.add(run)
        session.flush()
        answers = arena_answers(name)
        for pos, item in enumerate(rows):
            failed = pos in (missing or {}).get(name, [])
            session.add(Output(run_id=run.id, item_id=item.id, text=None if failed else answers[item.item_key],  # type: ignore[arg-type]
                               error="server error after 4 attempts" if failed else None))
        runs[name] = run.id
    session.flush()
    return version.id, runs  # type: ignore[return-value]
