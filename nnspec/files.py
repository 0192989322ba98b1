"""Atomic file writes: nothing half-written on disk after a failure (house rule).

Every writer goes through a temp file in the destination folder and an ``os.replace``, which is
atomic on POSIX and Windows, so a reader (or a resumed run) sees the old file or the new one.
Only the standard library is imported: the CLI, the Hydra adapter and the report use this without
loading torch.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "a" / "out.txt"
    >>> atomic_write(target, "hello\\n")
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('hello\\n', ['out.txt'])
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes"]


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` through a temp file, an optional fsync and a rename.

    Args:
        path: the destination; its folder is created when missing.
        data: the whole new content.
        fsync: flush to disk before the rename (``False`` keeps atomicity against a killed
            process but not against a power cut; for files rewritten often).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # no temp file left behind either
        raise


def atomic_write(path: Path, text: str, *, fsync: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)
