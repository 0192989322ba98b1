"""Data parallelism without processes: how a global batch is split, the strategy and batch-size
rules, LR scaling, and what ``nnspec plan`` prints (the runs themselves: test_ddp.py, slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from runhelp import tiny

from nnspec.cli.main import main
from nnspec.errors import SpecError
from nnspec.io import dump
from nnspec.run.distributed import DataParallel
from nnspec.run.launch import (
    LaunchEnv,
    launch_env,
    parallel_lines,
    resolve_strategy,
    with_scaled_lr,
)
from nnspec.spec import ExperimentSpec
from nnspec.spec.train import TrainSpec, scaled_lr

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SUBMITIT_EXECUTOR")


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)


def _rank(rank: int, world: int) -> DataParallel:
    env = LaunchEnv("torchrun", rank, world)
    return DataParallel(env, "ddp", torch.device("cpu"), sync_batchnorm=False)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("rows", [12, 7, 2, 1])
def test_every_row_of_a_global_batch_goes_to_one_rank_with_its_share(world: int, rows: int) -> None:
    x = torch.arange(rows).float().reshape(rows, 1)
    seen, shares = [], []
    for rank in range(world):
        part = _rank(rank, world)
        for data in part.shard([{"input": x, "target": -x}]):
            assert part.batch_len(len(data["target"])) == rows
            assert torch.equal(data["target"], -data["input"])  # every tensor sliced alike
            shares.append(part._share)
            if part._share:
                seen += data["input"][:, 0].tolist()
            else:  # padding: one row, weight 0, so the rank still steps with the others
                assert len(data["input"]) == 1
    assert seen == list(range(rows))  # in order, none twice, none lost
    assert sum(shares) == pytest.approx(1.0)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_eval_shards_cover_each_batch_once_with_one_forward_per_rank(strategy: str) -> None:
    for n, world in [(10, 2), (11, 2), (1, 2), (7, 3)]:
        x = torch.arange(n).float().reshape(n, 1)
        seen: list[float] = []
        for rank in range(world):
            part = DataParallel(LaunchEnv("torchrun", rank, world), strategy,  # type: ignore[arg-type]
                                torch.device("cpu"), sync_batchnorm=False)  # fmt: skip
            calls: list[int] = []

            def forward(t: torch.Tensor, calls: list[int] = calls) -> torch.Tensor:
                calls.append(len(t))
                return t

            for data in part.eval_shards([{"input": x}], forward, ("input",)):
                seen += data["input"][:, 0].tolist()
            if n < world and rank >= n:  # no row: FSDP still runs the forward its peers run
                assert calls == ([1] if strategy == "fsdp" else [])
        assert sorted(seen) == list(range(n))  # each row scored by exactly one rank


def test_a_launch_reads_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert launch_env() == LaunchEnv("none")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launch_env() == LaunchEnv("torchrun", 3, 4, 1)


def _spec(tmp: Path, **train: object) -> ExperimentSpec:
    return tiny(tmp, train=train)


def test_strategy_rules(tmp_path: Path) -> None:
    two = LaunchEnv("torchrun", 0, 2)
    assert resolve_strategy(_spec(tmp_path), LaunchEnv("none")) == "none"
    assert resolve_strategy(_spec(tmp_path), two) == "ddp"
    assert resolve_strategy(_spec(tmp_path, strategy="fsdp"), two) == "fsdp"
    with pytest.raises(SpecError, match=r"train\.strategy: auto, or run without torchrun"):
        resolve_strategy(_spec(tmp_path, strategy="none"), two)
    with pytest.raises(SpecError, match="needs processes started by torchrun"):
        resolve_strategy(_spec(tmp_path, strategy="ddp"), LaunchEnv("none"))


def test_a_batch_that_does_not_split_names_both_numbers(tmp_path: Path) -> None:
    spec = tiny(tmp_path, data={"batch_size": 32})
    with pytest.raises(SpecError) as info:
        resolve_strategy(spec, LaunchEnv("torchrun", 0, 3))
    problem = info.value.problems[0]
    assert problem.path == ("data", "batch_size")
    assert (problem.found, problem.expected) == ("32", "a multiple of the world size 3")
    assert problem.fix == "data.batch_size=33 (3 x 11 per rank)"


def test_lr_scaling_rules() -> None:
    linear = TrainSpec(lr_scaling="linear", lr_reference_batch_size=64)
    assert scaled_lr(0.1, 128, linear) == pytest.approx(0.2)
    assert scaled_lr(0.1, 256, TrainSpec(lr_scaling="sqrt", lr_reference_batch_size=64)) == (
        pytest.approx(0.2)
    )
    assert scaled_lr(0.1, 256, TrainSpec()) == 0.1
    with pytest.raises(ValidationError, match="lr_reference_batch_size"):
        TrainSpec(lr_scaling="linear")


def test_lr_scaling_refuses_an_auto_rate(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"optim\.lr is auto"):
        tiny(tmp_path, optim={"lr": "auto"},
             train={"lr_scaling": "sqrt", "lr_reference_batch_size": 64})  # fmt: skip


def test_the_plan_uses_the_scaled_rate_and_the_spec_keeps_its_own(tmp_path: Path) -> None:
    spec = tiny(tmp_path, train={"lr_scaling": "linear", "lr_reference_batch_size": 64})
    assert with_scaled_lr(spec).optim.lr == pytest.approx(0.005)  # 0.01 x 32/64
    assert spec.optim.lr == 0.01
    lines = parallel_lines(spec, 2)
    assert lines == [
        "data parallel: world size 2, strategy ddp, global batch 32 = 2 x 16 per rank",
        "lr scaling: linear, lr 0.01 x 32/64 = 0.005",
    ]


def test_nnspec_plan_prints_world_size_per_rank_batch_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tiny(tmp_path, train={"lr_scaling": "sqrt", "lr_reference_batch_size": 8})
    path = tmp_path / "spec.yaml"
    path.write_text(dump(spec))
    assert main(["plan", str(path), "--world-size", "4", "--out", str(tmp_path / "lr.png")]) == 0
    out = capsys.readouterr().out
    assert "world size 4, strategy ddp, global batch 32 = 4 x 8 per rank" in out
    assert "lr scaling: sqrt, lr 0.01 x sqrt(32/8) = 0.02" in out
    assert main(["plan", str(path), "--world-size", "3", "--out", str(tmp_path / "x.png")]) == 2
    assert "expected a multiple of the world size 3; found 32" in capsys.readouterr().err


def test_a_sweep_under_torchrun_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(dump(tiny(tmp_path)))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", str(path), "-m", "seed=0,1"]) == 2
    assert "a sweep (-m) cannot run under torchrun" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_sync_batchnorm_on_cpu_is_refused_before_any_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nnspec.run import fit

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    spec = tiny(tmp_path, train={"sync_batchnorm": True, "device": "cpu"})
    with pytest.raises(SpecError) as info:
        fit(spec)
    problem = info.value.problems[0]
    assert problem.path == ("train", "sync_batchnorm")
    assert "GPUs only" in problem.message and problem.fix is not None
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("n", "world", "batch"), [(12, 2, 4), (13, 2, 4), (17, 3, 6), (9, 2, 4)])
def test_rank_sampled_batches_cover_each_global_batch_with_shares_summing_to_one(
    n: int, world: int, batch: int
) -> None:
    from nnspec.run.batches import EpochBatches

    sizes = EpochBatches(n, batch, seed=0, shuffle=True).global_sizes()
    per_batch: list[list[float]] = [[] for _ in sizes]
    seen: list[int] = []
    for rank in range(world):
        sampler = EpochBatches(n, batch, seed=0, shuffle=True, rank=rank, world_size=world)
        part = _rank(rank, world)
        rows = [{"input": torch.tensor(idx)} for idx in sampler]
        for i, data in enumerate(part.weigh(rows, sampler.global_sizes())):
            assert part.batch_len(len(data["input"])) == sampler.global_sizes()[i]
            assert len(data["input"]) >= 2  # no rank is left with fewer than two rows
            per_batch[i].append(part._share)
            seen += data["input"].tolist()
    kept = sum(EpochBatches(n, batch, seed=0, shuffle=True, world_size=world).global_sizes())
    assert sorted(seen) == sorted(set(seen)) and len(seen) == kept  # each kept row once
    for shares in per_batch[: len(EpochBatches(n, batch, seed=0, shuffle=True, world_size=world))]:
        assert sum(shares) == pytest.approx(1.0)
