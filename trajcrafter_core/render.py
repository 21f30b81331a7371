"""Render point clouds from new cameras: batched point splatting in pure torch (CPU and CUDA).

Each output frame ``t`` lifts source frame ``t`` (colours + depth, intrinsics ``K_src[t]``),
moves the points with ``transforms[t]`` (source-camera → target-camera coordinates, OpenCV
axes) and splats them into a target image with ``K_dst[t]``. Two modes:

``official``
    Reproduces the official TrajectoryCrafter ``Warper.forward_warp``: every point is splatted
    bilinearly onto the 4 pixels around its projection, weighted by
    ``exp(-50 * log(1 + z) / max_frame(log(1 + z)))`` (``z`` = target depth clamped to
    ``[0, 1000]``, the max taken over all points of the frame), and the weighted colours are
    averaged. There is no depth test (background points bleed into foreground pixels with a
    small weight) and no near-plane culling: a point behind the camera (``z < 0``) is projected
    through the origin, mirrored, with the largest weight. Integer projections put all four
    bilinear corners on the same pixel, as the official ``floor``/``ceil`` code does. The released
    model was trained on these renders, so this is the mode for the official checkpoint.
``zbuffer``
    Hard depth test: a target pixel averages (with tent weights) only the points within
    ``depth_tolerance`` of the nearest point that reaches it. Points closer than ``near`` are
    culled, flying pixels at depth edges are dropped (:func:`~trajcrafter_core.pointcloud.flying_pixel_mask`),
    and each point's splat radius grows with the local magnification of the move
    (``splat_radius="auto"``) so zoom-ins and forward moves leave no pinholes.

Both return images in 0..1 with holes = 0, and a hole mask (1 = hole). ``clean_holes`` is the
official ``--mask`` option: the hole mask is dilated by a 5x5 square and the newly masked
pixels are zeroed.

Memory: frames are processed in chunks of ``chunk_size`` frames (default: about 2 M points per
chunk on CPU, 16 M on CUDA); every temporary is one value per point of the chunk, so peak
memory is the inputs + outputs + a fixed amount per chunk, whatever the clip length.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .conventions import as_depth, as_frames, as_intrinsics, check_finite
from .errors import TrajCrafterError
from .pointcloud import DEFAULT_FLYING_THRESHOLD, PointCloud, flying_pixel_mask

__all__ = [
    "MODES",
    "render_views",
    "render_trajectory",
    "dilate_holes",
    "scale_intrinsics",
]

MODES = ("official", "zbuffer")

#: Official depth weighting: depths clamped to [0, DEPTH_CLAMP], weight exp(-SHARPNESS * log1p(z) / max).
OFFICIAL_DEPTH_CLAMP = 1000.0
OFFICIAL_DEPTH_SHARPNESS = 50.0
#: Side of the square the official ``--mask`` cleanup dilates holes with.
CLEAN_HOLES_KERNEL = 5

_CPU_POINTS_PER_CHUNK = 1 << 21
_CUDA_POINTS_PER_CHUNK = 1 << 24

ProgressFn = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _as_transforms(transforms, count: int) -> torch.Tensor:
    """Validate source→target transforms as float32 ``[count, 4, 4]``."""
    if not isinstance(transforms, torch.Tensor):
        try:
            import numpy as np

            if isinstance(transforms, np.ndarray):
                transforms = torch.from_numpy(np.ascontiguousarray(transforms))
        except ImportError:  # pragma: no cover
            pass
    if not isinstance(transforms, torch.Tensor):
        raise TrajCrafterError(
            f"transforms must be a torch tensor or numpy array [T, 4, 4], got {type(transforms).__name__}."
        )
    if transforms.ndim != 3 or tuple(transforms.shape[1:]) != (4, 4) or transforms.shape[0] != count:
        raise TrajCrafterError(
            f"transforms must have shape [T, 4, 4] with T = {count} (one source→target camera "
            f"transform per frame), got {list(transforms.shape)}."
        )
    transforms = transforms.float()
    check_finite(transforms, "transforms")
    return transforms


def _as_size(size, default: Tuple[int, int]) -> Tuple[int, int]:
    if size is None:
        return default
    try:
        h, w = (int(s) for s in size)
        ok = (h, w) == tuple(size)
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 2 or w < 2:
        raise TrajCrafterError(f"size must be (height, width) in pixels, both >= 2, got {size!r}.")
    return h, w


def scale_intrinsics(K: torch.Tensor, from_size: Tuple[int, int], to_size: Tuple[int, int]) -> torch.Tensor:
    """Intrinsics ``[..., 3, 3]`` of the same camera for an image resized from ``from_size`` to
    ``to_size`` (``(height, width)``; pixel centres at integer coordinates):
    ``fx' = fx * sx``, ``cx' = (cx + 0.5) * sx - 0.5``, likewise for y."""
    (h0, w0), (h1, w1) = from_size, to_size
    sx, sy = w1 / w0, h1 / h0
    S = torch.tensor([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return (S.to(K.device) @ K.double()).float()


def _default_chunk_size(device: torch.device, points_per_frame: int) -> int:
    budget = _CUDA_POINTS_PER_CHUNK if device.type == "cuda" else _CPU_POINTS_PER_CHUNK
    return max(1, budget // max(1, points_per_frame))


# --------------------------------------------------------------------------------------------
# Hole cleanup
# --------------------------------------------------------------------------------------------


def dilate_holes(hole_mask: torch.Tensor, kernel: int = CLEAN_HOLES_KERNEL) -> torch.Tensor:
    """Grow holes (1 = hole) of ``[T, H, W]`` masks by a ``kernel x kernel`` square.

    Same as the official ``clean_points`` (``cv2.dilate`` with a ones kernel; pixels outside the
    image do not count as holes).
    """
    pad = kernel // 2
    return F.max_pool2d(hole_mask.unsqueeze(1), kernel, stride=1, padding=pad).squeeze(1)


# --------------------------------------------------------------------------------------------
# Projection
# --------------------------------------------------------------------------------------------


class _Projection:
    """Target pixel coordinates ``x, y`` and target depth ``z`` of every point of a chunk.

    All are float32 ``[n, H, W]``; ``z`` is the third camera coordinate after the transform
    (negative behind the camera).
    """

    def __init__(self, depth: torch.Tensor, K_src: torch.Tensor, transforms: torch.Tensor, K_dst: torch.Tensor):
        n, H, W = depth.shape
        dev = depth.device
        # Compose in float64: pixel (u, v, 1) * depth -> target homogeneous pixel p = d * M @ (u, v, 1) + b.
        K_src_inv = torch.linalg.inv(K_src.double())
        R = transforms[:, :3, :3].double()
        t = transforms[:, :3, 3:].double()
        M = (K_dst.double() @ R @ K_src_inv).float()  # [n, 3, 3]
        b = (K_dst.double() @ t).float()[:, :, 0]  # [n, 3]
        u = torch.arange(W, device=dev, dtype=torch.float32).view(1, 1, W)
        v = torch.arange(H, device=dev, dtype=torch.float32).view(1, H, 1)
        coords = []
        for i in range(3):
            ray = M[:, i, 0].view(n, 1, 1) * u + M[:, i, 1].view(n, 1, 1) * v + M[:, i, 2].view(n, 1, 1)
            coords.append(torch.addcmul(b[:, i].view(n, 1, 1), depth, ray))
        px, py, self.z = coords
        self.x = px.div_(self.z)
        self.y = py.div_(self.z)


# --------------------------------------------------------------------------------------------
# Splatting
# --------------------------------------------------------------------------------------------


class _Canvas:
    """Accumulators for one chunk: per target pixel the weight sum, the weighted RGB sum and
    (z-buffer) the nearest depth, on a canvas padded by ``pad`` pixels on each side plus one
    trash row where out-of-view contributions go (so no compaction is needed)."""

    def __init__(self, n: int, height: int, width: int, pad: int, device: torch.device, with_depth: bool):
        self.n, self.height, self.width, self.pad = n, height, width, pad
        self.row = width + 2 * pad
        self.plane = (height + 2 * pad) * self.row
        self.frames_end = n * self.plane
        # Footprint shifts reach at most ``pad`` rows/columns either way from the trash index.
        self.trash = self.frames_end + pad * (self.row + 1)
        size = self.trash + (pad + 1) * (self.row + 1)
        self.sums = torch.zeros(4, size, device=device)  # r, g, b, weight
        self.zmin = torch.full((size,), math.inf, device=device) if with_depth else None

    def base_index(self, x0: torch.Tensor, y0: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Flat canvas index of pixel ``(x0, y0)`` (float, integral) of each point's own frame;
        invalid points go to the trash row."""
        n = x0.shape[0]
        frame_offset = torch.arange(n, device=x0.device).view(n, *([1] * (x0.ndim - 1))) * self.plane
        flat = (y0 + self.pad) * self.row + (x0 + self.pad)
        flat = torch.where(valid, flat, 0.0).long() + frame_offset
        return torch.where(valid, flat, self.trash)

    def add(self, index: torch.Tensor, weight: torch.Tensor, colors: Sequence[torch.Tensor]) -> None:
        """Accumulate ``weight`` and ``weight * colour`` at flat ``index`` (all 1-D)."""
        self.sums[3].index_add_(0, index, weight)
        for k in range(3):
            self.sums[k].index_add_(0, index, colors[k] * weight)

    def crop(self, flat: torch.Tensor) -> torch.Tensor:
        """``[..., n * plane]`` → ``[..., n, H, W]`` without the padding."""
        p = self.pad
        shaped = flat[..., : self.frames_end].reshape(*flat.shape[:-1], self.n, self.height + 2 * p, self.row)
        return shaped[..., p : p + self.height, p : p + self.width]

    def resolve(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Average colours ``[n, H, W, 3]`` (0..1, holes 0) and hole mask ``[n, H, W]``."""
        sums = self.crop(self.sums)
        weight = sums[3]
        covered = weight > 0
        rgb = torch.where(covered, sums[:3] / weight, 0.0).clamp_(0.0, 1.0)
        return rgb.permute(1, 2, 3, 0), (~covered).float()


def _splat_official(canvas: _Canvas, proj: _Projection, colors: Sequence[torch.Tensor]) -> None:
    """Bilinear splat with the official exp depth weights (see module docstring)."""
    n = proj.z.shape[0]
    log_z = torch.log1p(proj.z.clamp(0.0, OFFICIAL_DEPTH_CLAMP))
    log_max = log_z.reshape(n, -1).amax(dim=1).clamp_min(1e-12).view(n, 1, 1)
    weight = torch.exp(log_z.mul_(-OFFICIAL_DEPTH_SHARPNESS).div_(log_max)).reshape(-1)
    del log_z

    x, y = proj.x.reshape(-1), proj.y.reshape(-1)
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    # A point contributes to visible pixels iff its floor pixel is in [-1, W-1] x [-1, H-1]
    # (NaN from z == 0 fails these tests).
    valid = (x0 >= -1) & (x0 <= canvas.width - 1) & (y0 >= -1) & (y0 <= canvas.height - 1)
    base = canvas.base_index(x0.view_as(proj.x), y0.view_as(proj.y), valid.view_as(proj.x)).reshape(-1)
    del x0, y0, valid
    # Official floor/ceil weights: at an integral coordinate ceil == floor, so both x corners
    # (weights 1 - 0 and 1 - 0) land on the floor pixel: weight 2 there, 0 on the next one.
    wx = (1.0 - fx + (fx == 0).float(), fx)
    wy = (1.0 - fy + (fy == 0).float(), fy)
    for dy in (0, 1):
        w_row = weight * wy[dy]
        for dx in (0, 1):
            index = base + (dy * canvas.row + dx) if (dx or dy) else base
            canvas.add(index, w_row * wx[dx], colors)


def _splat_radius_per_point(
    proj: _Projection, keep: torch.Tensor, splat_radius, max_splat_radius: float, edge_threshold: float, depth: torch.Tensor
) -> torch.Tensor:
    """Tent radius (target pixels, >= 1) of every point ``[n, H, W]``.

    ``auto``: half the largest step, in target pixels, to a right/down neighbour of the same
    surface (neighbours across a depth edge or culled are ignored), plus half a pixel; so the
    footprints of neighbouring points overlap and no pinholes open, while disocclusions stay.
    """
    if splat_radius != "auto":
        return torch.full_like(proj.z, float(splat_radius))
    log_d = torch.log(depth)
    stretch = torch.zeros_like(proj.z)
    for dim in (1, 2):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[dim], b[dim] = slice(1, None), slice(None, -1)
        a, b = tuple(a), tuple(b)
        step = torch.maximum((proj.x[a] - proj.x[b]).abs(), (proj.y[a] - proj.y[b]).abs())
        same_surface = ((log_d[a] - log_d[b]).abs() <= edge_threshold) & keep[a] & keep[b]
        step = torch.where(same_surface, step, 0.0).nan_to_num_(0.0)
        stretch[a] = torch.maximum(stretch[a], step)
        stretch[b] = torch.maximum(stretch[b], step)
    radius = stretch.mul_(0.5).add_(0.5).clamp_(1.0, max_splat_radius)
    return torch.where(keep, radius, 1.0)


def _splat_zbuffer(
    canvas: _Canvas,
    proj: _Projection,
    colors: Sequence[torch.Tensor],
    keep: torch.Tensor,
    radius: torch.Tensor,
    depth_tolerance: float,
) -> None:
    """Two passes over tent footprints: nearest depth per pixel, then the weighted average of
    the contributions within ``depth_tolerance`` (relative) of it."""
    x, y, z = proj.x.reshape(-1), proj.y.reshape(-1), proj.z.reshape(-1)
    keep, radius = keep.reshape(-1), radius.reshape(-1)
    frame = torch.arange(proj.z.shape[0], device=z.device).repeat_interleave(proj.z[0].numel())
    reach = torch.ceil(radius)
    max_reach = int(reach.max()) if reach.numel() else 1

    groups = []
    for k in range(1, max_reach + 1):
        members = keep & (reach == k)
        if k == 1 and bool(members.all()):
            sel = None  # the common case: every point is a plain bilinear splat, no gather needed
        else:
            sel = torch.nonzero(members).squeeze(1)
            if sel.numel() == 0:
                continue
        groups.append((k, sel))

    def footprint(k: int, sel):
        """Yield (flat index, tent weight) of every pixel in the footprint of the group's points."""
        gx, gy, r, fr = (x, y, radius, frame) if sel is None else (x[sel], y[sel], radius[sel], frame[sel])
        x0, y0 = torch.floor(gx), torch.floor(gy)
        fx, fy = gx - x0, gy - y0
        valid = (x0 >= -k) & (x0 <= canvas.width + k - 2) & (y0 >= -k) & (y0 <= canvas.height + k - 2)
        flat = (y0 + canvas.pad) * canvas.row + (x0 + canvas.pad)
        base = torch.where(valid, flat, 0.0).long() + fr * canvas.plane
        base = torch.where(valid, base, canvas.trash)
        inv_r = 1.0 / r
        offsets = range(-(k - 1), k + 1)
        wx = [(1.0 - (fx - o).abs() * inv_r).clamp_(min=0.0) for o in offsets]
        wy = [(1.0 - (fy - o).abs() * inv_r).clamp_(min=0.0) for o in offsets]
        for j, oy in enumerate(offsets):
            for i, ox in enumerate(offsets):
                shift = oy * canvas.row + ox
                yield (base + shift if shift else base), wy[j] * wx[i]

    for k, sel in groups:  # pass 1: nearest depth per pixel
        gz = z if sel is None else z[sel]
        for index, w in footprint(k, sel):
            canvas.zmin.scatter_reduce_(0, index, torch.where(w > 0, gz, math.inf), reduce="amin")
    for k, sel in groups:  # pass 2: average what survives the depth test
        gz = z if sel is None else z[sel]
        gcolors = colors if sel is None else [c[sel] for c in colors]
        for index, w in footprint(k, sel):
            front = gz <= canvas.zmin[index] * (1.0 + depth_tolerance)
            canvas.add(index, w * front, gcolors)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _render(
    frames: torch.Tensor,
    depths: torch.Tensor,
    source_index: Optional[torch.Tensor],
    K_src: torch.Tensor,
    transforms: torch.Tensor,
    K_dst: torch.Tensor,
    out_size: Tuple[int, int],
    mode: str,
    clean_holes: bool,
    chunk_size: Optional[int],
    progress: Optional[ProgressFn],
    device: torch.device,
    splat_radius,
    max_splat_radius: float,
    near: float,
    depth_tolerance: float,
    drop_flying_pixels: bool,
    flying_threshold: float,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Validated inputs → renders. Output frame t uses source frame ``source_index[t]`` (or t)."""
    T = transforms.shape[0]
    H, W = frames.shape[1:3]
    Ho, Wo = out_size
    out_device = frames.device
    images = torch.empty(T, Ho, Wo, 3, device=out_device)
    holes = torch.empty(T, Ho, Wo, device=out_device)
    step = chunk_size or _default_chunk_size(device, H * W)
    if mode == "official":
        pad = 1
    else:
        reach = math.ceil(max_splat_radius if splat_radius == "auto" else float(splat_radius))
        pad = 2 * reach - 1
    with torch.no_grad():
        for start in range(0, T, step):
            stop = min(T, start + step)
            idx = torch.arange(start, stop) if source_index is None else source_index[start:stop]
            idx = idx.to(frames.device)
            rgb = frames.index_select(0, idx).to(device)
            depth = depths.index_select(0, idx).to(device)
            proj = _Projection(depth, K_src[start:stop].to(device), transforms[start:stop].to(device), K_dst[start:stop].to(device))
            canvas = _Canvas(stop - start, Ho, Wo, pad, device, with_depth=mode == "zbuffer")
            colors = [rgb[..., k].reshape(-1) for k in range(3)]
            if mode == "official":
                _splat_official(canvas, proj, colors)
            else:
                keep = proj.z > near
                if drop_flying_pixels:
                    keep &= ~flying_pixel_mask(depth, flying_threshold)
                radius = _splat_radius_per_point(proj, keep, splat_radius, max_splat_radius, flying_threshold, depth)
                _splat_zbuffer(canvas, proj, colors, keep, radius, depth_tolerance)
            del proj
            image, hole = canvas.resolve()
            del canvas
            if clean_holes:
                hole = dilate_holes(hole)
                image = image * (1.0 - hole).unsqueeze(-1)
            images[start:stop] = image
            holes[start:stop] = hole
            if progress is not None:
                progress(stop, T)
    return images, holes


def _check_options(mode, chunk_size, splat_radius, max_splat_radius, near, depth_tolerance, flying_threshold):
    if mode not in MODES:
        raise TrajCrafterError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise TrajCrafterError(f"chunk_size must be a positive number of frames (or None), got {chunk_size!r}.")
    if splat_radius != "auto":
        try:
            r = float(splat_radius)
        except (TypeError, ValueError):
            r = float("nan")
        if not (r >= 1.0 and math.isfinite(r)):
            raise TrajCrafterError(f"splat_radius must be 'auto' or a number of pixels >= 1, got {splat_radius!r}.")
        if r > 16:
            raise TrajCrafterError(f"splat_radius {r} is too large (max 16 pixels).")
    if not (1.0 <= float(max_splat_radius) <= 16.0):
        raise TrajCrafterError(f"max_splat_radius must be in [1, 16] pixels, got {max_splat_radius!r}.")
    if not (math.isfinite(float(near)) and near >= 0):
        raise TrajCrafterError(f"near must be a distance >= 0, got {near!r}.")
    if not (0.0 <= float(depth_tolerance) < 1.0):
        raise TrajCrafterError(f"depth_tolerance must be a relative depth in [0, 1), got {depth_tolerance!r}.")
    if not float(flying_threshold) > 0:
        raise TrajCrafterError(f"flying_threshold must be > 0, got {flying_threshold!r}.")


def render_views(
    frames,
    depths,
    K_src,
    transforms,
    K_dst=None,
    mode: str = "official",
    clean_holes: bool = False,
    *,
    size: Optional[Tuple[int, int]] = None,
    chunk_size: Optional[int] = None,
    progress: Optional[ProgressFn] = None,
    device: Optional[Union[str, torch.device]] = None,
    splat_radius: Union[str, float] = "auto",
    max_splat_radius: float = 4.0,
    near: float = 1e-3,
    depth_tolerance: float = 0.02,
    drop_flying_pixels: bool = True,
    flying_threshold: float = DEFAULT_FLYING_THRESHOLD,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Render frame ``t`` of ``frames``/``depths`` from camera ``transforms[t]``.

    - ``frames`` float32 ``[T, H, W, 3]`` in 0..1 (or uint8); ``depths`` ``[T, H, W]`` > 0.
    - ``K_src`` ``[3, 3]`` or ``[T, 3, 3]``: intrinsics of the source frames (pixels at H x W).
    - ``transforms`` ``[T, 4, 4]``: source-camera → target-camera (``X_dst = T @ X_src``, OpenCV
      axes); for the official pipeline ``pose_t @ inv(pose_s)``.
    - ``K_dst`` ``[3, 3]`` or ``[T, 3, 3]`` at the render size; default ``K_src`` rescaled to ``size``.
    - ``mode``: ``"official"`` (the official bilinear exp-weighted splat, default) or ``"zbuffer"``.
    - ``clean_holes``: the official ``--mask`` cleanup (5x5 dilation of the holes).
    - ``size``: ``(height, width)`` of the render, default the source size.
    - ``chunk_size``: frames per batch (bounds memory); default by a point budget per device.
    - ``progress``: called as ``progress(frames_done, total)`` after each chunk.
    - ``device``: where to compute; default the device of ``frames``. Results are returned on
      the device of ``frames``.
    - zbuffer only: ``splat_radius`` (``"auto"`` or a fixed tent radius in pixels, 1 = bilinear),
      ``max_splat_radius``, ``near`` (cull points with target z <= near), ``depth_tolerance``
      (relative depth band that still blends with the nearest point), ``drop_flying_pixels`` and
      ``flying_threshold`` (log-depth jump that marks a depth edge).

    Returns ``images`` float32 ``[T, h, w, 3]`` in 0..1 (holes 0) and ``hole_mask`` float32
    ``[T, h, w]`` (1 = hole).
    """
    _check_options(mode, chunk_size, splat_radius, max_splat_radius, near, depth_tolerance, flying_threshold)
    frames = as_frames(frames, "frames")
    depths = as_depth(depths, "depths", like=frames).to(frames.device)
    T, H, W = depths.shape
    out_size = _as_size(size, (H, W))
    transforms = _as_transforms(transforms, T)
    K_src = as_intrinsics(K_src, "K_src", count=T)
    if K_dst is None:
        K_dst = K_src if out_size == (H, W) else scale_intrinsics(K_src, (H, W), out_size)
    K_dst = as_intrinsics(K_dst, "K_dst", count=T)
    compute_device = torch.device(device) if device is not None else frames.device
    return _render(
        frames, depths, None, K_src, transforms, K_dst, out_size, mode, clean_holes, chunk_size, progress,
        compute_device, splat_radius, max_splat_radius, near, depth_tolerance, drop_flying_pixels, flying_threshold,
    )


def render_trajectory(
    point_cloud: PointCloud,
    trajectory,
    mode: str = "official",
    clean_holes: bool = False,
    *,
    size: Optional[Tuple[int, int]] = None,
    **options,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Render every output frame of a :class:`~trajcrafter_core.camera.Trajectory`.

    Output frame ``i`` lifts source frame ``trajectory.source_index[i]`` of ``point_cloud`` and
    renders it with ``trajectory.transforms[i]`` / ``trajectory.K_dst[i]``. The lifting
    intrinsics are ``trajectory.K_src[i]`` (rescaled from the trajectory's size to the point
    cloud's size when they differ). The render size is ``size`` if given (``K_dst`` rescaled to
    it), else the trajectory's size. Source frames are gathered chunk by chunk, so a schedule
    that repeats one frame (bullet time) costs no extra memory. ``options`` are those of
    :func:`render_views` (chunk_size, progress, device, zbuffer settings).
    """
    if not isinstance(point_cloud, PointCloud):
        raise TrajCrafterError(f"point_cloud must be a PointCloud, got {type(point_cloud).__name__}.")
    for attr in ("source_index", "transforms", "K_src", "K_dst", "height", "width"):
        if not hasattr(trajectory, attr):
            raise TrajCrafterError(f"trajectory must be a Trajectory (missing {attr!r}), got {type(trajectory).__name__}.")
    chunk_size = options.pop("chunk_size", None)
    progress = options.pop("progress", None)
    device = options.pop("device", None)
    zopts = dict(splat_radius="auto", max_splat_radius=4.0, near=1e-3, depth_tolerance=0.02,
                 drop_flying_pixels=True, flying_threshold=DEFAULT_FLYING_THRESHOLD)
    unknown = set(options) - set(zopts)
    if unknown:
        raise TrajCrafterError(f"render_trajectory got unknown option(s) {sorted(unknown)}.")
    zopts.update(options)
    _check_options(mode, chunk_size, zopts["splat_radius"], zopts["max_splat_radius"], zopts["near"],
                   zopts["depth_tolerance"], zopts["flying_threshold"])

    source_index = torch.as_tensor(trajectory.source_index).long().reshape(-1)
    n = source_index.shape[0]
    if n == 0 or int(source_index.min()) < 0 or int(source_index.max()) >= point_cloud.num_frames:
        raise TrajCrafterError(
            f"trajectory.source_index must pick frames in [0, {point_cloud.num_frames}) of the point "
            f"cloud, got values in [{int(source_index.min()) if n else '-'}, {int(source_index.max()) if n else '-'}]."
            " Build the trajectory for this clip's frame count."
        )
    traj_size = _as_size((trajectory.height, trajectory.width), (0, 0))
    out_size = _as_size(size, traj_size)
    transforms = _as_transforms(trajectory.transforms, n)
    K_src = as_intrinsics(trajectory.K_src, "trajectory.K_src", count=n)
    K_dst = as_intrinsics(trajectory.K_dst, "trajectory.K_dst", count=n)
    if traj_size != point_cloud.size:
        K_src = scale_intrinsics(K_src, traj_size, point_cloud.size)
    if out_size != traj_size:
        K_dst = scale_intrinsics(K_dst, traj_size, out_size)
    compute_device = torch.device(device) if device is not None else point_cloud.device
    return _render(
        point_cloud.frames, point_cloud.depths, source_index, K_src, transforms, K_dst, out_size, mode, clean_holes,
        chunk_size, progress, compute_device, zopts["splat_radius"], zopts["max_splat_radius"], zopts["near"],
        zopts["depth_tolerance"], zopts["drop_flying_pixels"], zopts["flying_threshold"],
    )
