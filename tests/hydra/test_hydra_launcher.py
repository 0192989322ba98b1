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

from nnspec.cli.train import main as run
from nnspec.run.api import RunResult

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method"),
    pytest.mark.usefixtures("in_tmp"),  # tests/hydra/conftest.py
]

# one_gpu_per_trial=false: on a machine with GPUs, n_jobs=2 is not capped to their number
POOL = ["-m", "hydra/launcher=nnspec_pool", "hydra.launcher.n_jobs=2", "hydra.launcher.preload=[]",
        "hydra.launcher.one_gpu_per_trial=false"]  # fmt: skip
_SEEN_IN_PROCESS: list[int] = []  # module state a trial changes; must not reach the next trial


def _result(run_dir: Path, value: float) -> RunResult:
    return RunResult(run_dir, {"accuracy": 1 - value}, {"loss": value}, 1, "val_loss", value,
                     "min", 0.01, 10, 1)  # fmt: skip


def _meet(run_dir: Path, timeout: float = 30.0) -> bool:
    """Rendezvous of trials 2k and 2k+1: True when the partner started while this one ran (no
    sleep of a guessed length: a loaded machine only makes the wait longer)."""
    idx = int(run_dir.name)
    (run_dir.parent / f"started_{idx}").touch()
    partner = run_dir.parent / f"started_{idx ^ 1}"
    deadline = time.time() + timeout
    while not partner.exists() and time.time() < deadline:
        time.sleep(0.02)
    return partner.exists()


def timed_train(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
    """Records its process, its start/end times, whether its partner trial ran at the same time
    and what earlier trials left in module state."""
    start = time.time()
    seen = list(_SEEN_IN_PROCESS)
    _SEEN_IN_PROCESS.append(spec.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    met = _meet(run_dir)
    info = {"pid": os.getpid(), "start": start, "end": time.time(), "seen": seen,
            "threads": spec.train.num_threads, "met": met}  # fmt: skip
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
    assert all(i["met"] for i in infos)  # trials 0+1 and 2+3 ran at the same time
    events = sorted([(i["start"], 1) for i in infos] + [(i["end"], -1) for i in infos])
    running = [sum(d for _, d in events[: k + 1]) for k in range(len(events))]
    assert max(running) == 2  # and never more than n_jobs
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
    assert all(i["met"] for i in infos)  # each batch of two ran together
    # and the second batch started after the whole first batch ended (ask, run 2, tell, ask ...)
    assert min(infos[2]["start"], infos[3]["start"]) >= max(infos[0]["end"], infos[1]["end"])


def test_unknown_start_method_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*POOL, "hydra.launcher.start_method=threads", "seed=0,1", "hydra.sweep.dir=sw"]
    assert run(args, train_fn=timed_train) != 0
    err = capsys.readouterr().err
    assert "hydra.launcher.start_method" in err and "'threads'" in err
    assert "expected one of fork, forkserver, spawn" in err and "fix:" in err


@pytest.mark.parametrize(("n_jobs", "expected"), [(3, 3), (1, 1), (-1, "cores"), (-2, "cores-1")])
def test_n_jobs_follows_joblibs_convention(n_jobs: int, expected: int | str) -> None:
    from nnspec.hydra.plugins import effective_jobs

    cores = len(os.sched_getaffinity(0))
    want = {"cores": cores, "cores-1": max(1, cores - 1)}.get(expected, expected)  # type: ignore[call-overload]
    assert effective_jobs(n_jobs) == want


def test_one_job_is_not_parallel(in_tmp: Path) -> None:
    """n_jobs=1 runs one trial at a time: the spec's thread count is left alone."""
    one = [x.replace("n_jobs=2", "n_jobs=1") for x in POOL]
    assert run([*one, "seed=0", "hydra.sweep.dir=sw"], train_fn=quick_train) == 0
    assert json.loads((in_tmp / "sw" / "0" / "info.json").read_text())["threads"] is None


def quick_train(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "info.json").write_text(json.dumps({"threads": spec.train.num_threads}))
    return _result(run_dir, 0.1)


_SLEEPER = """
import os, sys, time
from pathlib import Path
from nnspec.cli.train import main as run

def sleeper(spec, *, run_dir, base_dir=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "pid").write_text(str(os.getpid()))
    time.sleep(120)

sys.exit(run(["-m", "hydra/launcher=nnspec_pool", "hydra.launcher.n_jobs=2",
              "hydra.launcher.preload=[]", "seed=0,1,2", "hydra.sweep.dir=sw"], train_fn=sleeper))
"""


def test_sigterm_to_the_sweep_stops_its_running_trials(in_tmp: Path) -> None:
    import subprocess

    (in_tmp / "sweep.py").write_text(_SLEEPER)
    parent = subprocess.Popen([sys.executable, "sweep.py"], cwd=in_tmp)
    pid_files = [in_tmp / "sw" / str(i) / "pid" for i in (0, 1)]
    try:
        deadline = time.time() + 120
        while not all(p.exists() and p.read_text() for p in pid_files):
            assert parent.poll() is None and time.time() < deadline, "the trials did not start"
            time.sleep(0.05)
        pids = [int(p.read_text()) for p in pid_files]
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) != 0
    finally:
        if parent.poll() is None:
            parent.kill()
    for pid in pids:  # terminated and reaped by the launcher, not left training as orphans
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (in_tmp / "sw" / "2").exists()  # the queued trial never started


@pytest.mark.parametrize(
    ("env", "gpus"),
    [("3,5", ["3", "5"]), ("", []), ("-1", []), ("0,-1,1", ["0"]), (" 2 , 7", ["2", "7"]),
     ("GPU-aa,GPU-bb", ["GPU-aa", "GPU-bb"])],
)  # fmt: skip
def test_visible_gpus_read_cuda_visible_devices_as_cuda_does(
    monkeypatch: pytest.MonkeyPatch, env: str, gpus: list[str]
) -> None:
    from hydra_plugins.nnspec_pool_launcher.launcher import visible_gpus

    monkeypatch.setattr("torch.cuda.device_count", lambda: 8)  # ignored: the variable is set
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    assert visible_gpus() == gpus
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus() == [str(i) for i in range(8)]


def gpu_train(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
    """Records the GPUs its process may see, and when it ran."""
    start = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    met = _meet(run_dir)
    info = {"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time(),
            "met": met}  # fmt: skip
    (run_dir / "info.json").write_text(json.dumps(info))
    return _result(run_dir, 0.1 * spec.seed)


def test_each_trial_gets_one_gpu_to_itself(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)  # a faked 2-GPU machine
    pool = [x.replace("n_jobs=2", "n_jobs=3") for x in POOL[:-1]]  # one_gpu_per_trial (default)
    assert run([*pool, "seed=0,1,2,3", "hydra.sweep.dir=sw"], train_fn=gpu_train) == 0
    infos = [json.loads((in_tmp / "sw" / str(i) / "info.json").read_text()) for i in range(4)]
    assert all(i["gpus"] in ("0", "1") for i in infos)  # one GPU each, named alone
    assert all(i["met"] for i in infos)  # two at a time, as many as GPUs (n_jobs=3 capped)
    events = sorted([(i["start"], 1) for i in infos] + [(i["end"], -1) for i in infos])
    assert max(sum(d for _, d in events[: k + 1]) for k in range(len(events))) == 2
    for a in infos:  # trials that ran at the same time never shared a GPU
        for b in infos:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["gpus"] != b["gpus"], (a, b)
    assert os.environ.get("CUDA_VISIBLE_DEVICES") is None  # the launching process is unchanged


def test_without_one_gpu_per_trial_trials_see_every_gpu(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert run([*POOL, "seed=0,1", "hydra.sweep.dir=sw"], train_fn=gpu_train) == 0
    infos = [json.loads((in_tmp / "sw" / str(i) / "info.json").read_text()) for i in range(2)]
    assert [i["gpus"] for i in infos] == ["4,6", "4,6"] and all(i["met"] for i in infos)
