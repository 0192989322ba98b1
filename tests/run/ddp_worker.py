"""Run by torchrun in the DDP tests: train a spec given as JSON ``repeat`` times with a callback
that records every step's loss, and write what rank 0 saw to a JSON file.

Usage: python tests/run/ddp_worker.py SPEC.json OUT.json [--repeat N] [--stop-at EPOCH]
    [--kill-at STEP]  (rank 1 SIGKILLs itself after that optimizer step)
    [--named-items N]  (data: test_named_arrays' Dataset of N named items)
    [--slow-write REL]  (rank 0's write of the run file REL starts 3 s late, as on a busy disk)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

from nnspec.run import Callback, FitState, fit
from nnspec.spec import ExperimentSpec


class Record(Callback):
    """Every optimizer step's loss (the global batch's under DDP); optional stop and kill."""

    def __init__(self, stop_at: int | None = None, kill_at: int | None = None,
                 killed: Path | None = None) -> None:  # fmt: skip
        self.losses: list[float] = []
        self.stop_at, self.kill_at, self.killed = stop_at, kill_at, killed

    def on_step_end(self, state: FitState) -> None:
        self.losses.append(state.loss)
        if self.kill_at is not None and state.step >= self.kill_at and _rank() == 1:
            assert self.killed is not None
            self.killed.write_text(str(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind

    def on_epoch_end(self, state: FitState) -> None:
        if self.stop_at is not None and state.epoch >= self.stop_at:
            state.stop("test")


def _fsdp_modules_alive() -> int:
    """FSDP-sharded modules still in memory once the run returned (before any collection)."""
    import gc

    from torch.distributed.fsdp import FSDPModule

    return sum(isinstance(o, FSDPModule) for o in gc.get_objects())


def _slow_write(rel: str) -> None:
    """Rank 0's background write of ``rel`` waits 3 s before it starts."""
    from nnspec.run.outputs import RunWriter

    real = RunWriter.write_bytes

    def slow(self: RunWriter, name: str, data: bytes, **kwargs: Any) -> Path:
        if name == rel:
            time.sleep(3)
        return real(self, name, data, **kwargs)

    RunWriter.write_bytes = slow  # type: ignore[method-assign]


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("spec", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--stop-at", type=int)
    p.add_argument("--kill-at", type=int)
    p.add_argument("--named-items", type=int)
    p.add_argument("--slow-write")
    args = p.parse_args()
    if args.slow_write:
        _slow_write(args.slow_write)
    data = None
    if args.named_items:
        from test_named_arrays import NamedItems, _arrays

        data = NamedItems(*_arrays(args.named_items))
    spec = ExperimentSpec.model_validate(json.loads(args.spec.read_text()))
    runs = []
    # Repeated runs share one process group made here (fit uses a group it finds and leaves it
    # to its owner): torch re-creates a destroyed default group under the same store keys, which
    # torchrun's store still holds from the first one.
    own = args.repeat > 1
    if own:
        dist.init_process_group("gloo")
    for _ in range(args.repeat):
        record = Record(args.stop_at, args.kill_at, args.out.with_suffix(".killed"))
        result = fit(spec, data, callbacks=[record])
        runs.append({"losses": record.losses, "run_dir": str(result.run_dir),
                     "test": result.test_metrics, "epochs": result.epochs_run,
                     "fsdp_alive": _fsdp_modules_alive()})  # fmt: skip
    if own:
        dist.barrier()
        dist.destroy_process_group()
    if _rank() == 0:
        args.out.write_text(json.dumps(runs))


if __name__ == "__main__":
    main()
