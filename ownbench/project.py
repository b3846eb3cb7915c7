"""A project folder: the files `ownbench init` writes, from the copies shipped in the package.

    rubrics/*.yaml, rubrics/rubric.schema.json   the shipped rubrics to edit (schema header kept) and their schema
    candidates.yaml                              the example candidates
    .streamlit/config.toml, .streamlit/secrets.toml   the app's settings; secrets from a template, git-ignored
    .gitignore, README.md

Nothing is overwritten unless asked: every file that exists already is named, and nothing is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from storage.errors import InputError

TEMPLATE = Path(str(resources.files("ownbench") / "project_template"))
STREAMLIT_CONFIG = Path(str(resources.files("ui") / "streamlit_config" / "config.toml"))
GITIGNORE_LINE = ".streamlit/secrets.toml"


@dataclass(frozen=True)
class Planned:
    target: str  # relative to the project folder
    source: Path


def plan() -> list[Planned]:
    from judging.rubric import RUBRICS_DIR, SCHEMA_HEADER

    rubrics = sorted(RUBRICS_DIR.glob("*.yaml"))
    if not rubrics:
        raise InputError(f"no shipped rubric in {RUBRICS_DIR}", hint="reinstall ownbench")
    for path in rubrics:  # the copies keep the editor's schema line: it points at the schema copied beside them
        if not path.read_text(encoding="utf-8").startswith(SCHEMA_HEADER):
            raise InputError(f"shipped rubric lacks the schema header {SCHEMA_HEADER!r}", where=str(path))
    return [
        *(Planned(f"rubrics/{p.name}", p) for p in rubrics),
        Planned("rubrics/rubric.schema.json", RUBRICS_DIR / "rubric.schema.json"),
        Planned("candidates.yaml", TEMPLATE / "candidates.yaml"),
        Planned(".streamlit/config.toml", STREAMLIT_CONFIG),
        Planned(".streamlit/secrets.toml", TEMPLATE / "secrets.template.toml"),
        Planned("README.md", TEMPLATE / "README.md"),
    ]


def init_project(folder: Path, *, force: bool = False) -> list[str]:
    """Write the project files into `folder` (created if needed); returns what was written, in order.
    `.gitignore` is created, or gets the secrets line appended when it lacks it; it is never overwritten."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file, not a folder", where="DIR", hint="give a folder to create or fill")
    files = plan()
    existing = [f.target for f in files if (folder / f.target).exists()]
    if existing and not force:
        raise InputError(f"{folder} already has {', '.join(existing)}", where="ownbench init",
                         hint="nothing was written; move them away, or add --force to overwrite them")
    written = []
    for f in files:
        dest = folder / f.target
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.source.read_bytes())
        written.append(f.target)
    ignore = folder / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if GITIGNORE_LINE not in (line.strip() for line in lines):
        text = (TEMPLATE / "gitignore").read_text(encoding="utf-8")
        prefix = "\n" if lines else ""
        with ignore.open("a", encoding="utf-8") as fh:
            fh.write(prefix + text)
        written.append(".gitignore")
    return written
