"""``train.checkpoint.keep_top_k``: the checkpoints of the k best epochs by the monitored metric.

Which epochs are the k best is a function of the run's metric history (``LoopState.rows``, part
of every checkpoint), so a resumed run keeps the same files without state of its own. Ties go
to the earlier epoch; epochs whose monitored value is not finite never rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["top_k_epochs", "top_k_change", "top_k_file"]


def top_k_file(epoch: int) -> str:
    """The run-relative path of an epoch's top-k checkpoint."""
    return f"checkpoints/top-epoch-{epoch:04d}.pt"


def top_k_epochs(rows: Sequence[dict[str, Any]], monitor: str, mode: str, k: int) -> list[int]:
    """The epochs of the ``k`` best rows by ``monitor`` (``mode`` min or max), best first.

    Example:
        >>> rows = [{"epoch": e, "val_loss": v} for e, v in [(1, 0.5), (2, 0.3), (3, 0.4)]]
        >>> top_k_epochs(rows, "val_loss", "min", 2)
        [2, 3]
    """
    sign = 1.0 if mode == "min" else -1.0
    ranked = [
        (sign * float(row[monitor]), int(row["epoch"]))
        for row in rows
        if isinstance(row.get(monitor), (int, float)) and math.isfinite(row[monitor])
    ]
    return [epoch for _, epoch in sorted(ranked)[:k]]


def top_k_change(
    rows: Sequence[dict[str, Any]], monitor: str, mode: str, k: int
) -> tuple[bool, list[int]]:
    """After the last row's epoch: (does it enter the top k, the epochs that left it)."""
    if k == 0 or not rows:
        return False, []
    before = set(top_k_epochs(rows[:-1], monitor, mode, k))
    after = set(top_k_epochs(rows, monitor, mode, k))
    return int(rows[-1]["epoch"]) in after, sorted(before - after)
