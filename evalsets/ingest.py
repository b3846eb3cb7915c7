"""From log files to a frozen version: read → redact → dedupe → (reservoir) → sample → freeze.

Everything up to `freeze` happens in memory without touching the database, and `freeze` runs in the
caller's session: a failed ingest leaves no version and no rows behind.

Memory stays bounded on any input size: the reader streams, exact dedupe keeps 8 bytes per distinct prompt,
and at most `pool_cap` records are kept (a seeded reservoir sample of the distinct records, in their original
order; the report says when this happened). Near-duplicate detection and clustering run on that pool.
"""
from __future__ import annotations

import gc
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from evalsets.dedupe import ExactDeduper, near_duplicates
from evalsets.freeze import ItemDraft, freeze, version_hash
from evalsets.language import language_of
from evalsets.readers import FieldMapping, LogRecord, ReadContext, ReadError, detect_format, reader_for
from evalsets.readers.base import DEFAULT_MAX_RECORD_BYTES, is_gzip
from evalsets.readers.messages import content_text, conversation_text, count_user_turns
from evalsets.redact import redact_record
from evalsets.sampling import PoolEntry, sample
from storage.errors import InputError
from storage.hashing import content_hash, file_hash
from storage.models import EvalSet, EvalSetVersion

MAX_LISTED_ERRORS = 20
KEY_MAX = 200

# stage, done, total (None when unknown). Stages: "reading", "near-duplicates", "clustering", "freezing".
Progress = Callable[[str, int, "int | None"], None]


@dataclass
class IngestOptions:
    fmt: str = "auto"
    mapping: FieldMapping = field(default_factory=FieldMapping)
    on_error: str = "fail"  # fail | skip
    redact: bool = False
    near_dup_threshold: float = 0.8  # estimated Jaccard on word 3-grams; 1.0 turns near-dup detection off
    sample: int = 250  # 0: keep the whole pool
    seed: int = 0
    quotas: dict[str, int] | None = None  # None: sampling.default_quotas(sample)
    pool_cap: int = 20_000
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    description: str | None = None

    def check(self) -> None:
        if self.on_error not in ("fail", "skip"):
            raise InputError(f"--on-error must be fail or skip, not {self.on_error!r}", where="--on-error")
        if not 0.0 < self.near_dup_threshold <= 1.0:
            raise InputError("the near-duplicate threshold must be in (0, 1]", where="--near-dup-threshold",
                             hint="0.8 flags prompts sharing about 80 % of their word 3-grams; 1 turns it off")
        if self.sample < 0:
            raise InputError("the sample size cannot be negative", where="--sample", hint="0 keeps every record")
        if self.pool_cap < max(self.sample, 1):
            raise InputError(f"the pool cap ({self.pool_cap}) is smaller than the sample ({self.sample})",
                             where="--pool-cap")


@dataclass
class Pool:
    """What reading produced: the pooled records in stream order, and what happened on the way."""

    records: list[LogRecord]
    files: list[dict[str, Any]]
    records_read: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)
    error_reasons: Counter = field(default_factory=Counter)  # refused records by reason (empty prompt, …)
    ignored: Counter = field(default_factory=Counter)
    redactions: Counter = field(default_factory=Counter)
    exact_duplicates: int = 0
    distinct: int = 0
    reservoir: bool = False


@dataclass
class IngestResult:
    version: EvalSetVersion
    report: dict[str, Any]
    created: bool  # False when exactly this content was frozen before (the existing version is returned)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Reading makes millions of short-lived objects that reference counting frees at once; at the cyclic
    collector's default pace (every 700 allocations) it re-walked the record being read and the pool, about
    40% of the reading time. Cycles (a refused record's exception and its frames) are still collected."""
    before = gc.get_threshold()
    gc.set_threshold(20_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def read_pool(paths: Sequence[str | Path], options: IngestOptions, progress: Progress | None = None) -> Pool:
    """Stream every file through the reader, redaction, exact dedupe and the reservoir."""
    with _fewer_collections():
        return _read_pool(paths, options, progress)


def _read_pool(paths: Sequence[str | Path], options: IngestOptions, progress: Progress | None) -> Pool:
    options.check()
    for p in paths:
        if Path(p).is_dir():
            raise InputError("is a directory, not a log file", where=str(p),
                             hint=f"give the files in it, e.g. {Path(p) / '*.jsonl'}")
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise InputError("no such file", where=missing[0], hint="check the path")
    if not paths:
        raise InputError("no log files given", hint="ownbench ingest FILE... --name NAME")
    sizes = [os.path.getsize(p) for p in paths]
    total_bytes = None if any(is_gzip(p) for p in paths) else sum(sizes)
    rng = random.Random(options.seed)
    dedupe = ExactDeduper()
    reservoir: list[tuple[int, LogRecord]] = []
    pool = Pool(records=[], files=[])
    seen_distinct = 0
    done_bytes = 0
    stop = False
    for path in paths:
        fmt = detect_format(path, options.mapping) if options.fmt == "auto" else options.fmt
        read = reader_for(fmt)
        ctx = ReadContext(str(path), options.mapping, options.max_record_bytes)
        info: dict[str, Any] = {"path": str(Path(path).resolve()), "format": fmt, "records": 0, "errors": 0}
        for n, item in enumerate(read(ctx)):
            if progress is not None and n % 5000 == 0:
                progress("reading", done_bytes + ctx.bytes_read, total_bytes)
            if isinstance(item, ReadError):
                pool.error_count += 1
                pool.error_reasons[item.kind] += 1
                info["errors"] += 1
                if len(pool.errors) < MAX_LISTED_ERRORS:
                    pool.errors.append(str(item))
                if options.on_error == "fail" and pool.error_count >= MAX_LISTED_ERRORS:
                    stop = True
                    break
                continue
            pool.records_read += 1
            info["records"] += 1
            if options.redact:
                redact_record(item, pool.redactions)
            if not dedupe.is_new(conversation_text(item.messages)):
                continue
            if seen_distinct < options.pool_cap:
                reservoir.append((seen_distinct, item))
            else:  # Algorithm R: every distinct record ends up in the pool with the same probability
                j = rng.randrange(seen_distinct + 1)
                if j < options.pool_cap:
                    reservoir[j] = (seen_distinct, item)
            seen_distinct += 1
        done_bytes += ctx.bytes_read
        if ctx.notes:
            info.update(ctx.notes)
        if ctx.ignored:
            info["ignored"] = dict(ctx.ignored)
            pool.ignored.update(ctx.ignored)
        pool.files.append(info)
        if stop:
            break
    if progress is not None:
        progress("reading", done_bytes, total_bytes or done_bytes)
    if pool.error_count and options.on_error == "fail":
        more = " (reading stopped there)" if stop else ""
        raise InputError(
            f"{pool.error_count} malformed log record(s){more}:\n  " + "\n  ".join(pool.errors),
            hint="fix the records, choose the right --format / --prompt-field, or pass --on-error skip "
                 "to leave them out (the count is stored with the version)",
        )
    if seen_distinct == 0:
        where = ", ".join(str(p) for p in paths)
        ignored = f"; ignored: {dict(pool.ignored)}" if pool.ignored else ""
        raise InputError(f"no usable log records in {where}{ignored}",
                         hint="check --format and --prompt-field" if not pool.error_count else
                         f"all {pool.error_count} records were malformed: " + "; ".join(pool.errors[:3]))
    reservoir.sort(key=lambda t: t[0])
    pool.records = [r for _, r in reservoir]
    pool.exact_duplicates = dedupe.removed
    pool.distinct = seen_distinct
    pool.reservoir = seen_distinct > options.pool_cap
    for info in pool.files:
        info["sha256"] = file_hash(info["path"])
    return pool


def item_key(record: LogRecord) -> str:
    if record.key is None:
        return "h-" + content_hash(record.messages)[:16]
    key = record.key.strip() or "h-" + content_hash(record.messages)[:16]
    if len(key) > KEY_MAX:
        key = key[: KEY_MAX - 14] + "~" + content_hash(key)[:12]
    return key


def unique_keys(records: Sequence[LogRecord]) -> tuple[list[str], int]:
    """Item keys, unique within the pool: a repeated id with other content gets `~2`, `~3`… in order."""
    keys, used, renamed = [], set(), 0
    for r in records:
        key = item_key(r)
        if key in used:
            base, n = key[: KEY_MAX - 6], 2
            while f"{base}~{n}" in used:
                n += 1
            key, renamed = f"{base}~{n}", renamed + 1
        used.add(key)
        keys.append(key)
    return keys, renamed


def build(pool: Pool, options: IngestOptions, progress: Progress | None = None) -> tuple[list[ItemDraft], dict]:
    """Near-dedupe and sample the pool; the drafts to freeze and the sampling report."""
    texts = [conversation_text(r.messages) for r in pool.records]
    cb = (lambda d, t: progress("near-duplicates", d, t)) if progress is not None else None
    dup_of = near_duplicates(texts, options.near_dup_threshold, cb)
    kept = [i for i, d in enumerate(dup_of) if d is None]
    records = [pool.records[i] for i in kept]
    keys, renamed = unique_keys(records)
    entries = [
        PoolEntry(
            text=texts[i],
            length=len(texts[i]),
            user_turns=count_user_turns(pool.records[i].messages),
            language=language_of(pool.records[i].meta,
                                 " ".join(content_text(m["content"]) for m in pool.records[i].messages
                                          if m["role"] == "user")),
        )
        for i in kept
    ]
    result = sample(entries, options.sample, seed=options.seed, quotas=options.quotas,
                    progress=(lambda s, d, t: progress(s, d, t)) if progress is not None else None)
    drafts = [ItemDraft(keys[i], records[i].messages, records[i].reference, records[i].meta) for i in result.selected]
    near = len(dup_of) - len(kept)
    report: dict[str, Any] = {
        "records_read": pool.records_read,
        "skipped": {"count": pool.error_count, "by_reason": dict(pool.error_reasons), "first_errors": pool.errors},
        "ignored": dict(pool.ignored),
        "redaction": {"enabled": options.redact, "counts": dict(pool.redactions)},
        "duplicates": {
            "exact": pool.exact_duplicates,
            "near": near,
            "near_threshold": options.near_dup_threshold,
            "near_scope": "the pool after reservoir sampling" if pool.reservoir else "the whole pool",
            "keys_renamed": renamed,
        },
        "pool": {
            "distinct_records": pool.distinct,
            "cap": options.pool_cap,
            "reservoir_sampled": pool.reservoir,
            "size": len(entries),
            "note": (f"{pool.distinct:,} distinct records exceeded the pool cap; a seeded reservoir sample of "
                     f"{len(pool.records):,} was kept" if pool.reservoir else "every distinct record was pooled"),
        },
        "sampling": result.report,
        "selected": [
            {"key": keys[i], "source": records[i].source, "reason": result.reasons[i],
             "cluster": result.clusters.get(i), "language": entries[i].language}
            for i in result.selected
        ],
    }
    return drafts, report


def ingest(
    session: Session,
    paths: Sequence[str | Path],
    set_name: str,
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Read, redact, dedupe, sample and freeze `paths` as a new version of `set_name`."""
    options = options or IngestOptions()
    if not set_name or not set_name.strip() or "@" in set_name:
        raise InputError(f"invalid set name {set_name!r}", where="--name", hint="a name without '@', e.g. support-bot")
    pool = read_pool(paths, options, progress)
    drafts, report = build(pool, options, progress)
    source = {
        "files": pool.files,
        "options": {
            "format": options.fmt, **options.mapping.as_dict(), "on_error": options.on_error,
            "redact": options.redact, "near_dup_threshold": options.near_dup_threshold, "sample": options.sample,
            "seed": options.seed, "quotas": options.quotas, "pool_cap": options.pool_cap,
        },
    }
    if progress is not None:
        progress("freezing", 0, len(drafts))
    digest = version_hash(d.payload() for d in drafts)
    existed = session.exec(
        select(EvalSetVersion).join(EvalSet).where(EvalSet.name == set_name, EvalSetVersion.content_hash == digest)
    ).first() is not None
    version = freeze(session, set_name, drafts, sampling_report=report, skipped_count=pool.error_count,
                     source=source, description=options.description)
    if progress is not None:
        progress("freezing", len(drafts), len(drafts))
    return IngestResult(version, version.sampling_report or report, created=not existed)


def drafts_from_files(paths: Sequence[str | Path], options: IngestOptions) -> list[ItemDraft]:
    """Every record of `paths` as an item draft (exact duplicates dropped, no sampling): for editing a version."""
    opts = IngestOptions(**{**options.__dict__, "sample": 0, "near_dup_threshold": 1.0,
                            "pool_cap": max(options.pool_cap, 1_000_000)})
    pool = read_pool(paths, opts)
    keys, _ = unique_keys(pool.records)
    return [ItemDraft(k, r.messages, r.reference, r.meta) for k, r in zip(keys, pool.records)]
