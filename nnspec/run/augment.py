"""Training augmentation (DATA-10): random crops with padding, flips, rotation / shift / zoom and
colour jitter on whole batches, with torch tensor operations (``pad``, indexing, ``flip``,
``affine_grid`` + ``grid_sample``), so they run where the batch is, CPU or GPU.

The trainer applies :class:`Augment` to training batches only (``Trainer.train_epoch``);
evaluation, the final test, ``predict`` and the pre-flight checks read the splits as they are.
The draws of a batch come from a generator seeded with (seed, epoch, batch), never from process
RNG state: the same run sees the same augmented batches, a resumed one included. They are drawn
on the CPU and copied to the batch's device, so a CPU and a GPU run draw the same parameters.

The transformations work on the inputs' original intensities (un-standardised with the run's
training statistics, then standardised again), so black padding is black and brightness scales
intensities, whatever the standardisation; an ``images:`` source's intensities stay in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nnspec.errors import Problem, SpecError
from nnspec.run.batches import INPUT, Batch
from nnspec.spec.data import DataSpec
from nnspec.spec.images import AugmentSpec

__all__ = ["Augment", "check_augment", "make_augment", "batch_generator"]

STREAM = 0xA06  # keeps these draws apart from the epoch order's, which mixes only (seed, epoch)
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 grey of an RGB pixel, as Pillow's convert("L")


def check_augment(spec: AugmentSpec, shape: Sequence[int]) -> None:
    """Refuse an augmentation the inputs cannot take (every problem at once).

    Raises:
        SpecError: inputs not shaped (C, H, W); saturation without 3 channels; a crop padding
            as large as the image.
    """
    where = ("data", "augment")
    if len(shape) != 3:
        raise SpecError(
            Problem(
                where,
                "data.augment transforms images; the model's input is not shaped (C, H, W)",
                found=f"input_shape {list(shape)}",
                fix="remove data.augment, or give the model an input_shape [C, H, W]",
            )
        )
    problems = []
    if spec.saturation and shape[0] != 3:
        problems.append(
            Problem(
                (*where, "saturation"),
                "saturation needs RGB inputs",
                expected="3 channels",
                found=f"{shape[0]} channel(s)",
                fix="remove saturation (brightness and contrast work on any channel count)",
            )
        )
    if spec.crop_padding >= min(shape[1], shape[2]):
        problems.append(
            Problem(
                (*where, "crop_padding"),
                "crop_padding shifts the image by up to its whole size, leaving some crops black",
                expected=f"less than {min(shape[1], shape[2])}",
                found=str(spec.crop_padding),
                fix="use about 1/8 of the side, e.g. 4 for 32 x 32",
            )
        )
    if problems:
        raise SpecError(problems)


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The CPU generator of one training batch's draws: a function of (seed, epoch, batch)."""
    state = np.random.SeedSequence([seed, epoch, batch, STREAM]).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0]) & 0x7FFF_FFFF_FFFF_FFFF)


def _uniform(n: int, half: float, gen: torch.Generator, center: float = 0.0) -> torch.Tensor:
    return center + (torch.rand(n, generator=gen) * 2 - 1) * half


class Augment:
    """The ``data.augment`` transformations of one run; calling it augments a training batch.

    Args:
        spec: the augmentation section (checked with :func:`check_augment`).
        seed: the run's seed.
        mean, std: the standardisation of the inputs, broadcastable to (1, C, H, W), or None.
        pixel_range: the range original intensities are clamped to (an ``images:`` source's
            [0, 1]), or None.

    Example:
        >>> aug = Augment(AugmentSpec(hflip=True), 0, None, None, (0.0, 1.0))
        >>> x = torch.rand(4, 1, 2, 3)
        >>> bool(torch.equal(aug.transform(x, 1, 1), aug.transform(x, 1, 1)))
        True
    """

    def __init__(
        self,
        spec: AugmentSpec,
        seed: int,
        mean: torch.Tensor | None,
        std: torch.Tensor | None,
        pixel_range: tuple[float, float] | None,
    ) -> None:
        self.spec, self.seed, self.pixel_range = spec, seed, pixel_range
        self.stats = (mean, std) if mean is not None and std is not None else None

    def __call__(self, data: Batch, epoch: int, batch: int) -> Batch:
        """Training batch ``batch`` (1-based) of ``epoch`` with its input augmented."""
        return {**data, INPUT: self.transform(data[INPUT], epoch, batch)}

    def transform(self, x: torch.Tensor, epoch: int, batch: int) -> torch.Tensor:
        """The augmented copy of inputs ``x`` (N, C, H, W); ``x`` is left unchanged."""
        s, gen, n = self.spec, batch_generator(self.seed, epoch, batch), x.shape[0]
        raw = x * self.stats[1] + self.stats[0] if self.stats is not None else x
        if s.crop_padding:
            raw = self._crop(raw, torch.randint(0, 2 * s.crop_padding + 1, (2, n), generator=gen))
        for on, dim in ((s.hflip, -1), (s.vflip, -2)):
            if on:
                flip = (torch.rand(n, generator=gen) < 0.5).to(x.device).reshape(-1, 1, 1, 1)
                raw = torch.where(flip, raw.flip(dim), raw)
        if s.geometric:
            raw = self._affine(raw, gen)
        raw = self._colour(raw, gen)
        if self.pixel_range is not None:
            raw = raw.clamp(*self.pixel_range)
        return (raw - self.stats[0]) / self.stats[1] if self.stats is not None else raw

    def _crop(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Pad with black, then cut each sample's H x W window at its own offset (exact pixels)."""
        p, (n, c, h, w) = self.spec.crop_padding, x.shape
        padded = F.pad(x, (p, p, p, p))
        oy, ox = offsets.to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device)).reshape(n, 1, h, 1)
        cols = (ox[:, None] + torch.arange(w, device=x.device)).reshape(n, 1, 1, w)
        samples = torch.arange(n, device=x.device).reshape(n, 1, 1, 1)
        return padded[samples, torch.arange(c, device=x.device).reshape(1, c, 1, 1), rows, cols]

    def _affine(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Rotate, shift and zoom each sample about the image centre (bilinear, black fill)."""
        s, (n, _, h, w) = self.spec, x.shape
        angle = _uniform(n, math.radians(s.rotate_degrees), gen)
        shift = _uniform(2 * n, s.translate, gen).reshape(2, n) * 2  # normalised coordinates
        low, high = s.scale
        zoom = low + torch.rand(n, generator=gen) * (high - low)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # theta maps output to input coordinates in [-1, 1]; the aspect factors keep a rotation
        # a rotation in pixels when H != W.
        theta = torch.stack(
            [
                torch.stack([cos, -sin * h / w, shift[0]], 1),
                torch.stack([sin * w / h, cos, shift[1]], 1),
            ],
            1,
        )
        theta = theta.to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _colour(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Brightness, contrast (about each image's mean grey) and saturation (RGB)."""
        s, n = self.spec, x.shape[0]

        def factor(amount: float) -> torch.Tensor:
            return _uniform(n, amount, gen, 1.0).to(x.device, x.dtype).reshape(n, 1, 1, 1)

        if s.brightness:
            x = x * factor(s.brightness)
        if s.contrast:
            mean = self._grey(x).mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * factor(s.contrast) + mean
        if s.saturation:
            grey = self._grey(x)
            x = grey + (x - grey) * factor(s.saturation)
        return x

    @staticmethod
    def _grey(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3:
            return x.mean(dim=1, keepdim=True)
        return (x * x.new_tensor(LUMA).reshape(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def make_augment(
    data: DataSpec,
    seed: int,
    shape: Sequence[int],
    stats: tuple[torch.Tensor | None, torch.Tensor | None],
    device: torch.device,
) -> Augment | None:
    """The run's augmentation (``data.augment``) for inputs of ``shape`` standardised with the
    per-feature ``stats`` (mean, std; or None); None when it transforms nothing.

    Raises:
        SpecError: an augmentation inputs of ``shape`` cannot take.
    """
    spec = data.augment
    if not spec.active:
        return None
    check_augment(spec, shape)
    mean, std = stats
    if mean is not None and std is not None:
        view = (1, *shape)
        mean, std = mean.to(device).reshape(view), std.to(device).reshape(view)
    pixels = (0.0, 1.0) if data.source.startswith("images:") else None  # decoded to [0, 1]
    return Augment(spec, seed, mean, std, pixels)
