"""Warm start of the console script (nnspec._heap): imports with the collector paused."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnspec.cli.main import COMMANDS

# Runs in a fresh interpreter: freezing the heap of the test session itself would be a side effect
# on every later test.
_PRELOAD = """
import gc, json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
from nnspec._heap import preload
passes = []
gc.callbacks.append(lambda phase, info: passes.append(info["generation"]) if phase == "stop" else 0)
preload(["json", "nnspec_no_such_module", "asyncio"], what="test.preload")
print(json.dumps({"frozen": gc.get_freeze_count(), "enabled": gc.isenabled(),
                  "collections": len(passes), "asyncio": "asyncio" in sys.modules}))
"""


def test_preload_imports_with_the_collector_paused_then_freezes() -> None:
    out = subprocess.run([sys.executable, "-c", _PRELOAD], capture_output=True, text=True,
                         check=True).stdout.splitlines()  # fmt: skip
    # the module that does not exist is named with the setting, and the next one still loads
    assert out[0].startswith("test.preload: cannot import nnspec_no_such_module")
    state = json.loads(out[-1])
    assert state["asyncio"] is True
    # not one collection during the imports (asyncio alone allocates enough for several young ones)
    assert state["collections"] == 0
    assert state["enabled"] is True  # the collector's state is given back
    assert state["frozen"] > 1000  # every object alive went to the permanent generation


def test_preload_leaves_a_disabled_collector_disabled() -> None:
    code = "import gc; gc.disable(); from nnspec._heap import preload; preload(['json']); " \
           "print(gc.isenabled(), gc.get_freeze_count() > 0)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("name", sorted({m for c in COMMANDS.values() for m in c.preload}))
def test_every_preloaded_module_exists(name: str) -> None:
    # a misspelt name would only log a warning at each run and silently lose the warm start
    assert importlib.util.find_spec(name) is not None


_TRAIN = """
import gc, sys
from nnspec.cli import main as cli
after = []
def preload_then_count(modules, what):
    cli_preload(modules, what=what)
    gc.callbacks.append(lambda phase, info: after.append(info["generation"])
                        if phase == "stop" and info["generation"] == 2 else 0)
import nnspec._heap as heap
cli_preload, heap.preload = heap.preload, preload_then_count
sys.argv = ["nnspec", "train", "experiment=breast_cancer_mlp", "train.epochs=2",
            "hydra.run.dir=run"]
try:
    cli.entry()
except SystemExit as e:
    print("exit", e.code, "full_collections_after_preload", len(after))
"""


@pytest.mark.slow
def test_a_training_run_needs_no_full_collection_after_the_preload(tmp_path: Path) -> None:
    # The train command's preload list covers what a run imports: had a heavy module been left
    # out, its import would grow the heap past the collector's threshold and trigger full passes
    # over everything (0.1-0.2 s each with torch loaded).
    out = subprocess.run([sys.executable, "-c", _TRAIN], capture_output=True, text=True,
                         cwd=tmp_path, check=True)  # fmt: skip
    assert (tmp_path / "run" / "summary.json").is_file()
    assert out.stdout.split()[-4:] == ["exit", "0", "full_collections_after_preload", "0"]
