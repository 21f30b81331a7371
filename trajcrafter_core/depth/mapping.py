"""From an estimator's relative disparity to the depth the renderer and the model expect.

TrajectoryCrafter was trained on depth made from DepthCrafter's output by one fixed mapping:
the clip's disparity is normalised to ``[0, 1]`` over the whole clip, multiplied by 3900 (to look
like Depth Anything's raw output scale), floored at ``1e-5``, inverted as ``10000 / x`` and
clipped to ``[near, far]`` (official ``near = 1e-4``, ``far = 1e4``). Every estimator's output goes
through :func:`official_depth_from_disparity` so that point clouds, radii and holes match the
training distribution. Users who bring metric depth use :func:`metric_depth_passthrough`.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..conventions import _to_tensor, check_finite
from ..errors import TrajCrafterError

__all__ = [
    "OFFICIAL_NEAR",
    "OFFICIAL_FAR",
    "DISPARITY_SCALE",
    "DEPTH_NUMERATOR",
    "MIN_SCALED_DISPARITY",
    "normalize_disparity",
    "official_depth_from_disparity",
    "metric_depth_passthrough",
]

OFFICIAL_NEAR = 1e-4
OFFICIAL_FAR = 1e4
DISPARITY_SCALE = 3900.0  # "compatible with da output" in the official code
DEPTH_NUMERATOR = 10000.0
MIN_SCALED_DISPARITY = 1e-5

# A clip whose disparity spans less than this cannot be normalised meaningfully.
_MIN_DISPARITY_RANGE = 1e-6


def _as_maps(x, name: str) -> torch.Tensor:
    x = _to_tensor(x, name)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise TrajCrafterError(f"{name} must have shape [T, H, W], got {list(x.shape)}.")
    if x.shape[0] == 0:
        raise TrajCrafterError(f"{name} has zero frames; give at least one map.")
    if not x.is_floating_point():
        x = x.float()
    check_finite(x, name)
    return x


def _check_near_far(near: float, far: float) -> None:
    if not (near > 0 and far > near):
        raise TrajCrafterError(
            f"near/far clipping must satisfy 0 < near < far, got near={near}, far={far} "
            f"(official: near={OFFICIAL_NEAR}, far={OFFICIAL_FAR})."
        )


def normalize_disparity(disparity, name: str = "disparity") -> torch.Tensor:
    """Min-max normalise ``[T, H, W]`` disparity to ``[0, 1]`` over the *whole clip* (float32).

    One min and one max for all frames, as the official code does, so relative depth stays
    consistent along the clip. A (nearly) constant clip cannot be normalised and raises.
    """
    d = _as_maps(disparity, name).float()
    lo, hi = d.min(), d.max()
    span = float(hi - lo)
    if not span > _MIN_DISPARITY_RANGE:
        raise TrajCrafterError(
            f"{name} is constant over the whole clip (every value is {float(lo):.6g}), so it "
            f"cannot be normalised to [0, 1] (division by zero). The video may be blank or the "
            f"depth input empty; check the frames, or give metric depth instead."
        )
    return (d - lo) / (hi - lo)


def official_depth_from_disparity(disparity, near: float = OFFICIAL_NEAR, far: float = OFFICIAL_FAR) -> torch.Tensor:
    """Official TrajectoryCrafter mapping of normalised disparity ``d`` in ``[0, 1]`` to depth.

    ``depth = clip(10000 / max(3900 * d, 1e-5), near, far)``, elementwise in float32, in the
    order of the official code (``models/infer.py``): scale, floor, invert, clip. ``d = 1`` (the
    nearest point) gives ``10000 / 3900 = 2.5641``; ``d = 0`` gives ``far``. With the official
    ``far = 1e4`` this equals ``10000 / (3900 * max(d, 1e-5))`` clipped the same way: the two
    floors differ only for ``d < 1e-5``, where both results exceed ``far``.

    Input ``[T, H, W]`` (or ``[H, W]``), values outside ``[0, 1]`` are mapped as they are.
    Returns float32 ``[T, H, W]`` depth, larger = farther.
    """
    _check_near_far(near, far)
    d = _as_maps(disparity, "disparity").float()
    scaled = d * DISPARITY_SCALE
    scaled = scaled.clamp_min(MIN_SCALED_DISPARITY)
    depth = DEPTH_NUMERATOR / scaled
    return depth.clamp(near, far)


def metric_depth_passthrough(depth, near: Optional[float] = None, far: Optional[float] = None) -> torch.Tensor:
    """Metric depth the user brings, validated (finite, > 0) and optionally clipped to ``[near, far]``.

    No rescaling: units stay the user's (metres, usually). Returns float32 ``[T, H, W]``.
    """
    d = _as_maps(depth, "depth").float()
    if bool((d <= 0).any()):
        raise TrajCrafterError(
            f"depth has {int((d <= 0).sum())} value(s) <= 0; metric depth must be positive "
            f"(larger = farther). If this is disparity or inverse depth, use kind='disparity'."
        )
    if near is not None or far is not None:
        lo = near if near is not None else 0.0
        hi = far if far is not None else float("inf")
        if not (lo >= 0 and hi > lo):
            raise TrajCrafterError(f"near/far must satisfy 0 <= near < far, got near={near}, far={far}.")
        d = d.clamp(min=lo if near is not None else None, max=hi if far is not None else None)
    return d
