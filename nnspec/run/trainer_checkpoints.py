"""Checkpoints of the training loop: what a checkpoint holds, resuming from one, which files an
epoch writes and prunes (``train.checkpoint``, top-k), and the best weights at the end
(:class:`Checkpoints`, mixed into :class:`nnspec.run.loop.Trainer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnspec.compile.plan import restart_lrs
from nnspec.run.checkpoint import checkpoint_paths, rng_state, set_rng_state
from nnspec.run.guards import LoopState
from nnspec.run.topk import top_k_change, top_k_file

__all__ = ["Checkpoints"]


class Checkpoints:
    """The trainer's checkpoint methods; the attributes they read and set (``plan``, ``state``,
    ``model``, ``optimizer``, ``schedule``, ``early_stopping``, ``averaging``, ``precision``,
    ``parallel``, ``writer``, ``saved_epochs``, ``best_state``, ...) are
    :class:`~nnspec.run.loop.Trainer`'s."""

    plan: Any
    state: LoopState
    model: Any
    optimizer: Any
    schedule: Any
    early_stopping: Any
    averaging: Any
    precision: Any
    parallel: Any
    writer: Any
    spec_meta: dict[str, Any]
    saved_epochs: list[int]
    best_state: dict[str, Any] | None
    base_lrs: list[float]
    hooks: dict[str, list[Any]]
    fit_state: Any

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume, as weights_only-loadable data (CKPT-1)."""
        return {
            "format": 1,
            **self.spec_meta,
            "epoch": self.state.epoch,
            "step": self.state.step,
            **self.parallel.train_state(self.model, self.optimizer),  # FSDP: shards apart
            "schedule": self.schedule.state_dict(),
            "early_stopping": self.early_stopping.state_dict(),
            "loop": self.state.payload(),
            "scaler": self.precision.state_dict(),  # fp16's loss scale; None otherwise
            "rng": rng_state(),
            **({"averaging": self.averaging.state_dict()} if self.averaging is not None else {}),
        }

    def restore(self, ckpt: dict[str, Any], best: dict[str, Any] | None) -> None:
        """Continue from a checkpoint (and the best weights so far, when saved).

        The schedule is the one of the segment the checkpoint's epoch was trained in, built
        before the optimizer's state is loaded (its LRs are the checkpoint's); when a segment
        starts at that epoch, :meth:`fit` starts it.
        """
        segment = self.plan.segment_at(ckpt["epoch"])
        if segment.start > 0:
            restart_lrs(self.optimizer, self.base_lrs)
            self._set_schedule(segment)
        run_dir = self.writer.run_dir
        self.parallel.load_train_state(self.model, self.optimizer, ckpt, run_dir)
        self.schedule.load_state_dict(ckpt["schedule"])
        if self.averaging is not None and "averaging" in ckpt:
            self.averaging.load_state_dict(ckpt["averaging"])
        self.early_stopping.load_state_dict(ckpt["early_stopping"])
        self.precision.load_state_dict(ckpt.get("scaler"))  # absent from older checkpoints
        self.state = LoopState.from_checkpoint(ckpt)
        if best is not None:
            self.best_state = self.parallel.best_weights(self.model, best, run_dir)
        on_disk = sorted(int(p.stem.split("-")[1]) for p in checkpoint_paths(self.writer.run_dir))
        self.saved_epochs = [e for e in on_disk if e <= ckpt["epoch"]]
        set_rng_state(ckpt["rng"])

    def _save(self, is_best: bool, last_epoch: bool) -> list[Path]:
        """Queue this epoch's checkpoint files; returns their paths (none when not due)."""
        policy = self.plan.train.checkpoint
        if not policy.enabled:
            return []
        epoch = self.state.epoch
        periodic = epoch % policy.every_epochs == 0 or last_epoch
        top, dropped = top_k_change(self.state.rows, self.plan.monitor, self.plan.mode,
                                    policy.keep_top_k)  # fmt: skip
        if not (periodic or (is_best and policy.keep_best) or top):
            return []
        rels = ["checkpoints/best.pt"] if is_best and policy.keep_best else []
        rels += [top_k_file(epoch)] if top else []
        prune: list[str] = [top_k_file(e) for e in dropped]
        if periodic:
            rels.append(f"checkpoints/epoch-{epoch:04d}.pt")
            self.saved_epochs.append(epoch)
            keep = policy.keep_last
            prune += [f"checkpoints/epoch-{e:04d}.pt" for e in self.saved_epochs[:-keep]]
            self.saved_epochs = self.saved_epochs[-keep:]
        # Pickled once, now (a consistent copy); written (temp + fsync + rename) on the writer's
        # thread while the next epoch trains.
        self.parallel.save_checkpoint(self.writer, rels, self.checkpoint(), prune, self.model,
                                      self.optimizer)  # fmt: skip
        return [self.writer.path(rel) for rel in rels]

    def _checkpoint_hooks(self, paths: list[Path]) -> None:
        if paths:
            for method in self.hooks["on_checkpoint"]:
                method(self.fit_state, paths)

    def restore_best(self) -> None:
        """Load the best epoch's weights (TRAIN-4 ``restore_best``), else the final average
        (``train.ema`` / ``train.swa``); from then on the model itself is evaluated."""
        averaging, self.averaging = self.averaging, None
        if self.plan.train.early_stopping.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        elif averaging is not None and averaging.active:
            self.model.load_state_dict(averaging.module.state_dict())
