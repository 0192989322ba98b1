"""Import time of nnspec against torch, in fresh interpreters, side by side (run by hand).

    .venv/bin/python bench/bench_import.py [--repeat 9]

Rows: ``import torch`` (the baseline), ``import nnspec`` (lazy: no torch), every spec schema
and ``import nnspec`` + ``nnspec.build_model`` (pulls in torch, the spec schemas and the
compiler). Goal (issue 2): the last one within 1.15x of ``import torch``. Each statement runs in its
own fresh subprocess (start-up and shutdown included), alternating so machine noise hits every row
alike; the median is reported.

Two installs are measured: nnspec as users get it (a wheel built from this checkout, installed
into a temporary venv that sees this interpreter's packages for torch and the rest) and this
editable checkout. An editable install routes every ``nnspec`` import through setuptools' import
hook (``__editable___nnspec_*_finder``), about 30 ms that an installed package does not pay.

Where the rest goes (2026-12-04, installed wheel): pydantic and its dependencies ~70 ms, nnspec's
model-level schema classes ~60 ms and compiler modules ~15 ms; and the garbage collector: ``import
torch`` alone runs 2 full collections (~0.06 s), with nnspec's objects added it runs 3 (~0.15 s),
in either import order. That third pass is a threshold effect of CPython's collector, not a cost
of nnspec's code: after ``import torch`` the next ~10,000 container objects any program creates
trigger it (2 passes with 9,000 new lists, 3 with 13,000). The control row shows it: ``import
torch`` followed by 13,000 new lists. Figures vary by +-0.04x between runs of this script.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATEMENTS = {
    "import torch": "import torch",
    # control: torch plus as many new container objects as nnspec's schemas create (~13,000)
    "import torch + 13k objects": "import torch; keep = [[i] for i in range(13_000)]",
    "import nnspec": "import nnspec",
    "all spec schemas": "from nnspec.spec import ExperimentSpec",
    "import nnspec; nnspec.build_model": "import nnspec; nnspec.build_model",
}


def _time(python: str, statement: str, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", statement], check=True, cwd=cwd)
    return time.perf_counter() - start


def installed_python(tmp: Path) -> str:
    """A venv with nnspec installed from a wheel of this checkout (no downloads)."""
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = tmp / "venv"
    venv.create(env, with_pip=True)
    python = str(env / "bin" / "python")
    # this interpreter's site-packages as a plain path (its .pth files, such as the editable
    # nnspec hook, are not run): torch, pydantic ... come from there, nnspec from the wheel
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "outer_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = wheels.glob("nnspec-*.whl")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True,
                   capture_output=True)  # fmt: skip
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pythons = {"installed wheel": installed_python(Path(tmp)), "editable": sys.executable}
        for python in pythons.values():  # warm the OS file cache for every module involved
            for stmt in ("pass", *STATEMENTS.values()):
                _time(python, stmt, tmp)
        times = {(p, n): [] for p in pythons for n in STATEMENTS}  # type: dict[tuple[str, str], list[float]]
        for _ in range(args.repeat):
            for p, python in pythons.items():
                for name, stmt in STATEMENTS.items():
                    times[p, name].append(_time(python, stmt, tmp))
    for p in pythons:
        base = statistics.median(times[p, "import torch"])
        print(f"\n{p}\n{'statement':<38} {'median s':>9} {'x torch':>8}")
        for name in STATEMENTS:
            med = statistics.median(times[p, name])
            print(f"{name:<38} {med:9.3f} {med / base:8.2f}")


if __name__ == "__main__":
    main()
