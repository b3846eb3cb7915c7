"""Check criteria: exact, local tests of an output (`type: check` in a rubric), computed without any judge call.

A check criterion is a binary criterion whose verdict is computed, not judged: pass when every test under its
`check:` key holds, fail when one does not. The vocabulary is small and runs no code:

- `regex` / `not_regex`: a pattern that must (must not) be found anywhere in the output (Python `regex`
  syntax, `ignore_case` applies). Patterns run with the `regex` module's timeout (`REGEX_TIMEOUT_S`) on at most
  `REGEX_MAX_CHARS` characters, so a catastrophically backtracking pattern or a huge output makes the judgment
  *unscored* with that reason instead of hanging the run.
- `contains` / `not_contains`: a string, a list (all of them), or `{any: [...]}` / `{all: [...]}`.
  `not_contains` passes when the output does not contain any (`any`, the default for a list) or not all (`all`).
- `json_valid`: the whole output (surrounding whitespace aside) parses as JSON.
- `json_schema`: the output parses as JSON and validates against the schema (inline, or a file beside the
  rubric whose content enters the rubric version).
- `max_chars` / `min_chars`: the output's length in characters (Unicode code points).
- `equals_reference`: the output equals the item's reference answer after normalisation (`normalize_answer`):
  Unicode NFKC, case-folded, whitespace runs collapsed to one space, surrounding whitespace and one final
  full stop removed. Items without a reference are skipped, as for `uses_reference` criteria.
- `max_latency_ms` / `max_cost`: the output's recorded latency (ms) / cost (USD); an output without the
  figure (an import that did not record it) is unscored with that reason.

Judgments of check criteria are stored under the judge name `check` with `CHECKS_VERSION` as their template
hash, beside the model-graded judgments of the same judge run; they need no calibration because they are exact.
"""
from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from storage.hashing import content_hash

CHECK_JUDGE = "check"
REGEX_TIMEOUT_S = 0.25
REGEX_MAX_CHARS = 200_000
# Bump when the meaning of any test changes: it is the template hash of every check judgment.
CHECKS_VERSION = content_hash({"checks": "ownbench-checks", "version": 1})
TESTS = ("regex", "not_regex", "contains", "not_contains", "json_valid", "json_schema", "max_chars", "min_chars",
         "equals_reference", "max_latency_ms", "max_cost")


class AnyAll(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    any: list[str] | None = Field(default=None, min_length=1)
    all: list[str] | None = Field(default=None, min_length=1)


Needles = str | list[str] | AnyAll


class CheckSpec(BaseModel):
    """The tests of one check criterion (every one given must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    regex: str | None = None
    not_regex: str | None = None
    ignore_case: bool = False
    contains: Needles | None = None
    not_contains: Needles | None = None
    json_valid: StrictBool | None = None
    json_schema: dict[str, Any] | str | None = None
    max_chars: int | None = Field(default=None, ge=0)
    min_chars: int | None = Field(default=None, ge=0)
    equals_reference: StrictBool | None = None
    max_latency_ms: float | None = Field(default=None, ge=0)
    max_cost: float | None = Field(default=None, ge=0)
    # The schema a `json_schema: file.json` names, read when the rubric is loaded (part of the rubric version).
    schema_from_file: dict[str, Any] | None = None

    def tests(self) -> list[str]:
        return [t for t in TESTS if getattr(self, t) not in (None, False)]

    @property
    def schema_doc(self) -> dict[str, Any] | None:
        return self.json_schema if isinstance(self.json_schema, dict) else self.schema_from_file


def normalize_answer(text: str) -> str:
    """The normalisation `equals_reference` compares under (see the module docstring)."""
    t = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return t[:-1].rstrip() if t.endswith(".") else t


def _needles(value: Needles, *, default: Literal["any", "all"]) -> tuple[str, list[str]]:
    if isinstance(value, str):
        return "all", [value]
    if isinstance(value, list):
        return default, value
    return ("any", list(value.any)) if value.any else ("all", list(value.all or []))


@lru_cache(maxsize=512)
def compile_pattern(pattern: str, ignore_case: bool) -> Any:
    import regex

    return regex.compile(pattern, regex.IGNORECASE if ignore_case else 0)


@dataclass
class CheckResult:
    status: str  # scored | unscored
    verdict: str | None
    rationale: str | None
    unscored_reason: str | None
    details: dict[str, Any] = field(default_factory=dict)


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def run_check(spec: CheckSpec, *, text: str, reference: str | None = None, latency_ms: float | None = None,
              cost_usd: float | None = None) -> CheckResult:
    """Every test of `spec` on one output: pass, fail (with which test failed), or unscored (with why)."""
    results: list[tuple[str, bool | None, str]] = []  # test, passed (None: could not be evaluated), words

    def add(test: str, ok: bool | None, words: str) -> None:
        results.append((test, ok, words))

    for test in ("regex", "not_regex"):
        pattern = getattr(spec, test)
        if pattern is None:
            continue
        if len(text) > REGEX_MAX_CHARS:
            add(test, None, f"output has {len(text):,} characters, over the {REGEX_MAX_CHARS:,} a pattern may scan")
            continue
        try:
            found = compile_pattern(pattern, spec.ignore_case).search(text, timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            add(test, None, f"pattern {_short(pattern)!r} took over {REGEX_TIMEOUT_S} s (catastrophic backtracking?)")
            continue
        if test == "regex":
            add(test, found is not None, f"pattern {_short(pattern)!r} " + ("found" if found else "not found"))
        else:
            add(test, found is None, f"pattern {_short(pattern)!r} " + (f"found: {_short(found.group(0))!r}"
                                                                        if found else "not found"))
    hay = text.casefold() if spec.ignore_case else text
    for test in ("contains", "not_contains"):
        value = getattr(spec, test)
        if value is None:
            continue
        mode, needles = _needles(value, default="all" if test == "contains" else "any")
        present = [n for n in needles if (n.casefold() if spec.ignore_case else n) in hay]
        absent = [n for n in needles if n not in present]
        if test == "contains":
            ok = bool(present) if mode == "any" else not absent
            words = f"contains {mode} of {len(needles)}: " + (
                f"missing {', '.join(repr(_short(n)) for n in absent)}" if absent else "all present")
        else:
            ok = not present if mode == "any" else bool(absent)
            words = f"must not contain {mode} of {len(needles)}: " + (
                f"found {', '.join(repr(_short(n)) for n in present)}" if present else "none found")
        add(test, ok, words)
    parsed: Any = None
    parses = None
    if spec.json_valid or spec.json_schema is not None:
        try:
            parsed, parses = json.loads(text.strip()), True
        except ValueError as exc:
            parses, why = False, str(exc)
        if spec.json_valid:
            add("json_valid", parses, "valid JSON" if parses else f"not JSON ({_short(why, 80)})")
    if spec.json_schema is not None:
        if not parses:
            add("json_schema", False, "not JSON, so it cannot match the schema")
        else:
            error = schema_error(spec.schema_doc or {}, parsed)
            add("json_schema", error is None, "matches the schema" if error is None else f"schema: {error}")
    if spec.max_chars is not None:
        add("max_chars", len(text) <= spec.max_chars, f"{len(text)} characters (at most {spec.max_chars})")
    if spec.min_chars is not None:
        add("min_chars", len(text) >= spec.min_chars, f"{len(text)} characters (at least {spec.min_chars})")
    if spec.equals_reference:
        if reference is None:
            add("equals_reference", None, "the item has no reference answer")
        else:
            same = normalize_answer(text) == normalize_answer(reference)
            add("equals_reference", same, "equals the reference (normalised)" if same else
                "differs from the reference (normalised)")
    if spec.max_latency_ms is not None:
        if latency_ms is None:
            add("max_latency_ms", None, "the output has no recorded latency")
        else:
            add("max_latency_ms", latency_ms <= spec.max_latency_ms,
                f"latency {latency_ms:.0f} ms (at most {spec.max_latency_ms:g})")
    if spec.max_cost is not None:
        if cost_usd is None:
            add("max_cost", None, "the output has no recorded cost")
        else:
            add("max_cost", cost_usd <= spec.max_cost, f"cost ${cost_usd:.6f} (at most ${spec.max_cost:g})")

    details = {"tests": {t: ok for t, ok, _ in results}}
    rationale = "; ".join(f"{t}: {'pass' if ok else 'fail' if ok is False else 'not evaluated'} ({w})"
                          for t, ok, w in results)
    if any(ok is False for _, ok, _ in results):
        return CheckResult("scored", "fail", rationale, None, details)
    unknown = [f"{t}: {w}" for t, ok, w in results if ok is None]
    if unknown:
        return CheckResult("unscored", None, None, "check not evaluated: " + "; ".join(unknown), details)
    return CheckResult("scored", "pass", rationale, None, details)


def schema_error(schema: dict[str, Any], instance: Any) -> str | None:
    """The first way `instance` breaks `schema` in words (with where), or None when it validates."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    err = jsonschema.exceptions.best_match(cls(schema).iter_errors(instance))
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"at {where}: {_short(err.message, 120)}"


def pattern_problem(pattern: str, ignore_case: bool) -> str | None:
    """Why a pattern does not compile, or None."""
    import regex

    try:
        compile_pattern(pattern, ignore_case)
    except regex.error as exc:
        return str(exc)
    return None


def schema_problem(schema: Any) -> str | None:
    """Why a JSON schema is not a valid schema, or None."""
    import jsonschema

    if not isinstance(schema, dict):
        return f"a JSON schema is an object, got {type(schema).__name__}"
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        return f"not a valid JSON schema: {_short(exc.message, 160)}"
    return None
