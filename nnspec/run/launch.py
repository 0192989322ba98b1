"""Who this process is in a launch (torchrun's or a submitit job's variables, read without side
effects), which ``train.strategy`` that gives, and the rules that only the world size decides:
the per-rank batch, and ``train.lr_scaling`` (``nnspec plan`` prints both).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from nnspec.errors import Problem, SpecError
from nnspec.spec.experiment import ExperimentSpec
from nnspec.spec.train import scaled_lr

__all__ = [
    "LaunchEnv",
    "launch_env",
    "is_main_process",
    "resolve_strategy",
    "with_scaled_lr",
    "parallel_lines",
]


@dataclass(frozen=True)
class LaunchEnv:
    """How this process was launched: its rank among ``world_size`` processes."""

    launcher: Literal["none", "torchrun", "submitit"]
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def _submitit_tasks() -> int:
    """The number of tasks of the submitit job this process runs in (0: none)."""
    executor = os.environ.get("SUBMITIT_EXECUTOR", "")
    if executor == "slurm":
        return int(os.environ.get("SLURM_NTASKS", "1"))
    if executor == "local":
        return int(os.environ.get("SUBMITIT_LOCAL_NTASKS", "1"))
    return 0


def launch_env() -> LaunchEnv:
    """Read the launcher's variables (torchrun's first, then a submitit job's); no side effect.

    Example:
        >>> launch_env().launcher in ("none", "torchrun", "submitit")
        True
    """
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        local = int(env.get("LOCAL_RANK", env["RANK"]))
        return LaunchEnv("torchrun", int(env["RANK"]), int(env["WORLD_SIZE"]), local)
    if _submitit_tasks() > 1:
        from submitit import JobEnvironment

        job = JobEnvironment()
        return LaunchEnv("submitit", job.global_rank, job.num_tasks, job.local_rank)
    return LaunchEnv("none")


def is_main_process() -> bool:
    """Whether this process writes files: rank 0, or no launcher at all."""
    return launch_env().rank == 0


def resolve_strategy(spec: ExperimentSpec, env: LaunchEnv) -> Literal["none", "ddp", "fsdp"]:
    """``train.strategy`` for this launch; refuses what cannot work (exit 2).

    Raises:
        SpecError: ``none`` under a multi-process launch; ``ddp``/``fsdp`` without a launcher;
            a ``data.batch_size`` that ``world_size`` does not divide.
    """
    chosen, world = spec.train.strategy, env.world_size
    launched = env.launcher != "none"
    if chosen == "auto":
        chosen = "ddp" if launched and world > 1 else "none"
    if chosen == "none" and launched and world > 1:
        raise SpecError(Problem(("train", "strategy"),
            f"{world} processes were launched ({env.launcher}) for a one-process run",
            expected="ddp, fsdp or auto under a launcher", found="none",
            fix="set train.strategy: auto, or run without torchrun"))  # fmt: skip
    if chosen != "none" and not launched:
        raise SpecError(Problem(("train", "strategy"),
            f"train.strategy {chosen} needs processes started by torchrun or a SLURM job",
            found=chosen, fix="torchrun --nproc_per_node=2 -m nnspec train SPEC.yaml, or "
            "train.strategy: auto"))  # fmt: skip
    if chosen != "none" and spec.data.batch_size % world:
        raise SpecError(Problem(("data", "batch_size"),
            f"the global batch is split evenly over the {world} processes of this launch",
            expected=f"a multiple of the world size {world}", found=str(spec.data.batch_size),
            fix=f"data.batch_size={_multiple(spec.data.batch_size, world)} "
            f"({world} x {_multiple(spec.data.batch_size, world) // world} per rank)"))  # fmt: skip
    return chosen


def _multiple(batch: int, world: int) -> int:
    return max(world, round(batch / world) * world)


def with_scaled_lr(spec: ExperimentSpec) -> ExperimentSpec:
    """``spec`` with ``optim.lr`` after ``train.lr_scaling`` (the plan's learning rate; the
    run's own spec.yaml keeps the rate as written)."""
    lr = spec.optim.lr
    if spec.train.lr_scaling == "none" or not isinstance(lr, (int, float)):
        return spec
    new = scaled_lr(float(lr), spec.data.batch_size, spec.train)
    return spec.model_copy(update={"optim": spec.optim.model_copy(update={"lr": new})})


def parallel_lines(spec: ExperimentSpec, world_size: int | None = None) -> list[str]:
    """What ``nnspec plan`` prints about data parallelism: world size, strategy, per-rank batch
    and the LR scaling rule (``world_size``: the launcher's when not given).

    Raises:
        SpecError: the batch does not split over ``world_size`` (as the run would refuse it).
    """
    env = launch_env()
    if world_size is not None:
        env = LaunchEnv("torchrun" if world_size > 1 else "none", 0, world_size)
    strategy = resolve_strategy(spec, env)
    batch, world = spec.data.batch_size, env.world_size
    lines = [f"data parallel: world size {world}, strategy {strategy}, global batch {batch} = "
             f"{world} x {batch // world} per rank"]  # fmt: skip
    train, lr = spec.train, spec.optim.lr
    if train.lr_scaling == "none" or not isinstance(lr, (int, float)):
        lines.append("lr scaling: none (optim.lr as written)")
    else:
        ref, new = train.lr_reference_batch_size, scaled_lr(float(lr), batch, train)
        ratio = f"{batch}/{ref}" if train.lr_scaling == "linear" else f"sqrt({batch}/{ref})"
        lines.append(f"lr scaling: {train.lr_scaling}, lr {lr:g} x {ratio} = {new:.4g}")
    return lines
