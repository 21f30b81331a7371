"""Lifting depth maps to camera-space points, and flying-pixel detection at depth edges.

Conventions (see :mod:`trajcrafter_core.conventions`): OpenCV camera axes (x right, y down,
z forward), pixel ``(u, v)`` centred at integer coordinates, depth = z along the optical axis.
A pixel ``(u, v)`` with depth ``d`` lifts to ``d * K^-1 [u, v, 1]^T``.

A :class:`PointCloud` keeps the frames, depths and intrinsics only; the xyz points are computed
on demand (per frame or per chunk of frames) so a long clip never holds all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .conventions import as_depth, as_frames, as_intrinsics
from .errors import TrajCrafterError

__all__ = [
    "PointCloud",
    "pixel_rays",
    "lift_depth",
    "flying_pixel_mask",
    "DEFAULT_FLYING_THRESHOLD",
]

#: Default log-depth jump (about 10 % relative) above which a pixel counts as a flying pixel.
DEFAULT_FLYING_THRESHOLD = 0.1

IndexLike = Union[int, slice, Sequence[int], torch.Tensor, None]


def pixel_rays(K: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Rays ``K^-1 [u, v, 1]`` of every pixel: ``[N, H, W, 3]`` for ``K`` ``[N, 3, 3]`` (or ``[3, 3]``).

    The z component is 1, so ``depth * ray`` is the camera-space point of that pixel.
    """
    if K.ndim == 2:
        K = K.unsqueeze(0)
    K_inv = torch.linalg.inv(K.double()).to(torch.float32)  # [N, 3, 3]
    v, u = torch.meshgrid(
        torch.arange(height, device=K.device, dtype=torch.float32),
        torch.arange(width, device=K.device, dtype=torch.float32),
        indexing="ij",
    )
    pix = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # [H, W, 3]
    return torch.einsum("nij,hwj->nhwi", K_inv, pix)


def lift_depth(depths: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Camera-space points ``[T, H, W, 3]`` of depth maps ``[T, H, W]`` with ``K`` ``[3,3]``/``[T,3,3]``."""
    depths = as_depth(depths, "depths")
    T, H, W = depths.shape
    K = as_intrinsics(K, "K", count=T).to(depths.device)
    return depths.unsqueeze(-1) * pixel_rays(K, H, W)


def flying_pixel_mask(depths: torch.Tensor, threshold: float = DEFAULT_FLYING_THRESHOLD) -> torch.Tensor:
    """Flag pixels at depth edges: ``bool [T, H, W]``, True = flying pixel.

    A pixel is flagged when its log-depth differs from one of its 4 neighbours by more than
    ``threshold`` (0.1 ≈ a 10 % depth jump). Both sides of a depth edge are flagged, which
    removes the mixed-colour pixels that depth networks smear between foreground and
    background; smooth surfaces (also slanted ones, away from grazing angles) are kept.
    """
    if threshold <= 0:
        raise TrajCrafterError(f"flying-pixel threshold must be > 0, got {threshold}.")
    log_d = torch.log(depths)
    flagged = torch.zeros(depths.shape, dtype=torch.bool, device=depths.device)
    jump_x = (log_d[:, :, 1:] - log_d[:, :, :-1]).abs() > threshold
    jump_y = (log_d[:, 1:, :] - log_d[:, :-1, :]).abs() > threshold
    flagged[:, :, 1:] |= jump_x
    flagged[:, :, :-1] |= jump_x
    flagged[:, 1:, :] |= jump_y
    flagged[:, :-1, :] |= jump_y
    return flagged


def _frame_indices(index: IndexLike, count: int, device: torch.device) -> torch.Tensor:
    """Normalise an int / slice / sequence / tensor into a 1-D long tensor of frame indices."""
    if index is None:
        return torch.arange(count, device=device)
    if isinstance(index, slice):
        return torch.arange(count, device=device)[index]
    idx = torch.as_tensor(index, device=device)
    if idx.ndim == 0:
        idx = idx.unsqueeze(0)
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.ndim != 1:
        raise TrajCrafterError(f"frame index must be integers, got {index!r}.")
    idx = idx.long()
    if idx.numel() and (int(idx.min()) < -count or int(idx.max()) >= count):
        raise TrajCrafterError(
            f"frame index {idx.tolist()[:8]} out of range for a point cloud of {count} frames."
        )
    return idx % count


@dataclass
class PointCloud:
    """One point cloud per source frame: colours, depths and intrinsics; points lifted lazily.

    - ``frames``: float32 ``[T, H, W, 3]`` in 0..1 (the colour of each point).
    - ``depths``: float32 ``[T, H, W]``, finite and > 0 (z-depth, larger = farther).
    - ``K``: float32 ``[T, 3, 3]`` (a ``[3, 3]`` input is shared by all frames), pixels at ``H x W``.

    Construct with the plain constructor; inputs are validated and normalised on creation.
    All three tensors live on the same device (the device of ``frames``).
    """

    frames: torch.Tensor
    depths: torch.Tensor
    K: torch.Tensor

    def __post_init__(self) -> None:
        self.frames = as_frames(self.frames, "point cloud frames")
        self.depths = as_depth(self.depths, "point cloud depths", like=self.frames).to(self.frames.device)
        self.K = as_intrinsics(self.K, "point cloud intrinsics K", count=self.num_frames).to(self.frames.device)

    @classmethod
    def _of_checked(cls, frames: torch.Tensor, depths: torch.Tensor, K: torch.Tensor) -> "PointCloud":
        """A cloud from tensors taken from a validated cloud (no second pass over the values)."""
        cloud = cls.__new__(cls)
        cloud.frames, cloud.depths, cloud.K = frames, depths, K
        return cloud

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple:
        """``(height, width)`` of the source frames."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def device(self) -> torch.device:
        return self.frames.device

    def __len__(self) -> int:
        return self.num_frames

    def points(self, index: IndexLike = None) -> torch.Tensor:
        """Camera-space xyz ``[t, H, W, 3]`` of the selected frames (all when ``index`` is None)."""
        idx = _frame_indices(index, self.num_frames, self.device)
        H, W = self.size
        return self.depths[idx].unsqueeze(-1) * pixel_rays(self.K[idx], H, W)

    def colors(self, index: IndexLike = None) -> torch.Tensor:
        """RGB ``[t, H, W, 3]`` of the selected frames."""
        return self.frames[_frame_indices(index, self.num_frames, self.device)]

    def flying_pixels(self, threshold: float = DEFAULT_FLYING_THRESHOLD, index: IndexLike = None) -> torch.Tensor:
        """:func:`flying_pixel_mask` of the selected frames, ``bool [t, H, W]``."""
        return flying_pixel_mask(self.depths[_frame_indices(index, self.num_frames, self.device)], threshold)

    def select(self, index: IndexLike) -> "PointCloud":
        """A point cloud of the selected frames (in the given order, repeats allowed)."""
        idx = _frame_indices(index, self.num_frames, self.device)
        return PointCloud._of_checked(self.frames[idx], self.depths[idx], self.K[idx])

    def to(self, device: Optional[Union[str, torch.device]]) -> "PointCloud":
        """The same cloud on another device (itself when already there)."""
        if device is None or torch.device(device) == self.device:
            return self
        return PointCloud._of_checked(self.frames.to(device), self.depths.to(device), self.K.to(device))
