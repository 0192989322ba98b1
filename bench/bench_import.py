"""Import time of nnspec against torch, in fresh interpreters, side by side (run by hand).

    .venv/bin/python bench/bench_import.py [--repeat 9]

Rows: ``import torch`` (the baseline), a control (below), ``import nnspec``, every spec schema and
``import nnspec`` + ``nnspec.build_model`` (torch, the model-level spec schemas and the compiler:
all a program needs to build a model). Goal: ``import nnspec`` within 1.15x of ``import
torch``, judged on the last row: nnspec loads torch, pydantic and its schemas on first use, so the
``import nnspec`` row alone says little. Each statement runs in its own fresh subprocess,
alternating so machine noise hits every row alike; reported are medians of the whole process
(start-up and shutdown included) and of the statement alone (timed inside the process).
Byte-code caching is switched on for the children (``PYTHONDONTWRITEBYTECODE`` removed), as on a
user's machine; the warm-up round writes the editable checkout's ``__pycache__``.

Two installs are measured: nnspec as users get it (a wheel built from this checkout, installed
into a temporary venv that sees this interpreter's packages for torch and the rest) and this
editable checkout. An editable install routes every ``nnspec`` import through setuptools' import
hook (``__editable___nnspec_*_finder``), a cost an installed package does not pay.

The control row imports the pydantic modules nnspec's schemas use (``main``, ``types``,
``type_adapter``) after torch. torch leaves so many objects behind that the next few thousand any
program keeps trigger one more full garbage collection over all of them, so every pydantic-based
library imported after torch pays that pass; the difference between the last row and the control
is what nnspec's own code costs. Where the time goes, with figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
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
    # control: the pydantic modules nnspec's schemas use, after torch (see the docstring)
    "import torch; import pydantic": "import torch; import pydantic.main, pydantic.types, "
    "pydantic.type_adapter",
    "import nnspec": "import nnspec",
    "all spec schemas": "from nnspec.spec import ExperimentSpec",
    "import nnspec; nnspec.build_model": "import nnspec; nnspec.build_model",
}
STATEMENTS_CONTROL = "import torch; import pydantic"
STATEMENTS_FULL = "import nnspec; nnspec.build_model"


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(python: str, statement: str, cwd: str) -> tuple[float, float]:
    """(whole process, the statement alone) in seconds: the first includes interpreter start-up
    and shutdown, the second is what ``-X importtime`` would sum (timed inside the child)."""
    timed = f"import time; _t = time.perf_counter(); {statement}; print(time.perf_counter() - _t)"
    start = time.perf_counter()
    out = subprocess.run([python, "-c", timed], check=True, cwd=cwd, env=_ENV, capture_output=True,
                         text=True)  # fmt: skip
    return time.perf_counter() - start, float(out.stdout.split()[-1])


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
        times: dict[tuple[str, str], list[tuple[float, float]]] = {
            (p, n): [] for p in pythons for n in STATEMENTS
        }
        for _ in range(args.repeat):
            for p, python in pythons.items():
                for name, stmt in STATEMENTS.items():
                    times[p, name].append(_time(python, stmt, tmp))
    for p in pythons:
        print(f"\n{p}\n{'statement':<38} {'process s':>9} {'x torch':>8} {'in-process s':>12} "
              f"{'x torch':>8}")  # fmt: skip
        med = {
            n: [statistics.median(t[i] for t in times[p, n]) for i in (0, 1)] for n in STATEMENTS
        }
        base = med["import torch"]
        for name, m in med.items():
            print(
                f"{name:<38} {m[0]:9.3f} {m[0] / base[0]:8.2f} {m[1]:12.3f} {m[1] / base[1]:8.2f}"
            )
        own = [a - b for a, b in zip(med[STATEMENTS_FULL], med[STATEMENTS_CONTROL], strict=True)]
        print(f"{'nnspec own code (last row - control)':<38} {own[0]:9.3f} {own[0] / base[0]:8.2f} "
              f"{own[1]:12.3f} {own[1] / base[1]:8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
