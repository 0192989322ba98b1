"""Repair of the Optuna journal file a killed sweep can leave behind.

Optuna's ``JournalFileBackend`` appends one JSON record per line. A process killed in the middle
of an append leaves a last line without its newline: Optuna skips it while reading, but the next
append lands on the same line, and from then on the journal fails to load (a JSON error in the
middle). Before a sweep opens its journal, an incomplete last line is cut off (and kept in
``<journal>.torn`` for inspection). Written for the journal format of Optuna 5 (the major
version the ``optuna`` pin in pyproject.toml allows; Optuna 4 writes the same records).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repair_journal"]

_TAIL = 1 << 20  # a record is far smaller; look this far back for the last newline


def repair_journal(path: Path) -> int:
    """Cut an incomplete last record off the journal at ``path``; returns the bytes removed."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with path.open("r+b") as fh:
        start = max(0, size - _TAIL)
        fh.seek(start)
        tail = fh.read()
        if tail.endswith(b"\n"):
            return 0
        cut = start + tail.rfind(b"\n") + 1 if b"\n" in tail else start
        fh.seek(cut)
        fragment = fh.read()
        path.with_name(path.name + ".torn").write_bytes(fragment)
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())
    return len(fragment)
