"""SIGKILL at random points, during each kind of write, then resume: bitwise the uninterrupted run.

A child process trains a tiny spec and kills itself (no clean-up of any kind, as the OOM killer
or a power cut) at the n-th call of ``os.fsync`` (a temp file written, not yet renamed), before
or after the n-th ``os.replace`` (a rename: checkpoints, the manifest, metrics, model.pt,
summary.json, ...), or after n optimizer steps; and at the rename of each kind of file the
seeded random points may miss. The test process then resumes the run and
compares model.pt, the summary and every metric row with an uninterrupted run of the same spec.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from reliability_counts import count
from run.runhelp import tiny

import nnspec

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SECTIONS: dict[str, Any] = {"train": {"epochs": 4, "checkpoint": {"keep_last": 1}}}

CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from run.runhelp import tiny, KillAt
from pathlib import Path
import nnspec
mode, n = {mode!r}, {n}
calls = [0]
def trap(real, after=False):
    def wrapper(*a, **k):
        calls[0] += 1
        if calls[0] == n and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        out = real(*a, **k)
        if calls[0] == n and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return wrapper
def named(real, name, after=False):  # the first rename onto a file called `name`
    def wrapper(src, dst, *a, **k):
        hit = os.path.basename(os.fspath(dst)) == name
        if hit and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        out = real(src, dst, *a, **k)
        if hit and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return wrapper
if mode.startswith(("replace-of:", "after-replace-of:")):
    os.replace = named(os.replace, mode.split(":", 1)[1], after=mode.startswith("after"))
elif mode == "fsync":
    os.fsync = trap(os.fsync)
elif mode == "replace":
    os.replace = trap(os.replace)
elif mode == "after-replace":
    os.replace = trap(os.replace, after=True)
callbacks = [KillAt(n)] if mode == "step" else []
nnspec.train(tiny(Path({tmp!r}), **{sections!r}), callbacks=callbacks)
"""


def run_dir_of(tmp: Path) -> Path:
    (run,) = (tmp / "runs" / "tiny").iterdir()
    return run


def outcome(run: Path) -> dict[str, Any]:
    """What must be bitwise equal: the weights, the summary's results, every metric row."""
    model = torch.load(run / "model.pt", weights_only=True)["model"]
    summary = json.loads((run / "summary.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("time")
    keep = ("test_metrics", "val_metrics", "best_epoch", "best_value", "epochs_run", "steps")
    return {"model": model, "summary": {k: summary[k] for k in keep}, "rows": rows}


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    weights = a["model"].keys() == b["model"].keys() and all(
        torch.equal(a["model"][k], b["model"][k]) for k in a["model"]
    )
    return weights and a["summary"] == b["summary"] and a["rows"] == b["rows"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, int]]:
    """The uninterrupted run, and how many fsync/replace calls and steps it makes."""
    tmp = tmp_path_factory.mktemp("reference")
    calls = {"fsync": 0, "replace": 0}
    real = {"fsync": os.fsync, "replace": os.replace}

    def counting(name: str) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            calls[name] += 1
            return real[name](*a, **k)

        return wrapper

    os.fsync, os.replace = counting("fsync"), counting("replace")
    try:
        result = nnspec.train(tiny(tmp, **SECTIONS))
    finally:
        os.fsync, os.replace = real["fsync"], real["replace"]
    steps = json.loads((result.run_dir / "summary.json").read_text())["steps"]
    return outcome(result.run_dir), {**calls, "step": steps, "after-replace": calls["replace"]}


def kill_points() -> list[tuple[str, float]]:
    """10 kill points at seeded random fractions of the run: three inside a write (fsync), three
    before a rename, two after one, two between optimizer steps."""
    rng = random.Random(19)
    plan = {"fsync": 3, "replace": 3, "after-replace": 2, "step": 2}
    return [(mode, rng.random()) for mode, n in plan.items() for _ in range(n)]


# one kill at the rename of each kind of file the random points may miss: an epoch checkpoint,
# model.pt, preprocess.json (before the rename), and after summary.json's (the run's last file)
TARGETED = [
    "replace-of:epoch-0002.pt",
    "replace-of:model.pt",
    "replace-of:preprocess.json",
    "after-replace-of:summary.json",
]


@pytest.mark.parametrize(
    ("mode", "at"), [*kill_points(), *((m, 0.0) for m in TARGETED)], ids=lambda v: str(v)[:22]
)
def test_kill_then_resume_is_bitwise_the_uninterrupted_run(
    reference: tuple[dict[str, Any], dict[str, int]], tmp_path: Path, mode: str, at: float
) -> None:
    expected, calls = reference
    n = max(1, int(at * calls[mode])) if mode in calls else 1
    code = CHILD.format(
        tests=str(ROOT / "tests"), mode=mode, n=n, tmp=str(tmp_path), sections=SECTIONS
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300)
    count("kills")
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    run = run_dir_of(tmp_path)
    spec = tiny(tmp_path, **SECTIONS)
    resumed = spec.model_copy(update={"train": spec.train.model_copy(update={"resume": str(run)})})
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # a checkpoint the kill left behind is skipped, with a warning
        nnspec.train(resumed)
    assert same(outcome(run), expected), f"{mode} #{n}: the resumed run differs"
    count("kills_bitwise")
