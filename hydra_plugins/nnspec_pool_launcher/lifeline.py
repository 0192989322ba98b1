"""A trial's process dies with the process that launched it.

Without this, a SIGKILL of only the launching ``nnspec train -m`` (the OOM killer, ``kill -9``)
left its trials training unsupervised, writing into a sweep no one would report. On Linux the
kernel's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) ends the trial when its parent
goes; elsewhere nothing is set (the trials then finish on their own).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent exits; exit now when the parent
    is already gone (``parent``: its pid, or 0 when the parent is a forkserver, which itself
    ends with the launcher)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl (an unusual libc): the old behaviour
        return
    if parent and os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
