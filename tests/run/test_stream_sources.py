"""Streamed sources: a user's map-style Dataset read as it is, memory-mapped .npy files and
shard folders, data.in_memory, and the losses of a streamed run equal to the in-memory run's."""

from __future__ import annotations

import ctypes
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from runhelp import tiny

from nnspec import train
from nnspec.errors import DataError
from nnspec.run import streams as streams_module
from nnspec.run import workers as workers_module
from nnspec.run.batches import INPUT, TARGET, EpochBatches
from nnspec.run.callbacks import Callback, FitState
from nnspec.run.data import prepare_data, user_data
from nnspec.run.streams import StreamSplit

CPU = torch.device("cpu")


class Items(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """A user's map-style Dataset that counts its reads."""

    def __init__(self, n: int = 300, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, 8)).astype(np.float32) * 3 + 1
        self.y = (self.x[:, 0] + self.x[:, 1] > 2).astype(np.int64) + (self.x[:, 2] > 1)
        self.reads = 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        self.reads += 1
        return torch.from_numpy(self.x[i]), int(self.y[i])


class Losses(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_step_end(self, state: FitState) -> None:
        self.values.append(state.loss)


def _user_spec(tmp: Path, in_memory: str, **data: Any) -> Any:
    # dropout: the streamed loader must leave the global RNG's stream to the model
    layers = [{"linear": 16}, {"dropout": 0.2}, {"linear": 3}]
    return tiny(tmp, data={"source": "user", "in_memory": in_memory, **data},
                model={"input_shape": [8], "layers": layers})  # fmt: skip


def test_streamed_and_in_memory_runs_have_the_same_losses_per_step(tmp_path: Path) -> None:
    runs = {}
    for mode in ("yes", "no"):
        losses = Losses()
        result = train(_user_spec(tmp_path / mode, mode), data=Items(), callbacks=[losses])
        runs[mode] = (losses.values, result)
    (mem, mem_result), (streamed, streamed_result) = runs["yes"], runs["no"]
    assert len(mem) == len(streamed) == 4 * 7  # 4 epochs of 7 steps (210 training samples)
    np.testing.assert_allclose(streamed, mem, rtol=1e-5, atol=0)
    assert streamed_result.test_metrics == pytest.approx(mem_result.test_metrics, rel=1e-5)


def test_a_user_dataset_is_read_as_it_is_and_an_epoch_is_never_collected(tmp_path: Path) -> None:
    items = Items()
    bundle = prepare_data(_user_spec(tmp_path, "no"), raw=user_data(items))
    # one item for its shape, one pass for the labels, one for the statistics
    assert isinstance(bundle.train, StreamSplit) and items.reads == 1 + 2 * 300

    class Reads(Callback):
        def __init__(self) -> None:
            self.at: list[int] = []

        def on_epoch_start(self, state: FitState) -> None:
            self.at.append(items.reads)

        def on_step_end(self, state: FitState) -> None:
            self.at.append(items.reads)

    reads = Reads()
    spec = _user_spec(tmp_path, "no", batch_size=30)
    train(spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": 1})}),
          data=items, callbacks=[reads])  # fmt: skip
    steps = np.diff(reads.at)
    assert steps.tolist() == [30] * 7  # one batch read per step, never the epoch ahead


def _table(n: int, seed: int, cols: int = 5, dtype: Any = np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, cols - 1)) * 2 + 3
    y = (x[:, 0] > 3).astype(float)
    return np.column_stack([x, y]).astype(dtype)


def _npy_spec(tmp: Path, source: str, in_memory: str) -> Any:
    return tiny(
        tmp,
        data={"source": source, "in_memory": in_memory, "n_samples": None},
        model={"input_shape": "auto", "layers": [{"linear": 8}, {"linear": "auto"}]},
    )


def _epoch(split: Any, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    sampler = EpochBatches(len(split), 16, seed=seed, shuffle=True)
    sampler.set_epoch(2)
    return list(split.batches(sampler, CPU))


def test_npy_file_is_memory_mapped_and_streams_the_in_memory_batches(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", _table(200, 0))
    streamed = prepare_data(_npy_spec(tmp_path, f"npy:{tmp_path / 't.npy'}", "no"))
    loaded = prepare_data(_npy_spec(tmp_path, f"npy:{tmp_path / 't.npy'}", "yes"))
    assert isinstance(streamed.train, StreamSplit)
    assert isinstance(streamed.train.reader.rows.x.base, np.memmap)  # nothing read into memory
    assert torch.equal(streamed.info.x_mean, loaded.info.x_mean)  # one float64 pass, both ways
    assert torch.equal(streamed.info.x_std, loaded.info.x_std)
    for a, b in zip(_epoch(streamed.train), _epoch(loaded.train), strict=True):
        assert torch.equal(a[INPUT], b[INPUT]) and torch.equal(a[TARGET], b[TARGET])
    with pytest.raises(DataError, match="this split is streamed"):
        _ = streamed.train.x  # tools that need the whole split say so


def test_auto_streams_above_the_documented_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    np.save(tmp_path / "t.npy", _table(200, 0))
    spec = _npy_spec(tmp_path, f"npy:{tmp_path / 't.npy'}", "auto")
    assert not isinstance(prepare_data(spec).train, StreamSplit)  # 200 x 4 float32: loaded
    monkeypatch.setattr(streams_module, "IN_MEMORY_BYTES", 200 * 4 * 4 - 1)
    assert isinstance(prepare_data(spec).train, StreamSplit)


def test_a_shard_folder_reads_as_one_table(tmp_path: Path) -> None:
    parts = [_table(70, 1), _table(50, 2), _table(80, 3)]
    (tmp_path / "shards").mkdir()
    for i, part in enumerate(parts):
        np.save(tmp_path / "shards" / f"part-{i}.npy", part)
    np.save(tmp_path / "whole.npy", np.concatenate(parts))
    shards = prepare_data(_npy_spec(tmp_path, f"npy:{tmp_path / 'shards'}", "no"))
    whole = prepare_data(_npy_spec(tmp_path, f"npy:{tmp_path / 'whole.npy'}", "no"))
    assert torch.equal(shards.train.y, whole.train.y)
    for a, b in zip(_epoch(shards.train), _epoch(whole.train), strict=True):
        assert torch.equal(a[INPUT], b[INPUT])
    result = train(_npy_spec(tmp_path, f"npy:{tmp_path / 'shards'}", "no"))
    assert result.epochs_run == 4 and "accuracy" in result.test_metrics


def test_bad_shards_are_named_all_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    np.save(folder / "a.npy", _table(20, 0))
    np.save(folder / "b.npy", _table(20, 1, cols=6))
    np.save(folder / "c.npy", _table(20, 2, dtype=np.float64))
    spec = _npy_spec(tmp_path, f"npy:{folder}", "no")
    with pytest.raises(DataError) as err:
        prepare_data(spec)
    text = str(err.value)
    assert "b.npy: the shards of shards must share their columns and dtype" in text
    assert "found 6 columns of float32" in text
    assert "c.npy" in text and "5 columns of float64" in text and "a.npy" in text


def test_a_non_finite_feature_is_named_by_shard_and_row(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    np.save(folder / "a.npy", _table(20, 0))
    bad = _table(20, 1)
    bad[7, 2] = np.nan
    np.save(folder / "b.npy", bad)
    with pytest.raises(DataError, match=r"b\.npy: row 7: NaN or inf features"):
        prepare_data(_npy_spec(tmp_path, f"npy:{folder}", "no"))


def test_dataset_items_that_are_not_pairs_are_refused(tmp_path: Path) -> None:
    class Bad(torch.utils.data.Dataset[torch.Tensor]):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> torch.Tensor:
            return torch.zeros(3)

    with pytest.raises(DataError, match=r"dataset item 0 is not an \(x, y\) pair"):
        prepare_data(_user_spec(tmp_path, "no"), raw=user_data(Bad()))


@pytest.mark.slow
def test_worker_processes_stream_the_same_losses(tmp_path: Path) -> None:
    runs = []
    for mode, workers in (("yes", 0), ("no", 2)):
        losses = Losses()
        spec = _user_spec(tmp_path / mode, mode, num_workers=workers)
        train(spec, data=Items(), callbacks=[losses])
        runs.append(losses.values)
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-5, atol=0)


def test_the_worker_setup_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker forked with its parent's pages must not fork again to find libc (an extra
    process holding the same anonymous memory: the map-style Dataset benchmark's fourth one)."""
    import subprocess

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)  # the forked worker inherits it
    loader = torch.utils.data.DataLoader(
        Items(4), batch_size=None, num_workers=1,
        worker_init_fn=workers_module.release_freed_buffers,
    )  # fmt: skip
    assert len(list(loader)) == 4  # a worker whose set-up raised fails the iteration


def test_the_worker_setup_fixes_glibcs_mmap_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    class Libc:
        def mallopt(self, *args: Any) -> int:
            calls.append(args)
            return 1

    opened: list[Any] = []
    monkeypatch.setattr(ctypes, "CDLL", lambda name: opened.append(name) or Libc())
    workers_module.release_freed_buffers(0)
    assert opened == [None]  # the process's own symbols: no search for the library
    assert calls == [(-3, 1 << 20)]  # M_MMAP_THRESHOLD, 1 MiB


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc only")  # fmt: skip
def test_glibcs_mallopt_is_among_the_process_symbols() -> None:
    assert hasattr(ctypes.CDLL(None), "mallopt")


def test_a_statistics_pass_gives_the_free_heap_back(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    class Libc:
        def malloc_trim(self, *args: Any) -> int:
            calls.append(args)
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    rows = streams_module.ArrayRows(np.arange(40, dtype=np.float32).reshape(20, 2), "rows")
    mean, _ = streams_module.fit_moments(rows, np.arange(10), lambda chunk, start: None)
    assert calls == [(0,)]  # once, after the pass: before the training workers are forked
    np.testing.assert_allclose(mean, [9.0, 10.0])
