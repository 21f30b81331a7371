"""Camera paths from and to files: RealEstate10K / CameraCtrl txt, nerfstudio camera_path.json,
and our JSON of per-frame transforms + intrinsics.

Every imported path becomes a :class:`CameraPath`: float32 [M, 4, 4] transforms mapping points
from the *source camera's* coordinates to each target camera's coordinates (OpenCV axes: x
right, y down, z forward), plus per-camera intrinsics in pixels. The source camera is the file's
camera ``reference`` (default 0, the first), or with ``reference=None`` the file's world frame
itself. ``translation_scale`` converts the file's length unit to depth units (the depth of the
point cloud the path is rendered with); rotations are unitless.

Formats
-------
- RealEstate10K / CameraCtrl txt: an optional first line (the video URL), then per camera
  ``timestamp fx fy cx cy k1 k2`` followed by the 12 numbers of the 3x4 world-to-camera matrix,
  row-major; intrinsics normalised by the image width (fx, cx) and height (fy, cy); OpenCV axes.
- nerfstudio camera_path.json: ``render_height``, ``render_width``, ``camera_type``
  ("perspective") and ``camera_path[]`` with ``camera_to_world`` (16 numbers, row-major 4x4,
  OpenGL axes: x right, y up, z backward) and ``fov`` (vertical, degrees).
- Trajectory JSON (:func:`save_trajectory_json`): the full :class:`~trajcrafter_core.camera.Trajectory`
  (per output frame: source index, 4x4 transform, K_src, K_dst) with its size and mode.

Principal points given as "centred" are placed at ``(W / 2, H / 2)``, the pack's (and the
official code's) centre.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple, Optional, Union

import numpy as np
import torch

from .camera import Trajectory, _check_size, _read_text, make_trajectory, parse_trajectory_txt, rescale_intrinsics
from .conventions import as_intrinsics
from .errors import MissingFilesError, TrajCrafterError
from .official import check_txt_keys

__all__ = [
    "CameraFile",
    "read_camera_file",
    "CameraPath",
    "load_realestate10k",
    "save_realestate10k",
    "load_nerfstudio_camera_path",
    "save_nerfstudio_camera_path",
    "save_trajectory_json",
    "load_trajectory_json",
    "resample_path",
]

TRAJECTORY_JSON_FORMAT = "trajcrafter.trajectory"
_GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # flips y and z: OpenGL camera axes <-> OpenCV


@dataclass
class CameraPath:
    """An imported camera path.

    - ``transforms``: float32 [M, 4, 4], source-camera → camera ``i`` (OpenCV axes).
    - ``K``: float32 [M, 3, 3], intrinsics of camera ``i`` in pixels at ``(height, width)``.
    - ``timestamps``: float64 [M] seconds, or ``None`` when the file has none.
    - ``url``: the source video named by a RealEstate10K file (``""`` if none).
    """

    transforms: torch.Tensor
    K: torch.Tensor
    height: int
    width: int
    timestamps: Optional[torch.Tensor] = None
    url: str = ""

    def __len__(self) -> int:
        return int(self.transforms.shape[0])

    def resampled(self, num_frames: int) -> "CameraPath":
        """The path at ``num_frames`` evenly spaced cameras (see :func:`resample_path`)."""
        T, K = resample_path(self.transforms, num_frames, self.K)
        ts = None
        if self.timestamps is not None:
            ts = torch.from_numpy(
                np.interp(np.linspace(0, len(self) - 1, num_frames), np.arange(len(self)), self.timestamps.numpy())
            )
        return replace(self, transforms=T, K=K, timestamps=ts)

    def rescaled(self, height: int, width: int) -> "CameraPath":
        """Intrinsics for another image size (see :func:`~trajcrafter_core.camera.rescale_intrinsics`)."""
        size = _check_size(height, width)
        return replace(self, K=rescale_intrinsics(self.K, (self.height, self.width), size), height=size[0], width=size[1])

    def to_trajectory(
        self,
        mode: str,
        num_source_frames: int,
        K: Optional[torch.Tensor] = None,
        cut: Optional[int] = None,
        use_path_intrinsics: bool = True,
    ) -> Trajectory:
        """Schedule this path for a clip, resampled to the length the mode needs (``cut``
        cameras for direct, default 20; ``num_source_frames`` otherwise).

        ``K``: intrinsics of the source frames at this path's size (default: camera 0 of the
        path). With ``use_path_intrinsics`` each output frame renders with its camera's ``K``,
        otherwise with ``K``. See :func:`~trajcrafter_core.camera.make_trajectory`.
        """
        key = str(mode).strip().lower()
        if key in ("dolly_zoom", "zoom"):
            raise TrajCrafterError("an imported path carries its own intrinsics; use mode 'gradual' for it.")
        # as the official code generates its path: `cut` cameras for direct, one per frame otherwise
        n = (20 if cut is None else int(cut)) if key == "direct" else int(num_source_frames)
        path = self if n == len(self) else self.resampled(n)
        K_src = path.K[0] if K is None else K
        return make_trajectory(
            key,
            path.transforms,
            num_source_frames,
            self.height,
            self.width,
            K=K_src,
            cut=n if key == "direct" else None,
            K_dst=path.K if use_path_intrinsics else None,
        )


class CameraFile(NamedTuple):
    """A trajectory file read by content (:func:`read_camera_file`).

    ``kind``: ``"official_txt"`` (``value`` = the txt text: theta, phi, r key lines),
    ``"path"`` (``value`` = a :class:`CameraPath` from RealEstate10K or nerfstudio) or
    ``"trajectory"`` (``value`` = a saved :class:`~trajcrafter_core.camera.Trajectory`).
    ``label``: how messages name the file.
    """

    kind: str
    value: object
    label: str


def read_camera_file(path_or_text, height: int, width: int, translation_scale: float = 1.0) -> CameraFile:
    """Read any supported trajectory file, recognised by its content.

    - ``.json`` with ``camera_path``: nerfstudio; with ``"format": "trajcrafter.trajectory"``
      (or ``frames``): a saved trajectory;
    - text with 19 numbers per line (optionally a URL first): RealEstate10K / CameraCtrl;
    - text with 3 lines of numbers: an official trajectory txt.

    ``path_or_text``: a path, or the text itself (a str holding a newline). ``height``,
    ``width``: the render size imported intrinsics are expanded to.
    """
    if isinstance(path_or_text, str) and ("\n" in path_or_text or "\r" in path_or_text):
        text, label, suffix = path_or_text, "trajectory text", ".json" if path_or_text.lstrip().startswith("{") else ".txt"
    else:
        p = Path(os.fspath(path_or_text)).expanduser()
        label = f"trajectory file {p.name}"
        if p.is_dir():
            raise TrajCrafterError(f"{label} ({p}) is a folder; give a .txt or .json trajectory file.")
        if not p.is_file():
            raise MissingFilesError(f"{label} not found: {p}. Give an existing .txt or .json file.")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TrajCrafterError(f"{label} is not UTF-8 text; give a .txt or .json trajectory file.") from None
        suffix = p.suffix.lower()
    if not text.strip():
        raise TrajCrafterError(f"{label} is empty; an official trajectory txt has 3 lines (theta, phi, r keys).")
    if suffix == ".json":
        data, _ = _read_json(text, label)
        if isinstance(data, dict) and "camera_path" in data:
            path = load_nerfstudio_camera_path(data, height, width, translation_scale=translation_scale)
            return CameraFile("path", path, label)
        if isinstance(data, dict) and (data.get("format") == TRAJECTORY_JSON_FORMAT or "frames" in data):
            return CameraFile("trajectory", load_trajectory_json(data), label)
        raise TrajCrafterError(
            f"{label}: JSON must be a nerfstudio camera_path.json (with 'camera_path') or a saved "
            f"TrajectoryCrafter trajectory.")
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    if any(len(r) == 19 for r in rows):
        path = load_realestate10k(text, height, width, translation_scale=translation_scale)
        return CameraFile("path", path, label)
    check_txt_keys(*parse_trajectory_txt(text, label=label), label=label)  # with the file's name in messages
    return CameraFile("official_txt", text, label)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _relative(world_to_cam: np.ndarray, reference: Optional[int], translation_scale: float, label: str) -> torch.Tensor:
    """float32 [M, 4, 4] source→target from float64 world-to-camera matrices."""
    m = world_to_cam.shape[0]
    if reference is None:
        T = world_to_cam.copy()
    else:
        try:
            ref = int(reference)
        except (TypeError, ValueError):
            raise TrajCrafterError(f"reference must be a camera index or None, got {reference!r}.")
        if ref != reference or not -m <= ref < m:
            raise TrajCrafterError(f"{label}: reference camera {reference} is out of range for {m} cameras.")
        T = world_to_cam @ np.linalg.inv(world_to_cam[ref])
    scale = float(translation_scale)
    if not math.isfinite(scale) or scale <= 0:
        raise TrajCrafterError(f"translation_scale must be finite and > 0, got {translation_scale}.")
    T[:, :3, 3] *= scale
    if not np.isfinite(T).all():
        raise TrajCrafterError(f"{label}: camera poses are not invertible or contain NaN/inf.")
    return torch.from_numpy(T).float()


def _check_rotations(R: np.ndarray, label: str) -> None:
    err = np.abs(R @ np.swapaxes(R, -1, -2) - np.eye(3)).max(axis=(-1, -2))
    det = np.linalg.det(R)
    bad = np.nonzero((err > 1e-3) | (det < 0))[0]
    if bad.size:
        raise TrajCrafterError(
            f"{label}: camera {int(bad[0])} does not have a rotation matrix (orthonormal, det +1); "
            f"scaled or mirrored cameras are not supported."
        )


def _write(text: str, path) -> str:
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def _num(v: float) -> str:
    return repr(float(v))


# --------------------------------------------------------------------------------------------
# RealEstate10K / CameraCtrl
# --------------------------------------------------------------------------------------------


def load_realestate10k(
    path_or_text,
    height: int,
    width: int,
    reference: Optional[int] = 0,
    translation_scale: float = 1.0,
) -> CameraPath:
    """Read a RealEstate10K / CameraCtrl pose txt (see module docstring) as a :class:`CameraPath`.

    ``height``, ``width``: the pixel size the normalised intrinsics are expanded to. Timestamps
    (microseconds in the file) become seconds.
    """
    height, width = _check_size(height, width)
    text, label = _read_text(path_or_text, "RealEstate10K pose")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    url = ""
    rows = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            values = None
        if values is None or len(values) != 19:
            if number == 1 and not rows:
                url = line  # the URL line
                continue
            raise TrajCrafterError(
                f"{label}, line {number}: expected 19 numbers (timestamp fx fy cx cy k1 k2 and a 3x4 "
                f"world-to-camera matrix), got {len(tokens)} field(s): {line[:80]!r}."
            )
        rows.append(values)
    if len(rows) < 2:
        raise TrajCrafterError(f"{label}: a camera path needs at least 2 cameras, found {len(rows)}.")
    data = np.array(rows, dtype=np.float64)
    if not np.isfinite(data).all():
        raise TrajCrafterError(f"{label}: contains NaN/inf values.")
    w2c = np.tile(np.eye(4), (len(rows), 1, 1))
    w2c[:, :3, :4] = data[:, 7:19].reshape(-1, 3, 4)
    _check_rotations(w2c[:, :3, :3], label)
    K = np.tile(np.eye(3), (len(rows), 1, 1))
    K[:, 0, 0], K[:, 1, 1] = data[:, 1] * width, data[:, 2] * height
    K[:, 0, 2], K[:, 1, 2] = data[:, 3] * width, data[:, 4] * height
    return CameraPath(
        transforms=_relative(w2c, reference, translation_scale, label),
        K=as_intrinsics(torch.from_numpy(K), f"{label} intrinsics").contiguous(),
        height=height,
        width=width,
        timestamps=torch.from_numpy(data[:, 0] * 1e-6),
        url=url,
    )


def save_realestate10k(
    path: Union[str, os.PathLike, None],
    transforms: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    url: str = "",
    fps: float = 30.0,
) -> str:
    """Write transforms (source camera = world) + intrinsics as RealEstate10K txt; returns the text.

    ``transforms``: [M, 4, 4] source→target (e.g. ``Trajectory.transforms``), written as each
    camera's world-to-camera matrix. ``K``: [3, 3] or [M, 3, 3] in pixels at ``(height, width)``
    (e.g. ``Trajectory.K_dst``). Timestamps: ``i / fps`` seconds, in microseconds. ``path=None``
    only returns the text. Read back with ``load_realestate10k(..., reference=None)`` for the
    exact transforms (``reference=0`` re-expresses them relative to the first camera).
    """
    height, width = _check_size(height, width)
    T = torch.as_tensor(transforms).double()
    if T.ndim != 3 or tuple(T.shape[1:]) != (4, 4):
        raise TrajCrafterError(f"transforms must be [M, 4, 4], got {list(T.shape)}.")
    K = as_intrinsics(K, "K", count=T.shape[0]).double()
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise TrajCrafterError(f"fps must be > 0, got {fps}.")
    out = [url.strip() or "https://www.youtube.com/watch?v=unknown"]
    for i in range(T.shape[0]):
        k = K[i]
        head = [round(i * 1e6 / fps), k[0, 0] / width, k[1, 1] / height, k[0, 2] / width, k[1, 2] / height, 0.0, 0.0]
        pose = T[i, :3, :4].reshape(-1).tolist()
        out.append(" ".join([str(head[0])] + [_num(v) for v in head[1:]] + [_num(v) for v in pose]))
    return _write("\n".join(out) + "\n", path)


# --------------------------------------------------------------------------------------------
# nerfstudio camera_path.json
# --------------------------------------------------------------------------------------------


def _read_json(path_or_data, what: str):
    if isinstance(path_or_data, dict):
        return path_or_data, what
    if isinstance(path_or_data, str) and path_or_data.lstrip().startswith("{"):
        text, label = path_or_data, f"{what} text"
    else:
        text, label = _read_text(path_or_data, what)
    try:
        return json.loads(text), label
    except json.JSONDecodeError as e:
        raise TrajCrafterError(f"{label} is not valid JSON: {e}.")


def _positive_int(data: dict, key: str, label: str) -> int:
    v = data.get(key)
    if not isinstance(v, (int, float)) or int(v) != v or v < 2:
        raise TrajCrafterError(f"{label}: '{key}' must be a whole number of pixels >= 2, got {v!r}.")
    return int(v)


def load_nerfstudio_camera_path(
    path_or_data,
    height: Optional[int] = None,
    width: Optional[int] = None,
    reference: Optional[int] = 0,
    translation_scale: float = 1.0,
) -> CameraPath:
    """Read a nerfstudio ``camera_path.json`` (path, JSON text or dict) as a :class:`CameraPath`.

    Intrinsics come from each camera's vertical ``fov`` at ``render_height`` x ``render_width``
    (square pixels, centred principal point), rescaled to ``(height, width)`` when given.
    """
    data, label = _read_json(path_or_data, "nerfstudio camera path")
    if not isinstance(data, dict) or not isinstance(data.get("camera_path"), list):
        raise TrajCrafterError(f"{label}: expected an object with a 'camera_path' list.")
    kind = str(data.get("camera_type", "perspective")).lower()
    if kind != "perspective":
        raise TrajCrafterError(f"{label}: camera_type {kind!r} is not supported; only 'perspective' cameras are.")
    rh, rw = _positive_int(data, "render_height", label), _positive_int(data, "render_width", label)
    cams = data["camera_path"]
    if len(cams) < 2:
        raise TrajCrafterError(f"{label}: a camera path needs at least 2 cameras, found {len(cams)}.")
    c2w, fovs = [], []
    for i, cam in enumerate(cams):
        try:
            m = np.array(cam["camera_to_world"], dtype=np.float64).reshape(-1)
            fov = float(cam["fov"])
        except (KeyError, TypeError, ValueError):
            raise TrajCrafterError(f"{label}: camera {i} needs 'camera_to_world' (16 numbers) and 'fov' (degrees).")
        if m.size != 16 or not np.isfinite(m).all():
            raise TrajCrafterError(f"{label}: camera {i} 'camera_to_world' must be 16 finite numbers, got {m.size}.")
        if not 0.0 < fov < 180.0:
            raise TrajCrafterError(f"{label}: camera {i} fov must be in (0, 180) degrees, got {fov}.")
        c2w.append(m.reshape(4, 4))
        fovs.append(fov)
    c2w_cv = np.stack(c2w) @ _GL_TO_CV
    c2w_cv[:, 3] = (0.0, 0.0, 0.0, 1.0)
    _check_rotations(c2w_cv[:, :3, :3], label)
    w2c = np.linalg.inv(c2w_cv)
    f = 0.5 * rh / np.tan(np.radians(np.array(fovs)) / 2.0)
    K = np.tile(np.eye(3), (len(cams), 1, 1))
    K[:, 0, 0] = K[:, 1, 1] = f
    K[:, 0, 2], K[:, 1, 2] = rw / 2.0, rh / 2.0
    path = CameraPath(
        transforms=_relative(w2c, reference, translation_scale, label),
        K=torch.from_numpy(K).float(),
        height=rh,
        width=rw,
    )
    if height is not None or width is not None:
        if height is None or width is None:
            raise TrajCrafterError("give both height and width (or neither).")
        path = path.rescaled(height, width)
    return path


def save_nerfstudio_camera_path(
    path: Union[str, os.PathLike, None],
    transforms: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    fps: float = 30.0,
) -> dict:
    """Write transforms (source camera = world) as a nerfstudio camera_path.json; returns the dict.

    nerfstudio stores a vertical field of view only: ``K`` ([3, 3] or [M, 3, 3] at
    ``(height, width)``) must have square pixels and a centred principal point.
    """
    height, width = _check_size(height, width)
    T = torch.as_tensor(transforms).double().numpy()
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise TrajCrafterError(f"transforms must be [M, 4, 4], got {list(T.shape)}.")
    K = as_intrinsics(K, "K", count=T.shape[0]).double().numpy()
    off_centre = np.abs(K[:, 0, 2] - width / 2).max() > 1e-3 or np.abs(K[:, 1, 2] - height / 2).max() > 1e-3
    if np.abs(K[:, 0, 0] - K[:, 1, 1]).max() > 1e-4 * K[:, 1, 1].max() or off_centre:
        raise TrajCrafterError(
            "nerfstudio camera paths need square pixels (fx = fy) and a centred principal point; "
            "export this path as RealEstate10K txt or trajectory JSON instead."
        )
    c2w_gl = np.linalg.inv(T) @ _GL_TO_CV
    fov = np.degrees(2.0 * np.arctan(0.5 * height / K[:, 1, 1]))
    cams = [{"camera_to_world": c2w_gl[i].reshape(-1).tolist(), "fov": float(fov[i]), "aspect": width / height} for i in range(len(T))]
    data = {
        "camera_type": "perspective",
        "render_height": height,
        "render_width": width,
        "fps": float(fps),
        "seconds": len(T) / float(fps),
        "camera_path": cams,
    }
    _write(json.dumps(data, indent=1), path)
    return data


# --------------------------------------------------------------------------------------------
# Trajectory JSON
# --------------------------------------------------------------------------------------------


def save_trajectory_json(trajectory: Trajectory, path: Union[str, os.PathLike, None] = None) -> str:
    """Write a :class:`Trajectory` as JSON (exact float32 values); returns the text."""
    if not isinstance(trajectory, Trajectory):
        raise TrajCrafterError(f"expected a Trajectory, got {type(trajectory).__name__}.")
    t = trajectory.to("cpu")
    frames = [
        {
            "source_index": int(t.source_index[i]),
            "transform": t.transforms[i].tolist(),
            "K_src": t.K_src[i].tolist(),
            "K_dst": t.K_dst[i].tolist(),
        }
        for i in range(len(t))
    ]
    data = {
        "format": TRAJECTORY_JSON_FORMAT,
        "version": 1,
        "convention": (
            "OpenCV camera axes (x right, y down, z forward); 'transform' maps source-camera points "
            "to target-camera points (4x4, row-major); K in pixels at height x width, pixel centres "
            "at integer coordinates."
        ),
        "mode": t.mode,
        "reference_from": t.reference_from,
        "trim_start": t.trim_start,
        **({"radius": float(t.radius)} if t.radius is not None else {}),
        "height": t.height,
        "width": t.width,
        "frames": frames,
    }
    return _write(json.dumps(data, indent=1), path)


def load_trajectory_json(path_or_data) -> Trajectory:
    """Read a trajectory JSON (ours, or a hand-written one: ``height``, ``width`` and ``frames`` of
    ``{"transform": 4x4, "K": 3x3}``; ``source_index`` defaults to the frame number and
    ``K_src`` / ``K_dst`` to ``K``)."""
    data, label = _read_json(path_or_data, "trajectory JSON")
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list) or not data["frames"]:
        raise TrajCrafterError(f"{label}: expected an object with a non-empty 'frames' list.")
    h, w = _positive_int(data, "height", label), _positive_int(data, "width", label)
    idx, T, Ks, Kd = [], [], [], []
    for i, fr in enumerate(data["frames"]):
        try:
            K = fr.get("K")
            idx.append(int(fr.get("source_index", i)))
            T.append(np.array(fr["transform"], dtype=np.float64).reshape(4, 4))
            Ks.append(np.array(fr.get("K_src", K), dtype=np.float64).reshape(3, 3))
            Kd.append(np.array(fr.get("K_dst", K), dtype=np.float64).reshape(3, 3))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise TrajCrafterError(
                f"{label}: frame {i} needs 'transform' (4x4 numbers) and 'K' or 'K_src'/'K_dst' (3x3)."
            )
    return Trajectory(
        source_index=torch.tensor(idx, dtype=torch.long),
        transforms=torch.from_numpy(np.stack(T)).float(),
        K_src=torch.from_numpy(np.stack(Ks)).float(),
        K_dst=torch.from_numpy(np.stack(Kd)).float(),
        height=h,
        width=w,
        mode=str(data.get("mode", "custom")),
        reference_from=str(data.get("reference_from", "start")),
        trim_start=int(data.get("trim_start", 0)),
        radius=float(data["radius"]) if data.get("radius") is not None else None,
    )


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------


def resample_path(transforms: torch.Tensor, num_frames: int, K: Optional[torch.Tensor] = None):
    """Resample a camera path to ``num_frames`` cameras evenly spaced along its index.

    Rotations are slerped and camera centres (in source coordinates) interpolated linearly
    between neighbouring cameras, so the original cameras are kept where the new spacing hits
    them (always the first and last). Intrinsics ``K`` ([M, 3, 3]) are interpolated linearly.
    Returns ``(transforms [num_frames, 4, 4], K or None)`` in float32.
    """
    from scipy.spatial.transform import Rotation, Slerp

    T = torch.as_tensor(transforms).double().numpy()
    if T.ndim != 3 or T.shape[1:] != (4, 4) or T.shape[0] < 2:
        raise TrajCrafterError(f"transforms must be [M, 4, 4] with M >= 2, got {list(T.shape)}.")
    n = int(num_frames)
    if n != num_frames or n < 2:
        raise TrajCrafterError(f"num_frames must be an integer >= 2, got {num_frames}.")
    m = T.shape[0]
    R = T[:, :3, :3]
    _check_rotations(R, "camera path")
    centres = -np.einsum("nji,nj->ni", R, T[:, :3, 3])  # C = -R^T t
    where = np.linspace(0.0, m - 1.0, n)
    R_new = Slerp(np.arange(m), Rotation.from_matrix(R))(where).as_matrix()
    C_new = np.stack([np.interp(where, np.arange(m), centres[:, k]) for k in range(3)], axis=1)
    out = np.tile(np.eye(4), (n, 1, 1))
    out[:, :3, :3] = R_new
    out[:, :3, 3] = -np.einsum("nij,nj->ni", R_new, C_new)
    K_new = None
    if K is not None:
        Kn = as_intrinsics(K, "K", count=m).double().numpy()
        K_new = torch.from_numpy(
            np.stack([np.interp(where, np.arange(m), Kn[:, i, j]) for i in range(3) for j in range(3)], axis=1).reshape(n, 3, 3)
        ).float()
    return torch.from_numpy(out).float(), K_new
