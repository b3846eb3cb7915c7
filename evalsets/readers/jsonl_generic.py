"""Generic JSONL (or a JSON list) with a field mapping: `--prompt-field`, `--id-field`, `--metadata-fields`."""
from __future__ import annotations

from collections.abc import Iterator

from evalsets.readers.base import LogRecord, ReadContext, ReadError, RecordError, iter_json_records
from evalsets.readers.mapping import PROMPT_FIELD_GUESSES, guess_field, mapped_record


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    prompt_field = ctx.mapping.prompt_field
    for line, obj, err in iter_json_records(ctx):
        if err is not None:
            yield ctx.error(line, err)
            continue
        if prompt_field is None:
            prompt_field = guess_field(obj, PROMPT_FIELD_GUESSES)
            if prompt_field is None:
                yield ctx.error(line, f"no prompt field: pass --prompt-field (fields here: {', '.join(list(obj)[:10])})")
                continue
            ctx.notes["prompt_field"] = prompt_field
        try:
            yield mapped_record(obj, ctx.mapping, prompt_field, f"{ctx.name}:{line}")
        except RecordError as exc:
            yield ctx.refused(line, exc)
