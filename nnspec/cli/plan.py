"""nnspec plan [SPEC.yaml] [key.path=value ...] [--out=LR.png] [--world-size=N]

Print the resolved training plan without training: task, loss, optimizer and its parameter groups,
schedule (and the segments of an extended run), training-set size, steps per epoch, total steps,
warmup steps and the LR at key points (start, end of warmup, 25/50/75 % of the run, last step).
Writes the LR-vs-step curve as a PNG (default: <train.output_dir>/<name>/lr_plan.png). The data
set is loaded to know its size. Data parallelism: the world size (``--world-size``, else the
launcher's, else 1), the strategy, the per-rank batch and the LR scaling rule with the rate it
gives.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.cli.common import EXIT_OK, console, load_spec, one_spec, warm_start
from nnspec.spec.heads import declared_outputs
from nnspec.spec.optim import resolve_loss_kind

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from nnspec.compile.plan import TrainingPlan
    from nnspec.spec.experiment import ExperimentSpec

__all__ = ["run", "key_points", "print_plan"]


def key_points(curve: list[float], warmup: int) -> list[tuple[str, int, float]]:
    """(label, step, lr) at the start, end of warmup, 25/50/75 % and the last step."""
    n = len(curve)
    points = [("start", 0)]
    if warmup:
        points.append(("end of warmup", min(warmup, n - 1)))
    points += [(f"{q}%", min(n - 1, n * q // 100)) for q in (25, 50, 75)]
    points.append(("last step", n - 1))
    return [(label, step, curve[step]) for label, step in points]


def run(args: Namespace) -> int:
    """``nnspec plan``: print the plan and write the LR plot."""
    path, overrides = one_spec(args, "plan")
    spec, _ = load_spec(path, overrides, config_dir=args.config_dir)
    warm_start("plan")
    from nnspec.run.outputs import RunWriter
    from nnspec.run.plots import plot_lr

    curve = print_plan(spec, Path(path).resolve().parent if path else None, args.world_size)
    out = console()
    png = Path(args.out or Path(spec.train.output_dir) / spec.name / "lr_plan.png")
    plot_lr(RunWriter(png.parent), curve, rel=png.name)
    out.print(f"LR plot: {png}")
    return EXIT_OK


def print_plan(
    spec: ExperimentSpec, base: Path | None, world_size: int | None = None
) -> list[float]:
    """Print ``spec``'s plan and its LR at key points (``nnspec plan``, ``nnspec train
    --extend``); returns the LR at every step. The data is loaded to know its size.

    Raises:
        SpecError: the batch does not split over ``world_size`` (as the run would refuse it).
    """
    from nnspec.compile.plan import compile_plan, steps_per_epoch
    from nnspec.run.data import prepare_data
    from nnspec.run.launch import parallel_lines, with_scaled_lr
    from nnspec.run.model import build_for_data

    bundle = prepare_data(spec, base=base)
    plan = compile_plan(with_scaled_lr(spec))
    spe = steps_per_epoch(len(bundle.train), spec.data.batch_size, spec.train.accumulate)
    curve = plan.lr_curve(spe)
    groups = plan.make_optimizer(build_for_data(spec, bundle.info)).param_groups
    out = console()
    parallel = parallel_lines(spec, world_size)  # a batch that does not split: exit 2 now
    _print_plan(out, spec, plan, len(bundle.train), spe, groups)
    for line in parallel:
        out.print(line, highlight=False)
    out.print(_lr_table(curve, plan.warmup_steps(spe), spe))
    return curve


def _print_plan(
    out: Console,
    spec: ExperimentSpec,
    plan: TrainingPlan,
    n_train: int,
    spe: int,
    groups: list[dict[str, Any]],
) -> None:
    """Task, loss, optimizer, schedule, step counts, early stopping and the parameter groups."""
    horizon = plan.horizon(spe)
    declared = declared_outputs(spec.model)
    what = f"task {plan.task}, loss {plan.loss_kind}"
    if declared is not None:  # several outputs: each one's task, loss, weight and metrics
        what = "outputs " + "; ".join(
            f"{name} ({out.task}, loss {resolve_loss_kind(out.task, out.loss)} x{out.weight:g}, "
            f"metrics {', '.join(plan.outputs[name])})" for name, out in declared.items()
        )  # fmt: skip
    out.print(f"[bold]{spec.name}[/]: {what}, "
              f"optimizer {spec.optim.kind}, schedule {spec.schedule.kind}")  # fmt: skip
    warm = plan.warmup_steps(spe)
    out.print(f"train samples {n_train}, batch {spec.data.batch_size}, "
              f"accumulate {spec.train.accumulate}: {spe} steps/epoch x {spec.train.epochs} "
              f"epochs = {horizon.total_steps} steps (warmup {warm})")  # fmt: skip
    for seg in plan.segments()[1:]:
        out.print(f"extension: epochs {seg.start + 1}-{seg.stop} ({(seg.stop - seg.start) * spe} "
                  f"steps) with schedule {seg.schedule.kind}, restarted from the base LR "
                  f"(epoch {seg.start + 1}, step {seg.start * spe})")  # fmt: skip
    out.print(f"early stopping on {plan.monitor} ({plan.mode}), "
              f"patience {spec.train.early_stopping.patience}")  # fmt: skip
    for g in groups:
        n = sum(p.numel() for p in g["params"])
        out.print(f"  param group {g['name']}: {n:,} params, lr {g['lr']:.3g}, "
                  f"weight_decay {g['weight_decay']:g}")  # fmt: skip


def _lr_table(curve: list[float], warmup: int, spe: int) -> Table:
    """The LR at :func:`key_points`, with the step and the (fractional) epoch."""
    from rich.table import Table

    table = Table(title="learning rate at key points", title_justify="left")
    for col in ("point", "step", "epoch", "lr"):
        table.add_column(col)
    for label, step, lr in key_points(curve, warmup):
        table.add_row(label, str(step), f"{step / spe:.2f}", f"{lr:.4g}")
    return table
