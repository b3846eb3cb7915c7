"""`ownbench judges compare` and `ownbench judges panel`: which judge is worth paying for, and a panel of several."""
from __future__ import annotations

from pathlib import Path

import typer

from ownbench.cli.analysis import JSON_HELP, MD_HELP, RUBRIC_HELP, SET_HELP, _emit, _ids

judges_app = typer.Typer(help="Judges: compare judge runs against the same humans; combine them into a panel.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(judges_app, name="judges")


@judges_app.command("compare")
def judges_compare(
    set_ref: str = typer.Option(..., "--set", help=SET_HELP),
    rubric: str = typer.Option(..., "--rubric", help=RUBRIC_HELP),
    margin: float = typer.Option(0.10, "--margin", min=0.0, max=0.99,
                                 help="Recommend the cheapest judge whose interval width is within this share of the narrowest."),
    n_boot: int = typer.Option(1000, "--bootstrap", min=100, help="Bootstrap resamples for the agreement intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    markdown: bool = typer.Option(False, "--markdown", help=MD_HELP),
    output: Path | None = typer.Option(None, "--output", help="Also write the Markdown report to this file."),
) -> None:
    """Every judge run on the set × rubric side by side against the same golden labels, and which to use."""
    from analysis.judges import compare_judges
    from analysis.people import CLI
    from ownbench.cli.common import session

    with session() as s:
        vid, rid = _ids(s, set_ref, rubric)
        rep = compare_judges(s, vid, rid, viewer=CLI, margin=margin, n_boot=n_boot, seed=seed)
    _emit(rep, as_json, markdown, output)


@judges_app.command("panel")
def judges_panel(
    runs: str = typer.Option(..., "--runs", help="Comma-separated judge run ids, the most trusted first (it breaks ties)."),
    ordinal: str = typer.Option("median", "--ordinal", help="How ordinal levels combine: median or mean (rounded half up)."),
    name: str | None = typer.Option(None, "--name", help="The panel's judge name (default: panel:<member models>)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Combine judge runs into one panel judge run (majority vote; median or mean for ordinal criteria)."""
    from judging.panel import TIE_RULE, build_panel
    from ownbench.cli.common import console, print_json, session
    from storage.errors import InputError

    try:
        ids = [int(p) for p in runs.split(",") if p.strip()]
    except ValueError:
        raise InputError(f"{runs!r} is not a list of judge run ids", where="--runs", hint="e.g. --runs 3,4,5") from None
    with session() as s:
        res = build_panel(s, ids, ordinal=ordinal, name=name)
    if as_json:
        print_json(res.__dict__)
        return
    verb = "stored" if res.created else "already stored"
    console.print(f"panel judge run #{res.judge_run_id} ({res.judge_model}) {verb}: {res.units} units, "
                  f"{res.scored} scored, {res.unscored} unscored; ties go to the {TIE_RULE}", highlight=False)
