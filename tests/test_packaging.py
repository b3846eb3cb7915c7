"""The wheel carries every file the installed tool needs at run time: code, judge templates, migrations, demo
data, the shipped rubrics with their schema, the app's Streamlit config and the project template."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ownbench", "storage", "evalsets", "gateway", "judging", "stats", "analysis", "ui")
NEVER_SHIPPED = {"secrets.toml"}  # a developer's keys beside the app's config must not reach an archive


def runtime_files() -> set[str]:
    """Every file of our packages as it lands in a wheel, following the symlinks to `rubrics/` and `.streamlit/`."""
    found = set()
    for pkg in PACKAGES:
        for dirpath, dirnames, filenames in os.walk(ROOT / pkg, followlinks=True):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel = Path(dirpath).relative_to(ROOT)
            found |= {(rel / f).as_posix() for f in filenames
                      if not f.endswith((".pyc", ".pyo")) and f not in NEVER_SHIPPED}
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = out.glob("ownbench-*.whl")
    return built


def test_the_shipped_folders_are_reached_through_the_packages() -> None:
    assert (ROOT / "judging" / "shipped_rubrics").resolve() == (ROOT / "rubrics").resolve()
    assert (ROOT / "ui" / "streamlit_config").resolve() == (ROOT / ".streamlit").resolve()
    names = {p.removeprefix("judging/shipped_rubrics/") for p in runtime_files() if "shipped_rubrics" in p}
    assert {"helpfulness.yaml", "correctness.yaml", "safety.yaml", "rubric.schema.json"} <= names
    assert "ui/streamlit_config/config.toml" in runtime_files()


@pytest.mark.slow
def test_the_wheel_holds_every_runtime_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(runtime_files() - names)
    assert not missing, f"missing from {wheel.name}: {missing}"
    for needed in ("judging/shipped_rubrics/rubric.schema.json", "judging/templates/pointwise.j2",
                   "storage/migrations/env.py", "storage/migrations/versions/0001_initial_domain_tables.py",
                   "ui/streamlit_config/config.toml", "ownbench/project_template/candidates.yaml",
                   "ownbench/project_template/secrets.template.toml",
                   "ownbench/demo_data/arena_hard_1k/question.jsonl.gz"):
        assert needed in names
    assert not [n for n in names if Path(n).name in NEVER_SHIPPED]
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]
