"""Judgments and labels are append-only: a new verdict is a new row and the latest counts, so every report can
say exactly which rows it read (see analysis/manifest.py). Every engine of ours refuses an UPDATE or DELETE on
those tables, whether it comes from the ORM or from a Core statement, before it reaches the database."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

APPEND_ONLY_TABLES = ("judgment", "label", "adjudication")
# Statements as SQLAlchemy renders them for both dialects: `UPDATE judgment SET …`, `DELETE FROM "label" …`.
_WRITE = re.compile(r"\s*(UPDATE|DELETE\s+FROM)\s+\"?(" + "|".join(APPEND_ONLY_TABLES) + r")\"?(\s|$)", re.IGNORECASE)


class AppendOnlyViolation(RuntimeError):
    """Code tried to change or remove a judgment or a label."""


def _refuse(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    m = _WRITE.match(statement)
    if m is not None:
        verb, table = m.group(1).split()[0].upper(), m.group(2).lower()
        raise AppendOnlyViolation(
            f"{verb} on {table!r} refused: judgments and labels are append-only (add a new row; the latest counts)")


def guard(engine: Engine) -> None:
    """Refuse UPDATE and DELETE on the append-only tables on this engine (idempotent)."""
    if not event.contains(engine, "before_cursor_execute", _refuse):
        event.listen(engine, "before_cursor_execute", _refuse)
