"""Video depth behind one interface, mapped to the depth TrajectoryCrafter was trained on.

- :func:`estimate` ``(frames [T,H,W,3] 0..1, estimator, near, far, progress, cancel, ...)`` ->
  depth ``[T,H,W]`` (> 0, larger = farther, one unit along the clip).
- Estimators (each ``.estimate(frames) -> disparity [T,H,W]`` in ``[0, 1]``, 1 = nearest):
  :class:`DepthCrafterEstimator` (official DepthCrafter inference) and
  :class:`DepthAnythingEstimator` (Depth Anything V2 per frame, scale/shift aligned).
- :func:`official_depth_from_disparity` — the official ``10000 / (3900 d)`` mapping clipped to
  ``[near, far]``; :func:`metric_depth_passthrough` for metric depth.
- External depth: :func:`depth_from_image` (another pack's IMAGE, with polarity),
  :func:`depth_from_array` / :func:`load_depth_array` (.npy/.npz/PNG sequences).
- Previews: :func:`colorize_depth`, :func:`colorize_disparity`.
- Tiny random-init models in the official layouts: :mod:`.tiny`.

The model-backed estimators import diffusers/transformers on first use only.
"""

from __future__ import annotations

import importlib

from .external import depth_from_array, depth_from_image, disparity_from_image, load_depth_array
from .interface import DisparityEstimator, EstimationCancelled, as_video, estimate
from .mapping import (
    OFFICIAL_FAR,
    OFFICIAL_NEAR,
    metric_depth_passthrough,
    normalize_disparity,
    official_depth_from_disparity,
)
from .visualize import colorize_depth, colorize_disparity

_LAZY = {
    "DepthCrafterEstimator": ".depthcrafter",
    "DepthAnythingEstimator": ".depth_anything",
    "DEPTH_ANYTHING_V2_LICENCES": ".depth_anything",
    "DepthCrafterUNet": ".unet",
}

__all__ = [
    "estimate",
    "as_video",
    "DisparityEstimator",
    "EstimationCancelled",
    "OFFICIAL_NEAR",
    "OFFICIAL_FAR",
    "official_depth_from_disparity",
    "metric_depth_passthrough",
    "normalize_disparity",
    "depth_from_image",
    "depth_from_array",
    "disparity_from_image",
    "load_depth_array",
    "colorize_depth",
    "colorize_disparity",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
