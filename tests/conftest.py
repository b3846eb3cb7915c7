"""Shared fixtures: a private OWNBENCH_HOME per test, and engines on SQLite and on a real PostgreSQL.

PostgreSQL is 127.0.0.1:5432 with trust auth (override with OWNBENCH_TEST_PG). Each test session creates its
own database and drops it at the end. Outside CI an unreachable server skips those tests with a warning; in
CI (CI=true) it fails them, because the storage layer must be proven on both.
"""
from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.conftest_loopback import loopback  # noqa: F401 - the loopback OpenAI-compatible server fixture

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).with_name("fixtures")
PG_SERVER = os.environ.get("OWNBENCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def ownbench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and database; nothing touches ~/.ownbench."""
    home = tmp_path / "ownbench-home"
    monkeypatch.setenv("OWNBENCH_HOME", str(home))
    monkeypatch.delenv("OWNBENCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("OWNBENCH_PROJECT", raising=False)
    from ownbench import settings

    settings._engine_for.cache_clear()
    yield home
    settings._engine_for.cache_clear()
    # `ownbench --project` sets it for its own process and what it starts; in-process CLI tests must not leak it
    os.environ.pop("OWNBENCH_PROJECT", None)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped at the end."""
    name = f"ownbench_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means the same thing here
        msg = f"PostgreSQL at {PG_SERVER} is not reachable ({exc.__class__.__name__}: {str(exc).splitlines()[0]})"
        if IN_CI:
            pytest.fail(msg + ": CI must test storage on PostgreSQL")
        warnings.warn(msg + ": PostgreSQL tests are SKIPPED", stacklevel=1)
        pytest.skip(msg)
    yield f"{PG_SERVER}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_pg(url: str) -> None:
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated, empty database URL on each backend; also set as OWNBENCH_DATABASE_URL for CLI calls."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _fresh_pg(url)
    monkeypatch.setenv("OWNBENCH_DATABASE_URL", url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from storage.db import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """SQLite only, for tests whose subject is not the storage backend."""
    from storage.db import make_engine

    url = f"sqlite:///{tmp_path / 'test.db'}"
    monkeypatch.setenv("OWNBENCH_DATABASE_URL", url)
    eng = make_engine(url)
    yield eng
    eng.dispose()
