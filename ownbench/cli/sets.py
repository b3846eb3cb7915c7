"""`ownbench ingest` and `ownbench sets …`: eval sets from production logs, their frozen versions, diffs,
edits and exports. Heavy modules (sqlmodel, scikit-learn, pyarrow) are imported inside the commands."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from evalsets.ingest import IngestOptions

JSON_HELP = "Print machine-readable JSON instead of tables."
FORMAT_HELP = ("Log format: openai, jsonl, csv, parquet, langfuse, langsmith, otel, litellm, or auto (by name and "
               "content).")

sets_app = typer.Typer(help="Eval sets and their frozen versions: list, show, diff, verify, export, edit.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_cmd)
    app.add_typer(sets_app, name="sets")


# --- shared options ---------------------------------------------------------------------------------------------

def _options(fmt: str, prompt_field: str | None, id_field: str | None, metadata_fields: str | None,
             reference_field: str | None, on_error: str, redact: bool, **extra: Any) -> IngestOptions:
    from evalsets.ingest import IngestOptions
    from evalsets.readers import FORMATS, FieldMapping
    from storage.errors import InputError

    if fmt not in ("auto", *FORMATS):
        raise InputError(f"unknown format {fmt!r}", where="--format", hint=f"one of: auto, {', '.join(FORMATS)}")
    meta = tuple(f.strip() for f in (metadata_fields or "").split(",") if f.strip())
    mapping = FieldMapping(prompt_field=prompt_field, id_field=id_field, metadata_fields=meta,
                           reference_field=reference_field)
    return IngestOptions(fmt=fmt, mapping=mapping, on_error=on_error, redact=redact, **extra)


def _quotas(values: list[str], n: int) -> dict[str, int]:
    from evalsets.sampling import QUOTA_KINDS, default_quotas
    from storage.errors import InputError

    quotas = default_quotas(n)
    for value in values:
        if value.strip().lower() == "none":
            quotas = {k: 0 for k in QUOTA_KINDS}
            continue
        kind, _, count = value.partition("=")
        kind = kind.strip().lower().replace("-", "_")
        if kind not in QUOTA_KINDS or not count.strip().isdigit():
            raise InputError(f"bad quota {value!r}", where="--quota",
                             hint=f"KIND=N with KIND one of {', '.join(k.replace('_', '-') for k in QUOTA_KINDS)}, or none")
        quotas[kind] = int(count)
    return quotas


class _Progress:
    """Rich progress bars (on stderr, so --json output stays clean), one per pipeline stage."""

    LABELS = {"reading": "Reading logs", "near-duplicates": "Near-duplicates", "clustering": "Clustering topics",
              "freezing": "Freezing"}

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        from ownbench.cli.common import err_console

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<18}"), BarColumn(),
                                 TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), console=err_console,
                                 transient=False)
        self._download, self._count = DownloadColumn(), MofNCompleteColumn()
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage not in self.tasks:
            for other in self.tasks.values():  # a new stage means the previous ones are finished
                t = self.progress.tasks[other]
                if t.total is None:
                    self.progress.update(other, total=t.completed or 1, completed=t.completed or 1)
                else:
                    self.progress.update(other, completed=t.total)
            self.tasks[stage] = self.progress.add_task(self.LABELS.get(stage, stage), total=total, unit="")
        unit = f"{done / 1e6:,.1f} MB" if stage == "reading" else (f"{done:,}/{total:,}" if total else f"{done:,}")
        self.progress.update(self.tasks[stage], completed=done, total=total, unit=unit)


# --- ingest ---------------------------------------------------------------------------------------------------

def ingest_cmd(
    files: list[Path] = typer.Argument(..., help="Log files (.gz is read transparently).", show_default=False),
    name: str = typer.Option(..., "--name", "-n", help="Eval set name; a new version is frozen in it."),
    fmt: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    prompt_field: str | None = typer.Option(None, help="Field with the prompt: text, a list of user turns, messages or a request body. Dotted paths work (input.question); keys that contain dots go in brackets: 'attributes[\"ai.prompt.messages\"]'."),
    id_field: str | None = typer.Option(None, help="Field with the record's id (becomes the item key)."),
    metadata_fields: str | None = typer.Option(None, help="Comma-separated fields kept as item metadata."),
    reference_field: str | None = typer.Option(None, help="Field with a reference answer."),
    on_error: str = typer.Option("fail", help="fail: stop and list the first 20 malformed records; skip: leave them out and count them."),
    redact: bool = typer.Option(False, "--redact", help="Replace e-mails, phones, card numbers, IPs and API keys with placeholders before storing."),
    near_dup_threshold: float = typer.Option(0.8, help="Near-duplicate threshold (estimated Jaccard on word 3-grams); 1 turns it off."),
    sample: int = typer.Option(250, "--sample", "-N", help="Items to sample (0 keeps the whole pool)."),
    seed: int = typer.Option(0, help="Random seed: the same inputs and seed give the same version."),
    quota: list[str] = typer.Option([], help="Edge-case quota KIND=N (longest, shortest, non-english, multi-turn), repeatable; 'none' turns them off."),
    pool_cap: int = typer.Option(20_000, help="Most distinct records kept for dedupe and clustering; more are reservoir-sampled."),
    description: str | None = typer.Option(None, help="Description of a new eval set."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Turn production logs into a frozen, representative eval set version."""
    from evalsets.freeze import version_label
    from evalsets.ingest import ingest
    from ownbench.cli.common import console, print_json, session

    options = _options(fmt, prompt_field, id_field, metadata_fields, reference_field, on_error, redact,
                       near_dup_threshold=near_dup_threshold, sample=sample, seed=seed,
                       quotas=_quotas(quota, sample), pool_cap=pool_cap, description=description)
    with _Progress() as progress, session() as s:
        result = ingest(s, [str(f) for f in files], name, options, progress)
        label = version_label(s, result.version)
    v, report = result.version, result.report
    if as_json:
        print_json({"version": label, "hash": v.content_hash, "created": result.created, "items": v.item_count,
                    "skipped": v.skipped_count, "report": report})
        return
    if not result.created:
        console.print(f"[yellow]Same content as {label}[/]: nothing new was frozen.")
    else:
        console.print(f"[bold green]Froze {label}[/] {v.content_hash}")
    _print_report(report, v.item_count)


def _print_report(report: dict[str, Any], items: int) -> None:
    from rich.table import Table

    from ownbench.cli.common import console

    if not report or "pool" not in report:
        return
    d, pool, smp = report["duplicates"], report["pool"], report["sampling"]
    console.print(
        f"{items:,} items from {report['records_read']:,} log records · "
        f"{d['exact']:,} exact and {d['near']:,} near duplicates removed (threshold {d['near_threshold']}) · "
        f"pool {pool['size']:,}"
    )
    skipped = report["skipped"]["count"]
    if skipped:
        reasons = ", ".join(f"{n:,} {why}" for why, n in (report["skipped"].get("by_reason") or {}).items())
        from rich.markup import escape

        console.print(f"[yellow]{skipped:,} records skipped[/] ({escape(reasons)}); first: "
                      f"{escape(report['skipped']['first_errors'][0])}", highlight=False)
    if report.get("ignored"):
        console.print("ignored: " + ", ".join(f"{n:,} {what}" for what, n in report["ignored"].items()))
    if report["redaction"]["enabled"]:
        counts = report["redaction"]["counts"]
        console.print("redacted: " + (", ".join(f"{n:,} {k}" for k, n in counts.items()) or "nothing found"))
    if pool["reservoir_sampled"]:
        console.print(f"[yellow]reservoir:[/] {pool['note']}")
    if smp.get("clusters"):
        table = Table(title=f"{smp['method']}, seed {smp['seed']}", show_lines=False)
        for col in ("cluster", "size", "sampled", "top terms"):
            table.add_column(col, justify="right" if col in ("size", "sampled", "cluster") else "left")
        for c in smp["clusters"]:
            table.add_row(str(c["id"]), f"{c['size']:,}", str(c["selected"]), ", ".join(c["top_terms"][:6]))
        console.print(table)
        console.print("quotas: " + ", ".join(
            f"{k.replace('_', '-')} {q['filled']}/{q['requested']} (of {q['available']:,})" for k, q in smp["quotas"].items()))
    elif smp.get("note"):
        console.print(smp["note"])


# --- sets ------------------------------------------------------------------------------------------------------

@sets_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every eval set and its versions."""
    from rich.table import Table
    from sqlmodel import select

    from ownbench.cli.common import console, print_json, session
    from storage.models import EvalSet, EvalSetVersion

    with session() as s:
        rows = s.exec(select(EvalSet, EvalSetVersion).join(EvalSetVersion)
                      .order_by(EvalSet.name, EvalSetVersion.number)).all()
        parents = {v.id: f"{e.name}@{v.number}" for e, v in rows}
        data = [{"ref": f"{e.name}@{v.number}", "set": e.name, "version": v.number, "hash": v.content_hash,
                 "items": v.item_count, "skipped": v.skipped_count, "parent": parents.get(v.parent_id),
                 "created_at": v.created_at.isoformat()} for e, v in rows]
    if as_json:
        print_json(data)
        return
    if not data:
        console.print("No eval sets yet: `ownbench ingest FILE --name NAME` freezes the first one.")
        return
    table = Table()
    for col in ("version", "hash", "items", "skipped", "parent", "created"):
        table.add_column(col)
    for r in data:
        table.add_row(r["ref"], r["hash"][:12], f"{r['items']:,}", str(r["skipped"]), r["parent"] or "",
                      r["created_at"][:19].replace("T", " "))
    console.print(table)


@sets_app.command("show")
def show_cmd(
    ref: str = typer.Argument(..., help="NAME@N, NAME (latest) or a hash prefix."),
    limit: int = typer.Option(20, help="Items to list (0: all)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """A version: hash, parent, sampling report and its items."""
    from rich.table import Table

    from evalsets.freeze import items_of, resolve_version, version_label
    from evalsets.readers.messages import count_user_turns
    from evalsets.versions import prompt_preview
    from ownbench.cli.common import console, print_json, session
    from storage.models import EvalSetVersion

    with session() as s:
        v = resolve_version(s, ref)
        label = version_label(s, v)
        parent = s.get(EvalSetVersion, v.parent_id) if v.parent_id else None
        parent_label = version_label(s, parent) if parent else None
        items = [{"key": i.item_key, "content_hash": i.content_hash, "turns": count_user_turns(i.messages),
                  "prompt": prompt_preview(i.messages, 100), "meta": i.meta or {}} for i in items_of(s, v)]
    info = {"ref": label, "hash": v.content_hash, "items": v.item_count, "skipped": v.skipped_count,
            "parent": parent_label, "diff": v.diff, "created_at": v.created_at.isoformat(), "source": v.source,
            "sampling_report": v.sampling_report}
    if as_json:
        print_json({**info, "item_list": items})
        return
    console.print(f"[bold]{label}[/] {v.content_hash}  (verified)")
    console.print(f"created {info['created_at'][:19].replace('T', ' ')} · {v.item_count:,} items · "
                  f"{v.skipped_count:,} skipped records" + (f" · parent {parent_label}" if parent_label else ""))
    if v.diff:
        console.print(f"diff to parent: +{len(v.diff['added'])} −{len(v.diff['removed'])} ~{len(v.diff['replaced'])}")
    _print_report(v.sampling_report or {}, v.item_count)
    table = Table(title=f"items (first {limit})" if limit and limit < len(items) else "items")
    for col in ("#", "key", "turns", "prompt"):
        table.add_column(col, overflow="fold" if col == "prompt" else "ellipsis")
    for pos, it in enumerate(items[: limit or None]):
        table.add_row(str(pos), it["key"], str(it["turns"]), it["prompt"])
    console.print(table)


@sets_app.command("diff")
def diff_cmd(
    a: str = typer.Argument(..., help="The older version (NAME@N)."),
    b: str | None = typer.Argument(None, help="The newer version; default: A compared with its parent."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Items added, removed and replaced between two versions."""
    from evalsets.freeze import resolve_version
    from evalsets.versions import diff_versions
    from ownbench.cli.common import console, print_json, session
    from storage.errors import InputError
    from storage.models import EvalSetVersion

    with session() as s:
        va = resolve_version(s, a)
        if b is None:
            if va.parent_id is None:
                raise InputError(f"{a} has no parent to compare with", where="B", hint="give two versions: diff A B")
            va, vb = s.get(EvalSetVersion, va.parent_id), va
            resolve_version(s, f"{va.content_hash}")  # refuses a tampered parent too
        else:
            vb = resolve_version(s, b)
        d = diff_versions(s, va, vb)
    if as_json:
        print_json(d)
        return
    console.print(f"[bold]{d['from']['ref']}[/] → [bold]{d['to']['ref']}[/]: +{len(d['added'])} added, "
                  f"−{len(d['removed'])} removed, ~{len(d['replaced'])} replaced, {d['unchanged']} unchanged")
    for x in d["added"]:
        console.print(f"[green]+ {x['key']}[/]  {x['prompt']}", highlight=False, markup=True)
    for x in d["removed"]:
        console.print(f"[red]- {x['key']}[/]  {x['prompt']}", highlight=False)
    for x in d["replaced"]:
        console.print(f"[yellow]~ {x['key']}[/] ({', '.join(x['changed'])})  {x['before']}  →  {x['after']}",
                      highlight=False)


@sets_app.command("verify")
def verify_cmd(
    ref: str | None = typer.Argument(None, help="A version; default: every version of every set."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Recompute every item and version hash from stored content; exit 1 on any mismatch."""
    from sqlmodel import select

    from evalsets.freeze import resolve_version, verify, version_label
    from ownbench.cli.common import console, err_console, print_json, session
    from storage.models import EvalSetVersion

    with session() as s:
        versions = [resolve_version(s, ref, check=False)] if ref else list(
            s.exec(select(EvalSetVersion).order_by(EvalSetVersion.eval_set_id, EvalSetVersion.number)))
        results = [{"ref": version_label(s, v), "hash": v.content_hash, "problems": verify(s, v)} for v in versions]
    bad = [r for r in results if r["problems"]]
    if as_json:
        print_json({"ok": not bad, "versions": results})
    else:
        for r in results:
            if r["problems"]:
                err_console.print(f"[bold red]FAILED[/] {r['ref']} {r['hash'][:12]}…", highlight=False, soft_wrap=True)
                for p in r["problems"]:
                    err_console.print(f"  [red]✗[/] {p}", highlight=False, soft_wrap=True)
            else:
                console.print(f"[green]ok[/] {r['ref']} {r['hash'][:12]}…", highlight=False, soft_wrap=True)
        if not results:
            console.print("No versions to verify.")
        if bad:
            err_console.print(f"[bold red]{len(bad)} version(s) changed after freezing.[/] Commands refuse them; "
                              "re-freeze from the source logs.", soft_wrap=True)
    if bad:
        raise typer.Exit(1)


@sets_app.command("export")
def export_cmd(
    ref: str = typer.Argument(..., help="NAME@N, NAME (latest) or a hash prefix."),
    output: Path = typer.Option(..., "--output", "-o", help="Destination file."),
    fmt: str | None = typer.Option(None, "--format", "-f", help="jsonl, csv or parquet (default: from -o's suffix)."),
) -> None:
    """Write a version's items to JSONL, CSV or Parquet."""
    from evalsets.export import export_version
    from evalsets.freeze import resolve_version, version_label
    from ownbench.cli.common import console, session

    with session() as s:
        v = resolve_version(s, ref)
        n = export_version(s, v, output, fmt)
        label = version_label(s, v)
    console.print(f"Exported {n:,} items of {label} to {output}")


def _edit_done(s: Any, old: Any, new: Any, as_json: bool) -> None:
    from evalsets.freeze import version_label
    from ownbench.cli.common import console, print_json

    label, parent = version_label(s, new), version_label(s, old)
    if as_json:
        print_json({"version": label, "hash": new.content_hash, "parent": parent, "items": new.item_count,
                    "diff": new.diff})
        return
    if new.id == old.id:
        console.print(f"No change: {label} already has this content.")
        return
    d = new.diff or {"added": [], "removed": [], "replaced": []}
    console.print(f"[bold green]Froze {label}[/] {new.content_hash} from {parent}: +{len(d['added'])} "
                  f"−{len(d['removed'])} ~{len(d['replaced'])} ({new.item_count:,} items)")


def _file_edit(ref: str, files: list[Path], kind: str, fmt: str, prompt_field: str | None,
               id_field: str | None, metadata_fields: str | None, reference_field: str | None,
               on_error: str, redact: bool, note: str | None, as_json: bool) -> None:
    from evalsets.freeze import resolve_version
    from evalsets.ingest import drafts_from_files
    from evalsets.versions import edit_version
    from ownbench.cli.common import session

    options = _options(fmt, prompt_field, id_field, metadata_fields, reference_field, on_error, redact)
    drafts = drafts_from_files([str(f) for f in files], options)
    with session() as s:
        old = resolve_version(s, ref)
        new = edit_version(s, old, note=note, **{kind: drafts})
        _edit_done(s, old, new, as_json)


_FILES = typer.Argument(..., help="Log files holding the items (any reader format).", show_default=False)


@sets_app.command("add")
def add_cmd(
    ref: str = typer.Argument(..., help="The version to extend."),
    files: list[Path] = _FILES,
    fmt: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    prompt_field: str | None = typer.Option(None), id_field: str | None = typer.Option(None),
    metadata_fields: str | None = typer.Option(None), reference_field: str | None = typer.Option(None),
    on_error: str = typer.Option("fail"), redact: bool = typer.Option(False, "--redact"),
    note: str | None = typer.Option(None, help="Why; stored with the new version."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Freeze a new version with the records of FILES appended as items."""
    _file_edit(ref, files, "add", fmt, prompt_field, id_field, metadata_fields, reference_field, on_error, redact,
               note, as_json)


@sets_app.command("replace")
def replace_cmd(
    ref: str = typer.Argument(..., help="The version to edit."),
    files: list[Path] = _FILES,
    fmt: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    prompt_field: str | None = typer.Option(None), id_field: str | None = typer.Option(None),
    metadata_fields: str | None = typer.Option(None), reference_field: str | None = typer.Option(None),
    on_error: str = typer.Option("fail"), redact: bool = typer.Option(False, "--redact"),
    note: str | None = typer.Option(None, help="Why; stored with the new version."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Freeze a new version where the items with the same keys as the records of FILES are replaced."""
    _file_edit(ref, files, "replace", fmt, prompt_field, id_field, metadata_fields, reference_field, on_error,
               redact, note, as_json)


@sets_app.command("remove")
def remove_cmd(
    ref: str = typer.Argument(..., help="The version to edit."),
    keys: list[str] = typer.Argument(..., help="Item keys to remove.", show_default=False),
    note: str | None = typer.Option(None, help="Why; stored with the new version."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Freeze a new version without the given items."""
    from evalsets.freeze import resolve_version
    from evalsets.versions import edit_version
    from ownbench.cli.common import session

    with session() as s:
        old = resolve_version(s, ref)
        new = edit_version(s, old, remove=keys, note=note)
        _edit_done(s, old, new, as_json)
