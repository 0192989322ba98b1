"""`model.init_from`: weights from a finished run, a .pt or a .safetensors file, renamed by a
declared map, shape-checked, reported; a torchvision-layout ResNet state dict loads whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import nnspec
from nnspec.errors import CheckpointError, SpecError
from nnspec.io import load
from nnspec.run.callbacks import Callback, FitState
from nnspec.run.weights import WeightReport, load_init_from, rename_keys
from nnspec.spec.weights import InitFrom
from tests.run.runhelp import tiny

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Snapshot(Callback):
    """Keeps the model's weights as training starts (before any step)."""

    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] = {}

    def on_fit_start(self, state: FitState) -> None:
        self.weights = {k: v.clone() for k, v in state.model.state_dict().items()}


def _val_loss_before_any_step(spec: nnspec.ExperimentSpec) -> float:
    from nnspec.compile.plan import compile_plan
    from nnspec.run.data import prepare_data
    from nnspec.run.loop import target_stats
    from nnspec.run.model import build_for_data

    bundle = prepare_data(spec)
    model = build_for_data(spec, bundle.info, bundle.train.y)
    assert spec.model.init_from is not None
    load_init_from(model, spec.model.init_from)
    loss = compile_plan(spec).make_loss(bundle.info.n_outputs, target_stats(bundle))
    assert bundle.val is not None
    with torch.inference_mode():
        return float(loss(model.eval()(bundle.val.x), bundle.val.y))


@pytest.mark.slow
def test_init_from_a_run_reproduces_its_validation_loss_before_any_step(tmp_path: Path) -> None:
    first = nnspec.train(tiny(tmp_path))
    summary = json.loads((first.run_dir / "summary.json").read_text())
    spec = tiny(tmp_path, model={"init_from": {"path": str(first.run_dir)}}, name="again")
    assert _val_loss_before_any_step(spec) == pytest.approx(
        summary["val_metrics"]["loss"], rel=1e-6, abs=1e-6
    )
    snap = Snapshot()
    nnspec.train(spec, callbacks=[snap])
    saved = torch.load(first.run_dir / "model.pt", weights_only=True)["model"]
    assert snap.weights.keys() == saved.keys()
    assert all(torch.equal(snap.weights[k], saved[k]) for k in saved)  # bit for bit, head too


def _mlp() -> nn.Module:
    return nnspec.build_model(tiny(Path("/tmp")))


def test_a_pt_state_dict_is_renamed_shape_checked_and_reported(tmp_path: Path) -> None:
    model = _mlp()
    keys = list(model.state_dict())  # layers.0.op.weight, layers.0.op.bias, layers.1.op.*
    saved = {
        k.replace("layers.", "net."): torch.full_like(v, 0.5) for k, v in model.state_dict().items()
    }
    saved["net.1.op.weight"] = torch.zeros(5, 16)  # another head width: skipped, reported
    saved["extra.weight"] = torch.zeros(1)
    file = tmp_path / "w.pt"
    torch.save({"state_dict": saved}, file)
    init = InitFrom(path=str(file), map={r"^net\.": "layers."})
    report = load_init_from(model, init)
    assert sorted(report.loaded) == sorted(k for k in keys if k != "layers.1.op.weight")
    assert (
        "shape [5, 16] in the source, [3, 16] in the model" in report.skipped["layers.1.op.weight"]
    )
    assert "no such key" in report.skipped["extra.weight"]
    assert report.missing == ["layers.1.op.weight"]
    assert torch.all(model.state_dict()["layers.0.op.weight"] == 0.5)
    assert not torch.all(model.state_dict()["layers.1.op.weight"] == 0.5)  # kept nnspec's init
    assert "loaded 3 tensors, skipped 2, kept nnspec's init for 1" in report.summary()


def test_strict_lists_every_problem_and_nothing_matching_is_an_error(tmp_path: Path) -> None:
    model = _mlp()
    file = tmp_path / "w.pt"
    torch.save({"other.weight": torch.zeros(2)}, file)
    with pytest.raises(CheckpointError, match=r"no tensor of .* matches the model"):
        load_init_from(model, InitFrom(path=str(file)))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["layers.0.op.weight"] = torch.zeros(1)
    del state["layers.1.op.bias"]
    torch.save(state, file)
    with pytest.raises(CheckpointError) as err:
        load_init_from(_mlp(), InitFrom(path=str(file), strict=True))
    text = str(err.value)
    assert "strict loading failed" in text
    assert "layers.0.op.weight: shape [1]" in text and "layers.1.op.bias: not in the source" in text
    # excluded keys are fine under strict
    load_init_from(
        _mlp(),
        InitFrom(
            path=str(file),
            strict=True,
            exclude=(r"^layers\.0\.op\.weight$", r"^layers\.1\.op\.bias$"),
        ),
    )


def test_pickled_code_in_a_pt_file_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("ran",))

    file = tmp_path / "evil.pt"
    torch.save({"model": {"layers.0.op.weight": Payload()}}, file)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_init_from(_mlp(), InitFrom(path=str(file)))


def test_safetensors_files_load(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    model = _mlp()
    state = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    safetensors.save_file(state, str(tmp_path / "w.safetensors"))
    report = load_init_from(model, InitFrom(path=str(tmp_path / "w.safetensors"), strict=True))
    assert len(report.loaded) == 4 and torch.all(model.state_dict()["layers.1.op.bias"] == 1)


def test_spec_refuses_a_bad_pattern_and_a_missing_source_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"model.init_from.map: not a regular expression"):
        model = {"input_shape": [8], "layers": [{"linear": 3}],
                 "init_from": {"path": "x.pt", "map": {"(": "a"}}}  # fmt: skip
        nnspec.io.validate(tiny(tmp_path).model_dump(mode="json") | {"model": model})
    with pytest.raises(CheckpointError, match="no such file"):
        load_init_from(_mlp(), InitFrom(path=str(tmp_path / "nope.pt")))
    with pytest.raises(CheckpointError, match=r"a file ending in .pt, .pth, .safetensors"):
        (tmp_path / "w.bin").write_bytes(b"")
        load_init_from(_mlp(), InitFrom(path=str(tmp_path / "w.bin")))


def test_rename_keys_applies_patterns_in_order() -> None:
    out = rename_keys(["conv1.weight", "layer1.0.conv1.weight"],
                      {r"^conv1\.": "layers.0.op.", r"^layer1\.": "layers.2.",
                       r"\.conv1\.": ".body.0.op."})  # fmt: skip
    assert out == {"conv1.weight": "layers.0.op.weight",
                   "layer1.0.conv1.weight": "layers.2.0.body.0.op.weight"}  # fmt: skip


# ---- a torchvision-layout ResNet (the key names of torchvision.models.resnet18) ----


class TVBasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TVResNet18(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        for stage in range(4):
            c_out = 64 * 2**stage
            blocks = [TVBasicBlock(c_in, c_out, 2 if stage else 1), TVBasicBlock(c_out, c_out, 1)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            c_in = c_out
        self.fc = nn.Linear(512, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TVBottleneck(nn.Module):
    """torchvision's Bottleneck under its own key names (stride on the 3x3 conv, "v1.5")."""

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = 4 * width
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TVResNet50(TVResNet18):
    """torchvision.models.resnet50's key names and layout: bottlenecks repeated 3, 4, 6, 3."""

    def __init__(self) -> None:
        super().__init__()
        c_in = 64
        for stage, repeat in enumerate((3, 4, 6, 3)):
            width = 64 * 2**stage
            blocks = [
                TVBottleneck(c_in if r == 0 else 4 * width, width, 2 if stage and r == 0 else 1)
                for r in range(repeat)
            ]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            c_in = 4 * width
        self.fc = nn.Linear(2048, 1000)


def _fill(module: nn.Module, gen: torch.Generator) -> None:
    """Distinct values in every tensor, running statistics and num_batches_tracked included."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                t.fill_(7)
                continue
            u = torch.rand(t.shape, generator=gen)
            if t.dim() > 1:  # weights: variance 1/fan_in, so 50 layers keep outputs finite
                t.copy_((u - 0.5) * (12 / t[0].numel()) ** 0.5)
            else:  # BN scale and running variance around 1, shifts and means around 0
                t.copy_(u + 0.5 if name.endswith(("running_var", "weight")) else u - 0.5)


def _load_torchvision_layout(
    reference: nn.Module, example: str, tmp: Path
) -> tuple[nn.Module, WeightReport]:
    """``reference``'s state dict saved to a file and loaded into ``example`` through the map of
    examples/resnet18_torchvision.yaml (strict): the nnspec model and the load report."""
    torch.save(reference.state_dict(), tmp / "tv.pt")
    documented = load(EXAMPLES / "resnet18_torchvision.yaml").model.init_from
    assert documented is not None and documented.strict
    init = documented.model_copy(update={"path": str(tmp / "tv.pt")})
    model = nnspec.build_model(load(EXAMPLES / example))
    return model, load_init_from(model, init)


@pytest.mark.slow
def test_the_documented_map_loads_a_torchvision_resnet18_whole(tmp_path: Path) -> None:
    reference, gen = TVResNet18(), torch.Generator().manual_seed(0)
    _fill(reference, gen)
    model, report = _load_torchvision_layout(reference, "resnet18_torchvision.yaml", tmp_path)
    assert len(report.loaded) == len(reference.state_dict()) == 122
    assert sum(k.endswith("num_batches_tracked") for k in report.loaded) == 20
    x = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.inference_mode():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_the_documented_map_loads_a_torchvision_resnet50_whole(tmp_path: Path) -> None:
    # the scale issue's examples/resnet50.yaml, from a state dict in torchvision's resnet50 layout
    reference, gen = TVResNet50(), torch.Generator().manual_seed(1)
    _fill(reference, gen)
    model, report = _load_torchvision_layout(reference, "resnet50.yaml", tmp_path)
    assert len(report.loaded) == len(reference.state_dict()) == 320
    assert sum(k.endswith("num_batches_tracked") for k in report.loaded) == 53
    assert not report.skipped and not report.missing
    x = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.inference_mode():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x), rtol=1e-4, atol=1e-4)
