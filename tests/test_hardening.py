"""Fault and hostile-input probes that once failed, kept as regression tests: limits that stick, a cache that
survives kill -9, clear errors instead of tracebacks, the same behaviour on SQLite and PostgreSQL, exit codes
that tell the truth, and an app that leaves no server behind. Providers are the loopback server; verdicts and
labels are SIMULATED."""
from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from storage.models import CacheEntry, Item, JudgeRun, Judgment, Output, Run
from tests.conftest_loopback import OWNBENCH, freeze_items, ownbench_cli, write_candidates
from tests.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]
RUBRICS = ROOT / "rubrics"


def flat(proc: subprocess.CompletedProcess) -> str:
    """stderr and stdout on one line: Rich may wrap a long location."""
    return " ".join((proc.stderr + proc.stdout).split())


def wait_for(predicate, what: str, limit_s: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def popen(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([OWNBENCH, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})


# --- 1. limits stick ----------------------------------------------------------------------------------------


def test_limits_from_candidates_yaml_are_stored_and_used_by_name(sqlite_engine, loopback: LoopbackServer,
                                                                 tmp_path: Path) -> None:
    declared = write_candidates(tmp_path / "declared.yaml", loopback, concurrency=2, rpm=3, timeout_s=1,
                                max_attempts=2)
    elsewhere = tmp_path / "elsewhere"  # no ./candidates.yaml here: the limits must come from the database
    elsewhere.mkdir()
    ownbench_cli("candidates", "add", str(declared), cwd=elsewhere, check=True)
    listed = json.loads(ownbench_cli("candidates", "list", "--json", cwd=elsewhere, check=True).stdout)
    assert {k: listed[0][k] for k in ("concurrency", "rpm", "timeout_s", "max_attempts")} == {
        "concurrency": 2, "rpm": 3, "timeout_s": 1.0, "max_attempts": 2}

    # timeout_s and max_attempts: a 3 s answer times out after 1 s, twice; the default (60 s) would wait for it
    freeze_items(sqlite_engine, 1, set_name="slow")
    loopback.latency = 3.0
    proc = ownbench_cli("run", "--set", "slow@1", "--candidate", "loop", "--json", "--allow-errors", cwd=elsewhere)
    assert proc.returncode == 0, flat(proc)
    with Session(sqlite_engine) as s:
        out = s.exec(select(Output)).one()
    assert out.text is None and out.attempts == 2 and "timed out after 2 attempts" in (out.error or "")
    assert loopback.request_count == 2

    # rpm 3: one call, then the next waits about 20 s; without the stored limit all four go at once
    loopback.latency = 0.0
    loopback.reset()
    freeze_items(sqlite_engine, 4, set_name="paced")
    run = popen("run", "--set", "paced@1", "--candidate", "loop", cwd=elsewhere)
    try:
        wait_for(lambda: loopback.request_count >= 1, "the first call")
        time.sleep(2.0)
        assert loopback.request_count == 1
    finally:
        run.kill()
        run.communicate()

    # concurrency 2 from the file; --concurrency and --rpm on the command line override, and the run says so
    loopback.latency = 0.3
    loopback.reset()
    freeze_items(sqlite_engine, 6, set_name="wide")
    first = json.loads(ownbench_cli("run", "--set", "wide@1", "--candidate", "loop", "--rpm", "100000", "--json",
                                    cwd=elsewhere, check=True).stdout)
    assert loopback.max_in_flight == 2
    shown = json.loads(ownbench_cli("runs", "show", str(first["run_id"]), "--json", cwd=elsewhere, check=True).stdout)
    assert shown["config"]["limits"] == {"concurrency": 2, "rpm": 100000, "tpm": None, "timeout_s": 1.0,
                                         "max_attempts": 2}
    again = json.loads(ownbench_cli("run", "--set", "wide@1", "--candidate", "loop", "--new", "--no-cache",
                                    "--concurrency", "20", "--rpm", "100000", "--timeout", "30", "--json",
                                    cwd=elsewhere, check=True).stdout)
    shown = json.loads(ownbench_cli("runs", "show", str(again["run_id"]), "--json", cwd=elsewhere, check=True).stdout)
    assert shown["config"]["limits"]["concurrency"] == 20 and shown["config"]["limits"]["timeout_s"] == 30.0
    bad = ownbench_cli("run", "--set", "wide@1", "--candidate", "loop", "--timeout", "-1", cwd=elsewhere)
    assert bad.returncode == 2 and "--timeout" in flat(bad)


# --- 4. kill -9 keeps every answer it received --------------------------------------------------------------


def test_sigkill_during_a_run_loses_no_cache_entry(sqlite_engine, loopback: LoopbackServer, tmp_path: Path) -> None:
    write_candidates(tmp_path / "candidates.yaml", loopback, concurrency=4)
    freeze_items(sqlite_engine, 80)
    loopback.latency = 0.05
    run = popen("run", "--set", "demo@1", "--candidate", "loop", cwd=tmp_path)
    wait_for(lambda: loopback.request_count >= 30, "30 calls")
    run.send_signal(signal.SIGKILL)
    run.communicate()
    with Session(sqlite_engine) as s:
        answered = s.exec(select(Output.request_hash, Item.messages).join(Item, Item.id == Output.item_id)
                          .where(Output.error.is_(None))).all()  # type: ignore[union-attr]
        cached = set(s.exec(select(CacheEntry.request_hash)).all())
    assert answered and len(answered) < 80  # killed mid-run
    assert {h for h, _ in answered} <= cached  # every answer the run stored is in the cache too
    paid_before = {m[0]["content"] for _, m in answered}

    loopback.reset()  # a fresh run (not a resume) finds what it needs in the cache alone
    proc = ownbench_cli("run", "--set", "demo@1", "--candidate", "loop", "--new", "--json", cwd=tmp_path)
    assert proc.returncode == 0, flat(proc)
    asked_again = {b["messages"][0]["content"] for b in loopback.bodies} & paid_before
    assert asked_again == set()
    assert json.loads(proc.stdout)["cache_hits"] >= len(answered)


def test_a_gateway_answer_is_in_the_cache_as_soon_as_it_is_returned(sqlite_engine, loopback: LoopbackServer) -> None:
    import asyncio

    from gateway.cache import cache_get
    from gateway.client import Gateway, ModelConfig

    async def one() -> str:
        gw = Gateway(sqlite_engine)
        result = await gw.complete(ModelConfig("openai/m", api_base=loopback.base_url), [{"role": "user", "content": "hi"}])
        assert cache_get(sqlite_engine, result.request_hash) is not None  # before any close or flush
        await gw.aclose()
        return result.request_hash

    asyncio.run(one())


# --- 2. YAML alias bombs ------------------------------------------------------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9))


def test_yaml_alias_bombs_are_refused_with_their_line(tmp_path: Path) -> None:
    from judging.rubric import validate_rubric_text

    assert len(BOMB) < 500  # 9^10 values once every alias is followed
    rubric = tmp_path / "bomb.yaml"
    rubric.write_text("name: bomb\ndescription: x\n" + BOMB, encoding="utf-8")
    proc = subprocess.run([OWNBENCH, "rubrics", "validate", str(rubric)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"{rubric}:4: YAML aliases expand to more than" in flat(proc)
    # the app's live editor validates the same way
    _, problems = validate_rubric_text("name: bomb\n" + BOMB, "editor")
    assert problems and problems[0].line == 3 and "aliases expand" in problems[0].message
    cands = tmp_path / "candidates.yaml"
    cands.write_text("candidates: []\n" + BOMB, encoding="utf-8")
    proc = subprocess.run([OWNBENCH, "candidates", "add", str(cands)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"{cands}:3: YAML aliases expand" in flat(proc)
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    proc = subprocess.run([OWNBENCH, "rubrics", "validate", str(deep)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "nested more than 64 levels" in flat(proc) and "Traceback" not in proc.stderr
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: &x [a, *x]\n", encoding="utf-8")
    _, problems = validate_rubric_text(loop.read_text(), str(loop))
    assert problems and "refers to a node that contains it" in problems[0].message


def test_ordinary_aliases_still_work() -> None:
    from judging.rubric import validate_rubric_text

    text = (RUBRICS / "helpfulness.yaml").read_text(encoding="utf-8")
    rubric, problems = validate_rubric_text(text, "helpfulness.yaml")
    assert problems == [] and rubric is not None


# --- 3. agreement when κ is undefined -----------------------------------------------------------------------


def test_agreement_shows_undefined_kappa_with_its_reason(sqlite_engine, tmp_path: Path) -> None:
    from tests.test_analysis_reports import seed_study

    # every output passes, the simulated judge and annotators never err: one category everywhere, κ is 0/0
    seed_study(sqlite_engine, items=40, rates={"a": 1.0, "b": 1.0}, sens=1.0, spec=1.0, flip=0.0, golden=20, k=2,
               annotators=("ann", "bob"), unscored=0)
    proc = ownbench_cli("agreement", "--set", "support@1", "--rubric", "support", "--bootstrap", "200",
                        cwd=tmp_path)
    assert proc.returncode == 0, flat(proc)
    assert "undefined: every unit got the same single label" in proc.stdout
    as_json = json.loads(ownbench_cli("agreement", "--set", "support@1", "--rubric", "support", "--json",
                                      "--bootstrap", "200", cwd=tmp_path, check=True).stdout)
    correct = next(c for c in as_json["criteria"] if c["criterion"] == "correct")
    assert any(p["kappa"]["value"] is None and p["kappa"]["n"] > 0 for p in correct["pairs"])


# --- 5. clear errors instead of tracebacks ------------------------------------------------------------------


def test_label_import_refuses_infinite_and_nan_levels_and_bad_bytes(sqlite_engine, tmp_path: Path) -> None:
    from tests.test_analysis_reports import seed_study

    seed_study(sqlite_engine, items=10, golden=None)
    rows = "item,candidate,criterion,label,annotator\n" + "".join(
        f"q00{i},baseline,quality,{v},ann\n" for i, v in enumerate(["inf", "nan", "1e400", "-inf", "3"]))
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(rows, encoding="utf-8")
    proc = ownbench_cli("labels", "import", str(csv_file), "--set", "support@1", "--rubric", "support", cwd=tmp_path)
    err = flat(proc)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for line, label in ((2, "inf"), (3, "nan"), (4, "1e400"), (5, "-inf")):
        assert f"labels.csv:{line}: criterion 'quality': label '{label}' is not a level" in err
    raw = tmp_path / "labels.jsonl"
    raw.write_bytes(b'{"item": "q000", "candidate": "baseline", "criterion": "quality", "label": 3, "annotator": "a"}\n'
                    b'{"item": "q001", "candidate": "baseline", "criterion": "quality", "label": 3, "annotator": "\xff"}\n')
    proc = ownbench_cli("labels", "import", str(raw), "--set", "support@1", "--rubric", "support", cwd=tmp_path)
    assert proc.returncode == 2 and "labels.jsonl:2: not UTF-8 text (byte 0xff" in flat(proc)
    raw_csv = tmp_path / "bytes.csv"
    raw_csv.write_bytes(b"item,candidate,criterion,label,annotator\nq000,baseline,quality,3,\xe9ve\n")
    proc = ownbench_cli("labels", "import", str(raw_csv), "--set", "support@1", "--rubric", "support", cwd=tmp_path)
    assert proc.returncode == 2 and "bytes.csv:2: not UTF-8 text (byte 0xe9" in flat(proc)


def test_runs_and_judgments_import_refuse_bad_bytes_and_deep_json(sqlite_engine, tmp_path: Path) -> None:
    _, label = freeze_items(sqlite_engine, 2)
    answers = tmp_path / "answers.jsonl"
    answers.write_bytes(b'{"item_key": "item-0000", "output": "fine"}\n{"item_key": "item-0001", "output": "\xc3("}\n'
                        + b'{"item_key": "item-0001", "output": "x", "meta": ' + b"[" * 100_000 + b"]" * 100_000
                        + b"}\n" + b'{"item_key": "item-0001", "output": "x", "prompt_tokens": 99999999999}\n')
    proc = ownbench_cli("runs", "import", str(answers), "--candidate", "c", "--set", label, cwd=tmp_path)
    err = flat(proc)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "answers.jsonl:2: not UTF-8 text (byte 0xc3 at column" in err
    assert "answers.jsonl:3: JSON nested too deeply" in err
    assert "answers.jsonl:4: prompt_tokens must be a whole number from 0 to 2,147,483,647" in err
    with Session(sqlite_engine) as s:
        assert s.exec(select(Run)).all() == []  # nothing half-imported
    good = tmp_path / "good.jsonl"
    good.write_text('{"item_key": "item-0000", "output": "fine"}\n', encoding="utf-8")
    ownbench_cli("runs", "import", str(good), "--candidate", "c", "--set", label, cwd=tmp_path, check=True)
    verdicts = tmp_path / "verdicts.jsonl"
    verdicts.write_bytes(b'{"item": "item-0000", "candidate": "c", "criterion": "helpful", "verdict": "\xff"}\n')
    proc = ownbench_cli("judgments", "import", str(verdicts), "--set", label, "--rubric",
                        str(RUBRICS / "safety.yaml"), "--judge-name", "vendor", cwd=tmp_path)
    assert proc.returncode == 2 and "verdicts.jsonl:1: not UTF-8 text (byte 0xff" in flat(proc)
    with Session(sqlite_engine) as s:
        assert s.exec(select(Judgment)).all() == []


def test_ingest_refuses_deep_json_truncated_gzip_and_directories(tmp_path: Path) -> None:
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"messages": [{"role": "user", "content": "ok"}]}\n'
                    '{"messages": ' + "[" * 200_000 + "]" * 200_000 + "}\n", encoding="utf-8")
    proc = ownbench_cli("ingest", str(deep), "--name", "deep", cwd=tmp_path)
    assert proc.returncode == 2 and f"{deep}:2: JSON nested too deeply" in flat(proc)
    as_doc = tmp_path / "deep.json"
    as_doc.write_text("[" + '{"messages": ' + "[" * 200_000 + "]" * 200_000 + "}]", encoding="utf-8")
    proc = ownbench_cli("ingest", str(as_doc), "--name", "deep", "--format", "openai", cwd=tmp_path)
    assert proc.returncode == 2 and f"{as_doc}:1 $[0]: JSON nested too deeply" in flat(proc)  # the record is named by its JSON path

    whole = gzip.compress(b"".join(
        json.dumps({"messages": [{"role": "user", "content": f"question {i} " * 20}]}).encode() + b"\n"
        for i in range(2000)))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    proc = ownbench_cli("ingest", str(cut), "--name", "cut", cwd=tmp_path)
    assert proc.returncode == 2 and "Aborted" not in flat(proc)
    assert f"{cut}: the gzip file is truncated" in flat(proc) and "gzip -t" in flat(proc)

    folder = tmp_path / "logs"
    folder.mkdir()
    proc = ownbench_cli("ingest", str(folder), "--name", "dir", cwd=tmp_path)
    assert proc.returncode == 2 and f"{folder}: is a directory, not a log file" in flat(proc)
    assert str(folder / "*.jsonl") in flat(proc)


# --- 6. the same on SQLite and PostgreSQL -------------------------------------------------------------------


def test_a_300_character_annotator_name_is_refused_on_every_backend(engine, tmp_path: Path) -> None:
    from tests.test_analysis_reports import seed_study

    seed_study(engine, items=10, golden=None)
    long = "x" * 300
    rows = tmp_path / "labels.csv"
    rows.write_text(f"item,candidate,criterion,label,annotator\nq000,baseline,quality,3,{long}\n", encoding="utf-8")
    proc = ownbench_cli("labels", "import", str(rows), "--set", "support@1", "--rubric", "support", cwd=tmp_path)
    assert proc.returncode == 2
    assert "labels.csv:2: annotator name 'xxx" in flat(proc)
    assert "is 300 characters long; the limit is 200" in flat(proc)
    proc = ownbench_cli("golden", "select", "--set", "support@1", "--rubric", "support", "--n", "4", "--seed", "1",
                        "--annotators", f"ann,{long}", cwd=tmp_path)
    assert proc.returncode == 2 and "--annotators: annotator name 'xxx" in flat(proc)
    assert "is 300 characters long" in flat(proc)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM annotator")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM golden_unit")).scalar_one() == 0


def _open_annotator(url: str, name: str, barrier, out) -> None:  # type: ignore[no-untyped-def]
    from analysis.names import get_or_create_annotator
    from storage.db import make_engine, session_scope

    engine = make_engine(url, migrate=False)
    barrier.wait()
    try:
        with session_scope(engine) as s:
            out.put(("ok", get_or_create_annotator(s, name).id))
    except Exception as exc:  # noqa: BLE001 - the parent asserts on what happened
        out.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_concurrent_first_use_of_a_name_gets_one_annotator_on_postgres(pg_database: str) -> None:
    from storage.db import make_engine

    url = pg_database.replace("postgresql+psycopg://", "postgresql://")
    from tests.conftest import _fresh_pg

    _fresh_pg(pg_database)
    make_engine(url).dispose()
    ctx = multiprocessing.get_context("fork")
    for round_ in range(8):  # 64 first uses, as in the probe that found 6 failures
        name = f"new-person-{round_}"
        barrier, out = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_open_annotator, args=(url, name, barrier, out)) for _ in range(8)]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert [r for r in results if r[0] == "error"] == []
        assert len({r[1] for r in results}) == 1
    eng = create_engine(pg_database)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM annotator")).scalar_one() == 8
    eng.dispose()


# --- 7. runs export refuses a tampered version --------------------------------------------------------------


def test_runs_export_refuses_a_tampered_version(db_url: str, tmp_path: Path) -> None:
    from storage.db import make_engine

    engine = make_engine(db_url)
    _, label = freeze_items(engine, 2)
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"item_key": "item-0000", "output": "a"}\n{"item_key": "item-0001", "output": "b"}\n')
    info = json.loads(ownbench_cli("runs", "import", str(answers), "--candidate", "c", "--set", label, "--json",
                                   cwd=tmp_path, check=True).stdout)
    ownbench_cli("runs", "export", str(info["run_id"]), "-o", str(tmp_path / "ok.jsonl"), cwd=tmp_path, check=True)
    with engine.begin() as conn:
        conn.execute(text("UPDATE item SET messages = :m WHERE item_key = 'item-0000'"),
                     {"m": json.dumps([{"role": "user", "content": "changed by hand"}])})
    engine.dispose()
    out = tmp_path / "tampered.jsonl"
    proc = ownbench_cli("runs", "export", str(info["run_id"]), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 2 and "failed verification" in flat(proc) and "ownbench sets verify" in flat(proc)
    assert not out.exists()


# --- 10. exit codes -----------------------------------------------------------------------------------------


def test_run_exits_1_when_items_end_in_error_unless_allowed(sqlite_engine, loopback: LoopbackServer,
                                                            tmp_path: Path) -> None:
    write_candidates(tmp_path / "candidates.yaml", loopback, max_attempts=1)
    freeze_items(sqlite_engine, 4)
    loopback.script = lambda body: ({"fault": "500"} if body["messages"][0]["content"].endswith("2") else None)
    proc = ownbench_cli("run", "--set", "demo@1", "--candidate", "loop", cwd=tmp_path)
    assert proc.returncode == 1 and "1 item(s) ended in an error" in flat(proc) and "--allow-errors" in flat(proc)
    proc = ownbench_cli("run", "--set", "demo@1", "--candidate", "loop", "--allow-errors", cwd=tmp_path)
    assert proc.returncode == 0, flat(proc)  # the resume retried the error, which failed again, and was accepted
    loopback.script = None
    proc = ownbench_cli("run", "--set", "demo@1", "--candidate", "loop", cwd=tmp_path)
    assert proc.returncode == 0, flat(proc)  # retried and answered: nothing left in error


def test_judge_stops_at_once_on_a_refused_key_and_exits_1_on_unscored(sqlite_engine, tmp_path: Path) -> None:
    from tests.test_judging_runs import seeded
    from tests.test_judging_support import scripted

    seeded(sqlite_engine, n_items=6)
    args = ["judge", "--set", "arena@1", "--rubric", str(RUBRICS / "helpfulness.yaml"), "--judge", "openai/sim-judge",
            "--concurrency", "1", "--json"]
    with LoopbackServer(require_key="the-right-key") as server:
        server.script = scripted([{"reasoning": "fine", "verdict": 4}])
        env_args = [*args, "--api-base", server.base_url, "--api-key-env", "SIM_JUDGE_KEY"]
        proc = subprocess.run([OWNBENCH, *env_args, "--max-retries", "0"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120, env={**os.environ, "SIM_JUDGE_KEY": "a-wrong-key"})
        assert proc.returncode == 1 and "refused the credentials" in flat(proc) and "SIM_JUDGE_KEY" in flat(proc)
        assert server.request_count == 1  # stopped at the first refusal, not after every unit
        assert "a-wrong-key" not in proc.stdout + proc.stderr
        with Session(sqlite_engine) as s:
            run = s.exec(select(JudgeRun)).one()
            assert run.status == "failed" and "refused" in (run.status_reason or "")
            assert s.exec(select(Judgment)).all() == []  # nothing judged: the units stay to do

        # a key that works: every third verdict is out of range and stays unscored; the exit code says so
        server.script = scripted([{"reasoning": "fine", "verdict": 4}, {"reasoning": "fine", "verdict": 4},
                                  {"reasoning": "odd", "verdict": 9}] * 4)
        ok_env = {**os.environ, "SIM_JUDGE_KEY": "the-right-key"}
        proc = subprocess.run([OWNBENCH, *env_args, "--max-retries", "0"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120, env=ok_env)
        summary = json.loads(proc.stdout)
        assert (summary["scored"], summary["unscored"], summary["unscored_in_run"]) == (8, 4, 4)
        assert proc.returncode == 1 and "unscored" in proc.stderr and "--allow-errors" in flat(proc)
        proc = subprocess.run([OWNBENCH, *env_args, "--allow-errors"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120, env=ok_env)
        assert proc.returncode == 0, flat(proc)


# --- 11. the app leaves no server behind --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_sigterm_to_ownbench_app_frees_its_port(tmp_path: Path) -> None:
    port = _free_port()
    app = subprocess.Popen([OWNBENCH, "app", "--port", str(port), "--address", "127.0.0.1"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _listening(port) or app.poll() is not None, "the app to listen")
        assert app.poll() is None, app.stdout.read() if app.stdout else ""
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=60)
        wait_for(lambda: not _listening(port), "the port to be freed", limit_s=30)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
