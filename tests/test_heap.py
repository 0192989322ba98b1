"""Warm start of the console script (nnspec._heap): heavy imports, then a frozen heap.

Every check runs in a fresh interpreter: freezing the test session's own heap would be a side
effect on every later test. The collector's rules asserted here are CPython 3.11's (full passes
gated by the generation-2 threshold); an incremental collector (3.14) may need other counts.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnspec.cli.common import PRELOAD

# The hold relies on a generational collector whose full passes wait for the third threshold
# (CPython 3.11-3.13); 3.14's incremental collector counts differently.
generational_gc = pytest.mark.skipif(
    sys.version_info >= (3, 14), reason="collection counts of CPython's generational collector"
)
ROOT = Path(__file__).resolve().parents[1]
# packages whose modules are heavy to import: a command's preload leaves (almost) none for later
HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "PIL", "pandas", "numpy")
BREAST_CANCER = str(ROOT / "examples" / "breast_cancer_mlp.yaml")


def _python(code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=cwd, env={**os.environ, **(env or {})}).stdout  # fmt: skip


# A module whose import keeps 200,000 new lists alive: without the hold, the collector runs full
# passes while it loads.
_BIG_MODULE = "DATA = [[i] for i in range(200_000)]\n"

_WARM = """
import gc, json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
from nnspec import _heap
if OWN:
    _heap.own_process()
passes, during = [], []
gc.callbacks.append(lambda phase, info: passes.append((info["generation"], bool(during)))
                    if phase == "stop" else 0)
thresholds = gc.get_threshold()
during.append(1)
_heap.warm(["json", "nnspec_no_such_module", "nnspec_big_module"], what="test.warm")
during.clear()
import nnspec_big_module
frozen = gc.get_freeze_count()
keep = [[i] for i in range(5000)]  # objects made after the warm start stay collectable
_heap.warm(["json"], what="test.warm")
print(json.dumps({
    "full": passes.count((2, True)), "young": passes.count((0, True)),
    "restored": gc.get_threshold() == thresholds, "frozen": frozen,
    "frozen_again": gc.get_freeze_count() - frozen,
    "module_frozen": not any(o is nnspec_big_module.DATA for o in gc.get_objects()),
}))
"""


def _warm_state(tmp_path: Path, *, own: bool, env: dict[str, str] | None = None) -> list[str]:
    (tmp_path / "nnspec_big_module.py").write_text(_BIG_MODULE)
    code = _WARM.replace("OWN", str(own))
    return _python(
        code, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), **(env or {})}
    ).splitlines()


@generational_gc
def test_warm_start_of_an_owned_process_holds_full_passes_off_then_freezes(tmp_path: Path) -> None:
    out = _warm_state(tmp_path, own=True)
    # the module that does not exist is named with the setting, and the next one still loads
    assert out[0].startswith("test.warm: cannot import nnspec_no_such_module (ModuleNotFoundError")
    state = json.loads(out[-1])
    assert state["full"] == 0  # held off while the big module loaded (the control below: > 0)
    assert state["young"] > 0  # young collections went on (the imports' garbage is not frozen)
    assert state["restored"] is True
    assert state["module_frozen"] is True  # the imported module's objects are permanent
    assert state["frozen_again"] == 0  # once per process: a later call freezes nothing new


@generational_gc
@pytest.mark.parametrize("env", [{}, {"NNSPEC_WARM_START": "0"}])
def test_warm_start_outside_an_owned_process_only_imports(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # not owned (a library caller), or owned with NNSPEC_WARM_START=0: the heap is the caller's
    state = json.loads(_warm_state(tmp_path, own=bool(env), env=env)[-1])
    assert state["full"] > 0  # the control: this import does trigger full passes
    assert state["frozen"] == 0 and state["module_frozen"] is False


def test_a_warm_start_reached_from_inside_another_freezes_nothing(tmp_path: Path) -> None:
    # an import inside warm() that calls warm() again: only the outer one holds and freezes
    (tmp_path / "nnspec_nested_module.py").write_text(
        "import gc\nfrom nnspec import _heap\n_heap.warm(['json'], what='inner')\n"
        "FROZEN = gc.get_freeze_count()\nTHRESHOLDS = gc.get_threshold()\n"
    )
    code = (
        "import gc; from nnspec import _heap; _heap.own_process(); before = gc.get_threshold(); "
        "_heap.warm(['nnspec_nested_module'], what='outer'); import nnspec_nested_module as m; "
        "print(m.FROZEN, m.THRESHOLDS == before, gc.get_threshold() == before, "
        "gc.get_freeze_count() > 0)"
    )
    # inside: nothing frozen yet and full passes still held; after: thresholds back, heap frozen
    assert _python(code, cwd=tmp_path).split() == ["0", "False", "True", "True"]


@pytest.mark.parametrize("name", sorted({m for stack in PRELOAD.values() for m in stack}))
def test_every_preloaded_module_exists(name: str) -> None:
    # a misspelt name would only log a warning at each run and silently lose the warm start
    assert importlib.util.find_spec(name) is not None


@pytest.mark.slow  # a fresh interpreter per command
@pytest.mark.parametrize("name", sorted(PRELOAD))
def test_every_preload_list_loads_torch(name: str) -> None:
    # `nnspec.run` and `nnspec.check` are lazy packages: a list naming only them loads nothing
    code = (
        "import sys; from nnspec._heap import warm; from nnspec.cli.common import PRELOAD; "
        f"warm(PRELOAD[{name!r}], what='test'); print('torch' in sys.modules)"
    )
    assert _python(code).split() == ["True"]


@pytest.mark.parametrize(
    "argv",
    [["train", "optim.lrr=1"], ["eval", "no/such/run"], ["lr-find", "--steps", "1"]],
    ids=["train-override", "eval-path", "lr-find-steps"],
)
def test_a_refused_invocation_is_reported_before_the_heavy_imports(argv: list[str]) -> None:
    code = (
        "import sys; from nnspec import _heap; from nnspec.cli.main import main; "
        f"_heap.own_process(); code = main({argv!r}); print(code, 'torch' in sys.modules)"
    )
    assert _python(code).split()[-2:] == ["2", "False"]


# Runs a command through the console script's entry point (which owns the process) and reports
# the exit code, how often the warm start ran, whether the heap was frozen, how many full
# collections ran after it, and the modules loaded. OWN=False: no warm start at all (the entry
# point's own_process is skipped), the command imports what it needs on its own.
_COMMAND = """
import gc, sys
from nnspec import _heap
from nnspec.cli import main as cli
warmed, full_after, loaded = [], [], set()
def counting_warm(modules, *, what):
    if OWN:
        real_warm(modules, what=what)
    warmed.append(gc.get_freeze_count())
    loaded.update(sys.modules)
real_warm, _heap.warm = _heap.warm, counting_warm
gc.callbacks.append(lambda phase, info: full_after.append(1)
                    if phase == "stop" and info["generation"] == 2 and warmed else 0)
if not OWN:
    cli.own_process = lambda: None
sys.argv = ["nnspec", *ARGV]
try:
    cli.entry()
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in set(sys.modules) - loaded if m.split(".")[0] in HEAVY)
print(code, len(warmed), bool(warmed) and warmed[0] > 0, len(full_after), ",".join(heavy) or "-",
      *sorted(sys.modules))
"""

_RUN_ARGS = {
    "train": ["train", "experiment=breast_cancer_mlp", "train.epochs=2", "hydra.run.dir=run2"],
    "plan": ["plan", BREAST_CANCER, "--out=lr.png"],
    "check": ["check", BREAST_CANCER],
    "lr-find": ["lr-find", BREAST_CANCER, "--steps", "30", "--out", "lr_find.png"],
    "eval": ["eval", "run"],
    "predict": ["predict", "run", "x.csv", "--out=p.csv"],
}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a finished breast-cancer run (``run``) and a CSV of its features."""
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("heap")
    _python(
        "from nnspec.cli.main import main; raise SystemExit(main(['train', "
        "'experiment=breast_cancer_mlp', 'train.epochs=2', 'hydra.run.dir=run']))",
        cwd=folder,
    )
    data = load_breast_cancer()
    with (folder / "x.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(data.feature_names)
        writer.writerows(data.data[:20].tolist())
    return folder


def _run_command(folder: Path, name: str, *, own: bool) -> list[str]:
    code = _COMMAND.replace("OWN", str(own)).replace("ARGV", repr(_RUN_ARGS[name]))
    code = code.replace("HEAVY", repr(HEAVY))
    return _python(code, cwd=folder).splitlines()[-1].split()


@generational_gc
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_RUN_ARGS))
def test_a_command_imports_nothing_heavy_after_its_warm_start(run_folder: Path, name: str) -> None:
    # A heavy package left off a command's preload list is imported later, collector running,
    # module by module (matplotlib alone is ~150 modules, torch._dynamo ~400). A few leaf modules
    # come later by design: matplotlib's image plugins when a PNG is saved, sklearn's data-file
    # namespaces, two torch modules on the first torch.save / optimizer step.
    out = _run_command(run_folder, name, own=True)
    assert out[:4] == ["0", "1", "True", "0"]  # exit code, warm starts, heap frozen, full passes
    later = [] if out[4] == "-" else out[4].split(",")
    assert len(later) <= 12, later


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_RUN_ARGS))
def test_a_command_preloads_only_what_it_imports_anyway(run_folder: Path, name: str) -> None:
    out = _run_command(run_folder, name, own=False)
    assert out[:3] == ["0", "1", "False"]  # no warm start, nothing frozen
    assert set(PRELOAD[name]) <= set(out[5:])


def test_the_heap_module_names_no_module_to_import() -> None:
    """Its callers pass their lists: an import by name in nnspec._heap would be an arrow the
    layering test cannot see (a rank-0 helper importing the training stack)."""
    import ast

    from nnspec import _heap

    tree = ast.parse(Path(_heap.__file__).read_text(encoding="utf-8"))
    documented = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef)) and ast.get_docstring(node)
    }
    names = [
        c.value
        for c in ast.walk(tree)
        if isinstance(c, ast.Constant) and isinstance(c.value, str) and id(c) not in documented
        and c.value.partition(".")[0] in ("nnspec", *HEAVY)
    ]  # fmt: skip
    assert names == []


def test_the_pool_launcher_preloads_what_nnspec_train_preloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hydra_plugins.nnspec_pool_launcher.launcher import NNSpecPoolLauncher
    from nnspec.cli.train import main as train
    from nnspec.run.api import RunResult

    def fake(spec: object, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
        run_dir.mkdir(parents=True, exist_ok=True)
        return RunResult(run_dir, {}, {}, 1, "val_loss", 0.1, "min", 0.01, 10, 1)

    monkeypatch.chdir(tmp_path)
    assert train(["train.epochs=1", "hydra.run.dir=out"], train_fn=fake) == 0
    launcher = NNSpecPoolLauncher()  # the default: what the app's task imports first
    assert launcher.preload is None
    from nnspec.hydra.job import JobTask

    launcher.setup(
        hydra_context=None,
        task_function=JobTask(None, None, PRELOAD["train"]),  # type: ignore[arg-type]
        config=None,
    )  # type: ignore[arg-type]
    assert launcher.preload == list(PRELOAD["train"])
    assert NNSpecPoolLauncher(preload=["json"]).preload == ["json"]
