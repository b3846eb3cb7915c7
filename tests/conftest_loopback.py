"""Pytest fixtures for the loopback OpenAI-compatible server (tests/loopback.py).

The `loopback` fixture is registered for every test by tests/conftest.py.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.loopback import LoopbackServer


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A started server with no latency and no faults; set `latency`, `script`, `faults` on it as needed."""
    with LoopbackServer() as server:
        yield server


# --- helpers shared by the gateway and run tests ---------------------------------------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

OWNBENCH = str(Path(sys.executable).with_name("ownbench"))


def freeze_items(engine, n: int, set_name: str = "demo", prefix: str = "question number"):  # type: ignore[no-untyped-def]
    """A frozen version of `n` one-turn items whose prompts are `"{prefix} {i}"`; returns (version id, label)."""
    from evalsets.freeze import ItemDraft, freeze, version_label
    from storage.db import session_scope

    drafts = [ItemDraft(key=f"item-{i:04d}", messages=[{"role": "user", "content": f"{prefix} {i}"}])
              for i in range(n)]
    with session_scope(engine) as s:
        version = freeze(s, set_name, drafts)
        return version.id, version_label(s, version)


def write_candidates(path: Path, server: LoopbackServer, **fields) -> Path:  # type: ignore[no-untyped-def]
    """A candidates.yaml with one candidate named `loop` pointing at the server; `fields` add keys."""
    import yaml

    cand = {"name": "loop", "model": "openai/loop-model", "api_base": server.base_url, **fields}
    path.write_text(yaml.safe_dump({"candidates": [cand]}, sort_keys=False), encoding="utf-8")
    return path


def ownbench_cli(*args: str, cwd: Path, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `ownbench` command in a subprocess (same database through the environment)."""
    proc = subprocess.run([OWNBENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})
    if check and proc.returncode != 0:
        raise AssertionError(f"ownbench {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc
