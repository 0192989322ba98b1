"""Training augmentation: each transformation does what it says on a batch, the draws are a
function of (seed, epoch, batch), refused where the inputs cannot take it, and applied to
training batches only: validation and test batches are exactly the unaugmented decode."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from test_images import image_spec, write_digits

from nnspec.errors import SpecError
from nnspec.run import augment as augment_module
from nnspec.run.augment import Augment, check_augment, make_augment
from nnspec.run.batches import INPUT, TARGET, Batch, epoch_order
from nnspec.run.callbacks import Callback, FitState
from nnspec.run.data import prepare_data
from nnspec.spec.data import DataSpec
from nnspec.spec.images import AugmentSpec
from nnspec.workflow import train


def plain(**fields: Any) -> Augment:
    """An augmentation on image inputs in [0, 1] that are not standardised."""
    return Augment(AugmentSpec(**fields), 0, None, None, (0.0, 1.0))


def test_same_seed_epoch_and_batch_draw_the_same_and_the_input_is_untouched() -> None:
    aug = plain(crop_padding=2, hflip=True, rotate_degrees=15, brightness=0.3)
    x = torch.rand(16, 3, 8, 8)
    before = x.clone()
    a = aug.transform(x, 2, 5)
    assert torch.equal(a, aug.transform(x, 2, 5)) and torch.equal(x, before)
    assert not torch.equal(a, aug.transform(x, 2, 6)) and not torch.equal(a, aug.transform(x, 3, 5))
    other_seed = Augment(aug.spec, 1, None, None, (0.0, 1.0))
    assert not torch.equal(a, other_seed.transform(x, 2, 5))


def test_process_rng_has_no_say() -> None:
    aug, x = plain(rotate_degrees=30, hflip=True), torch.rand(8, 1, 6, 6)
    torch.manual_seed(1)
    a = aug.transform(x, 1, 1)
    torch.manual_seed(2)
    assert torch.equal(a, aug.transform(x, 1, 1))


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` moved by (dy, dx) pixels, black where nothing moved in."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        ..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def test_crop_padding_shifts_each_sample_by_whole_pixels_within_the_padding() -> None:
    x = torch.rand(32, 3, 6, 7) * 0.9 + 0.1  # no black pixel: a shift shows as black rows/columns
    out = plain(crop_padding=2).transform(x, 1, 1)
    shifts = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(out[i], _shifted(x[i], dy, dx))]  # fmt: skip
        assert len(found) == 1, i
        shifts.add(found[0])
    assert len(shifts) > 5  # the offsets vary per sample


@pytest.mark.parametrize(("field", "dim"), [("hflip", -1), ("vflip", -2)])
def test_flips_mirror_about_half_of_the_samples(field: str, dim: int) -> None:
    x = torch.rand(64, 3, 4, 5)
    out = plain(**{field: True}).transform(x, 1, 1)
    mirrored = [torch.equal(o, s.flip(dim)) for o, s in zip(out, x, strict=True)]
    kept = [torch.equal(o, s) for o, s in zip(out, x, strict=True)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))
    assert 16 < sum(mirrored) < 48


@pytest.mark.parametrize(("h", "w"), [(21, 21), (21, 41)])
def test_rotation_turns_about_the_centre_in_pixels(h: int, w: int) -> None:
    """A bright dot keeps its distance from the centre (non-square images too) and turns by at
    most rotate_degrees."""
    x = torch.zeros(32, 1, h, w)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    x[:, :, int(cy), int(cx) + 6] = 1.0  # 6 pixels right of the centre
    out = plain(rotate_degrees=40).transform(x, 1, 1)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    mass = out[:, 0].sum(dim=(1, 2))
    y = (out[:, 0] * ys).sum(dim=(1, 2)) / mass - cy
    x_ = (out[:, 0] * xs).sum(dim=(1, 2)) / mass - cx
    radius = torch.sqrt(y**2 + x_**2)
    assert torch.allclose(radius, torch.full_like(radius, 6.0), atol=0.3)
    angles = torch.rad2deg(torch.atan2(y, x_)).abs()
    assert float(angles.max()) <= 40.5 and float(angles.max()) > 20


def test_zoom_and_shift_move_a_dot_as_declared() -> None:
    x = torch.zeros(16, 1, 21, 21)
    x[:, :, 10, 14] = 1.0  # 4 pixels right of the centre
    out = plain(scale=(2.0, 2.0)).transform(x, 1, 1)  # zoom x2: 8 pixels right
    cols = (out[:, 0].sum(dim=1) * torch.arange(21)).sum(dim=1) / out[:, 0].sum(dim=(1, 2))
    assert torch.allclose(cols, torch.full_like(cols, 18.0), atol=0.3)
    moved = plain(translate=0.2).transform(x, 1, 1)  # up to 0.2 x 21 = 4.2 pixels either way
    rows = (moved[:, 0].sum(dim=2) * torch.arange(21)).sum(dim=1) / moved[:, 0].sum(dim=(1, 2))
    assert float((rows - 10).abs().max()) <= 4.3 and float((rows - 10).abs().max()) > 1


def test_colour_jitter_keeps_image_intensities_in_0_1() -> None:
    x = torch.rand(64, 3, 4, 4)
    out = plain(brightness=0.5, contrast=0.5, saturation=0.5).transform(x, 1, 1)
    assert float(out.min()) >= 0 and float(out.max()) <= 1 and not torch.equal(out, x)
    bright = plain(brightness=0.5).transform(x * 0.5, 1, 1) / (x * 0.5)  # one factor per sample
    per_sample = bright.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-5)
    assert float(per_sample.min()) >= 0.5 - 1e-6 and float(per_sample.max()) <= 1.5 + 1e-6


def test_saturation_keeps_the_grey_value_of_each_pixel() -> None:
    x = torch.rand(8, 3, 4, 4) * 0.2 + 0.4  # deviations from grey stay < 0.3: nothing clamped
    out = plain(saturation=0.5).transform(x, 1, 1)
    luma = torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
    assert torch.allclose((x * luma).sum(1), (out * luma).sum(1), atol=1e-6)
    assert not torch.allclose(x, out, atol=1e-3)


def _data(source: str = "images:x", **augment: Any) -> DataSpec:
    return DataSpec(source=source, augment=AugmentSpec(**augment))


def test_standardised_inputs_are_transformed_in_original_intensities() -> None:
    """Black padding is black: zero in pixel values, not in standardised ones."""
    raw = torch.rand(8, 1, 5, 5)
    mean, std = torch.full((25,), 0.4), torch.full((25,), 0.2)
    z = (raw - 0.4) / 0.2
    aug = make_augment(_data(crop_padding=1), 0, (1, 5, 5), (mean, std), torch.device("cpu"))
    assert aug is not None
    out = aug.transform(z, 1, 1) * 0.2 + 0.4
    assert torch.allclose(out, plain(crop_padding=1).transform(raw, 1, 1), atol=1e-6)
    assert int((out.abs().amin(dim=(1, 2, 3)) < 1e-6).sum()) >= 4  # shifted ones: black edges


def test_only_image_sources_clamp_to_0_1() -> None:
    x = torch.full((4, 1, 2, 2), 0.9)
    cpu = torch.device("cpu")
    images = make_augment(_data(brightness=0.5), 0, (1, 2, 2), (None, None), cpu)
    other = make_augment(_data("sklearn:digits", brightness=0.5), 0, (1, 2, 2), (None, None), cpu)
    assert images is not None and other is not None
    assert float(images.transform(x, 1, 1).max()) <= 1.0
    assert float(other.transform(x, 1, 1).max()) > 1.0  # digits' 0-16 has no [0, 1] bound


def test_the_augmentation_of_a_batch_replaces_its_input_only() -> None:
    batch = {INPUT: torch.rand(4, 1, 3, 3), TARGET: torch.arange(4)}
    out = plain(hflip=True)(batch, 1, 1)
    assert out[TARGET] is batch[TARGET]
    assert torch.equal(out[INPUT], plain(hflip=True).transform(batch[INPUT], 1, 1))


def test_an_augmentation_that_does_nothing_is_none() -> None:
    cpu, stats = torch.device("cpu"), (None, None)
    assert make_augment(_data(), 0, (1, 4, 4), stats, cpu) is None
    assert make_augment(_data(rotate_degrees=0.0, hflip=False), 0, (1, 4, 4), stats, cpu) is None


def test_shapes_the_augmentation_cannot_take_are_refused() -> None:
    with pytest.raises(SpecError, match=r"not shaped \(C, H, W\)") as e:
        check_augment(AugmentSpec(hflip=True), (64,))
    assert "fix: remove data.augment" in str(e.value)
    with pytest.raises(SpecError) as e:
        check_augment(AugmentSpec(saturation=0.2, crop_padding=8), (1, 8, 8))
    paths = [p.path for p in e.value.problems]
    assert paths == [("data", "augment", "saturation"), ("data", "augment", "crop_padding")]
    assert "expected 3 channels; found 1 channel(s)" in str(e.value)


def test_the_spec_refuses_an_empty_scale_range() -> None:
    with pytest.raises(ValueError, match=r"0 < low <= high, found \[1.2, 0.8\]"):
        AugmentSpec(scale=(1.2, 0.8))


def test_augment_on_a_flat_input_is_refused_before_training(tmp_path: Path) -> None:
    from runhelp import tiny

    spec = tiny(tmp_path, data={"augment": {"hflip": True}})
    with pytest.raises(SpecError, match=r"data\.augment transforms images"):
        train(spec)
    assert not (tmp_path / "runs").exists()  # nothing written


# ---- training batches only ----


class Inputs(Callback):
    """Records every input the model sees, with its mode (train or eval)."""

    def __init__(self) -> None:
        self.seen: list[tuple[bool, torch.Tensor]] = []

    def on_fit_start(self, state: FitState) -> None:
        def record(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            self.seen.append((module.training, args[0].detach().clone()))

        state.model.register_forward_pre_hook(record)


def test_augmentation_touches_training_batches_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = write_digits(tmp_path / "tree", per_class=10)
    augment = {"crop_padding": 1, "hflip": True, "rotate_degrees": 20, "contrast": 0.3}
    spec = image_spec(tree, data={"augment": augment, "batch_size": 16})
    calls: list[tuple[int, int, torch.Tensor, torch.Tensor]] = []
    original = augment_module.Augment.__call__

    def spy(self: Augment, data: Batch, epoch: int, batch: int) -> Batch:
        out = original(self, data, epoch, batch)
        calls.append((epoch, batch, data[INPUT].clone(), out[INPUT]))
        return out

    monkeypatch.setattr(augment_module.Augment, "__call__", spy)
    inputs = Inputs()
    train(spec, callbacks=[inputs])

    bundle = prepare_data(spec)  # the decode, as training made it
    unaugmented = prepare_data(spec.model_copy(update={"data": spec.data.model_copy(
        update={"augment": AugmentSpec()})}))  # fmt: skip
    assert bundle.val is not None and bundle.test is not None
    assert unaugmented.val is not None and unaugmented.test is not None
    assert torch.equal(bundle.val.x, unaugmented.val.x)
    assert torch.equal(bundle.test.x, unaugmented.test.x)
    # the augmentation saw each epoch's training batches, in the epoch's order, and nothing else
    n, size = len(bundle.train), spec.data.batch_size
    for epoch in (1, 2):
        seen = torch.cat([x for e, _, x, _ in calls if e == epoch])
        assert torch.equal(seen, bundle.train.x[epoch_order(spec.seed, epoch, n)])
        assert [b for e, b, _, _ in calls if e == epoch] == list(range(1, math.ceil(n / size) + 1))
    # training forwards saw the augmented batches; evaluation saw val (per epoch) and test as is
    trained = [x for training, x in inputs.seen if training]
    evaluated = [x for training, x in inputs.seen if not training]
    assert len(trained) == len(calls)
    assert all(torch.equal(t, out) for t, (_, _, _, out) in zip(trained, calls, strict=True))
    assert not any(torch.equal(t, x) for t, (_, _, x, _) in zip(trained, calls, strict=True))
    assert [len(x) for x in evaluated] == [len(bundle.val)] * 2 + [len(bundle.test)]
    assert torch.equal(evaluated[0], unaugmented.val.x)
    assert torch.equal(evaluated[1], unaugmented.val.x)
    assert torch.equal(evaluated[2], unaugmented.test.x)


def test_any_image_shaped_input_takes_augmentation_and_is_standardised_per_channel() -> None:
    from nnspec.hydra.compose import compose

    spec = compose(
        ["experiment=digits_cnn", "data.augment.hflip=true", "data.augment.scale=[0.9,1.1]"]
    )
    assert spec.data.augment.hflip and spec.data.augment.scale == (0.9, 1.1)
    bundle = prepare_data(spec)
    assert bundle.info.x_std is not None and len(set(bundle.info.x_std.tolist())) == 1
    plain_bundle = prepare_data(compose(["experiment=digits_cnn"]))  # per pixel, as before
    assert plain_bundle.info.x_std is not None and len(set(plain_bundle.info.x_std.tolist())) > 1


@pytest.mark.slow  # two trainings, one through a DataLoader
def test_streamed_batches_are_augmented_the_same_way(tmp_path: Path) -> None:
    """data.in_memory: no reads batches through a DataLoader; the same batches get the same
    draws, so both paths train to the same weights."""
    tree = write_digits(tmp_path / "tree", per_class=10)
    augment = {"crop_padding": 1, "rotate_degrees": 10}
    losses = []
    for in_memory in ("yes", "no"):
        spec = image_spec(tree, data={"augment": augment, "in_memory": in_memory},
                          train={"epochs": 1})  # fmt: skip
        result = train(spec, run_dir=tmp_path / in_memory)
        losses.append(result.test_metrics["loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
