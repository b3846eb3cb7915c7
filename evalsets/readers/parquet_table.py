"""Parquet with a field mapping, read in record batches (a few thousand rows at a time). Errors point at the
1-based row: `file.parquet:ROW: reason`."""
from __future__ import annotations

from collections.abc import Iterator

from evalsets.readers.base import LogRecord, ReadContext, ReadError, RecordError
from evalsets.readers.mapping import PROMPT_FIELD_GUESSES, guess_field, mapped_record, parse_path


def read(ctx: ReadContext) -> Iterator[LogRecord | ReadError]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(ctx.path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        yield ctx.error(1, f"not a readable Parquet file: {exc}")
        return
    names = pf.schema_arrow.names
    mapping = ctx.mapping
    prompt_field = mapping.prompt_field or guess_field(dict.fromkeys(names), PROMPT_FIELD_GUESSES)
    if prompt_field is None:
        yield ctx.error(1, f"no prompt column: pass --prompt-field (columns: {', '.join(names[:12])})")
        return
    ctx.notes.setdefault("prompt_field", prompt_field)
    wanted = [prompt_field, mapping.id_field, mapping.reference_field, *mapping.metadata_fields]
    top = {parse_path(f)[0] for f in wanted if f} | ({"key", "id", "question_id"} & set(names))
    missing = [f for f in top if f not in names and f == parse_path(prompt_field)[0]]
    if missing:
        yield ctx.error(1, f"no column {prompt_field!r} (columns: {', '.join(names[:12])})")
        return
    row = 0
    for batch in pf.iter_batches(batch_size=2048, columns=[c for c in names if c in top]):
        for obj in batch.to_pylist():
            row += 1
            try:
                yield mapped_record(obj, mapping, prompt_field, f"{ctx.name}:{row}")
            except RecordError as exc:
                yield ctx.refused(row, exc)
    if row == 0:
        yield ctx.error(1, "the file has no rows: no log records")
