"""Image data: how an ``images:`` source fits each picture to ``input_shape``, and the training
augmentation (DATA-10) that ``data.augment`` declares for any input shaped (C, H, W)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nnspec.spec.base import NonNegInt, Spec, field_error

__all__ = ["ImageFit", "ImageSpec", "AugmentSpec"]

ImageFit = Literal["crop", "stretch", "pad"]


class ImageSpec(Spec):
    """How an ``images:PATH`` source decodes its files (every split, and ``predict``, alike).

    The channel count of ``model.input_shape`` picks the colour mode: 1 = grayscale, 3 = RGB.
    """

    fit: ImageFit = Field(
        default="crop",
        description="How an image of another size becomes H x W: crop = scale until the shorter "
        "side fits, then cut the centre; stretch = scale each side to fit (aspect ratio lost); "
        "pad = scale until the longer side fits, then pad with black.",
    )


class AugmentSpec(Spec):
    """Random transformations of the training batches only (DATA-10); validation, test and
    ``predict`` never see them. Each batch's draws depend only on (seed, epoch, batch), so a
    resumed run replays them. Every transformation is off by default; the geometric ones fill
    uncovered pixels with black, and intensities stay within the training data's range.
    """

    crop_padding: NonNegInt = Field(
        default=0,
        description="Random crop: pad each side with this many black pixels, then cut an H x W "
        "window at a random offset (a shift of up to crop_padding pixels).",
    )
    hflip: bool = Field(default=False, description="Mirror left-right with probability 0.5.")
    vflip: bool = Field(default=False, description="Mirror top-bottom with probability 0.5.")
    rotate_degrees: float = Field(
        default=0.0, ge=0, le=180, description="Rotate by an angle drawn from [-d, d] degrees."
    )
    translate: float = Field(
        default=0.0,
        ge=0,
        lt=0.5,
        description="Shift by up to this fraction of the width and height (bilinear).",
    )
    scale: tuple[float, float] = Field(
        default=(1.0, 1.0), description="Zoom by a factor drawn from [low, high]."
    )
    brightness: float = Field(
        default=0.0, ge=0, lt=1, description="Multiply intensities by a factor from [1-b, 1+b]."
    )
    contrast: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Scale each image's deviation from its mean intensity by [1-c, 1+c].",
    )
    saturation: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="RGB only: scale each pixel's deviation from its grey value by [1-s, 1+s].",
    )

    @model_validator(mode="after")
    def _scale_range(self) -> AugmentSpec:
        low, high = self.scale
        if not 0 < low <= high:
            raise field_error(
                ("scale",),
                f"scale must be [low, high] with 0 < low <= high, found [{low:g}, {high:g}]",
                list(self.scale),
            )
        return self

    @property
    def geometric(self) -> bool:
        """Whether a rotation, shift or zoom is drawn (one affine resampling per batch)."""
        return bool(self.rotate_degrees or self.translate or self.scale != (1.0, 1.0))

    @property
    def active(self) -> bool:
        """Whether any transformation is on (an all-off section, e.g. from a sweep, is a no-op)."""
        return bool(
            self.crop_padding or self.hflip or self.vflip or self.geometric
            or self.brightness or self.contrast or self.saturation
        )  # fmt: skip
