"""A trial that runs in a worker process of its launcher dies with the launcher.

Hydra's joblib launcher (loky) and other process pools start their workers as children of the
launching ``nnspec train -m``. A SIGKILL of only that process (the OOM killer, ``kill -9``) left
them training unsupervised, writing into a sweep no one would report. Each job notes whether it
runs in a direct child of the launcher; there, one daemon thread per process checks the parent
every half second and ends the worker (SIGKILL, as the launcher went) once the parent is gone.
nnspec's own pool launcher also arms the kernel's parent-death signal
(``hydra_plugins/nnspec_pool_launcher/lifeline.py``). A job in the launcher's own process
(Hydra's basic launcher, threads) or farther away (a cluster's scheduler) is left alone.
"""

from __future__ import annotations

import os
import signal
import threading
import time

__all__ = ["follow_launcher"]

_PERIOD_S = 0.5
_watching: set[int] = set()  # the launcher pids this process already follows
_lock = threading.Lock()


def follow_launcher(launcher: int) -> bool:
    """End this process when ``launcher`` (its parent's pid) is gone; whether it now follows it.

    Example:
        >>> follow_launcher(os.getpid())  # the launcher's own process: nothing to follow
        False
    """
    if launcher == os.getpid() or os.getppid() != launcher:
        return False
    with _lock:
        if launcher not in _watching:
            _watching.add(launcher)
            threading.Thread(
                target=_watch, args=(launcher,), name="nnspec-lifeline", daemon=True
            ).start()
    return True


def _watch(launcher: int) -> None:
    while os.getppid() == launcher:
        time.sleep(_PERIOD_S)
    kill = getattr(signal, "SIGKILL", None)  # POSIX; elsewhere exit at once
    if kill is None:
        os._exit(1)
    os.kill(os.getpid(), kill)
