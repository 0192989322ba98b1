"""Code-execution payloads under an audit-hook recorder: nothing a spec, an override or a run's
file holds is ever executed.

Each payload tries to create a canary file (``touch``) or to run a process. The recorder
(``sys.addaudithook``) notes every ``os.system``, ``os.exec*``, ``os.spawn*``, ``os.posix_spawn``,
``subprocess.Popen`` and ``exec`` of source text (``<string>`` code, not an import) while a
payload is handled; every payload must be refused (an nnspec error, exit 2) with no event and no
canary.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from reliability_counts import count
from run.runhelp import tiny

import nnspec
from nnspec.cli.main import main

_WATCHED = ("os.system", "subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty")
_RECORDING: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _RECORDING:
        return
    if event in _WATCHED or event.startswith(("os.exec", "os.spawn")):
        _RECORDING[-1].append(event)
    elif event == "exec":
        code = args[0] if args else None
        filename = getattr(code, "co_filename", "")
        if filename.startswith("<") and not filename.startswith("<frozen"):
            caller = sys._getframe(2).f_code.co_filename  # exec()'s caller
            if not caller.endswith(("dataclasses.py", "typing.py", "__init__.py")):
                _RECORDING[-1].append(f"exec {filename} from {caller}")


sys.addaudithook(_audit)  # cannot be removed: it records only while a payload runs


def shell(canary: Path) -> str:
    return f"touch {canary}"


class _Evil:
    """Pickles to a call of os.system (what an attacker puts in a .pt or .npy)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


BASE = (
    "data: {source: 'synthetic:classification', n_samples: 60, "
    "options: {n_features: 8, n_informative: 5, n_classes: 3}}\n"
)
MODEL = "model: {input_shape: [8], layers: [{linear: 3}]}\n"

# (id, spec text) with {c} the canary's path; each must be refused by validate and train
SPEC_PAYLOADS: list[tuple[str, str]] = [
    ("apply-os-system", "model: !!python/object/apply:os.system ['touch {c}']\n"),
    ("apply-subprocess", "!!python/object/apply:subprocess.check_call [['touch', '{c}']]\n"),
    ("python-name", MODEL + "name: !!python/name:os.system\n"),
    ("python-module", MODEL + "name: !!python/module:os\n"),
    ("object-new", MODEL + "name: !!python/object/new:os.system ['touch {c}']\n"),
    ("apply-exec", MODEL + "name: !!python/object/apply:builtins.exec [\"open('{c}','w')\"]\n"),
    (
        "apply-eval",
        MODEL + "name: !!python/object/apply:builtins.eval "
        "[\"__import__('os').system('touch {c}')\"]\n",
    ),
    (
        "verbatim-tag",
        MODEL + "name: !<tag:yaml.org,2002:python/object/apply:os.system> ['touch {c}']\n",
    ),
    (
        "tag-directive",
        "%TAG !p! tag:yaml.org,2002:python/\n---\n"
        + MODEL
        + "name: !p!object/apply:os.system ['touch {c}']\n",
    ),
    ("tag-on-key", MODEL + "? !!python/object/apply:os.system ['touch {c}']\n: 1\n"),
    ("local-tag", MODEL + "name: !os.system 'touch {c}'\n"),
    (
        "tag-behind-alias",
        MODEL + "name: &a !!python/object/apply:os.system ['touch {c}']\nseed: *a\n",
    ),
    (
        "tag-in-merge-key",
        "model: {<<: !!python/object/apply:os.system ['touch {c}'], "
        "input_shape: [8], layers: [{linear: 3}]}\n",
    ),
    ("binary-tag", MODEL + "name: !!binary aGVsbG8=\n"),
    ("set-tag", MODEL + "lint: {ignore: !!set {a, b}}\n"),
    ("target-top", MODEL + "_target_: os.system\n_args_: ['touch {c}']\n"),
    (
        "target-in-layer",
        "model: {input_shape: [8], layers: [{_target_: os.system, _args_: ['touch {c}']}]}\n",
    ),
    (
        "target-in-options",
        MODEL + "data: {source: 'synthetic:classification', "
        "options: {_target_: subprocess.call, args: ['touch', '{c}']}}\n",
    ),
    ("target-in-optim", MODEL + "optim: {kind: adamw, _target_: os.system}\n"),
    (
        "target-via-merge",
        "base: &b {_target_: os.system, _args_: ['touch {c}']}\n"
        "model: {<<: *b, input_shape: [8], layers: [{linear: 3}]}\n",
    ),
    (
        "target-via-merge-list",
        "b1: &b1 {_target_: os.system}\n"
        "model: {<<: [*b1], input_shape: [8], layers: [{linear: 3}]}\n",
    ),
    ("component", MODEL + "loss: {_component_: os.system}\n"),
    ("partial", MODEL + "optim: {kind: adamw, _partial_: true}\n"),
    ("recursive", MODEL + "train: {_recursive_: false}\n"),
    ("convert", MODEL + "train: {_convert_: all}\n"),
    ("target-in-list", MODEL + "lint: {ignore: [{_target_: os.system}]}\n"),
    (
        "hydra-section",
        MODEL + "hydra: {callbacks: {x: {_target_: os.system, _args_: ['touch {c}']}}}\n",
    ),
    ("hydra-launcher", MODEL + "hydra: {launcher: {_target_: os.system}}\n"),
    ("quoted-target-key", MODEL + "'_target_': os.system\n"),
]

# A spec file is data: `${` is refused in every command (the hydra engineer's change; these
# payloads expect that refusal).
RESOLVER_PAYLOADS: list[tuple[str, str]] = [
    ("oc-env-output-dir", BASE + MODEL + "train: {output_dir: '${oc.env:HOME}/x'}\n"),
    ("oc-env-source", MODEL + "data: {source: 'csv:${oc.env:HOME}/x.csv', target: y}\n"),
    ("hydra-resolver", BASE + MODEL + "train: {output_dir: '${hydra:runtime.cwd}'}\n"),
    (
        "eval-resolver",
        BASE
        + MODEL
        + 'train: {output_dir: "${eval:\'__import__(\\"os\\").system(\\"touch {c}\\")\'}"}\n',
    ),
    ("oc-decode", BASE + MODEL + "lint: {ignore: ['${oc.decode:\"[1]\"}']}\n"),
]

# nnspec train SPEC OVERRIDE: each override must be refused
OVERRIDE_PAYLOADS: list[tuple[str, str]] = [
    ("plus-model-target", "+model._target_=os.system"),
    ("plus-options-target", "+data.options._target_=os.system"),
    ("layer-target-value", "model.layers.0={_target_: os.system, _args_: ['touch {c}']}"),
    ("plus-top-target", "+_target_=os.system"),
    ("plus-component", "+optim._component_=os.system"),
    ("target-in-list-value", "lint.ignore=[{_target_: os.system}]"),
]


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One good spec validated and trained first: imports and lazy set-up happen outside the
    recorder's windows."""
    tmp = tmp_path_factory.mktemp("warm")
    good = tmp / "good.yaml"
    good.write_text(
        BASE + MODEL + f"train: {{epochs: 1, progress: none, output_dir: '{tmp}/runs'}}\n"
    )
    assert main(["validate", str(good)]) == 0
    assert main(["train", str(good), "train.epochs=1"]) == 0
    return good


def handled(canary: Path, action: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``action`` with the recorder on; returns its result (or the nnspec error) and the
    events recorded."""
    from nnspec.errors import NNSpecError

    _RECORDING.append([])
    try:
        try:
            result: Any = action()
        except NNSpecError as e:
            result = e
    finally:
        events = _RECORDING.pop()
    assert not canary.exists(), "a payload ran"
    return result, events


def refused(ok: bool, events: list[str]) -> None:
    count("payloads")
    assert events == []
    assert ok
    count("payloads_refused")


@pytest.mark.parametrize(("pid", "text"), SPEC_PAYLOADS, ids=[p for p, _ in SPEC_PAYLOADS])
def test_spec_payloads_are_refused(warm: Path, tmp_path: Path, pid: str, text: str) -> None:
    canary = tmp_path / "canary"
    spec = tmp_path / "evil.yaml"
    spec.write_text(text.replace("{c}", str(canary)))
    out = str(tmp_path / "runs")
    codes = [
        handled(canary, lambda: main(["validate", str(spec)])),
        handled(canary, lambda: main(["train", str(spec), f"train.output_dir={out}"])),
        handled(canary, lambda: main(["lint", str(spec)])),
    ]
    refused(all(code == 2 for code, _ in codes), [e for _, ev in codes for e in ev])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("pid", "text"), RESOLVER_PAYLOADS, ids=[p for p, _ in RESOLVER_PAYLOADS])
def test_resolver_payloads_are_refused(
    warm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pid: str, text: str
) -> None:
    monkeypatch.chdir(tmp_path)  # a payload that got through would write under the cwd
    canary = tmp_path / "canary"
    spec = tmp_path / "evil.yaml"
    spec.write_text(text.replace("{c}", str(canary)))
    # every command that reads a spec file refuses it (train below with a real output folder)
    codes = [
        handled(canary, partial(main, [command, str(spec)]))
        for command in ("validate", "summary", "data", "plan", "lint", "check")
    ]
    codes += [
        handled(
            canary,
            lambda: main(
                [
                    "train",
                    str(spec),
                    "train.epochs=1",
                    "train.progress=none",
                    f"train.output_dir={tmp_path}/runs",
                ]
            ),
        ),
    ]
    refused(all(code == 2 for code, _ in codes), [e for _, ev in codes for e in ev])


@pytest.mark.parametrize(
    ("pid", "override"), OVERRIDE_PAYLOADS, ids=[p for p, _ in OVERRIDE_PAYLOADS]
)
def test_override_payloads_are_refused(warm: Path, tmp_path: Path, pid: str, override: str) -> None:
    canary = tmp_path / "canary"
    arg = override.replace("{c}", str(canary))
    code, events = handled(canary, lambda: main(["train", str(warm), arg]))
    refused(code == 2, events)


# ---- files of a run: checkpoints, model.pt, DCP metadata, data files ----


@pytest.fixture(scope="module")
def finished(warm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("payload-run")
    return nnspec.train(tiny(tmp, train={"epochs": 2})).run_dir


def evil_pickle(canary: Path) -> bytes:
    return pickle.dumps({"model": _Evil(shell(canary))})


def evil_torch(canary: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"format": 1, "model": {"w": torch.zeros(1)}, "x": _Evil(shell(canary))}, buf)
    return buf.getvalue()


def evil_global(canary: Path) -> bytes:
    # a hand-written pickle: GLOBAL builtins.eval, then a call (no __reduce__ class needed)
    src = f"__import__('os').system('touch {canary}')"
    return b"cbuiltins\neval\n(" + pickle.dumps(src, protocol=0)[:-1] + b"tR."


FILE_MAKERS = {"pickle": evil_pickle, "torch-zip": evil_torch, "global-eval": evil_global}
TARGETS = ["checkpoints/epoch-0009.pt", "checkpoints/best.pt", "model.pt"]


def plant(run: Path, rel: str, data: bytes, *, listed: bool) -> None:
    """Put ``data`` at ``run/rel``; ``listed``: also in the manifest, as an attacker who can
    write the run folder would (so only ``weights_only`` stands in the way)."""
    (run / rel).write_bytes(data)
    if listed:
        from nnspec.run.manifest import Manifest

        Manifest(run).record([run / rel])


def use(run: Path, rel: str) -> Callable[[], Any]:
    if rel == "model.pt":
        return lambda: main(["eval", str(run)])
    spec = nnspec.load(run / "spec.yaml")
    resumed = spec.model_copy(update={"train": spec.train.model_copy(update={"resume": str(run)})})

    def resume() -> Any:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skipped file's warning
            from nnspec.run.checkpoint import resume_point

            return resume_point(run, resumed)

    return resume


@pytest.mark.parametrize("listed", [False, True], ids=["unlisted", "listed"])
@pytest.mark.parametrize("rel", TARGETS)
@pytest.mark.parametrize("maker", list(FILE_MAKERS))
def test_pickled_run_files_never_execute(
    finished: Path, tmp_path: Path, maker: str, rel: str, listed: bool
) -> None:
    from nnspec.errors import NNSpecError

    run = Path(shutil.copytree(finished, tmp_path / "run"))
    canary = tmp_path / "canary"
    plant(run, rel, FILE_MAKERS[maker](canary), listed=listed)
    result, events = handled(canary, use(run, rel))
    if rel == "checkpoints/epoch-0009.pt":  # skipped, the run's own checkpoint used instead
        ok = isinstance(result, tuple) and result[0] is not None and result[0]["epoch"] == 2
    else:
        ok = (
            isinstance(result, NNSpecError)
            or result == 2
            or (isinstance(result, tuple) and result[0] is not None and result[0]["epoch"] == 2)
        )
    refused(ok, events)


def test_a_planted_dcp_metadata_is_refused_before_it_is_unpickled(
    finished: Path, tmp_path: Path
) -> None:
    from nnspec.errors import CheckpointError
    from nnspec.run.manifest import verify_files

    run = Path(shutil.copytree(finished, tmp_path / "run"))
    canary = tmp_path / "canary"
    shard = run / "checkpoints" / "epoch-0003"
    shard.mkdir()
    (shard / ".metadata").write_bytes(evil_pickle(canary))
    (shard / "__0_0.distcp").write_bytes(b"\0" * 64)

    def check() -> Any:
        verify_files(run, sorted(shard.iterdir()))
        import torch.distributed.checkpoint as dcp  # never reached

        return dcp.FileSystemReader(str(shard)).read_metadata()

    result, events = handled(canary, check)
    refused(isinstance(result, CheckpointError), events)


@pytest.mark.parametrize("kind", ["npz-object", "npy-object", "npz-pickle-bytes"])
def test_pickled_data_files_never_execute(warm: Path, tmp_path: Path, kind: str) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / ("d.npy" if kind == "npy-object" else "d.npz")
    evil = np.array([_Evil(shell(canary))], dtype=object)
    if kind == "npz-object":
        np.savez(path, x=evil, y=np.zeros(1))
    elif kind == "npy-object":
        np.save(path, evil, allow_pickle=True)
    else:
        path.write_bytes(pickle.dumps(_Evil(shell(canary))))
    prefix = "npy" if kind == "npy-object" else "npz"
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"data: {{source: '{prefix}:{path}'}}\nmodel: {{input_shape: auto, layers: "
        f"[{{linear: auto}}]}}\ntrain: {{output_dir: '{tmp_path}/runs'}}\n"
    )
    code, events = handled(canary, lambda: main(["train", str(spec)]))
    refused(code == 2, events)


def test_the_recorder_sees_a_real_payload(tmp_path: Path) -> None:
    """The recorder is not blind: unpickling the payload without weights_only is caught."""
    canary = tmp_path / "canary"
    _RECORDING.append([])
    try:
        pickle.loads(evil_pickle(canary))
    finally:
        events = _RECORDING.pop()
    assert "os.system" in events and canary.exists()


def test_json_run_files_are_only_data(finished: Path, tmp_path: Path) -> None:
    """A preprocess.json naming Python objects stays strings (JSON has no code)."""
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    canary = tmp_path / "canary"
    meta = json.loads((run / "preprocess.json").read_text())
    meta["extra"] = {"_target_": "os.system", "__reduce__": shell(canary)}
    from nnspec.run.outputs import RunWriter

    RunWriter(run).write_json("preprocess.json", meta)
    _, events = handled(canary, lambda: nnspec.load_run(run))
    refused(not canary.exists(), events)
