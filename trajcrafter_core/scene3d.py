"""The scene in 3-D: the point cloud, the source camera, the target cameras and their path as a
``.glb`` file for ComfyUI's Preview 3D / Load 3D (or any glTF viewer).

Contents (:func:`export_scene`): one frame's point cloud, subsampled to at most ``max_points``
points in its own colours; the source camera's frustum (white); up to ``max_cameras`` target
frusta from the first output frame (cyan) to the last (orange); the path of all camera centres
(grey). Frusta reach ``0.15 ×`` the median depth.

Coordinates: the file is in the viewer's axes (:data:`trajcrafter_core.conventions.OPENCV_TO_VIEWER`),
scaled and shifted by a :class:`ViewerFrame` so that ComfyUI's viewer shows it *as written*: it
scales every loaded model so its largest side is :data:`VIEWER_SIZE` (5) and moves it to stand
centred on the floor (``SceneModelManager.setupModel`` of the ComfyUI frontend); a file that is
already 5 units across, centred in x and z and resting on y = 0 is left as it is. So a Load 3D
camera over the file is in the file's coordinates, and :class:`ViewerFrame` (stored in the
file's ``asset.extras.trajcrafter``) takes it back to the source camera's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .conventions import opencv_to_viewer
from .errors import TrajCrafterError
from .glb import Primitive, read_glb, srgb_to_linear, write_glb

__all__ = [
    "VIEWER_SIZE",
    "DEFAULT_MAX_POINTS",
    "SOURCE_COLOUR",
    "START_COLOUR",
    "END_COLOUR",
    "ViewerFrame",
    "SceneExport",
    "camera_frusta",
    "pick_cameras",
    "export_scene",
    "read_viewer_frame",
]

#: Largest side ComfyUI's 3-D viewer scales a loaded model to.
VIEWER_SIZE = 5.0
DEFAULT_MAX_POINTS = 100_000
SOURCE_COLOUR = (1.0, 1.0, 1.0)
START_COLOUR = (40 / 255, 200 / 255, 1.0)
END_COLOUR = (1.0, 140 / 255, 30 / 255)
PATH_COLOUR = (0.75, 0.75, 0.75)
_EXTRAS_KEY = "trajcrafter"


@dataclass(frozen=True)
class ViewerFrame:
    """Where the source camera's coordinates sit in a scene file: ``v = scale · flip(p) + offset``
    for a point ``p`` (OpenCV axes, depth units) and ``v`` in the file's (viewer) axes."""

    scale: float
    offset: Tuple[float, float, float]

    def to_viewer(self, points) -> np.ndarray:
        return self.scale * opencv_to_viewer(np.asarray(points, dtype=np.float64)) + np.asarray(self.offset)

    def to_source(self, points) -> np.ndarray:
        return opencv_to_viewer((np.asarray(points, dtype=np.float64) - np.asarray(self.offset)) / self.scale)

    def as_dict(self) -> dict:
        return {"scale": float(self.scale), "offset": [float(v) for v in self.offset]}

    @classmethod
    def from_dict(cls, value: dict) -> "ViewerFrame":
        try:
            scale, offset = float(value["scale"]), tuple(float(v) for v in value["offset"])
        except (KeyError, TypeError, ValueError):
            raise TrajCrafterError(f"a viewer frame needs scale and offset (x, y, z), got {value!r}.") from None
        if not (math.isfinite(scale) and scale > 0 and len(offset) == 3 and all(map(math.isfinite, offset))):
            raise TrajCrafterError(f"a viewer frame needs a scale > 0 and a finite offset, got {value!r}.")
        return cls(scale, offset)

    @classmethod
    def fitting(cls, points_viewer_axes: np.ndarray) -> "ViewerFrame":
        """The frame that puts ``points`` (already in viewer axes, unscaled) where ComfyUI's viewer
        would put them: largest side :data:`VIEWER_SIZE`, centred in x and z, lowest point at y = 0."""
        lo, hi = points_viewer_axes.min(0), points_viewer_axes.max(0)
        scale = VIEWER_SIZE / max(float((hi - lo).max()), 1e-9)
        centre = (lo + hi) / 2.0
        return cls(scale, (-scale * float(centre[0]), -scale * float(lo[1]), -scale * float(centre[2])))


@dataclass
class SceneExport:
    """A written scene: ``path``, its :class:`ViewerFrame`, the point count, the source frame the
    points come from and the target cameras drawn."""

    path: Path
    frame: ViewerFrame
    num_points: int
    source_frame: int
    num_cameras: int


def camera_frusta(transforms: np.ndarray, K: np.ndarray, height: int, width: int, depth: float) -> np.ndarray:
    """Frustum points ``[N, 5, 3]`` (centre, then the 4 image corners at ``depth``) in source coordinates.

    ``transforms`` ``[N, 4, 4]`` map source-camera → target-camera coordinates, so camera ``i``
    sits at ``inv(T_i) @ 0`` and its pixel ``(u, v)`` at depth ``d`` is ``inv(T_i) @ d K_i^-1 (u, v, 1)``.
    """
    inv_T = np.linalg.inv(np.asarray(transforms, dtype=np.float64))
    corners = np.array([[-0.5, -0.5, 1], [width - 0.5, -0.5, 1], [width - 0.5, height - 0.5, 1], [-0.5, height - 0.5, 1]])
    rays = np.einsum("nij,cj->nci", np.linalg.inv(np.asarray(K, dtype=np.float64)), corners) * depth  # [N, 4, 3]
    local = np.concatenate([np.zeros((len(inv_T), 1, 3)), rays], axis=1)  # [N, 5, 3]
    homo = np.concatenate([local, np.ones(local.shape[:2] + (1,))], axis=-1)
    return np.einsum("nij,ncj->nci", inv_T, homo)[..., :3]


def pick_cameras(count: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` evenly spread cameras out of ``count``, first and last included."""
    return np.unique(np.round(np.linspace(0, count - 1, max(1, min(limit, count)))).astype(int))


def _frustum_lines(frustum: np.ndarray) -> np.ndarray:
    """The 8 edges of a frustum ``[5, 3]`` as vertex pairs ``[16, 3]``."""
    c, corners = frustum[0], frustum[1:]
    pairs = [(c, p) for p in corners] + [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    return np.array([v for pair in pairs for v in pair])


def export_scene(path: Union[str, Path], cloud, trajectory=None, *, frame: Optional[int] = None,
                 max_points: int = DEFAULT_MAX_POINTS, max_cameras: int = 25) -> SceneExport:
    """Write the scene of ``cloud`` (a :class:`~trajcrafter_core.pointcloud.PointCloud`) and, when
    given, ``trajectory``'s cameras (built for that cloud) to the ``.glb`` ``path``.

    ``frame``: the source frame whose points are shown (default: the trajectory's first source
    frame, else 0). The points are the frame's pixels on a regular grid, thinned to at most
    ``max_points``.
    """
    if int(max_points) < 1 or int(max_cameras) < 1:
        raise TrajCrafterError(f"max_points and max_cameras must be >= 1, got {max_points} and {max_cameras}.")
    T = cloud.num_frames
    index = (int(trajectory.source_index[0]) if trajectory is not None else 0) if frame is None else int(frame)
    if not -T <= index < T:
        raise TrajCrafterError(f"frame {index} is outside the clip of {T} frames; use 0..{T - 1}.")
    index %= T
    H, W = cloud.size
    step = max(1, int(math.ceil(math.sqrt(H * W / float(max_points)))))
    while -(-H // step) * -(-W // step) > max_points:
        step += 1
    points = cloud.points(index)[0, ::step, ::step].reshape(-1, 3).double().cpu().numpy()
    colours = cloud.colors(index)[0, ::step, ::step].reshape(-1, 3).double().cpu().numpy()
    keep = np.isfinite(points).all(1)
    points, colours = points[keep], colours[keep]
    if not len(points):
        raise TrajCrafterError("the point cloud has no finite points to export.")
    depth = 0.15 * float(np.median(points[:, 2]))
    K_src = cloud.K[index].double().cpu().numpy()
    lines: List[Tuple[np.ndarray, np.ndarray]] = []
    source = camera_frusta(np.eye(4)[None], K_src[None], H, W, depth)[0]
    lines.append((_frustum_lines(source), np.tile(SOURCE_COLOUR, (16, 1))))
    cameras = 0
    if trajectory is not None:
        traj = trajectory.rescaled(H, W) if trajectory.size != (H, W) else trajectory
        T_all, K_all = traj.transforms.double().cpu().numpy(), traj.K_dst.double().cpu().numpy()
        pick = pick_cameras(len(T_all), int(max_cameras))
        frusta = camera_frusta(T_all[pick], K_all[pick], H, W, depth)
        for k, f in zip(pick, frusta):
            t = k / max(len(T_all) - 1, 1)
            colour = (1 - t) * np.asarray(START_COLOUR) + t * np.asarray(END_COLOUR)
            lines.append((_frustum_lines(f), np.tile(colour, (16, 1))))
        cameras = len(pick)
        centres = np.linalg.inv(T_all)[:, :3, 3][pick_cameras(len(T_all), 256)]
        if len(centres) > 1:
            segments = np.stack([centres[:-1], centres[1:]], axis=1).reshape(-1, 3)
            lines.append((segments, np.tile(PATH_COLOUR, (len(segments), 1))))
    line_xyz = np.concatenate([l for l, _ in lines])
    line_rgb = np.concatenate([c for _, c in lines])
    viewer_points, viewer_lines = opencv_to_viewer(points), opencv_to_viewer(line_xyz)
    frame_ = ViewerFrame.fitting(np.concatenate([viewer_points, viewer_lines]))
    to_file = lambda v: frame_.scale * v + np.asarray(frame_.offset)  # noqa: E731
    extras = {_EXTRAS_KEY: {
        "viewer_frame": frame_.as_dict(),
        "source_frame": index,
        "radius": None if trajectory is None or trajectory.radius is None else float(trajectory.radius),
        "axes": "viewer = scale * (x, -y, -z)_opencv + offset; OpenCV source-camera axes, depth units",
    }}
    written = write_glb(path, [
        Primitive("POINTS", to_file(viewer_points), srgb_to_linear(colours), name="point cloud"),
        Primitive("LINES", to_file(viewer_lines), srgb_to_linear(line_rgb), name="cameras"),
    ], extras=extras)
    return SceneExport(written, frame_, int(len(points)), index, cameras)


def read_viewer_frame(path: Union[str, Path]) -> ViewerFrame:
    """The :class:`ViewerFrame` stored in a scene file written by :func:`export_scene`."""
    doc, _ = read_glb(path)
    info = ((doc.get("asset") or {}).get("extras") or {}).get(_EXTRAS_KEY)
    if not isinstance(info, dict) or "viewer_frame" not in info:
        raise TrajCrafterError(
            f"{Path(path).name} was not written by TrajectoryCrafter's scene export (no viewer frame in it); load the "
            f".glb that Export Scene 3D wrote for this point cloud.")
    return ViewerFrame.from_dict(info["viewer_frame"])
