"""Tensor layouts and camera conventions of the whole pack, stated once.

Every module and every node reuses these definitions and validators.

Layouts
-------
- **frames / images / video**: ``float32 [T, H, W, 3]`` in ``0..1`` (ComfyUI ``IMAGE``), on CPU
  between stages.
- **hole mask**: ``float32 [T, H, W]`` with **1 = hole / region to generate**, 0 = covered
  (ComfyUI ``MASK``).
- **depth**: ``float32 [T, H, W]``, finite and ``> 0``, same units along the clip,
  larger = farther (z-depth along the optical axis, not ray length).

Cameras
-------
- OpenCV camera axes: x right, y down, z forward. Pixel ``(u, v)`` has its centre at integer
  coordinates (pixel ``(0, 0)`` covers ``[-0.5, 0.5]²``), as in the official code.
- Intrinsics ``K``: ``float32 [3, 3]`` in pixels at the size being rendered.
- A trajectory stores, per output frame, a ``4x4`` transform mapping points from the *source
  camera's* coordinates to the *target camera's* coordinates (``X_dst = T @ X_src``), plus the
  intrinsics to render with. The official code composes ``pose_t @ inv(pose_s)``; its "c2w"
  matrices act as world-to-camera, and our transforms equal that product.

Viewer axes (glTF 2.0, three.js: ComfyUI's Load 3D / Preview 3D and its ``LOAD3D_CAMERA``)
------------------------------------------------------------------------------------------
- Right-handed, +Y up; a camera looks down its own -Z axis with its +Y up (three.js
  ``lookAt``), so a Load 3D camera (``position``, ``target``) has no roll.
- OpenCV → viewer axes: ``(x, y, z) ↦ (x, -y, -z)`` (:data:`OPENCV_TO_VIEWER`, a half turn about
  x, its own inverse; :func:`opencv_to_viewer`). The source camera at the origin looking along
  +z (OpenCV, y down) looks along -Z with +Y up there. A scene file adds a uniform scale and a
  shift on top (:class:`trajcrafter_core.scene3d.ViewerFrame`), used by the scene export and by
  the Load 3D camera conversion (:mod:`trajcrafter_core.load3d_camera`) alike.

Diffusion model
---------------
- Sizes are multiples of 16. Frame counts are ``8m + 1`` (49 native; 1, 9, 17, 25, 33, 41,
  49, ...): CogVideoX compresses time by 4 (``4k + 1`` frames → ``k + 1`` latents), and the
  official chunked VAE decoder (first ``2 + r`` latents, then groups of 2) returns ``4F``
  frames instead of ``4F - 3`` when the latent count ``F`` is even, so only odd latent counts
  round-trip.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from .errors import TrajCrafterError

__all__ = [
    "OPENCV_TO_VIEWER",
    "opencv_to_viewer",
    "as_frames",
    "as_depth",
    "as_mask",
    "as_intrinsics",
    "check_finite",
]


#: Per-axis signs taking OpenCV camera axes to the viewer's (glTF / three.js) axes and back.
OPENCV_TO_VIEWER = (1.0, -1.0, -1.0)


def opencv_to_viewer(xyz):
    """Points or directions ``[..., 3]`` (numpy or torch) in OpenCV axes → viewer axes (and,
    the flip being its own inverse, viewer → OpenCV)."""
    signs = OPENCV_TO_VIEWER
    if isinstance(xyz, torch.Tensor):
        return xyz * torch.tensor(signs, dtype=xyz.dtype, device=xyz.device)
    import numpy as np

    return np.asarray(xyz) * np.asarray(signs)


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise if ``x`` holds NaN or inf.

    Screened with one sum (NaN/inf make it non-finite; no clip-sized boolean copy); only a
    non-finite sum, which a huge finite tensor can also give, runs the exact elementwise test."""
    if not x.is_floating_point() or x.numel() == 0 or x.is_meta:  # meta tensors (memory plans) hold no values
        return
    if bool(torch.isfinite(x.sum())):
        return
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise TrajCrafterError(
            f"{name} contains {bad} NaN/inf value(s); clean the input (e.g. replace or clip "
            f"invalid values) before passing it on."
        )


def _to_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(x))
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    raise TrajCrafterError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}.")


def as_frames(x, name: str = "frames") -> torch.Tensor:
    """Validate and return video frames as ``float32 [T, H, W, 3]`` in 0..1.

    Accepts a single image ``[H, W, 3]`` (becomes ``T = 1``) and uint8 input (divided by 255).
    """
    x = _to_tensor(x, name)
    if x.ndim == 3 and x.shape[-1] == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise TrajCrafterError(
            f"{name} must have shape [T, H, W, 3] (frames, height, width, RGB), got "
            f"{list(x.shape)}. If you have [T, 3, H, W], permute it to channels-last."
        )
    if x.shape[0] == 0:
        raise TrajCrafterError(f"{name} has zero frames; give at least one frame.")
    if x.shape[1] < 2 or x.shape[2] < 2:
        raise TrajCrafterError(f"{name} frames are {x.shape[1]}x{x.shape[2]} pixels; too small.")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif not x.is_floating_point():
        raise TrajCrafterError(f"{name} must be float in 0..1 or uint8, got {x.dtype}.")
    x = x.float()
    check_finite(x, name)
    return x


def as_depth(x, name: str = "depth", like: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Validate and return depth as ``float32 [T, H, W]``, finite and > 0.

    ``like``: frames ``[T, H, W, 3]`` the depth must match in count and size.
    """
    x = _to_tensor(x, name)
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise TrajCrafterError(f"{name} must have shape [T, H, W], got {list(x.shape)}.")
    x = x.float()
    check_finite(x, name)
    if x.numel() and not bool(x.amin() > 0):
        raise TrajCrafterError(
            f"{name} has {int((x <= 0).sum())} value(s) <= 0; depth must be positive "
            f"(larger = farther). If this is disparity or inverse depth, convert it first."
        )
    if like is not None and tuple(x.shape) != tuple(like.shape[:3]):
        raise TrajCrafterError(
            f"{name} has shape {list(x.shape)} but the frames are {list(like.shape[:3])} "
            f"[T, H, W]; depth needs one map per frame at the frames' size."
        )
    return x


def as_mask(x, name: str = "mask", like: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Validate and return a hole mask as ``float32 [T, H, W]`` in 0..1 (1 = hole)."""
    x = _to_tensor(x, name)
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x[..., 0]
    if x.ndim != 3:
        raise TrajCrafterError(f"{name} must have shape [T, H, W] (1 = hole), got {list(x.shape)}.")
    x = x.float()
    check_finite(x, name)
    if like is not None and tuple(x.shape) != tuple(like.shape[:3]):
        raise TrajCrafterError(
            f"{name} has shape {list(x.shape)} but the video is {list(like.shape[:3])} "
            f"[T, H, W]; give one mask per frame at the video's size."
        )
    return x


def as_intrinsics(K, name: str = "intrinsics", count: Optional[int] = None) -> torch.Tensor:
    """Validate ``K`` as ``[3,3]`` or ``[N,3,3]`` float32, invertible, with positive focals.

    With ``count`` the result is expanded to ``[count, 3, 3]``.
    """
    K = _to_tensor(K, name).float()
    if K.ndim == 2:
        K = K.unsqueeze(0)
    if K.ndim != 3 or tuple(K.shape[1:]) != (3, 3):
        raise TrajCrafterError(f"{name} must be [3,3] or [N,3,3], got {list(K.shape)}.")
    check_finite(K, name)
    det = torch.linalg.det(K.double())
    if bool((det.abs() < 1e-12).any()) or bool((K[:, 0, 0] <= 0).any()) or bool((K[:, 1, 1] <= 0).any()):
        raise TrajCrafterError(
            f"{name} is singular or has a non-positive focal length (fx={K[:, 0, 0].tolist()[:3]}, "
            f"fy={K[:, 1, 1].tolist()[:3]}); focal lengths must be > 0 pixels."
        )
    if count is not None:
        if K.shape[0] == 1:
            K = K.expand(count, 3, 3)
        elif K.shape[0] != count:
            raise TrajCrafterError(f"{name} has {K.shape[0]} matrices but {count} are needed (or give one).")
    return K


def fov_to_focal(fov_degrees: float, size_px: int) -> float:
    """Focal length in pixels for a field of view (degrees) across ``size_px`` pixels."""
    if not (0.0 < fov_degrees < 180.0):
        raise TrajCrafterError(f"field of view must be in (0, 180) degrees, got {fov_degrees}.")
    return 0.5 * size_px / math.tan(math.radians(fov_degrees) / 2.0)


def image_size(frames: torch.Tensor) -> Tuple[int, int]:
    """``(H, W)`` of a ``[T, H, W, 3]`` tensor."""
    return int(frames.shape[1]), int(frames.shape[2])
