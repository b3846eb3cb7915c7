"""Where ownbench keeps its data: OWNBENCH_HOME (default ~/.ownbench) and OWNBENCH_DATABASE_URL."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import Engine


def home() -> Path:
    from storage.db import data_home

    path = data_home()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    from storage.db import configured_url

    home()
    return configured_url()


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    from storage.db import make_engine

    return make_engine(url)


def engine() -> Engine:
    """The engine for the configured database, migrated to the latest schema."""
    return _engine_for(database_url())
