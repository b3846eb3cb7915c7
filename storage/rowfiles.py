"""Row files for the import commands: JSONL (one object a line) or CSV (a header row), read with line numbers
so that every bad row can be reported as file:line: reason."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def decoded_lines(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, None) per line, or (line number, None, why) for a line that is not UTF-8."""
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                yield n, raw.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                yield n, None, (f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                                "save the file as UTF-8")


def parse_json(text: str) -> Any:
    """json.loads, with every way it can fail as a ValueError that says why in words."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ValueError(f"not valid JSON ({exc})") from None


class _NotUtf8(Exception):
    def __init__(self, line: int, why: str) -> None:
        self.line, self.why = line, why


def _csv_lines(path: Path) -> Iterator[str]:
    for n, text, why in decoded_lines(path):
        if text is None:
            raise _NotUtf8(n, why or "not UTF-8 text")
        yield text


def read_rows(path: Path, *, allowed: Sequence[str] | None = None, named: Sequence[str] = (),
              strip_csv: bool = False) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) for each row; a string instead of a row says why that line could not be read.

    With `allowed`, a field (or CSV column) outside it is refused, and the message lists `named`: the fields
    a person should know of. `strip_csv` trims the spaces a spreadsheet leaves around CSV headers and cells."""
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(_csv_lines(path))
        try:
            if allowed is not None:
                unknown = [f for f in (reader.fieldnames or []) if f not in allowed]
                if unknown:
                    yield 1, f"unknown column(s) {', '.join(unknown)}; columns are: {', '.join(named)}"
                    return
            for row in reader:
                if strip_csv:
                    row = {k.strip(): v.strip() if isinstance(v, str) else v for k, v in row.items() if k}
                yield reader.line_num, {k: v for k, v in row.items() if k}
        except _NotUtf8 as exc:  # the rest of the file cannot be split into rows reliably
            yield exc.line, exc.why
        except csv.Error as exc:
            yield reader.line_num, f"not valid CSV ({exc})"
        return
    for n, line, why in decoded_lines(path):
        if line is None:
            yield n, why or "not UTF-8 text"
            continue
        if not line.strip():
            continue
        try:
            obj = parse_json(line)
        except ValueError as exc:
            yield n, str(exc)
            continue
        if not isinstance(obj, dict):
            yield n, "each line must be a JSON object"
            continue
        unknown = [k for k in obj if allowed is not None and k not in allowed]
        if unknown:
            yield n, f"unknown field(s) {', '.join(unknown)}; fields are: {', '.join(named)}"
            continue
        yield n, obj
