"""The one place a run writes files (so a DDP rank check can guard it): :class:`RunWriter`.

Every write is atomic: the bytes go to a temporary file in the same folder, are flushed and
fsync'ed, then renamed over the target. A crash leaves either the old file or the new one, never
half of one.

Run directory layout (keys of ``summary.json`` are documented in :mod:`nnspec.run.api`)::

    spec.yaml          resolved spec (every default filled in)
    metrics.csv        one row per epoch: epoch, step, lr, train_loss, val_loss, val_<metric>, time
    metrics.jsonl      the same rows as JSON lines
    summary.json       final test metrics on the restored best weights, best epoch, wall time, ...
    model.pt           final (best) weights + preprocessing tensors (loads with weights_only=True)
    preprocess.json    task, class names, feature names, input shape
    checkpoints/       epoch-NNNN.pt (the last keep_last) and best.pt
    plots/             curves.png, lr.png, confusion.png (classification)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from nnspec.files import atomic_write_bytes

__all__ = ["RunWriter", "atomic_write_bytes"]


class RunWriter:
    """Writes the files of one run directory; a disabled writer (non-zero rank) writes nothing.

    Example:
        >>> import tempfile
        >>> w = RunWriter(Path(tempfile.mkdtemp()))
        >>> w.write_json("summary.json", {"a": 1}).name
        'summary.json'
    """

    def __init__(self, run_dir: Path, *, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def path(self, rel: str) -> Path:
        """Absolute path of a file of the run."""
        return self.run_dir / rel

    def write_bytes(self, rel: str, data: bytes, *, fsync: bool = True) -> Path:
        """Atomically write raw bytes."""
        if self.enabled:
            atomic_write_bytes(self.path(rel), data, fsync=fsync)
        return self.path(rel)

    def write_text(self, rel: str, text: str, *, fsync: bool = True) -> Path:
        """Atomically write UTF-8 text."""
        return self.write_bytes(rel, text.encode(), fsync=fsync)

    def write_json(self, rel: str, obj: Any) -> Path:
        """Atomically write JSON (sorted keys, NaN written as null)."""
        return self.write_text(rel, json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")

    def write_metrics(self, rows: Sequence[dict[str, Any]], *, background: bool = False) -> None:
        """Rewrite metrics.csv and metrics.jsonl with every epoch row so far (small files).

        ``background=True`` queues the write on the writer's thread (after any checkpoint queued
        before it), so the training thread does not wait for two renames per epoch; the rows are
        copied first, and :meth:`flush` waits for the files.
        """
        if not self.enabled or not rows:
            return
        if background:
            snapshot = [dict(r) for r in rows]
            self._pending.append(self._executor().submit(self._write_metrics, snapshot))
            return
        self._write_metrics(rows)

    def _write_metrics(self, rows: Sequence[dict[str, Any]]) -> None:
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.write_text("metrics.csv", buf.getvalue(), fsync=False)
        lines = (json.dumps(_jsonable(r), sort_keys=True) for r in rows)
        self.write_text("metrics.jsonl", "\n".join(lines) + "\n", fsync=False)

    def save_torch(self, rel: str, obj: Any) -> Path:
        """Atomically ``torch.save`` an object of plain tensors/containers."""
        if self.enabled:
            buf = io.BytesIO()
            torch.save(obj, buf)
            atomic_write_bytes(self.path(rel), buf.getvalue())
        return self.path(rel)

    def save_torch_background(
        self, rels: Sequence[str], obj: Any, prune: Sequence[str] = ()
    ) -> None:
        """Serialise ``obj`` now, then write the bytes to every path in ``rels`` and delete
        ``prune`` on one background thread, in order, so the loop does not wait for the disk
        (temp file, fsync, rename).

        Pickling stays on the calling thread: it is CPU work under the GIL, and on a background
        thread it would stall every torch call of the training thread that must take the GIL back
        (a measurable slow-down on small models); the bytes are also a consistent copy, so ``obj``
        may be live state (``state_dict()``). Only the writes, which release the GIL, go to the
        thread. At most one checkpoint is in flight: the previous one is complete on disk before
        the next is queued, so a crash loses at most the newest. :meth:`flush` waits and re-raises
        a failed write.
        """
        if not self.enabled:
            return
        buf = io.BytesIO()
        torch.save(obj, buf)
        self._wait_pending()
        paths = [self.path(rel) for rel in rels]
        self._pending.append(self._executor().submit(_write_all, buf.getvalue(), paths))
        for rel in prune:
            self._pending.append(self._executor().submit(self.path(rel).unlink, missing_ok=True))

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnspec-writer")
        return self._pool

    def _wait_pending(self) -> None:
        pending, self._pending = self._pending, []
        for f in pending:
            f.result()  # re-raise a failed background write here, in the training thread

    def flush(self) -> None:
        """Wait for every background write; re-raise the first failure."""
        self._wait_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def save_figure(self, rel: str, fig: Any) -> Path:
        """Atomically save a matplotlib figure as PNG."""
        if self.enabled:
            from nnspec.figures import png_bytes

            atomic_write_bytes(self.path(rel), png_bytes(fig, dpi=100))
        return self.path(rel)

    def remove(self, rel: str) -> None:
        """Delete a file of the run (old checkpoints)."""
        if self.enabled:
            self.path(rel).unlink(missing_ok=True)


def _write_all(data: bytes, paths: Sequence[Path]) -> None:
    """Write the same bytes atomically to every path (writer thread)."""
    for path in paths:
        atomic_write_bytes(path, data)


def _jsonable(obj: Any) -> Any:
    # JSON has no NaN/Inf: write null so every reader (the sweep report, jq) can parse the file.
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
