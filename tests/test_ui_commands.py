"""Every `ownbench …` command the app tells people to run exists: words on a page must not drift from the CLI."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ownbench.cli import app

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*sorted((ROOT / "ui").rglob("*.py")), ROOT / "ownbench" / "demo_project.py"]
# `ownbench word [word]` inside backticks; the words are commands until the first option or placeholder
MENTION = re.compile(r"`ownbench ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")


def mentioned() -> list[str]:
    found = set()
    for path in SOURCES:
        found.update(MENTION.findall(path.read_text(encoding="utf-8")))
    return sorted(found)


def test_the_app_mentions_commands() -> None:
    assert "golden select" in mentioned() and "judge" in {m.split()[0] for m in mentioned()}


@pytest.mark.parametrize("command", mentioned())
def test_mentioned_command_exists(command: str) -> None:
    import typer

    root = typer.main.get_command(app)
    first, *rest = command.split()
    assert first in root.commands, f"`ownbench {first}` is not a command"  # type: ignore[attr-defined]
    sub = root.commands[first]  # type: ignore[attr-defined]
    is_group = hasattr(sub, "commands")
    if is_group:  # a group: the next word must be one of its commands
        assert rest and rest[0] in sub.commands, f"`ownbench {command}` is not a command of `ownbench {first}`"
    result = CliRunner().invoke(app, [first, *rest[:1], "--help"] if is_group else [first, "--help"])
    assert result.exit_code == 0, result.output


def test_app_refuses_a_taken_port_instead_of_moving(tmp_path: Path) -> None:
    import socket

    from tests.conftest_loopback import ownbench_cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = ownbench_cli("app", "--port", str(port), "--address", "127.0.0.1", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert f"--port: cannot listen on 127.0.0.1:{port}" in err and "pass a free port with --port" in err
    assert "ownbench app: " not in proc.stdout  # no URL printed for a server that never started
    bad = ownbench_cli("app", "--port", "70000", cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "not a TCP port" in bad.stderr
