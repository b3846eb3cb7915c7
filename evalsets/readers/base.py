"""What every log reader shares: the log record, errors that point at `file:line`, and streaming input.

Readers never hold a whole file in memory: JSONL and CSV are read a line at a time (each line capped at
`max_record_bytes`), a JSON document is split into its records incrementally, and `.gz` files are
decompressed on the fly.
"""
from __future__ import annotations

import codecs
import gzip
import json
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from storage.errors import InputError

DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024  # about a million tokens: larger is a broken log, not a prompt
BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class LogRecord:
    """One prompt as it came from production: the conversation up to its last user turn, and its metadata."""

    key: str | None  # the record's own id, when the log has one; otherwise derived from its content
    messages: list[dict[str, Any]]
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "file:line" (for Parquet, the 1-based row)


@dataclass(slots=True, frozen=True)
class ReadError:
    """A malformed log record, located so that the user can open the file at that line."""

    path: str
    line: int
    reason: str
    pointer: str = ""  # the record's JSON path when one line holds many records (`$.data[17]`)
    kind: str = "malformed record"  # what the sampling report counts it under

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" + (f" {self.pointer}" if self.pointer else "")
        return f"{where}: {self.reason}"


class RecordError(ValueError):
    """Raised while converting one record; the reader turns it into a `ReadError` at the record's line.
    `kind` names the reason it is counted under (empty prompt, no user turn, …)."""

    kind = "malformed record"


@dataclass
class ReadContext:
    """Options and counters of one read. `ignored` counts records that are valid but not prompts (e.g. spans)."""

    path: str
    mapping: Any  # evalsets.readers.mapping.FieldMapping
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ignored: Counter = field(default_factory=Counter)
    notes: dict[str, Any] = field(default_factory=dict)  # e.g. which prompt field was guessed
    bytes_read: int = 0  # for progress bars (uncompressed bytes for .gz)
    record_path: str | None = None  # JSON path of the current record inside a JSON document (`$.data[17]`)

    @property
    def name(self) -> str:
        return self.path

    def error(self, line: int, reason: str, pointer: str | None = None, kind: str | None = None) -> ReadError:
        """A located error; `pointer` is a JSON path inside the current record (`.input`)."""
        base = self.record_path or ""
        if pointer:
            base = (base or "$") + (pointer if pointer.startswith((".", "[")) else "." + pointer)
        return ReadError(self.path, line, reason, base, kind or "malformed record")

    def refused(self, line: int, exc: RecordError, pointer: str | None = None) -> ReadError:
        return self.error(line, str(exc), pointer, getattr(exc, "kind", None))


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


class _CheckedGzip(gzip.GzipFile):
    """A gzip stream whose damage (cut short, corrupt) is an InputError naming the file, not an EOFError that
    the command line would report as a bare "Aborted!"."""

    def _guard(self, read: Any, *args: Any) -> Any:
        try:
            return read(*args)
        except EOFError as exc:
            raise InputError(f"the gzip file is truncated ({exc})", where=str(self.name),
                             hint="the file was cut short (an interrupted copy or download?); "
                                  "get it again, or check it with `gzip -t`") from None
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise InputError(f"the gzip file is damaged ({exc})", where=str(self.name),
                             hint="get the file again, or check it with `gzip -t`") from None

    def read(self, size: int | None = -1) -> bytes:
        return self._guard(super().read, size)

    def read1(self, size: int = -1) -> bytes:
        return self._guard(super().read1, size)

    def peek(self, n: int) -> bytes:
        return self._guard(super().peek, n)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guard(super().readline, size)

    def readinto(self, b: Any) -> int:
        return self._guard(super().readinto, b)


def open_binary(path: str | Path) -> BinaryIO:
    """The file's bytes, gunzipped on the fly when it is gzip (by its magic bytes, whatever its name)."""
    if is_gzip(path):
        return _CheckedGzip(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=1 << 20)


def base_name(path: str | Path) -> str:
    """The file name without a trailing `.gz`, for telling formats apart by extension."""
    name = Path(path).name.lower()
    return name.removesuffix(".gz")


def iter_raw_lines(ctx: ReadContext, fh: BinaryIO | None = None) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, bytes, error) for each line, a leading BOM removed. Lines over the limit are skipped
    without being held in memory."""
    own = fh is None
    fh = fh or open_binary(ctx.path)
    limit = ctx.max_record_bytes
    try:
        lineno = 0
        while True:
            raw = fh.readline(limit + 1)
            if not raw:
                return
            lineno += 1
            ctx.bytes_read += len(raw)
            if len(raw) > limit and not raw.endswith(b"\n"):
                size = len(raw)
                while raw and not raw.endswith(b"\n"):
                    raw = fh.readline(1 << 20)
                    size += len(raw)
                yield lineno, None, (
                    f"record is {size:,} bytes, over the {limit:,}-byte limit per record "
                    "(raise max_record_bytes if this is really one prompt)"
                )
                continue
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[3:]
            yield lineno, raw, None
    finally:
        if own:
            fh.close()


def iter_lines(ctx: ReadContext, fh: BinaryIO | None = None) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, error) for each line; text has no line ending. Lines over the limit are skipped
    without being held in memory; invalid UTF-8 and a leading BOM are handled here, once for every format."""
    for lineno, raw, err in iter_raw_lines(ctx, fh):
        if raw is None:
            yield lineno, None, err
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield lineno, None, f"invalid UTF-8 (byte {exc.start + 1} of the line); re-encode the file as UTF-8"
            continue
        yield lineno, text.rstrip("\r\n"), None


def loads(text: str | bytes) -> Any:
    """JSON text as a value: orjson when it accepts the text (several times faster), else the standard
    library, whose errors and leniency (NaN, huge integers, lone surrogates) the readers rely on. Both give
    the same value for any text both accept."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def describe_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


NESTED_TOO_DEEPLY = "JSON nested too deeply to be a log record (lists or objects inside each other hundreds of levels)"


def json_error_reason(exc: json.JSONDecodeError, text: str) -> str:
    truncated = exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated")
    lead = "truncated JSON" if truncated else "invalid JSON"
    return f"{lead}: {exc.msg} (column {exc.colno})"


def iter_json_records(ctx: ReadContext) -> Iterator[tuple[int, Any, str | None]]:
    """(line, object, error) for each record of a JSONL file or of a JSON document holding a list of records
    (`[...]` or `{"data": [...]}`): whichever the file turns out to be."""
    with open_binary(ctx.path) as fh:
        head = fh.peek(4096)[:4096] if hasattr(fh, "peek") else b""
        stripped = head.lstrip(BOM).lstrip()
        if stripped.startswith(b"[") or _WRAPPER_BYTES.match(stripped):
            yield from _iter_json_document(ctx, fh)
            return
        if stripped.startswith(b"{") and base_name(ctx.path).endswith(".json") and not _one_line_object(stripped):
            yield from _iter_json_document(ctx, fh, single=True)  # one pretty-printed object (a trace download)
            return
        empty = True
        for lineno, raw, err in iter_raw_lines(ctx, fh):
            obj = None
            if raw is not None:
                obj, err = parse_line(raw)
                if obj is None and err is None:
                    continue  # a blank line
            empty = False
            yield lineno, obj, err
        if empty:
            yield 1, None, "the file is empty: no log records"


def parse_line(raw: bytes) -> tuple[Any, str | None]:
    """One JSONL line as (object, None), (None, why not), or (None, None) when it is blank."""
    try:
        obj = orjson.loads(raw)  # the common case: valid JSON, not decoded to text first
    except orjson.JSONDecodeError:
        pass
    else:
        if type(obj) is dict:
            return obj, None
        return None, f"expected a JSON object per line, got {describe_type(obj)}"
    try:  # the standard library's errors name the problem and its column
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 (byte {exc.start + 1} of the line); re-encode the file as UTF-8"
    if not text.strip():
        return None, None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, json_error_reason(exc, text)
    except RecursionError:
        return None, NESTED_TOO_DEEPLY
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return None, f"invalid JSON: {exc}"
    if not isinstance(obj, dict):
        return None, f"expected a JSON object per line, got {describe_type(obj)}"
    return obj, None


_WRAPPER = re.compile(r'\{\s*"(data|traces|observations|runs|items|records)"\s*:\s*\[')
_WRAPPER_BYTES = re.compile(rb'\{\s*"(data|traces|observations|runs|items|records)"\s*:\s*\[')
_WS = " \t\r\n"


def _one_line_object(head: bytes) -> bool:
    first = head.split(b"\n", 1)[0]
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _iter_json_document(ctx: ReadContext, fh: BinaryIO, single: bool = False) -> Iterator[tuple[int, Any, str | None]]:
    """Split a JSON list of records incrementally with `raw_decode`, tracking line numbers. Memory is bounded
    by the largest record; a syntax error ends the file (the rest cannot be trusted) with its line."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    state = {"buf": "", "eof": False, "bytes": 0}
    pos, line = 0, 1

    def fill(want: int = 1 << 16) -> bool:
        if state["eof"]:
            return False
        chunk = fh.read(want)
        if not chunk:
            state["eof"] = True
            state["buf"] += utf8.decode(b"", final=True)
            return False
        if state["bytes"] == 0 and chunk.startswith(BOM):
            chunk = chunk[3:]
        state["bytes"] += len(chunk)
        ctx.bytes_read += len(chunk)
        state["buf"] += utf8.decode(chunk)
        return True

    def skip_ws() -> bool:
        nonlocal pos, line
        while True:
            buf = state["buf"]
            while pos < len(buf) and buf[pos] in _WS:
                if buf[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buf):
                return True
            if not fill():
                return False

    try:
        skip_ws()
        buf = state["buf"]
        list_line = line
        prefix = "$"
        if single:
            pass
        elif buf.startswith("{", pos):
            while len(state["buf"]) - pos < 512 and fill():
                pass
            m = _WRAPPER.match(state["buf"], pos)
            assert m is not None  # checked by the caller on the same bytes
            line += state["buf"].count("\n", pos, m.end())
            pos = m.end()
            prefix = f"$.{m.group(1)}"
        else:
            pos += 1  # "["
        list_line, count = line, 0
        while True:
            if single and count:
                return
            if not skip_ws():
                yield line, None, "truncated JSON: the list of records is not closed"
                return
            buf = state["buf"]
            if buf[pos] == "]" and not single:
                if count == 0:
                    yield list_line, None, "the file holds an empty list: no log records"
                return
            if count and not single:
                if buf[pos] != ",":
                    yield line, None, f"invalid JSON: expected ',' or ']' between records, found {buf[pos]!r}"
                    return
                pos += 1
                if not skip_ws():
                    yield line, None, "truncated JSON: the list of records is not closed"
                    return
            start_line = line
            ctx.record_path = "$" if single else f"{prefix}[{count}]"
            while True:
                buf = state["buf"]
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    if end >= len(buf) and not state["eof"]:
                        raise json.JSONDecodeError("need more", buf, len(buf))
                    break
                except json.JSONDecodeError as exc:
                    incomplete = exc.msg == "need more" or exc.msg.startswith("Unterminated") or exc.pos >= len(buf) - 32
                    if incomplete and not state["eof"]:
                        if len(buf) - pos > ctx.max_record_bytes:
                            yield start_line, None, (
                                f"record is over the {ctx.max_record_bytes:,}-byte limit per record; "
                                "the rest of the file cannot be read"
                            )
                            return
                        fill(max(1 << 16, len(buf) - pos))
                        continue
                    err_line = line + buf.count("\n", pos, exc.pos)
                    truncated = exc.msg.startswith("Unterminated") or exc.pos >= len(buf.rstrip())
                    lead = "truncated JSON" if state["eof"] and truncated else "invalid JSON"
                    yield err_line, None, f"{lead}: {exc.msg}; the rest of the file cannot be read"
                    return
                except RecursionError:
                    yield start_line, None, NESTED_TOO_DEEPLY + "; the rest of the file cannot be read"
                    return
                except ValueError as exc:
                    yield start_line, None, f"invalid JSON: {exc}; the rest of the file cannot be read"
                    return
            line += buf.count("\n", pos, end)
            pos = end
            count += 1
            if not isinstance(obj, dict):
                yield start_line, None, f"expected each record to be a JSON object, got {describe_type(obj)}"
            else:
                yield start_line, obj, None
            if pos > 1 << 20:  # drop what has been consumed; keeps memory at about one record
                state["buf"] = state["buf"][pos:]
                pos = 0
    except UnicodeDecodeError as exc:
        yield line, None, f"invalid UTF-8 near byte {state['bytes'] - len(exc.object) + exc.start + 1:,}; re-encode the file as UTF-8"
