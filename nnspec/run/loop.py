"""The training loop: in-memory batches by tensor slicing, guards, early stopping, checkpoints.

Per step the loop does what a minimal hand-written loop does (forward, loss, backward, optional
clipping, optimizer and scheduler step) plus one ``float(loss)`` for the NaN and divergence guards.
That read is free on CPU; on CUDA it is the one sync per step. Metrics are computed once per epoch
on whole splits, with torch ops (``epoch_metrics``; scikit-learn only for the final report). The
per-epoch checkpoint is pickled in the loop (CPU work under the GIL) and written on the writer's
thread together with the metric files, so the next epoch does not wait for the disk; ``fit``
flushes them before returning.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nnspec.check.monitors import diagnose_fit, make_monitor
from nnspec.compile.losses import TargetStats
from nnspec.compile.plan import TrainingPlan, steps_per_epoch
from nnspec.errors import Problem, TrainError
from nnspec.run.callbacks import EarlyStopping, Progress
from nnspec.run.checkpoint import rng_state, set_rng_state
from nnspec.run.data import DataBundle, Split, epoch_order, iter_batches, loader_batches
from nnspec.run.metrics import _sk, epoch_metrics
from nnspec.run.outputs import RunWriter
from nnspec.run.tasks import TASKS

__all__ = ["Trainer", "LoopState", "FAULT_ENV"]

FAULT_ENV = "NNSPEC_FAULT_KILL_AT_STEP"
"""Fault injection for tests: the process SIGKILLs itself after this many optimizer steps."""


@dataclass
class LoopState:
    """Counters and history of a run (all plain data, stored in every checkpoint)."""

    epoch: int = 0
    step: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    initial_loss: float | None = None
    smoothed_loss: float = 0.0
    high_steps: int = 0
    stopped: str = "max_epochs"


def target_stats(bundle: DataBundle) -> TargetStats:
    """Class (or positive) counts of the training split, for 'balanced' loss weights."""
    count = TASKS[bundle.info.task].counts
    y = bundle.train.y
    counts = count(y, bundle.info.n_outputs) if count is not None else torch.zeros(1)
    return TargetStats(counts, len(bundle.train))


class Trainer:
    """Runs the epochs of one experiment; the caller owns setup (seeding, run dir) and teardown."""

    def __init__(
        self,
        model: nn.Module,
        plan: TrainingPlan,
        bundle: DataBundle,
        writer: RunWriter,
        progress: Progress,
        *,
        spec_meta: dict[str, Any],
        device: torch.device,
    ) -> None:
        self.model, self.plan, self.bundle = model, plan, bundle
        self.writer, self.progress, self.device = writer, progress, device
        self.spec_meta = spec_meta  # spec hash and fields, stored in every checkpoint
        self.forward = torch.compile(model) if plan.train.compile else model
        self.loss_fn = plan.make_loss(bundle.info.n_outputs, target_stats(bundle)).to(device)
        self.optimizer = plan.make_optimizer(model)
        t = plan.train
        self.accumulate = t.accumulate
        self.spe = steps_per_epoch(len(bundle.train), plan.data.batch_size, t.accumulate)
        self.total_steps = plan.horizon(self.spe).total_steps
        self.schedule = plan.make_schedule(self.optimizer, self.spe)
        self.warmup = plan.warmup_steps(self.spe)
        es = t.early_stopping
        self.es = EarlyStopping(plan.monitor, plan.mode, es.patience, es.min_delta, es.enabled)
        self.state = LoopState()
        self.fit_time = 0.0
        # per-step settings read once (the loop's per-step overhead must stay tiny)
        self.bf16 = t.precision == "bf16"
        self._no_cast = contextlib.nullcontext()
        self.clip = t.clip_grad if t.clip_grad.kind != "none" else None
        self.tensorboard: Any = None  # set by the caller when train.tensorboard is on
        self._saved: list[int] = []  # epochs with a checkpoint on disk (keep_last pruning)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.l1_params = plan.penalty(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        _sk()  # import scikit-learn's metrics now (set-up), not inside the first epoch
        kill = os.environ.get(FAULT_ENV)
        self.kill_at = int(kill) if kill else None
        # Opt-in monitors (issue 6, train.monitors): None when every monitor is off.
        self.monitor = make_monitor(model, t.monitors, progress.message, bundle.train.x[:256])

    # ---- checkpoints ----

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume, as weights_only-loadable data (CKPT-1)."""
        return {
            "format": 1,
            **self.spec_meta,
            "epoch": self.state.epoch,
            "step": self.state.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "early_stopping": self.es.state_dict(),
            "loop": {
                # one string and one tensor instead of thousands of small objects to pickle
                "rows": json.dumps(self.state.rows),
                "lrs": torch.tensor(self.state.lrs, dtype=torch.float64),
                "initial_loss": self.state.initial_loss,
                "smoothed_loss": self.state.smoothed_loss,
                "high_steps": self.state.high_steps,
            },
            "rng": rng_state(),
        }

    def restore(self, ckpt: dict[str, Any], best: dict[str, Any] | None) -> None:
        """Continue from a checkpoint (and the best weights so far, when saved)."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.es.load_state_dict(ckpt["early_stopping"])
        loop = ckpt["loop"]
        self.state = LoopState(
            ckpt["epoch"], ckpt["step"], json.loads(loop["rows"]), loop["lrs"].tolist(),
            loop["initial_loss"], loop["smoothed_loss"], loop["high_steps"],
        )  # fmt: skip
        if best is not None:
            self.best_state = best["model"]
        from nnspec.run.checkpoint import checkpoint_paths

        self._saved = sorted(
            int(p.stem.split("-")[1]) for p in checkpoint_paths(self.writer.run_dir)
        )
        self._saved = [e for e in self._saved if e <= ckpt["epoch"]]
        set_rng_state(ckpt["rng"])

    def _save(self, is_best: bool, last_epoch: bool) -> None:
        ck = self.plan.train.checkpoint
        if not ck.enabled:
            return
        epoch = self.state.epoch
        periodic = epoch % ck.every_epochs == 0 or last_epoch
        if not (periodic or (is_best and ck.keep_best)):
            return
        rels = ["checkpoints/best.pt"] if is_best and ck.keep_best else []
        prune: list[str] = []
        if periodic:
            rels.append(f"checkpoints/epoch-{epoch:04d}.pt")
            self._saved.append(epoch)
            prune = [f"checkpoints/epoch-{e:04d}.pt" for e in self._saved[: -ck.keep_last]]
            self._saved = self._saved[-ck.keep_last :]
        # Pickled once, now (a consistent copy); written (temp + fsync + rename) on the writer's
        # thread while the next epoch trains.
        self.writer.save_torch_background(rels, self.checkpoint(), prune)

    # ---- guards ----

    def _nan_error(self, loss: float) -> TrainError:
        bad = next(
            (
                n
                for n, p in self.model.named_parameters()
                if p.grad is not None and not torch.isfinite(p.grad).all()
            ),
            None,
        )
        last = self.state.epoch
        return TrainError(
            Problem(
                ("optim", "lr"),
                f"NaN guard: non-finite loss {loss} at step {self.state.step + 1} "
                f"(epoch {last + 1}); first parameter with a non-finite gradient: "
                f"{bad or 'none (the loss itself overflowed)'}",
                fix="lower optim.lr (LR-1), check the inputs for NaN/Inf, or enable "
                "train.clip_grad; the checkpoints of the last good epoch are kept"
                + (f" (epoch {last})" if last else ""),
            )
        )

    def _diverged(self, loss: float) -> None:
        s, t = self.state, self.plan.train
        if s.initial_loss is None:
            s.initial_loss = s.smoothed_loss = loss
            return
        # An EMA (0.9) of the loss, so one lucky batch does not reset the count.
        s.smoothed_loss = 0.9 * s.smoothed_loss + 0.1 * loss
        too_high = s.smoothed_loss > t.divergence_factor * max(s.initial_loss, 1e-12)
        s.high_steps = s.high_steps + 1 if too_high else 0
        if s.high_steps >= t.divergence_steps:
            raise TrainError(
                Problem(
                    ("optim", "lr"),
                    f"divergence guard: the smoothed loss ({s.smoothed_loss:.4g}) stayed above "
                    f"{t.divergence_factor:g}x its initial value ({s.initial_loss:.4g}) for "
                    f"{t.divergence_steps} consecutive steps (step {s.step})",
                    fix="lower optim.lr (LR-1) or add warmup (schedule.warmup); raise "
                    "train.divergence_factor if such a rise is expected",
                )
            )

    # ---- the epoch ----

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return self._no_cast  # one reusable null context: nothing allocated per step

    def _optimizer_step(self, loss: float) -> None:
        if self.monitor is not None:
            self.monitor.after_backward()  # pre-clip gradient norms (MON-2)
        clip = self.clip
        if clip is None:
            pass
        elif clip.kind == "norm":  # TRAIN-6: one global L2 norm keeps the update's direction
            torch.nn.utils.clip_grad_norm_(self.params, clip.max_norm)
        else:
            torch.nn.utils.clip_grad_value_(self.params, clip.value)
        if not math.isfinite(loss):
            raise self._nan_error(loss)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step_batch()
        self.state.step += 1
        self.state.lrs.append(self.optimizer.param_groups[0]["lr"])
        self._diverged(loss)

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training split; returns the mean training loss."""
        self.model.train()
        order = epoch_order(self.plan.seed, epoch, len(self.bundle.train))
        if not self.plan.data.shuffle:
            order = None
        total, seen, acc = 0.0, 0, self.accumulate
        batches = list(self._batches(order))
        last, kill_at = len(batches) - 1, self.kill_at
        self.progress.start(epoch, self.plan.train.epochs, len(batches))
        for b, (xb, yb) in enumerate(batches):
            if kill_at is not None and self.state.step >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # fault injection (resume tests)
            with self._autocast():
                loss = self.loss_fn(self.forward(xb), yb)
                if self.l1_params:
                    loss = loss + self.plan.regularization(self.l1_params)
            (loss / acc if acc > 1 else loss).backward()
            value = loss.item()  # the guards' one read per step
            total += value * len(xb)
            seen += len(xb)
            if b == last or (b + 1) % acc == 0:
                self._optimizer_step(value)
                if self.state.step >= self.total_steps:
                    break
            if b % 8 == 7:
                self.progress.advance(8)
        return total / max(seen, 1)

    def _batches(self, order: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        d = self.plan.data
        if d.in_memory == "no":  # the DataLoader path: same order, collated by workers
            return loader_batches(self.bundle.train, d.batch_size, order, d.num_workers)
        return iter_batches(self.bundle.train, d.batch_size, order)

    def evaluate(self, split: Split) -> tuple[float, torch.Tensor]:
        """Loss and outputs on a whole split (eval mode, no grad)."""
        self.model.eval()
        bs = self.plan.data.eval_batch_size
        with torch.inference_mode(), self._autocast():
            outs = [self.forward(split.x[i : i + bs]) for i in range(0, len(split), bs)]
            out = torch.cat(outs).float()
            loss = float(self.loss_fn(out, split.y))
        return loss, out

    def _epoch_row(self, epoch: int, train_loss: float, t0: float) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": epoch, "epochs": self.plan.train.epochs}
        row["step"] = self.state.step
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["train_loss"] = train_loss
        val = self.bundle.val
        if val is not None:
            val_loss, out = self.evaluate(val)
            row["val_loss"] = val_loss
            metrics = epoch_metrics(out, val.y, self.bundle.info, self.plan.metrics)
            row.update({f"val_{k}": v for k, v in metrics.items()})
        row["time"] = time.perf_counter() - t0
        return row

    def fit(self) -> LoopState:
        """Train until max epochs / max steps / early stopping; returns the final state.

        Background checkpoint writes are flushed before it returns or raises, so a guard's error
        leaves the last good epoch's checkpoint complete on disk.
        """
        s = self.state
        try:
            for epoch in range(s.epoch + 1, self.plan.train.epochs + 1):
                t0 = time.perf_counter()
                train_loss = self.train_epoch(epoch)
                if self._end_epoch(epoch, self._epoch_row(epoch, train_loss, t0)):
                    break
        finally:
            self.writer.flush()
        if self.monitor is not None and self.monitor.warn:
            self.progress.message(diagnose_fit(s.rows)[1])  # MON-1: train/val gap report
        return s

    def _end_epoch(self, epoch: int, row: dict[str, Any]) -> bool:
        """Early stopping, plateau schedule, metric files, progress, checkpoints; True = stop."""
        s = self.state
        if self.monitor is not None:
            row.update(self.monitor.end_epoch(row))  # MON-2/3 metrics and warnings
        s.epoch = epoch
        is_best = self.es.update(row[self.plan.monitor], epoch)
        if is_best:
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.schedule.step_epoch(row, warmup_done=s.step >= self.warmup)
        s.rows.append(row)
        self.writer.write_metrics(s.rows, background=True)  # flushed by fit()
        if self.tensorboard is not None:
            self.tensorboard.log(row)
        self.progress.end_epoch(row)
        done = self.es.should_stop or s.step >= self.total_steps
        self._save(is_best, done or epoch == self.plan.train.epochs)
        if done:
            s.stopped = "early_stopping" if self.es.should_stop else "max_steps"
        return done

    def restore_best(self) -> None:
        """Load the best epoch's weights (TRAIN-4 ``restore_best``)."""
        if self.plan.train.early_stopping.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
