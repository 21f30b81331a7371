"""Render point clouds from new cameras: batched point splatting in pure torch (CPU and CUDA).

Output frame ``t`` lifts source frame ``t`` (colours + depth, intrinsics ``K_src[t]``), moves
the points with ``transforms[t]`` (source-camera → target-camera coordinates, OpenCV axes) and
splats them into a target image with ``K_dst[t]``. Two modes:

``official``
    Reproduces the official TrajectoryCrafter ``Warper.forward_warp``. Point positions are
    computed with the official float32 operations in the official order, so the same pixels are
    hit with the same bilinear weights and the hole mask is identical. Every point is splatted
    onto the 4 pixels around its projection with weight ``bilinear / exp(50 * log(1 + z) /
    max_frame(log(1 + z)))`` (``z`` = target depth clamped to ``[0, 1000]``, the max taken over
    all points of the frame) and the weighted colours are averaged. There is no depth test
    (background points bleed into foreground pixels with a small weight) and no near-plane
    culling: a point behind the camera (``z < 0``) is projected through the origin, mirrored,
    with the largest weight. An integral projection puts all four bilinear corners on one pixel
    (``floor == ceil`` in the official code). The released model was trained on these renders.
``zbuffer``
    Hard depth test in two passes. Pass 1 finds, per pixel, the nearest depth among the points
    that fall in that pixel or one of its 8 neighbours. Pass 2 averages (tent weights) only the
    points whose depth, less one depth step of their own surface, is within ``depth_tolerance``
    (relative, default 2 %) of it, so a background point never blends into a foreground pixel
    while slanted surfaces stay closed and blend smoothly. Points with target depth <= ``near``
    are culled, flying pixels at depth edges are dropped (the log-depth jump test of
    :func:`~trajcrafter_core.pointcloud.flying_pixel_mask`, measured in the target camera),
    pixels reached only by the faint tail of a footprint are holes, and with
    ``splat_radius="auto"`` each point's footprint grows with its magnification (focal ratio x
    source depth / target depth) so zoom-ins and forward moves leave no pinholes.

Both return images in 0..1 with holes = 0 and a hole mask (1 = hole). ``clean_holes`` is the
official ``--mask`` option: holes are dilated by a 5x5 square and the newly masked pixels zeroed.

Memory and speed: frames are processed in chunks (default about 2 M points on CPU, one
576x1024 frame for the z-buffer, 16 M on CUDA) with per-point temporaries only, so peak memory
is inputs + outputs + a fixed amount whatever the clip length. On CPU each chunk is further cut
into bands of about 128 K points that stay in cache while a few dozen elementwise operations run
over them. All corners of all points accumulate with flat ``scatter_add_`` calls into one padded
canvas per chunk; points outside the image are clamped into the padding (cropped away) instead
of being filtered out, except that the z-buffer on CPU filters out the points of a band that
fail its depth test when they are many.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch

from .camera import rescale_intrinsics
from .conventions import _to_tensor, as_depth, as_frames, as_intrinsics, check_finite
from .errors import TrajCrafterError
from .pointcloud import DEFAULT_FLYING_THRESHOLD, PointCloud

__all__ = [
    "MODES",
    "render_views",
    "render_trajectory",
    "splat_points",
    "project_points",
    "dilate_holes",
]

MODES = ("official", "zbuffer")

#: Official depth weighting: depths clamped to [0, DEPTH_CLAMP], weight 1 / exp(SHARPNESS * log(1 + z) / max).
OFFICIAL_DEPTH_CLAMP = 1000.0
OFFICIAL_DEPTH_SHARPNESS = 50.0
#: Side of the square the official ``--mask`` cleanup dilates holes with.
CLEAN_HOLES_KERNEL = 5
#: z-buffer "auto" radius = max(1, magnification / 2 + AUTO_RADIUS_MARGIN): neighbouring points
#: land ``magnification`` pixels apart, so a tent reaching half that distance (plus a margin)
#: leaves no pixel uncovered between them. Plain bilinear (radius 1) up to 1.75x magnification.
AUTO_RADIUS_MARGIN = 0.125
#: z-buffer: a pixel whose accepted splat weights sum to less than this is a hole. Inside a
#: continuous surface the sum is >= ~0.06 (pixel midway between 4 points 1.75 px apart); a pixel
#: grazed only by the far tail of a neighbour's footprint (e.g. beside a dropped flying pixel)
#: has no colour of its own.
ZBUFFER_MIN_WEIGHT = 0.02
#: z-buffer: a point decides the depth test of the cells within this distance (pixels, per axis,
#: before the 3x3 neighbourhood of :meth:`_Canvas.nearest_depth`): the cell it falls in.
OWN_DISTANCE = 0.5

_CPU_POINTS_PER_CHUNK = 1 << 21
#: The z-buffer keeps per-point state between its two passes: one 576x1024 frame per chunk keeps
#: it (and the canvas) mostly in the last-level cache.
_CPU_ZBUFFER_POINTS_PER_CHUNK = 1 << 19
_CUDA_POINTS_PER_CHUNK = 1 << 24
_CPU_POINTS_PER_BAND = 1 << 17
#: Where points that must reach no pixel are moved (clamped into the canvas padding).
_FAR_AWAY = -1.0e9

ProgressFn = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------
# Small public helpers
# --------------------------------------------------------------------------------------------


def _interleave(planes: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Planar ``[C, ...]`` → channel-last ``[..., C]`` (into ``out`` when given). ``torch.stack``
    along the last dim: on CPU ~7x faster than a copy from a permuted view."""
    return torch.stack(tuple(planes.unbind(0)), dim=-1, out=out)


def _deinterleave(x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Channel-last ``[..., C]`` → planar ``[C, ...]`` (contiguous; into ``out`` when given), the
    inverse of :func:`_interleave`."""
    return torch.stack(tuple(x.unbind(-1)), dim=0, out=out)


def _window_reduce(x: torch.Tensor, width: int, left: int, reduce, scratch=None) -> torch.Tensor:
    """``reduce`` (``torch.maximum``/``torch.minimum``) over ``width x width`` windows of the last
    two dims: output ``[i, j]`` covers rows ``i - left .. i - left + width - 1`` (same for
    columns); cells outside the array are ignored. Separable shifts: much faster on CPU than
    ``max_pool2d`` with stride 1. ``scratch``: two buffers like ``x`` to work in (the result is
    the second), else new tensors."""
    for k, dim in enumerate((-1, -2)):
        out = x.clone() if scratch is None else scratch[k].copy_(x)
        size = x.shape[dim]
        for d in range(-left, width - left):
            if d == 0 or abs(d) >= size:
                continue
            if d > 0:
                dst, src = out.narrow(dim, 0, size - d), x.narrow(dim, d, size - d)
            else:
                dst, src = out.narrow(dim, -d, size + d), x.narrow(dim, 0, size + d)
            reduce(dst, src, out=dst)
        x = out
    return x


def dilate_holes(hole_mask: torch.Tensor, kernel: int = CLEAN_HOLES_KERNEL, scratch=None) -> torch.Tensor:
    """Grow the holes (1 = hole) of ``[T, H, W]`` masks by a ``kernel x kernel`` square.

    Same as the official ``clean_points`` (``cv2.dilate`` with a ones kernel; pixels outside the
    image do not count as holes). ``scratch``: two buffers like the mask to work in (the result
    is the second), else new tensors.
    """
    return _window_reduce(hole_mask, kernel, kernel // 2, torch.maximum, scratch)


# --------------------------------------------------------------------------------------------
# Projection
# --------------------------------------------------------------------------------------------


def _pixel_axes(width: int, row0: int, rows: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    u = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, width)
    v = torch.arange(row0, row0 + rows, device=device, dtype=torch.float32).view(1, rows, 1)
    return u, v


class _OfficialCameraChain:
    """``K_dst @ (T @ (d * inv(K_src) @ [u, v, 1]))`` evaluated like the official float32
    ``compute_transformed_points``: every matmul row as ``((a0 x0 + a1 x1) + a2 x2) + ...`` in
    order, which reproduces its bits. Terms whose coefficient is exactly 0 in every frame are
    skipped and unit coefficients are not multiplied (both exact), decided once per chunk."""

    def __init__(self, K_src: torch.Tensor, transforms: torch.Tensor, K_dst: torch.Tensor):
        self.n = K_src.shape[0]
        K_inv = torch.linalg.inv(K_src.float())
        self.rays = [self._row(K_inv[:, i, :3]) for i in range(3)]
        self.moves = [self._row(transforms[:, i, :4]) for i in range(3)]
        self.intrinsics = [self._row(K_dst[:, i, :3]) for i in range(3)]

    def _row(self, coefs: torch.Tensor):
        """Per term: None (skip, all zero), 1.0 (all one) or the ``[n, 1, 1]`` coefficients."""
        zero = (coefs == 0).all(dim=0).tolist()
        one = (coefs == 1).all(dim=0).tolist()
        return [None if z else (1.0 if o else coefs[:, j].reshape(-1, 1, 1)) for j, (z, o) in enumerate(zip(zero, one))]

    @staticmethod
    def _sum(row, values, frames: slice):
        total = None
        for coef, value in zip(row, values):
            if coef is None:
                continue
            term = value if isinstance(coef, float) else coef[frames] * value
            total = term if total is None else total + term
        return total if total is not None else torch.zeros(1, 1, 1, device=values[0].device)

    def project(self, depth: torch.Tensor, frames: slice, row0: int):
        """``x, y, z`` ``[nb, hb, W]`` of ``depth`` = rows ``row0..`` of the chunk's ``frames``."""
        nb, hb, W = depth.shape
        u, v = _pixel_axes(W, row0, hb, depth.device)
        one = torch.ones(1, 1, 1, device=depth.device)
        rays = [self._sum(row, (u, v, one), frames) for row in self.rays]
        cam = [depth if r.numel() == 1 and float(r.reshape(-1)[0]) == 1.0 else depth * r for r in rays]
        moved = [self._sum(row, (*cam, one), frames) for row in self.moves]
        p = [self._sum(row, moved, frames) for row in self.intrinsics]
        z = p[2].expand(nb, hb, W)
        # Official: coordinates = p[:2] / p[2]; flow = coordinates - grid; position = flow + grid.
        x = ((p[0] / z) - u).add_(u)
        y = ((p[1] / z) - v).add_(v)
        return x.expand(nb, hb, W), y.expand(nb, hb, W), z


class _ComposedCameraChain:
    """The camera chain composed in float64 into ``p = d * M @ [u, v, 1] + b``: fewest
    operations per point, as accurate as the official order (used by the z-buffer)."""

    def __init__(self, K_src: torch.Tensor, transforms: torch.Tensor, K_dst: torch.Tensor):
        M = K_dst.double() @ transforms[:, :3, :3].double() @ torch.linalg.inv(K_src.double())
        self.M = M.float()
        self.b = (K_dst.double() @ transforms[:, :3, 3:].double()).float()[:, :, 0]

    def frames(self, start: int, stop: int, device) -> "_ComposedCameraChain":
        """The chain of frames ``start..stop - 1`` on ``device`` (composed once for a whole clip)."""
        part = object.__new__(_ComposedCameraChain)
        part.M, part.b = self.M[start:stop].to(device), self.b[start:stop].to(device)
        return part

    def project(self, depth: torch.Tensor, frames: slice, row0: int, out=None):
        """``x, y, z`` ``[nb, hb, W]`` (written into ``out`` tensors when given)."""
        nb, hb, W = depth.shape
        u, v = _pixel_axes(W, row0, hb, depth.device)
        M, b = self.M[frames], self.b[frames]
        p = []
        for i in range(3):
            across = M[:, i, 0].view(nb, 1, 1) * u + M[:, i, 2].view(nb, 1, 1)  # [nb, 1, W]
            ray = torch.addcmul(across, M[:, i, 1].view(nb, 1, 1), v)  # one full-size operation
            p.append(torch.addcmul(b[:, i].view(nb, 1, 1), depth, ray, out=None if out is None else out[i]))
        z = p[2]
        return p[0].div_(z), p[1].div_(z), z


def project_points(depth, K_src, transforms, K_dst=None, exact_official: bool = False):
    """Where the pixels of source depth maps land in the target cameras.

    ``depth`` ``[n, H, W]``, ``K_src``/``K_dst`` ``[n, 3, 3]``, ``transforms`` ``[n, 4, 4]``
    (source → target camera). Returns target pixel coordinates ``x, y`` and target depth ``z``,
    each float32 ``[n, H, W]`` (``z`` <= 0 behind the camera, where ``x, y`` are mirrored or
    non-finite). ``exact_official`` repeats the official float32 operation order bit for bit;
    otherwise the chain is composed once in float64 (fewer operations, as accurate).
    """
    chain = (_OfficialCameraChain if exact_official else _ComposedCameraChain)(
        K_src.float(), transforms.float(), (K_src if K_dst is None else K_dst).float())
    return chain.project(depth.float(), slice(None), 0)


# --------------------------------------------------------------------------------------------
# Canvas
# --------------------------------------------------------------------------------------------


class _Canvas:
    """Per-pixel accumulators of a chunk of ``n`` frames, flat and padded by ``pad`` pixels on
    every side: weighted sums of the ``channels`` values (RGB, optionally target depth) + the
    weight sum (``sums [channels + 1, n * plane]``) and, for the depth test,
    the nearest depth of the points anchored at each cell (per footprint width). Points outside
    the image are clamped into the padding, which is cropped away, so no point ever needs to be
    filtered out."""

    def __init__(self, n: int, height: int, width: int, pad: int, device, buffers: Optional[dict] = None,
                 channels: int = 3):
        self.n, self.height, self.width, self.pad, self.channels = n, height, width, pad, channels
        self.row = width + 2 * pad
        self.plane = (height + 2 * pad) * self.row
        # Flat indices are formed in float, exact below 2**24 over the whole chunk (else float64),
        # then made integers (through int32 when they fit: about 2x faster than float -> int64).
        self.index_dtype = torch.float32 if n * self.plane < (1 << 24) else torch.float64
        self.row_len = torch.tensor(float(self.row), dtype=self.index_dtype, device=device)
        # ``buffers`` (a dict kept by the caller across the chunks of one render) recycles the
        # accumulators: refilling them is much cheaper than page-faulting in fresh ones.
        self._buffers = {} if buffers is None else buffers
        self.sums = self._buffer("sums", (channels + 1, n * self.plane), 0.0, device)  # weight last
        self.zmin = None  # z-buffer: nearest depth of the points owning each cell
        self._corners = None

    def scratch(self, name: str, shape) -> torch.Tensor:
        """A recycled float32 work buffer of ``shape`` (contents undefined), kept across chunks."""
        return self._buffer(name, shape, None, self.sums.device)

    def _buffer(self, name: str, shape, fill: Optional[float], device, dtype=torch.float32) -> torch.Tensor:
        """A recycled buffer of ``shape``, filled with ``fill`` (None: left as it is)."""
        numel = math.prod(shape)
        held = self._buffers.get(name)
        if held is None or held.numel() < numel or held.device != torch.device(device) or held.dtype != dtype:
            held = self._buffers[name] = torch.empty(numel, device=device, dtype=dtype)
        out = held[:numel].view(shape)
        return out if fill is None else out.fill_(fill)

    def add_owner_depth(self, index: torch.Tensor, depth: torch.Tensor) -> None:
        """z-buffer pass 1: keep the nearest ``depth`` of the points that own each cell.

        Non-negative float32 values order like their bit patterns read as int32, and the
        integer ``amin`` scatter is about 3x faster on CPU than the float one (which handles
        NaN). Negative depths (culled points, moved into the padding) also stay below every
        positive depth, as with a float ``amin``. The points are split in two halves that
        scatter into the two rows of ``zmin`` in parallel (merged by :meth:`nearest_depth`)."""
        if self.zmin is None:
            self.zmin = self._buffer("zmin", (2, self.n * self.plane), math.inf, self.sums.device)
        flat_index, bits = index.reshape(-1), depth.reshape(-1).view(torch.int32)
        if flat_index.numel() % 2 == 0:
            self.zmin.view(torch.int32).scatter_reduce_(1, flat_index.view(2, -1), bits.view(2, -1), reduce="amin")
        else:
            self.zmin[0].view(torch.int32).scatter_reduce_(0, flat_index, bits, reduce="amin")

    def nearest_depth(self) -> torch.Tensor:
        """Depth of the nearest surface at each cell ``[n * plane]``: the nearest point owning the
        cell or one of its 8 neighbours (inf where there is none, and on the outermost padding
        ring). Looking one cell around closes the gaps between magnified points and keeps
        foreground edges sharp: a background point beside a foreground one does not blend into it.
        Cell 0 (a corner of the ring), where dropped points are sent, is NaN: no depth passes there."""
        shape = (self.n, self.height + 2 * self.pad, self.row)
        out = self._buffer("limit", shape, None, self.sums.device)
        if self.zmin is None:
            out.fill_(math.inf).view(-1)[0] = math.nan
            return out.view(-1)
        layout = (out.data_ptr(), shape[1:])
        if self._buffers.get("limit_ring") != layout:  # the ring is never written over: fill it once
            for ring in (out[:, 0], out[:, -1], out[:, :, 0], out[:, :, -1]):
                ring.fill_(math.inf)
            self._buffers["limit_ring"] = layout
        out.view(-1)[0] = math.nan
        z = torch.minimum(self.zmin[0], self.zmin[1], out=self.zmin[0]).view(shape)
        across = self.zmin[1].view(shape)[:, :, : self.row - 2]  # the merged-away half as scratch
        torch.minimum(z[:, :, :-2], z[:, :, 1:-1], out=across)
        torch.minimum(across, z[:, :, 2:], out=across)
        inner = out[:, 1:-1, 1:-1]
        torch.minimum(across[:, :-2], across[:, 1:-1], out=inner)
        torch.minimum(inner, across[:, 2:], out=inner)
        return out.view(-1)

    def cell_coords(self, col: torch.Tensor, row: torch.Tensor, frames, offset: int = 0) -> torch.Tensor:
        """Flat indices, as exact floats (``index_dtype``; same shape), of canvas cells
        ``(col + offset, row + offset)``: ``col``, ``row`` integral floats ``[nb, ...]`` of chunk
        frames ``frames`` (a slice, or a per-point frame index tensor for gathered points)."""
        dtype = self.index_dtype
        flat = torch.addcmul(col.to(dtype), row.to(dtype), self.row_len)
        shift = offset * (self.row + 1)
        if isinstance(frames, slice):
            nb = flat.shape[0]
            flat += (frames.start or 0) * self.plane + shift
            if nb > 1:
                flat += (torch.arange(nb, device=flat.device, dtype=dtype) * self.plane).view(nb, *([1] * (flat.ndim - 1)))
        else:
            flat += frames.to(dtype) * self.plane + shift
        return flat

    def stored_index(self, flat: torch.Tensor) -> torch.Tensor:
        """Flat float indices from :meth:`cell_coords` as int32 when the chunk's indices fit (half
        the bytes to read back when kept between passes), else int64."""
        return flat.int() if self.index_dtype == torch.float32 else flat.long()

    def as_index(self, flat: torch.Tensor) -> torch.Tensor:
        """Flat indices (floats from :meth:`cell_coords`, or :meth:`stored_index` integers) as
        int64 (floats through int32 when they fit: about 2x faster than float -> int64)."""
        return flat.long() if flat.dtype != torch.float32 else flat.int().long()

    def cell_index(self, col: torch.Tensor, row: torch.Tensor, frames, offset: int = 0) -> torch.Tensor:
        """:meth:`cell_coords` as int64 indices."""
        return self.as_index(self.cell_coords(col, row, frames, offset))

    def source(self, shape) -> Tuple[torch.Tensor, torch.Tensor]:
        """A source buffer for :meth:`add`, ``[channels + 1, numel]``, and its last row (the
        weights) viewed as ``shape``: a footprint writes its weights there, no copy needed.
        Recycled (one at a time: each is consumed by :meth:`add` before the next is asked for)."""
        src = self._buffer("source", (self.channels + 1, math.prod(shape)), None, self.sums.device)
        return src, src[-1].view(shape)

    def corner_index(self, base: torch.Tensor) -> torch.Tensor:
        """int64 flat indices of the 2x2 cells ``[dx, dy, ...]`` from the int64 cells ``base``, in
        a recycled buffer (consumed by :meth:`add` before the next is asked for)."""
        if self._corners is None:  # [dx, dy] offsets, made once per canvas
            self._corners = torch.tensor([[0, self.row], [1, self.row + 1]], device=self.sums.device)
        out = self._buffer("corners", (2, 2, *base.shape), None, base.device, torch.int64)
        return torch.add(base, self._corners.view(2, 2, *([1] * base.ndim)), out=out)

    def add(self, index: torch.Tensor, weight: torch.Tensor, colors: Sequence[torch.Tensor],
            src: torch.Tensor) -> None:
        """Accumulate ``weight`` and ``value * weight`` at ``index`` for each of the ``channels``
        values in ``colors`` (all the same shape as ``index``, or broadcastable to it);
        ``src``: the buffer from :meth:`source` whose last row ``weight`` is.

        One ``scatter_add_`` along the rows of ``sums`` with the index broadcast over them: on
        CPU the rows (channels) are accumulated in parallel, each in index order like
        ``index_add_`` (bitwise the same sums, deterministic), 3-4x faster than one
        ``index_add_`` per channel."""
        flat_index = index.reshape(1, -1)
        for k in range(self.channels):
            torch.mul(colors[k], weight, out=src[k].view(weight.shape))
        self.sums.scatter_add_(1, flat_index.expand(self.channels + 1, -1), src)

    def crop(self, flat: torch.Tensor) -> torch.Tensor:
        """``[..., n * plane]`` → ``[..., n, H, W]`` without the padding."""
        p = self.pad
        shaped = flat.reshape(*flat.shape[:-1], self.n, self.height + 2 * p, self.row)
        return shaped[..., p : p + self.height, p : p + self.width]

    def resolve(self, images: Optional[torch.Tensor] = None, holes: Optional[torch.Tensor] = None,
                min_weight: float = 0.0, depth: Optional[torch.Tensor] = None, clean_holes: bool = False):
        """Average colours ``[n, H, W, 3]`` (0..1, holes 0) and hole mask ``[n, H, W]``, written
        into ``images`` / ``holes`` when given (same device), else returned as new tensors; with
        a depth channel also the average depth ``[n, H, W]`` (0 at holes; into ``depth``).
        A pixel is a hole when its weight sum is 0 (or below ``min_weight``); ``clean_holes``:
        the holes grown by :func:`dilate_holes` first (the grown pixels are blanked too)."""
        sums = self.crop(self.sums)
        weight = sums[-1]
        shape = (self.n, self.height, self.width)
        dev = weight.device
        if images is None:
            images = torch.empty(*shape, 3, device=dev)
            holes = torch.empty(shape, device=dev)
        # 0/1 float masks and a planar product interleaved channel-last by ``torch.stack``: on
        # CPU 2x faster than bool masks, masked_fill and a product written through a permuted
        # view, and the stack ~7x faster than copying from a permuted view. Work buffers are
        # recycled: fresh pages cost as much as the arithmetic here.
        keep = torch.ge(weight, min_weight, out=holes) if min_weight > 0 else torch.gt(weight, 0.0, out=holes)
        if clean_holes:
            holes.neg_().add_(1.0)
            scratch = (self._buffer("clean", shape, None, dev), self._buffer("grown", shape, None, dev))
            holes.copy_(dilate_holes(holes, scratch=scratch))
            keep = torch.neg(holes, out=scratch[0]).add_(1.0)
        # 1 / weight where kept (exact: a covered weight is a normal float), else 0; NaN: a hole
        scale = torch.clamp_min(weight, torch.finfo(weight.dtype).tiny, out=self._buffer("scale", shape, None, dev))
        scale.reciprocal_().mul_(keep).nan_to_num_(0.0)
        planar = self._buffer("planar", (3, *shape), None, dev)
        torch.mul(sums[:3], scale, out=planar).clamp_(0.0, 1.0)
        _interleave(planar, out=images)
        if not clean_holes:
            holes.neg_().add_(1.0)
        if self.channels == 3:
            return images, holes
        depth = torch.empty(shape, device=weight.device) if depth is None else depth
        torch.mul(sums[3], scale, out=depth)
        return images, holes, depth


def _floor_in_canvas(coord: torch.Tensor, low: float, high: float):
    """``floor(coord)`` clamped to ``[low, high]`` (NaN → ``low``) and the fraction ``coord - floor``."""
    lower = torch.floor(coord)
    frac = coord - lower
    return lower.nan_to_num_(nan=low).clamp_(low, high), frac


# --------------------------------------------------------------------------------------------
# Official splat
# --------------------------------------------------------------------------------------------


def _official_log_depth(z: torch.Tensor) -> torch.Tensor:
    """``log(1 + clamp(z, 0, 1000))`` as the official code computes it."""
    return torch.log(z.clamp(0.0, OFFICIAL_DEPTH_CLAMP).add_(1.0))


def _splat_official(canvas: _Canvas, x, y, z, colors, log_max, frames, mask=None) -> None:
    """Official bilinear splat of points ``x, y, z`` ``[nb, ...]`` (colours: ``canvas.channels``
    tensors like them) of chunk frames ``frames``; ``log_max`` ``[nb, 1, ...]``: per-frame max of
    the log depth; ``mask`` (bool like ``z``, optional): the official ``mask1``, points marked
    False get weight 0 (they still count in ``log_max``)."""
    inv_weight = _official_log_depth(z).div_(log_max).mul_(OFFICIAL_DEPTH_SHARPNESS).exp_()  # "depth_weights"
    # Official: position + 1 (a one-pixel border), its floor and ceil. Floors outside [0, W]
    # reach no visible pixel; they are clamped into the two-pixel padding (canvas col = floor + 1).
    col, fx = _floor_in_canvas(x + 1.0, -1.0, canvas.width + 1.0)
    row, fy = _floor_in_canvas(y + 1.0, -1.0, canvas.height + 1.0)
    base = canvas.cell_index(col, row, frames, offset=1)
    del col, row
    # Integral coordinate: ceil == floor, so the "ceil" corner (weight 1 - 0) lands on the floor
    # pixel too: weight 2 there, fx == 0 on the next pixel.
    wx = torch.stack([(1.0 - fx).masked_fill_(fx == 0, 2.0), fx])
    wy = torch.stack([(1.0 - fy).masked_fill_(fy == 0, 2.0), fy]).div_(inv_weight)
    if mask is not None:
        wy.masked_fill_(mask.logical_not(), 0.0)
    del inv_weight, fx, fy
    # all four corners at once, [dx, dy, ...] in the official order nw, sw, ne, se
    src, weight = canvas.source((2, 2, *base.shape))
    torch.mul(wx.unsqueeze(1), wy.unsqueeze(0), out=weight)
    canvas.add(canvas.corner_index(base), weight, colors, src)


def _footprint_offsets(width: int) -> Tuple[int, float]:
    """A tent of radius R covers ``width = ceil(2R)`` cells per axis: for an even width the
    cells ``floor(x) - (width/2 - 1) .. floor(x) + width/2``, for an odd width the cells
    ``round(x) - (width-1)/2 .. round(x) + (width-1)/2``. Returns (first offset, anchor shift)."""
    if width % 2 == 0:
        return -(width // 2 - 1), 0.0
    return -(width // 2), 0.5


def _tent_weights(frac: torch.Tensor, width: int, inv_radius) -> torch.Tensor:
    """Tent weights ``max(0, 1 - |cell - x| / R)`` of the ``width`` cells of one axis, stacked
    ``[width, ...]``; ``frac = x + shift - anchor`` (``inv_radius`` None: R = 1, bilinear)."""
    if width == 2 and inv_radius is None:
        return torch.stack([1.0 - frac, frac])
    first, shift = _footprint_offsets(width)
    cells = torch.arange(first, first + width, device=frac.device, dtype=frac.dtype) + shift
    d = (frac.unsqueeze(0) - cells.view(-1, *([1] * frac.ndim))).abs_()
    if inv_radius is not None:
        d.mul_(inv_radius)
    return d.neg_().add_(1.0).clamp_(min=0.0)


#: z-buffer on CPU: when fewer than this fraction of a band's points pass the depth test, the
#: others are filtered out before the splat (cheaper than splatting zero weights from there on).
_COMPACT_BELOW = 0.8
#: Footprint entries (points x cells) processed at once for magnified points.
_FOOTPRINT_ENTRIES = 1 << 22


class _BilinearPoints:
    """The z-buffer's common case: points splatted bilinearly (tent radius 1) onto the 2x2 pixels
    around them and depth-tested at the pixel they fall in (nearest pixel: a point on a pixel
    centre, give or take float noise, owns that pixel).

    ``keep`` float32 0/1 like ``x``: the points to splat. Masks are 0/1 floats and dropped points
    are sent to cell 0 of the canvas, whose depth limit is NaN (no point passes there), instead
    of being filtered out: on CPU a float mask costs a quarter of a bool one and a fifth of
    ``torch.where``/``masked_fill``. Between the passes 20 bytes per point are kept (the owned
    cell's int32 index, the anchor cell (int32 too), fractions and test depth): pass 2 reads them back
    from memory, where every byte costs."""

    def __init__(self, canvas: "_Canvas", frames: slice, x, y, z, z_test, keep, colors):
        """``colors``: ``[nb, h, w, 3]`` (a view of the frames) + optionally a depth plane."""
        # floors in [-1, size - 1] reach a visible pixel; the others are clamped into the padding
        # and dropped (no depth test, no splat)
        col, fx = _floor_in_canvas(x, -2.0, float(canvas.width))
        row, fy = _floor_in_canvas(y, -2.0, float(canvas.height))
        inside = torch.empty_like(col)
        for floor, size in ((col, canvas.width), (row, canvas.height)):
            keep.mul_(torch.gt(floor, -2.0, out=inside)).mul_(torch.lt(floor, float(size), out=inside))
        flat = canvas.cell_coords(col, row, frames, offset=canvas.pad)
        own = torch.add(flat, torch.ge(fx, 0.5, out=col))
        self.own = own.add_(torch.ge(fy, 0.5, out=row), alpha=canvas.row).mul_(keep)
        self.flat = canvas.stored_index(flat)  # converted now, while the band is in cache
        # x, y = +-inf (points at z = 0, dropped) give NaN fractions and weights, which land in
        # the padding (their cells are clamped there) and are cropped away
        self.fx, self.fy = fx, fy
        self.z, self.z_test, self.colors = z, z_test, colors
        self.compact = x.device.type == "cpu"

    def nearest_depth(self, canvas: "_Canvas") -> None:
        # int64 for the scatter; kept as int32 when it fits (pass 2 only gathers with it)
        self.own = canvas.stored_index(self.own)
        canvas.add_owner_depth(canvas.as_index(self.own), self.z)
        self.z = None

    def blend_front(self, canvas: "_Canvas", limit: torch.Tensor) -> None:
        passed = self.z_test.le_(limit.index_select(0, self.own.view(-1)).view(self.own.shape))  # 0/1
        flat, fx, fy = self.flat, self.fx, self.fy
        rgb, *extra = self.colors
        # the share of points that pass, estimated on every 16th (a sum over all costs a pass)
        sample = passed.view(-1)[::16]
        if self.compact and float(sample.sum()) < _COMPACT_BELOW * sample.numel():
            # many points fail (occluded, dropped, off-image): splat only the others
            picked = torch.nonzero(passed.view(-1) > 0).squeeze(1)  # 2x faster on bool than float
            flat, fx, fy = (t.view(-1).index_select(0, picked) for t in (flat, fx, fy))
            colors = list(_deinterleave(rgb.reshape(-1, 3).index_select(0, picked)))  # whole pixels
            colors += [c.reshape(-1).index_select(0, picked) for c in extra]
            wy = torch.empty((2, *fy.shape), device=fy.device)  # (1 - fy, fy)
            wy[1] = fy
            torch.neg(fy, out=wy[0]).add_(1.0)
        else:
            planes = canvas.scratch("colour planes", (3, *rgb.shape[:-1]))  # recycled: no page faults
            colors = list(_deinterleave(rgb, out=planes)) + extra  # planes: each read 4x
            wy = torch.empty((2, *fy.shape), device=fy.device)  # (1 - fy, fy) * passed
            torch.mul(fy, passed, out=wy[1])
            torch.sub(passed, wy[1], out=wy[0])
        src, weight = canvas.source((2, 2, *fy.shape))
        torch.mul(fx, wy, out=weight[1])  # [dx, dy, ...]: fx * wy, (1 - fx) * wy
        torch.sub(wy, weight[1], out=weight[0])
        index = canvas.corner_index(canvas.as_index(flat))
        canvas.add(index, weight, colors, src)


class _PointGroup:
    """Points splatted with tent footprints of ``width`` cells per axis and radius
    ``1 / inv_radius`` (magnified points, or a fixed ``splat_radius``), depth-tested at every
    footprint cell: either all points of a band (``members``, bool, marks those to splat; the
    others are moved away) or gathered ones (``sel``: their flat indices in the band)."""

    def __init__(self, width: int, x, y, z, z_test, colors, frames, members=None, inv_radius=None, sel=None):
        self.width, self.x, self.y, self.z, self.frames = width, x, y, z, frames
        self.z_test, self.colors = z_test, colors
        self.members, self.inv_radius, self.sel = members, inv_radius, sel
        self._anchor = None

    def anchor(self, canvas: _Canvas):
        """Flat index of each point's anchor cell (its footprint spans ``width`` cells from
        there, see :func:`_footprint_offsets`) and its fractional position from it."""
        if self._anchor is None:
            w = self.width
            shift = _footprint_offsets(w)[1]
            gx = self.x if self.members is None else torch.where(self.members, self.x, _FAR_AWAY)
            # cells span anchor - h .. anchor + h (h = w // 2): anchors outside [-h - 1, size + h]
            # reach no visible pixel and are clamped into the padding (which is w + 1 wide)
            h = w // 2
            col, fx = _floor_in_canvas(gx + shift if shift else gx, -h - 1.0, canvas.width + h)
            row, fy = _floor_in_canvas(self.y + shift if shift else self.y, -h - 1.0, canvas.height + h)
            self._anchor = canvas.cell_index(col, row, self.frames, offset=canvas.pad), fx, fy
        return self._anchor

    def footprint(self, canvas: _Canvas, out=None):
        """Flat index and tent weight of every footprint cell, ``[width, width, ...points]``
        (written into ``out`` when given), and the per-axis weights."""
        w = self.width
        base, fx, fy = self.anchor(canvas)
        wx, wy = _tent_weights(fx, w, self.inv_radius), _tent_weights(fy, w, self.inv_radius)
        first = _footprint_offsets(w)[0]
        o = torch.arange(first, first + w, device=base.device)
        cells = (o.view(-1, 1) + o.view(1, -1) * canvas.row).view(w, w, *([1] * base.ndim))
        return base + cells, torch.mul(wx.unsqueeze(1), wy.unsqueeze(0), out=out), (wx, wy)

    def nearest_depth(self, canvas: _Canvas) -> None:
        """Pass 1: the depth of each point at the cells whose depth test it decides: the cells
        within ``R - 1/8`` of it (half the spacing of its magnified neighbours, at least the
        cell it falls in), so its surface stays closed. A point does not decide the depth of
        cells it only grazes with the tail of its footprint (see :meth:`_Canvas.nearest_depth`
        for the neighbourhood)."""
        index, _, (wx, wy) = self.footprint(canvas)
        inv_r = self.inv_radius
        if inv_r is None:
            floor_weight = 1.0 - OWN_DISTANCE
        else:
            radius = 1.0 / inv_r if isinstance(inv_r, float) else inv_r.reciprocal()
            core = radius - 0.125
            core = max(core, OWN_DISTANCE) if isinstance(core, float) else core.clamp_(min=OWN_DISTANCE)
            floor_weight = 1.0 - core * inv_r
        inside = (wx >= floor_weight).unsqueeze(1) & (wy >= floor_weight).unsqueeze(0)
        canvas.add_owner_depth(index, torch.where(inside, self.z, math.inf))

    def blend_front(self, canvas: _Canvas, limit: torch.Tensor) -> None:
        """Pass 2: accumulate the footprint cells where the point is within the depth limit."""
        src, out = canvas.source((self.width, self.width, *self.x.shape))
        index, weight, _ = self.footprint(canvas, out=out)
        weight.masked_fill_(self.z_test > limit.take(index), 0.0)
        canvas.add(index, weight, self.colors, src)


class _ZBufferBand:
    """One band of points for the two z-buffer passes: the bilinear points plus, when some
    points are magnified (tent radius > 1), :class:`_PointGroup` s of them."""

    def __init__(self, canvas: _Canvas, frames: slice, x, y, z, z_test, colors, keep, radius):
        """``colors``: ``[nb, h, w, 3]`` + optionally a depth plane like ``x``; ``keep``: float32
        0/1 like ``x``; ``radius``: None (1 everywhere), a float, or ``(indices, radii_of)`` for
        the only points whose radius exceeds 1 and whose footprint can reach the image (flat
        indices into the band; they are taken out of ``keep``; ``radii_of(indices)`` gives their
        radii)."""
        self.parts: List = []
        if isinstance(radius, float):
            w = math.ceil(2 * radius)
            rgb, *extra = colors
            planes = [rgb[..., k] for k in range(3)] + extra
            self.parts.append(_PointGroup(w, x, y, z, z_test, planes, frames, keep > 0, 1.0 / radius))
            return
        gathered = []
        if radius is not None:
            keep.view(-1)[radius[0]] = 0.0
            gathered = self._gather(frames, x, y, z, z_test, colors, *radius)
        self.parts.append(_BilinearPoints(canvas, frames, x, y, z, z_test, keep, colors))
        self.parts.extend(gathered)

    @staticmethod
    def _gather(frames, x, y, z, z_test, colors, sel, radii_of) -> List[_PointGroup]:
        """Groups of the magnified points ``sel`` (those that can reach the image, see
        :func:`_reaches_image`): one footprint width (the widest) for all of them, in pieces of
        bounded size; each point's tent still has its own radius (zero weight beyond it)."""
        radii = radii_of(sel)
        w = math.ceil(2 * float(radii.max()))
        groups = []
        rgb, *extra = colors
        for piece in torch.arange(sel.numel(), device=sel.device).split(max(1, _FOOTPRINT_ENTRIES // (w * w))):
            points = sel[piece]
            point_frames = torch.div(points, x[0].numel(), rounding_mode="floor") + frames.start
            picked = [rgb.reshape(-1, 3)[points, k] for k in range(3)] + [c.reshape(-1)[points] for c in extra]
            gx, gy, gz, gt = (t.reshape(-1)[points] for t in (x, y, z, z_test))
            groups.append(_PointGroup(w, gx, gy, gz, gt, picked, point_frames,
                                      inv_radius=radii[piece].reciprocal(), sel=points))
        return groups

    def nearest_depth(self, canvas: _Canvas) -> None:
        """Pass 1: the depth of the points at the cells they own."""
        for part in self.parts:
            part.nearest_depth(canvas)

    def blend_front(self, canvas: _Canvas, limit: torch.Tensor) -> None:
        """Pass 2: accumulate the contributions of points whose test depth is <= ``limit``."""
        for part in self.parts:
            part.blend_front(canvas, limit)


def _reaches_image(x: torch.Tensor, y: torch.Tensor, size: Tuple[int, int], max_radius: float) -> torch.Tensor:
    """Float32 0/1 like ``x``: points whose widest tent footprint (radius ``max_radius``) can
    touch the ``size = (height, width)`` image."""
    reach = math.ceil(2 * max_radius) + 1.0
    mask, inside = torch.empty_like(x), torch.empty_like(x)
    torch.gt(x, -reach, out=mask).mul_(torch.lt(x, size[1] + reach, out=inside))
    return mask.mul_(torch.gt(y, -reach, out=inside)).mul_(torch.lt(y, size[0] + reach, out=inside))


def _surface_points(z: torch.Tensor, inner: slice, near: float, flying_threshold: Optional[float],
                    tolerance: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Which points of a band to splat, and the depth they take the depth test with.

    ``z`` (target depth) is an ``[nb, h, W]`` grid: the band's rows ``inner`` plus at most one
    row of halo above and below (none at the image border). With ``step`` the largest ``|z|``
    difference of a point to one of its 4 neighbours, returns for the band's rows ``keep``
    (float32 0/1: ``z > near`` and, unless ``flying_threshold`` is None, not a flying pixel:
    ``step < (1 - exp(-flying_threshold)) * (z - near)``) and ``z_test = (z - step) / (1 + tolerance)``
    (to be compared with the nearest depth around it).

    The flying-pixel test is the log-depth jump of :func:`~trajcrafter_core.pointcloud.flying_pixel_mask`
    measured in the target camera, where the render needs it: exactly ``flying_threshold`` to a
    nearer neighbour, ``-log(2 - exp(threshold))`` (0.091 for 0.1) to a farther one. A kept point
    has no depth jump to any neighbour, so for the points that matter the step never spans two
    surfaces (it does span creases, e.g. where a wall meets the floor, which must stay closed too).
    """
    nb, h, W = z.shape
    o, r = inner.start, inner.stop - inner.start
    # vertical edge k lies between halo rows k and k + 1: band row j has edge j + o - 1 above
    # (rows from ``above`` on) and edge j + o below (rows before ``below``)
    above, below = max(0, 1 - o), min(r, h - 1 - o)
    z_in = z[:, inner]
    step = torch.empty_like(z_in)
    if W > 1:
        across = torch.sub(z_in[:, :, 1:], z_in[:, :, :-1]).abs_()  # edge k: columns k, k + 1
        step[:, :, 0] = across[:, :, 0]
        step[:, :, -1] = across[:, :, -1]
        torch.maximum(across[:, :, 1:], across[:, :, :-1], out=step[:, :, 1:-1])
    else:
        step.zero_()
    if h > 1:
        across = torch.sub(z[:, 1:], z[:, :-1]).abs_()
        torch.maximum(step[:, above:], across[:, above + o - 1 : r + o - 1], out=step[:, above:])
        torch.maximum(step[:, :below], across[:, o : o + below], out=step[:, :below])
    if flying_threshold is None:
        keep = torch.gt(z_in, near, out=torch.empty_like(z_in))  # 0/1
    else:  # c (z - near) > step >= 0 also says z > near
        c = -math.expm1(-flying_threshold)
        keep = torch.sub(z_in, step, alpha=1.0 / c).gt_(near)  # z - step / c > near
    z_test = torch.sub(z_in, step, out=step)
    return keep, z_test.div_(1.0 + tolerance) if tolerance else z_test


class _MagnificationBound:
    """Tells which bands cannot hold a point with ``depth * magnification > threshold * z``, so
    the per-point search for magnified points can skip them (on CPU; on CUDA the search is cheap).

    With ``z = depth * ray_z(u, v) + b_z`` (``ray_z`` linear in the pixel, so extreme at a band's
    corners) ``z / depth >= min ray_z + b_z / (max depth if b_z >= 0 else min depth)``."""

    def __init__(self, chain: "_ComposedCameraChain", magnification: torch.Tensor, width: int, threshold: float):
        self.rows = chain.M[:, 2].tolist()  # per frame [m20, m21, m22]
        self.bz = chain.b[:, 2].tolist()
        self.mag = magnification.reshape(-1).tolist()
        self.width, self.threshold = width, threshold

    def may_magnify(self, frames: slice, rows: slice, depth_range: Optional[Tuple[float, float]]) -> bool:
        """``depth_range``: min and max source depth of the band (frames ``frames`` of the chunk,
        rows ``rows``), or None (unknown: may magnify)."""
        if depth_range is None or (frames.stop - frames.start) != 1:
            return True
        j = frames.start
        m20, m21, m22 = self.rows[j]
        ray_min = m22 + min(0.0, m20 * (self.width - 1)) + min(m21 * rows.start, m21 * (rows.stop - 1))
        d_min, d_max = depth_range
        bz = self.bz[j]
        lower = ray_min + (bz / d_max if bz >= 0 else bz / d_min)
        return not (lower > 0 and self.mag[j] <= self.threshold * lower)


# --------------------------------------------------------------------------------------------
# Point-level entry point
# --------------------------------------------------------------------------------------------


def splat_points(
    x, y, z, colors, size: Tuple[int, int], mode: str = "official", *,
    keep=None, radius=None, depth_tolerance: float = 0.02, normalize: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Splat projected points into ``n`` images of ``size = (height, width)``.

    - ``x, y``: target pixel coordinates, ``z``: target depth, float32 ``[n, P]`` (or ``[n, h, w]``);
      ``colors`` ``[n, ..., 3]`` in 0..1.
    - ``official``: bilinear, official exp depth weights (max over each frame's points), no
      depth test; ``keep``/``radius`` unused.
    - ``zbuffer``: tent footprints of ``radius`` (``[n, ...]`` >= 1; default 1 = bilinear), hard
      depth test with relative ``depth_tolerance``; ``keep`` (bool ``[n, ...]``) selects points.
    - ``normalize=True``: returns ``(images [n, h, w, 3] in 0..1 with holes 0, hole_mask [n, h, w])``;
      ``False``: the accumulators ``(weighted colour sums [n, h, w, 3], weight sums [n, h, w])``.
    """
    if mode not in MODES:
        raise TrajCrafterError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    height, width = size
    n = z.shape[0]
    chans = [colors[..., k] for k in range(3)]
    frames = slice(0, n)
    if mode == "official":
        canvas = _Canvas(n, height, width, 2, z.device)
        log_max = _official_log_depth(z).reshape(n, -1).amax(dim=1).view(n, *([1] * (z.ndim - 1)))
        _splat_official(canvas, x, y, z, chans, log_max, frames)
    else:
        widest = 2 if radius is None else math.ceil(2 * float(radius.max()))
        canvas = _Canvas(n, height, width, widest + 1, z.device)
        keep = torch.ones_like(z) if keep is None else keep.to(z.dtype, copy=True)  # 0/1
        if radius is not None:
            radii = radius.reshape(-1).float()
            big = (radii > 1.0).float().mul_(keep.reshape(-1))
            big.mul_(_reaches_image(x, y, size, float(radii.max())).reshape(-1))
            sel = torch.nonzero(big).squeeze(1)
            radius = (sel, radii.__getitem__) if sel.numel() else None
        band = _ZBufferBand(canvas, frames, x, y, z, z, [colors], keep, radius)
        band.nearest_depth(canvas)
        band.blend_front(canvas, canvas.nearest_depth().mul_(1.0 + depth_tolerance))
    if normalize:
        return canvas.resolve(min_weight=ZBUFFER_MIN_WEIGHT if mode == "zbuffer" else 0.0)
    sums = canvas.crop(canvas.sums)
    return sums[:3].permute(1, 2, 3, 0), sums[-1]


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _bands(n: int, height: int, width: int, device) -> List[Tuple[slice, slice]]:
    """``(frames, rows)`` slices a chunk is processed in: the whole chunk on CUDA, bands of about
    ``_CPU_POINTS_PER_BAND`` points (within one frame) on CPU so the temporaries stay in cache."""
    if torch.device(device).type != "cpu":
        return [(slice(0, n), slice(0, height))]
    rows = max(1, min(height, _CPU_POINTS_PER_BAND // width))
    return [(slice(j, j + 1), slice(r, min(height, r + rows))) for j in range(n) for r in range(0, height, rows)]


def _halo(rows: slice, height: int, margin: int) -> slice:
    return slice(max(0, rows.start - margin), min(height, rows.stop + margin))


def _magnification(K_src: torch.Tensor, K_dst: torch.Tensor) -> torch.Tensor:
    """Per frame ``[n, 1, 1]``: how many target pixels one source pixel spans at equal depth."""
    ratio = torch.maximum(K_dst[:, 0, 0] / K_src[:, 0, 0], K_dst[:, 1, 1] / K_src[:, 1, 1])
    return ratio.view(-1, 1, 1)


class _RenderSettings:
    def __init__(self, mode, clean_holes, splat_radius, max_splat_radius, near, depth_tolerance,
                 drop_flying_pixels, flying_threshold, return_depth=False):
        self.mode, self.clean_holes, self.return_depth = mode, bool(clean_holes), bool(return_depth)
        self.channels = 4 if self.return_depth else 3  # RGB (+ target depth) per point
        self.splat_radius, self.max_splat_radius = splat_radius, float(max_splat_radius)
        self.near, self.depth_tolerance = float(near), float(depth_tolerance)
        self.drop_flying_pixels, self.flying_threshold = bool(drop_flying_pixels), float(flying_threshold)

    @property
    def padding(self) -> int:
        """Canvas padding for the widest z-buffer footprint (``ceil(2 R)`` cells, plus one)."""
        radius = self.max_splat_radius if self.splat_radius == "auto" else float(self.splat_radius)
        return math.ceil(2 * radius) + 1


def _check_band(rgb: torch.Tensor, depth: torch.Tensor, validate: bool, depth_range: bool = False):
    """The conventions' value checks (finite colours, finite depth > 0) on one band, cheap while
    the band is in cache: a sum (NaN/inf make it non-finite) and the depth's min and max screen
    the band, and the conventions' validators, which name the problem, run only on a suspicious
    band. Returns the band's ``(min, max)`` depth when ``depth_range`` (else None)."""
    if validate and not bool(torch.isfinite(rgb.sum())):
        check_finite(rgb, "frames")
    if not (validate or depth_range):
        return None
    d_min, d_max = torch.aminmax(depth)
    d_min, d_max = float(d_min), float(d_max)
    if validate and not (d_min > 0 and d_max < math.inf):  # NaN fails too
        as_depth(depth, "depths")
    return (d_min, d_max) if depth_range else None


def _render_chunk_official(rgb, depth, mask, Ks, Tr, Kd, out_size, device, s: _RenderSettings, validate,
                           buffers=None) -> _Canvas:
    n, H, W = depth.shape
    chain = _OfficialCameraChain(Ks, Tr, Kd)
    bands = _bands(n, H, W, device)
    projected = []
    z_max = torch.full((n,), -math.inf, device=device)
    for frames, rows in bands:  # the depth weights need each frame's largest depth first
        _check_band(rgb[frames, rows], depth[frames, rows], validate)
        x, y, z = chain.project(depth[frames, rows], frames, rows.start)
        z_max[frames] = torch.maximum(z_max[frames], z.amax(dim=(1, 2)))
        projected.append((x, y, z))
    log_max = _official_log_depth(z_max).view(n, 1, 1)
    canvas = _Canvas(n, out_size[0], out_size[1], 2, device, buffers, channels=s.channels)
    for (frames, rows), (x, y, z) in zip(bands, projected):
        colors = [rgb[frames, rows, :, k] for k in range(3)] + ([z] if s.return_depth else [])
        _splat_official(canvas, x, y, z, colors, log_max[frames], frames, None if mask is None else mask[frames, rows])
    return canvas


def _render_chunk_zbuffer(rgb, depth, mask, Ks, Kd, chain: _ComposedCameraChain, out_size, device,
                          s: _RenderSettings, validate, buffers=None) -> _Canvas:
    """``chain``: the chunk's camera chain (composed once for the clip)."""
    n, H, W = depth.shape
    magnification = _magnification(Ks, Kd)
    bound = _MagnificationBound(chain, magnification, W, 2.0 - 2.0 * AUTO_RADIUS_MARGIN)
    canvas = _Canvas(n, out_size[0], out_size[1], s.padding, device, buffers, channels=s.channels)
    work = []
    for frames, rows in _bands(n, H, W, device):
        # flying pixels and depth steps need neighbours: the band plus a 1-row halo
        halo = _halo(rows, H, 1)
        inner = slice(rows.start - halo.start, rows.stop - halo.start)
        # the depth range bounds the magnification (CPU: on CUDA the per-point search is cheap)
        depth_range = _check_band(rgb[frames, rows], depth[frames, rows], validate,
                                  depth_range=s.splat_radius == "auto" and depth.device.type == "cpu")
        x, y, z = chain.project(depth[frames, halo], frames, halo.start)
        keep, z_test = _surface_points(z, inner, s.near, s.flying_threshold if s.drop_flying_pixels else None,
                                       s.depth_tolerance)
        x, y, z = x[:, inner], y[:, inner], z[:, inner]
        if mask is not None:
            keep.mul_(mask[frames, rows])
        radius = None
        if s.splat_radius == "auto":
            # radius m / 2 + margin > 1 only where the magnification m > 2 - 2 margin: find
            # those points (if the band can have any) and size their footprints; all others
            # are plain bilinear
            if bound.may_magnify(frames, rows, depth_range):
                # depth * m > threshold * z, i.e. z < depth * m / threshold (few points: the
                # test is kept to two passes over the band, the rest runs on the candidates)
                d_band = depth[frames, rows]
                big = torch.lt(z, d_band * (magnification[frames] / bound.threshold), out=torch.empty_like(z))
                sel = torch.nonzero(big.mul_(keep).view(-1) > 0).squeeze(1)
                # only those whose widest footprint can reach the image (most magnified points
                # of a large move are off-image, e.g. near ones swinging out of view)
                if sel.numel():
                    gx, gy = x.reshape(-1)[sel], y.reshape(-1)[sel]
                    sel = sel[_reaches_image(gx, gy, out_size, s.max_splat_radius) > 0]
                if sel.numel():
                    def radii_of(points, d_band=d_band, m=magnification[frames].reshape(-1), z=z):
                        if m.numel() > 1:  # a band of several frames (CUDA): each point's own
                            m = m[torch.div(points, z[0].numel(), rounding_mode="floor")]
                        ratio = d_band.reshape(-1)[points].mul_(m) / z.reshape(-1)[points]
                        return ratio.mul_(0.5).add_(AUTO_RADIUS_MARGIN).clamp_(1.0, s.max_splat_radius)

                    radius = (sel, radii_of)
        elif float(s.splat_radius) != 1.0:
            radius = float(s.splat_radius)
        colors = [rgb[frames, rows]] + ([z] if s.return_depth else [])  # z: this band's own, not written after
        band = _ZBufferBand(canvas, frames, x, y, z, z_test, colors, keep, radius)
        band.nearest_depth(canvas)
        work.append(band)
    limit = canvas.nearest_depth()  # the test depths carry the tolerance
    for band in work:
        band.blend_front(canvas, limit)
    return canvas


def _render(frames, depths, point_mask, source_index, K_src, transforms, K_dst, out_size, chunk_size, progress,
            device, s: _RenderSettings, validate: bool):
    """Inputs with checked shapes → renders (+ depth). Output frame t uses source frame
    ``source_index[t]`` (or t). ``validate``: check the values (finite, depth > 0) on the way."""
    T = transforms.shape[0]
    H, W = frames.shape[1:3]
    Ho, Wo = out_size
    images = torch.empty(T, Ho, Wo, 3, device=frames.device)
    holes = torch.empty(T, Ho, Wo, device=frames.device)
    rendered_depth = torch.empty(T, Ho, Wo, device=frames.device) if s.return_depth else None
    if chunk_size is None:
        if device.type == "cuda":
            budget = _CUDA_POINTS_PER_CHUNK
        else:
            budget = _CPU_POINTS_PER_CHUNK if s.mode == "official" else _CPU_ZBUFFER_POINTS_PER_CHUNK
        chunk_size = max(1, budget // (H * W))
    buffers: dict = {}  # canvas accumulators, recycled from chunk to chunk
    # the z-buffer's camera chain, composed once for the clip (per chunk it costs ~0.3 ms)
    chain = _ComposedCameraChain(K_src, transforms, K_dst) if s.mode == "zbuffer" else None
    with torch.no_grad():
        for start in range(0, T, chunk_size):
            stop = min(T, start + chunk_size)
            if source_index is None:
                pick = slice(start, stop)
            else:
                idx = source_index[start:stop].to(frames.device)
                first = int(idx[0])
                contiguous = bool((idx == torch.arange(first, first + len(idx), device=idx.device)).all())
                pick = slice(first, first + len(idx)) if contiguous else idx
            # values are validated band by band (cheap while in cache; shapes were checked upfront)
            rgb, depth = frames[pick], depths[pick]
            if validate and rgb.dtype != torch.float32:
                rgb = as_frames(rgb, "frames")  # uint8 / float64 → float32 0..1
            if validate and depth.dtype != torch.float32:
                depth = as_depth(depth, "depths")
            rgb, depth = rgb.to(device), depth.to(device)
            mask = None if point_mask is None else point_mask[pick].to(device)
            Ks, Tr, Kd = (m[start:stop].to(device) for m in (K_src, transforms, K_dst))
            if s.mode == "official":
                canvas = _render_chunk_official(rgb, depth, mask, Ks, Tr, Kd, out_size, device, s, validate, buffers)
            else:
                canvas = _render_chunk_zbuffer(rgb, depth, mask, Ks, Kd, chain.frames(start, stop, device), out_size,
                                               device, s, validate, buffers)
            in_place = images.device == torch.device(device)
            min_weight = ZBUFFER_MIN_WEIGHT if s.mode == "zbuffer" else 0.0
            if in_place:
                out = canvas.resolve(images[start:stop], holes[start:stop], min_weight,
                                     None if rendered_depth is None else rendered_depth[start:stop], s.clean_holes)
            else:
                out = canvas.resolve(min_weight=min_weight, clean_holes=s.clean_holes)
            image, hole = out[:2]
            del canvas
            if not in_place:
                images[start:stop] = image
                holes[start:stop] = hole
                if rendered_depth is not None:
                    rendered_depth[start:stop] = out[2]
            if progress is not None:
                progress(stop, T)
    return (images, holes) if rendered_depth is None else (images, holes, rendered_depth)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _clip_inputs(frames, depths) -> Tuple[torch.Tensor, torch.Tensor]:
    """Frames ``[T, H, W, 3]`` and depths ``[T, H, W]`` as tensors with their shapes checked (the
    conventions validators run on the first frame now and on every chunk while rendering, which
    is much cheaper than full passes over a whole clip up front)."""
    if not isinstance(frames, torch.Tensor):
        frames = as_frames(frames, "frames")  # numpy etc.: convert once
    if frames.ndim == 3:
        frames = frames.unsqueeze(0)
    as_frames(frames[:1], "frames")
    if not isinstance(depths, torch.Tensor):
        depths = as_depth(depths, "depths")
    if depths.ndim == 2:
        depths = depths.unsqueeze(0)
    if depths.ndim == 4 and depths.shape[-1] == 1:
        depths = depths[..., 0]
    as_depth(depths[:1], "depths", like=frames[:1])
    if depths.shape[0] != frames.shape[0]:
        raise TrajCrafterError(
            f"depths has shape {list(depths.shape)} but the frames are {list(frames.shape[:3])} "
            f"[T, H, W]; depth needs one map per frame at the frames' size."
        )
    return frames, depths.to(frames.device)


def _as_transforms(transforms, count: int) -> torch.Tensor:
    """Validate source→target transforms as float32 ``[count, 4, 4]``."""
    transforms = _to_tensor(transforms, "transforms")
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
        h, w = (int(v) for v in size)
        ok = [h, w] == [float(v) for v in size]
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 2 or w < 2:
        raise TrajCrafterError(f"size must be (height, width) in pixels, both >= 2, got {size!r}.")
    return h, w


def _settings(mode, clean_holes, chunk_size, return_depth, *, splat_radius="auto", max_splat_radius=4.0,
              near=1e-3, depth_tolerance=0.02, drop_flying_pixels=True,
              flying_threshold=DEFAULT_FLYING_THRESHOLD, **unknown) -> _RenderSettings:
    """Validated render options (defaults: see :func:`render_views`)."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if unknown:
        raise TrajCrafterError(
            f"unknown render option(s) {', '.join(sorted(unknown))}; the z-buffer options are splat_radius, "
            f"max_splat_radius, near, depth_tolerance, drop_flying_pixels and flying_threshold."
        )
    if mode not in MODES:
        raise TrajCrafterError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise TrajCrafterError(f"chunk_size must be a positive number of frames (or None), got {chunk_size!r}.")
    if not (number(max_splat_radius) and 1.0 <= max_splat_radius <= 16.0):
        raise TrajCrafterError(f"max_splat_radius must be in [1, 16] pixels, got {max_splat_radius!r}.")
    if splat_radius != "auto" and not (number(splat_radius) and 1.0 <= splat_radius <= 16.0):
        raise TrajCrafterError(f"splat_radius must be 'auto' or a number of pixels in [1, 16], got {splat_radius!r}.")
    if not (number(near) and near >= 0):
        raise TrajCrafterError(f"near must be a distance >= 0, got {near!r}.")
    if not (number(depth_tolerance) and 0.0 <= depth_tolerance < 1.0):
        raise TrajCrafterError(f"depth_tolerance must be a relative depth in [0, 1), got {depth_tolerance!r}.")
    if not (number(flying_threshold) and flying_threshold > 0):
        raise TrajCrafterError(f"flying_threshold must be > 0, got {flying_threshold!r}.")
    return _RenderSettings(mode, clean_holes, splat_radius, max_splat_radius, near, depth_tolerance,
                           drop_flying_pixels, flying_threshold, return_depth)


def _as_point_mask(point_mask, shape: Tuple[int, int, int], device) -> Optional[torch.Tensor]:
    """``point_mask`` as bool ``[T, H, W]`` on ``device`` (None stays None)."""
    if point_mask is None:
        return None
    point_mask = _to_tensor(point_mask, "point_mask")
    if tuple(point_mask.shape) != tuple(shape):
        raise TrajCrafterError(
            f"point_mask must have one value per source pixel, shape {list(shape)} [T, H, W], "
            f"got {list(point_mask.shape)}."
        )
    return point_mask.to(device=device, dtype=torch.bool)


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
    return_depth: bool = False,
    point_mask=None,
    splat_radius: Union[str, float] = "auto",
    max_splat_radius: float = 4.0,
    near: float = 1e-3,
    depth_tolerance: float = 0.02,
    drop_flying_pixels: bool = True,
    flying_threshold: float = DEFAULT_FLYING_THRESHOLD,
):
    """Render frame ``t`` of ``frames``/``depths`` from camera ``transforms[t]``.

    - ``frames`` float32 ``[T, H, W, 3]`` in 0..1 (or uint8); ``depths`` ``[T, H, W]``, finite, > 0.
    - ``K_src`` ``[3, 3]`` or ``[T, 3, 3]``: intrinsics of the source frames (pixels at H x W).
    - ``transforms`` ``[T, 4, 4]``: source camera → target camera (``X_dst = T @ X_src``, OpenCV
      axes); for the official pipeline ``pose_t @ inv(pose_s)``.
    - ``K_dst`` ``[3, 3]`` or ``[T, 3, 3]`` in pixels at the render size; default ``K_src``
      (rescaled to ``size`` when that differs from the source size).
    - ``mode``: ``"official"`` (the official splat, default) or ``"zbuffer"``; see the module doc.
    - ``clean_holes``: the official ``--mask`` cleanup (5x5 dilation of the holes).
    - ``size``: ``(height, width)`` of the render, default the source size.
    - ``chunk_size``: frames per batch (bounds memory); default from a point budget per device.
    - ``progress``: called as ``progress(frames_done, total)`` after each chunk.
    - ``device``: where to compute; default the device of ``frames``. Results are returned on
      the device of ``frames``.
    - ``return_depth``: also return the rendered target-camera depth (the splat-weighted
      average of the points' target depth, as the official code splats ``trans_depth``).
    - ``point_mask``: bool ``[T, H, W]``, source pixels to render (False: no point; pixels that
      only such points reach are holes). ``official`` mode: the official ``mask1`` (weight 0;
      the per-frame depth normalisation still sees every point, so give masked pixels a depth
      that does not raise it); ``zbuffer``: the points are dropped before the depth test.
    - zbuffer only: ``splat_radius`` (``"auto"``: grows with magnification, or a fixed tent
      radius in pixels, 1 = bilinear), ``max_splat_radius``, ``near`` (cull points with target
      depth <= near), ``depth_tolerance`` (relative depth band that blends with the nearest
      point), ``drop_flying_pixels`` and ``flying_threshold`` (log-depth jump marking a depth edge).

    Returns ``images`` float32 ``[T, h, w, 3]`` in 0..1 (holes 0) and ``hole_mask`` float32
    ``[T, h, w]`` (1 = hole); with ``return_depth`` also ``depth`` float32 ``[T, h, w]`` (0 at holes).
    """
    s = _settings(mode, clean_holes, chunk_size, return_depth, splat_radius=splat_radius,
                  max_splat_radius=max_splat_radius, near=near, depth_tolerance=depth_tolerance,
                  drop_flying_pixels=drop_flying_pixels, flying_threshold=flying_threshold)
    frames, depths = _clip_inputs(frames, depths)
    T, H, W = depths.shape
    out_size = _as_size(size, (H, W))
    transforms = _as_transforms(transforms, T)
    K_src = as_intrinsics(K_src, "K_src", count=T)
    if K_dst is None:
        K_dst = K_src if out_size == (H, W) else rescale_intrinsics(K_src, (H, W), out_size)
    K_dst = as_intrinsics(K_dst, "K_dst", count=T)
    mask = _as_point_mask(point_mask, (T, H, W), frames.device)
    compute_device = torch.device(device) if device is not None else frames.device
    return _render(frames, depths, mask, None, K_src, transforms, K_dst, out_size, chunk_size, progress,
                   compute_device, s, validate=True)


def render_trajectory(
    point_cloud: PointCloud,
    trajectory,
    mode: str = "official",
    clean_holes: bool = False,
    *,
    size: Optional[Tuple[int, int]] = None,
    chunk_size: Optional[int] = None,
    progress: Optional[ProgressFn] = None,
    device: Optional[Union[str, torch.device]] = None,
    return_depth: bool = False,
    **zbuffer_options,
):
    """Render every output frame of a :class:`~trajcrafter_core.camera.Trajectory`.

    Output frame ``i`` lifts source frame ``trajectory.source_index[i]`` of ``point_cloud`` with
    ``trajectory.K_src[i]`` (rescaled from the trajectory's size to the cloud's size when they
    differ) and renders it with ``trajectory.transforms[i]`` / ``trajectory.K_dst[i]``; build the
    trajectory with the point cloud's intrinsics. The render size is ``size`` if given (``K_dst``
    rescaled to it), else the trajectory's size. Source frames are gathered chunk by chunk, so a
    schedule that repeats one frame (bullet time) costs no extra memory. The other options,
    ``zbuffer_options`` included (``splat_radius``, ``near``, ...), and the results are those of
    :func:`render_views`.
    """
    if not isinstance(point_cloud, PointCloud):
        raise TrajCrafterError(f"point_cloud must be a PointCloud, got {type(point_cloud).__name__}.")
    for attr in ("source_index", "transforms", "K_src", "K_dst", "height", "width"):
        if not hasattr(trajectory, attr):
            raise TrajCrafterError(f"trajectory must be a Trajectory (missing {attr!r}), got {type(trajectory).__name__}.")
    s = _settings(mode, clean_holes, chunk_size, return_depth, **zbuffer_options)
    source_index = torch.as_tensor(trajectory.source_index).long().reshape(-1)
    n = source_index.shape[0]
    if n == 0 or int(source_index.min()) < 0 or int(source_index.max()) >= point_cloud.num_frames:
        span = f"[{int(source_index.min())}, {int(source_index.max())}]" if n else "nothing"
        raise TrajCrafterError(
            f"trajectory.source_index must pick frames in [0, {point_cloud.num_frames}) of the point cloud, "
            f"got {span}. Build the trajectory for this clip's frame count."
        )
    traj_size = _as_size((trajectory.height, trajectory.width), (0, 0))
    out_size = _as_size(size, traj_size)
    transforms = _as_transforms(trajectory.transforms, n)
    K_src = as_intrinsics(trajectory.K_src, "trajectory.K_src", count=n)
    K_dst = as_intrinsics(trajectory.K_dst, "trajectory.K_dst", count=n)
    if traj_size != point_cloud.size:
        K_src = rescale_intrinsics(K_src, traj_size, point_cloud.size)
    if out_size != traj_size:
        K_dst = rescale_intrinsics(K_dst, traj_size, out_size)
    compute_device = torch.device(device) if device is not None else point_cloud.device
    return _render(point_cloud.frames, point_cloud.depths, None, source_index, K_src, transforms, K_dst, out_size,
                   chunk_size, progress, compute_device, s,
                   validate=False)  # a PointCloud is validated when built
