"""ComfyUI's Load 3D camera (core type ``LOAD3D_CAMERA``) as the target camera of a trajectory, and back.

What Load 3D's ``camera_info`` output holds (``comfy_api.latest.IO.Load3DCamera.CameraInfo``,
filled by the frontend's ``CameraManager.getCameraState``): ``{"position": {"x", "y", "z"},
"target": {"x", "y", "z"}, "zoom": number, "cameraType": "perspective" | "orthographic"}`` — a
three.js camera in the viewer's axes (:mod:`trajcrafter_core.conventions`: right-handed, +Y up,
looking down its -Z) at ``position``, turned by ``lookAt(target)`` with +Y up (so it has no roll),
and ``zoom`` the three.js zoom (focal length × zoom). Its field of view is not in it.

The conversion, for a scene file written by :func:`trajcrafter_core.scene3d.export_scene` (whose
:class:`~trajcrafter_core.scene3d.ViewerFrame` ``v = s · flip(p) + o`` the viewer shows as is):

- camera axes: ``z = (position - target) / |.|``, ``x = +Y × z / |.|``, ``y = z × x`` (three.js
  ``lookAt``); the OpenCV camera looks along ``-z`` with ``+x`` right and ``-y`` down, in source
  axes ``R = flip · [x, -y, -z]`` (columns), centre ``C = flip((position - o) / s)``;
- the target camera is ``[R^T | -R^T C]`` (source → target, depth units) with the *source*
  camera's intrinsics × ``zoom`` (we render at the source size; the viewer's own lens is unknown).

:func:`transform_to_camera_info` goes back, given how far ahead the target point is.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from .conventions import opencv_to_viewer
from .errors import TrajCrafterError
from .scene3d import ViewerFrame

__all__ = ["camera_info_to_transform", "transform_to_camera_info", "camera_info_spec"]

_UP = np.array([0.0, 1.0, 0.0])


def _vector(info: dict, key: str) -> np.ndarray:
    value = info.get(key) if isinstance(info, dict) else None
    try:
        v = np.array([float(value[k]) for k in ("x", "y", "z")]) if isinstance(value, dict) else np.array(
            [float(x) for x in value], dtype=np.float64)
    except (TypeError, ValueError, KeyError):
        raise TrajCrafterError(f"camera_info {key} must be {{x, y, z}} numbers (Load 3D's camera_info), got {value!r}.") from None
    if v.shape != (3,) or not np.isfinite(v).all():
        raise TrajCrafterError(f"camera_info {key} must be 3 finite numbers, got {value!r}.")
    return v


def _look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """three.js camera axes ``[x, y, z]`` (columns, viewer axes) looking from ``position`` at ``target``."""
    z = position - target
    if np.linalg.norm(z) < 1e-12:
        raise TrajCrafterError("camera_info position and target are the same point; orbit the Load 3D camera away from it.")
    z = z / np.linalg.norm(z)
    x = np.cross(_UP, z)
    if np.linalg.norm(x) < 1e-9:
        raise TrajCrafterError("the Load 3D camera looks straight up or down; tilt it a little so its view has a horizon.")
    x = x / np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def camera_info_to_transform(camera_info: dict, frame: ViewerFrame) -> Tuple[np.ndarray, float]:
    """``(T, zoom)``: the source → target transform float64 ``[4, 4]`` (OpenCV axes, depth units) of a
    Load 3D camera over a scene file with ``frame``, and its zoom (focal multiplier)."""
    if not isinstance(camera_info, dict):
        raise TrajCrafterError(f"camera_info must be Load 3D's camera_info (a dict), got {type(camera_info).__name__}.")
    kind = str(camera_info.get("cameraType", "perspective"))
    if kind != "perspective":
        raise TrajCrafterError(f"the Load 3D camera is {kind}; switch it to perspective to pick a view.")
    zoom = camera_info.get("zoom", 1.0)
    try:
        zoom = float(zoom)
    except (TypeError, ValueError):
        zoom = float("nan")
    if not (math.isfinite(zoom) and zoom > 0):
        raise TrajCrafterError(f"camera_info zoom must be a number > 0, got {camera_info.get('zoom')!r}.")
    position, target = _vector(camera_info, "position"), _vector(camera_info, "target")
    axes = _look_at(position, target)  # viewer axes, three.js camera
    opencv_axes = axes * np.array(opencv_to_viewer(np.ones(3)))[None]  # columns x, -y, -z
    R = opencv_to_viewer(opencv_axes.T).T  # each column back to source axes
    C = frame.to_source(position)
    T = np.eye(4)
    T[:3, :3] = R.T
    T[:3, 3] = -R.T @ C
    return T, zoom


def transform_to_camera_info(transform, frame: ViewerFrame, target_distance: float, zoom: float = 1.0) -> dict:
    """Load 3D's ``camera_info`` of the target camera of ``transform`` (source → target ``[4, 4]``),
    its look-at point ``target_distance`` depth units ahead. A camera with roll cannot be one
    (three.js cameras keep +Y up): that raises."""
    T = np.asarray(transform, dtype=np.float64).reshape(4, 4)
    R = T[:3, :3].T
    C = -R @ T[:3, 3]
    if abs(float(R[1, 0])) > 1e-6 * max(1.0, float(np.abs(R).max())):
        raise TrajCrafterError("this camera is rolled (its x axis is not level); a Load 3D camera keeps +Y up.")
    if not (math.isfinite(target_distance) and target_distance > 0):
        raise TrajCrafterError(f"target_distance must be > 0, got {target_distance!r}.")
    position = frame.to_viewer(C)
    target = frame.to_viewer(C + target_distance * R[:, 2])
    xyz = lambda v: {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}  # noqa: E731
    return {"position": xyz(position), "target": xyz(target), "zoom": float(zoom), "cameraType": "perspective"}


def camera_info_spec(camera_info: dict, frame: ViewerFrame, **camera_options):
    """The :class:`~trajcrafter_core.specs.CameraSpec` whose path ends at a Load 3D camera
    (``target_camera`` + ``zoom``); ``camera_options``: ``mode``, ``easing``, ``anchor``, ... ."""
    from .specs import CameraSpec

    T, zoom = camera_info_to_transform(camera_info, frame)
    return CameraSpec(target_camera=tuple(T.flatten().tolist()), zoom=zoom, **camera_options)
