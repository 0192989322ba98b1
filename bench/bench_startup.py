"""Console-script commands with and without the warm start, side by side (run by hand).

    .venv/bin/python bench/bench_startup.py [--repeat 7] [--only train]

Three variants of each command, each in a fresh process, alternating so machine noise hits them
alike: ``warm`` is the installed ``nnspec`` console script (the warm start of nnspec._heap, then
``gc.freeze`` before exit); ``exit-freeze`` the same with ``NNSPEC_WARM_START=0`` (only the freeze
before exit); ``plain`` calls ``nnspec.cli.main.main`` with no collector tuning at all. Reported:
the median wall time and the median CPU time (user + system, less sensitive to other processes on
the machine) of each, and the gains of the warm start and of the exit freeze. Byte-code caching is
on, as on a user's machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NNSPEC = str(Path(sys.executable).with_name("nnspec"))
PLAIN = "import sys; from nnspec.cli.main import main; sys.exit(main(sys.argv[1:]))"
COMMANDS = {
    "train": ["train", "train.epochs=1", "hydra.run.dir=run"],
    "plan": ["plan", "--out=lr.png"],
    "validate": ["validate"],
}
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
VARIANTS = {
    "warm": ([NNSPEC], _ENV),
    "exit-freeze": ([NNSPEC], {**_ENV, "NNSPEC_WARM_START": "0"}),
    "plain": ([sys.executable, "-c", PLAIN], {**_ENV, "NNSPEC_WARM_START": "0"}),
}
# (what, variant without it, variant with it)
GAINS = (("warm start", "exit-freeze", "warm"), ("exit freeze", "plain", "exit-freeze"))


def _time(variant: str, args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of one run in a fresh process."""
    cmd, env = VARIANTS[variant]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*cmd, *args], check=True, cwd=cwd, env=env, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shutil.rmtree(cwd / "run", ignore_errors=True)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", choices=list(COMMANDS), action="append")
    args = parser.parse_args()
    names = args.only or list(COMMANDS)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for name in names:
            _time("warm", COMMANDS[name], cwd)  # warm the OS file cache and the byte-code cache
            for _ in range(args.repeat):
                for variant in VARIANTS:
                    times.setdefault((name, variant), []).append(
                        _time(variant, COMMANDS[name], cwd)
                    )
    print(f"{'command':<10} {'variant':<12} {'wall s':>8} {'cpu s':>8}")
    for name in names:
        med = {}
        for variant in VARIANTS:
            runs = times[name, variant]
            med[variant] = (statistics.median(w for w, _ in runs),
                            statistics.median(c for _, c in runs))  # fmt: skip
            print(f"{name:<10} {variant:<12} {med[variant][0]:8.3f} {med[variant][1]:8.3f}")
        for label, a, b in GAINS:
            print(
                f"{name:<10} gain of the {label}: wall {med[a][0] - med[b][0]:+.3f} s, "
                f"cpu {med[a][1] - med[b][1]:+.3f} s"
            )


if __name__ == "__main__":
    main()
