"""Export a version's items as JSONL, CSV or Parquet. The file is written beside its destination and moved
into place at the end, so an interrupted export never leaves half a file. JSONL exports read back in with
`ownbench ingest --format openai --sample 0` and freeze to the same hash."""
from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlmodel import Session

from evalsets.freeze import items_of
from evalsets.versions import prompt_preview
from storage.errors import InputError
from storage.models import EvalSetVersion

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
COLUMNS = ("key", "prompt", "messages", "reference", "meta", "content_hash")


def rows(session: Session, version: EvalSetVersion) -> Iterator[dict[str, Any]]:
    for item in items_of(session, version):
        yield {"key": item.item_key, "messages": item.messages, "reference": item.reference,
               "meta": item.meta or {}, "content_hash": item.content_hash}


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """Columns for tables: the last user turn as `prompt`, structured fields as JSON text."""
    return {"key": row["key"], "prompt": prompt_preview(row["messages"], width=10**9),
            "messages": json.dumps(row["messages"], ensure_ascii=False),
            "reference": row["reference"], "meta": json.dumps(row["meta"], ensure_ascii=False, sort_keys=True),
            "content_hash": row["content_hash"]}


def export_version(session: Session, version: EvalSetVersion, dest: str | Path, fmt: str | None = None) -> int:
    dest = Path(dest)
    fmt = fmt or dest.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}", where="--format", hint=f"one of: {', '.join(EXPORT_FORMATS)}")
    if not dest.parent.exists():
        raise InputError(f"directory {dest.parent} does not exist", where="-o")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        n = _write(session, version, Path(tmp), fmt)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _write(session: Session, version: EvalSetVersion, path: Path, fmt: str) -> int:
    n = 0
    if fmt == "jsonl":
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            for row in rows(session, version):
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
    elif fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows(session, version):
                writer.writerow(flat(row))
                n += 1
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(c, pa.string()) for c in COLUMNS])
        with pq.ParquetWriter(path, schema) as writer:
            batch: list[dict[str, Any]] = []
            for row in rows(session, version):
                batch.append(flat(row))
                n += 1
                if len(batch) == 1000:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch = []
            if batch or n == 0:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return n
