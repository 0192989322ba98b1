"""The typing inputs are real user code: usage.py must also run, not only type-check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_usage_py_runs_as_written() -> None:
    # a subprocess: usage.py registers a layer kind, which would leak into this process's registry
    done = subprocess.run(
        [sys.executable, "tests/typing/usage.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
