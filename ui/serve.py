"""Serve the app from a process that has already imported and migrated what the first page needs.

`streamlit run` imports the page's dependencies (sqlmodel, alembic, our packages) and checks the migrations
on the first visitor's first script run, which makes the first render wait for them. Here they are done before
the server starts listening, then Streamlit's own command line runs in this same process.
Usage: `python -m ui.serve [--insecure] [streamlit run options…]` (what `ownbench app` and `ownbench demo` call).
Sign-in settings are checked first (ui.auth): unsafe ones stop it with exit code 2 before anything listens.
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


def _option(argv: list[str], name: str) -> str | None:
    """The value of a `--name value` or `--name=value` Streamlit option, if given."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def check_deployment(argv: list[str], env: dict[str, str]) -> list[str]:
    """Refuse settings that would let anyone claim an identity; in single-user mode bind 127.0.0.1 only.

    Returns the Streamlit options to run with (`--insecure` removed, a loopback address added when none is given).
    Raises auth.ConfigError with the reason.
    """
    from ui import auth

    insecure = "--insecure" in argv
    argv = [a for a in argv if a != "--insecure"]
    files = _option(argv, "--secrets.files")
    paths = [Path(f) for f in files.split(",")] if files else auth.default_secrets_files(APP.parents[1])
    mode = auth.deployment_mode(env, auth.oidc_configured(paths))
    address = _option(argv, "--server.address")
    if address is None:
        address = "127.0.0.1" if mode == "single-user" else "0.0.0.0"
        argv = [*argv, "--server.address", address]
    auth.check_address(mode, address, insecure)
    return argv


def main(argv: list[str]) -> None:
    import os

    from streamlit.web import cli

    from ui import auth

    try:
        argv = check_deployment(argv, dict(os.environ))
    except auth.ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
    warm()
    sys.argv = ["streamlit", "run", str(APP), *argv]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
