"""Optional extras: a feature whose library is not installed says, in one line, which extra to install."""
from __future__ import annotations

import importlib.util

from storage.errors import InputError


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None in sys.modules
        return False


def require_extra(module: str, extra: str, purpose: str) -> None:
    """Raise InputError (one line, exit 2 in the CLI) unless `module` can be imported."""
    if not installed(module):
        raise InputError(f"{purpose} needs the {extra} extra: pip install 'ownbench[{extra}]'")
