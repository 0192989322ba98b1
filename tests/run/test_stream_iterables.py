"""Iterable sources: a user's IterableDataset and Parquet datasets (many files, row groups),
the hold-out rule, sharding by rank and worker without duplicates, exact batch sizes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from runhelp import tiny

from nnspec import train
from nnspec.errors import DataError
from nnspec.run.batches import INPUT, TARGET, EpochBatches
from nnspec.run.data import prepare_data, user_data
from nnspec.run.iterables import HOLDOUT, IterSplit, holdout_parts

CPU = torch.device("cpu")


class Stream(torch.utils.data.IterableDataset[tuple[np.ndarray, int]]):
    """Row i has feature 0 equal to i (to find duplicates) and a learnable label."""

    def __init__(self, n: int = 400) -> None:
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(n, 6)).astype(np.float32)
        self.x[:, 0] = np.arange(n)
        self.y = (self.x[:, 1] > 0).astype(np.int64)

    def __iter__(self) -> Any:
        return iter(zip(self.x, self.y.tolist(), strict=True))


def _spec(tmp: Path, **data: Any) -> Any:
    return tiny(
        tmp,
        data={"source": "user", "n_samples": None, "standardize": False, **data},
        model={"input_shape": "auto", "layers": [{"linear": 8}, {"linear": "auto"}]},
    )


def test_the_hold_out_rule_is_documented_and_exact() -> None:
    parts = holdout_parts(np.arange(1000), val=0.2, test=0.1)
    assert [(parts == p).sum() for p in range(3)] == [700, 200, 100]
    assert parts[:HOLDOUT].tolist() == [2] * 10 + [1] * 20 + [0] * 70


def _rows(split: IterSplit, sampler: EpochBatches) -> list[int]:
    return [int(v) for b in split.batches(sampler, CPU) for v in b[INPUT][:, 0]]


def test_readers_shard_an_iterable_by_rank_and_worker_without_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = prepare_data(_spec(tmp_path), raw=user_data(Stream()))
    train_split = bundle.train
    assert isinstance(train_split, IterSplit) and len(train_split) == 280
    expected = sorted(i for i in range(400) if holdout_parts(np.array([i]), 0.2, 0.1)[0] == 0)
    seen: list[int] = []
    for rank in range(2):
        for worker in range(3):  # what get_worker_info says inside DataLoader worker `worker`
            info = SimpleNamespace(num_workers=3, id=worker)
            monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
            sampler = EpochBatches(280, 32, seed=0, shuffle=True, rank=rank, world_size=2)
            seen += _rows(train_split, sampler)
    assert sorted(seen) == expected  # every training row once over the 6 readers


def test_an_iterable_epoch_has_the_plans_batches_and_validation_in_order(tmp_path: Path) -> None:
    bundle = prepare_data(_spec(tmp_path), raw=user_data(Stream()))
    sampler = EpochBatches(280, 32, seed=0, shuffle=True)
    sampler.set_epoch(1)
    sizes = [len(b[TARGET]) for b in bundle.train.batches(sampler, CPU)]
    assert sizes == [32] * 8 + [24] and len(sizes) == len(sampler)
    val = bundle.val
    plain = EpochBatches(len(val), 50, seed=0, shuffle=False, drop_last_single=False)
    batches = list(val.batches(plain, CPU))
    assert torch.equal(torch.cat([b[TARGET] for b in batches]), val.y)  # outputs line up
    result = train(_spec(tmp_path, standardize=True), data=Stream())
    assert result.test_metrics["accuracy"] > 0.8


def _write_parquet(folder: Path, parts: list[tuple[int, int]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (n, start) in enumerate(parts):
        a = rng.normal(size=n)
        table = pa.table({"a": a, "b": rng.normal(size=n), "row": np.arange(start, start + n),
                          "label": (a > 0).astype(np.int64)})  # fmt: skip
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=40)


def _parquet_spec(tmp: Path, folder: Path, in_memory: str) -> Any:
    return tiny(
        tmp,
        data={"source": f"parquet:{folder}", "target": "label", "in_memory": in_memory,
              "n_samples": None, "standardize": False},
        model={"input_shape": "auto", "layers": [{"linear": 8}, {"linear": "auto"}]},
    )  # fmt: skip


def test_a_parquet_dataset_of_many_files_streams_by_row_group(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    _write_parquet(folder, [(150, 0), (100, 150), (170, 250)])
    streamed = prepare_data(_parquet_spec(tmp_path, folder, "no"))
    assert isinstance(streamed.train, IterSplit)
    assert len(streamed.train.data.pieces) == 4 + 3 + 5  # row groups of 40 rows
    loaded = prepare_data(_parquet_spec(tmp_path, folder, "yes"))  # one table, typed columns
    assert len(loaded.train) + len(loaded.val) + len(loaded.test) == 420
    sampler = EpochBatches(len(streamed.train), 32, seed=0, shuffle=True)
    rows = [int(v) for b in streamed.train.batches(sampler, CPU) for v in b[INPUT][:, 2]]
    parts = holdout_parts(np.arange(420), 0.2, 0.1)
    assert sorted(rows) == np.flatnonzero(parts == 0).tolist()  # the row column: source order
    spec = _parquet_spec(tmp_path, folder, "no")
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"standardize": True})})
    assert train(spec).test_metrics["accuracy"] > 0.8


def test_parquet_files_that_disagree_are_named(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "ds"
    _write_parquet(folder, [(50, 0)])
    pq.write_table(pa.table({"a": [1.0], "label": [0]}), folder / "part-9.parquet")
    pq.write_table(pa.table({"a": ["x"], "b": [1.0], "row": [1], "label": [0]}),
                   tmp_path / "text.parquet")  # fmt: skip
    with pytest.raises(DataError, match=r"part-9\.parquet: its columns differ from part-0"):
        prepare_data(_parquet_spec(tmp_path, folder, "no"))
    with pytest.raises(DataError, match=r"part-9\.parquet: its columns differ"):
        prepare_data(_parquet_spec(tmp_path, folder, "yes"))
    with pytest.raises(DataError, match=r"the hold-out rule left no training rows"):
        prepare_data(_parquet_spec(tmp_path, tmp_path / "text.parquet", "no"))  # 1 test row


@pytest.mark.slow
def test_dataloader_workers_read_disjoint_shards(tmp_path: Path) -> None:
    bundle = prepare_data(_spec(tmp_path, num_workers=2), raw=user_data(Stream(1000)))
    sampler = EpochBatches(len(bundle.train), 64, seed=0, shuffle=True)
    rows = [int(v) for b in bundle.train.batches(sampler, CPU, workers=2) for v in b[INPUT][:, 0]]
    assert len(rows) == len(set(rows)) == len(bundle.train) == 700
