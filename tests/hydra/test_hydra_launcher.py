"""`hydra/launcher=nnspec_pool`: one forked process per trial, n_jobs at a time (fake trainers).

Real training through the launcher (and its forkserver start method) is in test_hydra_e2e.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nnspec.hydra.app import run
from nnspec.run.api import RunResult

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method"),
    pytest.mark.usefixtures("in_tmp"),  # tests/hydra/conftest.py
]

POOL = ["-m", "hydra/launcher=nnspec_pool", "hydra.launcher.n_jobs=2", "hydra.launcher.preload=[]"]
_SEEN_IN_PROCESS: list[int] = []  # module state a trial changes; must not reach the next trial


def _result(run_dir: Path, value: float) -> RunResult:
    return RunResult(run_dir, {"accuracy": 1 - value}, {"loss": value}, 1, "val_loss", value,
                     "min", 0.01, 10, 1)  # fmt: skip


def timed_train(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
    """Records its process, its start/end times and what earlier trials left in module state."""
    start = time.time()
    seen = list(_SEEN_IN_PROCESS)
    _SEEN_IN_PROCESS.append(spec.seed)
    time.sleep(0.4)
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"pid": os.getpid(), "start": start, "end": time.time(), "seen": seen,
            "threads": spec.train.num_threads}  # fmt: skip
    (run_dir / "info.json").write_text(json.dumps(info))
    return _result(run_dir, 0.1 * spec.seed)


def dying_train(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
    """Seed 1's process is killed mid-trial (as the OOM killer would); the others succeed."""
    if spec.seed == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    run_dir.mkdir(parents=True, exist_ok=True)
    return _result(run_dir, 0.1 * spec.seed)


def _rows(sweep: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep / "sweep_summary.csv").read_text().splitlines()))


def test_trials_run_n_jobs_at_a_time_each_in_a_fresh_process(in_tmp: Path) -> None:
    assert run([*POOL, "seed=0,1,2,3", "hydra.sweep.dir=sw"], train_fn=timed_train) == 0
    infos = [json.loads((in_tmp / "sw" / str(i) / "info.json").read_text()) for i in range(4)]
    assert len({i["pid"] for i in infos}) == 4 and os.getpid() not in {i["pid"] for i in infos}
    assert all(i["seen"] == [] for i in infos)  # no trial sees another trial's module state
    assert _SEEN_IN_PROCESS == []  # nor does the launching process
    assert {i["threads"] for i in infos} == {1}  # parallel trials: one torch thread each
    # at most 2 at once, and 2 did overlap (each sleeps 0.4 s; starting a trial takes ms)
    events = sorted([(i["start"], 1) for i in infos] + [(i["end"], -1) for i in infos])
    running = [sum(d for _, d in events[: k + 1]) for k in range(len(events))]
    assert max(running) == 2
    table = _rows(in_tmp / "sw")
    assert [r["trial"] for r in table] == ["0", "1", "2", "3"]  # sorted by objective = seed
    assert {r["status"] for r in table} == {"ok"}


def test_a_killed_trial_is_recorded_as_failed_and_the_sweep_goes_on(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*POOL, "seed=0,1,2", "hydra.sweep.dir=sw"], train_fn=dying_train) == 1
    table = {r["trial"]: r for r in _rows(in_tmp / "sw")}
    assert [table[t]["status"] for t in "012"] == ["ok", "failed", "ok"]
    assert "killed by SIGKILL" in table["1"]["reason"]
    record = json.loads((in_tmp / "sw" / "1" / "trial.json").read_text())
    assert record["overrides"] == ["seed=1"] and record["status"] == "failed"
    assert "1 of 3 trials failed" in capsys.readouterr().out


def test_optuna_batches_follow_the_pool_size(in_tmp: Path) -> None:
    args = [*POOL, "hydra/sweeper=nnspec_optuna", "hydra.sweeper.n_trials=4",
            "optim.lr=interval(1e-4, 1e-1)", "hydra.sweep.dir=study"]  # fmt: skip
    assert run(args, train_fn=timed_train) == 0
    infos = [json.loads((in_tmp / "study" / str(i) / "info.json").read_text()) for i in range(4)]
    starts = sorted(i["start"] for i in infos)
    ends = sorted(i["end"] for i in infos)
    # two batches of two: the second batch starts after the whole first batch ended
    assert starts[1] < ends[0] and starts[2] >= ends[1]


def test_unknown_start_method_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*POOL, "hydra.launcher.start_method=threads", "seed=0,1", "hydra.sweep.dir=sw"]
    assert run(args, train_fn=timed_train) != 0
    err = capsys.readouterr().err
    assert "hydra.launcher.start_method" in err and "'threads'" in err and "fork" in err


@pytest.mark.parametrize(("n_jobs", "expected"), [(3, 3), (1, 1), (-1, "cores"), (-2, "cores-1")])
def test_n_jobs_follows_joblibs_convention(n_jobs: int, expected: int | str) -> None:
    from hydra_plugins.nnspec_pool_launcher.launcher import effective_jobs

    cores = len(os.sched_getaffinity(0))
    want = {"cores": cores, "cores-1": max(1, cores - 1)}.get(expected, expected)  # type: ignore[call-overload]
    assert effective_jobs(n_jobs) == want
