"""Engine and sessions. One engine per URL; migrations applied on first use (idempotent)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from storage.append_only import guard

MIGRATIONS_DIR = Path(str(resources.files("storage") / "migrations"))


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'ownbench.db'}"


def make_engine(url: str, *, migrate: bool = True) -> Engine:
    """An engine for `url`; SQLite gets WAL and foreign keys, and may be shared across Streamlit's threads."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("postgresql+psycopg"):
        from storage.extras import require_extra

        require_extra("psycopg", "postgres", "a postgresql database (OWNBENCH_DATABASE_URL)")
    kwargs: dict = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        else:
            path = url.split("sqlite:///", 1)[-1]
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        upgrade(engine)
    guard(engine)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def alembic_config(engine: Engine | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the named, append-only migrations up to `revision`."""
    from alembic import command

    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back everything on error: nothing half-written stays."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def env_url(default_home: Path) -> str:
    return os.environ.get("OWNBENCH_DATABASE_URL") or sqlite_url(default_home)


def data_home() -> Path:
    """OWNBENCH_HOME, default ~/.ownbench: where the SQLite database, job logs and demo files live."""
    return Path(os.environ.get("OWNBENCH_HOME") or Path.home() / ".ownbench").expanduser()


PROJECT_ENV = "OWNBENCH_PROJECT"


def project_dir() -> Path:
    """The project folder (rubrics/, candidates.yaml, .streamlit/): OWNBENCH_PROJECT, which `ownbench --project`
    sets for itself and everything it starts, else the working directory (`ownbench app` runs the app in it)."""
    return Path(os.environ.get(PROJECT_ENV) or Path.cwd()).expanduser().resolve()


def configured_url() -> str:
    """The database the CLI and the app share: OWNBENCH_DATABASE_URL, else OWNBENCH_HOME/ownbench.db."""
    return env_url(data_home())
