"""Commands of this group (filled in by its feature)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
