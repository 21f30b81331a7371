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
    while slanted surfaces stay closed and blend smoothly. Points with target depth <= ``near`` are culled, flying pixels
    at depth edges are dropped (:func:`~trajcrafter_core.pointcloud.flying_pixel_mask`), pixels
    reached only by the faint tail of a footprint are holes, and with ``splat_radius="auto"``
    each point's footprint grows with its magnification (focal ratio x source depth / target
    depth) so zoom-ins and forward moves leave no pinholes.

Both return images in 0..1 with holes = 0 and a hole mask (1 = hole). ``clean_holes`` is the
official ``--mask`` option: holes are dilated by a 5x5 square and the newly masked pixels zeroed.

Memory and speed: frames are processed in chunks (default about 2 M points on CPU, 16 M on
CUDA) with per-point temporaries only, so peak memory is inputs + outputs + a fixed amount
whatever the clip length. On CPU each chunk is further cut into bands of about 128 K points
that stay in cache while a few dozen elementwise operations run over them. All corners of all
points accumulate with flat ``scatter_add_`` calls into one padded canvas per chunk; points
outside the image are clamped into the padding (cropped away) instead of being filtered out.
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
_CUDA_POINTS_PER_CHUNK = 1 << 24
_CPU_POINTS_PER_BAND = 1 << 17
#: Where points that must reach no pixel are moved (clamped into the canvas padding).
_FAR_AWAY = -1.0e9

ProgressFn = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------
# Small public helpers
# --------------------------------------------------------------------------------------------


def _window_reduce(x: torch.Tensor, width: int, left: int, reduce) -> torch.Tensor:
    """``reduce`` (``torch.maximum``/``torch.minimum``) over ``width x width`` windows of the last
    two dims: output ``[i, j]`` covers rows ``i - left .. i - left + width - 1`` (same for
    columns); cells outside the array are ignored. Separable shifts: much faster on CPU than
    ``max_pool2d`` with stride 1."""
    for dim in (-1, -2):
        out = x.clone()
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


def dilate_holes(hole_mask: torch.Tensor, kernel: int = CLEAN_HOLES_KERNEL) -> torch.Tensor:
    """Grow the holes (1 = hole) of ``[T, H, W]`` masks by a ``kernel x kernel`` square.

    Same as the official ``clean_points`` (``cv2.dilate`` with a ones kernel; pixels outside the
    image do not count as holes).
    """
    return _window_reduce(hole_mask, kernel, kernel // 2, torch.maximum)


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

    def project(self, depth: torch.Tensor, frames: slice, row0: int, out=None):
        """``x, y, z`` ``[nb, hb, W]`` (written into ``out`` tensors when given)."""
        nb, hb, W = depth.shape
        u, v = _pixel_axes(W, row0, hb, depth.device)
        M, b = self.M[frames], self.b[frames]
        p = []
        for i in range(3):
            ray = M[:, i, 0].view(nb, 1, 1) * u + M[:, i, 1].view(nb, 1, 1) * v + M[:, i, 2].view(nb, 1, 1)
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
        # Flat indices are formed in float (exact below 2**24 per frame), then made integers.
        self.index_dtype = torch.float32 if self.plane < (1 << 24) else torch.float64
        self.row_len = torch.tensor(float(self.row), dtype=self.index_dtype, device=device)
        # ``buffers`` (a dict kept by the caller across the chunks of one render) recycles the
        # accumulators: refilling them is much cheaper than page-faulting in fresh ones.
        self._buffers = {} if buffers is None else buffers
        self.sums = self._buffer("sums", (channels + 1, n * self.plane), 0.0, device)  # weight last
        self.zmin = None  # z-buffer: nearest depth of the points owning each cell

    def _buffer(self, name: str, shape, fill: Optional[float], device) -> torch.Tensor:
        """A recycled float32 buffer of ``shape``, filled with ``fill`` (None: left as it is)."""
        numel = math.prod(shape)
        held = self._buffers.get(name)
        if held is None or held.numel() < numel or held.device != torch.device(device):
            held = self._buffers[name] = torch.empty(numel, device=device)
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
        foreground edges sharp: a background point beside a foreground one does not blend into it."""
        out = self._buffer("limit", (self.n, self.height + 2 * self.pad, self.row), None, self.sums.device)
        if self.zmin is None:
            return out.fill_(math.inf).view(-1)
        for ring in (out[:, 0], out[:, -1], out[:, :, 0], out[:, :, -1]):
            ring.fill_(math.inf)
        z = torch.minimum(self.zmin[0], self.zmin[1], out=self.zmin[0]).view(self.n, self.height + 2 * self.pad, self.row)
        across = self._buffer("across", (self.n, self.height + 2 * self.pad, self.row - 2), None, self.sums.device)
        torch.minimum(z[:, :, :-2], z[:, :, 1:-1], out=across)
        torch.minimum(across, z[:, :, 2:], out=across)
        inner = out[:, 1:-1, 1:-1]
        torch.minimum(across[:, :-2], across[:, 1:-1], out=inner)
        torch.minimum(inner, across[:, 2:], out=inner)
        return out.view(-1)

    def cell_index(self, col: torch.Tensor, row: torch.Tensor, frames, offset: int = 0) -> torch.Tensor:
        """Flat indices (same shape) of canvas cells ``(col + offset, row + offset)``: ``col``,
        ``row`` integral floats ``[nb, ...]`` of chunk frames ``frames`` (a slice, or a per-point
        frame index tensor for gathered points)."""
        flat = torch.addcmul(col.to(self.index_dtype), row.to(self.index_dtype), self.row_len).long()
        if isinstance(frames, slice):
            nb = flat.shape[0]
            flat += (frames.start or 0) * self.plane + offset * (self.row + 1)
            if nb > 1:
                flat += (torch.arange(nb, device=flat.device) * self.plane).view(nb, *([1] * (flat.ndim - 1)))
        else:
            flat += frames * self.plane + offset * (self.row + 1)
        return flat

    def source(self, shape) -> Tuple[torch.Tensor, torch.Tensor]:
        """A source buffer for :meth:`add`, ``[channels + 1, numel]``, and its last row (the
        weights) viewed as ``shape``: a footprint writes its weights there, no copy needed."""
        src = torch.empty(self.channels + 1, math.prod(shape), device=self.sums.device)
        return src, src[-1].view(shape)

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
                min_weight: float = 0.0, depth: Optional[torch.Tensor] = None):
        """Average colours ``[n, H, W, 3]`` (0..1, holes 0) and hole mask ``[n, H, W]``, written
        into ``images`` / ``holes`` when given (same device), else returned as new tensors; with
        a depth channel also the average depth ``[n, H, W]`` (0 at holes; into ``depth``).
        A pixel is a hole when its weight sum is 0 (or below ``min_weight``)."""
        sums = self.crop(self.sums)
        weight = sums[-1]
        shape = (self.n, self.height, self.width)
        if images is None:
            images = torch.empty(*shape, 3, device=weight.device)
            holes = torch.empty(shape, device=weight.device)
        uncovered = (weight >= min_weight if min_weight > 0 else weight > 0).logical_not_()  # NaN: a hole
        scale = weight.reciprocal().masked_fill_(uncovered, 0.0)
        torch.mul(sums[:3], scale, out=images.permute(3, 0, 1, 2))  # written channel-last directly
        images.clamp_(0.0, 1.0)
        holes.copy_(uncovered)
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
    shift = torch.tensor([[0, canvas.row], [1, canvas.row + 1]], device=base.device)
    canvas.add(base + shift.view(2, 2, *([1] * base.ndim)), weight, colors, src)


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


#: Footprint entries (points x cells) processed at once for magnified points.
_FOOTPRINT_ENTRIES = 1 << 22


class _PointGroup:
    """Points of a band splatted with one footprint width (cells per axis): either all points of
    the band (``members`` marks those to splat, the others are moved away) or gathered ones."""

    def __init__(self, width: int, x, y, z, frames, members=None, inv_radius=None, sel=None):
        self.width, self.x, self.y, self.z, self.frames = width, x, y, z, frames
        self.members, self.inv_radius, self.sel = members, inv_radius, sel
        self._anchor = self._own = None

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

    def footprint(self, canvas: _Canvas, keep=None, out=None):
        """Flat index and tent weight of every footprint cell, ``[width, width, ...points]``
        (weights of points not in ``keep`` zeroed; written into ``out`` when given)."""
        w = self.width
        base, fx, fy = self.anchor(canvas)
        wx, wy = _tent_weights(fx, w, self.inv_radius), _tent_weights(fy, w, self.inv_radius)
        if keep is not None:
            wy = torch.where(keep, wy, 0.0)
        first = _footprint_offsets(w)[0]
        o = torch.arange(first, first + w, device=base.device)
        cells = (o.view(-1, 1) + o.view(1, -1) * canvas.row).view(w, w, *([1] * base.ndim))
        return base + cells, torch.mul(wx.unsqueeze(1), wy.unsqueeze(0), out=out), (wx, wy)

    def owned_cells(self, canvas: _Canvas):
        """Cells whose depth test this group's points decide, and the point depth for each (inf
        for the other footprint cells): the cell a point falls in (nearest pixel: a point on a
        pixel centre, give or take float noise, owns that pixel), or for a magnified point (tent
        radius R > 1) the cells within ``R - 1/8`` of it (half the spacing of its neighbours), so
        its surface stays closed. A point does not decide the depth of cells it only grazes with
        the tail of its footprint (see :meth:`_Canvas.nearest_depth` for the neighbourhood)."""
        if self.width == 2 and self.inv_radius is None:
            if self._own is None:
                base, fx, fy = self.anchor(canvas)
                self._own = base + (fx >= 0.5) + (fy >= 0.5) * canvas.row
            return self._own, self.z
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
        return index, torch.where(inside, self.z, math.inf)


class _ZBufferBand:
    """One band of points for the two z-buffer passes: positions, depth, depth for the test
    (``z_test``), colours, which points to splat (``keep``) and their tent radii, split into
    :class:`_PointGroup` s."""

    def __init__(self, frames: slice, x, y, z, z_test, colors, keep, radius, size):
        self.frames, self.z_test, self.colors = frames, z_test, colors
        self.groups = self._group(x, y, z, keep, radius, size)

    def _group(self, x, y, z, keep, radius, size) -> List[_PointGroup]:
        """Most points use a plain bilinear 2x2 footprint; magnified ones are gathered per width.

        ``radius``: None (1 everywhere), a float, a per-point tensor, or ``(indices, radii)`` of
        the only points whose radius exceeds 1 (flat indices into the band).
        """
        if radius is None:
            return [_PointGroup(2, x, y, z, self.frames, keep)]
        if isinstance(radius, float):
            w = math.ceil(2 * radius)
            return [_PointGroup(w, x, y, z, self.frames, keep, None if w == 2 else 1.0 / radius)]
        if isinstance(radius, tuple):
            sel, radii = radius
        else:
            big = keep & (radius > 1.0)
            sel = torch.nonzero(big.reshape(-1)).squeeze(1)
            radii = radius.reshape(-1)[sel]
        if sel.numel() == 0:
            return [_PointGroup(2, x, y, z, self.frames, keep)]
        members = keep.clone()
        members.view(-1)[sel] = False
        groups = [_PointGroup(2, x, y, z, self.frames, members)]
        # one footprint width (the widest) for all magnified points of the band: fewer, larger
        # operations; each point's tent still has its own radius (zero weight beyond it)
        w = math.ceil(2 * float(radii.max()))
        gx, gy, gz = (t.reshape(-1)[sel] for t in (x, y, z))
        height, width = size
        visible = torch.nonzero((gx > -w - 1) & (gx < width + w) & (gy > -w - 1) & (gy < height + w)).squeeze(1)
        for piece in visible.split(max(1, _FOOTPRINT_ENTRIES // (w * w))):
            points = sel[piece]
            frames = torch.div(points, x[0].numel(), rounding_mode="floor") + self.frames.start
            groups.append(_PointGroup(w, gx[piece], gy[piece], gz[piece], frames,
                                      inv_radius=radii[piece].reciprocal(), sel=points))
        return groups

    def nearest_depth(self, canvas: _Canvas) -> None:
        """Pass 1: the depth of the points at the cells they own (see :meth:`_PointGroup.owned_cells`)."""
        for group in self.groups:
            canvas.add_owner_depth(*group.owned_cells(canvas))

    def blend_front(self, canvas: _Canvas, limit: torch.Tensor) -> None:
        """Pass 2: accumulate the contributions of points whose depth is <= ``limit``: tested at
        the cell a plain bilinear point falls in, at every footprint cell of a magnified one."""
        for group in self.groups:
            if group.sel is None:
                z_test, colors = self.z_test, self.colors
            else:
                z_test = self.z_test.reshape(-1)[group.sel]
                colors = [c.reshape(-1)[group.sel] for c in self.colors]
            src, out = canvas.source((group.width, group.width, *group.x.shape))
            if group.width == 2 and group.inv_radius is None:
                own, _ = group.owned_cells(canvas)
                index, weight, _ = group.footprint(canvas, keep=z_test <= limit.take(own), out=out)
            else:
                index, weight, _ = group.footprint(canvas, out=out)
                weight.masked_fill_(z_test > limit.take(index), 0.0)
            canvas.add(index, weight, colors, src)


def _surface_points(depth: torch.Tensor, z: torch.Tensor, inner: slice, near: float,
                    flying_threshold: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Which points of a band to splat, and the depth they take the depth test with.

    ``depth`` (source depth) and ``z`` (target depth) are ``[nb, h, W]`` grids: the band's rows
    ``inner`` plus at most one row of halo above and below (none at the image border). For the
    band's rows returns ``keep`` (bool: ``z > near`` and, unless ``flying_threshold`` is None,
    not a flying pixel: no log-depth jump above the threshold to any of the 4 neighbours, as
    :func:`~trajcrafter_core.pointcloud.flying_pixel_mask`) and ``z_test = z - step``, ``step``
    being the largest ``|z|`` difference to one of its 4 neighbours. A kept point has no depth
    jump to any neighbour, so for the points that matter the step never spans two surfaces
    (it does span creases, e.g. where a wall meets the floor, which must stay closed too).
    """
    nb, h, W = z.shape
    o, r = inner.start, inner.stop - inner.start
    # vertical edge k lies between halo rows k and k + 1: band row j has edge j + o - 1 above
    # (rows from ``above`` on) and edge j + o below (rows before ``below``)
    above, below = max(0, 1 - o), min(r, h - 1 - o)
    z_in = z[:, inner]
    keep = z_in > near
    if flying_threshold is not None:
        log_d = torch.log(depth)
        if W > 1:
            log_in = log_d[:, inner]
            smooth = torch.sub(log_in[:, :, 1:], log_in[:, :, :-1]).abs_() <= flying_threshold
            keep[:, :, 1:] &= smooth
            keep[:, :, :-1] &= smooth
        if h > 1:
            smooth = torch.sub(log_d[:, 1:], log_d[:, :-1]).abs_() <= flying_threshold
            keep[:, above:] &= smooth[:, above + o - 1 : r + o - 1]
            keep[:, :below] &= smooth[:, o : o + below]
    step = torch.zeros_like(z_in)
    if W > 1:
        across = torch.sub(z_in[:, :, 1:], z_in[:, :, :-1]).abs_()  # edge k: columns k, k + 1
        step[:, :, 1:] = across
        torch.maximum(step[:, :, :-1], across, out=step[:, :, :-1])
    if h > 1:
        across = torch.sub(z[:, 1:], z[:, :-1]).abs_()
        torch.maximum(step[:, above:], across[:, above + o - 1 : r + o - 1], out=step[:, above:])
        torch.maximum(step[:, :below], across[:, o : o + below], out=step[:, :below])
    return keep, torch.sub(z_in, step, out=step)


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

    def may_magnify(self, frames: slice, rows: slice, depth: torch.Tensor) -> bool:
        """``depth``: the band's source depth ``[nb, h, W]`` (frames ``frames`` of the chunk)."""
        if depth.device.type != "cpu" or (frames.stop - frames.start) != 1:
            return True
        j = frames.start
        m20, m21, m22 = self.rows[j]
        ray_min = m22 + min(0.0, m20 * (self.width - 1)) + min(m21 * rows.start, m21 * (rows.stop - 1))
        d_min, d_max = (float(v) for v in torch.aminmax(depth))
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
        keep = torch.ones_like(z, dtype=torch.bool) if keep is None else keep
        band = _ZBufferBand(frames, x, y, z, z, chans, keep, radius, size)
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


def _check_band(rgb: torch.Tensor, depth: torch.Tensor, validate: bool) -> None:
    """The conventions' value checks (finite colours, finite depth > 0) on one band, cheap while
    the band is in cache: a sum (NaN/inf make it non-finite) and a min screen the band, and the
    conventions' validators, which name the problem, run only on a suspicious band."""
    if not validate:
        return
    if not bool(torch.isfinite(rgb.sum())):
        check_finite(rgb, "frames")
    if not (bool(depth.amin() > 0) and bool(torch.isfinite(depth.sum()))):
        as_depth(depth, "depths")


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


def _render_chunk_zbuffer(rgb, depth, mask, Ks, Tr, Kd, out_size, device, s: _RenderSettings, validate,
                          buffers=None) -> _Canvas:
    n, H, W = depth.shape
    chain = _ComposedCameraChain(Ks, Tr, Kd)
    x, y, z = (torch.empty_like(depth) for _ in range(3))
    bands = _bands(n, H, W, device)
    magnification = _magnification(Ks, Kd)
    bound = _MagnificationBound(chain, magnification, W, 2.0 - 2.0 * AUTO_RADIUS_MARGIN)
    canvas = _Canvas(n, out_size[0], out_size[1], s.padding, device, buffers, channels=s.channels)
    work = []
    for frames, rows in bands:
        # flying pixels and depth steps need neighbours: the band plus a 1-row halo (projected
        # with the band while it is in cache; a halo row is projected twice, identically)
        halo = _halo(rows, H, 1)
        inner = slice(rows.start - halo.start, rows.stop - halo.start)
        _check_band(rgb[frames, rows], depth[frames, rows], validate)
        chain.project(depth[frames, halo], frames, halo.start, out=(x[frames, halo], y[frames, halo], z[frames, halo]))
        keep, z_test = _surface_points(depth[frames, halo], z[frames, halo], inner, s.near,
                                       s.flying_threshold if s.drop_flying_pixels else None)
        if mask is not None:
            keep &= mask[frames, rows]
        radius = None
        if s.splat_radius == "auto":
            # radius m / 2 + margin > 1 only where the magnification m > 2 - 2 margin: find
            # those points (if the band can have any) and size their footprints; all others
            # are plain bilinear
            if bound.may_magnify(frames, rows, depth[frames, rows]):
                d_scaled = depth[frames, rows] * magnification[frames]
                big = torch.gt(d_scaled, z[frames, rows] * bound.threshold).logical_and_(keep)
                sel = torch.nonzero(big.reshape(-1)).squeeze(1)
                m = d_scaled.reshape(-1)[sel] / z[frames, rows].reshape(-1)[sel]
                radius = (sel, m.mul_(0.5).add_(AUTO_RADIUS_MARGIN).clamp_(1.0, s.max_splat_radius))
        elif float(s.splat_radius) != 1.0:
            radius = float(s.splat_radius)
        colors = [rgb[frames, rows, :, k] for k in range(3)] + ([z[frames, rows]] if s.return_depth else [])
        band = _ZBufferBand(frames, x[frames, rows], y[frames, rows], z[frames, rows], z_test, colors, keep, radius, out_size)
        band.nearest_depth(canvas)
        work.append(band)
    limit = canvas.nearest_depth().mul_(1.0 + s.depth_tolerance)
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
        budget = _CUDA_POINTS_PER_CHUNK if device.type == "cuda" else _CPU_POINTS_PER_CHUNK
        chunk_size = max(1, budget // (H * W))
    buffers: dict = {}  # canvas accumulators, recycled from chunk to chunk
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
            chunk = _render_chunk_official if s.mode == "official" else _render_chunk_zbuffer
            canvas = chunk(rgb, depth, mask, Ks, Tr, Kd, out_size, device, s, validate, buffers)
            in_place = images.device == torch.device(device)
            min_weight = ZBUFFER_MIN_WEIGHT if s.mode == "zbuffer" else 0.0
            if in_place:
                out = canvas.resolve(images[start:stop], holes[start:stop], min_weight,
                                     None if rendered_depth is None else rendered_depth[start:stop])
            else:
                out = canvas.resolve(min_weight=min_weight)
            image, hole = out[:2]
            del canvas
            if s.clean_holes:
                grown = dilate_holes(hole)
                image.mul_((1.0 - grown).unsqueeze(-1))
                if rendered_depth is not None:
                    out[2].mul_(1.0 - grown)
                hole.copy_(grown)
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
