"""The one place a run writes files (so a DDP rank check can guard it): :class:`RunWriter`.

Every write is atomic: the bytes go to a temporary file in the same folder, are flushed and
fsync'ed, then renamed over the target. A crash leaves either the old file or the new one, never
half of one. The files later commands load are listed with their sha256 in ``manifest.json``
(:mod:`nnspec.run.manifest`) and checked before every load. A write that fails (read-only or full
disk) or finds its run directory deleted or replaced raises :class:`~nnspec.errors.OutputError`;
old checkpoints are pruned only once the new one is on disk.

Run directory layout (keys of ``summary.json`` are documented in :mod:`nnspec.run.api`)::

    spec.yaml          resolved spec (every default filled in)
    metrics.csv        one row per epoch: epoch, step, lr, train_loss, val_loss, val_<metric>, time
    metrics.jsonl      the same rows as JSON lines
    summary.json       final test metrics on the restored best weights, best epoch, wall time, ...
    model.pt           final (best) weights + preprocessing tensors (loads with weights_only=True)
    preprocess.json    task, class names, feature names, input shape
    checkpoints/       epoch-NNNN.pt (the last keep_last) and best.pt
    plots/             curves.png, lr.png, confusion.png (classification)
    manifest.json      sha256 of spec.yaml, model.pt, preprocess.json, summary.json, checkpoints/
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from nnspec.errors import OutputError, Problem, Terminated
from nnspec.files import atomic_write_bytes
from nnspec.run.manifest import Manifest, is_tracked

__all__ = ["RunWriter", "atomic_write_bytes", "write_error"]


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
        self.manifest = Manifest(self.run_dir)
        self._identity: tuple[int, int] | None = None  # the run folder's (device, inode)
        self._anchored = False  # this writer wrote the run's spec.yaml

    def path(self, rel: str) -> Path:
        """Absolute path of a file of the run."""
        return self.run_dir / rel

    def write_bytes(self, rel: str, data: bytes, *, fsync: bool = True) -> Path:
        """Atomically write raw bytes (listed in the manifest when a later load checks them).

        Raises:
            OutputError: the write failed (read-only or full disk, permissions), or the run
                directory was deleted or replaced since the run's first write.
        """
        if self.enabled:
            self._check_alive()
            try:
                self._make_folders(rel)
                if is_tracked(rel):
                    self.manifest.write(rel, data, fsync=fsync)
                else:
                    atomic_write_bytes(self.path(rel), data, fsync=fsync, make_parents=False)
                self._anchored = self._anchored or rel == "spec.yaml"
            except OSError as e:
                self._check_alive()  # a folder deleted under the write says so first
                raise write_error(self.path(rel), e) from e
        return self.path(rel)

    def _make_folders(self, rel: str) -> None:
        """The folders of ``rel`` below the run folder (never the run folder itself)."""
        folder = self.run_dir
        for part in Path(rel).parts[:-1]:
            folder = folder / part
            folder.mkdir(exist_ok=True)  # FileNotFoundError when the run folder is gone

    def record_files(self, paths: Sequence[Path]) -> None:
        """List files another writer put in the run (a sharded checkpoint's shards and
        ``.metadata``, once complete) in the manifest, so they are verified before a load."""
        if self.enabled:
            self._check_alive()
            self.manifest.record(paths)

    def _check_alive(self) -> None:
        """The run folder is the one the run started in: not deleted, not replaced.

        A writer that re-created a deleted folder would go on writing a run without its
        spec.yaml and hash.txt, that ends with exit 0 and cannot be resumed or loaded.
        """
        try:
            st = os.stat(self.run_dir)
        except FileNotFoundError:
            st = None
        if self._identity is None and st is not None:
            self._identity = (st.st_dev, st.st_ino)
            return
        if self._identity is None:  # the first write: its folder is created here
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise write_error(self.run_dir, e) from e
            st = os.stat(self.run_dir)
            self._identity = (st.st_dev, st.st_ino)
            return
        # spec.yaml is a run's first file: gone means the folder was (partly) deleted
        gone = st is None or (self._anchored and not (self.run_dir / "spec.yaml").exists())
        if gone or (st.st_dev, st.st_ino) != self._identity:  # type: ignore[union-attr]
            raise OutputError(
                Problem(
                    ("run_dir",),
                    f"the run directory {self.run_dir} was "
                    + ("deleted" if gone else "replaced by another folder")
                    + " while the run was writing to it; the run stops here",
                    fix="leave a run's folder alone until it finishes; train again (or resume "
                    "from a copy of the folder)",
                )
            )

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
            self.write_bytes(rel, buf.getvalue())
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
        the next is queued, so a crash loses at most the newest. The ``prune`` files are deleted
        only after every new file is on disk and in the manifest: a failed write (full disk)
        deletes nothing. :meth:`flush` waits and re-raises a failed write.
        """
        if not self.enabled:
            return
        buf = io.BytesIO()
        torch.save(obj, buf)
        self._wait_pending()
        task = self._write_then_prune
        self._pending.append(self._executor().submit(task, buf.getvalue(), rels, prune))

    def _write_then_prune(self, data: bytes, rels: Sequence[str], prune: Sequence[str]) -> None:
        """Writer thread: the new files, then (only when all were written) the pruned ones."""
        for rel in rels:
            self.write_bytes(rel, data)
        for rel in prune:
            self.path(rel).unlink(missing_ok=True)
            self.manifest.forget(rel)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnspec-writer")
        return self._pool

    def _wait_pending(self) -> None:
        pending, self._pending = self._pending, []
        stopped: BaseException | None = None
        for f in pending:
            while True:
                try:
                    f.result()  # re-raise a failed background write here, in the training thread
                    break
                except (KeyboardInterrupt, Terminated) as e:
                    # the signal cut the wait short, not the write: every pending write is
                    # finished, then the signal stops the run (a second Ctrl-C ends the wait;
                    # a second SIGTERM is ignored, see run.guards)
                    if stopped is not None:
                        raise
                    stopped = e
        if stopped is not None:
            raise stopped

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

            self.write_bytes(rel, png_bytes(fig, dpi=100))
        return self.path(rel)

    def remove(self, rel: str) -> None:
        """Delete a file of the run (old checkpoints)."""
        if self.enabled:
            self.path(rel).unlink(missing_ok=True)
            if is_tracked(rel):
                self.manifest.forget(rel)


_WRITE_FIXES = {
    errno.ENOENT: "the run folder (or part of it) was deleted while the run wrote to it; leave "
    "it alone until the run ends, and train again",
    errno.ENOSPC: "free space on that disk (or point train.output_dir elsewhere), then resume "
    "the run: its checkpoints on disk are intact",
    errno.EDQUOT: "free space within your quota, then resume the run",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f); raise the limit",
    errno.EROFS: "the file system is read-only: set train.output_dir to a writable folder",
    errno.EACCES: "set train.output_dir to a folder you can write",
    errno.EPERM: "set train.output_dir to a folder you can write",
}


def write_error(path: Path, e: OSError) -> OutputError:
    """An :class:`OutputError` for a failed write of ``path``, with the fix for its cause."""
    return OutputError(
        Problem(
            ("train", "output_dir"),
            f"cannot write {path}: {e.strerror or e}",
            fix=_WRITE_FIXES.get(e.errno or 0, "check that the output folder is writable"),
        )
    )


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
