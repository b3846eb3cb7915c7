"""Reading a large JSONL log with worker processes: the main process reads lines, workers parse them and build
the records, and the results come back in file order (the same records, errors and counts as one process).

Memory stays bounded: lines go out in chunks of about `CHUNK_BYTES`, with at most two chunks a worker in
flight. Used for files of at least `MIN_BYTES` on a Linux machine with more than one core.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any

from evalsets.readers.base import ReadContext, iter_raw_lines

MIN_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024
MAX_WORKERS = 4

Lines = list[tuple[int, bytes | None, str | None]]  # (line, bytes, error of a line too long)
Work = Callable[[ReadContext, Lines], tuple[list[Any], Counter, set[str]]]


def workers_for(path: str) -> int:
    """How many worker processes a file is worth: 0 (read in this process) for small files or one core."""
    if sys.platform != "linux":  # workers are forked: safe on Linux, not with macOS system libraries
        return 0
    cores = len(os.sched_getaffinity(0))
    if cores < 2 or os.path.getsize(path) < MIN_BYTES:
        return 0
    return min(cores, MAX_WORKERS)


def map_lines(ctx: ReadContext, work: Work, workers: int) -> Iterator[tuple[list[Any], Counter, set[str]]]:
    """`work(ctx, lines)` over the file's lines in chunks, in order; each worker has its own `ReadContext`
    (same path, mapping and limit) whose ignored counts come back with its results."""
    pool = multiprocessing.get_context("fork").Pool(
        workers, initializer=_init, initargs=(ctx.path, ctx.mapping, ctx.max_record_bytes, work))
    pending: deque = deque()
    try:
        for chunk in _chunks(ctx):
            pending.append(pool.apply_async(_run, (chunk,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    finally:
        pool.terminate()
        pool.join()


def _chunks(ctx: ReadContext) -> Iterator[Lines]:
    chunk: Lines = []
    size = 0
    for line, raw, err in iter_raw_lines(ctx):
        chunk.append((line, raw, err))
        size += len(raw) if raw is not None else 0
        if size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


_state: dict[str, Any] = {}


def _init(path: str, mapping: Any, max_record_bytes: int, work: Work) -> None:
    _state.update(path=path, mapping=mapping, max_record_bytes=max_record_bytes, work=work)


def _run(chunk: Lines) -> tuple[list[Any], Counter, set[str]]:
    ctx = ReadContext(_state["path"], _state["mapping"], _state["max_record_bytes"])
    return _state["work"](ctx, chunk)
