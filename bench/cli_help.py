"""Wall time of `ownbench --help` (target < 0.5 s): the CLI must not import litellm, streamlit or
scikit-learn at start-up. Runs the installed console script a few times and prints the median and the best.

    .venv/bin/python bench/cli_help.py [--runs 7]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

OWNBENCH = Path(sys.executable).with_name("ownbench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    times = []
    for _ in range(args.runs + 1):
        t0 = time.perf_counter()
        subprocess.run([str(OWNBENCH), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    times = times[1:]  # the first run warms the file cache
    probe = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom ownbench.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
         "print('heavy:', sorted(m for m in ('litellm', 'streamlit', 'sklearn', 'sqlmodel', 'pyarrow') if m in sys.modules))"],
        capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    med = statistics.median(times)
    print(f"ownbench --help: median {med * 1000:.0f} ms, best {min(times) * 1000:.0f} ms over {args.runs} runs; "
          f"{probe}; target < 500 ms {'met' if med < 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
