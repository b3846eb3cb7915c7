"""`ownbench candidates …`, `ownbench run …` and `ownbench runs …`: candidates, runs through the gateway,
imported runs and exports. The gateway (and LiteLLM, lazily) is imported inside the commands only."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ownbench.cli.common import JSON_HELP, console, err_console, print_json, session

candidates_app = typer.Typer(help="Model candidates declared in candidates.yaml.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs: list, show, import recorded answers, export.", no_args_is_help=True)

DEFAULT_CANDIDATES = "candidates.yaml"


def _money(v: float | None) -> str:
    return "unknown" if v is None else f"${v:,.4f}"


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f} ms"


# --- candidates ------------------------------------------------------------------------------------------------


@candidates_app.command("add")
def candidates_add(file: Path = typer.Argument(..., help="A candidates.yaml file.")) -> None:
    """Validate FILE and store (insert or update) every candidate it declares."""
    from gateway.candidates import load_candidates, upsert_candidate

    specs = load_candidates(file)
    with session() as s:
        rows = [upsert_candidate(s, spec) for spec in specs]
    for row in rows:
        console.print(f"candidate [bold]{row.name}[/]: {row.model}  config {row.config_hash[:12]}")


@candidates_app.command("list")
def candidates_list(
    file: Optional[Path] = typer.Argument(None, help="List (and validate) this file instead of the database."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The candidates of FILE, or those stored in the database."""
    from rich.table import Table

    if file is not None:
        from gateway.candidates import load_candidates

        rows = [{"name": c.name, "model": c.model, "api_base": c.api_base, "api_key_env": c.api_key_env,
                 "params": c.params, "input_price_per_mtok": c.input_price_per_mtok,
                 "output_price_per_mtok": c.output_price_per_mtok, "config_hash": c.config_hash(),
                 **c.limits()} for c in load_candidates(file)]
    else:
        from sqlmodel import select

        from gateway.candidates import spec_of
        from storage.models import Candidate

        with session() as s:
            rows = [{"name": c.name, "model": c.model, "api_base": c.api_base, "api_key_env": c.api_key_env,
                     "params": c.params, "input_price_per_mtok": c.input_price_per_mtok,
                     "output_price_per_mtok": c.output_price_per_mtok, "config_hash": c.config_hash,
                     **spec_of(c).limits()}
                    for c in s.exec(select(Candidate).order_by(Candidate.name))]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "model", "api_base", "key variable", "price in/out per 1M", "limits", "config")
    for r in rows:
        price = ("map / unknown" if r["input_price_per_mtok"] is None
                 else f"${r['input_price_per_mtok']:g} / ${r['output_price_per_mtok']:g}")
        limits = f"c={r['concurrency']} rpm={r['rpm'] or '—'} tpm={r['tpm'] or '—'} " \
                 f"timeout={r['timeout_s']:g}s attempts={r['max_attempts']}"
        table.add_row(r["name"], r["model"], r["api_base"] or "—", r["api_key_env"] or "—", price, limits,
                      r["config_hash"][:12])
    console.print(table)


# --- run -------------------------------------------------------------------------------------------------------


def _spec_for(name: str, candidates_file: Optional[Path]) -> Any:
    """The candidate from the given file, else from ./candidates.yaml if it names it, else the database."""
    from gateway.candidates import find_candidate, load_candidates, spec_of
    from gateway.runs import candidate_by_name

    if candidates_file is not None:
        return find_candidate(load_candidates(candidates_file), name, candidates_file)
    default = Path(DEFAULT_CANDIDATES)
    if default.is_file():
        specs = load_candidates(default)
        if any(s.name == name for s in specs):
            return find_candidate(specs, name, default)
    with session() as s:
        return spec_of(candidate_by_name(s, name))


def run_command(
    set_ref: str = typer.Option(..., "--set", help="The frozen version: NAME@VERSION, NAME (latest) or a hash prefix."),
    candidate: str = typer.Option(..., "--candidate", help="The candidate's name."),
    candidates_file: Optional[Path] = typer.Option(
        None, "--candidates-file", help=f"Where the candidate is declared (default: ./{DEFAULT_CANDIDATES} if it "
                                        "names the candidate, else the database)."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", min=1, max=1000,
                                              help="Calls in flight (default: the candidate's)."),
    rpm: Optional[int] = typer.Option(None, "--rpm", min=1, help="Requests per minute (default: the candidate's)."),
    tpm: Optional[int] = typer.Option(None, "--tpm", min=1, help="Tokens per minute (default: the candidate's)."),
    timeout_s: Optional[float] = typer.Option(None, "--timeout", help="Seconds per call (default: the candidate's)."),
    max_attempts: Optional[int] = typer.Option(None, "--max-attempts", min=1, max=20,
                                               help="Attempts per item, retries included (default: the candidate's)."),
    max_cost: Optional[float] = typer.Option(None, "--max-cost", min=0.0,
                                             help="Stop before the run's spend (USD) would exceed this."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Call the provider even for cached requests."),
    new: bool = typer.Option(False, "--new", help="Start a new run instead of resuming an unfinished one."),
    job: Optional[int] = typer.Option(None, "--job", help="Report progress to this job and obey its cancel."),
    batch: bool = typer.Option(False, "--batch", help="Submit through the provider's Batch API (half price, answers within 24 h); run the same command again to collect."),
    wait: float = typer.Option(0.0, "--wait", min=0, help="With --batch: keep polling up to this many seconds."),
    poll_interval: float = typer.Option(30.0, "--poll-interval", min=0.05, help="With --batch --wait: seconds between polls."),
    allow_errors: bool = typer.Option(False, "--allow-errors",
                                      help="Exit 0 even when some items ended in an error (the run is kept either way)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run a candidate over a frozen version; resumes the unfinished run of the same configuration.

    Exits 1 when the run failed or any item ended in an error (unless --allow-errors), 2 on bad input."""
    if batch:
        _run_batch(set_ref, candidate, candidates_file, no_cache, new, wait, poll_interval, as_json)
        return
    limits = {"concurrency": concurrency, "rpm": rpm, "tpm": tpm, "timeout_s": timeout_s, "max_attempts": max_attempts}
    if job is None:
        _run(set_ref, candidate, candidates_file, limits, max_cost, no_cache, new, None, as_json, allow_errors)
        return
    import os

    from ownbench.settings import engine as get_engine
    from storage.jobs import update_job

    update_job(get_engine(), job, status="running", pid=os.getpid())
    try:
        _run(set_ref, candidate, candidates_file, limits, max_cost, no_cache, new, job, as_json, allow_errors)
    except typer.Exit:  # the run itself recorded how it ended
        raise
    except (Exception, KeyboardInterrupt) as exc:  # the app shows the job: it must not stay "running"
        from storage.errors import InputError

        reason = exc.message if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        update_job(get_engine(), job, status="failed", message=reason)
        raise


def _run_batch(set_ref: str, candidate: str, candidates_file: Optional[Path], no_cache: bool, new: bool,
               wait: float, poll_interval: float, as_json: bool) -> None:
    from evalsets.freeze import resolve_version
    from gateway.batch_runs import run_batch
    from ownbench.settings import engine as get_engine

    spec = _spec_for(candidate, candidates_file)
    with session() as s:
        version_id = resolve_version(s, set_ref).id
    state = run_batch(get_engine(), spec, version_id, wait_s=wait, poll_s=poll_interval, fresh=new,  # type: ignore[arg-type]
                      use_cache=not no_cache)
    if as_json:
        print_json(state.to_dict())
        return
    counts = state.counts or {}
    done = f" ({counts.get('completed', 0)} of {counts.get('total', '?')} answered, {counts.get('failed', 0)} failed)" \
        if counts else ""
    if state.status in ("stored", "nothing to submit"):
        console.print(f"run {state.run_id}: provider batch {state.batch_id or '-'} {state.status}{done}: "
                      f"{state.outputs_stored} outputs, {state.errors} errors; spend {_money(state.spend_usd)} "
                      "at batch prices", highlight=False)
    else:
        verb = f"submitted {state.submitted_now} requests as" if state.submitted_now else "polled"
        console.print(f"run {state.run_id}: {verb} provider batch {state.batch_id}: {state.status}{done}. Run the "
                      "same command again to collect the answers (nothing is submitted twice).", highlight=False)


def _run(set_ref: str, candidate: str, candidates_file: Optional[Path], limits: dict[str, Any],
         max_cost: Optional[float], no_cache: bool, new: bool, job: Optional[int], as_json: bool,
         allow_errors: bool = False) -> None:
    from evalsets.freeze import resolve_version, version_label
    from gateway.candidates import with_limits
    from gateway.runs import RunProgress, run_candidate, run_totals
    from ownbench.settings import engine as get_engine

    spec = with_limits(_spec_for(candidate, candidates_file), **limits)
    with session() as s:
        version = resolve_version(s, set_ref)
        label = version_label(s, version)
    eng = get_engine()

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:.1f} calls/s"), TextColumn("errors {task.fields[errors]}"),
                   TextColumn("spend {task.fields[spend]}"), TimeElapsedColumn(),
                   console=err_console, disable=as_json, transient=False)
    state: dict[str, Any] = {"task": None, "last": 0.0}

    def on_start(run: Any, resumed: bool, total: int, todo: int) -> None:
        what = "resuming" if resumed else "started"
        err_console.print(f"run {run.id} {what}: {candidate} on {label}; {todo} of {total} items to call")
        state["task"] = bar.add_task(f"run {run.id}", total=total, completed=total - todo, rate=0.0, errors=0,
                                     spend="$0")

    def on_progress(p: RunProgress) -> None:
        now = time.monotonic()
        if now - state["last"] < 0.1 and p.done < p.total:
            return
        state["last"] = now
        bar.update(state["task"], completed=p.done, rate=p.calls_per_s, errors=p.errors, spend=_money(p.spend_usd))

    with bar:
        summary = run_candidate(eng, spec, version.id, max_cost_usd=max_cost,  # type: ignore[arg-type]
                                use_cache=not no_cache, fresh=new, on_progress=on_progress, on_start=on_start,
                                job_id=job)
        if state["task"] is not None:
            p = summary.progress
            bar.update(state["task"], completed=p.done, rate=p.calls_per_s, errors=p.errors, spend=_money(p.spend_usd))
    totals = run_totals(eng, summary.run_id)
    result = {"run_id": summary.run_id, "status": summary.status, "reason": summary.status_reason,
              "resumed": summary.resumed, "calls": summary.progress.calls, "cache_hits": summary.progress.cached,
              **totals}
    if as_json:
        print_json(result)
    else:
        console.print(
            f"run {summary.run_id} {summary.status}: {totals['outputs']} outputs, {totals['errors']} errors, "
            f"{summary.progress.calls} calls, {summary.progress.cached} from cache; spend {_money(totals['spend_usd'])}"
            + (f" ({totals['unknown_cost']} outputs of unknown cost)" if totals["unknown_cost"] else "")
            + f"; mean latency {_ms(totals['mean_latency_ms'])}"
        )
        if summary.status_reason:
            console.print(f"  {summary.status_reason}", highlight=False, markup=False)
    if summary.status == "failed":
        raise typer.Exit(1)
    if totals["errors"] and not allow_errors:
        err_console.print(f"run {summary.run_id}: {totals['errors']} item(s) ended in an error; run the same command "
                          "again to retry them, or pass --allow-errors to accept them", highlight=False)
        raise typer.Exit(1)


# --- runs ------------------------------------------------------------------------------------------------------


def _run_rows(s: Any, set_ref: Optional[str]) -> list[dict[str, Any]]:
    from sqlmodel import select

    from evalsets.freeze import resolve_version, version_label
    from gateway.imports import provenance
    from gateway.runs import run_totals
    from storage.models import Candidate, EvalSetVersion, Run

    query = select(Run).order_by(Run.id)
    if set_ref:
        query = query.where(Run.version_id == resolve_version(s, set_ref, check=False).id)
    rows = []
    eng = s.get_bind()
    for run in s.exec(query):
        cand = s.get(Candidate, run.candidate_id)
        version = s.get(EvalSetVersion, run.version_id)
        rows.append({
            "run_id": run.id, "candidate": cand.name if cand else "?", "model": cand.model if cand else "?",
            "set": version_label(s, version) if version else "?", "status": run.status,
            "status_reason": run.status_reason, "source": run.source, "provenance": provenance(run),
            "source_file": run.source_file, "source_file_hash": run.source_file_hash,
            "started_at": run.started_at, "finished_at": run.finished_at,
            "items": version.item_count if version else None, **run_totals(eng, run.id),
        })
    return rows


@runs_app.command("list")
def runs_list(
    set_ref: Optional[str] = typer.Option(None, "--set", help="Only runs of this version."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Every run with its provenance (gateway or imported file), status, counts and spend."""
    from rich.table import Table

    with session() as s:
        rows = _run_rows(s, set_ref)
    if as_json:
        print_json(rows)
        return
    table = Table("run", "candidate", "set", "status", "source", "outputs", "errors", "spend", "mean latency")
    for r in rows:
        table.add_row(str(r["run_id"]), r["candidate"], r["set"], r["status"], r["provenance"],
                      f"{r['outputs']}/{r['items']}", str(r["errors"]),
                      _money(r["spend_usd"]) if not r["unknown_cost"] else f"{_money(r['spend_usd'])} + unknown",
                      _ms(r["mean_latency_ms"]))
    console.print(table)


def _get_run(s: Any, run_id: int) -> Any:
    from storage.errors import InputError
    from storage.models import Run

    run = s.get(Run, run_id)
    if run is None:
        raise InputError(f"no run {run_id}", where="RUN_ID", hint="see `ownbench runs list`")
    return run


@runs_app.command("show")
def runs_show(
    run_id: int = typer.Argument(..., help="The run's id (see `ownbench runs list`)."),
    errors: int = typer.Option(10, "--errors", help="How many error reasons to show."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One run: provenance, configuration (no keys), totals, latency percentiles and error reasons."""
    from sqlmodel import select

    from storage.models import Item, Output

    with session() as s:
        run = _get_run(s, run_id)
        row = next(r for r in _run_rows(s, None) if r["run_id"] == run_id)
        outs = list(s.exec(select(Output, Item.item_key).join(Item, Item.id == Output.item_id)
                           .where(Output.run_id == run_id).order_by(Item.position)))
        config = run.config
    lat = sorted(o.latency_ms for o, _ in outs if o.latency_ms is not None and o.error is None)
    ttft = sorted(o.ttft_ms for o, _ in outs if o.ttft_ms is not None and o.error is None)

    def pct(xs: list[float], q: float) -> float | None:
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None

    errs = [{"item_key": k, "error": o.error, "attempts": o.attempts} for o, k in outs if o.error]
    detail = {**row, "config": config, "latency_p50_ms": pct(lat, 0.5), "latency_p95_ms": pct(lat, 0.95),
              "ttft_p50_ms": pct(ttft, 0.5), "error_reasons": errs[:errors]}
    if as_json:
        print_json(detail)
        return
    console.print(f"[bold]run {run_id}[/]: {row['candidate']} ({row['model']}) on {row['set']}")
    console.print(f"  source: {row['provenance']}", highlight=False)
    if row["source_file"]:
        console.print(f"  file: {row['source_file']}  sha256 {row['source_file_hash']}", highlight=False)
    console.print(f"  status: {row['status']}" + (f" — {row['status_reason']}" if row["status_reason"] else ""),
                  highlight=False, markup=False)
    console.print(f"  outputs {row['outputs']}/{row['items']}, errors {row['errors']}, from cache {row['cached']}")
    console.print(f"  tokens: {row['prompt_tokens']:,} prompt, {row['completion_tokens']:,} completion; "
                  f"spend {_money(row['spend_usd'])}, cost of all outputs {_money(row['cost_usd'])}"
                  + (f", {row['unknown_cost']} of unknown cost" if row["unknown_cost"] else ""))
    console.print(f"  latency p50 {_ms(detail['latency_p50_ms'])}, p95 {_ms(detail['latency_p95_ms'])}"
                  + (f"; time to first token p50 {_ms(detail['ttft_p50_ms'])}" if ttft else ""))
    if config:
        console.print("  config: " + json.dumps(config, sort_keys=True, default=str), highlight=False, markup=False)
    for e in errs[:errors]:
        console.print(f"  error {e['item_key']}: {e['error']}", highlight=False, markup=False)
    if len(errs) > errors:
        console.print(f"  … {len(errs) - errors} more errors (--errors N)")


@runs_app.command("import-battles")
def runs_import_battles(
    file: Path = typer.Argument(..., help="Battles: Chatbot Arena votes (question_id, model_a, model_b), pairwise "
                                          "labels (item_key, candidate_a, candidate_b) or pairwise judgments "
                                          "(item, candidate, candidate_b)."),
    set_ref: str = typer.Option(..., "--set", help="The frozen version the battles were fought on."),
    fmt: str = typer.Option("pairwise", "--format", help="pairwise (ownbench columns) or arena."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Record that the battles' candidates answered their items when the answers were not kept: one imported
    run per candidate without a run, its outputs marked "answer not kept". Verdicts on them can then be
    imported (labels import, judgments import); nothing can be judged or labeled on them anew."""
    from analysis.battles import record_battle_runs
    from evalsets.freeze import resolve_version, version_label
    from storage.errors import InputError

    if fmt not in ("pairwise", "arena"):
        raise InputError(f"unknown format {fmt!r}", where="--format", hint="use pairwise or arena")
    with session() as s:
        version = resolve_version(s, set_ref)
        label = version_label(s, version)
        res = record_battle_runs(s, file, version.id, fmt)  # type: ignore[arg-type]
    if as_json:
        print_json(res)
        return
    console.print(f"{res['battles']} battle(s) in {file.name}; {res['not_in_version']} on items outside {label}",
                  highlight=False, markup=False)
    for r in res["runs"]:
        console.print(f"run {r['run_id']}: {r['candidate']} fought on {r['items']} item(s); answers not kept"
                      + ("" if r["created"] else " (recorded before)"), highlight=False, markup=False)
    if res["candidates_with_runs"]:
        console.print(f"left alone (they have a run): {', '.join(res['candidates_with_runs'])}",
                      highlight=False, markup=False)


@runs_app.command("import")
def runs_import(
    file: Path = typer.Argument(..., help="Answers JSONL (item_key | prompt_hash | messages, and output or error), "
                                          "an OpenAI Batch output file, or a Langfuse / LangSmith / OpenTelemetry / "
                                          "LiteLLM export with the logged responses."),
    candidate: str = typer.Option(..., "--candidate", help="Name the answers are filed under (NAME/model when "
                                                          "a log holds answers of several models)."),
    set_ref: str = typer.Option(..., "--set", help="The frozen version the answers belong to."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import recorded answers as a run (source "imported", with the file's SHA-256). All lines or none."""
    from evalsets.answers import answers_format, import_production
    from evalsets.freeze import resolve_version, version_label
    from gateway.imports import import_run, provenance
    from storage.errors import InputError
    from storage.models import Candidate

    if not file.is_file():
        raise InputError(f"file not found: {file}", where="FILE")
    fmt = answers_format(file)
    with session() as s:
        version = resolve_version(s, set_ref)
        label = version_label(s, version)
        if fmt == "ownbench":
            results = [(None, import_run(s, file, candidate, version.id))]  # type: ignore[arg-type]
            extra: dict[str, Any] = {}
        else:
            prod = import_production(s, file, candidate, version.id, fmt)  # type: ignore[arg-type]
            results = prod.runs  # type: ignore[assignment]
            extra = {"format": fmt, "answers_in_file": prod.answers, "not_in_version": prod.not_in_version,
                     "repeated": prod.repeated, "ignored": dict(prod.ignored)}
        runs = [{"run_id": r.run.id, "candidate": s.get(Candidate, r.run.candidate_id).name, "model": model,
                 "created": r.created, "imported": r.imported, "items": r.total_items,
                 "provenance": provenance(r.run)} for model, r in results]
    if as_json:
        print_json(runs[0] | extra if len(runs) == 1 else {"runs": runs, **extra})
        return
    for r in runs:
        if r["created"]:
            console.print(f"run {r['run_id']}: {r['imported']} of {r['items']} items of {label} "
                          f"answered by {r['candidate']}; {r['provenance']}", highlight=False, markup=False)
        else:
            console.print(f"this file was already imported for {r['candidate']} on {label}: run {r['run_id']}",
                          highlight=False, markup=False)
    if extra:
        console.print(f"{extra['answers_in_file']} answers in the {fmt} file; {extra['not_in_version']} are not "
                      f"items of {label}, {extra['repeated']} repeat an answered item"
                      + "".join(f"; {n} {why}" for why, n in extra["ignored"].items()), highlight=False, markup=False)


@runs_app.command("export")
def runs_export(
    run_id: int = typer.Argument(..., help="The run's id."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write JSONL here instead of stdout."),
) -> None:
    """The run's outputs as JSONL, one line per item, with the run's provenance on each line."""
    from sqlmodel import select

    from evalsets.freeze import check_version
    from gateway.imports import prompt_hash, provenance
    from storage.models import Candidate, EvalSetVersion, Item, Output

    with session() as s:
        run = _get_run(s, run_id)
        # A prompt_hash of tampered text beside an output made from the original would be a false record.
        check_version(s, s.get(EvalSetVersion, run.version_id))
        cand = s.get(Candidate, run.candidate_id)
        rows = list(s.exec(select(Output, Item).join(Item, Item.id == Output.item_id)
                           .where(Output.run_id == run_id).order_by(Item.position)))
        head = {"run_id": run.id, "candidate": cand.name if cand else None, "model": cand.model if cand else None,
                "source": run.source, "provenance": provenance(run), "source_file_hash": run.source_file_hash}
    fh = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        for o, item in rows:
            fh.write(json.dumps({
                **head, "item_key": item.item_key, "prompt_hash": prompt_hash(item.messages), "output": o.text,
                "error": o.error, "finish_reason": o.finish_reason, "prompt_tokens": o.prompt_tokens,
                "completion_tokens": o.completion_tokens, "cost_usd": o.cost_usd, "latency_ms": o.latency_ms,
                "ttft_ms": o.ttft_ms, "attempts": o.attempts, "cached": o.cached,
            }, ensure_ascii=False) + "\n")
    finally:
        if out:
            fh.close()
    if out:
        err_console.print(f"wrote {len(rows)} outputs of run {run_id} to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(candidates_app, name="candidates")
    app.command("run")(run_command)
    app.add_typer(runs_app, name="runs")
