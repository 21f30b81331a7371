"""Training pairs from point-cloud renders: double reprojection and multi-view renders.

**Double reprojection** (paper Sec. 3.3): a video ``I`` with depth ``D`` is rendered from a
moved camera (``I'`` with its rendered depth ``D'``), then ``I'`` is lifted with ``D'`` and
rendered back with the inverse move. The result ``I''`` is pixel-aligned with ``I`` (where it
has content it shows ``I``) but carries the holes and occlusion artefacts of a real point-cloud
render: everything hidden or out of view in the moved camera is missing. ``(I'', mask, I)``
is a training triplet for a monocular video — no second view needed.

**Multi-view render**: for a posed static sequence, the source frames' points rendered into
other cameras (``cam_to_world`` per frame) give ``(source, target, render, mask)``.

All renders go through :func:`trajcrafter_core.render.render_views`, so training sees the
renderer mode used at inference (``"official"`` for the released checkpoint).

Rendered depth and invalid pixels
---------------------------------
:func:`render_with_depth` is one ``render_views(..., return_depth=True, point_mask=valid)``
call: the rendered depth ``D'`` is the splat-weighted target-camera depth (the official
``warped_depth``), and pixels without depth (holes of ``I'``, gaps of a reconstruction) are not
lifted; pixels that only such points reach become holes.

Invalid points still need some depth to be projected. In ``official`` mode they are placed at
the median valid target depth (they must not raise the per-frame maximum the official weights
are normalised by); in ``zbuffer`` mode far behind every valid point (the valid pixels bordering
them may count as flying pixels, which grows holes by about a pixel there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .camera import orbit_radius, target_pose_trajectory
from .conventions import as_depth, as_frames, as_intrinsics
from .errors import TrajCrafterError
from .official import TARGET_POSE_LIMITS, covered
from .pointcloud import pixel_rays
from .render import dilate_holes, render_views

__all__ = [
    "MoveRanges",
    "RelativeMove",
    "DoubleReprojection",
    "sample_relative_move",
    "render_with_depth",
    "double_reprojection",
    "render_between_cameras",
    "relative_transforms_between",
]


@dataclass(frozen=True)
class MoveRanges:
    """Ranges a random relative camera move is drawn from (uniform in ``[-max, max]``).

    ``theta``/``phi`` degrees, ``r`` a fraction of the orbit radius (official semantics),
    ``xy`` the sideways/vertical shift as a fraction of the radius (so it scales with the scene;
    the official ``x``, ``y`` are in depth units).
    """

    theta: float = 40.0
    phi: float = 45.0
    r: float = 0.5
    xy: float = 0.1
    radius_scale: float = 1.0

    def __post_init__(self):
        for name in ("theta", "phi", "r", "xy"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise TrajCrafterError(f"move range {name} must be a finite number >= 0, got {v!r}.")
            limit = TARGET_POSE_LIMITS.get(name)
            if limit is not None and v > limit:  # the moves inference accepts are what training must show
                raise TrajCrafterError(f"move range {name} = {v:g} is beyond the official target-pose range ±{limit:g}.")
        if not self.radius_scale > 0:
            raise TrajCrafterError(f"radius_scale must be > 0, got {self.radius_scale!r}.")


@dataclass(frozen=True)
class RelativeMove:
    """A drawn move: official target-pose parameters (``x``, ``y`` in depth units) + radius."""

    theta: float
    phi: float
    r: float
    x: float
    y: float
    radius: float

    def transforms(self, num_frames: int) -> torch.Tensor:
        """Source→target transforms ``[N, 4, 4]``, each parameter ramping from 0 (gradual)."""
        return target_pose_trajectory(self.theta, self.phi, self.r, self.x, self.y, num_frames, self.radius)


def sample_relative_move(depths: torch.Tensor, ranges: MoveRanges = MoveRanges(),
                         generator: Optional[torch.Generator] = None) -> RelativeMove:
    """Draw a move uniformly within ``ranges``; radius by the official rule from ``depths[0]``."""
    radius = orbit_radius(depths, ranges.radius_scale)
    u = (torch.rand(5, generator=generator, dtype=torch.float64) * 2 - 1).tolist()
    return RelativeMove(theta=u[0] * ranges.theta, phi=u[1] * ranges.phi, r=u[2] * ranges.r,
                        x=u[3] * ranges.xy * radius, y=u[4] * ranges.xy * radius, radius=radius)


def _target_z(depths: torch.Tensor, K_src: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Depth along the target camera's axis of every source pixel ``[T, H, W]``."""
    T, H, W = depths.shape
    rays = pixel_rays(K_src.to(depths.device), H, W)  # [T, H, W, 3]
    r2 = transforms[:, 2, :3].to(depths.device).float()  # [T, 3]
    slope = torch.einsum("thwi,ti->thw", rays, r2)
    return slope * depths + transforms[:, 2, 3].to(depths.device).float().view(T, 1, 1), slope


def _placeholder_depths(depths: torch.Tensor, valid: torch.Tensor, K_src: torch.Tensor,
                        transforms: torch.Tensor, mode: str) -> torch.Tensor:
    """Depths for invalid pixels that keep them from affecting valid ones (module docstring)."""
    out = depths.clone()
    T = depths.shape[0]
    for t in range(T):
        v = valid[t]
        if bool(v.all()):
            continue
        d_valid = depths[t][v]
        if mode == "zbuffer":
            out[t][~v] = float(d_valid.max()) * 1e3
            continue
        zt, slope = _target_z(depths[t:t + 1], K_src[t:t + 1], transforms[t:t + 1])
        z_star = zt[0][v].median()
        d = (z_star - transforms[t, 2, 3].float()) / slope[0]
        fallback = d_valid.median()
        d = torch.where((slope[0] > 1e-6) & (d > 0) & torch.isfinite(d), d, fallback)
        out[t][~v] = d[~v]
    return out


def render_with_depth(frames, depths, K_src, transforms, K_dst=None, mode: str = "official",
                      valid: Optional[torch.Tensor] = None, size: Optional[Tuple[int, int]] = None,
                      **render_options) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render like :func:`~trajcrafter_core.render.render_views` and also return the depth.

    - ``frames`` ``[T,H,W,3]`` 0..1; ``depths`` ``[T,H,W]`` (> 0 where ``valid``).
    - ``valid``: optional bool ``[T,H,W]``; False pixels are not lifted (no point).
    - ``render_options``: passed to ``render_views`` (e.g. zbuffer settings), not
      ``clean_holes`` (apply :func:`~trajcrafter_core.render.dilate_holes` to the result).

    Returns ``images`` ``[T,h,w,3]`` (holes 0), ``hole_mask`` ``[T,h,w]`` (1 = hole) and
    ``depth`` ``[T,h,w]``: the splat-weighted target-camera depth (0 at holes).
    """
    if "clean_holes" in render_options:
        raise TrajCrafterError("render_with_depth: apply dilate_holes to the result instead of clean_holes.")
    frames = as_frames(frames, "frames")
    T, H, W = frames.shape[:3]
    if valid is not None:
        valid = valid.to(torch.bool)
        if tuple(valid.shape) != (T, H, W):
            raise TrajCrafterError(f"valid must be bool [T,H,W] = {[T, H, W]}, got {list(valid.shape)}.")
        if not bool(valid.any(dim=(1, 2)).all()):
            raise TrajCrafterError("valid marks no pixel of some frame; every frame needs some depth.")
        raw = torch.as_tensor(depths).float()
        if not bool((torch.isfinite(raw) & (raw > 0))[valid].all()):
            raise TrajCrafterError("depths must be finite and > 0 wherever valid is True.")
        depths = torch.where(valid, raw, torch.ones_like(raw))
    depths = as_depth(depths, "depths", like=frames)
    K_src = as_intrinsics(K_src, "K_src", count=T)
    transforms = torch.as_tensor(transforms).float()
    if transforms.ndim == 2:
        transforms = transforms.expand(T, 4, 4)
    if valid is not None and not bool(valid.all()):
        depths = _placeholder_depths(depths, valid, K_src, transforms, mode)
    else:
        valid = None
    images, holes, depth = render_views(frames, depths, K_src, transforms, K_dst, mode, size=size,
                                        return_depth=True, point_mask=valid, **render_options)
    return images, holes, depth.clamp_min_(0.0)  # behind the camera (official mode): no depth


@dataclass
class DoubleReprojection:
    """Result of :func:`double_reprojection` (all ``[T,H,W(,3)]`` float32, masks 1 = hole)."""

    render: torch.Tensor  # I'': aligned with target, with holes
    hole_mask: torch.Tensor
    target: torch.Tensor  # I
    forward_render: torch.Tensor  # I': the moved view
    forward_hole_mask: torch.Tensor
    forward_depth: torch.Tensor  # D' (0 at holes)
    transforms: torch.Tensor  # the move, source→moved, [T,4,4]


def double_reprojection(frames, depths, K, transforms, mode: str = "official", clean_holes: bool = False,
                        **render_options) -> DoubleReprojection:
    """Render ``frames`` to the moved cameras ``transforms[t]`` and back (module docstring).

    ``K`` ``[3,3]`` or ``[T,3,3]`` is used for both cameras. ``clean_holes`` dilates the final
    hole mask (official ``--mask`` cleanup). Returns a :class:`DoubleReprojection`.
    """
    frames = as_frames(frames, "frames")
    depths = as_depth(depths, "depths", like=frames)
    T = frames.shape[0]
    K = as_intrinsics(K, "K", count=T)
    transforms = torch.as_tensor(transforms).float()
    if transforms.ndim == 2:
        transforms = transforms.expand(T, 4, 4)
    if tuple(transforms.shape) != (T, 4, 4):
        raise TrajCrafterError(f"transforms must be [T,4,4] with T = {T}, got {list(transforms.shape)}.")
    fwd, fwd_holes, fwd_depth = render_with_depth(frames, depths, K, transforms, K, mode, **render_options)
    fwd_valid = covered(fwd_holes) & (fwd_depth > 0)
    if not bool(fwd_valid.any(dim=(1, 2)).all()):
        raise TrajCrafterError("the camera move leaves some frame without any visible point; draw a smaller move.")
    back, back_holes, _ = render_with_depth(fwd, fwd_depth, K, torch.linalg.inv(transforms.double()).float(), K,
                                            mode, valid=fwd_valid, **render_options)
    if clean_holes:
        back_holes = dilate_holes(back_holes)
        back = back * (1.0 - back_holes).unsqueeze(-1)
    return DoubleReprojection(back, back_holes, frames, fwd, fwd_holes, fwd_depth, transforms)


def relative_transforms_between(cam_to_world_src: torch.Tensor, cam_to_world_dst: torch.Tensor) -> torch.Tensor:
    """Source-camera → target-camera transforms ``inv(c2w_dst) @ c2w_src`` (``[T,4,4]``)."""
    src = torch.as_tensor(cam_to_world_src).double()
    dst = torch.as_tensor(cam_to_world_dst).double()
    if src.shape != dst.shape or src.shape[-2:] != (4, 4):
        raise TrajCrafterError(f"camera poses must both be [T,4,4], got {list(src.shape)} and {list(dst.shape)}.")
    return (torch.linalg.inv(dst) @ src).float()


def render_between_cameras(frames, depths, K_src, cam_to_world_src, K_dst, cam_to_world_dst,
                           mode: str = "official", valid: Optional[torch.Tensor] = None,
                           clean_holes: bool = False, size: Optional[Tuple[int, int]] = None,
                           **render_options) -> Tuple[torch.Tensor, torch.Tensor]:
    """Render source frame ``t`` (posed ``cam_to_world_src[t]``) into camera ``cam_to_world_dst[t]``.

    ``valid`` marks pixels with depth (e.g. reconstructed depth maps have gaps). Returns the
    render ``[T,h,w,3]`` and hole mask ``[T,h,w]`` (1 = hole).
    """
    transforms = relative_transforms_between(cam_to_world_src, cam_to_world_dst)
    images, holes, _ = render_with_depth(frames, depths, K_src, transforms, K_dst, mode, valid=valid, size=size,
                                         **render_options)
    if clean_holes:
        holes = dilate_holes(holes)
        images = images * (1.0 - holes).unsqueeze(-1)
    return images, holes
