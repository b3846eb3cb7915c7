"""Serve the app from a process that has already imported and migrated what the first page needs.

`streamlit run` imports the page's dependencies (sqlmodel, alembic, our packages) and checks the migrations
on the first visitor's first script run, which makes the first render wait for them. Here they are done before
the server starts listening, then Streamlit's own command line runs in this same process.
Usage: `python -m ui.serve [streamlit run options…]` (what `ownbench app` and `ownbench demo` call).
"""
from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def warm() -> None:
    """Import the modules every page uses and bring the database to the latest schema."""
    import analysis.labeling  # noqa: F401
    import ui.render  # noqa: F401
    from storage.db import configured_url, make_engine

    make_engine(configured_url()).dispose()


def main(argv: list[str]) -> None:
    from streamlit.web import cli

    warm()
    sys.argv = ["streamlit", "run", str(APP), *argv]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
