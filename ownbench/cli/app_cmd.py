"""`ownbench app` (the Streamlit app) and `ownbench demo` (a project from real shipped data, then the app)."""
from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import typer

NO_BROWSER_ENV = "OWNBENCH_DEMO_NO_BROWSER"


def _toml(path: Path) -> dict:
    import tomllib

    from storage.errors import InputError

    try:
        return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid TOML: {exc}", where=str(path), hint="fix the file, or remove it") from None


SET_BY_SERVE = {"server.port", "server.address", "server.headless", "browser.gatherUsageStats"}


def shipped_config_flags(project: Path) -> list[str]:
    """The shipped `.streamlit/config.toml` as `--section.key value` options, for every key the project's own
    `.streamlit/config.toml` does not set (Streamlit reads that file itself, from the working directory)."""
    from ownbench.project import STREAMLIT_CONFIG

    own = _toml(project / ".streamlit" / "config.toml")
    flags = []
    for section, values in _toml(STREAMLIT_CONFIG).items():
        for key, value in values.items():
            if key not in own.get(section, {}) and f"{section}.{key}" not in SET_BY_SERVE:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                flags += [f"--{section}.{key}", text]
    return flags


def check_extras(project: Path) -> None:
    """Fail in one line, before the server starts, when the project needs an extra that is not installed."""
    from storage.db import configured_url, make_engine
    from storage.extras import require_extra

    if "auth" in _toml(project / ".streamlit" / "secrets.toml"):
        require_extra("authlib", "auth", "sign-in ([auth] in .streamlit/secrets.toml)")
    make_engine(configured_url(), migrate=False).dispose()  # names the postgres extra when psycopg is missing


def _check_port(port: int, address: str) -> None:
    """The port asked for, or a clear error: the app never moves to another port behind the user's back."""
    from storage.errors import InputError

    if not 0 < port < 65536:
        raise InputError(f"port {port} is not a TCP port", where="--port", hint="give a number from 1 to 65535")
    host = "127.0.0.1" if address == "localhost" else address
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot listen on {address}:{port}: {exc.strerror or exc}", where="--port",
                             hint="another program (perhaps another `ownbench app`) uses it: stop that program, "
                                  "or pass a free port with --port") from None


def serve(port: int, *, page: str = "", headless: bool = True, address: str = "127.0.0.1", insecure: bool = False) -> int:
    """Become the Streamlit server for `ui/app.py` on `port`, in the project folder (so that Streamlit reads its
    `.streamlit/secrets.toml` and `config.toml`); prints the URL first.

    The process replaces itself with the server (exec) rather than starting a child: a supervisor's stop, a
    plain `kill` or Ctrl+C reaches the server itself, and no server is left behind holding the port."""
    from storage.db import project_dir

    from ownbench.cli.common import console

    project = project_dir()
    check_extras(project)
    _check_port(port, address)
    url = f"http://{address}:{port}/{page}"
    console.print(f"ownbench app: [bold]{url}[/]  (Ctrl+C stops it)", highlight=False)
    # -P: the project folder is the working directory, and nothing in it may shadow our packages.
    argv = [sys.executable, "-P", "-m", "ui.serve", *shipped_config_flags(project), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false", *(["--insecure"] if insecure else [])]
    console.print(f"project: {project}", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(project)
    os.execv(sys.executable, argv)
    return 0  # not reached: exec does not return


def register(app: typer.Typer) -> None:
    @app.command("app")
    def app_command(
        port: int = typer.Option(8501, "--port", help="Port to serve on (an error if it is taken)."),
        address: str = typer.Option("127.0.0.1", "--address",
                                    help="Interface to listen on. Without sign-in configured only loopback is "
                                         "allowed (see --insecure)."),
        insecure: bool = typer.Option(False, "--insecure",
                                      help="Allow a non-loopback --address with no sign-in configured: anyone who "
                                           "reaches the port can use the app as its owner."),
    ) -> None:
        """Open the app: label blind, edit rubrics, watch runs, read agreement and rankings."""
        raise typer.Exit(serve(port, address=address, insecure=insecure))

    @app.command("demo")
    def demo_command(
        port: int = typer.Option(8501, "--port", help="Port for the app."),
        no_app: bool = typer.Option(False, "--no-app", help=f"Build the demo project only (also: {NO_BROWSER_ENV}=1)."),
        sample: int = typer.Option(250, "--sample", help="Items to sample from the 478 prompts."),
        seed: int = typer.Option(0, "--seed", help="Sampling seed."),
        no_judge: bool = typer.Option(False, "--no-judge", help="Do not start a judge run."),
        json_out: bool = typer.Option(False, "--json", help="Print what was built as JSON."),
        work_dir: Path | None = typer.Option(None, "--work-dir", help="Where to write prepared files."),
    ) -> None:
        """Build a project from real Chatbot Arena prompts and recorded answers shipped here, then open the app."""
        from ownbench import settings
        from ownbench.cli.common import console, print_json
        from ownbench.demo_project import build_demo

        work = work_dir or settings.home() / "demo"
        say = (lambda _m: None) if json_out else (lambda m: console.print(f"• {m}", highlight=False))
        result = build_demo(settings.engine(), work, sample=sample, seed=seed, start_judge=not no_judge, say=say)
        if json_out:
            print_json(result.__dict__)
        if no_app or os.environ.get(NO_BROWSER_ENV, "").lower() in ("1", "true", "yes"):
            return
        raise typer.Exit(serve(port, page="label"))
