"""Run by torchrun in the DDP tests (and by the same tests in one process): train a spec given
as JSON with a callback that records every step's loss, then write them (rank 0) to a file.

Usage: python tests/run/ddp_worker.py SPEC.json LOSSES.json [KILL_AT_STEP]
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from nnspec.run import Callback, FitState, fit
from nnspec.spec import ExperimentSpec


class Losses(Callback):
    """Every optimizer step's loss (the global batch's under DDP)."""

    def __init__(self, kill_at: int | None) -> None:
        self.losses: list[float] = []
        self.kill_at = kill_at

    def on_step_end(self, state: FitState) -> None:
        self.losses.append(state.loss)
        rank = int(os.environ.get("RANK", "0"))
        if self.kill_at is not None and state.step >= self.kill_at and rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # a rank dies: no clean-up of any kind


def main(argv: list[str]) -> None:
    spec = ExperimentSpec.model_validate(json.loads(Path(argv[0]).read_text()))
    losses = Losses(int(argv[2]) if len(argv) > 2 else None)
    result = fit(spec, callbacks=[losses])
    if int(os.environ.get("RANK", "0")) == 0:
        out = {"losses": losses.losses, "run_dir": str(result.run_dir),
               "val": result.val_metrics, "test": result.test_metrics}
        Path(argv[1]).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
