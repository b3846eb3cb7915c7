"""A sentinel API key reaches the provider and nothing else: not the database (every table dumped), not the
command's output or logs, not exports, not the error stored for a refused key (the server echoes it back)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlmodel import SQLModel

import storage.models  # noqa: F401 - registers every table
from tests.conftest_loopback import freeze_items, ownbench_cli
from tests.loopback import LoopbackServer

GOOD = "sk-proj-SENTINELgood-7c1e9a5b3d2f4e6a8b0c"
BAD = "sk-proj-SENTINELbad-0a2b4c6d8e1f3a5c7e9b"
MARKERS = ("SENTINEL", "7c1e9a5b3d2f4e6a8b0c", "0a2b4c6d8e1f3a5c7e9b")


def dump_database(engine) -> str:  # type: ignore[no-untyped-def]
    parts = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(parts)


@pytest.mark.parametrize("direct", ["1", "0"], ids=["direct", "litellm"])
def test_sentinel_key_never_stored_logged_or_exported(
    direct: str, engine, loopback: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OB_GOOD_KEY", GOOD)
    monkeypatch.setenv("OB_BAD_KEY", BAD)
    monkeypatch.setenv("OWNBENCH_GATEWAY_DIRECT", direct)
    loopback.require_key = GOOD  # a wrong key gets a 401 that quotes it, as some providers do
    _, label = freeze_items(engine, 5)
    base = {"model": "openai/loop-model", "api_base": loopback.base_url, "input_price_per_mtok": 1.0,
            "output_price_per_mtok": 2.0}
    (tmp_path / "candidates.yaml").write_text(yaml.safe_dump({"candidates": [
        {"name": "good", "api_key_env": "OB_GOOD_KEY", **base},
        {"name": "bad", "api_key_env": "OB_BAD_KEY", **base, "params": {"temperature": 0.1}},
    ]}), encoding="utf-8")

    texts = []
    for args in (
        ("candidates", "add", "candidates.yaml"),
        ("run", "--set", label, "--candidate", "good"),
        ("run", "--set", label, "--candidate", "bad"),
        ("runs", "list"), ("runs", "list", "--json"),
        ("runs", "show", "1"), ("runs", "show", "2", "--json"),
        ("runs", "export", "1"), ("runs", "export", "2", "--out", "bad.jsonl"),
        ("candidates", "list", "--json"), ("candidates", "list", "candidates.yaml"),
    ):
        proc = ownbench_cli(*args, cwd=tmp_path)
        assert proc.returncode == (1 if args[-1] == "bad" else 0), (args, proc.stdout, proc.stderr)
        texts += [proc.stdout, proc.stderr]
    texts.append((tmp_path / "bad.jsonl").read_text(encoding="utf-8"))

    # The keys did reach the provider, so the checks below are about something real.
    assert f"Bearer {GOOD}" in loopback.auth_headers and f"Bearer {BAD}" in loopback.auth_headers
    everything = "\n".join(texts) + "\n" + dump_database(engine)
    assert "OB_BAD_KEY" in everything  # the refusal names the variable to fix
    for marker in MARKERS:
        assert marker not in everything
    assert "[redacted]" in everything  # the server's echo of the bad key was there, masked
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm"):
            content = path.read_text(encoding="utf-8", errors="replace")
            assert not any(m in content for m in MARKERS), path
