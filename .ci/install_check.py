"""Install ownbench as users do and use it from an empty folder: build the sdist and the wheel, install the
wheel into a fresh venv outside the repository, then `init`, `demo --no-app`, `rubrics validate`, a judge run by
rubric name against the loopback server (a simulated judge), `agreement`, `rank`, `reports verify` (unchanged, then
after a score is changed in the database) and the app's health endpoint;
a missing extra must be one line; with the postgres extra installed, `pip check` must pass.

    .venv/bin/python .ci/install_check.py        # (.ci/run calls it after `make test`)
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def step(title: str) -> None:
    print(f"--- {title}", flush=True)


def run(*argv: str, cwd: Path, env: dict[str, str], expect: int = 0, timeout: float = 900) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode} (expected {expect}):\n"
                         f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 90) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the process serving {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="ownbench-install-"))
    assert ROOT not in tmp.parents
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OWNBENCH_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(OWNBENCH_HOME=str(tmp / "home"), OWNBENCH_DEMO_NO_BROWSER="1", COLUMNS="200")
    procs: list[subprocess.Popen] = []
    try:
        step("build sdist and wheel (python -m build)")
        run(sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(ROOT), cwd=tmp, env=env)
        (wheel,) = glob.glob(str(tmp / "dist" / "ownbench-*.whl"))
        assert glob.glob(str(tmp / "dist" / "ownbench-*.tar.gz")), "no sdist"

        step("install the wheel into a fresh venv")
        run(sys.executable, "-m", "venv", str(tmp / "venv"), cwd=tmp, env=env)
        py, ownbench = str(tmp / "venv" / "bin" / "python"), str(tmp / "venv" / "bin" / "ownbench")
        run(py, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel, cwd=tmp, env=env)

        proj = tmp / "project"
        proj.mkdir()
        step("ownbench init (an empty folder)")
        print(run(ownbench, "init", cwd=proj, env=env))
        step("ownbench demo --no-app")
        out = run(ownbench, "demo", "--no-app", cwd=proj, env=env)
        assert "rubric helpfulness" in out, out
        step("ownbench rubrics validate")
        print(run(ownbench, "rubrics", "validate", *sorted(glob.glob(str(proj / "rubrics" / "*.yaml"))),
                  cwd=proj, env=env))

        step("ownbench judge --rubric helpfulness (by name) against the loopback server")
        port = free_port()
        loop = subprocess.Popen([sys.executable, str(ROOT / "tests" / "loopback.py"), "--port", str(port),
                                 "--verdicts"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        procs.append(loop)
        wait_for(f"http://127.0.0.1:{port}/v1/models", loop)
        out = run(ownbench, "judge", "--set", "arena-hard", "--rubric", "helpfulness", "--judge", "openai/sim-judge",
                  "--api-base", f"http://127.0.0.1:{port}/v1", "--limit", "20", cwd=proj, env=env)
        assert f"{proj / 'rubrics' / 'helpfulness.yaml'} (project)" in out, out
        assert "100 scored · 0 unscored" in out, out
        step("ownbench agreement / rank")
        print(run(ownbench, "agreement", "--set", "arena-hard", "--rubric", "helpfulness", cwd=proj, env=env))
        print(run(ownbench, "rank", "--set", "arena-hard", "--rubric", "helpfulness", cwd=proj, env=env))

        step("ownbench reports verify: unchanged, then a judgment's score changed in the database")
        run(ownbench, "rank", "--set", "arena-hard", "--rubric", "helpfulness", "--output", "rank.md",
            cwd=proj, env=env)
        print(run(ownbench, "reports", "verify", "rank.md", cwd=proj, env=env))
        with sqlite3.connect(tmp / "home" / "ownbench.db") as db:
            (jid,) = db.execute("SELECT min(id) FROM judgment WHERE status = 'scored'").fetchone()
            db.execute("UPDATE judgment SET score = score + 1 WHERE id = ?", (jid,))
        out = run(ownbench, "reports", "verify", "rank.md", cwd=proj, env=env, expect=1)
        assert "CHANGED judgments" in out and f"ids {jid}" in out, out
        print(out)

        step("ownbench app: /_stcore/health")
        app_port = free_port()
        app_log = tmp / "app.log"
        app = subprocess.Popen([ownbench, "app", "--port", str(app_port)], cwd=proj, env=env,
                               stdout=app_log.open("w"), stderr=subprocess.STDOUT)
        procs.append(app)
        health = wait_for(f"http://localhost:{app_port}/_stcore/health", app)
        assert health.strip() == "ok", health
        page = wait_for(f"http://localhost:{app_port}/", app)
        assert "<html" in page.lower()
        stop(app)  # `ownbench app` stops the server it started
        assert f"project: {proj}" in app_log.read_text()
        assert f"--server.port {app_port}" not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                                                  text=True).stdout, "the app server outlived it"

        step("a missing extra is one line")
        pg_env = {**env, "OWNBENCH_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"}
        for argv in ([ownbench, "sets", "list"], [py, "-m", "judging.local_model", "serve", "--port", str(free_port())]):
            proc = subprocess.run(argv, cwd=proj, env=pg_env, capture_output=True, text=True, timeout=120)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 2 and len(lines) == 1 and "pip install 'ownbench[" in lines[0], proc.stderr
            print(lines[0])

        step("the postgres extra resolves: pip check")
        run(py, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[postgres]", cwd=tmp, env=env)
        print(run(py, "-m", "pip", "check", cwd=tmp, env=env))
        print(run(ownbench, "info", cwd=proj, env=pg_env))
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"install check passed in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
