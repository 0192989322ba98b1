"""One regression test per fault the adversarial run found (each fails on the code before it).

Run folders, checkpoint integrity, bounded inputs, names, and user mistakes that ended in exit 1.
"""

from __future__ import annotations

import io
import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_counts import count
from run.runhelp import tiny

import nnspec
from nnspec.cli.main import main
from nnspec.errors import CheckpointError
from nnspec.run import checkpoint as ck
from nnspec.run.checkpoint import CheckpointWarning
from nnspec.run.outputs import RunWriter

SMALL = {"model": {"input_shape": [4], "layers": [{"linear": 3}]}}


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def cli(*args: str) -> int:
    code = main(list(args))
    count("cases")
    count("exit1", code == 1)
    return code


# ---- run folders ----


def test_two_runs_started_in_the_same_second_get_two_folders(tmp_path: Path) -> None:
    from nnspec.run.api import _new_run_dir

    spec = tiny(tmp_path)
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(_new_run_dir(spec))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8
    assert all(p.is_dir() and not any(p.iterdir()) for p in made)


def test_a_single_cli_run_gets_its_own_job_folder(tmp_path: Path) -> None:
    from nnspec.hydra.rundirs import job_dir_overrides

    spec = tiny(tmp_path)
    first = job_dir_overrides(spec, [])[1]
    second = job_dir_overrides(spec, [])[1]
    assert first is not None and second is not None and first != second
    assert first.parent == second.parent == tmp_path / "runs" / "tiny"


def _fake_train(spec, *, run_dir: Path, base_dir: Path | None = None):  # type: ignore[no-untyped-def]
    from nnspec.run.api import RunResult

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps({"best_value": spec.seed}))
    return RunResult(run_dir, {}, {"loss": 0.0}, 1, "val_loss", 0.0, "min", 0.0, 1, 1)


def test_two_sweeps_started_in_the_same_second_get_their_own_job_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hydra's ``multirun_${now:...}/0`` was shared by two sweeps of the same second."""
    from datetime import datetime

    from nnspec.cli.train import main as train_main
    from nnspec.hydra import rundirs

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return datetime(2030, 1, 2, 3, 4, 5)

    monkeypatch.setattr(rundirs, "datetime", Frozen)
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path / "s.yaml", json.dumps({**SMALL, "name": "sw"}))
    for seeds in ("0,1", "2,3"):
        assert train_main([str(spec), "-m", f"seed={seeds}"], train_fn=_fake_train) == 0
    sweeps = sorted(p.name for p in (tmp_path / "runs" / "sw").iterdir())
    assert sweeps == ["multirun_2030-01-02_03-04-05", "multirun_2030-01-02_03-04-05-1"]
    seeds = [
        json.loads((tmp_path / "runs" / "sw" / s / j / "summary.json").read_text())["best_value"]
        for s in sweeps
        for j in ("0", "1")
    ]
    assert seeds == [0, 1, 2, 3]  # each job folder holds its own trial


def test_train_resume_makes_no_extra_job_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ``train.resume=DIR`` left an empty ``runs/<name>/<time>/`` behind."""
    from nnspec.cli.train import main as train_main

    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path / "s.yaml", json.dumps({**SMALL, "name": "r"}))
    assert train_main([str(spec)], train_fn=_fake_train) == 0
    (run,) = (tmp_path / "runs" / "r").iterdir()
    RunWriter(run).write_text("spec.yaml", spec.read_text())  # what a real run leaves
    for _ in range(2):
        assert train_main([str(spec), f"train.resume={run}"], train_fn=_fake_train) == 0
    assert list((tmp_path / "runs" / "r").iterdir()) == [run]


def test_the_run_folder_deleted_mid_run_fails_the_run(tmp_path: Path) -> None:
    import shutil

    from nnspec.run.callbacks import Callback

    class Delete(Callback):
        def on_epoch_end(self, state) -> None:  # type: ignore[no-untyped-def]
            if state.epoch == 2:
                shutil.rmtree(state.run_dir, ignore_errors=True)  # the writer thread is busy

    # the writer thread may be mid-write when the folder goes: either message names the cause
    from nnspec.errors import OutputError

    with pytest.raises(
        OutputError,
        match=r"(deleted|replaced by another folder) while the run|"
        "was deleted while the run wrote",
    ):
        nnspec.train(tiny(tmp_path), callbacks=[Delete()])
    # never a run folder without its spec.yaml that looks finished
    assert not list((tmp_path / "runs" / "tiny").glob("*/summary.json"))


def test_an_unwritable_output_directory_is_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path / "s.yaml", json.dumps(SMALL))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli("train", str(spec), f"train.output_dir={blocker}/runs") == 2
    assert "train.output_dir" in capsys.readouterr().err


# ---- checkpoints ----


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    spec = tiny(tmp, train={"epochs": 4, "checkpoint": {"keep_last": 2}})
    return nnspec.train(spec).run_dir


def copy_run(run: Path, tmp: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp / "run"))


def flip(path: Path, at: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x10
    path.write_bytes(bytes(data))


def test_every_run_file_is_in_the_manifest(finished: Path) -> None:
    from nnspec.run.manifest import manifest_table

    listed = set(manifest_table(finished))
    assert {
        "spec.yaml",
        "model.pt",
        "preprocess.json",
        "summary.json",
        "checkpoints/best.pt",
        "checkpoints/epoch-0004.pt",
    } <= listed
    on_disk = {p.relative_to(finished).as_posix() for p in finished.rglob("*.pt")}
    assert on_disk <= listed


def test_a_bit_flip_in_a_checkpoint_is_refused(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path)
    flip(run / "checkpoints" / "epoch-0004.pt")
    with pytest.raises(CheckpointError, match="sha256 differs"):
        ck.load_checkpoint(run / "checkpoints" / "epoch-0004.pt")


def test_resume_skips_a_damaged_checkpoint_and_falls_back(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path)
    spec = nnspec.load(run / "spec.yaml")
    flip(run / "checkpoints" / "epoch-0004.pt")
    flip(run / "checkpoints" / "best.pt")  # else best.pt (epoch 4 or older) would be used
    with pytest.warns(CheckpointWarning, match="skipping checkpoint"):
        ckpt, _ = ck.resume_point(run, spec)
    assert ckpt is not None and ckpt["epoch"] == 3


def test_resume_falls_back_to_best_pt(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path)
    spec = nnspec.load(run / "spec.yaml")
    for p in (run / "checkpoints").glob("epoch-*.pt"):
        p.write_bytes(b"")
    best_epoch = json.loads((run / "summary.json").read_text())["best_epoch"]
    with pytest.warns(CheckpointWarning):
        ckpt, best = ck.resume_point(run, spec)
    assert ckpt is not None and ckpt["epoch"] == best_epoch and best is not None


def test_every_checkpoint_damaged_fails_loudly(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path)
    spec = nnspec.load(run / "spec.yaml")
    for p in (run / "checkpoints").glob("*.pt"):
        flip(p)
    with pytest.warns(CheckpointWarning), pytest.raises(CheckpointError, match="no verified"):
        ck.resume_point(run, spec)


def test_lost_best_weights_fail_the_resume_instead_of_a_wrong_model_pt(tmp_path: Path) -> None:
    """best.pt unreadable and the best epoch's checkpoint pruned: model.pt would hold the last
    epoch while summary.json names the best, so the resume refuses."""
    # lr 0.3 overshoots: the best epoch (3) is not the last one
    spec = tiny(
        tmp_path,
        optim={"kind": "adamw", "lr": 0.3},
        train={"epochs": 6, "checkpoint": {"keep_last": 1}},
    )
    run = nnspec.train(spec).run_dir
    assert json.loads((run / "summary.json").read_text())["best_epoch"] < 6
    flip(run / "checkpoints" / "best.pt")
    resumed = spec.model_copy(update={"train": spec.train.model_copy(update={"resume": str(run)})})
    with pytest.warns(CheckpointWarning), pytest.raises(CheckpointError, match="are lost"):
        nnspec.train(resumed)


def test_prune_waits_for_the_new_checkpoint(tmp_path: Path) -> None:
    """A failed write (here: a folder where the file goes) must not delete the older one."""
    writer = RunWriter(tmp_path / "run")
    writer.save_torch_background(["checkpoints/epoch-0001.pt"], {"a": torch.zeros(2)})
    writer.flush()
    (tmp_path / "run" / "checkpoints" / "epoch-0002.pt").mkdir()  # the next write will fail
    writer.save_torch_background(
        ["checkpoints/epoch-0002.pt"], {"a": torch.ones(2)}, prune=["checkpoints/epoch-0001.pt"]
    )
    with pytest.raises((OSError, CheckpointError)):  # OutputError (a raw OSError before)
        writer.flush()
    assert (tmp_path / "run" / "checkpoints" / "epoch-0001.pt").is_file()


def test_a_fifo_planted_as_a_checkpoint_does_not_hang_resume(
    finished: Path, tmp_path: Path
) -> None:
    run = copy_run(finished, tmp_path)
    spec = nnspec.load(run / "spec.yaml")
    os.mkfifo(run / "checkpoints" / "epoch-0009.pt")
    with pytest.warns(CheckpointWarning, match="FIFO"):
        ckpt, _ = ck.resume_point(run, spec)
    assert ckpt is not None and ckpt["epoch"] == 4


def test_eval_of_a_damaged_model_pt_is_exit_2(finished: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = copy_run(finished, tmp_path)
    flip(run / "model.pt")
    assert cli("eval", str(run)) == 2
    assert "sha256" in capsys.readouterr().err


def test_eval_fails_when_the_runs_own_data_give_other_metrics(
    finished: Path, tmp_path: Path
) -> None:
    from nnspec.run.outputs import RunWriter

    run = copy_run(finished, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert cli("eval", str(run)) == 0
    summary["test_metrics"]["accuracy"] = summary["test_metrics"]["accuracy"] / 2
    RunWriter(run).write_json("summary.json", summary)  # a consistent manifest: not damage
    assert main(["eval", str(run)]) == 1


@pytest.mark.parametrize("name", ["preprocess.json", "summary.json"])
def test_corrupt_json_is_exit_2(finished: Path, tmp_path: Path, name: str, capsys) -> None:  # type: ignore[no-untyped-def]
    run = copy_run(finished, tmp_path)
    RunWriter(run).write_bytes(name, b'{"task": ')  # listed, so only the parser can object
    assert cli("eval", str(run)) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and '{"task"' not in err


def test_a_wrong_architecture_model_pt_is_exit_2(finished: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = copy_run(finished, tmp_path)
    buf = io.BytesIO()
    torch.save({"model": {"layers.0.op.weight": torch.zeros(2, 2)}}, buf)
    RunWriter(run).write_bytes("model.pt", buf.getvalue())
    assert cli("predict", str(run), str(run / "metrics.csv")) == 2
    assert "does not fit the model" in capsys.readouterr().err


def test_predict_out_naming_a_folder_is_exit_2(finished: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "x.csv"
    csv.write_text(",".join(f"f{i}" for i in range(8)) + "\n" + ",".join(["0.5"] * 8) + "\n")
    assert cli("predict", str(finished), str(csv), "--out", str(tmp_path)) == 2
    assert "--out" in capsys.readouterr().err


# ---- inputs ----


def test_a_huge_yaml_is_refused_before_parsing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    big = write_spec(tmp_path / "big.yaml", "a: [" + ", ".join(["1"] * 2_000_000) + "]\n")
    assert cli("validate", str(big)) == 2
    assert "bytes, more than nnspec reads" in capsys.readouterr().err


def test_deep_nesting_is_a_spec_error_not_a_recursion_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    deep = write_spec(tmp_path / "deep.yaml", "a: " + "[" * 600 + "]" * 600 + "\n")
    assert cli("validate", str(deep)) == 2
    assert "levels of nesting" in capsys.readouterr().err


BOUNDED = """
import resource, sys
from nnspec.cli.main import main
code = main(["data", sys.argv[1]])
print("EXIT", code, "MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_a_file_without_newlines_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    """A 20 GB sparse file with no newline (9.2 GB of memory when read as one line)."""
    import subprocess
    import sys

    data = tmp_path / "big.csv"
    with data.open("wb") as fh:
        fh.write(b"a," * (1 << 20))  # 2 MB of one header line, then 20 GB of holes
        fh.truncate(20 << 30)
    spec = write_spec(
        tmp_path / "s.yaml",
        f"data: {{source: 'csv:{data}', target: y}}\n"
        "model: {input_shape: auto, layers: [{linear: auto}]}\n",
    )
    child = subprocess.run(
        [sys.executable, "-c", BOUNDED, str(spec)], capture_output=True, text=True, timeout=120
    )
    count("cases")
    exit_code, rss_kb = child.stdout.split()[1::2]
    assert exit_code == "2", child.stderr[-2000:]
    assert int(rss_kb) < 1_500_000  # about 0.3 GB: torch and pyarrow, not the file
    assert "aaaa" not in child.stderr and "a,a,a,a" not in child.stderr  # names, not contents


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/abs/path",
        "a/b",
        "a\x00b",
        "x" * 300,
        "a\x1b[31mred",
        "two\nlines",
        ".hidden",
        "..",
    ],
)
def test_unsafe_experiment_names_are_refused(tmp_path: Path, name: str, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path / "s.yaml", json.dumps({**SMALL, "name": name}))
    out = f"train.output_dir={tmp_path}/runs"
    for args in (["validate", str(spec)], ["train", str(spec), out]):
        assert cli(*args) == 2
        err = capsys.readouterr().err
        assert "run folder's name" in err and "\x1b" not in err and "\x00" not in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("seed", "seed: 4294967296"),
        ("optim.lr", "optim: {kind: adamw, lr: .inf}"),
        ("optim.weight_decay", "optim: {kind: adamw, weight_decay: .inf}"),
        ("loss.pos_weight", "task: binary\nloss: {pos_weight: .inf}"),
        ("train.max_steps", "train: {max_steps: 0}"),
        (
            "model.layers.0",
            "model: {input_shape: [4], layers: [{linear: 100000000000000000000000000000}]}",
        ),
    ],
)
def test_user_mistakes_that_were_exit_1_are_exit_2(
    tmp_path: Path, field: str, text: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    body = text if "model:" in text else "model: {input_shape: [4], layers: [{linear: 1}]}\n" + text
    spec = write_spec(tmp_path / "s.yaml", body + "\n")
    assert cli("validate", str(spec)) == 2
    assert field in capsys.readouterr().err


def test_wide_layers_are_refused_by_train_too(tmp_path: Path) -> None:
    from nnspec.errors import SpecError

    spec = tiny(tmp_path, model={"input_shape": [8], "layers": [{"linear": 10**29}, {"linear": 3}]})
    with pytest.raises(SpecError, match="parameters"):
        nnspec.train(spec)


@pytest.mark.parametrize("kind", ["zero_rows", "pickle"])
def test_bad_npz_files_are_exit_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "d.npz"
    if kind == "zero_rows":
        np.savez(path, x=np.zeros((0, 4), np.float32), y=np.zeros((0,), np.int64))
    else:
        import pickle

        path.write_bytes(pickle.dumps({"x": [1, 2]}))
    spec = write_spec(
        tmp_path / "s.yaml",
        f"data: {{source: 'npz:{path}'}}\n"
        "model: {input_shape: auto, layers: [{linear: auto}]}\n"
        f"train: {{epochs: 1, progress: none, output_dir: '{tmp_path}/runs'}}\n",
    )
    assert cli("train", str(spec)) == 2


@pytest.mark.parametrize("what", ["fifo", "device"])
def test_fifos_and_devices_are_not_reported_as_missing(tmp_path: Path, what: str, capsys) -> None:  # type: ignore[no-untyped-def]
    if what == "fifo":
        path = tmp_path / "d.csv"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    spec = write_spec(
        tmp_path / "s.yaml",
        f"data: {{source: 'csv:{path}', target: y}}\n"
        "model: {input_shape: auto, layers: [{linear: auto}]}\n",
    )
    assert cli("train", str(spec)) == 2
    err = capsys.readouterr().err
    assert "not found" not in err and ("FIFO" in err or "device" in err)


def test_environ_as_csv_never_echoes_its_content(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NNSPEC_CANARY_SECRET", "s3cr3t-value")
    spec = write_spec(
        tmp_path / "s.yaml",
        "data: {source: 'csv:/proc/self/environ', target: y}\n"
        "model: {input_shape: auto, layers: [{linear: auto}]}\n",
    )
    assert cli("train", str(spec)) == 2
    out = capsys.readouterr()
    assert "s3cr3t" not in out.err + out.out


def test_predict_on_environ_never_echoes_its_content(finished: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NNSPEC_CANARY_SECRET", "s3cr3t-value")
    assert cli("predict", str(finished), "/proc/self/environ") == 2
    out = capsys.readouterr()
    assert "s3cr3t" not in out.err + out.out


def test_unverified_legacy_runs_still_load_with_a_warning(finished: Path, tmp_path: Path) -> None:
    from nnspec.run.manifest import UnverifiedWarning

    run = copy_run(finished, tmp_path)
    (run / "manifest.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nnspec.load_run(run)
    assert any(issubclass(w.category, UnverifiedWarning) for w in caught)
