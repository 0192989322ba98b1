"""``nnspec validate`` with nnspec's top-level functions imported lazily (as shipped) or eagerly.

    .venv/bin/python bench/bench_lazy_exports.py [--repeat 7]

``import nnspec`` imports the functions that need torch, Hydra or matplotlib on first use
(``nnspec._HEAVY``). The eager row resolves every one of them right after ``import nnspec``, as an
``__init__`` importing them up front would; both rows then run the console script's entry point
on ``examples/iris_mlp.yaml`` in a fresh process, alternating so machine noise hits both alike.
Reported: the median wall time of each row and the difference (what the lazy table saves).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = (
    "import sys; sys.argv = ['nnspec', 'validate', 'examples/iris_mlp.yaml']; "
    "from nnspec.cli.main import entry; entry()"
)
EAGER = "import nnspec; [getattr(nnspec, name) for name in nnspec._HEAVY]; "
ROWS = {"lazy (as shipped)": VALIDATE, "eager": EAGER + VALIDATE}
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    for i in range(args.repeat + 1):  # round 0 warms the byte-code cache and is not counted
        for name, code in ROWS.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_ENV, check=True,
                           capture_output=True)  # fmt: skip
            if i:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name:18s} median {median:.3f} s  (n={args.repeat})")
    print(f"lazy saves {medians['eager'] - medians['lazy (as shipped)']:.3f} s per command")


if __name__ == "__main__":
    main()
