"""`ownbench app` (the Streamlit app) and `ownbench demo` (a project from real shipped data, then the app)."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import typer

NO_BROWSER_ENV = "OWNBENCH_DEMO_NO_BROWSER"
APP_PATH = Path(__file__).resolve().parents[2] / "ui" / "app.py"


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def serve(port: int, *, page: str = "", headless: bool = True, address: str = "127.0.0.1", insecure: bool = False) -> int:
    """Become the Streamlit server for `ui/app.py` on `port` (prints the URL first).

    The process replaces itself with the server (exec) rather than starting a child: a supervisor's stop, a
    plain `kill` or Ctrl+C reaches the server itself, and no server is left behind holding the port."""
    from ownbench.cli.common import console

    port = _free_port(port)
    url = f"http://{address}:{port}/{page}"
    console.print(f"ownbench app: [bold]{url}[/]  (Ctrl+C stops it)", highlight=False)
    argv = [sys.executable, "-m", "ui.serve", "--server.port", str(port),
            "--server.address", address, "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false", *(["--insecure"] if insecure else [])]
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(APP_PATH.parents[1])  # .streamlit/config.toml is read from the working directory
    os.execv(sys.executable, argv)
    return 0  # not reached: exec does not return


def register(app: typer.Typer) -> None:
    @app.command("app")
    def app_command(
        port: int = typer.Option(8501, "--port", help="Port to serve on (the next free one if taken)."),
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
