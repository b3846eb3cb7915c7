"""The judge: Instructor over the gateway, one call per criterion, never a default score.

Instructor drives the structured output (tool call, JSON object or JSON schema), validates the answer against
the criterion's response model and re-asks with the validation error when it does not fit (`max_retries`).
Its transport is the gateway (`Gateway.complete`), so every judge call gets the same concurrency limits,
provider retries, cache, cost and latency accounting as candidate runs. Whatever still fails becomes an
*unscored* outcome with its reason in words (parse failure, refusal, timeout, provider error).
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import instructor
from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from gateway.client import CallResult, Gateway, ModelConfig
from judging.prompt import Template, load_template, render_prompt
from judging.rubric import Criterion, Rubric
from judging.verdicts import PAIRWISE_SCORES, to_verdict, verdict_model

# Instructor logs every failed attempt at ERROR level; the outcome already says what happened.
logging.getLogger("instructor").addHandler(logging.NullHandler())
logging.getLogger("instructor").propagate = False

STRUCTURED_MODES = {
    "tools": instructor.Mode.TOOLS,  # function calling (OpenAI, most hosted providers)
    "json": instructor.Mode.JSON,  # response_format json_object, schema in the prompt
    "json_schema": instructor.Mode.JSON_SCHEMA,  # response_format json_schema (OpenAI structured outputs)
    # json_object with the schema attached: llama.cpp's servers (llama-cpp-python, llama-server) turn it into a
    # grammar, so a small local model cannot produce anything but a well-formed verdict.
    "json_object_schema": instructor.Mode.JSON,
}
# Phrases a judge uses when it declines to judge; only consulted when no attempt produced any structure.
_DECLINES = ("i'm sorry", "i am sorry", "i cannot", "i can't", "i can not", "i won't", "i will not",
             "i'm unable", "i am unable", "i'm not able", "as an ai", "sorry, but")

# The calls made for the judgment being computed in this task (every attempt, including re-asks).
_LEDGER: ContextVar[list[CallResult] | None] = ContextVar("judge_ledger", default=None)
# The JSON schema of the response model being asked for (attached to response_format in json_object_schema mode).
_SCHEMA: ContextVar[dict[str, Any] | None] = ContextVar("judge_schema", default=None)
# The template's system message, before Instructor's JSON mode appended the schema to it (json_object_schema).
_SYSTEM: ContextVar[str | None] = ContextVar("judge_system", default=None)


class JudgeCallError(Exception):
    """The gateway could not get an answer (after its own bounded retries)."""

    def __init__(self, kind: str | None, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


class JudgeRefusal(Exception):
    """The provider says the judge refused (a `refusal` message field or a content filter stop)."""


@dataclass
class Outcome:
    """One judgment before it is stored: a checked verdict, or unscored with a reason; and what it cost."""

    status: str  # scored | unscored
    verdict: str | None = None
    score: float | None = None
    rationale: str | None = None
    unscored_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    spend_usd: float = 0.0  # what was spent now (cached answers cost nothing again)
    request_hash: str | None = None
    calls: int = 0
    auth_error: str | None = None  # the provider refused the key: no verdict of this judge can be had


def _sum(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _account(outcome: Outcome, calls: list[CallResult]) -> Outcome:
    outcome.calls = len(calls)
    outcome.latency_ms = _sum([c.latency_ms for c in calls])
    outcome.prompt_tokens = _sum([c.prompt_tokens for c in calls])
    outcome.completion_tokens = _sum([c.completion_tokens for c in calls])
    outcome.cost_usd = _sum([c.cost_usd for c in calls])
    outcome.spend_usd = sum(c.cost_usd or 0.0 for c in calls if not c.cached)
    outcome.request_hash = calls[0].request_hash if calls else None
    outcome.auth_error = next((c.error for c in calls if c.error_kind == "auth"), None)
    if calls:
        outcome.details.setdefault("request_hashes", [c.request_hash for c in calls])
        outcome.details.setdefault("cached", all(c.cached for c in calls))
    return outcome


def _completion_text(completion: Any) -> str | None:
    try:
        return completion.choices[0].message.content
    except (AttributeError, IndexError):
        return None


def _has_structure(completion: Any) -> bool:
    """Whether an answer attempted a verdict at all (a tool call, or something JSON-like in the text)."""
    try:
        message = completion.choices[0].message
    except (AttributeError, IndexError):
        return False
    return bool(message.tool_calls) or "{" in (message.content or "")


def _short(text: str, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _validation_summary(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:3])
    return _short(str(exc), 200)


def unscored_reason(exc: BaseException, max_retries: int) -> tuple[str, dict[str, Any]]:
    """The reason in words, and details worth keeping, for a call that produced no valid verdict."""
    details: dict[str, Any] = {}
    cause: BaseException | None = exc
    attempts = max_retries + 1
    if isinstance(exc, InstructorRetryException):
        attempts = exc.n_attempts or attempts
        failures = [_validation_summary(f.exception) for f in (exc.failed_attempts or [])]
        if failures:
            details["attempt_errors"] = failures
        raws = [_completion_text(f.completion) for f in (exc.failed_attempts or [])]
        if any(raws):
            details["raw"] = _short(next(r for r in reversed(raws) if r), 2000)
        cause = exc.__cause__ or exc
    if isinstance(cause, JudgeCallError):
        if cause.kind == "timeout":
            return f"timeout: {cause.message}", details
        return f"provider error: {cause.message}", details
    if isinstance(cause, JudgeRefusal):
        return f"refusal: {_short(str(cause))}", details
    if isinstance(exc, IncompleteOutputException):
        return "parse failure: the judge's answer was cut off at max_tokens (finish_reason length)", details
    if isinstance(exc, InstructorRetryException):
        raws = [_completion_text(f.completion) for f in (exc.failed_attempts or [])]
        no_structure = bool(exc.failed_attempts) and all(
            not _has_structure(f.completion) for f in (exc.failed_attempts or [])
        )
        last = next((r for r in reversed(raws) if r), None)
        if no_structure and last and last.strip().lower().startswith(_DECLINES):
            return f"refusal: the judge declined on all {attempts} attempts: {_short(last, 200)!r}", details
        last_error = details.get("attempt_errors", [_short(str(cause), 200)])[-1]
        return f"parse failure after {attempts} attempts: {last_error}", details
    return f"judge error: {type(exc).__name__}: {_short(str(exc), 200)}", details


# On a llama.cpp server the grammar built from the schema bounds the rationale: a CPU generates some 10–25 tokens
# a second, and a small model otherwise writes on, copying the level descriptions.
GRAMMAR_RATIONALE_MAX_CHARS = 160


@lru_cache(maxsize=256)
def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The schema attached to `response_format` for llama.cpp (json_object_schema): the verdict first, then a
    bounded rationale. A small local model's reasoning does not lead to its verdict: written first, it copied a
    level's description and then gave another level (2 of 6 on the demo data); written after the verdict, it
    says why that verdict."""
    schema = model.model_json_schema()
    props = schema.get("properties") or {}
    if "reasoning" in props and "verdict" in props:
        props["reasoning"]["maxLength"] = GRAMMAR_RATIONALE_MAX_CHARS
        schema["properties"] = {"verdict": props["verdict"], "reasoning": props["reasoning"],
                                **{k: v for k, v in props.items() if k not in ("verdict", "reasoning")}}
        schema["required"] = ["verdict", "reasoning"] + [k for k in schema.get("required", [])
                                                         if k not in ("verdict", "reasoning")]
    return schema


class Judge:
    """Ask one judge model for verdicts, through the gateway, with Instructor's validation and re-asks."""

    def __init__(
        self,
        gateway: Gateway,
        cfg: ModelConfig,
        *,
        structured: str = "tools",
        max_retries: int = 2,
        templates: dict[str, Template] | None = None,
    ) -> None:
        if structured not in STRUCTURED_MODES:
            raise ValueError(f"structured output {structured!r} is not one of {', '.join(STRUCTURED_MODES)}")
        self.gateway, self.cfg = gateway, cfg
        self.structured, self.max_retries = structured, max_retries
        self.templates = templates or {}
        self._create = instructor.patch(create=self._call, mode=STRUCTURED_MODES[structured])

    def template(self, mode: str) -> Template:
        if mode not in self.templates:
            self.templates[mode] = load_template(mode)
        return self.templates[mode]

    async def _call(self, **kwargs: Any) -> ChatCompletion:
        """Instructor's transport: one gateway call, recorded in the ledger; raises on failure or refusal."""
        messages = kwargs.pop("messages")
        kwargs.pop("model", None)
        schema = _SCHEMA.get()
        if schema is not None and (kwargs.get("response_format") or {}).get("type") == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
            # llama.cpp turns the schema into a grammar, so the model cannot answer in another shape; the schema's
            # text that Instructor appended to the system message (~300 tokens, field descriptions that a small
            # model copied into its rationale) is left out: the prompt is the template's own.
            system = _SYSTEM.get()
            if system is not None and messages and messages[0].get("role") == "system":
                messages = [{**messages[0], "content": system}, *messages[1:]]
        result = await self.gateway.complete(self.cfg, messages, **kwargs)
        ledger = _LEDGER.get()
        if ledger is not None:
            ledger.append(result)
        if result.error is not None or result.response is None:
            raise JudgeCallError(result.error_kind, result.error or "no answer")
        choice = (result.response.get("choices") or [{}])[0] or {}
        message = choice.get("message") or {}
        if message.get("refusal"):
            raise JudgeRefusal(message["refusal"])
        if choice.get("finish_reason") == "content_filter":
            raise JudgeRefusal(f"stopped by the provider's content filter: {message.get('content') or ''}".strip())
        return ChatCompletion.model_validate(result.response)

    async def _ask(self, messages: list[dict[str, Any]], model: type[BaseModel]) -> tuple[BaseModel | None, list[CallResult], BaseException | None]:
        calls: list[CallResult] = []
        token = _LEDGER.set(calls)
        schema_token = _SCHEMA.set(_schema_of(model) if self.structured == "json_object_schema" else None)
        first = messages[0] if messages else {}
        system_token = _SYSTEM.set(first.get("content") if first.get("role") == "system" else None)
        try:
            parsed = await self._create(response_model=model, messages=messages, max_retries=self.max_retries,
                                        strict=False)
            return parsed, calls, None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an unscored judgment with its reason
            return None, calls, exc
        finally:
            _LEDGER.reset(token)
            _SCHEMA.reset(schema_token)
            _SYSTEM.reset(system_token)

    async def judge(
        self,
        rubric: Rubric,
        criterion: Criterion,
        *,
        conversation: list[dict[str, Any]],
        output: str,
        reference: str | None = None,
    ) -> Outcome:
        """A pointwise judgment of one output on one criterion."""
        prompt = render_prompt(rubric, criterion, messages=conversation, output=output, reference=reference,
                               template=self.template("pointwise"))
        t0 = time.perf_counter()
        parsed, calls, exc = await self._ask(prompt.messages, verdict_model(criterion))
        outcome = self._outcome(criterion, parsed, exc, pairwise=False)
        if prompt.clipped:  # the judge saw only part of these texts: said on the judgment
            outcome.details["clipped_chars"] = dict(prompt.clipped)
        outcome.details["wall_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return _account(outcome, calls)

    def _outcome(self, criterion: Criterion, parsed: BaseModel | None, exc: BaseException | None, *,
                 pairwise: bool) -> Outcome:
        if parsed is None:
            reason, details = unscored_reason(exc or RuntimeError("no answer"), self.max_retries)
            return Outcome("unscored", unscored_reason=reason, details=details)
        try:
            v = to_verdict(criterion, parsed, pairwise=pairwise)
        except ValueError as err:  # the schema let through what the rubric does not allow
            return Outcome("unscored", unscored_reason=f"parse failure: invalid verdict after parsing: {err}",
                           details={"raw": _short(parsed.model_dump_json(), 2000)})
        return Outcome("scored", verdict=v.verdict, score=v.score, rationale=v.rationale)

    async def judge_pair(
        self,
        rubric: Rubric,
        criterion: Criterion,
        *,
        conversation: list[dict[str, Any]],
        output_a: str,
        output_b: str,
        reference: str | None = None,
    ) -> Outcome:
        """A pairwise judgment of A against B, asked in both orders; orders that disagree make a tie."""
        template = self.template("pairwise")
        model = verdict_model(criterion, pairwise=True)
        t0 = time.perf_counter()

        async def ask(first: str) -> tuple[Outcome, list[CallResult]]:
            one, two = (output_a, output_b) if first == "A" else (output_b, output_a)
            prompt = render_prompt(rubric, criterion, messages=conversation, output=one, output_b=two,
                                   reference=reference, mode="pairwise", template=template)
            parsed, calls, exc = await self._ask(prompt.messages, model)
            return self._outcome(criterion, parsed, exc, pairwise=True), calls

        (ab, ab_calls), (ba, ba_calls) = await asyncio.gather(ask("A"), ask("B"))
        orders = []
        for first, o in (("A", ab), ("B", ba)):
            entry: dict[str, Any] = {"first": first, "status": o.status}
            if o.status == "scored":
                assert o.verdict is not None
                entry["position_verdict"] = o.verdict  # "1", "2" or "tie": what the judge said about positions
                entry["verdict"] = to_pair_verdict(o.verdict, first)
                entry["rationale"] = o.rationale
            else:
                entry["unscored_reason"] = o.unscored_reason
                entry.update({k: v for k, v in o.details.items() if k in ("raw", "attempt_errors")})
            orders.append(entry)
        details: dict[str, Any] = {"orders": orders, "wall_ms": round((time.perf_counter() - t0) * 1000, 1)}
        if ab.status != "scored" or ba.status != "scored":
            failed = [e for e in orders if e["status"] != "scored"]
            reason = "; ".join(f"{e['first']} shown first: {e['unscored_reason']}" for e in failed)
            outcome = Outcome("unscored", unscored_reason=reason, details=details)
        else:
            verdict, details["disagreement"] = combine_orders(orders[0]["verdict"], orders[1]["verdict"])
            outcome = Outcome(
                "scored",
                verdict=verdict,
                score=PAIRWISE_SCORES[verdict],
                rationale=f"[A shown first] {ab.rationale}\n\n[B shown first] {ba.rationale}",
                details=details,
            )
        return _account(outcome, ab_calls + ba_calls)


def to_pair_verdict(position_verdict: str, first: str) -> str:
    """"1"/"2"/"tie" said with `first` ("A" or "B") shown as response 1 → "A"/"B"/"tie"."""
    if position_verdict == "tie":
        return "tie"
    shown_first = position_verdict == "1"
    if first == "A":
        return "A" if shown_first else "B"
    return "B" if shown_first else "A"


def combine_orders(first_a: str, first_b: str) -> tuple[str, bool]:
    """The pairwise verdict from the two orders' (already mapped) verdicts, and whether they disagreed."""
    return (first_a, False) if first_a == first_b else ("tie", True)
