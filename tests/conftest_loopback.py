"""Pytest fixtures for the loopback OpenAI-compatible server (tests/loopback.py).

Use them from a test module with `from tests.conftest_loopback import loopback  # noqa: F401`, or register this
module once with `pytest_plugins = ["tests.conftest_loopback"]` in the top-level tests/conftest.py.
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
