"""LLM calls that belong to a trace (Langfuse observations, OpenTelemetry spans, LangSmith runs): the one rule
for an agent loop's later steps.

An agent framework often logs each step's call with only what is new since the last one: the second call's
input is `[assistant tool call, tool result]`, without the user's question. Such a call (no user turn in its
input) continues an earlier call of the same trace: its conversation is rebuilt from that call's conversation
and logged output, then its own new messages (those already present are not repeated). Calls are ordered by
start time, whatever order the file lists them in. The earlier call is the latest one whose conversation
already holds the continuation's first message (the tool call it answers), else the latest one before it.
A continuation that no earlier call of its trace gives a user turn is refused at its own location.

Calls with a user turn are yielded as they are read. Continuations wait for the end of the file, which is
then read a second time for the calls of their traces only: memory stays bounded by those traces, not by the
file.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from evalsets.readers.base import LogRecord, ReadContext, ReadError, RecordError
from evalsets.readers.messages import KIND_NO_USER, prompt_of, reply_messages


@dataclass(slots=True)
class Step:
    """One LLM call as a reader found it; `record.messages` is the whole conversation the call was sent."""

    record: LogRecord
    trace: str | None  # the trace id; None: the call stands alone
    start: int | None  # start time in nanoseconds, when logged
    line: int
    pointer: str  # JSON path of the call's input inside the record (for a refusal)
    record_path: str | None = None  # the record's own JSON path in the file (`$.data[17]`)
    unit: Any = field(default=None, repr=False)  # the logged call itself (its output, usage, …)


class Refused(NamedTuple):
    """A call whose input is refused (unknown shape, empty, …): its record is wrong, the file is not."""

    error: ReadError


class Read(NamedTuple):
    """What `resolve` gives for each call: the record or why not, the call, and whether the record was
    refused (an error with `refused` False is the file's, e.g. invalid JSON)."""

    result: LogRecord | ReadError
    step: Step | None
    refused: bool = False


StepSource = Callable[[set[str] | None], Iterator["Step | Refused | ReadError"]]
"""Reads the file's calls; given a set of trace ids, only the calls of those traces need to come back."""
OutputOf = Callable[[Any], Any]
"""The logged output of a call's `unit`."""


def time_ns(v: Any) -> int | None:
    """A start or end time in nanoseconds: OTLP's nanosecond string, the JS SDK's [seconds, nanoseconds],
    ISO text (Langfuse, LangSmith)."""
    if type(v) is str and v.isdigit():  # OTLP JSON: the common case first
        return int(v)
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return int(v[0] * 1_000_000_000 + v[1])
    if isinstance(v, str):
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            return None
        if t.tzinfo is None:  # LangSmith writes UTC without an offset
            t = t.replace(tzinfo=UTC)
        return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
    return None


def has_user_turn(messages: list[dict[str, Any]]) -> bool:
    for m in messages:
        if m["role"] == "user":
            return True
    return False


def resolve(ctx: ReadContext, steps: StepSource, output_of: OutputOf) -> Iterator[Read]:
    """Every call of the file: its record's messages are its prompt (the conversation up to the last user
    turn), or the reason it has none."""
    waiting: set[str] = set()
    for s in steps(None):
        if type(s) is ReadError:
            yield Read(s, None)
            continue
        if type(s) is Refused:
            yield Read(s.error, None, True)
            continue
        assert isinstance(s, Step)
        got = first_pass(ctx, s)
        if got is None:
            waiting.add(s.trace)  # type: ignore[arg-type]
        else:
            yield got
    if waiting:
        yield from continuations(ctx, steps, output_of, waiting)


def first_pass(ctx: ReadContext, s: Step) -> Read | None:
    """A call's prompt, or why it has none; None for a continuation, which waits for its trace."""
    msgs = s.record.messages
    if has_user_turn(msgs):
        return _prompted(ctx, s, msgs)
    if s.trace is None:
        return Read(_refused(ctx, s, _no_user(msgs)), s, True)
    return None


def continuations(ctx: ReadContext, steps: StepSource, output_of: OutputOf, waiting: set[str]) \
        -> Iterator[Read]:
    """The continuations of the `waiting` traces, rebuilt from a second reading of the file."""
    # the second reading must not count records, bytes or errors twice
    ignored, read, record_path = Counter(ctx.ignored), ctx.bytes_read, ctx.record_path
    by_trace: dict[str, list[Step]] = {}  # in file order, so that the same file gives the same records
    for s in steps(waiting):
        if type(s) is Step and s.trace in waiting:
            by_trace.setdefault(s.trace, []).append(s)
    ctx.ignored.clear()
    ctx.ignored.update(ignored)
    ctx.bytes_read, ctx.record_path = read, record_path
    for trace, group in by_trace.items():
        for s, earlier, conv in stitch(group, output_of):
            if conv is None:
                yield Read(_refused(ctx, s, _no_user(s.record.messages)
                                    + f", and no earlier LLM call of its trace {trace} has one"), s, True)
                continue
            if earlier is not None and earlier.record.key is not None:
                s.record.meta["continues"] = earlier.record.key
            yield _prompted(ctx, s, conv)


def stitch(group: list[Step], output_of: OutputOf) -> Iterator[tuple[Step, Step | None, list[dict] | None]]:
    """(continuation, the call it continues, its rebuilt conversation or None) for each call of one trace
    that has no user turn of its own, in start-time order."""
    timed = all(s.start is not None for s in group)
    order = sorted(range(len(group)), key=(lambda i: (group[i].start, i)) if timed else (lambda i: i))
    done: list[tuple[Step, list[dict[str, Any]]]] = []  # (call, its conversation and its answer)
    for i in order:
        s = group[i]
        conv = s.record.messages
        earlier = None
        if not has_user_turn(conv):
            earlier, history = _continued(done, conv)
            if history is None:
                yield s, None, None
                continue
            conv = merge(history, conv)
            yield s, earlier, conv
        done.append((s, merge(conv, reply_messages(output_of(s.unit)))))


def _continued(done: list[tuple[Step, list[dict]]], conv: list[dict]) -> tuple[Step | None, list[dict] | None]:
    """The earlier call a continuation follows: the latest that holds its first message, else the latest."""
    first = conv[0] if conv else None
    latest: tuple[Step, list[dict]] | None = None
    for s, history in reversed(done):
        if not has_user_turn(history):
            continue
        if first is not None and first in history:
            return s, history
        latest = latest or (s, history)
    return (latest[0], latest[1]) if latest else (None, None)


def merge(history: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`history` followed by the messages of `new` after those it already holds (a repeated system prompt,
    the tool call that the earlier call answered with)."""
    i = 0
    while i < len(new) and new[i] in history:
        i += 1
    return history + new[i:]


def _no_user(messages: list[dict[str, Any]]) -> str:
    return "the conversation has no user turn (roles: " + ", ".join(dict.fromkeys(m["role"] for m in messages)) + ")"


def _prompted(ctx: ReadContext, s: Step, conv: list[dict[str, Any]]) -> Read:
    try:
        s.record.messages = prompt_of(conv)
    except RecordError as exc:
        return Read(_refused(ctx, s, str(exc), getattr(exc, "kind", None)), s, True)
    return Read(s.record, s)


def _refused(ctx: ReadContext, s: Step, reason: str, kind: str | None = KIND_NO_USER) -> ReadError:
    return error_at(ctx, s, reason, s.pointer, kind or KIND_NO_USER)


def error_at(ctx: ReadContext, s: Step, reason: str, pointer: str, kind: str | None = None) -> ReadError:
    """An error located at the call's record (`file:line $.data[17]` + `pointer`), whenever it is reported."""
    saved, ctx.record_path = ctx.record_path, s.record_path
    try:
        return ctx.error(s.line, reason, pointer or None, kind)
    finally:
        ctx.record_path = saved
