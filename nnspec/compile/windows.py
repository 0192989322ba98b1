"""Shape arithmetic shared by the shape functions: rank checks, per-dim arguments, the conv/pool
window formula and the hints in error messages (pure Python, no tensors).

Output size of a conv or pooling window (torch's ``floor`` mode), per spatial dim:
``out = (L + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nnspec.compile.infer import LayerSite, Shape
from nnspec.spec import layers as L

__all__ = [
    "HINT_SEARCH",
    "RANK_NAMES",
    "reshape_hint",
    "divisors",
    "rank_ok",
    "require_rank",
    "per_dim",
    "window",
]

HINT_SEARCH = 4096
RANK_NAMES = {1: "a 1-D input (features,)", 2: "a 2-D input (C, L)", 3: "a 3-D input (C, H, W)"}


def reshape_hint(numel: int, rank: int) -> list[int]:
    """A plausible ``reshape`` target of ``numel`` elements: square-ish spatial dims after C.

    Example:
        >>> reshape_hint(128, 3), reshape_hint(128, 2)
        ([8, 4, 4], [16, 8])
    """
    # Hints only: the search is capped so a width of 10**9 is still answered in microseconds.
    sides = range(1, min(math.isqrt(numel), HINT_SEARCH) + 1)
    if rank == 3:
        side = max(s for s in sides if numel % (s * s) == 0 and s**3 <= numel)
        return [numel // (side * side), side, side]
    if rank == 2:
        side = max(s for s in sides if numel % s == 0)
        return [numel // side, side]
    return [numel]


def divisors(n: int, count: int = 8) -> list[int]:
    """The ``count`` smallest divisors of ``n`` (searched up to a cap: a hint, not a proof)."""
    small = [g for g in range(1, min(n, HINT_SEARCH) + 1) if n % g == 0]
    return (small + ([n] if n not in small else []))[:count]


def rank_ok(shape: Shape, site: LayerSite, ranks: Sequence[int]) -> bool:
    """Check the input rank; record a problem naming both shapes and the previous layer."""
    if len(shape) in ranks:
        return True
    want = " or ".join(RANK_NAMES.get(r, f"a {r}-D input") for r in ranks)
    rank = ranks[-1]
    numel = math.prod(shape)
    reshape = f"{{kind: reshape, shape: {reshape_hint(numel, rank)}}}"
    if len(shape) < rank and "flatten" in site.earlier_kinds:
        fix = f"move {site.kind} before flatten, or insert {reshape}"
    elif len(shape) < rank:
        fix = f"insert {reshape} before it"
    else:
        fix = "insert {kind: flatten} before it"
    if site.prev == "model.input_shape":
        fix = f"set model.input_shape to {want.split(' input ')[-1]}, or {fix}"
    site.error(
        None, f"{site.kind}: wrong input rank", expected=want, found=site.from_prev(shape), fix=fix
    )
    return False


def require_rank(shape: Shape, site: LayerSite, rank: int, expected: str, fix: str) -> bool:
    """Check the input rank of a layer whose fix is specific to it (unlike :func:`rank_ok`).

    Args:
        shape: the per-sample input shape.
        site: where problems are recorded.
        rank: the one accepted rank.
        expected: what the message says is expected, e.g. ``"a 3-D input (C, H, W)"``.
        fix: the hint shown with the problem.

    Returns:
        Whether the rank is right (a problem was recorded otherwise).
    """
    if len(shape) == rank:
        return True
    site.error(
        None,
        f"{site.kind}: wrong input rank",
        expected=expected,
        found=site.from_prev(shape),
        fix=fix,
    )
    return False


def per_dim(
    value: int | tuple[int, ...], nd: int, site: LayerSite, fld: str
) -> tuple[int, ...] | None:
    if isinstance(value, int):
        return (value,) * nd
    if len(value) == nd:
        return tuple(value)
    site.error(
        fld,
        f"{site.kind}: {fld} has the wrong number of values",
        expected=f"an int or {nd} values (one per spatial dim)",
        found=f"{list(value)}",
        fix=f"write {fld}: {value[0] if value else 3} (one int for every dim)",
    )
    return None


def window(
    layer: L._ConvBase | L._PoolBase,
    shape: Shape,
    site: LayerSite,
    nd: int,
    *,
    dilation: int | tuple[int, ...] = 1,
    stride: int | tuple[int, ...] | None = None,
) -> Shape | None:
    """Spatial output size of a conv or pool window; None after recording a problem."""
    k = per_dim(layer.kernel_size, nd, site, "kernel_size")
    s = per_dim(layer.kernel_size if stride is None else stride, nd, site, "stride")
    d = per_dim(dilation, nd, site, "dilation")
    pad = layer.padding
    if pad == "same":
        if s is not None and any(x > 1 for x in s):
            site.error(
                "padding",
                f"{site.kind}: padding 'same' needs stride 1",
                expected="stride 1 with padding 'same'",
                found=f"stride {layer.stride}",
                fix="keep stride 1 with padding 'same' and downsample with a pool, "
                "or give padding as an int",
            )
            return None
        return shape[1:] if k and d else None
    p = per_dim(0 if pad == "valid" else pad, nd, site, "padding")
    if k is None or s is None or d is None or p is None:
        return None
    out = []
    for size, kk, ss, dd, pp in zip(shape[1:], k, s, d, p, strict=True):
        span = dd * (kk - 1) + 1
        if span > size + 2 * pp:
            site.error(
                "kernel_size",
                f"{site.kind}: kernel larger than its input",
                expected=f"a kernel span <= {size + 2 * pp} (input {size} + padding 2x{pp})",
                found=f"kernel span {span} on input {site.from_prev(shape)}",
                fix="use a smaller kernel_size, add padding, or remove an earlier pooling layer",
            )
            return None
        out.append((size + 2 * pp - span) // ss + 1)
    return tuple(out)
