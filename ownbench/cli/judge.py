"""`ownbench judge`, `ownbench rubrics …` and `ownbench judgments …`: score a frozen version's outputs against
a rubric, check and list rubrics, import and export judgments. Heavy modules are imported inside commands."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

JSON_HELP = "Print machine-readable JSON instead of tables."
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 60.0
LOCAL_TIMEOUT_S = 300.0  # a small model on a few CPU cores: a long prompt alone takes tens of seconds

rubrics_app = typer.Typer(help="Rubrics: validate files, list stored versions, show one.", no_args_is_help=True)
judgments_app = typer.Typer(help="Judgments: import verdicts made elsewhere, export stored ones.", no_args_is_help=True)
judge_runs_app = typer.Typer(help="Judge runs: which exist, for which set, rubric and judge.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("judge")(judge_cmd)
    app.add_typer(rubrics_app, name="rubrics")
    app.add_typer(judgments_app, name="judgments")
    app.add_typer(judge_runs_app, name="judge-runs")


def _split(value: Optional[str]) -> list[str] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return parts or None


def _rubric(ref: str):  # type: ignore[no-untyped-def]
    """A rubric file; a rubric name, taken from the project's `rubrics/NAME.yaml`, else the shipped one (the
    file taken is said on stderr); else a stored rubric version (name, NAME@HASHPREFIX, hash prefix)."""
    from judging.rubric import find_rubric_version, load_rubric, rubric_file, rubric_from_version

    from ownbench.cli.common import err_console, session

    looks_like_file = Path(ref).suffix.lower() in (".yaml", ".yml") or "/" in ref
    if Path(ref).is_file() or looks_like_file:
        return load_rubric(ref)
    found = rubric_file(ref)
    if found is not None:
        origin, path = found
        err_console.print(f"rubric {ref}: {path} ({origin})", highlight=False, soft_wrap=True)
        return load_rubric(path)
    with session() as s:
        return rubric_from_version(find_rubric_version(s, ref))


def judge_cmd(
    set_ref: str = typer.Option(..., "--set", help="The frozen version to judge: NAME@VERSION, NAME (latest) or a hash prefix."),
    rubric: str = typer.Option(..., "--rubric", help="A rubric YAML file, a rubric name (rubrics/NAME.yaml of the project, else the shipped one) or a stored version."),
    judge_model: Optional[str] = typer.Option(None, "--judge", help="Judge model (LiteLLM string); default: the rubric's judge.model."),
    api_base: Optional[str] = typer.Option(None, "--api-base", help="OpenAI-compatible server of the judge, e.g. http://127.0.0.1:8080/v1."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="NAME of the environment variable holding the judge's API key."),
    candidates: Optional[str] = typer.Option(None, "--candidates", help="Comma-separated candidate names (default: all with a run)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="pointwise or pairwise (default: the rubric's judge.mode)."),
    criteria: Optional[str] = typer.Option(None, "--criteria", help="Comma-separated criterion ids (default: all)."),
    structured: Optional[str] = typer.Option(None, "--structured", help="tools, json, json_schema or json_object_schema (llama.cpp) (default: the rubric's)."),
    template: Optional[str] = typer.Option(None, "--template", help="Judge prompt: a shipped template by name (pointwise_compact: short prompt for small local models) or a .j2 file; default: the mode's."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Judge only the first N items of the version."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", min=1, max=1000, help="Judge calls in flight (default 8; never more than a llama.cpp server's slots)."),
    max_retries: int = typer.Option(2, "--max-retries", min=0, max=10, help="Re-asks after an invalid verdict."),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=16, help="Bound on each judge answer."),
    timeout_s: Optional[float] = typer.Option(None, "--timeout", min=0.1, help=f"Seconds per judge call (default {DEFAULT_TIMEOUT_S:.0f}; {LOCAL_TIMEOUT_S:.0f} for a llama.cpp server on this machine)."),
    input_price: Optional[float] = typer.Option(None, "--input-price", min=0, help="USD per 1M input tokens (overrides LiteLLM's price map)."),
    output_price: Optional[float] = typer.Option(None, "--output-price", min=0, help="USD per 1M output tokens."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ask the judge again even when an identical request is cached."),
    new_run: bool = typer.Option(False, "--new-run", help="Start a new judge run instead of resuming the matching one."),
    retry_unscored: bool = typer.Option(False, "--retry-unscored", help="Judge again the units whose last judgment is unscored."),
    job: Optional[int] = typer.Option(None, "--job", help="Report progress to this job (the app uses this)."),
    batch: bool = typer.Option(False, "--batch", help="Submit through the provider's Batch API (half price, answers within 24 h); run the same command again to collect."),
    wait: float = typer.Option(0.0, "--wait", min=0, help="With --batch: keep polling up to this many seconds."),
    poll_interval: float = typer.Option(30.0, "--poll-interval", min=0.05, help="With --batch --wait: seconds between polls."),
    allow_errors: bool = typer.Option(False, "--allow-errors",
                                      help="Exit 0 even when some units are unscored (the run is kept either way)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Score the outputs of a frozen version against a rubric (pointwise or pairwise); resumable and cached."""
    from storage.errors import InputError

    from ownbench import settings

    batching = {"wait_s": wait, "poll_s": poll_interval} if batch else None
    try:
        summary = _judge(set_ref, rubric, judge_model, api_base, api_key_env, candidates, mode, criteria, structured,
                         template, limit, concurrency, max_retries, max_tokens, timeout_s, input_price, output_price,
                         no_cache, new_run, retry_unscored, job, as_json, batching)
    except typer.Exit:  # the judge run itself recorded how it ended
        raise
    except (Exception, KeyboardInterrupt) as exc:  # the app shows the job: it must not stay "running"
        if job is not None:
            from storage.jobs import update_job

            reason = exc.message if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            update_job(settings.engine(), job, status="failed", message=reason)
        raise
    from judging.batch import BatchState

    if isinstance(summary, BatchState):
        summary = _print_batch(summary, as_json)
        if summary is None:
            return
    else:
        _print_summary(summary, as_json)
    from rich.markup import escape

    from ownbench.cli.common import err_console

    if summary.status == "failed":
        err_console.print(f"[bold red]judge run #{summary.judge_run_id} stopped:[/] "
                          f"{escape(summary.status_reason or 'failed')}", highlight=False)
        raise typer.Exit(1)
    if summary.judged and summary.scored == 0:
        top = next(iter(summary.unscored_reasons), "unknown")
        err_console.print(f"[bold red]every judgment failed[/] (mostly: {top}); nothing was scored", highlight=False)
        raise typer.Exit(1)
    if summary.unscored_in_run and not allow_errors:
        err_console.print(f"[bold red]{summary.unscored_in_run} unit(s) of judge run #{summary.judge_run_id} are "
                          "unscored[/]; `--retry-unscored` asks again, `--allow-errors` accepts them", highlight=False)
        raise typer.Exit(1)


def _fit_to_server(api_base: Optional[str], concurrency: Optional[int],
                   timeout_s: Optional[float]) -> tuple[int, float]:
    """Calls in flight and the per-call timeout: a server that states its slots (llama.cpp's /props) never gets
    more calls at once than it has slots, and, being a local CPU server, a longer default timeout."""
    slots = None
    if api_base:
        from gateway.servers import server_slots

        slots = server_slots(api_base)
    if slots is None:
        return concurrency or DEFAULT_CONCURRENCY, timeout_s or DEFAULT_TIMEOUT_S
    fitted = min(concurrency or slots, slots)
    timeout = timeout_s or LOCAL_TIMEOUT_S
    from ownbench.cli.common import err_console

    err_console.print(f"judge server {api_base} has {slots} slot(s): {fitted} call(s) in flight, "
                      f"timeout {timeout:.0f} s", highlight=False)
    return fitted, timeout


def _judge(set_ref: str, rubric_ref: str, judge_model: Optional[str], api_base: Optional[str],
           api_key_env: Optional[str], candidates: Optional[str], mode: Optional[str], criteria: Optional[str],
           structured: Optional[str], template: Optional[str], limit: Optional[int],
           concurrency: Optional[int], max_retries: int, max_tokens: int, timeout_s: Optional[float],
           input_price: Optional[float], output_price: Optional[float], no_cache: bool,
           new_run: bool, retry_unscored: bool, job: Optional[int], as_json: bool,
           batching: dict | None = None):  # type: ignore[no-untyped-def]
    from evalsets.freeze import resolve_version
    from gateway.client import ModelConfig
    from judging.judge import STRUCTURED_MODES
    from judging.runs import JudgeRequest, judge_version
    from storage.errors import InputError

    from ownbench import settings
    from ownbench.cli.common import session

    from judging.checks import CHECK_JUDGE

    rub = _rubric(rubric_ref)
    crits = _split(criteria)
    chosen = [rub.criterion(c) for c in crits] if crits else list(rub.criteria)  # names an unknown criterion
    # Check criteria need no judge model: a rubric (or a selection) of checks only is judged locally.
    model = (judge_model or rub.judge.model) if any(not c.is_check for c in chosen) else CHECK_JUDGE
    if not model:
        raise InputError("no judge model", where="--judge",
                         hint="give --judge MODEL (e.g. openai/gpt-4o-mini) or set judge.model in the rubric")
    mode = mode or rub.judge.mode
    if mode not in ("pointwise", "pairwise"):
        raise InputError(f"mode {mode!r} is not pointwise or pairwise", where="--mode")
    structured = structured or rub.judge.structured_output
    if structured not in STRUCTURED_MODES:
        raise InputError(f"structured output {structured!r} is unknown", where="--structured",
                         hint=f"one of: {', '.join(STRUCTURED_MODES)}")
    if api_base is not None and not api_base.startswith(("http://", "https://")):
        raise InputError(f"{api_base!r} is not an http(s) URL", where="--api-base",
                         hint="e.g. http://127.0.0.1:8080/v1")
    with session() as s:
        version_id = resolve_version(s, set_ref).id
    concurrency, timeout_s = _fit_to_server(api_base, concurrency, timeout_s)
    cfg = ModelConfig(
        model=model, params={"temperature": rub.judge.temperature, "max_tokens": max_tokens}, api_base=api_base,
        api_key_env=api_key_env, input_price_per_mtok=input_price, output_price_per_mtok=output_price,
        max_concurrency=concurrency, timeout_s=timeout_s,
    )
    req = JudgeRequest(version_id=version_id, rubric=rub, judge=cfg, mode=mode, structured=structured,  # type: ignore[arg-type]
                       candidates=_split(candidates), criteria=crits, limit=limit, max_retries=max_retries,
                       use_cache=not no_cache, new_run=new_run, retry_unscored=retry_unscored, job_id=job,
                       template=template)
    import asyncio

    engine = settings.engine()
    if batching is not None and model != CHECK_JUDGE:  # checks alone are computed locally: nothing to submit
        from judging.batch import judge_batch

        return judge_batch(engine, req, **batching)
    if as_json or not sys.stderr.isatty():
        return asyncio.run(judge_version(engine, req))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ownbench.cli.common import err_console

    with Progress(TextColumn("[bold]judging[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeRemainingColumn(), console=err_console, transient=False) as bar:
        task = bar.add_task("", total=None)

        def on_progress(p) -> None:  # type: ignore[no-untyped-def]
            bar.update(task, total=p.total, completed=p.already + p.done,
                       description=f"unscored {p.unscored} · spend ${p.spend_usd:.4f}")

        return asyncio.run(judge_version(engine, req, on_progress=on_progress))


def _print_batch(state, as_json: bool):  # type: ignore[no-untyped-def]
    """A batch's state; the judge summary once its answers are stored (None while the provider works)."""
    from ownbench.cli.common import console, print_json

    if as_json:
        print_json(state.to_dict())
        return state.summary
    counts = state.counts or {}
    done = f" ({counts.get('completed', 0)} of {counts.get('total', '?')} answered, {counts.get('failed', 0)} failed)" \
        if counts else ""
    if state.summary is None:
        verb = f"submitted {state.submitted_now} requests as" if state.submitted_now else "polled"
        console.print(f"judge run #{state.judge_run_id}: {verb} provider batch {state.batch_id}: {state.status}{done}. "
                      "Run the same command again to collect the answers (nothing is submitted twice).", highlight=False)
        return None
    if state.batch_id:
        console.print(f"provider batch {state.batch_id}: {state.status}{done}; answers stored at batch prices",
                      highlight=False)
    _print_summary(state.summary, False)
    return state.summary


def _print_summary(summary, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    from ownbench.cli.common import console, print_json

    if as_json:
        print_json(summary.to_dict())
        return
    t = Table(show_header=False, box=None, pad_edge=False)
    verb = "resumed" if summary.resumed else "started"
    why = f": {summary.status_reason}" if summary.status_reason else ""
    t.add_row("judge run", f"#{summary.judge_run_id} ({verb}, {summary.status}{why})")
    t.add_row("version", summary.version)
    t.add_row("rubric", summary.rubric)
    t.add_row("judge", f"{summary.judge_model} · {summary.mode}")
    t.add_row("units", f"{summary.total} planned · {summary.already} already judged · {summary.judged} judged now")
    t.add_row("judged now", f"{summary.scored} scored · {summary.unscored} unscored")
    for reason, n in summary.unscored_reasons.items():
        t.add_row("", f"  unscored, {reason}: {n}")
    for why, n in summary.skipped.items():
        t.add_row("skipped", f"{n} ({why})")
    t.add_row("spend", f"${summary.spend_usd:.4f} in {summary.seconds:.1f} s")
    console.print(t)


# --- rubrics ------------------------------------------------------------------------------------------------


@rubrics_app.command("validate")
def rubrics_validate(
    files: list[Path] = typer.Argument(..., help="Rubric YAML files."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Check rubric files; every problem is printed as file:line: key: what, with a hint. Exit 2 if any."""
    from judging.rubric import RubricProblem, validate_rubric_text
    from rich.markup import escape

    from ownbench.cli.common import console, err_console, print_json

    report: dict[str, Any] = {}
    bad = 0
    for f in files:
        if not f.is_file():
            problems = [RubricProblem(str(f), None, None, "", "file does not exist", "check the path")]
            rubric = None
        else:
            rubric, problems = validate_rubric_text(f.read_text(encoding="utf-8", errors="replace"), str(f))
        bad += bool(problems)
        report[str(f)] = {"valid": not problems, "version": rubric.content_hash if rubric else None,
                          "problems": [p.to_dict() for p in problems]}
        if not as_json:
            if problems:
                for p in problems:
                    err_console.print(f"[red]{escape(str(p))}[/]", highlight=False, soft_wrap=True)
            else:
                assert rubric is not None
                console.print(f"[green]ok[/] {f}  {rubric.name}@{rubric.content_hash[:12]}  "
                              f"criteria: {', '.join(c.id for c in rubric.criteria)}", highlight=False)
    if as_json:
        print_json(report)
    if bad:
        raise typer.Exit(2)


@rubrics_app.command("list")
def rubrics_list(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Stored rubric versions (newest first) and the rubric files of the project and shipped with ownbench."""
    from judging.rubric import rubric_files
    from rich.table import Table
    from sqlmodel import select
    from storage.models import RubricVersion

    from ownbench.cli.common import console, print_json, session

    with session() as s:
        rows = list(s.exec(select(RubricVersion).order_by(RubricVersion.id.desc())))  # type: ignore[union-attr]
        hashes = {r.id: r.content_hash for r in rows}
        data = [{"id": r.id, "name": r.name, "version": r.content_hash,
                 "criteria": [c["id"] for c in r.spec.get("criteria", [])],
                 "parent": hashes.get(r.parent_id) if r.parent_id else None, "source": r.source_path,
                 "created_at": r.created_at} for r in rows]
    files = rubric_files()
    shipped = [str(p) for origin, p in files if origin == "shipped"]
    if as_json:
        print_json({"stored": data, "project": [str(p) for origin, p in files if origin == "project"],
                    "shipped": shipped})
        return
    t = Table(title="stored rubric versions")
    for col in ("name", "version", "criteria", "parent", "source", "created"):
        t.add_column(col)
    for d in data:
        t.add_row(d["name"], d["version"][:12], ", ".join(d["criteria"]), (d["parent"] or "")[:12],
                  d["source"] or "", str(d["created_at"])[:19])
    console.print(t if data else "no rubric stored yet (they are stored when first used by `ownbench judge`)")
    for origin, path in files:
        console.print(f"{origin}: {path.stem}  {path}", highlight=False, soft_wrap=True)


@rubrics_app.command("show")
def rubrics_show(
    ref: str = typer.Argument(..., help="A rubric file, a stored name, NAME@HASHPREFIX or a hash prefix."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """A rubric's text, version and criteria."""
    from ownbench.cli.common import console, print_json

    rubric = _rubric(ref)
    if as_json:
        print_json({"name": rubric.name, "version": rubric.content_hash, "spec": rubric.spec, "yaml": rubric.text})
        return
    console.print(f"[bold]{rubric.name}[/]@{rubric.content_hash[:12]}  ({rubric.content_hash})", highlight=False)
    console.print(rubric.text, markup=False, highlight=False)


# --- judgments ----------------------------------------------------------------------------------------------


@judgments_app.command("import")
def judgments_import(
    file: Path = typer.Argument(..., help="JSONL or CSV: item, candidate, [candidate_b], criterion, verdict, [judge], [rationale]."),
    set_ref: str = typer.Option(..., "--set", help="The version the judgments are about: NAME@VERSION."),
    rubric: str = typer.Option(..., "--rubric", help="The rubric the verdicts follow (file or stored name)."),
    judge_name: Optional[str] = typer.Option(None, "--judge-name", help="The judge's name, for rows without a `judge` field."),
    round_levels: bool = typer.Option(False, "--round", help="Round fractional ordinal verdicts (e.g. an average of several scores) to the nearest level, half up; each judgment records the value it was rounded from."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import judgments made elsewhere; every bad row is reported as file:line and nothing is half-written."""
    from evalsets.freeze import resolve_version
    from judging.imports import import_judgments

    from ownbench.cli.common import console, print_json, session

    rub = _rubric(rubric)
    with session() as s:
        version = resolve_version(s, set_ref)
        summary = import_judgments(s, file, version=version, rubric=rub, judge_name=judge_name,
                                   round_levels=round_levels)
    if as_json:
        print_json(summary.to_dict())
        return
    runs = ", ".join(f"{j} → judge run #{i}" for j, i in summary.judge_runs.items())
    if summary.already_imported:
        console.print(f"already imported ({runs}); nothing changed", highlight=False)
    else:
        console.print(f"imported {summary.rows} {summary.mode} judgments ({summary.scored} scored, "
                      f"{summary.unscored} unscored): {runs}"
                      + (f"; {summary.rounded} fractional level(s) rounded to the nearest level (recorded on each)"
                         if summary.rounded else ""), highlight=False)


@judgments_app.command("export")
def judgments_export(
    set_ref: str = typer.Option(..., "--set", help="The version: NAME@VERSION."),
    rubric: Optional[str] = typer.Option(None, "--rubric", help="Only judgments against this rubric (file or name)."),
    judge_run: Optional[list[int]] = typer.Option(None, "--judge-run", help="Only these judge runs (repeatable)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here instead of standard output."),
) -> None:
    """Judgments with their provenance, in the import format (JSONL or CSV)."""
    import csv
    import json

    from evalsets.freeze import resolve_version
    from judging.imports import export_rows
    from sqlmodel import select
    from storage.errors import InputError
    from storage.models import JudgeRun, RubricVersion

    from ownbench.cli.common import err_console, session

    if fmt not in ("jsonl", "csv"):
        raise InputError(f"unknown format {fmt!r}", where="--format", hint="jsonl or csv")
    rub = _rubric(rubric) if rubric else None
    with session() as s:
        version = resolve_version(s, set_ref)
        query = select(JudgeRun.id).where(JudgeRun.version_id == version.id)
        if rub is not None:
            stored = s.exec(select(RubricVersion).where(RubricVersion.content_hash == rub.content_hash)).first()
            query = query.where(JudgeRun.rubric_version_id == (stored.id if stored else -1))
        ids = sorted(s.exec(query))
        if judge_run:
            missing = sorted(set(judge_run) - set(ids))
            if missing:
                raise InputError(f"judge run(s) {missing} are not judgments of {set_ref}" +
                                 (" with this rubric" if rub else ""), where="--judge-run",
                                 hint=f"judge runs here: {ids or 'none'}")
            ids = sorted(judge_run)
        rows = list(export_rows(s, ids))
    fh = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        if fmt == "jsonl":
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        else:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["item"])
            w.writeheader()
            w.writerows(rows)
    finally:
        if out:
            fh.close()
    if out:
        err_console.print(f"wrote {len(rows)} judgments to {out}", highlight=False)


# --- judge runs ---------------------------------------------------------------------------------------------


@judge_runs_app.command("list")
def judge_runs_list(
    set_ref: str | None = typer.Option(None, "--set", help="Only runs on this version: NAME@VERSION, NAME (latest) or a hash prefix."),
    rubric: str | None = typer.Option(None, "--rubric", help="Only runs against this rubric (file, stored name or hash prefix)."),
    mode: str | None = typer.Option(None, "--mode", help="Only pointwise or only pairwise runs."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Judge runs, newest first: set, rubric, judge model, mode, source, judgments (scored/unscored) and date;
    the ids `--judge-run` takes."""
    from rich.table import Table

    from analysis.judge_runs import list_judge_runs
    from analysis.refs import resolve_rubric, resolve_version
    from ownbench.cli.common import console, print_json, session
    from storage.errors import InputError

    if mode is not None and mode not in ("pointwise", "pairwise"):
        raise InputError(f"unknown mode {mode!r}", where="--mode", hint="pointwise or pairwise")
    with session() as s:
        vid = resolve_version(s, set_ref).id if set_ref else None
        rid = resolve_rubric(s, rubric).id if rubric else None
        rows = list_judge_runs(s, vid, rid, mode)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no judge run yet" + (" matching these filters" if set_ref or rubric or mode else "")
                      + ": run `ownbench judge` or `ownbench judgments import`", highlight=False)
        return
    t = Table(title="judge runs (newest first)")
    for col in ("id", "set", "rubric", "judge", "mode", "source", "status", "judgments", "scored", "unscored",
                "started"):
        t.add_column(col)
    for r in rows:
        t.add_row(str(r["id"]), r["set"], f"{r['rubric']}@{r['rubric_version'][:8]}", r["judge_model"], r["mode"],
                  r["source"], r["status"], str(r["judgments"]), str(r["scored"]), str(r["unscored"]),
                  str(r["started_at"])[:19])
    console.print(t)
