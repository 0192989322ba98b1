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
import secrets
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
    path.parent.mkdir(parents=True, exist_ok=True)  # folders: 0o777 less the umask
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no temp file left behind either
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, exclusive temp file next to ``path``, with the mode any other tool's output gets.

    ``tempfile.mkstemp`` creates its files 0600 (private), and the rename would carry that mode
    to the output; ``os.open`` with 0o666 lets the kernel apply the process umask instead (0644
    under umask 022), without reading the umask (``os.umask`` sets it, process-wide, to read it).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - a name collision: draw again
            continue


def atomic_write(path: Path, text: str, *, fsync: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)
