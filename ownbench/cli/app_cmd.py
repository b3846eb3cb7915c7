"""`ownbench app` (the Streamlit app) and `ownbench demo` (a project from real shipped data, then the app)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import typer

NO_BROWSER_ENV = "OWNBENCH_DEMO_NO_BROWSER"
APP_PATH = Path(__file__).resolve().parents[2] / "ui" / "app.py"


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


def serve(port: int, *, page: str = "", headless: bool = True, address: str = "localhost") -> int:
    """Run `streamlit run ui/app.py` in the foreground on `port`; prints the URL first."""
    from ownbench.cli.common import console

    _check_port(port, address)
    url = f"http://{address}:{port}/{page}"
    console.print(f"ownbench app: [bold]{url}[/]  (Ctrl+C stops it)", highlight=False)
    argv = [sys.executable, "-m", "ui.serve", "--server.port", str(port),
            "--server.address", address, "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false"]
    try:
        return subprocess.call(argv, cwd=str(APP_PATH.parents[1]))
    except KeyboardInterrupt:
        return 0


def register(app: typer.Typer) -> None:
    @app.command("app")
    def app_command(
        port: int = typer.Option(8501, "--port", help="Port to serve on (an error if it is taken)."),
        address: str = typer.Option("localhost", "--address", help="Interface to listen on."),
    ) -> None:
        """Open the app: label blind, edit rubrics, watch runs, read agreement and rankings."""
        raise typer.Exit(serve(port, address=address))

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
