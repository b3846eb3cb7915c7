"""What every command group shares: consoles, a session on the configured database, JSON output."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from rich.console import Console

if TYPE_CHECKING:  # sqlmodel costs ~1 s to import; `ownbench --help` must not pay for it
    from sqlmodel import Session

console = Console()
# Messages on stderr never wrap: a "file:line: field" location must stay on one line for editors and grep.
err_console = Console(stderr=True, soft_wrap=True)

JSON_HELP = "Print machine-readable JSON instead of tables."


@contextmanager
def session() -> Iterator["Session"]:
    """A session on the configured database; commits on success, rolls everything back on error."""
    from storage.db import session_scope

    from ownbench.settings import engine

    with session_scope(engine()) as s:
        yield s


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
