"""Camera moves beyond the official ``(theta, phi, r, x, y)`` ramps: ReCamMaster's presets and a
target camera reached from the source view.

Coordinates are the source camera's (OpenCV axes: x right, y down, z forward; depth units). A
camera of a path is given by its pose in those coordinates — camera-to-source rotation ``R``
(columns: the camera's x, y, z axes) and centre ``C`` — and the trajectory stores the inverse,
the source→target transform ``X_dst = R^T (X_src - C)`` (see :mod:`trajcrafter_core.camera`).
Progress along a path follows :func:`trajcrafter_core.camera.ramp` (linear or eased).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .camera import _check_num_frames, _check_radius, _finite_float, ramp, relative_transforms
from .errors import TrajCrafterError
from .specs import RECAMMASTER_PRESETS, canonical_preset

__all__ = [
    "poses_to_transforms",
    "look_at",
    "turn",
    "recammaster_path",
    "target_camera_path",
]

#: "Down" in the source camera's axes: a camera without roll keeps its x axis perpendicular to it.
_DOWN = np.array([0.0, 1.0, 0.0])


def poses_to_transforms(rotations: np.ndarray, centres: np.ndarray) -> torch.Tensor:
    """Source→target transforms float32 ``[N, 4, 4]`` of cameras with camera-to-source rotations
    ``[N, 3, 3]`` and centres ``[N, 3]``: ``[R^T | -R^T C]``."""
    R = np.asarray(rotations, dtype=np.float64)
    C = np.asarray(centres, dtype=np.float64)
    T = np.tile(np.eye(4), (R.shape[0], 1, 1))
    T[:, :3, :3] = np.transpose(R, (0, 2, 1))
    T[:, :3, 3] = -np.einsum("nji,nj->ni", R, C)
    return torch.from_numpy(T).float()


def look_at(centres: np.ndarray, target: Sequence[float]) -> np.ndarray:
    """Camera-to-source rotations ``[N, 3, 3]`` of cameras at ``centres`` ``[N, 3]`` looking at
    ``target`` without roll (x axis perpendicular to the source camera's y axis, y axis pointing
    down-ish): ``z = (target - C) / |.|``, ``x = down × z / |.|``, ``y = z × x``."""
    C = np.asarray(centres, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64)[None] - C
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    if bool((norm < 1e-9).any()):
        raise TrajCrafterError("a look-at camera reaches the point it looks at; use a shorter move.")
    z = z / norm
    x = np.cross(_DOWN[None], z)
    xn = np.linalg.norm(x, axis=1, keepdims=True)
    if bool((xn < 1e-6).any()):
        raise TrajCrafterError("a look-at camera looks straight up or down; its roll is undefined.")
    x = x / xn
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def turn(yaw_degrees: np.ndarray, pitch_degrees: np.ndarray) -> np.ndarray:
    """Camera-to-source rotations ``[N, 3, 3]`` of a camera turning in place: ``Ry(yaw) @ Rx(pitch)``
    with ``+yaw`` = turn right (the z axis towards +x) and ``+pitch`` = tilt up (towards -y)."""
    a, b = np.radians(np.asarray(yaw_degrees, dtype=np.float64)), np.radians(np.asarray(pitch_degrees, dtype=np.float64))
    n = a.shape[0]
    ry = np.tile(np.eye(3), (n, 1, 1))
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 2, 0], ry[:, 2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    rx = np.tile(np.eye(3), (n, 1, 1))
    rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = np.cos(b), -np.sin(b), np.sin(b), np.cos(b)
    return ry @ rx


def recammaster_path(name: str, num_frames: int, radius: float, amount: float = 1.0, anchor_index: int = 0,
                     easing: str = "linear") -> torch.Tensor:
    """Source→target transforms float32 ``[N, 4, 4]`` of one of ReCamMaster's presets
    (:data:`~trajcrafter_core.specs.RECAMMASTER_PRESETS`).

    The subject ReCamMaster frames 4 m ahead is our orbit centre ``(0, 0, radius)``, so its
    metres are ``radius / 4`` depth units. Turning presets rotate in place by ``amount`` × their
    angles; moving presets go in a straight line to ``amount`` × their end position, looking at the
    subject (translate, arc) or straight ahead (zoom = dolly). ``anchor_index``: the path's camera
    that is the source camera.
    """
    key = canonical_preset(name)
    if key not in RECAMMASTER_PRESETS:
        raise TrajCrafterError(f"{name!r} is not one of ReCamMaster's presets ({', '.join(RECAMMASTER_PRESETS)}).")
    n = _check_num_frames(num_frames)
    rad = float(_check_radius(radius))
    a = _finite_float(amount, "amount")
    yaw, pitch, x, y, z, aims = RECAMMASTER_PRESETS[key]
    t = ramp(n, easing)
    centres = t[:, None] * (a * rad * np.array([x, y, z]))[None]
    rotations = look_at(centres, (0.0, 0.0, rad)) if aims else turn(a * yaw * t, a * pitch * t)
    return relative_transforms(poses_to_transforms(rotations, centres), anchor_index)


def _rotation_power(R: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """``R^f`` for each fraction ``f`` (the rotation about ``R``'s axis by ``f`` × its angle)."""
    from scipy.spatial.transform import Rotation

    rotvec = Rotation.from_matrix(R).as_rotvec()
    return Rotation.from_rotvec(fractions[:, None] * rotvec[None]).as_matrix()


def target_camera_path(target: torch.Tensor, num_frames: int, pivot: Sequence[float], anchor_index: int = 0,
                       easing: str = "linear") -> torch.Tensor:
    """Source→target transforms float32 ``[N, 4, 4]`` from the source view (identity) to
    ``target`` (``[4, 4]``, rigid, source→target).

    The move turns about ``pivot`` (source coordinates; the orbit centre ``(0, 0, radius)``):
    ``X_dst(a) = R^a (X_src - c) + c + a d`` with ``R^a`` the rotation by the fraction ``a`` of
    ``target``'s angle about its axis and ``d`` the rest of the move, so ``a = 1`` is ``target``
    exactly and a pure orbit about ``c`` (the official phi ramp with r = x = y = 0) is followed
    frame by frame. ``a`` follows :func:`~trajcrafter_core.camera.ramp` (``easing``).
    """
    n = _check_num_frames(num_frames)
    T = torch.as_tensor(target, dtype=torch.float64).reshape(4, 4).numpy()
    R_end, t_end = T[:3, :3], T[:3, 3]
    c = np.asarray(pivot, dtype=np.float64)
    d = t_end + R_end @ c - c
    a = ramp(n, easing)
    R = _rotation_power(R_end, a)
    out = np.tile(np.eye(4), (n, 1, 1))
    out[:, :3, :3] = R
    out[:, :3, 3] = c[None] - np.einsum("nij,j->ni", R, c) + a[:, None] * d[None]
    return relative_transforms(torch.from_numpy(out).float(), anchor_index)
