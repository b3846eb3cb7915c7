"""Response models the judge must fill in, built from the rubric, one per criterion (and mode).

Reasoning comes before the verdict (field order is the order the model writes them in), and the verdict is
constrained in the schema itself (a Literal, i.e. an enum), so that providers with constrained decoding cannot
produce anything else. After parsing, the verdict is checked once more against the rubric (`to_verdict`): the
rubric, not the schema sent over the wire, is the authority on what a valid verdict is.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import instructor
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from judging.rubric import Criterion

PAIRWISE_CHOICES = ("1", "2", "tie")


class _VerdictBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("reasoning", check_fields=False)
    @classmethod
    def _reasoning_first(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("write the reasoning (what the response does, with evidence) before the verdict")
        return value


def _verdict_type(criterion: Criterion) -> tuple[Any, str]:
    if criterion.type == "binary":
        return Literal["pass", "fail"], '"pass" if the response meets the criterion, otherwise "fail"'
    if criterion.type == "ordinal":
        assert criterion.min is not None and criterion.max is not None
        levels = tuple(range(criterion.min, criterion.max + 1))
        meaning = "; ".join(f"{k}: {v}" for k, v in sorted((criterion.levels or {}).items(), key=lambda kv: int(kv[0])))
        return Literal[levels], f"an integer level from {criterion.min} to {criterion.max} ({meaning})"  # type: ignore[valid-type]
    labels = tuple(criterion.labels or ())
    return Literal[labels], f"exactly one of: {', '.join(labels)}"  # type: ignore[valid-type]


@lru_cache(maxsize=256)
def _build(criterion_json: str, pairwise: bool) -> type[BaseModel]:
    criterion = Criterion.model_validate_json(criterion_json)
    if pairwise:
        vtype: Any = Literal[PAIRWISE_CHOICES]  # type: ignore[valid-type]
        vdesc = '"1" if response 1 is better on this criterion, "2" if response 2 is better, "tie" if neither is'
        rdesc = "A comparison of the two responses on this criterion, with evidence from each, written before the verdict."
        name = f"PairVerdict_{criterion.id}"
        doc = f"Which of two responses is better on criterion `{criterion.id}`: reasoning first, then the verdict."
    else:
        vtype, vdesc = _verdict_type(criterion)
        rdesc = "What the response does with respect to this criterion, with evidence quoted from it, written before the verdict."
        name = f"Verdict_{criterion.id}"
        doc = f"Your verdict on criterion `{criterion.id}`: reasoning first, then the verdict."
    model = create_model(
        name,
        __base__=_VerdictBase,
        __doc__=doc,
        reasoning=(str, Field(..., description=rdesc)),
        verdict=(vtype, Field(..., description=vdesc)),
    )
    # Wrapped once here: Instructor would otherwise derive a new schema class (and its JSON schema) per call.
    return instructor.openai_schema(model)


def verdict_model(criterion: Criterion, *, pairwise: bool = False) -> type[BaseModel]:
    """The response model for one criterion (cached: the same criterion gets the same class)."""
    return _build(criterion.model_dump_json(), pairwise)


@dataclass(frozen=True)
class Verdict:
    """A checked verdict in its stored encoding (see the verdict contract)."""

    verdict: str
    score: float | None
    rationale: str


def to_verdict(criterion: Criterion, parsed: BaseModel, *, pairwise: bool = False) -> Verdict:
    """Re-check a parsed response against the rubric and encode it; ValueError if it is not a valid verdict."""
    raw = getattr(parsed, "verdict", None)
    rationale = str(getattr(parsed, "reasoning", "") or "").strip()
    if not rationale:
        raise ValueError("the judge gave no reasoning")
    if pairwise:
        if raw not in PAIRWISE_CHOICES:
            raise ValueError(f"pairwise verdict {raw!r} is not one of {', '.join(PAIRWISE_CHOICES)}")
        return Verdict(str(raw), None, rationale)  # mapped to A/B/tie by the caller, who knows the order
    value = criterion.normalize(raw)
    return Verdict(value, criterion.score_of(value), rationale)


PAIRWISE_SCORES = {"A": 1.0, "B": 0.0, "tie": 0.5}
