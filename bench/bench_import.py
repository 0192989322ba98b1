"""Import time of nnspec against torch, in fresh interpreters, side by side (run by hand).

    .venv/bin/python bench/bench_import.py [--repeat 7]

Rows: ``import torch`` (the baseline), ``import nnspec`` (lazy: no torch), ``import nnspec.spec``
and ``import nnspec`` + ``nnspec.build_model`` (pulls in torch and the compiler). Goal: the last
one within 1.15x of ``import torch``. Each statement runs in its own fresh subprocess, alternating
so machine noise hits every row alike; the median is reported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

STATEMENTS = {
    "import torch": "import torch",
    "import nnspec": "import nnspec",
    "import nnspec.spec": "import nnspec.spec",
    "import nnspec; nnspec.build_model": "import nnspec; nnspec.build_model",
}


def _time(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    _time("pass")  # warm the OS file cache for the interpreter itself
    for stmt in STATEMENTS.values():
        _time(stmt)  # and for every module involved
    times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for _ in range(args.repeat):
        for name, stmt in STATEMENTS.items():
            times[name].append(_time(stmt))
    base = statistics.median(times["import torch"])
    print(f"{'statement':<38} {'median s':>9} {'x torch':>8}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<38} {med:9.3f} {med / base:8.2f}")


if __name__ == "__main__":
    main()
