"""The one depth interface: frames in, depth out, with progress and cancellation.

Every estimator (DepthCrafter, Depth Anything V2, ...) implements :class:`DisparityEstimator`:
``estimate(frames, progress=..., cancel=..., **options) -> disparity [T, H, W]`` normalised to
``[0, 1]`` over the clip (larger = nearer). :func:`estimate` turns that into depth through the
official mapping, so every estimator feeds the renderer the distribution the model was trained on.

Progress and cancellation follow :mod:`trajcrafter_core.progress` (work units: a denoising step,
an encoded/decoded chunk, a batch of frames); ``cancel()`` returning ``True`` stops the work with
:class:`EstimationCancelled`.
"""

from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

import torch

from ..conventions import as_frames
from ..errors import TrajCrafterError
from ..progress import CancelFn, Cancelled, ProgressFn
from ..progress import WorkTracker as _WorkTracker
from .mapping import OFFICIAL_FAR, OFFICIAL_NEAR, official_depth_from_disparity

__all__ = [
    "ProgressCallback",
    "CancelCallback",
    "EstimationCancelled",
    "DisparityEstimator",
    "WorkTracker",
    "estimate",
    "as_video",
]

ProgressCallback = ProgressFn
CancelCallback = CancelFn


class EstimationCancelled(Cancelled):
    """Raised when the ``cancel`` callback asked the estimator to stop."""


@runtime_checkable
class DisparityEstimator(Protocol):
    """Anything with ``estimate(frames, *, progress, cancel, **options) -> [T, H, W]`` in ``[0, 1]``."""

    def estimate(self, frames, **options) -> torch.Tensor:  # pragma: no cover - protocol
        ...


class WorkTracker(_WorkTracker):
    """:class:`trajcrafter_core.progress.WorkTracker` raising :class:`EstimationCancelled`."""

    def check(self) -> None:
        if self._cancel is not None and self._cancel():
            raise EstimationCancelled(f"depth estimation cancelled after {self.done}/{self.total} steps")


def as_video(frames, name: str = "frames") -> torch.Tensor:
    """Frames as ``float32 [T, H, W, 3]`` in 0..1; also accepts a list of ``[H, W, 3]`` frames.

    A list whose frames differ in size is refused with the first offending frame named.
    """
    if isinstance(frames, (list, tuple)):
        if len(frames) == 0:
            raise TrajCrafterError(f"{name} has zero frames; give at least one frame.")
        items = [as_frames(f, f"{name}[{i}]") for i, f in enumerate(frames)]
        first = tuple(items[0].shape[1:3])
        for i, item in enumerate(items):
            if tuple(item.shape[1:3]) != first:
                raise TrajCrafterError(
                    f"{name}[{i}] is {item.shape[1]}x{item.shape[2]} (HxW) but {name}[0] is "
                    f"{first[0]}x{first[1]}; all frames of a clip must have one size. Resize them "
                    f"to a common size first."
                )
        return torch.cat(items, dim=0)
    return as_frames(frames, name)


def estimate(
    frames,
    estimator: DisparityEstimator,
    *,
    near: float = OFFICIAL_NEAR,
    far: float = OFFICIAL_FAR,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCallback] = None,
    **options,
) -> torch.Tensor:
    """Depth ``float32 [T, H, W]`` (> 0, larger = farther) for ``frames [T, H, W, 3]`` in 0..1.

    The estimator's clip-normalised disparity goes through
    :func:`~trajcrafter_core.depth.mapping.official_depth_from_disparity` with ``near``/``far``;
    ``options`` go to the estimator (window size, steps, seed, ...). Output on CPU.
    """
    if not isinstance(estimator, DisparityEstimator):
        raise TrajCrafterError(
            f"estimator must have an estimate(frames, ...) method (e.g. DepthCrafterEstimator or "
            f"DepthAnythingEstimator), got {type(estimator).__name__}."
        )
    frames = as_video(frames)
    disparity = estimator.estimate(frames, progress=progress, cancel=cancel, **options)
    if tuple(disparity.shape) != tuple(frames.shape[:3]):
        raise TrajCrafterError(
            f"the depth estimator returned shape {list(disparity.shape)} for frames "
            f"{list(frames.shape[:3])}; expected one map per frame at the frames' size."
        )
    return official_depth_from_disparity(disparity.cpu(), near=near, far=far)
