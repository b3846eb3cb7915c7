"""The `ownbench` command. Each group lives in its own module and imports heavy libraries only inside commands,
so that `ownbench --help` stays fast (no litellm, streamlit or scikit-learn at start-up)."""
from __future__ import annotations

import sys

import typer

from ownbench.cli import analysis, app_cmd, judge, judges, runs, sets, users

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
