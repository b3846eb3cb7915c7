"""Rubrics: YAML files validated against `rubrics/rubric.schema.json` and a pydantic model, versioned by hash.

Every problem found in a rubric names the file, the line and the key (`criteria[1].levels`) and says what to do,
so that the command line and the app's rubric editor can point at the exact spot. A rubric version is the
SHA-256 of its canonical content (the validated spec and the text itself): any change of the text is a new
version, stored once (`store_rubric`) with a link to the previous version of the same name.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator
from sqlmodel import Session, select

from judging.checks import CheckSpec, pattern_problem, schema_problem
from storage.db import project_dir
from storage.errors import InputError
from storage.hashing import content_hash
from storage.models import RubricVersion
from storage.yamltext import YamlLimitError, compose_bounded, construct

# The shipped rubrics: `rubrics/` at the top of the repository, reached through the `judging/shipped_rubrics`
# symlink in a checkout and copied there in a wheel; a project's own `rubrics/` comes first (rubric_file).
RUBRICS_DIR = Path(str(resources.files("judging") / "shipped_rubrics"))
SCHEMA_PATH = RUBRICS_DIR / "rubric.schema.json"
SCHEMA_HEADER = "# yaml-language-server: $schema=rubric.schema.json"
CRITERION_TYPES = ("binary", "ordinal", "categorical", "check")
BINARY_LABELS = ("pass", "fail")
MAX_LEVELS = 11

Path_ = tuple[Union[str, int], ...]


# --- the model ---------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Example(_Strict):
    input: str
    output: str
    label: Union[StrictInt, StrictStr]
    why: str
    reference: str | None = None


class Criterion(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    question: str = Field(min_length=1)
    type: Literal["binary", "ordinal", "categorical"]
    min: int | None = None
    max: int | None = None
    levels: dict[str, str] | None = None
    labels: list[str] | None = None
    weight: float = Field(default=1.0, gt=0)
    uses_reference: bool = False
    examples: list[Example] = Field(default_factory=list)
    # `type: check` in the file: a binary criterion whose verdict the tests here compute (judging/checks.py).
    check: CheckSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _check_is_binary(cls, data: Any) -> Any:
        """A check criterion is stored as what it is to every reader of verdicts: binary, plus its tests."""
        if isinstance(data, dict) and data.get("type") == "check":
            return {**data, "type": "binary", "check": data.get("check") or {}}
        return data

    @property
    def is_check(self) -> bool:
        return self.check is not None

    @property
    def needs_reference(self) -> bool:
        return self.uses_reference or bool(self.check and self.check.equals_reference)

    def allowed(self) -> list[str]:
        """The verdicts this criterion accepts, as stored (`Judgment.verdict`)."""
        if self.type == "binary":
            return list(BINARY_LABELS)
        if self.type == "ordinal":
            assert self.min is not None and self.max is not None
            return [str(v) for v in range(self.min, self.max + 1)]
        return list(self.labels or [])

    def score_of(self, verdict: str) -> float | None:
        """The numeric score of a valid verdict (contract: pass 1 / fail 0, the level, None for a label)."""
        if self.type == "binary":
            return 1.0 if verdict == "pass" else 0.0
        if self.type == "ordinal":
            return float(int(verdict))
        return None

    def normalize(self, value: Any) -> str:
        """A verdict as given (judge, file, annotator) → its stored form; ValueError says what is allowed."""
        allowed = self.allowed()
        if self.type == "ordinal":
            if isinstance(value, bool):
                raise ValueError(f"expected a level from {self.min} to {self.max}, got {value!r}")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"expected a level from {self.min} to {self.max}, got {value!r}") from None
            if not number.is_integer() and self.min <= number <= self.max:
                raise ValueError(f"{value!r} is not a whole level: the levels of this criterion are the whole "
                                 f"numbers {self.min}..{self.max} (an average of several scores is not a level); "
                                 "give whole levels, or import with --round to round to the nearest level "
                                 "(the rounding is recorded on each judgment)")
            if not number.is_integer() or str(int(number)) not in allowed:
                raise ValueError(f"level {value!r} is outside {self.min}..{self.max}")
            return str(int(number))
        text = value.strip() if isinstance(value, str) else value
        if self.type == "binary" and isinstance(text, str):
            text = text.lower()
        if text not in allowed:
            raise ValueError(f"{value!r} is not one of: {', '.join(allowed)}")
        return text


class JudgeDefaults(_Strict):
    model: str | None = None
    temperature: float = Field(default=0.0, ge=0, le=2)
    mode: Literal["pointwise", "pairwise"] = "pointwise"
    structured_output: Literal["tools", "json", "json_schema", "json_object_schema"] = "tools"


class Rubric(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    description: str = Field(min_length=1)
    judge: JudgeDefaults = Field(default_factory=JudgeDefaults)
    criteria: list[Criterion] = Field(min_length=1)
    # Not part of the spec: where it came from and its exact text (both enter the version hash / the row).
    source: str | None = Field(default=None, exclude=True)
    text: str = Field(default="", exclude=True)

    @property
    def spec(self) -> dict[str, Any]:
        """The validated rubric as data (`RubricVersion.spec`); a check's unset tests are left out, and so is
        `check` on model-graded criteria (their spec, and so their version hash, is what it was before checks)."""
        data = self.model_dump(mode="json")
        for c, crit in zip(data["criteria"], self.criteria):
            if crit.check is None:
                c.pop("check", None)
            else:
                c["check"] = crit.check.model_dump(mode="json", exclude_none=True)
        return data

    @property
    def content_hash(self) -> str:
        return rubric_hash(self.spec, self.text)

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise InputError(
            f"rubric {self.name!r} has no criterion {criterion_id!r}",
            hint=f"criteria: {', '.join(c.id for c in self.criteria)}",
        )


def rubric_hash(spec: dict[str, Any], text: str) -> str:
    """SHA-256 of the canonical content: the spec plus the text with line endings normalised."""
    return content_hash({"spec": spec, "text": normalize_text(text)})


def normalize_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- problems ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RubricProblem:
    """One thing wrong with a rubric: where (file, line, column, key), what, and what to do."""

    source: str
    line: int | None
    column: int | None
    key: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        key = f" {self.key}:" if self.key else ""
        text = f"{where}:{key} {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "column": self.column, "key": self.key,
                "message": self.message, "hint": self.hint}


class RubricError(InputError):
    """A rubric that cannot be used; `problems` lists every problem found, each with file:line and key."""

    def __init__(self, problems: list[RubricProblem]) -> None:
        self.problems = problems
        first = problems[0]
        more = "".join(f"\n{p}" for p in problems[1:])
        super().__init__(
            f"{first.key + ': ' if first.key else ''}{first.message}{more}",
            where=f"{first.source}:{first.line}" if first.line else first.source,
            hint=first.hint,
        )


def key_of(path: Path_) -> str:
    """('criteria', 1, 'levels') → 'criteria[1].levels'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Marks:
    """Line and column of every key and value in a YAML document, by path (from yaml's node marks)."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.keys: dict[Path_, tuple[int, int]] = {}
        self.values: dict[Path_, tuple[int, int]] = {}
        self.duplicates: list[tuple[Path_, tuple[int, int]]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: Path_) -> None:
        self.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key: Any = key_node.value
                if key_node.tag.endswith(":int"):
                    key = str(key)
                mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in seen:
                    self.duplicates.append((path + (key,), mark))
                seen.add(key)
                self.keys[path + (key,)] = mark
                self._walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                self._walk(child, path + (i,))

    def at(self, path: Path_, *, value: bool = False) -> tuple[int | None, int | None]:
        """The mark of `path`, or of its nearest ancestor that exists (a missing key: where it belongs)."""
        probe = tuple(path)
        while True:
            table = (self.values, self.keys) if value else (self.keys, self.values)
            for t in table:
                if probe in t:
                    return t[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]


# --- validation --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema_validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_properties(path: Path_) -> list[str]:
    """The keys the schema allows at `path` (for 'did you mean' hints)."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    if not path:
        return list(schema["properties"])
    if path[0] == "judge":
        return list(schema["properties"]["judge"]["properties"])
    if path[0] == "criteria":
        if len(path) >= 4 and path[2] == "examples":
            return list(schema["$defs"]["example"]["properties"])
        if len(path) >= 3 and path[2] == "check":
            return list(schema["$defs"]["check"]["properties"])
        return list(schema["$defs"]["criterion"]["properties"])
    return []


def _suggest(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


_FORBIDDEN_BY_TYPE = {
    "binary": ("min", "max", "levels", "labels", "check"),
    "ordinal": ("labels", "check"),
    "categorical": ("min", "max", "levels", "check"),
    "check": ("min", "max", "levels", "labels", "examples", "uses_reference"),
}
_OWNER = {"labels": "categorical", "check": "check", "examples": "model-graded", "uses_reference": "model-graded"}
_REQUIRED_BY_TYPE = {"ordinal": ("min", "max", "levels"), "categorical": ("labels",), "binary": (), "check": ("check",)}
_KEY_HINTS = {
    "name": "add `name: my-rubric` (lower case, digits, '-', '_', '.')",
    "description": "add `description:` with what the rubric measures",
    "criteria": "add `criteria:` with at least one criterion (id, question, type)",
    "id": "add `id: my_criterion` (lower case letter first, then letters, digits, '_')",
    "question": "add `question:` with what the judge must decide",
    "type": "add `type: binary`, `type: ordinal`, `type: categorical` or `type: check`",
    "check": "check criteria list their tests under `check:`, e.g. `max_chars: 800` or `json_valid: true`",
    "min": "ordinal criteria need `min:` and `max:` (integers) and a description per level under `levels:`",
    "max": "ordinal criteria need `min:` and `max:` (integers) and a description per level under `levels:`",
    "levels": "ordinal criteria describe every level from min to max under `levels:`, e.g. `1: Does not help`",
    "labels": "categorical criteria list their allowed labels under `labels:`",
    "input": "each example needs input, output, label and why",
    "output": "each example needs input, output, label and why",
    "label": "each example needs input, output, label and why",
    "why": "each example needs input, output, label and why",
}


def _schema_problems(data: Any, marks: _Marks, source: str) -> list[RubricProblem]:
    problems: list[RubricProblem] = []

    def add(path: Path_, message: str, hint: str | None, *, value: bool = False) -> None:
        line, col = marks.at(path, value=value)
        problems.append(RubricProblem(source, line, col, key_of(path), message, hint))

    for err in _schema_validator().iter_errors(data):
        path: Path_ = tuple(err.absolute_path)
        v = err.validator
        if v == "additionalProperties" and isinstance(err.instance, dict):
            allowed = _schema_properties(path)
            for extra in sorted(k for k in err.instance if k not in allowed):
                hint = _suggest(extra, allowed) or f"allowed keys here: {', '.join(allowed)}"
                add(path + (extra,), f"unknown key {extra!r}", hint)
        elif v == "required":
            missing = err.message.split("'")[1] if "'" in err.message else "?"
            add(path + (missing,), f"required key {missing!r} is missing", _KEY_HINTS.get(missing))
        elif v == "not" and isinstance(err.instance, dict):
            ctype = err.instance.get("type")
            for key in _FORBIDDEN_BY_TYPE.get(ctype, ()):
                if key in err.instance:
                    owner = _OWNER.get(key, "ordinal")
                    add(path + (key,), f"{key!r} does not belong to a {ctype} criterion",
                        f"{key!r} is only for {owner} criteria: remove it or change `type`")
        elif v == "enum":
            allowed = [str(x) for x in err.validator_value]
            hint = (_suggest(err.instance, allowed) if isinstance(err.instance, str) else None) or \
                f"use one of: {', '.join(allowed)}"
            add(path, f"{err.instance!r} is not one of: {', '.join(allowed)}", hint, value=True)
        elif v == "type":
            expected = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
            got = type(err.instance).__name__ if err.instance is not None else "nothing (null)"
            hint = None
            if isinstance(err.instance, bool):
                hint = "YAML reads yes/no/true/false as booleans: write the label in quotes"
            elif err.instance is None:
                hint = "the value is empty: write it after the colon, or remove the key"
            elif expected == "string":
                hint = "put the value in quotes"
            add(path, f"expected {expected}, got {got} ({err.instance!r})", hint, value=True)
        elif v == "pattern":
            if path and path[-1] == "id":
                hint = "ids start with a lower case letter and use only a-z, 0-9 and '_' (e.g. `tone_ok`)"
            elif path and path[0] == "name":
                hint = "names use lower case letters, digits, '-', '_' and '.' (e.g. `support-helpfulness`)"
            elif len(path) >= 3 and path[2] == "labels":
                hint = "labels use letters, digits, '_', '-' and '.' without spaces (e.g. `over_refusal`)"
            else:
                hint = None
            add(path, f"{err.instance!r} is not a valid {path[-1] if path else 'value'}", hint, value=True)
        elif v == "propertyNames":
            bad = err.instance if not isinstance(err.instance, dict) else "?"
            add(path, f"level {bad!r} is not an integer", "levels are integers from min to max, e.g. `3: Partly helpful`")
        elif v in ("minItems", "minProperties", "minLength"):
            what = {"criteria": "at least one criterion", "labels": "at least two labels",
                    "levels": "at least two levels"}.get(str(path[-1]) if path else "", "a non-empty value")
            add(path, f"needs {what}", None, value=True)
        elif v == "uniqueItems":
            add(path, "labels must be unique", "remove the repeated label", value=True)
        elif v in ("minimum", "maximum", "exclusiveMinimum"):
            hint = {"temperature": "use a temperature from 0 to 2 (0 makes verdicts as repeatable as possible)",
                    "weight": "weights are positive numbers (default 1)"}.get(str(path[-1]) if path else "")
            add(path, err.message, hint, value=True)
        else:
            add(path, err.message, None, value=True)
    return problems


def _cross_checks(criteria: list[tuple[int, Criterion]], data: dict, marks: _Marks, source: str) -> list[RubricProblem]:
    """What a schema cannot say: unique ids, levels covering min..max, example labels valid for their criterion.

    Runs on every criterion that is itself well-formed, so the editor shows all problems at once."""
    problems: list[RubricProblem] = []

    def add(path: Path_, message: str, hint: str | None = None, *, value: bool = False) -> None:
        line, col = marks.at(path, value=value)
        problems.append(RubricProblem(source, line, col, key_of(path), message, hint))

    seen: dict[str, int] = {}
    for i, c in criteria:
        base: Path_ = ("criteria", i)
        if c.id in seen:
            add(base + ("id",), f"criterion id {c.id!r} is used twice (also criteria[{seen[c.id]}])",
                "give every criterion its own id", value=True)
        seen.setdefault(c.id, i)
        if c.check is not None:
            if isinstance(data["criteria"][i].get("check"), dict):  # a missing `check:` the schema has reported
                problems += _check_problems(c.check, base + ("check",), add)
            continue
        if (c.type == "ordinal" and (c.min is None or c.max is None or not c.levels)) or (
            c.type == "categorical" and not c.labels
        ):
            continue  # incomplete: the schema has said what is missing
        if c.type == "ordinal":
            assert c.min is not None and c.max is not None and c.levels is not None
            if c.min >= c.max:
                add(base + ("max",), f"max ({c.max}) must be greater than min ({c.min})",
                    "an ordinal scale runs from min (worst) up to max (best), e.g. min: 1, max: 5", value=True)
                continue
            if c.max - c.min + 1 > MAX_LEVELS:
                add(base + ("max",), f"{c.max - c.min + 1} levels is too many (at most {MAX_LEVELS})",
                    "judges and humans use long scales inconsistently: use 1..5 or 1..7", value=True)
                continue
            wanted = {str(v) for v in range(c.min, c.max + 1)}
            raw_levels = data["criteria"][i]["levels"]
            given = {str(k) for k in raw_levels}
            for missing in sorted(wanted - given, key=int):
                add(base + ("levels",), f"level {missing} has no description (levels must cover {c.min}..{c.max})",
                    f"add `{missing}: <what level {missing} means>` under levels")
            for extra in sorted(given - wanted, key=lambda s: int(s) if s.lstrip("-").isdigit() else 0):
                add(base + ("levels", extra), f"level {extra} is outside min..max ({c.min}..{c.max})",
                    "remove it, or widen min/max")
        for j, ex in enumerate(c.examples):
            path = base + ("examples", j, "label")
            if isinstance(ex.label, bool):
                continue  # reported by the schema
            if c.type == "ordinal" and not isinstance(ex.label, int):
                add(path, f"label {ex.label!r} is not a level of {c.id!r}",
                    f"write the level as a number from {c.min} to {c.max}", value=True)
                continue
            if c.type != "ordinal" and not isinstance(ex.label, str):
                add(path, f"label {ex.label!r} is not allowed for {c.type} criterion {c.id!r}",
                    f"use one of: {', '.join(c.allowed())}", value=True)
                continue
            try:
                value = c.normalize(ex.label)
                if c.type == "binary" and value != ex.label:
                    raise ValueError(f"write {value!r} in lower case")
            except ValueError as exc:
                hint = (_suggest(str(ex.label), c.allowed()) if isinstance(ex.label, str) else None) \
                    or f"use one of: {', '.join(c.allowed())}"
                add(path, f"label {ex.label!r} is not valid for {c.type} criterion {c.id!r}: {exc}", hint, value=True)
            if c.uses_reference and not ex.reference:
                add(base + ("examples", j), f"criterion {c.id!r} uses a reference answer, but this example has none",
                    "add `reference:` to the example (the judge sees one for every item)")
            if not c.uses_reference and ex.reference:
                add(base + ("examples", j, "reference"), f"criterion {c.id!r} does not use a reference answer",
                    "remove the example's reference, or set `uses_reference: true`")
    return problems


def _check_problems(check: CheckSpec, path: Path_, add: Any) -> list[RubricProblem]:
    """What the schema cannot say about a check: a test at all, patterns that compile, a sound schema, bounds."""
    if not check.tests():
        add(path, "the check names no test",
            "add at least one of: regex, not_regex, contains, not_contains, json_valid, json_schema, max_chars, "
            "min_chars, equals_reference, max_latency_ms, max_cost")
    for key in ("regex", "not_regex"):
        pattern = getattr(check, key)
        why = pattern_problem(pattern, check.ignore_case) if pattern is not None else None
        if why:
            add(path + (key,), f"the pattern does not compile: {why}",
                "patterns use Python `regex` syntax; in YAML, single-quote a pattern with backslashes", value=True)
    if isinstance(check.json_schema, dict):
        why = schema_problem(check.json_schema)
        if why:
            add(path + ("json_schema",), why, "see https://json-schema.org for the vocabulary", value=True)
    if check.min_chars is not None and check.max_chars is not None and check.min_chars > check.max_chars:
        add(path + ("min_chars",), f"min_chars ({check.min_chars}) is greater than max_chars ({check.max_chars})",
            "no output could pass: lower min_chars or raise max_chars", value=True)
    return []  # reported through `add`


def _resolve_schema_files(data: dict, marks: _Marks, source: str,
                          stored: dict[str, Any] | None) -> list[RubricProblem]:
    """Read every `json_schema: file.json` beside the rubric into the criterion (its content joins the version).

    A stored version (`stored` = its spec) takes the schemas it was stored with, so it never depends on files."""
    problems: list[RubricProblem] = []
    kept = {str(c.get("id")): (c.get("check") or {}).get("schema_from_file")
            for c in (stored or {}).get("criteria") or [] if isinstance(c, dict)}
    criteria = data.get("criteria")
    for i, c in enumerate(criteria if isinstance(criteria, list) else []):
        ref = (c.get("check") or {}).get("json_schema") if isinstance(c, dict) and isinstance(c.get("check"), dict) else None
        if not isinstance(ref, str):
            continue
        path: Path_ = ("criteria", i, "check", "json_schema")
        line, col = marks.at(path, value=True)
        doc: Any = kept.get(str(c.get("id"))) if stored is not None else None
        if doc is None:
            if source.startswith("<"):
                problems.append(RubricProblem(source, line, col, key_of(path), f"schema file {ref!r} cannot be found "
                                              "from text that is not a file", "inline the schema, or save the rubric as a file"))
                continue
            file = (Path(source).parent / ref)
            try:
                doc = json.loads(file.read_text(encoding="utf-8"))
            except FileNotFoundError:
                problems.append(RubricProblem(source, line, col, key_of(path), f"schema file {str(file)!r} does not exist",
                                              "give a path relative to the rubric file, or inline the schema"))
                continue
            except (OSError, ValueError) as exc:
                problems.append(RubricProblem(source, line, col, key_of(path), f"schema file {str(file)!r} is not JSON: {exc}",
                                              "fix the file (it must hold one JSON schema object)"))
                continue
            why = schema_problem(doc)
            if why:
                problems.append(RubricProblem(source, line, col, key_of(path), f"schema file {ref!r}: {why}", None))
                continue
        criteria[i] = {**c, "check": {**c["check"], "schema_from_file": doc}}
    return problems


def validate_rubric_text(text: str, source: str = "<rubric>", *,
                         stored: dict[str, Any] | None = None) -> tuple[Rubric | None, list[RubricProblem]]:
    """Validate YAML text (a file's or the editor's live text): the rubric, or every problem with its line.

    `stored`: the spec of a stored version being re-read (its schema files come from there, not the disk)."""
    text = normalize_text(text)
    try:
        root = compose_bounded(text)
        data = construct(root)
    except YamlLimitError as exc:
        return None, [RubricProblem(source, exc.line, None, "", exc.message, exc.hint)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        what = exc.problem or str(exc)
        if exc.context:
            started = exc.context_mark
            at = f" at line {started.line + 1}" if started is not None and started.line + 1 != line else ""
            what = f"{what} ({exc.context}{at})"
        return None, [RubricProblem(source, line, col, "", f"YAML syntax error: {what}",
                                    "check the indentation near this line; quote values that contain ': ' or start with '*', '&', '!', '{' or '['")]
    except yaml.YAMLError as exc:
        return None, [RubricProblem(source, 1, 1, "", f"YAML error: {exc}", None)]
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return None, [RubricProblem(source, None, None, "", f"YAML value error: {exc}", None)]
    marks = _Marks(root)
    if data is None:
        return None, [RubricProblem(source, 1, 1, "", "the rubric is empty",
                                    "start from one of the rubrics in rubrics/ (name, description, criteria)")]
    if not isinstance(data, dict):
        return None, [RubricProblem(source, 1, 1, "", f"a rubric is a mapping of keys, got a {type(data).__name__}",
                                    "start from one of the rubrics in rubrics/ (name, description, criteria)")]
    problems = [
        RubricProblem(source, line, col, key_of(path), f"key {path[-1]!r} appears more than once",
                      "YAML keeps only the last one: remove or rename the duplicate")
        for path, (line, col) in marks.duplicates
    ]
    data = _stringify_level_keys(data)
    problems += _schema_problems(data, marks, source)
    problems += _resolve_schema_files(data, marks, source, stored)
    rubric: Rubric | None = None
    if not problems:
        try:
            rubric = Rubric.model_validate({**data, "source": source, "text": text})
        except ValidationError as exc:  # the schema should have caught these; kept as a safety net
            for e in exc.errors():
                path = tuple(e["loc"])
                line, col = marks.at(path)
                problems.append(RubricProblem(source, line, col, key_of(path), e["msg"], None))
    well_formed: list[tuple[int, Criterion]] = []
    for i, raw in enumerate(data.get("criteria") if isinstance(data.get("criteria"), list) else []):
        try:
            well_formed.append((i, Criterion.model_validate(_known_keys(raw))))
        except ValidationError:
            continue
    if well_formed:
        problems += _cross_checks(well_formed, data, marks, source)
    problems = _drop_shadowed_missing(problems)
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return (rubric if not problems else None), problems


def _known_keys(raw: Any) -> Any:
    """A criterion without keys the model does not know (already reported), so the cross-checks still run."""
    if not isinstance(raw, dict):
        return raw
    out = {k: v for k, v in raw.items() if k in Criterion.model_fields}
    if isinstance(out.get("examples"), list):
        out["examples"] = [
            {k: v for k, v in ex.items() if k in Example.model_fields} if isinstance(ex, dict) else ex
            for ex in out["examples"]
        ]
    return out


def _drop_shadowed_missing(problems: list[RubricProblem]) -> list[RubricProblem]:
    """A 'missing key' whose misspelling is reported as an unknown key next to it is the same mistake: keep one."""
    suggested = {
        (p.key.rsplit(".", 1)[0] if "." in p.key else "", p.hint.split("'")[1])
        for p in problems
        if p.message.startswith("unknown key") and p.hint and p.hint.startswith("did you mean")
    }
    out = []
    for p in problems:
        if p.message.startswith("required key"):
            parent, _, missing = p.key.rpartition(".")
            if (parent, missing) in suggested:
                continue
        out.append(p)
    return out


def _stringify_level_keys(data: dict) -> dict:
    """YAML reads `1:` as an integer key; levels are stored by their string (the contract's `"1": "desc"`)."""
    criteria = data.get("criteria")
    if not isinstance(criteria, list):
        return data
    fixed = []
    for c in criteria:
        if isinstance(c, dict) and isinstance(c.get("levels"), dict):
            c = {**c, "levels": {str(k): v for k, v in c["levels"].items()}}
        fixed.append(c)
    return {**data, "criteria": fixed}


def parse_rubric(text: str, source: str = "<rubric>", *, stored: dict[str, Any] | None = None) -> Rubric:
    rubric, problems = validate_rubric_text(text, source, stored=stored)
    if problems:
        raise RubricError(problems)
    assert rubric is not None
    return rubric


def rubric_files() -> list[tuple[str, Path]]:
    """Rubric files by origin: the project's `rubrics/*.yaml`, then the shipped ones it does not shadow."""
    own = sorted((project_dir() / "rubrics").glob("*.y*ml"))
    names = {p.stem for p in own}
    return ([("project", p) for p in own]
            + [("shipped", p) for p in sorted(RUBRICS_DIR.glob("*.yaml")) if p.stem not in names])


def rubric_file(name: str) -> tuple[str, Path] | None:
    """The file a rubric name stands for: `rubrics/NAME.yaml` of the project first, then the shipped one."""
    for origin, path in rubric_files():
        if path.stem == name:
            return origin, path
    return None


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric file; RubricError lists every problem as file:line: key: what (+ hint)."""
    p = Path(path)
    if not p.is_file():
        shipped = ", ".join(sorted(f.name for f in RUBRICS_DIR.glob("*.yaml"))) if RUBRICS_DIR.is_dir() else ""
        raise InputError(f"rubric file {str(path)!r} does not exist", where="--rubric",
                         hint=f"give a path to a YAML rubric; shipped: {shipped or 'none'} in {RUBRICS_DIR}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(path),
                         hint="save the rubric as UTF-8") from None
    return parse_rubric(text, str(path))


def rubric_from_version(row: RubricVersion) -> Rubric:
    """The rubric a stored version holds (re-validated from its text, so that it is exactly what was stored)."""
    rubric = parse_rubric(row.yaml_text, row.source_path or f"rubric version {row.content_hash[:12]}",
                          stored=row.spec)
    if rubric.content_hash != row.content_hash:
        raise InputError(f"stored rubric version {row.id} does not match its hash",
                         hint="the row was changed after it was stored; store the rubric file again")
    return rubric


# --- storage -----------------------------------------------------------------------------------------------


def store_rubric(session: Session, rubric: Rubric) -> RubricVersion:
    """Store this rubric version once (idempotent by hash), linked to the previous version of the same name."""
    digest = rubric.content_hash
    existing = session.exec(select(RubricVersion).where(RubricVersion.content_hash == digest)).first()
    if existing is not None:
        return existing
    parent = session.exec(
        select(RubricVersion).where(RubricVersion.name == rubric.name).order_by(RubricVersion.id.desc())  # type: ignore[union-attr]
    ).first()
    row = RubricVersion(
        name=rubric.name,
        content_hash=digest,
        yaml_text=normalize_text(rubric.text),
        spec=rubric.spec,
        parent_id=parent.id if parent is not None else None,
        source_path=rubric.source if rubric.source and not rubric.source.startswith("<") else None,
    )
    session.add(row)
    session.flush()
    return row


def find_rubric_version(session: Session, ref: str) -> RubricVersion:
    """A stored rubric version by `name` (latest), `name@hashprefix`, a hash prefix or a file path."""
    if Path(ref).is_file():
        return store_rubric(session, load_rubric(ref))
    name, _, prefix = ref.partition("@")
    query = select(RubricVersion)
    rows: list[RubricVersion]
    if prefix:
        rows = list(session.exec(query.where(RubricVersion.name == name, RubricVersion.content_hash.startswith(prefix))))  # type: ignore[attr-defined]
    else:
        rows = list(session.exec(query.where(RubricVersion.name == name).order_by(RubricVersion.id.desc())))  # type: ignore[union-attr]
        rows = rows[:1]
        if not rows and len(ref) >= 6:
            rows = list(session.exec(query.where(RubricVersion.content_hash.startswith(ref))))  # type: ignore[attr-defined]
    if len(rows) != 1:
        known = sorted({r.name for r in session.exec(select(RubricVersion))})
        raise InputError(
            f"no single stored rubric version matches {ref!r}" + (f" ({len(rows)} match)" if rows else ""),
            where="--rubric",
            hint=f"give a rubric file, a name or NAME@HASHPREFIX; stored: {', '.join(known) or 'none yet'}",
        )
    return rows[0]
