"""Rows of a large SELECT straight from the database driver, in chunks: no Row objects, no type processing,
and on PostgreSQL a server-side cursor, so memory stays bounded whatever the number of rows."""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from sqlmodel import Session

_names = itertools.count()


def stream_rows(session: Session, stmt: Any, chunk: int = 50_000) -> Iterator[list[tuple]]:
    """Chunks of plain tuples for a Core select, read inside the session's transaction. Values are the driver's
    own (SQLite: dates as text; PostgreSQL: dates and JSON as Python objects). Only for statements whose
    parameters are numbers or plain strings: they are rendered into the SQL text."""
    conn = session.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        cur = raw.cursor(name=f"ownbench_stream_{next(_names)}", binary=True)  # type: ignore[union-attr]
        cur.itersize = chunk
    else:
        cur = raw.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql)
        while True:
            rows = cur.fetchmany(chunk)
            if not rows:
                break
            yield rows
    finally:
        cur.close()
