"""The `ownbench` command. Each group lives in its own module and imports heavy libraries only inside commands,
so that `ownbench --help` stays fast (no litellm, streamlit or scikit-learn at start-up)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from ownbench.cli import analysis, app_cmd, judge, judges, runs, sets, users

PROJECT_ENV = "OWNBENCH_PROJECT"  # the same name storage.db.project_dir() reads

app = typer.Typer(
    name="ownbench",
    help="Private eval sets from your logs, a judge calibrated against humans, rankings with intervals.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help renders faster; `ownbench --help` must stay well under 0.5 s
)
for group in (sets, runs, judge, analysis, judges, users, app_cmd):
    group.register(app)


@app.callback()
def _project_option(
    project: Optional[Path] = typer.Option(  # noqa: UP045 - typer reads the annotation at run time
        None, "--project", envvar=PROJECT_ENV, file_okay=False,
        help="The project folder (rubrics/, candidates.yaml, .streamlit/); default: the working directory."),
) -> None:
    if project is not None:
        if not project.is_dir():
            from storage.errors import InputError

            raise InputError(f"project folder {project} does not exist", where="--project",
                             hint="create one with `ownbench init DIR`")
        # Commands, the app and the runs it starts in the background all read the project from here.
        os.environ[PROJECT_ENV] = str(project.resolve())


@app.command("init")
def init(
    folder: Path = typer.Argument(Path("."), help="The project folder to create or fill (default: here)."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist already."),
) -> None:
    """Start a project folder: rubrics to edit, candidates.yaml, the app's .streamlit/ settings and secrets."""
    from ownbench.cli.common import console
    from ownbench.project import init_project

    for name in init_project(folder, force=force):
        console.print(f"wrote {folder / name}", highlight=False, soft_wrap=True)
    where = "" if folder.resolve() == Path.cwd() else f"cd {folder} && "
    console.print(f"next: {where}ownbench demo   (or edit candidates.yaml and .streamlit/secrets.toml)",
                  highlight=False, soft_wrap=True)


def main() -> None:
    from storage.errors import InputError

    from rich.markup import escape

    from ownbench.cli.common import err_console

    try:
        app()
    except InputError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, highlight=False)
        sys.exit(2)


@app.command("info")
def info() -> None:
    """Where the data lives and which database is in use (passwords masked)."""
    from sqlalchemy.engine import make_url

    from ownbench import __version__, settings
    from ownbench.cli.common import console

    console.print(f"ownbench {__version__}")
    console.print(f"home: {settings.home()}")
    console.print(f"database: {make_url(settings.database_url()).render_as_string(hide_password=True)}")
