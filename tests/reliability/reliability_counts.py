"""The reliability suite's counters (summed and printed by this folder's conftest.py)."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()


def count(key: str, n: int = 1) -> None:
    """Add ``n`` to one of the suite's counters."""
    COUNTS[key] += n
