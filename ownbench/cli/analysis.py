"""`ownbench agreement`, `rank`, `compare`, `golden select` and `labels import|export`: the same numbers the
app shows. numpy, scipy, scikit-learn and statsmodels are imported inside the commands."""
from __future__ import annotations

from pathlib import Path

import typer

JSON_HELP = "Print machine-readable JSON instead of text."
MD_HELP = "Print the report as Markdown."
SET_HELP = "The frozen version: NAME@VERSION, NAME (latest) or a hash prefix."
RUBRIC_HELP = "The rubric: a YAML file already used to judge, a stored rubric name, or a hash prefix."
JUDGE_RUN_HELP = ("Judge run id, pointwise or pairwise (default: the latest pointwise judge run for this version "
                  "and rubric, else the latest pairwise one; `ownbench judge-runs list` shows them).")

golden_app = typer.Typer(help="The golden subset: which outputs humans label (random, with known probabilities).",
                         no_args_is_help=True)
labels_app = typer.Typer(help="Human labels in and out (every exported row says human or judge).", no_args_is_help=True)
reports_app = typer.Typer(help="Check a written report against the database it was computed from.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("agreement")(agreement_cmd)
    app.command("rank")(rank_cmd)
    app.command("compare")(compare_cmd)
    app.add_typer(golden_app, name="golden")
    app.add_typer(labels_app, name="labels")
    app.add_typer(reports_app, name="reports")


def _ids(session, set_ref: str, rubric: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    from analysis.refs import resolve_rubric, resolve_version

    version = resolve_version(session, set_ref)
    rv = resolve_rubric(session, rubric)
    return version.id, rv.id  # type: ignore[return-value]


def _store_rubric_for_labels(session, ref: str) -> None:  # type: ignore[no-untyped-def]
    """Store the rubric that labels refer to when no judge stored it yet: a rubric file, or a rubric name with
    no stored version, taken from the project's `rubrics/NAME.yaml`, else the shipped one (said on stderr)."""
    from judging.rubric import load_rubric, rubric_file, store_rubric
    from sqlmodel import select

    from ownbench.cli.common import err_console
    from storage.models import RubricVersion

    if Path(ref).suffix in (".yaml", ".yml") and Path(ref).is_file():
        store_rubric(session, load_rubric(Path(ref)))
        return
    if session.exec(select(RubricVersion.id).where(RubricVersion.name == ref)).first() is not None:
        return
    found = rubric_file(ref)
    if found is not None:
        origin, path = found
        err_console.print(f"rubric {ref}: {path} ({origin})", highlight=False, soft_wrap=True)
        store_rubric(session, load_rubric(path))


def _pick(session, vid: int, rid: int, judge_run: int | None, mode: str | None = None) -> int | None:  # type: ignore[no-untyped-def]
    """The judge run to use; when it was picked by default, say which on stderr (stdout stays the report)."""
    from analysis.judge_runs import pick_judge_run
    from ownbench.cli.common import err_console

    run, note = pick_judge_run(session, vid, rid, judge_run, mode)
    if note:
        err_console.print(note, highlight=False, markup=False)
    return run.id if run is not None else judge_run


def _note_pairwise(session, vid: int, rid: int, judge_run: int) -> None:  # type: ignore[no-untyped-def]
    """A pointwise ranking also shows the latest pairwise run's Bradley–Terry section: say which run that is."""
    from analysis.judge_runs import pick_judge_run
    from ownbench.cli.common import err_console
    from storage.models import JudgeRun

    chosen = session.get(JudgeRun, judge_run)
    if chosen is not None and chosen.mode == "pointwise":
        _, note = pick_judge_run(session, vid, rid, None, "pairwise")
        if note:
            err_console.print("Bradley–Terry section: " + note, highlight=False, markup=False)


def _emit(report, as_json: bool, markdown: bool, output: Path | None) -> None:  # type: ignore[no-untyped-def]
    from ownbench.cli.common import console, print_json

    if output is not None:
        output.write_text(report.to_markdown(), encoding="utf-8")
    if as_json:
        print_json(report.to_dict())
    elif markdown:
        typer.echo(report.to_markdown(), nl=False)
    elif console.is_terminal and console.width >= 140:
        from rich.markdown import Markdown

        from analysis.manifest import MARKDOWN_HEADING

        console.print(Markdown(report.to_markdown().split(f"\n{MARKDOWN_HEADING}\n", 1)[0]))
        console.print("[dim]The manifest (what this report was computed from) is written with --output, --markdown "
                      "and --json; check such a file with `ownbench reports verify FILE`.[/]")
    else:  # narrow terminals and pipes: the Markdown text itself reads fine and keeps every digit
        typer.echo(report.to_markdown(), nl=False)


def _gate(min_labels: int, min_per_candidate: int, min_alpha: float):  # type: ignore[no-untyped-def]
    from stats.gate import GateConfig

    return GateConfig(min_labels=min_labels, min_per_candidate=min_per_candidate, min_alpha=min_alpha)


def agreement_cmd(
    set_ref: str = typer.Option(..., "--set", help=SET_HELP),
    rubric: str = typer.Option(..., "--rubric", help=RUBRIC_HELP),
    judge_run: int | None = typer.Option(None, "--judge-run", help=JUDGE_RUN_HELP),
    n_boot: int = typer.Option(2000, "--bootstrap", min=100, help="Bootstrap resamples for the intervals."),
    epsilon: float = typer.Option(0.2, "--epsilon", min=0.0, max=1.0, help="Alt-Test ε (cost–benefit margin)."),
    alt_threshold: float = typer.Option(0.5, "--alt-threshold", min=0.0, max=1.0, help="Alt-Test winning-rate threshold."),
    alpha_level: str | None = typer.Option(None, "--alpha-level", help="Krippendorff's alpha level of measurement for binary and ordinal criteria: nominal, ordinal, interval or ratio (default: nominal for binary, ordinal for ordinal)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    markdown: bool = typer.Option(False, "--markdown", help=MD_HELP),
    output: Path | None = typer.Option(None, "--output", help="Also write the Markdown report to this file."),
) -> None:
    """Judge–human and human–human agreement per criterion, judge-bias diagnostics and the Alt-Test."""
    from analysis.people import CLI
    from analysis.reports import agreement_report
    from ownbench.cli.common import session
    from storage.errors import InputError

    if alpha_level is not None and alpha_level not in ("nominal", "ordinal", "interval", "ratio"):
        raise InputError(f"unknown level {alpha_level!r}", where="--alpha-level",
                         hint="nominal, ordinal, interval or ratio")

    with session() as s:
        vid, rid = _ids(s, set_ref, rubric)
        judge_run = _pick(s, vid, rid, judge_run)
        rep = agreement_report(s, vid, rid, judge_run, viewer=CLI, n_boot=n_boot, seed=seed, epsilon=epsilon,
                               alt_threshold=alt_threshold, alpha_level=alpha_level)
    _emit(rep, as_json, markdown, output)


def rank_cmd(
    set_ref: str = typer.Option(..., "--set", help=SET_HELP),
    rubric: str = typer.Option(..., "--rubric", help=RUBRIC_HELP),
    judge_run: int | None = typer.Option(None, "--judge-run", help=JUDGE_RUN_HELP),
    force: bool = typer.Option(False, "--force", help="Also show judge-only numbers where they are gated, marked \"uncalibrated\"."),
    min_labels: int = typer.Option(30, "--min-labels", min=1, help="Golden labels needed per criterion (G)."),
    min_per_candidate: int = typer.Option(5, "--min-per-candidate", min=1, help="Golden labels needed per candidate (g)."),
    min_alpha: float = typer.Option(0.667, "--min-alpha", help="Judge–human Krippendorff's alpha below which judge-only numbers are hidden."),
    n_boot: int = typer.Option(2000, "--bootstrap", min=100, help="Paired bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    lam: float | None = typer.Option(None, "--lambda", min=0.0, max=1.0, help="Fix the prediction-powered λ (1 = plain PPI, as papers report it; 0 = human labels only); default: power-tuned per candidate (PPI++)."),
    paired_on: str = typer.Option("own", "--paired-on", help="What a paired difference compares when candidates answered different items: own (difference of the shown calibrated means, each over its own items) or shared (mean difference over the items both answered)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    markdown: bool = typer.Option(False, "--markdown", help=MD_HELP),
    output: Path | None = typer.Option(None, "--output", help="Also write the Markdown report to this file."),
) -> None:
    """Rank candidates per criterion by calibrated estimate with 95 % intervals, rank ranges and paired tests."""
    from analysis.people import CLI
    from analysis.reports import ranking_report
    from ownbench.cli.common import session
    from storage.errors import InputError

    if paired_on not in ("own", "shared"):
        raise InputError(f"unknown --paired-on {paired_on!r}", where="--paired-on", hint="use own or shared")
    with session() as s:
        vid, rid = _ids(s, set_ref, rubric)
        judge_run = _pick(s, vid, rid, judge_run)
        if judge_run is not None:
            _note_pairwise(s, vid, rid, judge_run)
        rep = ranking_report(s, vid, rid, viewer=CLI, force=force, gate=_gate(min_labels, min_per_candidate, min_alpha),
                             judge_run_id=judge_run, n_boot=n_boot, seed=seed, estimand=paired_on, lam=lam)
    _emit(rep, as_json, markdown, output)


def compare_cmd(
    set_ref: str = typer.Option(..., "--set", help=SET_HELP),
    baseline: str = typer.Option(..., "--baseline", help="The candidate in production now."),
    candidate: str = typer.Option(..., "--candidate", help="The candidate that would replace it."),
    rubric: str = typer.Option(..., "--rubric", help=RUBRIC_HELP),
    judge_run: int | None = typer.Option(None, "--judge-run", help=JUDGE_RUN_HELP),
    level: float = typer.Option(0.05, "--level", min=1e-6, max=0.5, help="Significance level after Holm's correction."),
    force: bool = typer.Option(False, "--force", help="Also show judge-only evidence where it is gated, marked \"uncalibrated\"."),
    min_labels: int = typer.Option(30, "--min-labels", min=1, help="Golden labels needed per criterion (G)."),
    min_per_candidate: int = typer.Option(5, "--min-per-candidate", min=1, help="Golden labels needed per candidate (g)."),
    min_alpha: float = typer.Option(0.667, "--min-alpha", help="Judge–human alpha below which judge-only evidence is hidden."),
    n_boot: int = typer.Option(2000, "--bootstrap", min=100, help="Paired bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    lam: float | None = typer.Option(None, "--lambda", min=0.0, max=1.0, help="Fix the prediction-powered λ (1 = plain PPI, as papers report it; 0 = human labels only); default: power-tuned per candidate (PPI++)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    markdown: bool = typer.Option(False, "--markdown", help=MD_HELP),
    output: Path | None = typer.Option(None, "--output", help="Also write the Markdown report to this file."),
) -> None:
    """The CI gate before a model upgrade: exit 1 only when a drop is significant (after Holm), 0 otherwise,
    2 on usage errors."""
    from analysis.people import CLI
    from analysis.reports import compare_report
    from ownbench.cli.common import session

    with session() as s:
        vid, rid = _ids(s, set_ref, rubric)
        judge_run = _pick(s, vid, rid, judge_run, "pointwise")
        rep = compare_report(s, vid, rid, baseline, candidate, viewer=CLI, level=level,
                             gate=_gate(min_labels, min_per_candidate, min_alpha), judge_run_id=judge_run,
                             n_boot=n_boot, seed=seed, force=force, lam=lam)
    _emit(rep, as_json, markdown, output)
    if rep.regressed:
        raise typer.Exit(1)


@golden_app.command("select")
def golden_select(
    set_ref: str = typer.Option(..., "--set", help=SET_HELP),
    rubric: str = typer.Option(..., "--rubric", help=RUBRIC_HELP),
    n: int = typer.Option(..., "--n", min=1, help="How many more outputs to draw into the golden subset."),
    seed: int = typer.Option(..., "--seed", help="Seed of the draw (recorded; the same seed gives the same units)."),
    strategy: str = typer.Option("stratified", "--strategy", help="stratified (candidate × judge verdict), uncertainty (favour units where the judge was unsure), or candidate (by candidate alone: no judge run needed)."),
    annotators: str | None = typer.Option(None, "--annotators", help="Comma-separated annotator names to assign units to."),
    k: int = typer.Option(1, "--k", min=1, help="Annotators per unit (2+ gives human–human agreement, 3+ the Alt-Test)."),
    criterion: str | None = typer.Option(None, "--criterion", help="Criterion whose judge verdict defines the strata (default: the first binary or ordinal one)."),
    judge_run: int | None = typer.Option(None, "--judge-run", help=JUDGE_RUN_HELP),
    mode: str = typer.Option("pointwise", "--mode", help="pointwise (one output per unit), or pairwise (two candidates' outputs on one item, from a pairwise judge run, drawn within each pair of candidates)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Draw outputs at random within strata (candidate × judge verdict, or candidate alone) and assign them to annotators."""
    from analysis.golden import PAIR_STRATEGY, select_golden
    from ownbench.cli.common import console, print_json, session

    names = [a for a in (annotators or "").split(",") if a.strip()]
    with session() as s:
        vid, rid = _ids(s, set_ref, rubric)
        sel = select_golden(s, vid, rid, judge_run, n, seed=seed, strategy=strategy, annotators=names, k=k,
                            criterion=criterion, mode=mode)
    if as_json:
        print_json(sel.to_dict())
    else:
        strata = (f"criterion {sel.criterion!r}" if sel.criterion else
                  "candidate pairs" if sel.strategy == PAIR_STRATEGY else "candidate alone")
        console.print(f"drew {sel.created} unit(s) ({sel.total} in the golden subset) over {sel.strata} strata of "
                      f"{strata}, strategy {sel.strategy}, seed {sel.seed}; {sel.assignments} assignment(s)")


@labels_app.command("import")
def labels_import(
    path: Path = typer.Argument(..., help="JSONL or CSV: item, candidate, criterion, label, annotator [, inclusion_prob, comment]; pairwise: item_key, candidate_a, candidate_b, annotator, label (A, B or tie) [, criterion, inclusion_prob, comment]."),
    set_ref: str = typer.Option(..., "--set", help=SET_HELP),
    rubric: str = typer.Option(..., "--rubric", help=RUBRIC_HELP),
    uniform: bool = typer.Option(False, "--uniform", help="Declare the labeled units a uniform random sample of the set (usable for calibration)."),
    fmt: str = typer.Option("ownbench", "--format", help="ownbench (the columns above) or arena: Chatbot Arena battles (question_id, model_a, model_b, winner, judge as the annotator); winner 'tie (bothbad)' becomes tie, noted in the label's comment."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import existing human labels; every bad row is reported as file:line and nothing is written."""
    from analysis.labels import import_labels
    from ownbench.cli.common import console, print_json, session
    from storage.errors import InputError

    if fmt not in ("ownbench", "arena"):
        raise InputError(f"unknown format {fmt!r}", where="--format", hint="use ownbench or arena")
    with session() as s:
        _store_rubric_for_labels(s, rubric)  # labels may come before any judge used this rubric
        vid, rid = _ids(s, set_ref, rubric)
        res = import_labels(s, path, vid, rid, uniform=uniform, fmt=fmt)
    if as_json:
        print_json(res)
    else:
        usable = res["calibration_usable"]
        console.print(f"imported {res['labels']} {res['mode']} label(s) from {res['annotators']} annotator(s); {usable} usable "
                      "for calibration" + ("" if usable else " (declare --uniform or give inclusion_prob to use them)"))
        if fmt == "arena":
            mapped = ", ".join(f"{n} '{k}' → tie" for k, n in res["mapped"].items()) or "none"
            console.print(f"{res['not_in_version']} battle(s) on items outside this version left out; winners "
                          f"mapped: {mapped}; fields not used: {', '.join(res['ignored_fields']) or 'none'}",
                          highlight=False, markup=False)


@labels_app.command("export")
def labels_export(
    path: Path = typer.Argument(..., help="Output file, .jsonl or .csv."),
    set_ref: str = typer.Option(..., "--set", help=SET_HELP),
    rubric: str = typer.Option(..., "--rubric", help=RUBRIC_HELP),
    judge_run: int | None = typer.Option(None, "--judge-run", help=JUDGE_RUN_HELP),
) -> None:
    """Export every judge verdict, human label and adjudicated label; each row's `source` says which."""
    from analysis.labels import export_rows, write_export
    from analysis.people import CLI
    from ownbench.cli.common import console, err_console, session
    from storage.errors import InputError

    if path.suffix.lower() not in (".jsonl", ".csv"):
        raise InputError(f"unsupported export format {path.suffix!r}", where=str(path), hint="use .jsonl or .csv")
    with session() as s:
        vid, rid = _ids(s, set_ref, rubric)
        if judge_run is None:
            from analysis.judge_runs import pick_judge_run

            notes = [pick_judge_run(s, vid, rid, None, m)[1] for m in ("pointwise", "pairwise")]
            for note in filter(None, notes):
                err_console.print(note.replace("using", "exporting", 1), highlight=False, markup=False)
        rows = export_rows(s, vid, rid, judge_run, viewer=CLI)
    n = write_export(rows, path)
    humans = sum(r["source"] == "human" for r in rows)
    adjudicated = sum(r["source"] == "adjudicated" for r in rows)
    console.print(f"wrote {n} row(s) to {path}: {n - humans - adjudicated} judge, {humans} human, "
                  f"{adjudicated} adjudicated")


@reports_app.command("verify")
def reports_verify(
    report: Path = typer.Argument(..., help="A report written by agreement, rank or compare (--output, --markdown, "
                                            "--json) or downloaded from the app."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Recompute the report's manifest from the database and say what changed: exit 0 when nothing did, 1 when
    something did, 2 when the file is not a report with a manifest."""
    from analysis.manifest import read_report, verify_manifest
    from ownbench.cli.common import console, print_json, session
    from storage.errors import InputError

    try:
        text = report.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", where=str(report), hint="pass the path of a written report") from None
    except IsADirectoryError:
        raise InputError("is a directory, not a report file", where=str(report)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(report),
                         hint="pass a Markdown or JSON report written by ownbench") from None
    manifest, body_digest = read_report(text, str(report))
    with session() as s:
        findings = verify_manifest(s, manifest, body_digest)
    changed = [f for f in findings if f.changed]
    if as_json:
        print_json({"report": str(report), "kind": manifest.get("report"), "changed": bool(changed),
                    "findings": [f.to_dict() for f in findings]})
    else:
        from rich.markup import escape

        console.print(f"{escape(str(report))}: {manifest.get('report')} report made "
                      f"{manifest.get('created_at')} by ownbench {manifest.get('software', {}).get('ownbench')}")
        for f in findings:
            mark = "[bold red]CHANGED[/]" if f.changed else "[green]ok[/]"
            console.print(f"  {mark} {escape(f.what)}: {escape(f.detail)}", highlight=False)
        if any(f.what != "report text" for f in changed):
            console.print("[bold red]changed: the database no longer holds what this report was computed from[/]")
        elif changed:
            console.print("[bold red]changed: the report's text was edited; the database is as it was[/]")
        else:
            console.print("unchanged: the database still holds exactly what this report was computed from")
    if changed:
        raise typer.Exit(1)
