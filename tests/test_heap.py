"""Warm start of the console script (nnspec._heap): heavy imports, then a frozen heap.

Every check runs in a fresh interpreter: freezing the test session's own heap would be a side
effect on every later test. The collector's rules asserted here are CPython 3.11's (full passes
gated by the generation-2 threshold); an incremental collector (3.14) may need other counts.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnspec.cli.main import COMMANDS


def _python(code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=cwd, env=full_env).stdout  # fmt: skip


_WARM = """
import gc, json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
from nnspec import _heap
if OWN:
    _heap.own_process()
passes = []
gc.callbacks.append(lambda phase, info: passes.append(info["generation"]) if phase == "stop" else 0)
thresholds = gc.get_threshold()
_heap.warm(["json", "nnspec_no_such_module", "asyncio"], what="test.warm")
import asyncio
frozen = gc.get_freeze_count()
keep = [[i] for i in range(5000)]  # objects made after the warm start stay collectable
_heap.warm(["json"], what="test.warm")
print(json.dumps({
    "full": passes.count(2), "young": passes.count(0), "restored": gc.get_threshold() == thresholds,
    "frozen": frozen, "frozen_again": gc.get_freeze_count() - frozen,
    "asyncio_frozen": not any(o is asyncio.__dict__ for o in gc.get_objects()),
}))
"""


def test_warm_start_of_an_owned_process_holds_full_passes_off_then_freezes() -> None:
    out = _python(_WARM.replace("OWN", "True")).splitlines()
    # the module that does not exist is named with the setting, and the next one still loads
    assert out[0].startswith("test.warm: cannot import nnspec_no_such_module (ModuleNotFoundError")
    state = json.loads(out[-1])
    assert state["full"] == 0  # asyncio's import alone would grow the heap past a full pass
    assert state["young"] > 0  # young collections went on (the imports' garbage is not frozen)
    assert state["restored"] is True
    assert state["asyncio_frozen"] is True  # the imported module's objects are permanent
    assert state["frozen_again"] == 0  # once per process: a later call freezes nothing new


@pytest.mark.parametrize("env", [{}, {"NNSPEC_WARM_START": "0"}])
def test_warm_start_outside_an_owned_process_only_imports(env: dict[str, str]) -> None:
    # not owned (a library caller), or owned with NNSPEC_WARM_START=0: the heap is the caller's
    own = "True" if env else "False"
    state = json.loads(_python(_WARM.replace("OWN", own), env=env).splitlines()[-1])
    assert state["frozen"] == 0 and state["asyncio_frozen"] is False


@pytest.mark.parametrize("name", sorted({m for c in COMMANDS.values() for m in c.preload}))
def test_every_preloaded_module_exists(name: str) -> None:
    # a misspelt name would only log a warning at each run and silently lose the warm start
    assert importlib.util.find_spec(name) is not None


def test_a_refused_override_is_reported_before_the_heavy_imports() -> None:
    code = (
        "import sys; from nnspec import _heap; from nnspec.cli.main import main; "
        "_heap.own_process(); code = main(['train', 'optim.lrr=1']); "
        "print(code, 'torch' in sys.modules)"
    )
    assert _python(code).split() == ["2", "False"]


_TRAIN = """
import gc, sys
from nnspec import _heap
from nnspec.cli.main import main
full_after = []
warmed = []
def counting_warm(modules, *, what):
    if OWN:  # else: no warm start at all, the run imports what it needs on its own
        real_warm(modules, what=what)
    warmed.append(gc.get_freeze_count())
real_warm, _heap.warm = _heap.warm, counting_warm
gc.callbacks.append(lambda phase, info: full_after.append(1)
                    if phase == "stop" and info["generation"] == 2 and warmed else 0)
if OWN:
    _heap.own_process()
code = main(["train", "experiment=breast_cancer_mlp", "train.epochs=2", "hydra.run.dir=run"])
print(code, len(warmed), warmed[0] > 0, len(full_after), " ".join(sorted(sys.modules)))
"""


@pytest.mark.slow
def test_a_training_run_needs_no_full_collection_after_the_warm_start(tmp_path: Path) -> None:
    # Had train's preload list left out a heavy module, its import would grow the heap past the
    # collector's threshold and trigger full passes over everything (0.1-0.2 s each with torch).
    out = _python(_TRAIN.replace("OWN", "True"), cwd=tmp_path).splitlines()[-1].split()
    assert (tmp_path / "run" / "summary.json").is_file()
    assert out[:4] == ["0", "1", "True", "0"]  # exit code, warm starts, heap frozen, full passes


@pytest.mark.slow
def test_train_preloads_only_what_a_run_imports_anyway(tmp_path: Path) -> None:
    # the same run without any warm start: every module on train's list is imported anyway
    out = _python(_TRAIN.replace("OWN", "False"), cwd=tmp_path).splitlines()[-1].split()
    assert out[:3] == ["0", "1", "False"]
    assert set(COMMANDS["train"].preload) <= set(out[4:])
