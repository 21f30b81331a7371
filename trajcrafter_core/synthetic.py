"""Procedural dynamic 3D scenes rendered analytically: exact RGB + z-depth from any camera.

Ground truth for tests, demos, benchmarks and training smoke runs. A scene is a closed room
(textured ground, ceiling/"sky", four walls) with spheres and axis-aligned boxes that translate
linearly over time. Every pixel casts one ray through its centre and the nearest surface is
found in closed form (ray–plane, ray–sphere, ray–slab), batched over pixels and frames in pure
torch, on CPU or CUDA. Because the room is closed, every ray from a camera inside it hits
something at a finite distance: depth is finite and > 0 everywhere.

Conventions (:mod:`.conventions`):

- **World axes** follow OpenCV like the cameras: x right, y *down*, z forward. The identity
  camera sits at the origin looking along +z; the ground is the plane ``y = ground_y`` (> 0,
  below the camera), the ceiling ``y = room_min[1]`` (< 0).
- **Pose** ``w2c``: ``[4, 4]`` world-to-camera, ``X_cam = w2c @ X_world`` (rigid). Camera
  centres must lie inside the room and outside the objects (a ray starting inside an object
  does not see it).
- **K** in pixels at the rendered size; pixel ``(u, v)`` has its centre at integer coordinates.
- **Depth** is z-depth (distance along the optical axis), not ray length.
- **Colour** is unlit albedo from procedural textures fixed to the surfaces (and carried by the
  moving objects), so a surface point has the same colour from every view: exact ground truth
  for reprojection. Textures mix smooth checkers and stripes (tanh-softened, periods of a few
  pixels at the default sizes) with colour gradients, so PSNR comparisons are meaningful.
- **Time** ``t``: object centre ``= centre + velocity · t`` (clips use ``t`` in ``0..1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .conventions import as_intrinsics, check_finite
from .errors import TrajCrafterError
from .progress import ProgressFn

__all__ = [
    "Sphere",
    "Box",
    "SyntheticScene",
    "example_clip",
    "render_target_views",
    "SURFACE_NAMES",
]

#: Surface ids returned by ``render(..., return_ids=True)``: the room's six planes, then the
#: spheres (``6 + i``), then the boxes (``6 + num_spheres + j``).
SURFACE_NAMES = ("ground", "ceiling", "left wall", "right wall", "front wall", "back wall")
_GROUND, _CEILING, _LEFT, _RIGHT, _FRONT, _BACK = range(6)
_EPS = 1e-6
_RAYS_PER_CHUNK = 1 << 20

Vec3 = Tuple[float, float, float]


@dataclass
class Texture:
    """Two colours mixed by a smooth checker and stripes of ``period`` world units.

    ``pattern = checker_weight · checker + (1 - checker_weight) · stripes`` (both 0..1, edges
    softened by ``tanh(sharpness · ...)``); colour ``= mix(colour_a, colour_b, pattern)`` times a
    gentle gradient ``1 + gradient · sin(...)`` across the surface.
    """

    colour_a: Vec3 = (0.8, 0.7, 0.5)
    colour_b: Vec3 = (0.2, 0.3, 0.5)
    period: float = 0.8
    angle: float = 0.0
    phase: float = 0.0
    checker_weight: float = 0.7
    sharpness: float = 3.0
    gradient: float = 0.15


@dataclass
class Sphere:
    """A sphere; ``centre`` at ``t = 0`` moves by ``velocity`` per unit time."""

    centre: Vec3
    radius: float
    velocity: Vec3 = (0.0, 0.0, 0.0)
    texture: Texture = field(default_factory=Texture)


@dataclass
class Box:
    """An axis-aligned box of ``half_size`` around ``centre`` (at ``t = 0``), moving by ``velocity``."""

    centre: Vec3
    half_size: Vec3
    velocity: Vec3 = (0.0, 0.0, 0.0)
    texture: Texture = field(default_factory=Texture)


def _random_texture(rng: np.random.Generator, period: Tuple[float, float]) -> Texture:
    hue = rng.uniform(0, 1)
    def colour(h, s, v):
        rgb = np.clip(np.abs(((h * 6.0 + np.array([0.0, 4.0, 2.0])) % 6.0) - 3.0) - 1.0, 0.0, 1.0)
        return tuple(float(x) for x in v * (1.0 - s + s * rgb))
    return Texture(
        colour_a=colour(hue, rng.uniform(0.3, 0.7), rng.uniform(0.65, 0.9)),
        colour_b=colour((hue + rng.uniform(0.3, 0.7)) % 1.0, rng.uniform(0.3, 0.8), rng.uniform(0.15, 0.45)),
        period=float(rng.uniform(*period)),
        angle=float(rng.uniform(0, math.pi)),
        phase=float(rng.uniform(0, 1)),
        checker_weight=float(rng.uniform(0.4, 0.9)),
        sharpness=float(rng.uniform(2.0, 4.0)),
        gradient=float(rng.uniform(0.1, 0.25)),
    )


class SyntheticScene:
    """A closed textured room with moving spheres and boxes (see the module docstring).

    ``SyntheticScene(seed)`` draws textures and objects from ``seed`` (same seed → same scene):
    a central "hero" sphere near the optical axis at ~4 units (so the official orbit radius rule
    finds it), then ``num_spheres - 1`` more spheres and ``num_boxes`` boxes standing on the
    ground 2.5–7 units in front of the origin, each moving up to ~0.8 units over ``t = 0..1``
    without overlapping the others. Pass ``spheres`` / ``boxes`` to place objects yourself.
    """

    def __init__(
        self,
        seed: int = 0,
        num_spheres: int = 3,
        num_boxes: int = 2,
        room_min: Vec3 = (-6.0, -5.0, -4.0),
        room_max: Vec3 = (6.0, 1.5, 10.0),
        spheres: Optional[Sequence[Sphere]] = None,
        boxes: Optional[Sequence[Box]] = None,
    ):
        self.seed = int(seed)
        self.room_min = tuple(float(v) for v in room_min)
        self.room_max = tuple(float(v) for v in room_max)
        if not all(lo < 0.0 < hi for lo, hi in zip(self.room_min, self.room_max)):
            raise TrajCrafterError(
                f"room must contain the origin: room_min={self.room_min}, room_max={self.room_max}."
            )
        rng = np.random.default_rng(self.seed)
        # room textures: ground, ceiling, left, right, front, back
        periods = [(0.6, 1.0), (2.0, 3.0), (0.5, 1.2), (0.5, 1.2), (0.5, 1.2), (0.5, 1.2)]
        self.wall_textures: List[Texture] = [_random_texture(rng, p) for p in periods]
        self.wall_textures[_CEILING].checker_weight = 0.2  # soft "sky"
        if spheres is None and boxes is None:
            spheres, boxes = self._random_objects(rng, int(num_spheres), int(num_boxes))
        self.spheres: List[Sphere] = list(spheres or [])
        self.boxes: List[Box] = list(boxes or [])
        for s in self.spheres:
            if not s.radius > 0:
                raise TrajCrafterError(f"sphere radius must be > 0, got {s.radius}.")
        for b in self.boxes:
            if not all(h > 0 for h in b.half_size):
                raise TrajCrafterError(f"box half sizes must be > 0, got {b.half_size}.")

    @property
    def ground_y(self) -> float:
        return self.room_max[1]

    @property
    def num_surfaces(self) -> int:
        return 6 + len(self.spheres) + len(self.boxes)

    # -- object placement ---------------------------------------------------------------------

    def _random_objects(self, rng: np.random.Generator, num_spheres: int, num_boxes: int):
        g = self.ground_y
        spheres: List[Sphere] = []
        boxes: List[Box] = []
        placed: List[Tuple[np.ndarray, np.ndarray, float]] = []  # (xz at t=0, xz velocity, radius)

        def free(xz, vel, radius) -> bool:
            for xz2, vel2, r2 in placed:  # closest approach of two linear motions over t in [0, 1]
                dp, dv = xz - xz2, vel - vel2
                t = 0.0 if dv @ dv < 1e-12 else float(np.clip(-(dp @ dv) / (dv @ dv), 0.0, 1.0))
                if np.linalg.norm(dp + t * dv) < radius + r2 + 0.15:
                    return False
            return True

        if num_spheres > 0:
            r = float(rng.uniform(0.6, 0.8))
            centre = (float(rng.uniform(-0.3, 0.0)), float(rng.uniform(-0.1, 0.3)), float(rng.uniform(3.8, 4.4)))
            vel = (float(rng.uniform(0.3, 0.6)), 0.0, 0.0)
            spheres.append(Sphere(centre, r, vel, _random_texture(rng, (0.25, 0.45))))
            placed.append((np.array([centre[0], centre[2]]), np.array([vel[0], vel[2]]), r))
        kinds = ["sphere"] * max(0, num_spheres - 1) + ["box"] * num_boxes
        for kind in kinds:
            for _attempt in range(200):
                xz = np.array([rng.uniform(-3.0, 3.0), rng.uniform(2.5, 7.0)])
                speed, heading = rng.uniform(0.2, 0.8), rng.uniform(0, 2 * math.pi)
                vel = np.array([math.cos(heading), math.sin(heading) * 0.5]) * speed
                if kind == "sphere":
                    r = float(rng.uniform(0.3, 0.6))
                    footprint = r
                else:
                    half = (float(rng.uniform(0.25, 0.6)), float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.25, 0.6)))
                    footprint = math.hypot(half[0], half[2])
                if free(xz, vel, footprint) and min(xz[1], xz[1] + vel[1]) - footprint > 1.0:
                    break
            else:  # pragma: no cover - crowded scene; skip this object
                continue
            placed.append((xz, vel, footprint))
            texture = _random_texture(rng, (0.2, 0.4))
            if kind == "sphere":
                spheres.append(Sphere((float(xz[0]), g - r, float(xz[1])), r,
                                      (float(vel[0]), 0.0, float(vel[1])), texture))
            else:
                boxes.append(Box((float(xz[0]), g - half[1], float(xz[1])), half,
                                 (float(vel[0]), 0.0, float(vel[1])), texture))
        return spheres, boxes

    def sphere_centres(self, times: torch.Tensor) -> torch.Tensor:
        """Sphere centres ``[T, S, 3]`` at ``times`` ``[T]``."""
        times = torch.as_tensor(times, dtype=torch.float32).reshape(-1)
        if not self.spheres:
            return torch.zeros(times.shape[0], 0, 3, device=times.device)
        c = torch.tensor([s.centre for s in self.spheres], dtype=torch.float32, device=times.device)
        v = torch.tensor([s.velocity for s in self.spheres], dtype=torch.float32, device=times.device)
        return c[None] + times[:, None, None] * v[None]

    def box_bounds(self, times: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Box corners ``(lo, hi)``, each ``[T, B, 3]``, at ``times`` ``[T]``."""
        times = torch.as_tensor(times, dtype=torch.float32).reshape(-1)
        if not self.boxes:
            z = torch.zeros(times.shape[0], 0, 3, device=times.device)
            return z, z
        c = torch.tensor([b.centre for b in self.boxes], dtype=torch.float32, device=times.device)
        h = torch.tensor([b.half_size for b in self.boxes], dtype=torch.float32, device=times.device)
        v = torch.tensor([b.velocity for b in self.boxes], dtype=torch.float32, device=times.device)
        c = c[None] + times[:, None, None] * v[None]
        return c - h[None], c + h[None]

    # -- rendering ----------------------------------------------------------------------------

    def render(
        self,
        w2c,
        K,
        height: int,
        width: int,
        times: Union[float, Sequence[float], torch.Tensor] = 0.0,
        device: Optional[Union[str, torch.device]] = None,
        return_ids: bool = False,
        progress: Optional[ProgressFn] = None,
    ):
        """Render ``T`` frames: ``rgb float32 [T, H, W, 3]`` in 0..1 and ``depth float32 [T, H, W]``.

        ``w2c``: ``[4, 4]`` or ``[T, 4, 4]`` world-to-camera; ``K``: ``[3, 3]`` or ``[T, 3, 3]``
        pixels; ``times``: a number or ``[T]``. Any of the three may be given once for all
        frames. ``device``: where to compute (default: ``w2c``'s device); results stay there.
        With ``return_ids`` also ``ids int64 [T, H, W]`` (see :data:`SURFACE_NAMES`).
        ``progress(done, total)`` after each group of frames (one frame at 576x1024 and above).
        """
        height, width = _check_size(height, width)
        dev = torch.device(device) if device is not None else (
            w2c.device if isinstance(w2c, torch.Tensor) else torch.device("cpu"))
        w2c, K, times = _broadcast_cameras(w2c, K, times)
        count = w2c.shape[0]
        w2c, K, times = w2c.to(dev), K.to(dev), times.to(dev)
        self._check_cameras_inside(w2c)

        rgb = torch.empty(count, height, width, 3, device=dev)
        depth = torch.empty(count, height, width, device=dev)
        ids = torch.empty(count, height, width, dtype=torch.int64, device=dev) if return_ids else None
        per_chunk = max(1, _RAYS_PER_CHUNK // (height * width))
        for start in range(0, count, per_chunk):
            sl = slice(start, start + per_chunk)
            c, d, i = self._render_group(w2c[sl], K[sl], times[sl], height, width)
            rgb[sl], depth[sl] = c, d
            if ids is not None:
                ids[sl] = i
            if progress is not None:
                progress(min(start + per_chunk, count), count)
        return (rgb, depth, ids) if return_ids else (rgb, depth)

    def _check_cameras_inside(self, w2c: torch.Tensor) -> None:
        centres = _camera_centres(w2c)
        lo = torch.tensor(self.room_min, device=w2c.device) + 1e-3
        hi = torch.tensor(self.room_max, device=w2c.device) - 1e-3
        outside = ((centres < lo) | (centres > hi)).any(dim=1)
        if bool(outside.any()):
            k = int(outside.nonzero()[0])
            raise TrajCrafterError(
                f"camera {k} is at {[round(v, 3) for v in centres[k].tolist()]}, outside the synthetic "
                f"room {self.room_min}..{self.room_max}; keep camera centres inside (w2c is "
                f"world-to-camera; its camera centre is -R^T t)."
            )

    def _render_group(self, w2c, K, times, height, width):
        dev = w2c.device
        G = w2c.shape[0]
        v, u = torch.meshgrid(torch.arange(height, device=dev, dtype=torch.float32),
                              torch.arange(width, device=dev, dtype=torch.float32), indexing="ij")
        pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(height * width, device=dev)], dim=-1)
        d_cam = pix[None] @ torch.linalg.inv(K).transpose(1, 2)            # [G, N, 3]
        d_cam = d_cam / d_cam[..., 2:3]                                    # z = 1: ray t == z-depth
        R = w2c[:, :3, :3]
        origin = _camera_centres(w2c)                                      # [G, 3]
        dirs = d_cam @ R                                                   # R^T d, [G, N, 3]
        o = origin[:, None, :]

        # room: exit through the nearest of the six planes (camera is inside)
        lo = torch.tensor(self.room_min, device=dev)
        hi = torch.tensor(self.room_max, device=dev)
        safe = torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
        t_planes = torch.where(dirs > 0, (hi - o) / safe, (lo - o) / safe)
        t_planes = torch.where(dirs.abs() < 1e-12, torch.full_like(t_planes, float("inf")), t_planes)
        t_best, axis = t_planes.min(dim=-1)                                # [G, N]
        positive = torch.gather(dirs, -1, axis[..., None])[..., 0] > 0
        # axis 0: x (left -, right +) ; 1: y (ceiling -, ground +) ; 2: z (front -, back +)
        wall_ids = torch.tensor([[_LEFT, _RIGHT], [_CEILING, _GROUND], [_FRONT, _BACK]], device=dev)
        ids = wall_ids[axis, positive.long()]

        # spheres: nearest root in front of the ray origin
        centres = self.sphere_centres(times.cpu()).to(dev)                 # [G, S, 3]
        for k, sphere in enumerate(self.spheres):
            oc = o - centres[:, k][:, None, :]
            a = (dirs * dirs).sum(-1)
            b = (dirs * oc).sum(-1)
            c = (oc * oc).sum(-1) - sphere.radius ** 2
            disc = b * b - a * c
            t = (-b - torch.sqrt(disc.clamp_min(0.0))) / a
            hit = (disc > 0) & (t > _EPS) & (t < t_best)
            t_best = torch.where(hit, t, t_best)
            ids = torch.where(hit, torch.full_like(ids, 6 + k), ids)

        # boxes: slab test, entry distance
        box_lo, box_hi = self.box_bounds(times.cpu())
        box_lo, box_hi = box_lo.to(dev), box_hi.to(dev)
        inv = 1.0 / safe
        for k in range(len(self.boxes)):
            t0 = (box_lo[:, k][:, None, :] - o) * inv
            t1 = (box_hi[:, k][:, None, :] - o) * inv
            t_near = torch.minimum(t0, t1).amax(-1)
            t_far = torch.maximum(t0, t1).amin(-1)
            hit = (t_near <= t_far) & (t_near > _EPS) & (t_near < t_best)
            t_best = torch.where(hit, t_near, t_best)
            ids = torch.where(hit, torch.full_like(ids, 6 + len(self.spheres) + k), ids)

        points = o + t_best[..., None] * dirs                              # [G, N, 3] world
        rgb = self._shade(points, ids, centres, box_lo, box_hi)
        return (rgb.reshape(G, height, width, 3), t_best.reshape(G, height, width),
                ids.reshape(G, height, width))

    # -- textures -----------------------------------------------------------------------------

    def _shade(self, points, ids, sphere_centres, box_lo, box_hi) -> torch.Tensor:
        G = points.shape[0]
        rgb = torch.zeros_like(points)
        frame = torch.arange(G, device=points.device)[:, None].expand_as(ids)
        plane_uv = {_GROUND: (0, 2), _CEILING: (0, 2), _LEFT: (2, 1), _RIGHT: (2, 1), _FRONT: (0, 1), _BACK: (0, 1)}
        for sid, (a, b) in plane_uv.items():
            m = ids == sid
            if bool(m.any()):
                p = points[m]
                rgb[m] = _texture_2d(p[:, a], p[:, b], self.wall_textures[sid])
        for k, sphere in enumerate(self.spheres):
            m = ids == 6 + k
            if bool(m.any()):
                n = (points[m] - sphere_centres[frame[m], k]) / sphere.radius
                rgb[m] = _sphere_texture(n, sphere)
        for k, box in enumerate(self.boxes):
            m = ids == 6 + len(self.spheres) + k
            if bool(m.any()):
                local = points[m] - 0.5 * (box_lo[frame[m], k] + box_hi[frame[m], k])
                rgb[m] = _texture_3d(local, box.texture)
        return rgb.clamp_(0.0, 1.0)


def _smooth_square(x: torch.Tensor, sharpness: float) -> torch.Tensor:
    """Soft square wave in -1..1 of period 1 (tanh of a sine)."""
    return torch.tanh(sharpness * torch.sin(2 * math.pi * x)) / math.tanh(sharpness)


def _mix(pattern: torch.Tensor, tex: Texture, gradient_arg: torch.Tensor) -> torch.Tensor:
    a = torch.tensor(tex.colour_a, device=pattern.device)
    b = torch.tensor(tex.colour_b, device=pattern.device)
    colour = b + (a - b) * pattern[:, None]
    return colour * (1.0 + tex.gradient * torch.sin(gradient_arg))[:, None]


def _texture_2d(u: torch.Tensor, v: torch.Tensor, tex: Texture, period: Optional[float] = None,
                angle: Optional[float] = None, gradient_arg: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Albedo ``[N, 3]`` at surface coordinates ``u, v`` (world units unless ``period`` says so)."""
    period = tex.period if period is None else period
    angle = tex.angle if angle is None else angle
    ca, sa = math.cos(angle), math.sin(angle)
    ru, rv = (ca * u - sa * v) / period + tex.phase, (sa * u + ca * v) / period + tex.phase
    checker = 0.5 + 0.5 * _smooth_square(ru, tex.sharpness) * _smooth_square(rv, tex.sharpness)
    stripes = 0.5 + 0.5 * _smooth_square(0.5 * (ru + rv) + 0.25, tex.sharpness)
    pattern = tex.checker_weight * checker + (1.0 - tex.checker_weight) * stripes
    if gradient_arg is None:
        gradient_arg = 0.35 * u + 0.5 * v + 6.0 * tex.phase
    return _mix(pattern, tex, gradient_arg)


def _sphere_texture(n: torch.Tensor, sphere: Sphere) -> torch.Tensor:
    """Albedo ``[N, 3]`` at unit normals ``n`` (object-local, so it moves with the sphere).

    A seamless latitude/longitude checker: a whole number of cells around the equator.
    """
    tex = sphere.texture
    cells_lon = max(2, round(2 * math.pi * sphere.radius / tex.period))
    cells_lat = max(1, round(math.pi * sphere.radius / tex.period))
    lon = torch.atan2(n[:, 2], n[:, 0]) / (2 * math.pi) * cells_lon
    lat = torch.asin(n[:, 1].clamp(-1.0, 1.0)) / math.pi * cells_lat
    return _texture_2d(lon, lat, tex, period=1.0, angle=0.0,
                       gradient_arg=2.0 * (n[:, 0] + n[:, 1]) + 6.0 * tex.phase)


def _texture_3d(local: torch.Tensor, tex: Texture) -> torch.Tensor:
    """Albedo ``[N, 3]`` of a solid texture in object-local coordinates (box faces)."""
    x = local / tex.period + tex.phase
    s = _smooth_square(x, tex.sharpness)
    pattern = 0.5 + 0.5 * (s[:, 0] * s[:, 1] * s[:, 2])
    pattern = tex.checker_weight * pattern + (1.0 - tex.checker_weight) * (0.5 + 0.5 * s[:, 1])
    return _mix(pattern, tex, 2.0 * local.sum(-1) + 6.0 * tex.phase)


# ----------------------------------------------------------------------------------------------
# Camera validation
# ----------------------------------------------------------------------------------------------


def _check_size(height, width) -> Tuple[int, int]:
    try:
        h, w = int(height), int(width)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"height and width must be whole numbers, got {height!r}, {width!r}.") from None
    if h < 1 or w < 1 or h != height or w != width:
        raise TrajCrafterError(f"height and width must be whole numbers >= 1, got {height}, {width}.")
    return h, w


def _camera_centres(w2c: torch.Tensor) -> torch.Tensor:
    R, t = w2c[:, :3, :3], w2c[:, :3, 3]
    return -(R.transpose(1, 2) @ t[..., None])[..., 0]


def _as_poses(w2c, name: str) -> torch.Tensor:
    if not isinstance(w2c, torch.Tensor):
        w2c = torch.as_tensor(np.asarray(w2c))
    w2c = w2c.float()
    if w2c.ndim == 2:
        w2c = w2c[None]
    if w2c.ndim != 3 or tuple(w2c.shape[1:]) != (4, 4):
        raise TrajCrafterError(f"{name} must be [4, 4] or [T, 4, 4] world-to-camera matrices, got {list(w2c.shape)}.")
    check_finite(w2c, name)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], device=w2c.device)
    R = w2c[:, :3, :3].double()
    eye = torch.eye(3, dtype=torch.float64, device=w2c.device)
    ortho_err = (R @ R.transpose(1, 2) - eye).abs().amax(dim=(1, 2))
    if bool((w2c[:, 3] - bottom).abs().amax() > 1e-5) or bool((ortho_err > 1e-4).any()) or bool(
            (torch.linalg.det(R) <= 0).any()):
        raise TrajCrafterError(
            f"{name} must be rigid transforms (rotation with det +1, last row 0 0 0 1); got a "
            f"matrix with rotation error {float(ortho_err.max()):.2e}. Scale belongs in K, not the pose."
        )
    return w2c


def _broadcast_cameras(w2c, K, times) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    w2c = _as_poses(w2c, "w2c")
    K = as_intrinsics(K.cpu() if isinstance(K, torch.Tensor) else K, "K")
    times = torch.as_tensor(times, dtype=torch.float32).reshape(-1).cpu()
    check_finite(times, "times")
    counts = {n for n in (w2c.shape[0], K.shape[0], times.shape[0]) if n != 1}
    if len(counts) > 1:
        raise TrajCrafterError(
            f"w2c ({w2c.shape[0]}), K ({K.shape[0]}) and times ({times.shape[0]}) disagree on the "
            f"number of frames; give each either once or once per frame."
        )
    if times.numel() == 0:
        raise TrajCrafterError("times is empty; give a time for at least one frame.")
    count = counts.pop() if counts else 1
    return (w2c.expand(count, 4, 4), K.expand(count, 3, 3), times.expand(count))


# ----------------------------------------------------------------------------------------------
# Clips
# ----------------------------------------------------------------------------------------------


def example_clip(
    num_frames: int = 25,
    height: int = 288,
    width: int = 512,
    seed: int = 0,
    device: Optional[Union[str, torch.device]] = None,
    scene: Optional[SyntheticScene] = None,
    progress: Optional[ProgressFn] = None,
) -> Dict[str, object]:
    """The bundled example: a static camera at the origin watching the objects move.

    Returns ``dict(frames [T,H,W,3], depths [T,H,W], K [3,3], w2c [T,4,4], times [T], scene,
    fps)`` on CPU. ``K`` is the official default (focal 500 px at 1024 px width, scaled with
    the width; principal point ``(W/2, H/2)``); ``times = linspace(0, 1, T)``. At the default
    size depth runs from ~2.6 (ground at the bottom edge) to 10 (back wall), the centre pixel
    sees the hero sphere at ~3–4 units — the range the official pipeline's depth mapping
    produces.
    """
    from .camera import official_intrinsics

    if int(num_frames) < 1:
        raise TrajCrafterError(f"num_frames must be >= 1, got {num_frames}.")
    scene = scene if scene is not None else SyntheticScene(seed=seed)
    K = official_intrinsics(int(width), int(height))
    w2c = torch.eye(4).expand(int(num_frames), 4, 4).contiguous()
    times = torch.linspace(0.0, 1.0, int(num_frames))
    rgb, depth = scene.render(w2c, K, height, width, times, device=device, progress=progress)
    return dict(frames=rgb.cpu(), depths=depth.cpu(), K=K, w2c=w2c, times=times, scene=scene, fps=8.0)


def render_target_views(
    scene: SyntheticScene,
    w2c_src,
    transforms,
    K,
    height: int,
    width: int,
    times: Union[float, Sequence[float], torch.Tensor] = 0.0,
    device: Optional[Union[str, torch.device]] = None,
    return_ids: bool = False,
):
    """Exact target views of a trajectory: ``w2c_dst = transforms @ w2c_src`` per frame.

    ``transforms`` ``[T, 4, 4]`` map source-camera to target-camera coordinates (the pack's
    trajectory convention); ``w2c_src`` ``[4, 4]`` or ``[T, 4, 4]``. Returns what
    :meth:`SyntheticScene.render` returns for the target cameras.
    """
    src = _as_poses(w2c_src, "w2c_src")
    tr = _as_poses(transforms, "transforms")
    if src.shape[0] not in (1, tr.shape[0]) and tr.shape[0] != 1:
        raise TrajCrafterError(
            f"w2c_src has {src.shape[0]} poses but transforms has {tr.shape[0]}; give one or one per frame."
        )
    w2c_dst = tr.to(src.device) @ src
    return scene.render(w2c_dst, K, height, width, times, device=device, return_ids=return_ids)
