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

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "create_run_dir",
    "first_missing",
    "removed_on_error",
    "file_kind",
    "read_regular",
    "MAX_RUN_NAME",
]

MAX_RUN_NAME = 200
"""Longest run-directory name :func:`create_run_dir` makes (file systems allow 255 bytes; the
collision suffix and the temp files' ``.NAME.HEX.tmp`` need the rest) [nnspec choice]."""


def atomic_write_bytes(
    path: Path, data: bytes, *, fsync: bool = True, make_parents: bool = True
) -> None:
    """Write ``data`` to ``path`` through a temp file, an optional fsync and a rename.

    Args:
        path: the destination; its folder is created when missing.
        data: the whole new content.
        fsync: flush to disk before the rename (``False`` keeps atomicity against a killed
            process but not against a power cut; for files rewritten often).
        make_parents: create missing folders (``False``: a missing folder is an error; a run
            writer never re-creates a run folder deleted under it).
    """
    if make_parents:
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


def create_run_dir(parent: Path, stem: str) -> Path:
    """Create a new, empty run directory ``parent/stem`` exclusively and return it.

    Two processes started in the same second ask for the same stem: ``mkdir`` (atomic; it fails
    when the folder exists) decides which one gets it, and the other takes the first free
    ``stem-1``, ``stem-2``, ... The parent folders are created when missing. Under torchrun only
    rank 0 calls this and broadcasts the path (the other ranks never create a folder).

    Raises:
        OSError: the folder cannot be created (read-only file system, permissions, full disk);
            callers turn it into an error that names the output directory.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> [create_run_dir(root, "20250101-120000").name for _ in range(3)]
        ['20250101-120000', '20250101-120000-1', '20250101-120000-2']
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        path = parent / (stem if n == 0 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def file_kind(path: Path) -> str | None:
    """``None`` for a regular file (links followed); otherwise what ``path`` is, in words.

    Example:
        >>> file_kind(Path("/dev/null")), file_kind(Path("/no/such/file"))
        ('a character device', 'missing')
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO (named pipe)",
             stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
             stat.S_ISSOCK: "a socket"}  # fmt: skip
    return next((word for test, word in kinds.items() if test(mode)), "not a regular file")


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, read without blocking.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a FIFO
    or a device put where a file was expected is refused instead of hanging the reader or
    filling memory (``/dev/zero``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a regular file, or larger than ``limit`` (the message says which).
        OSError: it cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is {file_kind(path) or 'not a regular file'}")
        if st.st_size > limit:
            raise ValueError(f"{path} has {st.st_size} bytes, more than the limit of {limit}")
        data = fh.read(st.st_size + 1)  # a bounded read; one byte more shows a growing file
    if len(data) > min(limit, st.st_size):  # it grew while we read
        raise ValueError(f"{path} has more than the limit of {limit} bytes")
    return data


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None when ``path`` exists)."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


@contextlib.contextmanager
def removed_on_error(created: Path | None, fresh: Path | None = None) -> Iterator[None]:
    """Remove the (still empty) run folder this run created when the block fails, and the empty
    parents it created with it, up to ``fresh`` (nothing half-made stays on disk)."""
    try:
        yield
    except BaseException:
        folders = [created, *created.parents] if created is not None else []
        for folder in folders:
            try:
                folder.rmdir()  # only an empty folder: another run's files are never touched
            except OSError:
                break
            if fresh is None or folder == fresh:
                break
        raise
