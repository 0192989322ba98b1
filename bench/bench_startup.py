"""Console-script commands with and without the warm start, side by side (run by hand).

    .venv/bin/python bench/bench_startup.py [--repeat 7]

The warm start (nnspec._heap) imports a command's heavy modules with the collector's full passes
held off and freezes the heap; ``NNSPEC_WARM_START=0`` turns it off. Each command runs as the
installed ``nnspec`` console script in a fresh process, the two variants alternating so machine
noise hits both alike; reported: median wall time of each and their ratio (< 1: the warm start is
faster). Byte-code caching is on, as on a user's machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NNSPEC = str(Path(sys.executable).with_name("nnspec"))
COMMANDS = {
    "train (digits CNN, 1 epoch)": ["train", "train.epochs=1", "hydra.run.dir=run"],
    "plan (digits CNN)": ["plan", "--out=lr.png"],
    "validate (digits CNN)": ["validate"],
}
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(args: list[str], warm: bool, cwd: Path) -> float:
    env = _ENV if warm else {**_ENV, "NNSPEC_WARM_START": "0"}
    start = time.perf_counter()
    subprocess.run([NNSPEC, *args], check=True, cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(cwd / "run", ignore_errors=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        times: dict[tuple[str, bool], list[float]] = {}
        for name, argv in COMMANDS.items():
            _time(argv, True, cwd)  # warm the OS file cache and the byte-code cache
            for _ in range(args.repeat):
                for warm in (False, True):
                    times.setdefault((name, warm), []).append(_time(argv, warm, cwd))
    print(f"{'command':<30} {'cold s':>8} {'warm s':>8} {'warm/cold':>10}")
    for name in COMMANDS:
        cold = statistics.median(times[name, False])
        warm_ = statistics.median(times[name, True])
        print(f"{name:<30} {cold:8.3f} {warm_:8.3f} {warm_ / cold:10.2f}")


if __name__ == "__main__":
    main()
