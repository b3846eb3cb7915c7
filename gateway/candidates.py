"""Candidates declared in `candidates.yaml`, validated with errors that name the file, line and key.

```yaml
candidates:
  - name: gpt-4o-mini              # unique; how runs and reports refer to it
    model: openai/gpt-4o-mini      # any LiteLLM model string
    params: {temperature: 0, max_tokens: 512}
    api_key_env: OPENAI_API_KEY    # the NAME of the variable holding the key, never the key
    input_price_per_mtok: 0.15     # USD per 1M tokens; overrides LiteLLM's price map
    output_price_per_mtok: 0.60
    concurrency: 8                 # calls in flight; rpm / tpm optional; timeout_s per call
  - name: local-qwen
    model: openai/qwen2.5-0.5b-instruct
    api_base: http://127.0.0.1:8080/v1
```

`config_hash` covers what changes the outputs or their cost (model, params, api_base, prices), not the
limits or the key's variable: a run is resumed only by a candidate with the same config_hash.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlmodel import Session, select

from gateway.client import ModelConfig
from storage.errors import InputError
from storage.hashing import content_hash
from storage.models import Candidate
from storage.yamltext import YamlLimitError, compose_bounded, construct
from storage.names import check_name

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_PARAMS = {"model", "messages", "api_key", "api_base", "base_url"}


class CandidateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=300)
    params: dict[str, Any] = Field(default_factory=dict)
    api_base: str | None = None
    api_key_env: str | None = None
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    output_price_per_mtok: float | None = Field(default=None, ge=0)
    concurrency: int = Field(default=8, ge=1, le=1000)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        try:
            return check_name(v, "candidate")
        except InputError as exc:
            raise ValueError(f"{exc.what}; {exc.hint}") from None

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        # Never echo the value: someone may have pasted the key itself here.
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not the key itself")
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(_RESERVED_PARAMS & set(v))
        if bad:
            raise ValueError(f"{', '.join(bad)} cannot be a param: use the candidate's own keys (model, api_base, "
                             "api_key_env)")
        return v

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
        return v

    @model_validator(mode="after")
    def _prices(self) -> "CandidateSpec":
        if (self.input_price_per_mtok is None) != (self.output_price_per_mtok is None):
            raise ValueError("give both input_price_per_mtok and output_price_per_mtok, or neither")
        return self

    def config(self) -> dict[str, Any]:
        """What identifies the outputs and their cost."""
        return {
            "model": self.model, "params": self.params, "api_base": self.api_base,
            "input_price_per_mtok": self.input_price_per_mtok, "output_price_per_mtok": self.output_price_per_mtok,
        }

    def config_hash(self) -> str:
        return content_hash(self.config())

    def limits(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "rpm": self.rpm, "tpm": self.tpm,
                "timeout_s": self.timeout_s, "max_attempts": self.max_attempts}

    def model_config_for(self, *, concurrency: int | None = None) -> ModelConfig:
        return ModelConfig(
            model=self.model, params=dict(self.params), api_base=self.api_base, api_key_env=self.api_key_env,
            input_price_per_mtok=self.input_price_per_mtok, output_price_per_mtok=self.output_price_per_mtok,
            max_concurrency=concurrency or self.concurrency, rpm=self.rpm, tpm=self.tpm,
            timeout_s=self.timeout_s, max_attempts=self.max_attempts,
        )


class _CandidatesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidates: list[CandidateSpec] = Field(min_length=1)


# --- loading with line numbers ---------------------------------------------------------------------------------


def _node_at(root: yaml.Node | None, loc: tuple) -> tuple[yaml.Node | None, bool]:
    """The YAML node at a pydantic error location; (parent, False) when the key itself is missing."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                return node, False
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node, True
    return node, True


def _key_line(root: yaml.Node | None, loc: tuple) -> int | None:
    """Line of the key named by `loc` (for an unknown key: the key itself), 1-based."""
    if loc and isinstance(loc[-1], str):
        parent, found = _node_at(root, loc[:-1])
        if isinstance(parent, yaml.MappingNode):
            for k, _v in parent.value:
                if getattr(k, "value", None) == loc[-1]:
                    return k.start_mark.line + 1
    node, _ = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def _describe_loc(data: Any, loc: tuple) -> str:
    """`candidates[2] (name 'x').rpm` style: the candidate's name helps more than its index."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
            try:
                name = data["candidates"][part].get("name") if loc[0] == "candidates" and i == 1 else None
            except (KeyError, IndexError, TypeError, AttributeError):
                name = None
            if name:
                parts[-1] += f" (name {name!r})"
        else:
            parts.append(str(part))
    return ".".join(parts)


def load_candidates(path: str | Path) -> list[CandidateSpec]:
    """Parse and validate a candidates file; the first problem is raised as InputError with file:line and key."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"candidates file not found: {path}", hint="`ownbench init` writes an example candidates.yaml in the project folder")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(path),
                         hint="save the file as UTF-8") from None
    try:
        root = compose_bounded(text)
        data = construct(root)
    except YamlLimitError as exc:
        raise InputError(exc.message, where=f"{path}:{exc.line}" if exc.line else str(path), hint=exc.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", where=where) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InputError(f"not a usable YAML value: {exc}", where=str(path)) from None
    if isinstance(data, list):  # a bare list of candidates is accepted too
        data, root = {"candidates": data}, yaml.MappingNode("tag:yaml.org,2002:map", [
            (yaml.ScalarNode("tag:yaml.org,2002:str", "candidates"), root)])
    if not isinstance(data, dict):
        raise InputError("expected a mapping with a `candidates:` list", where=f"{path}:1")
    try:
        parsed = _CandidatesFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_input=False)[0]
        loc = tuple(err["loc"])
        line = _key_line(root, loc)
        where = f"{path}:{line}" if line else str(path)
        key = _describe_loc(data, loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        hint = None
        if err["type"] == "extra_forbidden":
            if loc[-1] == "api_key":
                msg = "API keys do not belong in this file"
                hint = "put the key in an environment variable and name that variable in api_key_env"
            else:
                hint = "known keys: " + ", ".join(CandidateSpec.model_fields)
        raise InputError(f"{key}: {msg}", where=where, hint=hint) from None
    seen: dict[str, int] = {}
    for i, spec in enumerate(parsed.candidates):
        if spec.name in seen:
            line = _key_line(root, ("candidates", i, "name"))
            raise InputError(f"candidate name {spec.name!r} is already used by candidates[{seen[spec.name]}]",
                             where=f"{path}:{line}", hint="names must be unique")
        seen[spec.name] = i
    return parsed.candidates


def find_candidate(specs: list[CandidateSpec], name: str, path: str | Path) -> CandidateSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    names = ", ".join(s.name for s in specs)
    raise InputError(f"no candidate named {name!r} in {path}", where="--candidate", hint=f"candidates there: {names}")


# --- the Candidate table -----------------------------------------------------------------------------------------


def upsert_candidate(session: Session, spec: CandidateSpec) -> Candidate:
    """Insert or update the row for `spec.name`. Runs keep the configuration they ran with, in `Run.config`."""
    row = session.exec(select(Candidate).where(Candidate.name == spec.name)).first()
    if row is None:
        row = Candidate(name=spec.name, model=spec.model, config_hash=spec.config_hash())
    row.model, row.params, row.api_base, row.api_key_env = spec.model, spec.params, spec.api_base, spec.api_key_env
    row.input_price_per_mtok, row.output_price_per_mtok = spec.input_price_per_mtok, spec.output_price_per_mtok
    for key, value in spec.limits().items():
        setattr(row, key, value)
    row.config_hash = spec.config_hash()
    session.add(row)
    session.flush()
    return row


LIMITS = ("concurrency", "rpm", "tpm", "timeout_s", "max_attempts")


def spec_of(row: Candidate) -> CandidateSpec:
    """The spec of a stored candidate, with the limits it was added with (defaults for those not given)."""
    return CandidateSpec(
        name=row.name, model=row.model, params=row.params or {}, api_base=row.api_base, api_key_env=row.api_key_env,
        input_price_per_mtok=row.input_price_per_mtok, output_price_per_mtok=row.output_price_per_mtok,
        **{k: getattr(row, k) for k in LIMITS if getattr(row, k) is not None},
    )


def with_limits(spec: CandidateSpec, **overrides: Any) -> CandidateSpec:
    """`spec` with the limits given on the command line (None: keep the candidate's), validated as in the file."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return spec
    try:
        return CandidateSpec.model_validate({**spec.model_dump(), **given})
    except ValidationError as exc:
        err = exc.errors(include_input=False)[0]
        key = str(err["loc"][0]) if err["loc"] else "limits"
        flag = {"timeout_s": "--timeout"}.get(key, "--" + key.replace("_", "-"))
        raise InputError(f"{key}: {err['msg']}", where=flag) from None
