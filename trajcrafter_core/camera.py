"""Cameras: intrinsics, camera paths and the output-frame schedule of each mode.

Conventions (see :mod:`trajcrafter_core.conventions`): OpenCV camera axes (x right, y down,
z forward); a camera path is a ``float32 [N, 4, 4]`` stack of transforms mapping points from the
*source camera's* coordinates to the *target camera's* coordinates (``X_dst = T @ X_src``).

Official TrajectoryCrafter semantics, reproduced here to float32 precision
------------------------------------------------------------------------
The official code builds, per frame, a matrix ``P`` (it calls it "c2w"; it acts as a
world-to-camera map) and renders source frame pixels with ``pose_t @ inv(pose_s)``.

- ``P = Ry(phi) @ Rx(theta) @ [D | (-x, y, -r)]`` with ``D = diag(-1, 1, -1)``, then the radius
  is added to the z translation: ``P[2, 3] += radius``.
- ``pose_t = P_i`` (frame ``i`` of the path) and ``pose_s = P_anchor`` for every frame, so the
  transform of frame ``i`` is ``T_i = P_i @ inv(P_anchor)``.

Geometrically, with the orbit centre ``c = (0, 0, radius)`` (the point at the centre depth in
front of the anchor camera) and ``R = Ry(phi) Rx(theta)``, for anchor 0::

    X_dst = R @ (X_src - c - d) + c,     d = (x, -y, r * radius)

i.e. the camera first moves by ``x`` to the right, ``y`` up and ``r * radius`` forward, then
orbits the centre: ``+theta`` takes it up (looking down at the centre), ``+phi`` to the right.
Units: theta, phi in degrees; ``r`` a fraction of the radius; ``x``, ``y`` in depth units (not
scaled by the radius, as in the official code).

- **radius** = depth at pixel ``(H // 2, W // 2)`` of the first frame × ``radius_scale``, capped
  at 5 (:func:`orbit_radius`).
- **target pose** ``(theta, phi, r, x, y)``: each parameter ramps linearly from 0 to its value
  over the path (:func:`target_pose_trajectory`).
- **trajectory txt**: three lines of keys (theta, phi, r). A line with more than 3 keys is
  resampled with ``scipy.interpolate.UnivariateSpline(k=3)`` (default smoothing) on equally
  spaced key positions, then its first and last values are set to the first and last keys; a line
  with 2 or 3 keys is resampled piecewise linearly (:func:`txt_trajectory`).
- **anchor frame** ``a``: the source camera *is* the path's camera ``a``; every transform is
  taken relative to it (``T_i = P_i inv(P_a)``), so output frame ``a`` shows the source
  viewpoint and the path moves away from / towards it on either side. ``a = 0`` (official
  default) starts the path at the source view; ``a = N - 1`` ends it there.

Modes as schedules (:func:`make_trajectory`), exactly as the official ``demo.py`` indexes:

======== ========================== ===================== ============ ============
mode     source frame of output i   transform             K_src        K_dst
======== ========================== ===================== ============ ============
gradual  i                          T_i                   K            K
bullet   N - 1 (last)               T_i                   K            K
direct   0 if i < cut else i - cut  T_min(i, cut-1)       K            K
zoom     i                          T_i                   K            focal ramp
======== ========================== ===================== ============ ============

For ``direct`` the path has ``cut`` cameras (official ``cut = 20``) and the output has as many
frames as the clip; the official demo keeps output frames ``cut:`` when it saves the result
(:attr:`Trajectory.trim_start`). The dolly-zoom focal ramp is linear from ``f`` to ``focal_end``
(official 500 → 250 px at 1024 px width); the principal point stays.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .conventions import as_intrinsics, fov_to_focal
from .errors import MissingFilesError, TrajCrafterError
from .official import EASINGS, MODES, OFFICIAL_DIRECT_CUT, PRESET_NAMES, PRESETS, canonical_mode, canonical_preset

__all__ = [
    "OFFICIAL_FOCAL",
    "OFFICIAL_WIDTH",
    "OFFICIAL_HEIGHT",
    "OFFICIAL_DIRECT_CUT",
    "OFFICIAL_ZOOM_FOCAL_END",
    "MAX_RADIUS",
    "MODES",
    "PRESET_NAMES",
    "TargetPose",
    "Trajectory",
    "official_intrinsics",
    "intrinsics",
    "rescale_intrinsics",
    "orbit_radius",
    "target_pose_trajectory",
    "txt_trajectory",
    "parse_trajectory_txt",
    "txt_keys_to_frames",
    "orbit_poses",
    "relative_transforms",
    "ramp",
    "preset_pose",
    "preset_trajectory",
    "dolly_zoom_focal_end",
    "dolly_zoom_focal_end_of",
    "make_trajectory",
]

OFFICIAL_FOCAL = 500.0  # px, at OFFICIAL_WIDTH
OFFICIAL_WIDTH = 1024
OFFICIAL_HEIGHT = 576
OFFICIAL_ZOOM_FOCAL_END = 250.0  # px at OFFICIAL_WIDTH (half of OFFICIAL_FOCAL)
MAX_RADIUS = 5.0



# --------------------------------------------------------------------------------------------
# Intrinsics
# --------------------------------------------------------------------------------------------


def _check_size(height: int, width: int) -> Tuple[int, int]:
    try:
        h, w = int(height), int(width)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"image size must be two integers (height, width), got {height!r}, {width!r}.")
    if h < 2 or w < 2 or h != height or w != width:
        raise TrajCrafterError(f"image size must be whole numbers >= 2 pixels, got height={height}, width={width}.")
    return h, w


def _pinhole(fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    K = torch.zeros(3, 3, dtype=torch.float32)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[2, 2] = fx, fy, cx, cy, 1.0
    return K


def official_intrinsics(width: int, height: int) -> torch.Tensor:
    """Official default ``K`` (float32 [3, 3]) at ``width`` x ``height`` pixels.

    Focal 500 px at 1024 px width, scaled with the width (square pixels); principal point at
    ``(W / 2, H / 2)`` as in the official code (512, 288 at 1024 x 576).
    """
    height, width = _check_size(height, width)
    f = OFFICIAL_FOCAL * width / OFFICIAL_WIDTH
    return _pinhole(f, f, width / 2.0, height / 2.0)


def intrinsics(
    width: int,
    height: int,
    focal: Optional[float] = None,
    fov_degrees: Optional[float] = None,
) -> torch.Tensor:
    """``K`` (float32 [3, 3]) from a focal length in pixels *or* a horizontal field of view.

    With neither, the official default (:func:`official_intrinsics`). Square pixels, principal
    point at ``(W / 2, H / 2)``.
    """
    height, width = _check_size(height, width)
    if focal is not None and fov_degrees is not None:
        raise TrajCrafterError("give either focal (pixels) or fov_degrees, not both.")
    if fov_degrees is not None:
        focal = fov_to_focal(float(fov_degrees), width)
    if focal is None:
        return official_intrinsics(width, height)
    focal = float(focal)
    if not math.isfinite(focal) or focal <= 0:
        raise TrajCrafterError(f"focal length must be a finite number of pixels > 0, got {focal}.")
    return _pinhole(focal, focal, width / 2.0, height / 2.0)


def rescale_intrinsics(K: torch.Tensor, from_size: Tuple[int, int], to_size: Tuple[int, int]) -> torch.Tensor:
    """Intrinsics ``[..., 3, 3]`` for the same camera after resizing the image.

    Sizes are ``(height, width)``. Exact for a resize with pixel centres at integer coordinates
    (``align_corners=False``): ``fx' = fx * sx``, ``cx' = (cx + 0.5) * sx - 0.5`` (likewise y),
    so a non-uniform resize gives non-square pixels (same field of view on both axes).
    """
    (h0, w0), (h1, w1) = _check_size(*from_size), _check_size(*to_size)
    sx, sy = w1 / w0, h1 / h0
    S = torch.tensor(
        [[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]],
        dtype=torch.float64,
        device=K.device,
    )
    return (S @ K.double()).to(K.dtype)


# --------------------------------------------------------------------------------------------
# Radius rule
# --------------------------------------------------------------------------------------------


def _check_radius(radius) -> torch.Tensor:
    """Radius as a float32 scalar tensor; must be finite and > 0."""
    try:
        value = float(radius)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"radius must be a number, got {radius!r}.")
    if not math.isfinite(value) or value <= 0:
        raise TrajCrafterError(
            f"radius must be finite and > 0 (it is the depth of the orbit centre), got {value}. "
            f"Use orbit_radius(depth) or give a positive number."
        )
    return torch.tensor(value, dtype=torch.float32)


def orbit_radius(depth_frame, radius_scale: float = 1.0) -> float:
    """Official orbit radius: depth at pixel ``(H // 2, W // 2)`` × ``radius_scale``, capped at 5.

    ``depth_frame``: ``[H, W]`` (or ``[T, H, W]`` / ``[T, 1, H, W]``: the first frame is used,
    as in the official code). The whole frame must be finite and > 0. The product is taken in
    float32 like the official code.
    """
    if isinstance(depth_frame, np.ndarray):
        depth_frame = torch.from_numpy(np.ascontiguousarray(depth_frame))
    if not isinstance(depth_frame, torch.Tensor):
        raise TrajCrafterError(f"depth frame must be a tensor or array, got {type(depth_frame).__name__}.")
    d = depth_frame
    while d.ndim > 2:
        d = d[0]
    if d.ndim != 2 or d.shape[0] < 1 or d.shape[1] < 1:
        raise TrajCrafterError(f"depth frame must be [H, W] (or [T, H, W]), got {list(depth_frame.shape)}.")
    d = d.float()
    bad = ~torch.isfinite(d) | (d <= 0)
    if bool(bad.any()):
        raise TrajCrafterError(
            f"depth frame has {int(bad.sum())} NaN/inf/<=0 value(s); depth must be finite and > 0 "
            f"(larger = farther). Clean or re-estimate the depth first."
        )
    scale = float(radius_scale)
    if not math.isfinite(scale) or scale <= 0:
        raise TrajCrafterError(f"radius_scale must be finite and > 0, got {radius_scale}.")
    radius = d[d.shape[0] // 2, d.shape[1] // 2].cpu() * scale  # float32 product
    return min(float(radius), MAX_RADIUS)


# --------------------------------------------------------------------------------------------
# Poses along a path (official parameterisation)
# --------------------------------------------------------------------------------------------


def _check_num_frames(num_frames) -> int:
    try:
        n = int(num_frames)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"num_frames must be an integer, got {num_frames!r}.")
    if n != num_frames or n < 2:
        raise TrajCrafterError(f"num_frames must be an integer >= 2 (a path needs two cameras), got {num_frames}.")
    return n


def _check_anchor(anchor_index, num_frames: int) -> int:
    try:
        a = int(anchor_index)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"anchor_index must be an integer, got {anchor_index!r}.")
    if a != anchor_index or not -num_frames <= a < num_frames:
        raise TrajCrafterError(
            f"anchor_index must be an integer in [0, {num_frames}) (negative counts from the end), "
            f"got {anchor_index}."
        )
    return a % num_frames


def _finite_float(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"{name} must be a number, got {value!r}.")
    if not math.isfinite(v):
        raise TrajCrafterError(f"{name} must be finite, got {v}.")
    return v


def orbit_poses(
    theta_deg: Sequence[float],
    phi_deg: Sequence[float],
    r: Sequence[float],
    radius,
    x: Optional[Sequence[float]] = None,
    y: Optional[Sequence[float]] = None,
) -> torch.Tensor:
    """Official per-frame matrices ``P`` (float32 [N, 4, 4]) from per-frame parameters.

    ``r`` is already in depth units (the official code multiplies by the radius before).
    ``P = Ry(phi) Rx(theta) [diag(-1, 1, -1) | (-x, y, -r)]``, then ``P[2, 3] += radius``;
    built in float32 like the official code. Most callers want :func:`relative_transforms`
    of this, or the higher-level :func:`target_pose_trajectory` / :func:`txt_trajectory`.
    """
    theta = torch.as_tensor(np.asarray(theta_deg, dtype=np.float32))
    phi = torch.as_tensor(np.asarray(phi_deg, dtype=np.float32))
    dz = torch.as_tensor(np.asarray(r, dtype=np.float32))
    n = theta.shape[0]
    if phi.shape[0] != n or dz.shape[0] != n:
        raise TrajCrafterError(f"theta, phi and r need one value per frame, got {n}, {phi.shape[0]}, {dz.shape[0]}.")
    base = torch.diag(torch.tensor([-1.0, 1.0, -1.0, 1.0])).repeat(n, 1, 1)
    base[:, 2, 3] -= dz
    if x is not None:
        base[:, 0, 3] -= torch.as_tensor(np.asarray(x, dtype=np.float32))
    if y is not None:
        base[:, 1, 3] += torch.as_tensor(np.asarray(y, dtype=np.float32))

    t, p = torch.deg2rad(theta), torch.deg2rad(phi)
    ct, st, cp, sp = torch.cos(t), torch.sin(t), torch.cos(p), torch.sin(p)
    rx = torch.eye(4).repeat(n, 1, 1)
    rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = ct, -st, st, ct
    ry = torch.eye(4).repeat(n, 1, 1)
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 2, 0], ry[:, 2, 2] = cp, sp, -sp, cp
    poses = torch.matmul(ry, torch.matmul(rx, base))
    poses[:, 2, 3] += _check_radius(radius)
    return poses


def ramp(num_frames: int, easing: str = "linear") -> np.ndarray:
    """Progress along a path, float64 ``[N]`` from 0 to 1: ``linspace(0, 1, N)`` (``"linear"``)
    or ``(1 - cos(pi t)) / 2`` of it (``"ease_in_out"``: zero speed at both ends)."""
    t = np.linspace(0.0, 1.0, _check_num_frames(num_frames))
    if easing == "linear":
        return t
    if easing == "ease_in_out":
        return (1.0 - np.cos(np.pi * t)) / 2.0
    raise TrajCrafterError(f"easing must be one of {', '.join(EASINGS)}, got {easing!r}.")


def relative_transforms(poses: torch.Tensor, anchor_index: int = 0) -> torch.Tensor:
    """Source→target transforms ``P_i @ inv(P_anchor)`` (float32 [N, 4, 4]).

    The source camera is the path's camera ``anchor_index``; computed in float32 with a general
    matrix inverse, as the official renderer composes ``pose_t @ inv(pose_s)``.
    """
    a = _check_anchor(anchor_index, poses.shape[0])
    poses = poses.float()
    return torch.matmul(poses, torch.linalg.inv(poses[a : a + 1]))


def target_pose_trajectory(
    theta: float,
    phi: float,
    r: float,
    x: float,
    y: float,
    num_frames: int,
    radius: float,
    anchor_index: int = 0,
    easing: str = "linear",
) -> torch.Tensor:
    """Official target-pose path: float32 [N, 4, 4] source→target transforms.

    Each of ``theta`` (deg, + = camera up), ``phi`` (deg, + = camera right), ``r`` (fraction of
    ``radius``, + = forward), ``x`` (+ = right), ``y`` (+ = up) ramps from 0 at frame 0 to its
    value at frame ``N - 1``: linearly (official) or along :func:`ramp` for another ``easing``.
    ``radius``: orbit centre depth (:func:`orbit_radius`). Equals the official
    ``pose_t @ inv(pose_s)`` with ``anchor_idx = anchor_index``.
    """
    n = _check_num_frames(num_frames)
    rad = _check_radius(radius)
    values = [_finite_float(v, name) for v, name in zip((theta, phi, r, x, y), ("theta", "phi", "r", "x", "y"))]
    r_end = float(rad * values[2])  # the official scales r by the radius in float32
    ends = (values[0], values[1], r_end, values[3], values[4])
    if easing == "linear":
        ramps = [np.linspace(0.0, v, n).astype(np.float32) for v in ends]
    else:
        ramps = [(v * ramp(n, easing)).astype(np.float32) for v in ends]
    poses = orbit_poses(ramps[0], ramps[1], ramps[2], rad, x=ramps[3], y=ramps[4])
    return relative_transforms(poses, anchor_index)


# --------------------------------------------------------------------------------------------
# Trajectory txt (theta line, phi line, r line)
# --------------------------------------------------------------------------------------------


def _read_text(path_or_text, what: str) -> Tuple[str, str]:
    """``(text, label)`` from a path or from the text itself (a str with a newline is text)."""
    if isinstance(path_or_text, bytes):
        path_or_text = path_or_text.decode("utf-8", errors="replace")
    if isinstance(path_or_text, str) and ("\n" in path_or_text or "\r" in path_or_text):
        return path_or_text, f"{what} text"
    if isinstance(path_or_text, (str, os.PathLike)):
        p = Path(path_or_text)
        if not p.is_file():
            raise MissingFilesError(f"{what} file not found: {str(p)!r}. Give an existing file or the text itself.")
        try:
            return p.read_text(encoding="utf-8"), f"{what} file {str(p)!r}"
        except UnicodeDecodeError:
            raise TrajCrafterError(f"{what} file {str(p)!r} is not UTF-8 text.")
    raise TrajCrafterError(f"{what} must be a file path or its text, got {type(path_or_text).__name__}.")


def parse_trajectory_txt(path_or_text, label: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys ``(theta, phi, r)`` (float64 arrays) of an official trajectory txt.

    Exactly three non-empty lines of whitespace-separated numbers: theta keys (degrees), phi keys
    (degrees), r keys (fractions of the radius); each line needs at least two keys. ``label``
    names the file in messages (default: its path, or "trajectory txt text").
    """
    text, default_label = _read_text(path_or_text, "trajectory txt")
    label = label or default_label
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) != 3:
        raise TrajCrafterError(
            f"{label} must have exactly 3 non-empty lines (theta keys, phi keys, r keys), "
            f"found {len(lines)}."
        )
    out = []
    for name, line in zip(("theta", "phi", "r"), lines):
        try:
            keys = np.array([float(tok) for tok in line.split()], dtype=np.float64)
        except ValueError:
            raise TrajCrafterError(f"{label}: the {name} line must hold numbers only, got {line.strip()!r}.")
        if keys.size < 2:
            raise TrajCrafterError(f"{label}: the {name} line needs at least 2 keys (start and end), got {keys.size}.")
        if not np.isfinite(keys).all():
            raise TrajCrafterError(f"{label}: the {name} line has NaN/inf keys: {line.strip()!r}.")
        out.append(keys)
    return out[0], out[1], out[2]


def txt_keys_to_frames(keys, num_frames: int) -> np.ndarray:
    """Resample txt keys to ``num_frames`` values (float64), official rule.

    More than 3 keys: cubic smoothing spline ``UnivariateSpline(k=3)`` with scipy's default
    smoothing over key positions ``linspace(0, 1, len(keys))``, evaluated at
    ``linspace(0, 1, num_frames)``, first/last values replaced by the first/last keys.
    2 or 3 keys: piecewise-linear interpolation.
    """
    from scipy.interpolate import UnivariateSpline

    keys = np.asarray(keys)
    n = _check_num_frames(num_frames)
    if keys.ndim != 1 or keys.size < 2:
        raise TrajCrafterError(f"trajectory keys must be a 1-D list of at least 2 numbers, got shape {keys.shape}.")
    where_keys = np.linspace(0.0, 1.0, keys.size)
    where_frames = np.linspace(0.0, 1.0, n)
    if keys.size > 3:
        values = UnivariateSpline(where_keys, keys, k=3)(where_frames)
        values[0], values[-1] = keys[0], keys[-1]
        return values
    return np.interp(where_frames, where_keys, keys.astype(np.float64))


def txt_trajectory(path_or_text, num_frames: int, radius: float, anchor_index: int = 0) -> torch.Tensor:
    """Official trajectory-txt path: float32 [N, 4, 4] source→target transforms.

    ``path_or_text``: a file path or the txt content (theta line, phi line, r line; see
    :func:`parse_trajectory_txt`). The r keys are multiplied by ``radius`` (float32) before
    resampling (:func:`txt_keys_to_frames`); x = y = 0. Equals the official
    ``pose_t @ inv(pose_s)`` with ``anchor_idx = anchor_index``.
    """
    theta_keys, phi_keys, r_keys = parse_trajectory_txt(path_or_text)
    n = _check_num_frames(num_frames)
    rad = _check_radius(radius)
    r_keys = (torch.from_numpy(r_keys.astype(np.float32)) * rad).numpy()  # float32 like the official
    theta = txt_keys_to_frames(theta_keys, n).astype(np.float32)
    phi = txt_keys_to_frames(phi_keys, n).astype(np.float32)
    r = txt_keys_to_frames(r_keys, n).astype(np.float32)
    return relative_transforms(orbit_poses(theta, phi, r, rad), anchor_index)


# --------------------------------------------------------------------------------------------
# Presets in the official parameterisation
# --------------------------------------------------------------------------------------------


class TargetPose(NamedTuple):
    """Official target pose: theta, phi (degrees), r (fraction of the radius), x, y (depth units)."""

    theta: float = 0.0
    phi: float = 0.0
    r: float = 0.0
    x: float = 0.0
    y: float = 0.0




def preset_pose(name: str, radius: float = 1.0, amount: float = 1.0) -> TargetPose:
    """Target pose ``(theta, phi, r, x, y)`` of a named camera move.

    ``amount`` scales the move (1 = default, negative reverses it). Seen in the image (each one
    checked on projected points in ``tests/test_camera.py``):

    - ``orbit_left`` / ``orbit_right`` (phi = -30 / +30 deg, the official example uses -30):
      the camera circles to its left / right around the point at the centre depth, which stays
      at the image centre; content nearer than it slides right / left, content behind it slides
      left / right.
    - ``arc_up`` / ``arc_down`` (theta = +20 / -20 deg): the camera rises / sinks around the
      centre, looking down / up at it; nearer content slides down / up in the image.
    - ``dolly_in`` / ``dolly_out`` (r = +0.4 / -0.4): the camera moves forward / back by that
      fraction of the radius; content grows / shrinks away from / towards the image centre.
    - ``pan_left`` / ``pan_right`` / ``pan_up`` / ``pan_down`` (x or y = ±0.3 × radius): the camera
      *translates* (truck / pedestal, like the official x, y "pan"), without turning; all content
      slides the opposite way (right / left / down / up), nearer content more.
    - ``dolly_zoom`` (r = +0.5, the official zoom example): dolly in by half the radius; use it
      with mode ``dolly_zoom`` and :func:`dolly_zoom_focal_end` so the centre keeps its size.
    - ``static``: no motion; ``stabilize``: the same fixed camera (see :data:`~trajcrafter_core.specs.PRESETS`
      for what it means for a moving source camera).

    ReCamMaster's presets (``recam_*``) are camera paths, not target poses: see
    :func:`preset_trajectory`.
    """
    key = canonical_preset(name)
    if key not in PRESETS:
        raise TrajCrafterError(f"preset {key} is a camera path (ReCamMaster's), not a target pose; use preset_trajectory.")
    a = _finite_float(amount, "amount")
    rad = float(_check_radius(radius))
    th, ph, r, xf, yf = PRESETS[key]
    return TargetPose(th * a, ph * a, r * a, xf * a * rad, yf * a * rad)


def preset_trajectory(
    name: str, num_frames: int, radius: float, amount: float = 1.0, anchor_index: int = 0,
    easing: str = "linear",
) -> torch.Tensor:
    """Source→target transforms (float32 [N, 4, 4]) of a named preset: a target pose
    (:func:`preset_pose`) or one of ReCamMaster's paths
    (:func:`trajcrafter_core.camera_moves.recammaster_path`)."""
    key = canonical_preset(name)
    if key not in PRESETS:
        from .camera_moves import recammaster_path

        return recammaster_path(key, num_frames, radius, amount, anchor_index=anchor_index, easing=easing)
    pose = preset_pose(key, radius, amount)
    return target_pose_trajectory(*pose, num_frames=num_frames, radius=radius, anchor_index=anchor_index,
                                  easing=easing)


def dolly_zoom_focal_end(focal_start: float, r: float) -> float:
    """Final focal length that keeps the orbit centre the same size after dollying by ``r``.

    The centre sits at depth ``radius`` and the camera ends ``r * radius`` closer, so
    ``focal_end = focal_start * (1 - r)`` (official: r = 0.5, 500 → 250 px); with linear ramps
    of both, the centre keeps its size on every frame.
    """
    r = _finite_float(r, "r")
    if r >= 1.0:
        raise TrajCrafterError(f"dolly zoom needs r < 1 (the camera would reach the centre), got {r}.")
    return float(focal_start) * (1.0 - r)


def dolly_zoom_focal_end_of(transforms: torch.Tensor, radius: float, focal_start: float) -> float:
    """Final focal length that keeps the orbit centre's size along any camera path.

    The orbit centre is ``c = (0, 0, radius)`` in source-camera coordinates; its depth in the
    first and last cameras of the path is ``z_0``, ``z_1`` (``transforms`` float32 [N, 4, 4]), so
    ``focal_end = focal_start * z_1 / z_0``. For a target pose without rotation that is
    :func:`dolly_zoom_focal_end` (``focal_start * (1 - r)``: the official 500 → 250 px at
    ``r = 0.5``); for a trajectory txt or an imported path it follows the path's own end.
    """
    centre = torch.tensor([0.0, 0.0, float(_check_radius(radius)), 1.0], dtype=torch.float64)
    T = torch.as_tensor(transforms).double()
    z0, z1 = float((T[0] @ centre)[2]), float((T[-1] @ centre)[2])
    if z0 <= 0 or z1 <= 0:
        raise TrajCrafterError(
            "dolly zoom: the orbit centre is not in front of the camera at the start or end of the "
            "path (the camera passes it); give focal_end explicitly or a shorter forward move.")
    return float(focal_start) * z1 / z0


# --------------------------------------------------------------------------------------------
# Output-frame schedule
# --------------------------------------------------------------------------------------------


@dataclass
class Trajectory:
    """What to render for each output frame ``i`` (a plain, picklable dataclass of tensors).

    - ``source_index``: int64 [N], the source frame lifted to points.
    - ``transforms``: float32 [N, 4, 4], source-camera → target-camera (OpenCV axes).
    - ``K_src``: float32 [N, 3, 3], intrinsics that lift the source frame (pixels at
      ``(height, width)``); ``K_dst``: float32 [N, 3, 3], intrinsics of the target view.
    - ``height``, ``width``: render size the intrinsics are in.
    - ``mode``: the schedule that produced it; ``reference_from``: ``"start"`` or ``"end"``,
      which end of the source clip the official pipeline takes its reference frames from
      (bullet time: ``"end"``).
    - ``trim_start``: output frames before this index are the camera move of ``direct`` mode;
      the official demo drops them when saving (0 for other modes).
    - ``radius``: the orbit radius the path was built with (depth units), when known.
    """

    source_index: torch.Tensor
    transforms: torch.Tensor
    K_src: torch.Tensor
    K_dst: torch.Tensor
    height: int
    width: int
    mode: str = "gradual"
    reference_from: str = "start"
    trim_start: int = 0
    radius: Optional[float] = None

    def __post_init__(self):
        self.height, self.width = _check_size(self.height, self.width)
        self.source_index = torch.as_tensor(self.source_index).long()
        n = self.source_index.shape[0] if self.source_index.ndim == 1 else -1
        if n < 1:
            raise TrajCrafterError(f"Trajectory.source_index must be a 1-D list of frame indices, got {list(self.source_index.shape)}.")
        if bool((self.source_index < 0).any()):
            raise TrajCrafterError("Trajectory.source_index must be >= 0.")
        self.transforms = torch.as_tensor(self.transforms).float()
        if tuple(self.transforms.shape) != (n, 4, 4):
            raise TrajCrafterError(f"Trajectory.transforms must be [{n}, 4, 4], got {list(self.transforms.shape)}.")
        if not bool(torch.isfinite(self.transforms).all()):
            raise TrajCrafterError("Trajectory.transforms contains NaN/inf.")
        self.K_src = as_intrinsics(self.K_src, "Trajectory.K_src", count=n).contiguous()
        self.K_dst = as_intrinsics(self.K_dst, "Trajectory.K_dst", count=n).contiguous()
        if self.reference_from not in ("start", "end"):
            raise TrajCrafterError(f"Trajectory.reference_from must be 'start' or 'end', got {self.reference_from!r}.")
        self.trim_start = int(self.trim_start)
        if not 0 <= self.trim_start < n:
            raise TrajCrafterError(f"Trajectory.trim_start must be in [0, {n}), got {self.trim_start}.")

    def __len__(self) -> int:
        return int(self.source_index.shape[0])

    @property
    def num_frames(self) -> int:
        """Number of output frames."""
        return len(self)

    @property
    def size(self) -> Tuple[int, int]:
        """``(height, width)`` the intrinsics are in."""
        return self.height, self.width

    def to(self, device) -> "Trajectory":
        """Copy with every tensor on ``device`` (dtypes stay: int64 indices, float32 cameras)."""
        return replace(
            self,
            source_index=self.source_index.to(device),
            transforms=self.transforms.to(device),
            K_src=self.K_src.to(device),
            K_dst=self.K_dst.to(device),
        )

    def rescaled(self, height: int, width: int) -> "Trajectory":
        """The same cameras with intrinsics for a render of ``height`` x ``width`` pixels.

        Same rule as :func:`rescale_intrinsics` (the image is resized, pixel centres kept):
        focal lengths scale per axis, so a change of aspect gives non-square pixels and keeps
        each axis' field of view.
        """
        size = _check_size(height, width)
        return replace(
            self,
            K_src=rescale_intrinsics(self.K_src, self.size, size),
            K_dst=rescale_intrinsics(self.K_dst, self.size, size),
            height=size[0],
            width=size[1],
        )


TransformsLike = Union[torch.Tensor, Callable[[int], torch.Tensor]]


def _path(transforms: TransformsLike, num_frames: int, mode: str) -> torch.Tensor:
    T = transforms(num_frames) if callable(transforms) else transforms
    if isinstance(T, np.ndarray):
        T = torch.from_numpy(T)
    if not isinstance(T, torch.Tensor) or T.ndim != 3 or tuple(T.shape[1:]) != (4, 4):
        shape = list(T.shape) if hasattr(T, "shape") else type(T).__name__
        raise TrajCrafterError(f"{mode}: camera transforms must be [N, 4, 4], got {shape}.")
    if T.shape[0] < 2:
        raise TrajCrafterError(f"{mode}: a camera path needs at least 2 transforms, got {T.shape[0]}.")
    T = T.float()
    if not bool(torch.isfinite(T).all()):
        raise TrajCrafterError(f"{mode}: camera transforms contain NaN/inf.")
    return T


def make_trajectory(
    mode: str,
    transforms: TransformsLike,
    num_source_frames: int,
    height: int,
    width: int,
    K: Optional[torch.Tensor] = None,
    cut: Optional[int] = None,
    focal_end: Optional[float] = None,
    K_dst: Optional[torch.Tensor] = None,
) -> Trajectory:
    """Schedule the output frames of a mode, as the official ``demo.py`` indexes them.

    - ``mode``: ``"gradual"``, ``"direct"``, ``"bullet"`` or ``"dolly_zoom"`` (``"zoom"``).
    - ``transforms``: the camera path, float32 [M, 4, 4] source→target, or a callable
      ``num_frames -> [num_frames, 4, 4]`` (e.g. ``lambda n: target_pose_trajectory(..., n, radius)``)
      which is called with the length the mode needs, as the official code generates its path:
      ``num_source_frames`` for gradual / bullet / dolly_zoom and ``cut`` for direct.
      gradual and dolly_zoom need ``M == num_source_frames``; bullet renders the last source
      frame from each of the ``M`` cameras; direct needs ``M == cut``.
    - ``K``: source intrinsics [3, 3] in pixels at ``(height, width)``; default
      :func:`official_intrinsics`. ``K_dst``: optional target intrinsics [3, 3] or [M, 3, 3]
      (one per camera of the path, indexed like the transforms; default ``K``; not for
      dolly_zoom).
    - ``cut`` (direct): number of output frames during which the camera moves over the first
      source frame; default 20 (official) or ``M`` when ``transforms`` is a tensor. Must be in
      ``[2, num_source_frames]``. Output frame ``i >= cut`` plays source frame ``i - cut`` from
      the final camera; the output has ``num_source_frames`` frames.
    - ``focal_end`` (dolly_zoom): final focal length in pixels at ``(height, width)``, default
      half of ``K``'s fx (official 500 → 250). fx ramps linearly (float32 ``torch.linspace``)
      from ``K[0, 0]`` to it, fy proportionally; the principal point stays.
    """
    key = canonical_mode(mode)
    try:
        n_src = int(num_source_frames)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"num_source_frames must be an integer, got {num_source_frames!r}.")
    if n_src < 1 or n_src != num_source_frames:
        raise TrajCrafterError(f"num_source_frames must be an integer >= 1, got {num_source_frames}.")
    height, width = _check_size(height, width)
    K = official_intrinsics(width, height) if K is None else as_intrinsics(K, "K")
    if K.ndim == 3:
        if K.shape[0] != 1:
            raise TrajCrafterError(f"K (source intrinsics) must be a single [3, 3] matrix, got {list(K.shape)}.")
        K = K[0]

    reference_from, trim_start = "start", 0
    if key == "direct":
        if cut is None:
            cut = transforms.shape[0] if isinstance(transforms, torch.Tensor) else OFFICIAL_DIRECT_CUT
        try:
            cut_i = int(cut)
        except (TypeError, ValueError):
            raise TrajCrafterError(f"cut must be an integer, got {cut!r}.")
        if cut_i != cut or not 2 <= cut_i <= n_src:
            raise TrajCrafterError(
                f"direct mode: cut must be an integer in [2, num_source_frames={n_src}], got {cut} "
                f"(the official cut of 20 needs a clip of at least 20 frames; pass a smaller cut)."
            )
        T = _path(transforms, cut_i, key)
        if T.shape[0] != cut_i:
            raise TrajCrafterError(
                f"direct mode: the camera path has {T.shape[0]} transforms but cut={cut_i}; build the "
                f"path with num_frames=cut (or pass a callable)."
            )
        i = torch.arange(n_src)
        source_index = torch.where(i < cut_i, torch.zeros_like(i), i - cut_i)
        path_index = torch.clamp(i, max=cut_i - 1)
        trim_start = cut_i
    elif key == "bullet":
        T = _path(transforms, n_src, key)
        source_index = torch.full((T.shape[0],), n_src - 1, dtype=torch.long)
        path_index = torch.arange(T.shape[0])
        reference_from = "end"
    else:  # gradual, dolly_zoom
        T = _path(transforms, n_src, key)
        if T.shape[0] != n_src:
            raise TrajCrafterError(
                f"{key} mode: the camera path has {T.shape[0]} transforms but the clip has {n_src} "
                f"frames; they must match (build the path with num_frames={n_src}, or resample it)."
            )
        source_index = torch.arange(n_src)
        path_index = torch.arange(n_src)

    transforms_out = T[path_index]
    n_out = transforms_out.shape[0]
    if key == "dolly_zoom":
        if K_dst is not None:
            raise TrajCrafterError("dolly_zoom builds its own target intrinsics; give focal_end, not K_dst.")
        fx, fy = float(K[0, 0]), float(K[1, 1])
        f_end = 0.5 * fx if focal_end is None else _finite_float(focal_end, "focal_end")
        if f_end <= 0:
            raise TrajCrafterError(f"focal_end must be > 0 pixels, got {f_end}.")
        K_dst_out = K.repeat(n_out, 1, 1)
        K_dst_out[:, 0, 0] = torch.linspace(fx, f_end, n_out)
        K_dst_out[:, 1, 1] = torch.linspace(fy, fy * f_end / fx, n_out)
    else:
        if focal_end is not None:
            raise TrajCrafterError(f"focal_end only applies to dolly_zoom mode, not {key}.")
        K_dst_out = K if K_dst is None else as_intrinsics(K_dst, "K_dst")
        if K_dst_out.ndim == 3 and K_dst_out.shape[0] != 1:
            if K_dst_out.shape[0] != T.shape[0]:
                raise TrajCrafterError(
                    f"K_dst has {K_dst_out.shape[0]} matrices; give one, or one per camera of the "
                    f"path ({T.shape[0]})."
                )
            K_dst_out = K_dst_out[path_index]

    return Trajectory(
        source_index=source_index,
        transforms=transforms_out.contiguous(),
        K_src=K,
        K_dst=K_dst_out,
        height=height,
        width=width,
        mode=key,
        reference_from=reference_from,
        trim_start=trim_start,
    )
