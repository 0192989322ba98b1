"""`nnspec train` through Hydra, in-process, with a fake trainer (real training: test_hydra_e2e)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from nnspec.cli.common import UsageError
from nnspec.cli.parser import parse
from nnspec.cli.train import invocation
from nnspec.cli.train import main as run
from nnspec.errors import TrainError
from nnspec.hydra.presets import EXAMPLES_DIR
from nnspec.run.api import RunResult

pytestmark = pytest.mark.usefixtures("in_tmp")  # tests/hydra/conftest.py


def fake_train(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
    """Objective = distance of lr from 0.003; lr >= 0.5 'diverges' like the NaN guard would."""
    if spec.optim.lr >= 0.5:
        raise TrainError("loss became NaN at step 3")
    run_dir.mkdir(parents=True, exist_ok=True)
    value = abs(spec.optim.lr - 0.003) + 0.001 * spec.seed
    (run_dir / "summary.json").write_text(json.dumps({"best_value": value}))
    return RunResult(run_dir, {"accuracy": 1 - value}, {"loss": value}, 1, "val_loss", value,
                      "min", 0.01, 10, 1)  # fmt: skip


def _rows(sweep: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep / "sweep_summary.csv").read_text().splitlines()))


def test_the_cli_grammar_gives_the_app_its_invocation() -> None:
    args = parse(["train", "my.yaml", "optim=sgd", "-m", "--cfg", "job", "--dry-run", "seed=1,2"])
    inv = invocation(args)
    assert inv.spec_path == Path("my.yaml") and inv.multirun and inv.dry_run
    assert inv.overrides == ["optim=sgd", "seed=1,2"] and inv.flags == ["--cfg", "job"]
    assert inv.inspect_only and inv.base_dir == Path("my.yaml").resolve().parent


def test_invalid_single_run_fails_before_anything_is_written(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["optim.lrr=1"], train_fn=fake_train) == 2
    assert "did you mean 'lr'?" in capsys.readouterr().err
    assert run(["optim.lr=-1"], train_fn=fake_train) == 2
    assert "override 'optim.lr=-1'" in capsys.readouterr().err
    # a resume directory that does not exist (was a failed run with a job dir, exit 1)
    assert run(["train.resume=no/such/run"], train_fn=fake_train) == 2
    assert "train.resume: no run directory no/such/run" in capsys.readouterr().err
    assert list(in_tmp.iterdir()) == []


def test_single_run_writes_into_the_hydra_job_dir(in_tmp: Path) -> None:
    assert run(["train.epochs=1", "hydra.run.dir=out"], train_fn=fake_train) == 0
    record = json.loads((in_tmp / "out" / "trial.json").read_text())
    assert record["status"] == "ok" and record["overrides"] == ["train.epochs=1"]
    assert (in_tmp / "out" / "summary.json").is_file()
    assert "epochs: 1" in (in_tmp / "out" / ".hydra" / "config.yaml").read_text()


def test_failed_single_run_exits_1_with_nnspec_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["optim.lr=0.9", "hydra.run.dir=out"], train_fn=fake_train) == 1
    assert "loss became NaN" in capsys.readouterr().err


def test_grid_sweep_isolates_the_failing_trial(in_tmp: Path) -> None:
    code = run(
        ["-m", "optim=adam,sgd", "optim.lr=0.003,0.9", "hydra.sweep.dir=sweep"], train_fn=fake_train
    )
    assert code == 1  # one configuration failed: the sweep says so
    rows = _rows(in_tmp / "sweep")
    assert len(rows) == 4 and sorted(r["status"] for r in rows) == ["failed", "failed", "ok", "ok"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert {r["overrides"] for r in failed} == {"optim=adam optim.lr=0.9", "optim=sgd optim.lr=0.9"}
    assert all(r["reason"] == "TrainError: loss became NaN at step 3" for r in failed)
    assert rows[0]["status"] == "ok" and (in_tmp / "sweep" / "best_spec.yaml").is_file()


def test_optuna_sweep_resumes_from_its_journal(in_tmp: Path) -> None:
    args = ["-m", "hydra/sweeper=nnspec_optuna", "optim.lr=tag(log, interval(1e-4, 0.1))"]
    args += ["hydra.sweep.dir=study", "hydra.sweeper.sampler=random"]
    assert run([*args, "hydra.sweeper.n_trials=2"], train_fn=fake_train) == 0
    assert run([*args, "hydra.sweeper.n_trials=4"], train_fn=fake_train) == 0
    rows = _rows(in_tmp / "study")
    assert sorted(r["trial"] for r in rows) == ["0", "1", "2", "3"]
    assert len({r["overrides"] for r in rows}) == 4  # the resumed sampler did not replay
    assert (in_tmp / "study" / "optuna_journal.log").is_file()


def test_dry_run_validates_every_trial_and_trains_nothing(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["-m", "optim=adam,sgd", "seed=0,1", "--dry-run"], train_fn=fake_train) == 0
    out = capsys.readouterr().out
    assert "dry run: 4 trials" in out and out.count("valid") == 4
    assert run(["-m", "optim.lr=1e-3,-1", "--dry-run"], train_fn=fake_train) == 2
    assert "invalid" in capsys.readouterr().out
    assert list(in_tmp.iterdir()) == []


def test_cfg_job_prints_the_composed_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--cfg", "job", "optim=sgd"], train_fn=fake_train) == 0
    out = capsys.readouterr().out
    assert "kind: sgd" in out and "input_shape:" in out


def test_hydra_help_reaches_hydra(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--hydra-help"], train_fn=fake_train) == 0
    out = capsys.readouterr().out
    assert "== Flags ==" in out and "hydra/sweeper: basic, nnspec_optuna" in out


def test_user_spec_file_with_overrides(in_tmp: Path) -> None:
    spec = in_tmp / "iris.yaml"
    spec.write_text((EXAMPLES_DIR / "iris_mlp.yaml").read_text())
    assert run([str(spec), "train.epochs=5", "hydra.run.dir=out"], train_fn=fake_train) == 0
    assert "epochs: 5" in (in_tmp / "out" / ".hydra" / "config.yaml").read_text()
    assert "sklearn:iris" in (in_tmp / "out" / ".hydra" / "config.yaml").read_text()


def _readme_sweep_commands() -> list[list[str]]:
    import shlex

    text = (EXAMPLES_DIR.parent / "README.md").read_text()
    section = text.split("## Sweeps", 1)[1].split("\n## ", 1)[0]
    joined = section.replace("\\\n", " ")
    return [
        shlex.split(line.split("#", 1)[0])[2:]
        for line in joined.splitlines()
        if line.strip().startswith("nnspec train -m")
    ]


def test_readme_sweep_commands_dry_run_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _readme_sweep_commands()
    assert len(commands) >= 4
    for argv in commands:
        assert run([*argv, "--dry-run", "--dry-run-trials=2"], train_fn=fake_train) == 0, argv
    assert "invalid" not in capsys.readouterr().out


def test_fresh_process_knows_the_optuna_sweeper(in_tmp: Path) -> None:
    # In-process tests share Hydra's registries; a fresh `nnspec` process must find
    # `hydra/sweeper: nnspec_optuna` (selected by sweep/lr_wd.yaml) on its own.
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "nnspec.cli.main", "train", "-m", "sweep=lr_wd", "--dry-run",
         "--dry-run-trials=1"],
        capture_output=True, text=True, cwd=in_tmp, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "dry run: 1 trials" in res.stdout


def _recording(seen: list[Any]) -> Any:
    def train(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
        seen.append(spec)
        return fake_train(spec, run_dir=run_dir, base_dir=base_dir)

    return train


def test_a_run_directory_resumes_that_run_with_its_own_spec(in_tmp: Path) -> None:
    run_dir = in_tmp / "runs" / "iris" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.yaml").write_text((EXAMPLES_DIR / "iris_mlp.yaml").read_text())
    seen: list[Any] = []
    assert (
        run([str(run_dir), "train.epochs=7", "hydra.run.dir=out"], train_fn=_recording(seen)) == 0
    )
    (spec,) = seen
    assert spec.train.resume == str(run_dir) and spec.train.epochs == 7
    assert spec.data.source == "sklearn:iris"
    (in_tmp / "empty").mkdir()
    with pytest.raises(UsageError, match="not an nnspec run directory"):
        run([str(in_tmp / "empty")], train_fn=fake_train)


def test_the_users_config_dir_adds_group_options(in_tmp: Path) -> None:
    (in_tmp / "myconf" / "optim").mkdir(parents=True)
    (in_tmp / "myconf" / "optim" / "fast.yaml").write_text("kind: sgd\nlr: 0.25\nmomentum: 0.5\n")
    seen: list[Any] = []
    argv = ["--config-dir", "myconf", "optim=fast", "hydra.run.dir=out"]
    assert run(argv, train_fn=_recording(seen)) == 0
    (spec,) = seen
    assert (spec.optim.kind, spec.optim.lr, spec.optim.momentum) == ("sgd", 0.25, 0.5)
    assert run(["optim=fast"], train_fn=fake_train) == 2  # without the folder: unknown option


def test_the_users_primary_config(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "myconf" / "optim").mkdir(parents=True)
    (in_tmp / "myconf" / "optim" / "fast.yaml").write_text("kind: sgd\nlr: 0.25\n")
    (in_tmp / "myconf" / "mine.yaml").write_text(
        "defaults:\n  - config\n  - override optim: fast\n  - _self_\nname: mine\n"
        "train:\n  epochs: 3\n"
    )
    seen: list[Any] = []
    argv = ["-cd", "myconf", "-cn", "mine", "train.epochs=4", "hydra.run.dir=out"]
    assert run(argv, train_fn=_recording(seen)) == 0
    (spec,) = seen
    assert (spec.name, spec.optim.kind, spec.optim.lr, spec.train.epochs) == (
        "mine",
        "sgd",
        0.25,
        4,
    )
    assert run(["-cd", "myconf", "-cn", "mine", "train.epochz=4"], train_fn=fake_train) == 2
    assert "did you mean 'epochs'?" in capsys.readouterr().err
    spec_file = in_tmp / "iris.yaml"
    spec_file.write_text((EXAMPLES_DIR / "iris_mlp.yaml").read_text())
    with pytest.raises(UsageError, match="give one of them"):
        run([str(spec_file), "-cd", "myconf", "-cn", "mine"], train_fn=fake_train)


# ---- errors: printed like every command's; internal ones reach the CLI's internal-error path ----


def test_train_errors_are_printed_like_every_commands(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["optim.lrr=1"], train_fn=fake_train) == 2
    err = capsys.readouterr().err
    assert "error: 1 problem (SpecError)" in err and "did you mean 'lr'?" in err
    assert run(["optim.lr=0.9", "hydra.run.dir=out"], train_fn=fake_train) == 1
    err = capsys.readouterr().err
    assert "error: 1 problem (TrainError)" in err and err.count("loss became NaN") == 1


def _kaput(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
    raise RuntimeError("kaput")


def test_an_internal_error_of_a_run_is_the_clis_internal_error(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnspec.cli.main import main as nnspec_main

    monkeypatch.setattr("nnspec.hydra.job._trainer", lambda: _kaput)
    monkeypatch.delenv("NNSPEC_DEBUG", raising=False)
    assert nnspec_main(["train", "train.epochs=1"]) == 1
    err = capsys.readouterr().err
    assert "internal error (RuntimeError: kaput)" in err and "NNSPEC_DEBUG=1" in err
    assert "Traceback" not in err and err.strip().count("\n") == 0
    monkeypatch.setenv("NNSPEC_DEBUG", "1")
    assert nnspec_main(["train", "train.epochs=1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "_kaput" in err and 'RuntimeError("kaput")' in err
    assert list(in_tmp.iterdir()) == []  # the job folders held only Hydra's files: removed


def test_a_sweep_records_an_internal_error_as_a_failed_trial(in_tmp: Path) -> None:
    def flaky(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
        if spec.seed == 1:
            return _kaput(spec, run_dir=run_dir)
        return fake_train(spec, run_dir=run_dir)

    assert run(["-m", "seed=0,1", "hydra.sweep.dir=sweep"], train_fn=flaky) == 1
    rows = _rows(in_tmp / "sweep")
    assert sorted((r["status"], r["reason"]) for r in rows) == [
        ("failed", "RuntimeError: kaput"), ("ok", "")]  # fmt: skip


def test_a_failed_run_keeps_its_folder_only_when_it_wrote_something(in_tmp: Path) -> None:
    from nnspec.errors import DataError, Problem

    def bad_data(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
        raise DataError(Problem(("data", "source"), "no such file data.csv"))

    def diverging(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
        (run_dir / "spec.yaml").write_text("name: x\n")
        raise TrainError("loss became NaN at step 3")

    assert run(["train.output_dir=runs"], train_fn=bad_data) == 2
    assert list(in_tmp.iterdir()) == []
    assert run(["hydra.run.dir=runs/r1"], train_fn=diverging) == 1
    record = json.loads((in_tmp / "runs" / "r1" / "trial.json").read_text())
    assert record["status"] == "failed" and "loss became NaN" in record["reason"]


# ---- --config-dir / --config-name mistakes: nnspec's words, exit 2 ----


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config-name", "mine"], "nnspec has no primary config mine.yaml"),
        (["--config-dir", "nonexist", "optim=sgd"], "--config-dir nonexist: no such folder"),
        (["-cd", "myconf", "-cn", "nothere"], "no myconf/nothere.yaml"),
    ],
)
def test_a_missing_config_folder_or_file_is_a_usage_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from nnspec.cli.main import main as nnspec_main

    (in_tmp / "myconf").mkdir()
    with pytest.raises(UsageError, match=message.replace(".", r"\.")):
        run(argv, train_fn=fake_train)
    assert nnspec_main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "fix:" in err and "Hydra" not in err
    assert [p.name for p in in_tmp.iterdir()] == ["myconf"]


def test_the_users_primary_config_names_the_run(in_tmp: Path) -> None:
    (in_tmp / "myconf").mkdir()
    (in_tmp / "myconf" / "mine.yaml").write_text(
        "defaults:\n  - config\n  - override model: iris_mlp\n  - _self_\n"
    )
    argv = ["-cd", "myconf", "-cn", "mine", "data=iris", "train.output_dir=runs"]
    assert run(argv, train_fn=fake_train) == 0
    assert [p.name for p in (in_tmp / "runs").iterdir()] == ["iris-iris_mlp"]
    assert run(["-cn", "config", "hydra.run.dir=out"], train_fn=fake_train) == 0  # nnspec's own


# ---- resuming a run directory: in that folder, whatever its name ----


def test_a_resumed_run_trains_in_its_own_folder(in_tmp: Path) -> None:
    run_dir = in_tmp / "runs" / "a b,c=d" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.yaml").write_text((EXAMPLES_DIR / "iris_mlp.yaml").read_text())
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text("the original run's\n")
    seen: list[Any] = []
    assert run([str(run_dir), "train.epochs=7"], train_fn=_recording(seen)) == 0
    (spec,) = seen
    assert spec.train.resume == str(run_dir) and spec.train.epochs == 7
    assert [p.name for p in in_tmp.iterdir()] == ["runs"]  # no new runs/<name>/<time>/
    assert [p.name for p in (in_tmp / "runs").iterdir()] == ["a b,c=d"]
    assert json.loads((run_dir / "trial.json").read_text())["status"] == "ok"
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "the original run's\n"


def test_a_refused_resume_leaves_the_run_as_it_was(in_tmp: Path) -> None:
    from nnspec.errors import CheckpointError, Problem

    def refusing(spec: Any, *, run_dir: Path, base_dir: Path | None = None) -> RunResult:
        raise CheckpointError(Problem(("train", "resume"), "written by a different spec"))

    run_dir = in_tmp / "r1"
    run_dir.mkdir()
    (run_dir / "spec.yaml").write_text((EXAMPLES_DIR / "iris_mlp.yaml").read_text())
    (run_dir / "trial.json").write_text('{"status": "ok"}')
    assert run([str(run_dir), "train.epochs=9"], train_fn=refusing) == 2
    assert (run_dir / "trial.json").read_text() == '{"status": "ok"}'
    assert sorted(p.name for p in run_dir.iterdir()) == ["app.log", "spec.yaml", "trial.json"]


@pytest.mark.parametrize("value", ["a b,c=d", "it's", "back\\slash\\", "${x}", "[1,2]", ""])
def test_quoted_values_read_back_unchanged(value: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from nnspec.hydra.configtext import quoted

    parsed = OverridesParser.create().parse_override(f"key={quoted(value)}")
    assert OmegaConf.create({"key": parsed.value()}).key == value


def test_a_missing_data_file_is_found_before_any_folder_is_made(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []
    assert run(["data=csv", "data.source=csv:nope.csv"], train_fn=_recording(seen)) == 2
    err = capsys.readouterr().err
    assert "error: 1 problem (DataError)" in err and "data file not found" in err
    assert seen == [] and list(in_tmp.iterdir()) == []
