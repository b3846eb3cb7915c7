"""Gateway throughput: N calls to an OpenAI-compatible server with a fixed latency, at several concurrencies.

    .venv/bin/python bench/gateway.py                      # 1,000 calls, 100 ms, concurrency 10, 50, 100, 200
    .venv/bin/python bench/gateway.py --calls 300 --concurrency 50
    .venv/bin/python bench/gateway.py --clients "ownbench via litellm" litellm.acompletion --concurrency 50 200 --repeat 3

The loopback server (tests/loopback.py) runs in its own process, so its CPU is not counted as the client's.
Each client × concurrency runs in a fresh process after a short warm-up; the figures are wall time, calls/s,
the ratio to the ideal (calls × latency / concurrency, i.e. the network-bound time) and the client's CPU ms
per call (process CPU time over the timed window / calls). Clients:

- ownbench direct: `Gateway.complete` on `openai/<name>` + api_base (the direct aiohttp path), no database;
- ownbench direct + cache: the same with the SQLite cache (one lookup and one insert per call);
- ownbench run: a whole candidate run over a frozen version of N items (`gateway.runs.run_candidate`: one
  cache lookup for the batch, every output committed to SQLite as it arrives, the cache written per answer);
- ownbench via litellm: `Gateway(direct=False)`, the path every non-OpenAI-compatible provider takes;
- litellm.acompletion and openai.AsyncOpenAI: the plain libraries, limited by an asyncio.Semaphore;
- litellm.acompletion + gc.freeze (not run unless named): the plain library after the `gc.freeze()` the gateway
  makes once LiteLLM is imported (see `gateway.transport.freeze_imported_objects`), to tell that saving apart
  from the rest of the path.

After each concurrency, and again at the end, the LiteLLM-path ratios are printed: "ownbench via litellm" over
plain `litellm.acompletion`, as the median wall time of the repeats (1.00 = the same speed; the target is at
most 1.10) and as the median CPU ms per call. `--repeat N` runs every client N times, alternating. Both clients
are CPU-bound at c=50 and above on a small machine, so on a shared machine the wall time moves with the load
(the `load` column is the 1-minute load average after each run); the CPU ratio moves much less.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ["ownbench direct", "ownbench direct + cache", "ownbench run", "ownbench via litellm",
           "litellm.acompletion", "openai.AsyncOpenAI"]
FROZEN = "litellm.acompletion + gc.freeze"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def messages(i: int) -> list[dict]:
    return [{"role": "user", "content": f"benchmark prompt number {i}: say something short"}]


def run_whole(url: str, calls: int, concurrency: int, warmup: int) -> dict:
    """A candidate run as `ownbench run` makes it, timed from start to the last committed output."""
    from evalsets.freeze import ItemDraft, freeze
    from gateway.candidates import CandidateSpec
    from gateway.client import Gateway
    from gateway.runs import run_candidate
    from storage.db import make_engine, session_scope

    engine = make_engine(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    spec = CandidateSpec(name="bench", model="openai/bench-model", api_base=url, concurrency=concurrency,
                         max_attempts=1, input_price_per_mtok=1.0, output_price_per_mtok=2.0)
    ids = []
    for name, n in (("warmup", warmup), ("bench", calls)):
        drafts = [ItemDraft(f"{name}-{i}", messages(i if name == "bench" else -1 - i)) for i in range(n)]
        with session_scope(engine) as s:
            ids.append(freeze(s, name, drafts).id)
    gw = Gateway(engine)
    run_candidate(engine, spec, ids[0], gateway=gw)
    cpu0, t0 = time.process_time(), time.perf_counter()
    summary = run_candidate(engine, spec, ids[1], gateway=gw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "ok": summary.progress.outputs}


async def run_client(client: str, url: str, calls: int, concurrency: int, warmup: int) -> dict:
    if client.startswith("ownbench"):
        from gateway.client import Gateway, ModelConfig

        engine = None
        if client.endswith("cache"):
            from storage.db import make_engine

            engine = make_engine(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
        gw = Gateway(engine, direct=not client.endswith("litellm"))
        cfg = ModelConfig("openai/bench-model", api_base=url, max_concurrency=concurrency, max_attempts=1,
                          input_price_per_mtok=1.0, output_price_per_mtok=2.0)

        async def one(i: int) -> bool:
            r = await gw.complete(cfg, messages(i))
            return r.error is None
    elif client.startswith("litellm.acompletion"):
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        if client == FROZEN:
            import gc

            gc.collect()
            gc.freeze()
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> bool:
            async with sem:
                try:
                    await litellm.acompletion(model="openai/bench-model", messages=messages(i), api_base=url,
                                              api_key="unused", max_retries=0)
                    return True
                except Exception:  # noqa: BLE001 - counted as a failure
                    return False
    else:
        import openai

        oc = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> bool:
            async with sem:
                try:
                    await oc.chat.completions.create(model="bench-model", messages=messages(i))  # type: ignore[arg-type]
                    return True
                except Exception:  # noqa: BLE001 - counted as a failure
                    return False

    await asyncio.gather(*(one(-1 - i) for i in range(warmup)))
    cpu0, t0 = time.process_time(), time.perf_counter()
    ok = await asyncio.gather(*(one(i) for i in range(calls)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "ok": sum(ok)}


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    if args.worker == "ownbench run":
        result = run_whole(args.url, args.calls, args.concurrency[0], args.warmup)
    else:
        result = asyncio.run(run_client(args.worker, args.url, args.calls, args.concurrency[0], args.warmup))
    print(json.dumps(result))


def litellm_ratio(conc: int, walls: dict[str, list[float]], cpus: dict[str, list[float]], plain: str) -> str | None:
    """The LiteLLM path against a plain LiteLLM client: medians of the repeats, wall time and CPU per call."""
    ours = "ownbench via litellm"
    if not (walls.get(ours) and walls.get(plain)):
        return None
    w_ours, w_plain = statistics.median(walls[ours]), statistics.median(walls[plain])
    c_ours, c_plain = statistics.median(cpus[ours]), statistics.median(cpus[plain])
    return (f"LiteLLM path / {plain}, concurrency {conc}: wall ratio {w_ours / w_plain:.2f} (median {w_ours:.2f} s "
            f"vs {w_plain:.2f} s), CPU ratio {c_ours / c_plain:.2f} (median {c_ours:.2f} vs {c_plain:.2f} ms/call); "
            f"{len(walls[ours])} and {len(walls[plain])} runs, load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--clients", nargs="+", default=CLIENTS, choices=CLIENTS + [FROZEN])
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1, help="Runs per client and concurrency (alternating).")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "loopback.py"), "--port", str(port),
                               "--latency", str(args.latency)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "loopback server on …": it is listening
        url = f"http://127.0.0.1:{port}/v1"
        print(f"{args.calls} calls, server latency {args.latency * 1000:.0f} ms, loopback server in pid {server.pid}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start\n")
        w = max(26, *(len(c) + 2 for c in args.clients))
        header = (f"{'client':<{w}}{'conc':>5}{'wall s':>9}{'calls/s':>9}{'ideal':>8}{'CPU ms/call':>13}{'ok':>7}"
                  f"{'load':>7}")
        print(header)
        print("-" * len(header))
        ratios: list[str] = []
        for conc in args.concurrency:
            ideal = args.calls * args.latency / conc
            walls: dict[str, list[float]] = {}
            cpus: dict[str, list[float]] = {}  # ms per call
            for rep in range(args.repeat):
                # alternate the order so that a change in the machine's load does not always favour one client
                for client in (args.clients if rep % 2 == 0 else args.clients[::-1]):
                    proc = subprocess.run(
                        [sys.executable, __file__, "--worker", client, "--url", url, "--calls", str(args.calls),
                         "--concurrency", str(conc), "--warmup", str(args.warmup)],
                        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                        check=False,
                    )
                    if proc.returncode != 0:
                        print(f"{client:<{w}}{conc:>5}  failed: {proc.stderr.strip().splitlines()[-1:]}")
                        continue
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    cpu_ms = r["cpu_s"] * 1000 / args.calls
                    walls.setdefault(client, []).append(r["wall_s"])
                    cpus.setdefault(client, []).append(cpu_ms)
                    print(f"{client:<{w}}{conc:>5}{r['wall_s']:>9.2f}{args.calls / r['wall_s']:>9.0f}"
                          f"{ideal / r['wall_s']:>8.2f}{cpu_ms:>13.2f}{r['ok']:>7}{os.getloadavg()[0]:>7.2f}",
                          flush=True)
            for plain in ("litellm.acompletion", FROZEN):
                line = litellm_ratio(conc, walls, cpus, plain)
                if line:
                    print(line)
                    ratios.append(line)
            print()
        if ratios:
            print("\n".join(ratios))
        print(f"load average {os.getloadavg()[0]:.2f} at the end ({os.cpu_count()} CPUs)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
