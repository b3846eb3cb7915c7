"""Row files for the import commands: JSONL (one object a line) or CSV (a header row), read with line numbers
so that every bad row can be reported as file:line: reason."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def read_rows(path: Path, *, allowed: Sequence[str] | None = None, named: Sequence[str] = (),
              strip_csv: bool = False) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) for each row; a string instead of a row says why that line could not be read.

    With `allowed`, a field (or CSV column) outside it is refused, and the message lists `named`: the fields
    a person should know of. `strip_csv` trims the spaces a spreadsheet leaves around CSV headers and cells."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if allowed is not None:
                unknown = [f for f in (reader.fieldnames or []) if f not in allowed]
                if unknown:
                    yield 1, f"unknown column(s) {', '.join(unknown)}; columns are: {', '.join(named)}"
                    return
            for row in reader:
                if strip_csv:
                    row = {k.strip(): v.strip() if isinstance(v, str) else v for k, v in row.items() if k}
                yield reader.line_num, {k: v for k, v in row.items() if k}
        return
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, f"not valid JSON ({exc.msg} at column {exc.colno})"
                continue
            if not isinstance(obj, dict):
                yield n, "each line must be a JSON object"
                continue
            unknown = [k for k in obj if allowed is not None and k not in allowed]
            if unknown:
                yield n, f"unknown field(s) {', '.join(unknown)}; fields are: {', '.join(named)}"
                continue
            yield n, obj
