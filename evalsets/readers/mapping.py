"""Field mapping for generic JSONL / CSV / Parquet logs: which field holds the prompt, the id, the metadata."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from evalsets.readers.base import LogRecord, RecordError, describe_type
from evalsets.readers.messages import KIND_QUOTED, prompt_from, refuse

MISSING = object()
# Tried in order when no --prompt-field is given; the first one present in the first record is used.
PROMPT_FIELD_GUESSES = ("messages", "prompt", "turns", "question", "input", "instruction", "query", "text",
                        "conversations")
ID_FIELD_GUESSES = ("key", "id", "question_id", "uuid", "request_id", "custom_id")


@dataclass(frozen=True)
class FieldMapping:
    """Dotted paths (`metadata.lang`) into a record. Missing metadata fields are left out, not errors."""

    prompt_field: str | None = None
    id_field: str | None = None
    metadata_fields: tuple[str, ...] = ()
    reference_field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"prompt_field": self.prompt_field, "id_field": self.id_field,
                "metadata_fields": list(self.metadata_fields), "reference_field": self.reference_field}


_SEGMENT = re.compile(r"""\[\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(\d+))\s*\]|([^.\[\]]+)""")


def parse_path(path: str) -> list[str]:
    """A field path as its keys: `a.b.0`, and keys that contain dots in brackets with quotes:
    `attributes["ai.prompt.messages"]` or `attributes['gen_ai.prompt'].0`."""
    keys: list[str] = []
    pos = 0
    while pos < len(path):
        if path[pos] == ".":
            pos += 1
            continue
        m = _SEGMENT.match(path, pos)
        if not m:
            raise ValueError(f"cannot read the field path {path!r} at character {pos + 1}")
        quoted = m.group(1) if m.group(1) is not None else m.group(2)
        keys.append(re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (m.group(3) or m.group(4)))
        pos = m.end()
    return keys


def get_path(obj: Any, path: str) -> Any:
    if isinstance(obj, dict) and path in obj:
        return obj[path]
    cur = obj
    for part in parse_path(path):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return MISSING
    return cur


def guess_field(obj: dict, candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in obj), None)


def prompt_messages(value: Any, field: str, *, from_text_cell: bool = False) -> list[dict[str, Any]]:
    """A prompt field's value as messages: text (one user turn), a list of strings (user turns), messages or a
    request body of any shape the message normaliser knows, also when stored as JSON text. A CSV cell holding
    JSON-quoted text is refused rather than read with its quotes."""
    if from_text_cell and isinstance(value, str) and value.lstrip().startswith('"'):
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        if isinstance(decoded, str):
            raise refuse(f"field {field!r} is JSON-quoted text ({value[:40]!r}…): the cells look JSON-encoded "
                         "(a Langfuse CSV export? read it with --format langfuse)", KIND_QUOTED)
    return prompt_from(value, f"field {field!r}")


def key_of(obj: Any, mapping: FieldMapping, guesses: tuple[str, ...] = ID_FIELD_GUESSES) -> str | None:
    if mapping.id_field:
        value = get_path(obj, mapping.id_field)
        if value is MISSING or value in (None, ""):
            raise RecordError(f"missing id field {mapping.id_field!r}")
    else:
        name = guess_field(obj, guesses) if isinstance(obj, dict) else None
        value = obj[name] if name else None
        if value in (None, ""):
            return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise RecordError(f"id field must be text or a whole number, got {describe_type(value)}")
    return str(value)


def meta_of(obj: Any, mapping: FieldMapping, base: dict | None = None) -> dict[str, Any]:
    meta = dict(base or {})
    for f in mapping.metadata_fields:
        value = get_path(obj, f)
        if value is not MISSING:
            meta[f] = value
    return meta


def reference_of(obj: Any, mapping: FieldMapping, default: Any = None) -> str | None:
    if not mapping.reference_field:
        value = default
    else:
        value = get_path(obj, mapping.reference_field)
        if value is MISSING:
            return None
    if value is None or value == "":
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = value[-1]  # a reference given per turn: the answer to the last user turn
    if not isinstance(value, str):
        raise RecordError(f"reference field {mapping.reference_field!r} must be text, got {describe_type(value)}")
    return value


def mapped_record(obj: dict, mapping: FieldMapping, prompt_field: str, source: str, *,
                  from_text_cell: bool = False) -> LogRecord:
    value = get_path(obj, prompt_field)
    if value is MISSING:
        raise RecordError(f"missing prompt field {prompt_field!r}")
    if value is None:
        raise RecordError(f"prompt field {prompt_field!r} is null")
    return LogRecord(
        key=key_of(obj, mapping),
        messages=prompt_messages(value, prompt_field, from_text_cell=from_text_cell),
        reference=reference_of(obj, mapping),
        meta=meta_of(obj, mapping),
        source=source,
    )
