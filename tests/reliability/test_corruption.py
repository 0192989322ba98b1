"""Damaged run files are all detected: truncation, zeroed blocks and bit flips (inside tensor
data for the checkpoints and model.pt) in every file a later command loads.

Detection means an nnspec error before anything is parsed (``CheckpointError``, exit 2), never
a silent load and never a different exit code.
"""

from __future__ import annotations

import random
import shutil
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_counts import count
from run.runhelp import tiny

import nnspec
from nnspec.cli.main import main
from nnspec.errors import CheckpointError

FILES = [
    "checkpoints/best.pt",
    "checkpoints/epoch-0003.pt",
    "model.pt",
    "summary.json",
    "preprocess.json",
    "spec.yaml",
    "manifest.json",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("corrupt")
    return nnspec.train(tiny(tmp, train={"epochs": 3})).run_dir


def tensor_spans(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of the tensor storages inside a torch zip (``archive/data/N`` entries)."""
    spans = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if "/data/" in info.filename and info.file_size:
                # the local header: 30 bytes + name + extra field, then the stored bytes
                with path.open("rb") as fh:
                    fh.seek(info.header_offset + 26)
                    name_len, extra_len = (int.from_bytes(fh.read(2), "little") for _ in range(2))
                start = info.header_offset + 30 + name_len + extra_len
                spans.append((start, start + info.file_size))
    return spans


def damage(path: Path, how: str, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        del data[rng.randrange(1, len(data)) :]
    elif how == "zero-block":
        at = rng.randrange(0, len(data))
        data[at : at + 64] = bytes(len(data[at : at + 64]))
    elif how == "empty":
        data = bytearray()
    else:  # a bit flip; inside tensor data for torch files
        spans = tensor_spans(path) if path.suffix == ".pt" else [(0, len(data))]
        start, end = rng.choice(spans)
        at = rng.randrange(start, end)
        data[at] ^= 1 << rng.randrange(8)
    if bytes(data) == path.read_bytes():  # a zeroed block of zeros: damage it for sure
        data = data[:-1]
    path.write_bytes(bytes(data))


def loader(run: Path, rel: str) -> Callable[[], Any]:
    """The command that reads ``rel``: resume for checkpoints, eval for the rest."""
    if rel.startswith("checkpoints/"):
        from nnspec.run.checkpoint import load_checkpoint

        return lambda: load_checkpoint(run / rel)
    return lambda: main(["eval", str(run)])


CASES = [
    (rel, how, seed)
    for rel in FILES
    for how in ("truncate", "zero-block", "empty", "flip")
    for seed in range(2 if how in ("flip", "truncate") else 1)
]


@pytest.mark.parametrize(("rel", "how", "seed"), CASES, ids=[f"{r}-{h}-{s}" for r, h, s in CASES])
def test_damage_is_detected(finished: Path, tmp_path: Path, rel: str, how: str, seed: int) -> None:
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    damage(run / rel, how, random.Random(f"{rel}{how}{seed}"))
    count("corruptions")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an "unverified" load would be a miss
        try:
            result = loader(run, rel)()
        except CheckpointError:
            result = 2
    assert result == 2
    count("corruptions_detected")


def test_every_flip_in_checkpoint_tensors_is_detected(finished: Path, tmp_path: Path) -> None:
    """The adversarial run's 200 single-bit flips (148 loaded silently before manifests)."""
    from nnspec.run.checkpoint import load_checkpoint

    source = finished / "checkpoints" / "epoch-0003.pt"
    spans = tensor_spans(source)
    rng = random.Random(200)
    target = tmp_path / "checkpoints" / "epoch-0003.pt"
    target.parent.mkdir()
    shutil.copy(finished / "manifest.json", tmp_path / "manifest.json")
    good = source.read_bytes()
    for _ in range(200):
        data = bytearray(good)
        start, end = rng.choice(spans)
        data[rng.randrange(start, end)] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
        count("corruptions")
        with pytest.raises(CheckpointError, match="sha256"):
            load_checkpoint(target)
        count("corruptions_detected")
