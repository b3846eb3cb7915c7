"""Chosen columns of many rows as numpy arrays, read once: what analysis computes from and what its manifest
digests are the same arrays.

Rows come straight from the driver in chunks (`storage.stream`), in id order; each chunk is turned into columns
by numpy in C (one object array per chunk, not a Python loop per value), and text columns become int32 codes
into a list of names, since the text columns read here (criterion, status, verdict) take few values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import JSON, Text, case, cast, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from storage.stream import stream_rows

# kinds of column: "i" integer (NULL → -1; ids, counts and lengths are never negative), "f" float (NULL → NaN),
# "b" a condition (False/True), "t" text (Categorical; None is a name too)
KINDS = ("i", "f", "b", "t")


@dataclass
class Categorical:
    """A text column as int32 codes into `names`, names in order of first appearance."""

    codes: np.ndarray
    names: list[str | None]

    def code(self, name: str | None) -> int:
        """The code of `name`, -1 when no row holds it."""
        return self.names.index(name) if name in self.names else -1

    @property
    def size(self) -> int:
        return int(self.codes.size)


@dataclass
class ColumnSet:
    """Rows of one table in id order: `ids` (int64) and an array (or Categorical) per named column."""

    table: str
    ids: np.ndarray
    columns: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.columns[name]

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, mask: np.ndarray) -> ColumnSet:
        """The rows where `mask` holds, still in id order."""
        out = ColumnSet(self.table, self.ids[mask], kinds=dict(self.kinds))
        for name, col in self.columns.items():
            out.columns[name] = Categorical(col.codes[mask], col.names) if isinstance(col, Categorical) else col[mask]
        return out

    @staticmethod
    def concat(parts: list[ColumnSet]) -> ColumnSet:
        """Sets of the same columns (disjoint ids) as one, in id order; text names merged."""
        first = parts[0]
        ids = np.concatenate([p.ids for p in parts])
        order = np.argsort(ids, kind="stable")
        out = ColumnSet(first.table, ids[order], kinds=dict(first.kinds))
        for name, kind in first.kinds.items():
            if kind == "t":
                merged: dict[str | None, int] = {}
                codes = []
                for p in parts:
                    col = p.columns[name]
                    remap = np.array([merged.setdefault(n, len(merged)) for n in col.names] or [0], np.int32)
                    codes.append(remap[col.codes])
                out.columns[name] = Categorical(np.concatenate(codes)[order], list(merged))
            else:
                out.columns[name] = np.concatenate([p.columns[name] for p in parts])[order]
        return out


def _sql(kind: str, expr: Any, dialect: str) -> Any:
    if kind == "b":
        return case((expr, 1), else_=0)
    if kind == "t" and dialect == "postgresql" and isinstance(getattr(expr, "type", None), JSON):
        return cast(expr, Text)  # JSON: its text as stored, not the driver's parsed object
    return expr


def read_columns(session: Session, table: Any, columns: dict[str, tuple[str, Any]],
                 where: ColumnElement[bool] | None, *, constants: dict[str, int] | None = None,
                 sparse: dict[str, tuple[str, Any]] | None = None, chunk: int = 50_000) -> ColumnSet:
    """`columns` maps a name to (kind, SQL expression over `table`); the rows where `where` holds, in id order.
    `constants` are integer columns every selected row holds by `where` (a run id): filled in, not read.
    `sparse` are columns that are mostly NULL (or a condition mostly false): only the rows where they hold a value
    are read, by a second query, and the others get NULL's value (-1, NaN, False, None)."""
    dialect = session.connection().dialect.name
    names = list(columns)
    kinds = {n: columns[n][0] for n in names}
    nullable = {n: getattr(columns[n][1], "nullable", True) for n in names}
    unknown = sorted(set(kinds.values()) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown column kind(s) {unknown}; one of {KINDS}")
    stmt = select(table.c.id, *[_sql(kinds[n], columns[n][1], dialect) for n in names]).order_by(table.c.id)
    if where is not None:
        stmt = stmt.where(where)
    ids: list[np.ndarray] = []
    parts: dict[str, list[Any]] = {n: [] for n in names}
    seen: dict[str, dict[str | None, int]] = {n: {} for n in names if kinds[n] == "t"}
    for rows in stream_rows(session, stmt, chunk):
        grid = np.empty((len(rows), len(names) + 1), dtype=object)
        grid[:] = rows  # one C pass over the chunk's tuples (zip(*rows) costs ten times more)
        ids.append(grid[:, 0].astype(np.int64))
        for k, name in enumerate(names, start=1):
            col = grid[:, k]
            kind = kinds[name]
            if kind == "t":
                table_ = seen[name]
                values = col.tolist()
                for v in dict.fromkeys(values):  # the chunk's distinct values, in order of first appearance
                    table_.setdefault(v, len(table_))
                parts[name].append(np.fromiter(map(table_.__getitem__, values), np.int32, len(values)))
                continue
            if kind == "f":
                parts[name].append(col.astype(np.float64))  # None becomes NaN
            elif not nullable[name]:
                parts[name].append(col.astype(bool if kind == "b" else np.int64))
            else:
                parts[name].append(np.where(col == None, 0 if kind == "b" else -1, col)
                                   .astype(bool if kind == "b" else np.int64))
    out = ColumnSet(table.name, np.concatenate(ids) if ids else np.zeros(0, np.int64), kinds=kinds)
    empty = {"i": np.int64, "f": np.float64, "b": bool, "t": np.int32}
    for name in names:
        arr = np.concatenate(parts[name]) if parts[name] else np.zeros(0, empty[kinds[name]])
        out.columns[name] = Categorical(arr, list(seen[name])) if kinds[name] == "t" else arr
    if sparse:
        out.columns.update(_sparse(session, table, sparse, where, out.ids, dialect, chunk))
        out.kinds.update({name: kind for name, (kind, _) in sparse.items()})
    for name, value in (constants or {}).items():
        out.columns[name] = np.full(out.ids.size, value, np.int64)
        out.kinds[name] = "i"
    return out


def _held(kind: str, expr: Any) -> Any:
    held = expr if kind == "b" else expr.is_not(None)
    if isinstance(getattr(expr, "type", None), JSON):  # the ORM writes None as JSON 'null': no value either
        held = held & (cast(expr, Text) != "null")
    return held


def _sparse(session: Session, table: Any, columns: dict[str, tuple[str, Any]], where: ColumnElement[bool] | None,
            ids: np.ndarray, dialect: str, chunk: int) -> dict[str, Any]:
    """Mostly-NULL columns over the rows `ids`: one query reads the rows where any of them holds a value, and the
    values are put in place by id."""
    names = list(columns)
    held = [_held(*columns[n]) for n in names]
    stmt = select(table.c.id, *[_sql(*columns[n], dialect) for n in names], *held).where(or_(*held))
    if where is not None:
        stmt = stmt.where(where)
    k = len(names)
    at_parts: list[np.ndarray] = []
    got_rows: list[tuple] = []
    for rows in stream_rows(session, stmt.order_by(table.c.id), chunk):
        got = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        at = np.searchsorted(ids, got)
        keep = (at < ids.size) & (ids[np.minimum(at, max(ids.size - 1, 0))] == got) if ids.size else got < 0
        at_parts.append(at[keep])
        got_rows.extend(r for r, kept in zip(rows, keep.tolist()) if kept)
    at = np.concatenate(at_parts) if at_parts else np.zeros(0, np.int64)
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        kind = columns[name][0]
        mine = np.array([bool(r[1 + k + j]) for r in got_rows], bool)
        where_at = at[mine] if mine.size else at[:0]
        values = [r[1 + j] for r, m in zip(got_rows, mine.tolist()) if m]
        if kind == "t":
            seen: dict[str | None, int] = {None: 0}
            codes = np.zeros(ids.size, np.int32)
            codes[where_at] = [seen.setdefault(v, len(seen)) for v in values]
            out[name] = Categorical(codes, list(seen))
            continue
        arr = np.full(ids.size, np.nan if kind == "f" else False if kind == "b" else -1,
                      np.float64 if kind == "f" else bool if kind == "b" else np.int64)
        arr[where_at] = [bool(v) for v in values] if kind == "b" else values
        out[name] = arr
    return out
