"""The sha256 manifest of a run directory: every file a later command loads is checked first.

``manifest.json`` maps each tracked file (path relative to the run directory) to the sha256
digests its content may have. A write first adds the new digest next to the old one, then
renames the new file into place, then drops the old digest: a process killed at any point leaves
a file that matches one of its listed digests, so an interrupted run still resumes, while a bit
flip, a truncation or a zeroed block is refused before ``torch.load`` or ``json.loads`` sees the
bytes. Tracked: the checkpoints (``checkpoints/``, sharded ones included), ``model.pt``,
``preprocess.json``, ``spec.yaml`` and ``summary.json``.

The manifest protects against damage (a full disk, a bad sector, a copy cut short), not against
someone who can write the run directory: they can rewrite the manifest too. Loading stays
``weights_only=True`` for that reason.

A run directory written before manifests existed has none: its files load with a
:class:`~nnspec.run.checkpoint.CheckpointWarning`-style warning (:class:`UnverifiedWarning`).

Example:
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> m = Manifest(run)
    >>> m.write("spec.yaml", b"model: {}\\n")
    >>> verified_bytes(run, run / "spec.yaml")
    b'model: {}\\n'
    >>> _ = (run / "spec.yaml").write_bytes(b"model: {]\\n")
    >>> verified_bytes(run, run / "spec.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nnspec.errors.CheckpointError: ...spec.yaml: the file's content changed since the run wrote it...
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from nnspec.errors import CheckpointError, Problem
from nnspec.files import atomic_write_bytes, read_regular

__all__ = [
    "MANIFEST",
    "MAX_LOADED_BYTES",
    "Manifest",
    "UnverifiedWarning",
    "digest",
    "is_tracked",
    "verified_bytes",
    "verify_files",
]

MANIFEST: Final = "manifest.json"
TRACKED: Final = ("spec.yaml", "model.pt", "preprocess.json", "summary.json")
TRACKED_FOLDERS: Final = ("checkpoints/",)
MAX_LOADED_BYTES: Final = 64 << 30
"""The largest run file (checkpoint, model.pt) nnspec reads into memory [nnspec choice]."""
_FORMAT = 1


class UnverifiedWarning(UserWarning):
    """A run file was loaded without a check: its run directory has no manifest (older nnspec)."""


def digest(data: bytes) -> str:
    """sha256 of ``data`` in hex."""
    return hashlib.sha256(data).hexdigest()


def is_tracked(rel: str) -> bool:
    """Whether the file ``rel`` (relative to the run directory) is listed in the manifest."""
    return rel in TRACKED or rel.startswith(TRACKED_FOLDERS)


class Manifest:
    """The manifest of one run directory, as its (only) writer keeps it.

    Every method rewrites ``manifest.json`` atomically (temp file, fsync, rename); a lock makes
    the training thread and the writer thread take turns.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._lock = threading.Lock()
        self._files: dict[str, list[str]] | None = None

    def write(self, rel: str, data: bytes, *, fsync: bool = True) -> None:
        """Write ``data`` to ``run_dir/rel`` atomically, listed in the manifest."""
        new = digest(data)
        self._update(rel, add=new)
        try:
            atomic_write_bytes(self.run_dir / rel, data, fsync=fsync, make_parents=False)
        except BaseException:
            with contextlib.suppress(OSError):  # the file is unchanged: so is its entry
                self._update(rel, restore=True)
            raise
        self._update(rel, keep=new)

    def record(self, paths: Iterable[Path]) -> None:
        """List files written by another writer (``torch.distributed.checkpoint`` shards and
        their ``.metadata``): call it after the files are complete and synced."""
        for path in paths:
            rel = Path(path).resolve().relative_to(self.run_dir.resolve()).as_posix()
            self._update(rel, keep=digest(read_regular(Path(path), MAX_LOADED_BYTES)))

    def forget(self, rel: str) -> None:
        """Drop a deleted file (a pruned checkpoint) from the manifest."""
        self._update(rel, drop=True)

    def _update(
        self, rel: str, *, add: str | None = None, keep: str | None = None, drop: bool = False,
        restore: bool = False,
    ) -> None:  # fmt: skip
        with self._lock:
            if self._files is None:
                self._files = _read(self.run_dir) or {}
            if restore:  # undo `add`: the digest before it, or no entry
                old = self._files.get(rel, [])[:-1]
                if old:
                    self._files[rel] = old
                else:
                    self._files.pop(rel, None)
            elif drop:
                self._files.pop(rel, None)
            elif add is not None:
                self._files[rel] = [*self._files.get(rel, [])[-1:], add]
            elif keep is not None:
                self._files[rel] = [keep]
            body = {"format": _FORMAT, "algorithm": "sha256", "files": self._files}
            text = json.dumps(body, indent=1, sort_keys=True) + "\n"
            atomic_write_bytes(self.run_dir / MANIFEST, text.encode(), make_parents=False)


def _read(run_dir: Path) -> dict[str, list[str]] | None:
    """The manifest's file table; None when the run has none.

    Raises:
        CheckpointError: the manifest itself is damaged.
    """
    path = run_dir / MANIFEST
    try:
        raw = read_regular(path, 64 << 20)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise _damaged(path, f"cannot be read ({e})") from e
    try:
        body = json.loads(raw)
        files = body["files"]
        if not isinstance(files, dict) or not all(isinstance(v, list) for v in files.values()):
            raise TypeError("'files' is not a table of digests")
        return {str(k): [str(d) for d in v] for k, v in files.items()}
    except (ValueError, KeyError, TypeError) as e:
        raise _damaged(path, f"is not a valid manifest ({type(e).__name__})") from e


def _damaged(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        Problem(
            ("run_dir",),
            f"{path} {what}",
            fix="the run's files cannot be checked; restore the run directory from a copy, or "
            "train again",
        )
    )


def verified_bytes(run_dir: Path, path: Path, *, limit: int = MAX_LOADED_BYTES) -> bytes:
    """The content of ``path`` (a file of ``run_dir``), after checking it against the manifest.

    The bytes are read once and the same bytes are returned, so nothing can change between the
    check and the load. A FIFO, a device or a file over ``limit`` bytes is refused without
    blocking.

    Raises:
        CheckpointError: missing, not a regular file, too large, not listed, or its digest
            differs from every digest the manifest lists for it.
    """
    path = Path(path)
    try:
        data = read_regular(path, limit)
    except FileNotFoundError as e:
        raise _file_problem(path, "no such file", "check the run directory") from e
    except (OSError, ValueError) as e:
        raise _file_problem(path, f"cannot be read: {e}", "point at the run's own file") from e
    files = _read(Path(run_dir))
    if files is None:
        warnings.warn(
            f"{path} was loaded unverified: {run_dir} has no {MANIFEST} (written by an older "
            "nnspec)",
            UnverifiedWarning,
            stacklevel=2,
        )
        return data
    rel = _relative(Path(run_dir), path)
    if rel not in files:
        raise _file_problem(path, f"is not listed in {MANIFEST}: the run never finished writing "
                            "it, or it was put there by hand", "use a checkpoint the run wrote")
    if digest(data) not in files[rel]:
        raise _file_problem(path, "the file's content changed since the run wrote it (sha256 "
                            f"differs from {MANIFEST}): damaged or edited",
                            "restore it from a copy, or use another checkpoint of the run")
    return data


def verify_files(run_dir: Path, paths: Iterable[Path]) -> None:
    """Check each of ``paths`` against the manifest (a sharded checkpoint's shards and its
    ``.metadata``, before ``torch.distributed.checkpoint`` reads any of them with pickle).

    Raises:
        CheckpointError: the first file that fails :func:`verified_bytes`.
    """
    for path in paths:
        verified_bytes(run_dir, path)


def _relative(run_dir: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _file_problem(path: Path, message: str, fix: str) -> CheckpointError:
    return CheckpointError(Problem(("run_dir",), f"{path}: {message}", fix=fix))


def manifest_table(run_dir: Path) -> dict[str, Any]:
    """The manifest's file table as stored (tests and ``nnspec`` tools that list a run)."""
    return dict(_read(Path(run_dir)) or {})
