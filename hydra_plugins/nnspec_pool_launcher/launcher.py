"""The launcher: one child process per trial, ``n_jobs`` at a time, results in submission order.

Why our own: Hydra's joblib launcher hard-codes joblib's loky backend, whose workers are fresh
interpreters; each re-imports torch, scikit-learn and Hydra (seconds), which on short trials eats
most of the parallel speed-up. This launcher imports the training stack once in the launching
process and forks each trial from it (Linux), so trials start warm. The parent has run no torch
operation (composition and validation are pure Python), so no intra-op thread pool exists at the
fork; each parallel trial uses one torch thread unless the spec says otherwise (nnspec's task).
Called from a process that has already run torch operations with several threads (a notebook, a
test session), a trial that sets ``train.num_threads`` above 1 risks OpenMP's known hang after
fork; use ``start_method=forkserver`` there.

A process per trial (not a pool of long-lived workers) isolates trials completely: nothing one
trial changes in its process (RNG state, imported modules, working directory, memory) reaches the
next, and a trial whose process dies (killed, out of memory, a crash in native code) is recorded as
failed in its job directory while the other trials go on.

Where fork is not the default (macOS, Windows), ``forkserver`` (with ``preload`` imported once by
the server) or ``spawn`` is used; the task, Hydra's context and config are then pickled to each
child.

Where GPUs are visible (``CUDA_VISIBLE_DEVICES``' entries when it is set, else torch's device
count, which reads NVML and does not initialise CUDA, so forking stays safe), each trial gets one
of them to itself: its process starts with ``CUDA_VISIBLE_DEVICES`` naming that GPU alone (so the
trial's ``cuda`` is ``cuda:0``), at most one trial per GPU runs at a time, and a GPU is handed to
the next trial when its trial ends. ``one_gpu_per_trial=false`` lets every trial see every GPU.
"""

# No `from __future__ import annotations`: Hydra's plugin scan executes this module without
# registering it in sys.modules.
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.nnspec_pool_launcher.lifeline import die_with_parent
from nnspec._heap import warm
from nnspec.hydra.plugins import effective_jobs

__all__ = ["NNSpecPoolLauncher", "default_start_method"]

log = logging.getLogger(__name__)
START_METHODS = ("fork", "forkserver", "spawn")


def default_start_method() -> str:
    """fork on Linux (warm and cheap); elsewhere forkserver where it exists, else spawn."""
    available = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in available:
        return "fork"
    return "forkserver" if "forkserver" in available else "spawn"


@dataclass(frozen=True)
class _Shared:
    """What every trial's process needs from the launcher (pickled for forkserver/spawn)."""

    hydra_context: HydraContext
    config: DictConfig
    task_function: TaskFunction
    singleton_state: dict[Any, Any]


@dataclass(frozen=True)
class _Job:
    idx: int
    overrides: list[str]


def visible_gpus() -> list[str]:
    """The GPUs this process may hand out, as ``CUDA_VISIBLE_DEVICES`` entries.

    ``CUDA_VISIBLE_DEVICES`` when set (its entries up to the first ``-1``, as CUDA reads it;
    indices or ``GPU-...`` UUIDs), else ``0 .. n-1`` for torch's device count (0 without CUDA).
    """
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text is not None:
        out = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry or entry.startswith("-"):
                break
            out.append(entry)
        return out
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _sweep_config(shared: _Shared, job: _Job) -> DictConfig:
    """The trial's composed config, numbered as Hydra's own launchers number it."""
    cfg = shared.hydra_context.config_loader.load_sweep_config(shared.config, job.overrides)
    with open_dict(cfg):
        cfg.hydra.job.id = f"{cfg.hydra.job.name}_{job.idx}"
        cfg.hydra.job.num = job.idx
    return cfg


def _execute(shared: _Shared, job: _Job) -> JobReturn:
    setup_globals()
    Singleton.set_state(shared.singleton_state)
    cfg = _sweep_config(shared, job)
    HydraConfig.instance().set_config(cfg)
    return run_job(
        hydra_context=shared.hydra_context,
        config=cfg,
        task_function=shared.task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def _child(
    conn: Connection, shared: "_Shared | bytes", job: _Job, parent: int = 0, gpu: str | None = None
) -> None:
    """Body of a trial's process: run the job, send its JobReturn back through the pipe."""
    if gpu is not None:  # before anything could initialise CUDA: this trial's GPU alone
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    # The launching process handles Ctrl-C (it terminates the trials); a child that also raised
    # KeyboardInterrupt would print a second traceback per trial. First, before the (slow)
    # unpickling of a forkserver/spawn payload.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked trial inherits the launcher's SIGTERM handler; terminate() must end it, plainly.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent)  # a launcher killed with SIGKILL takes its (forked) trials along
    if isinstance(shared, bytes):
        shared = pickle.loads(shared)  # our own payload, from the launching process
    assert isinstance(shared, _Shared)
    try:
        ret = _execute(shared, job)
    except BaseException as e:  # a failure outside the task (composition, logging set-up)
        ret = JobReturn(overrides=job.overrides, status=JobStatus.FAILED, _return_value=e)
    # Configs travel back as plain containers: their structured-config classes (Hydra's plugin
    # configs) may be re-created in this process and then do not pickle by reference.
    ret.cfg, ret.hydra_cfg = _plain(ret.cfg), _plain(ret.hydra_cfg)
    try:
        conn.send(ret)
    except Exception as e:  # a result or an exception that does not pickle
        reason = RuntimeError(f"the trial's result could not be sent back: {e}")
        conn.send(JobReturn(overrides=job.overrides, status=JobStatus.FAILED, _return_value=reason))
    finally:
        conn.close()


def _plain(cfg: DictConfig | None) -> DictConfig | None:
    if cfg is None:
        return None
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))  # type: ignore[return-value]


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = (
            " (the kernel's out-of-memory killer sends it too: fewer hydra.launcher.n_jobs "
            "or a smaller batch may help)"
            if name == "SIGKILL"
            else ""
        )
        return f"the trial's process was killed by {name}{hint}"
    return f"the trial's process exited with code {exitcode} before reporting a result"


class NNSpecPoolLauncher(Launcher):
    """``hydra/launcher=nnspec_pool``: parallel trials on this machine, each in its own process."""

    def __init__(
        self,
        n_jobs: int = -1,
        start_method: str | None = None,
        preload: Sequence[str] | None = None,
        one_gpu_per_trial: bool = True,
    ) -> None:
        method = start_method or default_start_method()
        if method not in multiprocessing.get_all_start_methods():
            available = multiprocessing.get_all_start_methods()
            known = ", ".join(m for m in START_METHODS if m in available)
            raise ValueError(
                f"hydra.launcher.start_method: expected one of {known}, found {start_method!r}; "
                "fix: leave it unset (the platform's best) or choose one of those"
            )
        self.n_jobs = effective_jobs(n_jobs)
        self.start_method = method
        self.preload = None if preload is None else list(preload)
        self.one_gpu_per_trial = one_gpu_per_trial
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self._preloaded = False

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context
        if self.preload is None:  # nnspec train's task carries what a job imports first
            self.preload = list(getattr(task_function, "preload", ()))

    def _context(self) -> Any:
        ctx = multiprocessing.get_context(self.start_method)
        if not self._preloaded:
            if self.start_method == "fork":
                # imported once here: trials start warm; under the console script the heap is
                # then frozen, so their collections neither walk nor write to the inherited
                # objects (nnspec._heap)
                warm(self.preload or (), what="hydra.launcher.preload")
            elif self.start_method == "forkserver":
                ctx.set_forkserver_preload(self.preload or [])
            self._preloaded = True
        return ctx

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        ctx = self._context()  # imports the preload first: torch's device count is then cheap
        gpus = visible_gpus() if self.one_gpu_per_trial else []
        n_jobs = min(self.n_jobs, len(gpus)) if gpus else self.n_jobs
        on = f", one GPU each of {','.join(gpus)}" if gpus else ""
        log.info(
            "Launching %d jobs, %d at a time (%s%s), sweep output dir: %s",
            len(job_overrides), n_jobs, self.start_method, on, sweep_dir,
        )  # fmt: skip
        jobs = [_Job(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        for job in jobs:
            log.info("\t#%d : %s", job.idx, " ".join(filter_overrides(job.overrides)))
        shared = _Shared(self.hydra_context, self.config, self.task_function, Singleton.get_state())
        return _run_all(ctx, n_jobs, shared, jobs, self.start_method == "fork", gpus)


def _run_all(
    ctx: Any, n_jobs: int, shared: _Shared, jobs: list[_Job], forked: bool,
    gpus: Sequence[str] = (),
) -> list[JobReturn]:  # fmt: skip
    # A forked child inherits the payload as is. Otherwise it is pickled, by cloudpickle as
    # Hydra's joblib launcher does: Hydra's state holds OmegaConf resolvers that are local
    # functions, which the standard pickler refuses. Pickled once, not once per trial.
    payload: _Shared | bytes = shared
    if not forked:
        import cloudpickle

        payload = cloudpickle.dumps(shared)
    pending = deque(enumerate(jobs))
    free = deque(gpus)  # GPUs no running trial holds (n_jobs <= len(gpus) where there are any)
    running: dict[Connection, tuple[int, Any]] = {}
    held: dict[Connection, str] = {}
    results: list[JobReturn | None] = [None] * len(jobs)
    with _terminate_raises():
        try:
            while pending or running:
                while pending and len(running) < n_jobs:
                    pos, job = pending.popleft()
                    recv, send = ctx.Pipe(duplex=False)
                    gpu = free.popleft() if free else None
                    proc = ctx.Process(
                        target=_child,
                        args=(send, payload, job, os.getpid() if forked else 0, gpu),
                        name=f"nnspec-trial-{job.idx}",
                    )
                    proc.start()
                    send.close()  # the child holds the only write end: EOF means it died
                    running[recv] = (pos, proc)
                    if gpu is not None:
                        held[recv] = gpu
                for conn in wait(list(running)):
                    pos, proc = running[conn]  # type: ignore[index]
                    results[pos] = _collect(conn, proc, shared, jobs[pos])
                    del running[conn]  # type: ignore[arg-type]  # joined: nothing left to stop
                    if conn in held:  # the trial's process is gone: its GPU is free
                        free.append(held.pop(conn))  # type: ignore[arg-type]
        finally:
            for _, proc in running.values():  # Ctrl-C, SIGTERM or an error: stop the trials
                proc.terminate()
            for conn, (_, proc) in running.items():
                _join(proc)
                conn.close()
    assert all(r is not None for r in results), "a trial's result was lost"
    return results  # type: ignore[return-value]


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM (a scheduler's time limit, a closed session) ends the sweep like Ctrl-C does: the
    running trials are terminated instead of training on as orphans."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def _raise(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler set outside Python, which cannot be restored
            signal.signal(signal.SIGTERM, previous)


# A trial that has sent its result (or closed its pipe) but does not exit (a stray non-daemon thread
# in user code) is stopped after this long, so it cannot hold up the sweep.
_EXIT_GRACE_S = 10.0


def _join(proc: Any) -> bool:
    """Wait for a trial's process; kill it after the grace period. True when it exited itself."""
    proc.join(_EXIT_GRACE_S)
    if proc.is_alive():
        log.warning("trial process %s did not exit; stopping it", proc.name)
        proc.kill()
        proc.join()
        return False
    return True


def _collect(conn: Connection, proc: Any, shared: _Shared, job: _Job) -> JobReturn:
    try:
        ret: JobReturn | None = conn.recv()
        reason = ""
    except EOFError:
        ret, reason = None, ""
    except Exception as e:  # a result that cannot be rebuilt here (unpicklable exception class)
        ret, reason = None, f"its result could not be read: {type(e).__name__}: {e}"
    finally:
        conn.close()
    exited = _join(proc)
    if ret is not None:
        return ret
    if exited and proc.exitcode != 0:  # a result cut short by the process's death: say so
        reason = _death_reason(proc.exitcode)
    elif not reason:
        reason = (
            _death_reason(proc.exitcode)
            if exited
            else f"it sent no result and did not exit within {_EXIT_GRACE_S:.0f} s; stopped"
        )
    log.error("trial #%d failed: %s", job.idx, reason)
    return _died(shared, job, reason)


def _died(shared: _Shared, job: _Job, reason: str) -> JobReturn:
    """A trial whose process died: recorded as failed in its job directory, like any failed trial.

    Its JobReturn is COMPLETED with no value (nnspec's task reports its own failures that way), so
    Hydra's basic sweeper does not abort the sweep and the Optuna sweeper tells the trial as FAIL.
    """
    from nnspec.hydra.trial import TrialRecord, write_record

    cfg = _sweep_config(shared, job)
    job_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
    job_dir.mkdir(parents=True, exist_ok=True)
    write_record(job_dir, TrialRecord.failed(job.overrides, f"WorkerDied: {reason}"))
    task_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return JobReturn(
        overrides=job.overrides,
        cfg=task_cfg,
        hydra_cfg=cfg,
        working_dir=str(job_dir),
        task_name=str(cfg.hydra.job.name),
        status=JobStatus.COMPLETED,
        _return_value=None,
    )
