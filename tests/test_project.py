"""A project folder: `ownbench init`, `--project`, rubric names resolved in the project then in the shipped
rubrics, and a missing extra said in one line (exit 2) instead of a traceback."""
from __future__ import annotations

import socket
import sys
import tomllib
from pathlib import Path

import pytest

from judging.rubric import RUBRICS_DIR, SCHEMA_HEADER
from tests.conftest_loopback import ownbench_cli

ROOT = Path(__file__).resolve().parents[1]


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`ownbench ARGV` in this process, through the same entry point as the console script."""
    from ownbench.cli import main

    old = sys.argv
    sys.argv = ["ownbench", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def test_init_writes_a_project_with_the_shipped_rubrics_and_a_secrets_template(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    done = ownbench_cli("init", str(proj), cwd=tmp_path, check=True)
    for name in ("helpfulness", "correctness", "safety"):
        copy = proj / "rubrics" / f"{name}.yaml"
        assert copy.read_text() == (RUBRICS_DIR / f"{name}.yaml").read_text()
        assert copy.read_text().splitlines()[0] == SCHEMA_HEADER
    assert (proj / "rubrics" / "rubric.schema.json").read_bytes() == (RUBRICS_DIR / "rubric.schema.json").read_bytes()
    assert "candidates:" in (proj / "candidates.yaml").read_text()
    secrets = (proj / ".streamlit" / "secrets.toml").read_text()
    assert "# [auth]" in secrets and "OPENAI_API_KEY" in secrets
    assert tomllib.loads(secrets) == {}  # a template: every entry commented out, and valid TOML
    assert tomllib.loads((proj / ".streamlit" / "config.toml").read_text())["server"]["headless"] is True
    assert ".streamlit/secrets.toml" in (proj / ".gitignore").read_text().splitlines()
    assert "ownbench demo" in (proj / "README.md").read_text()
    assert f"wrote {proj / 'candidates.yaml'}" in done.stdout
    valid = ownbench_cli("rubrics", "validate", *sorted(str(p) for p in (proj / "rubrics").glob("*.yaml")),
                         cwd=proj)
    assert valid.returncode == 0, valid.stderr


def test_init_refuses_to_overwrite_and_names_the_files_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "candidates.yaml").write_text("mine\n")
    (tmp_path / ".gitignore").write_text("*.db\n")
    refused = ownbench_cli("init", cwd=tmp_path)
    assert refused.returncode == 2
    assert "candidates.yaml" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "rubrics").exists()  # nothing half-written
    assert (tmp_path / "candidates.yaml").read_text() == "mine\n"
    forced = ownbench_cli("init", "--force", cwd=tmp_path, check=True)
    assert "wrote" in forced.stdout
    assert "candidates:" in (tmp_path / "candidates.yaml").read_text()
    assert (tmp_path / ".gitignore").read_text().splitlines()[0] == "*.db"  # kept, the secrets line added
    assert ".streamlit/secrets.toml" in (tmp_path / ".gitignore").read_text()


def test_rubric_names_resolve_in_the_project_first_then_in_the_shipped_ones(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    ownbench_cli("init", str(proj), cwd=tmp_path, check=True)
    own = proj / "rubrics" / "helpfulness.yaml"
    own.write_text(own.read_text().replace("name: helpfulness", "name: helpfulness\n# edited in the project"))
    (proj / "rubrics" / "safety.yaml").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    mine = ownbench_cli("--project", str(proj), "rubrics", "show", "helpfulness", cwd=elsewhere, check=True)
    assert "edited in the project" in mine.stdout
    assert f"{own} (project)" in mine.stderr
    shipped = ownbench_cli("rubrics", "show", "safety", cwd=proj, check=True)
    assert f"{RUBRICS_DIR / 'safety.yaml'} (shipped)" in shipped.stderr
    listed = ownbench_cli("rubrics", "list", cwd=proj, check=True)
    assert f"project: helpfulness  {own}" in listed.stdout
    assert f"shipped: safety  {RUBRICS_DIR / 'safety.yaml'}" in listed.stdout
    missing = ownbench_cli("--project", str(tmp_path / "nope"), "rubrics", "list", cwd=tmp_path)
    assert missing.returncode == 2 and "ownbench init" in missing.stderr


def test_a_postgresql_url_without_psycopg_names_the_postgres_extra(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    monkeypatch.setenv("OWNBENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/ownbench")
    code, out, err = run_main(["sets", "list"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        "error: a postgresql database (OWNBENCH_DATABASE_URL) needs the postgres extra: pip install 'ownbench[postgres]'"]


def test_an_auth_block_without_authlib_names_the_auth_extra_before_serving(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "authlib", None)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[auth]\nclient_id = "x"\n')
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = run_main(["--project", str(tmp_path), "app", "--port", str(port)], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        "error: sign-in ([auth] in .streamlit/secrets.toml) needs the auth extra: pip install 'ownbench[auth]'"]
    assert "ownbench app:" not in out  # refused before the server was started


def test_the_local_judge_without_llama_cpp_names_the_local_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from judging import local_model

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SystemExit) as exc:
        local_model.main(["serve", "--dir", str(tmp_path / "cache"), "--port", str(port)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: the local judge (llama-cpp-python) needs the local extra: pip install 'ownbench[local]'"]
    assert not (tmp_path / "cache").exists()  # nothing downloaded first


def test_the_local_judge_takes_every_core_unless_told_and_refuses_a_bad_thread_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from judging import local_model

    monkeypatch.delenv(local_model.THREADS_ENV, raising=False)
    assert local_model.default_threads() == max(1, min(len(os.sched_getaffinity(0)), 8))
    monkeypatch.setenv(local_model.THREADS_ENV, "1")
    assert local_model.default_threads() == 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(local_model.THREADS_ENV, bad)
        with pytest.raises(SystemExit, match=f"OWNBENCH_LOCAL_JUDGE_THREADS={bad!r} is not a whole number"):
            local_model.default_threads()


def test_the_app_runs_in_the_project_folder_with_the_shipped_config_under_its_own(tmp_path: Path) -> None:
    from ownbench.cli.app_cmd import shipped_config_flags

    flags = shipped_config_flags(tmp_path)  # no config of its own: the shipped settings apply
    assert flags[flags.index("--theme.base") + 1] == "light"
    assert "--server.headless" not in flags  # set by `ownbench app` itself
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text('[theme]\nbase = "dark"\n')
    flags = shipped_config_flags(tmp_path)
    assert "--theme.base" not in flags  # the project's own file wins (Streamlit reads it from the cwd)
    assert flags[flags.index("--client.toolbarMode") + 1] == "minimal"
