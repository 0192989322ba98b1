"""The reliability suite's counters and its summary line.

Every test of this folder adds to ``COUNTS`` through ``count`` (``reliability_counts.py``: a
module name no other test folder has, unlike ``conftest``); each pytest process (xdist workers
too) writes its counts to a folder the first process made, and the process that
prints the terminal summary adds them up into one line::

    reliability: cases tried 812, foreign exceptions 0, exit-1 answers 0, payloads refused 46/46,
    kills survived 12/12 (bitwise), corruptions detected 61/61, disk faults 4/4, sweep faults 2/2

``pytest tests/reliability --hypothesis-profile=long`` runs the fuzz tests with 10,000 cases in
all (documented in SECURITY.md); the default profile keeps the suite within CI's time.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from reliability_counts import COUNTS

settings.register_profile(
    "long",
    max_examples=2_500,  # test_fuzz.py turns this into 10,000 cases in all
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_ENV = "NNSPEC_RELIABILITY_COUNTS"
# (key, label, the key that counts the attempts or None); printed in this order
_LINE = (
    ("cases", "cases tried", None),
    ("foreign", "foreign exceptions", None),
    ("exit1", "exit-1 answers", None),
    ("payloads_refused", "payloads refused", "payloads"),
    ("kills_bitwise", "kills survived (bitwise)", "kills"),
    ("corruptions_detected", "corruptions detected", "corruptions"),
    ("disk_faults_ok", "disk faults handled", "disk_faults"),
    ("sweep_faults_ok", "sweep faults handled", "sweep_faults"),
)


def pytest_configure(config: pytest.Config) -> None:
    if _ENV not in os.environ:  # the first process: workers inherit the folder
        os.environ[_ENV] = tempfile.mkdtemp(prefix="nnspec-reliability-")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if COUNTS:
        name = os.environ.get("PYTEST_XDIST_WORKER", "main")
        (Path(os.environ[_ENV]) / f"{name}.json").write_text(json.dumps(dict(COUNTS)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    total: Counter[str] = Counter()
    folder = Path(os.environ.get(_ENV, "/nonexistent"))
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        total.update(json.loads(file.read_text()))
    if not total:
        return
    parts = []
    for key, label, of in _LINE:
        if of is None:
            parts.append(f"{label} {total[key]}")
        elif total[of]:
            parts.append(f"{label} {total[key]}/{total[of]}")
    terminalreporter.write_line("reliability: " + ", ".join(parts))
