"""CSV / TSV with a header row and a field mapping. Read a line at a time; line numbers are physical lines,
so a quoted field spanning lines still points at the line where its record starts."""
from __future__ import annotations

import csv
from collections.abc import Iterator

from evalsets.readers.base import LogRecord, ReadContext, ReadError, RecordError, base_name, iter_lines
from evalsets.readers.mapping import PROMPT_FIELD_GUESSES, guess_field, mapped_record


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    bad_lines: dict[int, str] = {}
    state = {"line": 0}

    def lines() -> Iterator[str]:
        for lineno, text, err in iter_lines(ctx):
            state["line"] = lineno
            if err is not None:
                bad_lines[lineno] = err
                yield ""  # keeps csv's line count aligned; the record is reported below
                continue
            yield text + "\n"

    csv.field_size_limit(max(ctx.max_record_bytes, 131072))
    delimiter = "\t" if base_name(ctx.path).endswith(".tsv") else ","
    reader = csv.reader(lines(), delimiter=delimiter)
    header: list[str] | None = None
    prompt_field = ctx.mapping.prompt_field
    start = 1
    while True:
        start = state["line"] + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield ctx.error(start, f"malformed CSV: {exc}")
            continue
        end = state["line"]
        bad = [bad_lines.pop(n) for n in range(start, end + 1) if n in bad_lines]
        if bad:
            if header is None:
                yield ctx.error(start, f"header row: {bad[0]}")
                return
            yield ctx.error(start, bad[0])
            continue
        if header is None:
            if not row:
                continue
            header = [h.strip() for h in row]
            if prompt_field is None:
                prompt_field = guess_field(dict.fromkeys(header), PROMPT_FIELD_GUESSES)
                if prompt_field is None:
                    yield ctx.error(start, f"no prompt column: pass --prompt-field (columns: {', '.join(header[:12])})")
                    return
                ctx.notes["prompt_field"] = prompt_field
            elif prompt_field not in header:
                yield ctx.error(start, f"no column {prompt_field!r} (columns: {', '.join(header[:12])})")
                return
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            yield ctx.error(start, f"row has {len(row)} fields, the header has {len(header)}")
            continue
        try:
            yield mapped_record(dict(zip(header, row)), ctx.mapping, prompt_field, f"{ctx.name}:{start}",
                                from_text_cell=True)
        except RecordError as exc:
            yield ctx.refused(start, exc)
    if header is None:
        yield ctx.error(1, "the file is empty: no header row and no log records")
