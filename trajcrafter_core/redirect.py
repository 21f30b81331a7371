"""Redirect a clip's camera: the one path from a user's choices to the sampler's inputs and on to videos.

Every front-end goes through these functions (the ComfyUI nodes, the CLI, training's data
preparation), so the same choices give the same conditions everywhere::

    conditions = prepare_conditions(frames, depths, target_pose=(0, -30, 0.3, 0, 0))
    video = generate(pipe, conditions, prompt="...", seed=43)

The official flow (``demo.py``), reproduced by ``size_policy="official"``:

1. frames ``[T, H, W, 3]`` and depth ``[T, H, W]`` at the read size (576x1024 in the official
   demo); the orbit radius is the depth at the centre pixel of frame 0 (× radius scale, capped
   at 5); the camera path and the mode's schedule are built at that size
   (:func:`build_trajectory`);
2. the point cloud is rendered at that same size (official splat, holes cleaned as ``--mask``);
3. frames and renders are resized to the model's ``sample_size`` (384x672) bilinearly with
   ``align_corners=False`` and the hole mask with ``nearest``; the reference frames are the first
   10 resized frames (the last 10 for bullet time) (:func:`render_conditions`);
4. the sampler runs with a generator seeded with ``seed`` (:func:`generate`).

Beyond the official: :func:`generate` takes clips of any length (overlapping windows that
continue each other, :mod:`trajcrafter_core.windows`) and lists of conditions — several camera
paths of a clip sharing one text and reference encoding and a transformer batch
(:mod:`trajcrafter_core.sampling`), prepared together by :func:`prepare_conditions_many`.

``size_policy="keep_aspect"`` does the same at an aspect-preserving sample size (see
:mod:`trajcrafter_core.sizing`): for 16:9 clips that is the official 384x672, and it never
distorts a portrait or square clip. Frames already at the sample size are rendered at that size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from . import camera as cam
from . import camera_moves, trajectory_io
from .conventions import as_depth, as_frames, as_intrinsics
from .errors import TrajCrafterError
from .official import (DEFAULT_GUIDANCE, DEFAULT_STEPS, NOISE_AUG_STRENGTH, OFFICIAL_DIRECT_CUT, RECAMMASTER_PRESETS,
                       REFERENCE_FRAMES)
from .progress import ProgressFn
from .sampling import SampleJob, SharedSampler
from .sizing import SIZE_POLICIES, sample_size_for
from .specs import CameraSpec
from .windows import DEFAULT_WINDOW_FRAMES, check_window, generate_windows, window_schedule

__all__ = [
    "Conditions",
    "camera_spec",
    "source_intrinsics",
    "build_trajectory",
    "render_conditions",
    "render_conditions_many",
    "prepare_conditions",
    "prepare_conditions_many",
    "conditions_from_images",
    "resize_video",
    "resize_mask",
    "generate",
    "OFFICIAL_REFERENCE_FRAMES",
]

logger = logging.getLogger(__name__)

#: Source frames the sampler cross-attends to in the official demo (``frames[:, :, :10]``).
OFFICIAL_REFERENCE_FRAMES = REFERENCE_FRAMES


@dataclass
class Conditions:
    """The sampler's inputs for one camera path, at the model's size ``(h, w)``.

    - ``source``: float32 ``[T, h, w, 3]`` 0..1, the clip's frames;
    - ``render``: float32 ``[T, h, w, 3]`` 0..1, the point-cloud render of each output frame
      (holes 0);
    - ``mask``: float32 ``[T, h, w]``, 1 = hole (to generate), 0 = covered;
    - ``reference``: float32 ``[R, h, w, 3]``, the source frames the model cross-attends to (the
      first ``R`` frames, the last for bullet time);
    - ``trajectory``: the cameras, intrinsics at ``(h, w)``; ``intrinsics``: the source camera's
      ``K`` float32 ``[3, 3]`` at ``(h, w)`` (both None for renders made elsewhere,
      :func:`conditions_from_images`);
    - ``render_size``: ``(H, W)`` the point cloud was rendered at before resizing;
      ``size_policy``: how ``(h, w)`` was chosen; ``notes``: what was decided on the way;
      ``reference_from``: which end of the source the reference frames come from (``"start"``,
      ``"end"`` for bullet time; windows of a long clip take theirs the same way).
    """

    source: torch.Tensor
    render: torch.Tensor
    mask: torch.Tensor
    reference: torch.Tensor
    trajectory: Optional[cam.Trajectory]
    intrinsics: Optional[torch.Tensor]
    render_size: Tuple[int, int]
    size_policy: str
    notes: List[str] = field(default_factory=list)
    reference_from: str = "start"

    @property
    def num_frames(self) -> int:
        return int(self.render.shape[0])

    @property
    def size(self) -> Tuple[int, int]:
        """``(h, w)``, the model's size."""
        return int(self.render.shape[1]), int(self.render.shape[2])

    @property
    def mode(self) -> str:
        """The trajectory's schedule (``"external"`` for renders made elsewhere)."""
        return self.trajectory.mode if self.trajectory is not None else "external"

    def kept(self, video: torch.Tensor, source: bool = False) -> torch.Tensor:
        """The frames a saved result keeps, as the official demo saves them: all of them, except
        that direct mode drops its camera move (outputs ``cut:``; for ``source=True`` the source
        frames those outputs show, ``[:T - cut]``)."""
        start = self.trajectory.trim_start if self.trajectory is not None else 0
        return video[: video.shape[0] - start] if source else video[start:]

    def to(self, device) -> "Conditions":
        """A copy with every tensor on ``device``."""
        move = lambda x: None if x is None else x.to(device)  # noqa: E731
        return replace(self, source=self.source.to(device), render=self.render.to(device),
                       mask=self.mask.to(device), reference=self.reference.to(device),
                       trajectory=move(self.trajectory), intrinsics=move(self.intrinsics))


# ------------------------------------------------------------------------------------ cameras


def camera_spec(camera: Optional[CameraSpec] = None, *, target_pose=None, preset=None, amount: float = 1.0,
                traj_txt=None, trajectory_file=None, mode: str = "gradual", direct_cut: int = OFFICIAL_DIRECT_CUT,
                anchor: int = 0, radius_scale: float = 1.0, focal_end=None, translation_scale: float = 1.0,
                target_camera=None, easing: str = "linear", zoom: float = 1.0) -> CameraSpec:
    """A :class:`CameraSpec` from keyword arguments (or ``camera`` itself, with no other camera
    argument). ``traj_txt`` and ``trajectory_file`` are the same source (any trajectory file)."""
    if camera is not None:
        if not isinstance(camera, CameraSpec):
            raise TrajCrafterError(f"camera must be a CameraSpec, got {type(camera).__name__}.")
        others = dict(target_pose=target_pose, preset=preset, traj_txt=traj_txt, trajectory_file=trajectory_file,
                      focal_end=focal_end, target_camera=target_camera)
        extra = [k for k, v in others.items() if v is not None]
        if extra or (mode, direct_cut, anchor, radius_scale, amount, translation_scale, easing, zoom) != (
                "gradual", OFFICIAL_DIRECT_CUT, 0, 1.0, 1.0, 1.0, "linear", 1.0):
            raise TrajCrafterError("give the camera either as a CameraSpec or as keyword arguments, not both.")
        return camera
    if traj_txt is not None and trajectory_file is not None:
        raise TrajCrafterError("give traj_txt or trajectory_file, not both (they are the same input).")
    return CameraSpec(target_pose=target_pose, preset=preset, amount=amount,
                      file=traj_txt if traj_txt is not None else trajectory_file, mode=mode, direct_cut=direct_cut,
                      anchor=anchor, radius_scale=radius_scale, focal_end=focal_end,
                      translation_scale=translation_scale, target_camera=target_camera, easing=easing, zoom=zoom)


def source_intrinsics(height: int, width: int, K=None, fov: Optional[float] = None) -> torch.Tensor:
    """``K`` float32 ``[3, 3]`` of the source frames at ``(height, width)``: the given ``K``, a
    horizontal field of view ``fov`` in degrees, or the official camera (focal 500 px at 1024 px
    width)."""
    if K is not None and fov is not None:
        raise TrajCrafterError("give intrinsics K or a field of view, not both.")
    if K is None:
        return cam.intrinsics(width, height, fov_degrees=fov)
    K = as_intrinsics(K, "K")
    if K.ndim == 3:
        if K.shape[0] < 1 or not bool((K == K[:1]).all()):
            raise TrajCrafterError("K must be one [3, 3] matrix for the whole clip (a fixed source camera).")
        K = K[0]
    return K.float().cpu()


def _anchor(anchor: int, length: int) -> int:
    if not -length <= anchor < length:
        raise TrajCrafterError(
            f"anchor frame {anchor} is outside the camera path of {length} cameras; use 0..{length - 1} "
            f"(negative counts from the end).")
    return anchor % length


def _file_path(camera: CameraSpec, file: trajectory_io.CameraFile, n: int) -> torch.Tensor:
    """Transforms ``[n, 4, 4]`` of an imported path, relative to its camera ``anchor``."""
    path = file.value if len(file.value) == n else file.value.resampled(n)
    T = path.transforms.double()
    a = _anchor(camera.anchor, n)
    return (T @ torch.linalg.inv(T[a : a + 1])).float() if a else path.transforms


def build_trajectory(camera: CameraSpec, depths, K=None) -> cam.Trajectory:
    """The :class:`~trajcrafter_core.camera.Trajectory` a camera spec describes for a clip.

    ``depths`` ``[T, H, W]`` (> 0; frame 0 sets the orbit radius), ``K`` the source intrinsics
    ``[3, 3]`` at ``(H, W)`` (default the official camera). The trajectory is at ``(H, W)`` and
    carries the radius. Official semantics throughout (see :mod:`trajcrafter_core.camera`):
    target pose and trajectory txt ramps, ``anchor_idx``, direct ``cut``, bullet time, dolly zoom
    (focal ramp to ``camera.focal_end``; default keeps the orbit centre's size: ``f · (1 - r)``
    for a target pose or preset — the official 500 → 250 px for ``r = 0.5`` — and the path's own
    end for other paths). Beyond them: ReCamMaster's presets
    (:func:`trajcrafter_core.camera_moves.recammaster_path`), a ``target_camera`` reached from the
    source view turning about the orbit centre (:func:`~trajcrafter_core.camera_moves.target_camera_path`),
    eased ramps and a ``zoom`` focal ramp.
    """
    if not isinstance(camera, CameraSpec):
        raise TrajCrafterError(f"camera must be a CameraSpec, got {type(camera).__name__}.")
    depths = as_depth(depths, "depths")
    n_src, H, W = (int(s) for s in depths.shape)
    if n_src < 2:
        raise TrajCrafterError(f"a camera path needs a clip of at least 2 frames; the clip has {n_src}.")
    K = source_intrinsics(H, W, K)
    radius = cam.orbit_radius(depths[0].cpu(), camera.radius_scale)
    mode = camera.mode
    cut = camera.direct_cut if mode == "direct" else None
    if cut is not None and cut > n_src:
        raise TrajCrafterError(
            f"direct cut {cut} is longer than the clip ({n_src} frames); use a direct cut <= {n_src}.")
    length = cut if cut is not None else n_src
    _anchor(camera.anchor, length)
    focal_end = camera.focal_end
    if camera.source == "file":
        file = trajectory_io.read_camera_file(camera.file, H, W, camera.translation_scale)
        if file.kind == "trajectory":
            return _saved_trajectory(file, n_src, H, W, radius)
        if file.kind == "path":
            if mode == "dolly_zoom":
                raise TrajCrafterError(f"{file.label} carries its own intrinsics; use mode gradual for it, not dolly_zoom.")
            path = _file_path(camera, file, length)
            K_dst = file.value.K if len(file.value) == length else file.value.resampled(length).K
            traj = cam.make_trajectory(mode, path, n_src, H, W, K=K, cut=cut, K_dst=K_dst)
            return replace(traj, radius=radius)
        text = file.value
        path_of = lambda n: cam.txt_trajectory(text, n, radius, anchor_index=camera.anchor)  # noqa: E731
        if mode == "dolly_zoom" and focal_end is None:
            focal_end = cam.dolly_zoom_focal_end_of(path_of(length), radius, float(K[0, 0]))
    elif camera.source == "target_camera":
        target = torch.tensor(camera.target_camera, dtype=torch.float64).reshape(4, 4)
        path_of = lambda n: camera_moves.target_camera_path(  # noqa: E731
            target, n, pivot=(0.0, 0.0, radius), anchor_index=camera.anchor, easing=camera.easing)
    elif camera.preset is not None and camera.preset in RECAMMASTER_PRESETS:
        path_of = lambda n: cam.preset_trajectory(camera.preset, n, radius, camera.amount,  # noqa: E731
                                                  anchor_index=camera.anchor, easing=camera.easing)
    else:
        pose = (cam.TargetPose(*camera.target_pose) if camera.target_pose is not None
                else cam.preset_pose(camera.preset, radius, camera.amount))
        path_of = lambda n: cam.target_pose_trajectory(*pose, num_frames=n, radius=radius,  # noqa: E731
                                                       anchor_index=camera.anchor, easing=camera.easing)
        if mode == "dolly_zoom" and focal_end is None:
            focal_end = cam.dolly_zoom_focal_end(float(K[0, 0]), pose.r)
    if mode == "dolly_zoom" and focal_end is None:
        focal_end = cam.dolly_zoom_focal_end_of(path_of(length), radius, float(K[0, 0]))
    K_dst = _zoom_ramp(K, length, camera.zoom, camera.easing) if camera.zoom != 1.0 else None
    traj = cam.make_trajectory(mode, path_of, n_src, H, W, K=K, cut=cut, focal_end=focal_end, K_dst=K_dst)
    return replace(traj, radius=radius)


def _zoom_ramp(K: torch.Tensor, length: int, zoom: float, easing: str) -> torch.Tensor:
    """Target intrinsics ``[length, 3, 3]``: focal lengths × ``1 + (zoom - 1) · ramp`` (principal
    point kept), from the path's first camera to its last."""
    scale = torch.from_numpy(1.0 + (zoom - 1.0) * cam.ramp(length, easing)).float()
    K_dst = K.float().repeat(length, 1, 1)
    K_dst[:, 0, 0] *= scale
    K_dst[:, 1, 1] *= scale
    return K_dst


def _saved_trajectory(file: trajectory_io.CameraFile, n_src: int, H: int, W: int, radius: float) -> cam.Trajectory:
    traj = file.value
    if int(traj.source_index.max()) >= n_src:
        raise TrajCrafterError(
            f"{file.label} uses source frame {int(traj.source_index.max())} but the clip has {n_src} frames; "
            f"load the same number of frames it was made for.")
    traj = traj.rescaled(H, W) if traj.size != (H, W) else traj
    return traj if traj.radius is not None else replace(traj, radius=radius)


# ------------------------------------------------------------------------------------ resizing


def resize_video(frames: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``[T, H, W, C]`` → ``[T, h, w, C]``: bilinear, ``align_corners=False``, no antialiasing
    (the official ``F.interpolate`` of frames and renders)."""
    size = (int(size[0]), int(size[1]))
    if tuple(frames.shape[1:3]) == size:
        return frames
    out = F.interpolate(frames.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
    return out.permute(0, 2, 3, 1).contiguous()


def resize_mask(mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``[T, H, W]`` → ``[T, h, w]`` with ``nearest`` (the official resize of the masks: a pixel
    takes the value of source pixel ``floor(i * H / h)``), so the mask stays 0/1."""
    size = (int(size[0]), int(size[1]))
    if tuple(mask.shape[1:3]) == size:
        return mask
    return F.interpolate(mask[:, None], size=size, mode="nearest")[:, 0].contiguous()


# ------------------------------------------------------------------------------------ conditions


def _reference_indices(num_frames: int, count: int, reference_from: str) -> List[int]:
    from .pipeline import reference_frame_indices

    return reference_frame_indices(num_frames, count, reference_from)


def render_conditions(frames, depths, trajectory: cam.Trajectory, K=None, *, render_mode: str = "official",
                      clean_holes: bool = True, size_policy: str = "official",
                      sample_size: Optional[Sequence[int]] = None,
                      num_reference_frames: int = OFFICIAL_REFERENCE_FRAMES,
                      progress: Optional[ProgressFn] = None, device=None, **render_options) -> Conditions:
    """Render ``trajectory`` over the clip at the frames' own size and resize to the model's size.

    ``frames`` float32 ``[T, H, W, 3]`` 0..1, ``depths`` ``[T, H, W]``, ``trajectory`` built for
    them (:func:`build_trajectory`), ``K`` the source intrinsics at ``(H, W)`` (default: the
    trajectory's). ``render_mode``/``clean_holes``/``render_options``: see
    :func:`trajcrafter_core.render.render_trajectory`; ``progress(done, total)`` per rendered
    frame. The size comes from :func:`trajcrafter_core.sizing.sample_size_for`.
    """
    if not isinstance(trajectory, cam.Trajectory):
        raise TrajCrafterError(f"trajectory must be a Trajectory (build_trajectory), got {type(trajectory).__name__}.")
    return render_conditions_many(frames, depths, [trajectory], K, render_mode=render_mode, clean_holes=clean_holes,
                                  size_policy=size_policy, sample_size=sample_size,
                                  num_reference_frames=num_reference_frames, progress=progress, device=device,
                                  **render_options)[0]


def render_conditions_many(frames, depths, trajectories: Sequence[cam.Trajectory], K=None, *,
                           render_mode: str = "official", clean_holes: bool = True, size_policy: str = "official",
                           sample_size: Optional[Sequence[int]] = None,
                           num_reference_frames: int = OFFICIAL_REFERENCE_FRAMES,
                           progress: Optional[ProgressFn] = None, device=None, **render_options) -> List[Conditions]:
    """:func:`render_conditions` for several trajectories of one clip: one point cloud and one
    resize of the source frames for all (the conditions share the ``source`` tensor);
    ``progress(done, total)`` counts the frames of every trajectory. ``K`` defaults to the first
    trajectory's."""
    from .pointcloud import PointCloud
    from .render import render_trajectory

    if size_policy not in SIZE_POLICIES:
        raise TrajCrafterError(f"size_policy must be one of {', '.join(SIZE_POLICIES)}, got {size_policy!r}.")
    trajectories = list(trajectories)
    if not trajectories or not all(isinstance(t, cam.Trajectory) for t in trajectories):
        raise TrajCrafterError("trajectories must be a non-empty list of Trajectory (build_trajectory).")
    frames = as_frames(frames, "frames")
    T, H, W = (int(s) for s in frames.shape[:3])
    size = sample_size_for((H, W), size_policy, sample_size)
    K = source_intrinsics(H, W, K if K is not None else trajectories[0].rescaled(H, W).K_src[0])
    references = [_reference_indices(T, num_reference_frames, t.reference_from) for t in trajectories]
    notes = []
    if size[0] > H or size[1] > W:
        notes.append(f"the frames ({H}x{W}) are smaller than the model size {size[0]}x{size[1]}: renders are "
                     f"upsampled; read the clip larger (the official read size is 576x1024).")
    for note in notes:
        logger.info(note)
    cloud = PointCloud(frames, as_depth(depths, "depths", like=frames), K)
    source = resize_video(frames, size)
    total, done = sum(len(t) for t in trajectories), 0
    out = []
    for trajectory, reference_indices in zip(trajectories, references):
        step = None if progress is None else (lambda d, _t, base=done: progress(base + d, total))
        render, hole = render_trajectory(cloud, trajectory, mode=render_mode, clean_holes=bool(clean_holes),
                                         size=(H, W), progress=step, device=device, **render_options)
        done += len(trajectory)
        out.append(Conditions(
            source=source,
            render=resize_video(render, size),
            mask=resize_mask(hole, size),
            reference=source[reference_indices].clone(),
            trajectory=trajectory.rescaled(*size) if trajectory.size != size else trajectory,
            intrinsics=cam.rescale_intrinsics(K, (H, W), size),
            render_size=(H, W),
            size_policy=size_policy,
            notes=list(notes),
            reference_from=trajectory.reference_from,
        ))
        del render, hole
    return out


def conditions_from_images(source, render, mask, *, num_reference_frames: int = OFFICIAL_REFERENCE_FRAMES,
                           reference_from: str = "start", reference=None) -> Conditions:
    """Conditions from renders made elsewhere, used as they are (no resize): ``source``, ``render``
    ``[T, H, W, 3]`` 0..1, ``mask`` ``[T, H, W]`` (1 = hole); the reference frames are ``reference``
    ``[R, H, W, 3]`` or the first (``"start"``) / last (``"end"``) ``num_reference_frames`` of the
    source. The sampler pads sizes that are not multiples of 16 and trims back."""
    from .conventions import as_mask

    source, render, mask = as_frames(source, "source"), as_frames(render, "render"), as_mask(mask, "mask")
    if tuple(render.shape) != tuple(source.shape):
        raise TrajCrafterError(f"render is {list(render.shape)} but source is {list(source.shape)} [T, H, W, 3]; "
                               f"give one render per source frame at the source's size.")
    if tuple(mask.shape) != tuple(render.shape[:3]):
        raise TrajCrafterError(f"mask is {list(mask.shape)} but render is {list(render.shape[:3])} [T, H, W]; "
                               f"give one mask per render frame at the render's size (1 = hole).")
    if reference is None:
        reference = source[_reference_indices(source.shape[0], num_reference_frames, reference_from)]
    else:
        reference = as_frames(reference, "reference")
    return Conditions(source=source, render=render, mask=mask, reference=reference, trajectory=None,
                      intrinsics=None, render_size=tuple(render.shape[1:3]), size_policy="external",
                      reference_from=reference_from)


def prepare_conditions(frames, depths, *, target_pose=None, traj_txt=None, mode: str = "gradual",
                       clean_holes: bool = True, render_mode: str = "official", size_policy: str = "official",
                       direct_cut: int = OFFICIAL_DIRECT_CUT, camera: Optional[CameraSpec] = None, preset=None,
                       amount: float = 1.0, trajectory_file=None, anchor: int = 0, radius_scale: float = 1.0,
                       focal_end: Optional[float] = None, translation_scale: float = 1.0, target_camera=None,
                       easing: str = "linear", zoom: float = 1.0, K=None,
                       fov: Optional[float] = None, sample_size: Optional[Sequence[int]] = None,
                       num_reference_frames: int = OFFICIAL_REFERENCE_FRAMES,
                       progress: Optional[ProgressFn] = None, device=None, **render_options) -> Conditions:
    """Everything from a clip and its depth to the sampler's inputs (the official flow by default).

    ``frames`` float32 ``[T, H, W, 3]`` 0..1, ``depths`` ``[T, H, W]`` (> 0, larger = farther).
    The camera: ``target_pose`` ``(theta, phi, r, x, y)``, ``preset`` (× ``amount``), or a file
    (``traj_txt`` / ``trajectory_file``: official txt, RealEstate10K, nerfstudio, saved
    trajectory), ``target_camera`` (a ``4x4`` source→target transform) — or a ready
    :class:`CameraSpec` as ``camera``; ``mode``, ``direct_cut``, ``anchor``, ``radius_scale``,
    ``focal_end``, ``translation_scale``, ``easing``, ``zoom`` as in :class:`CameraSpec`.
    Source intrinsics: ``K`` ``[3, 3]`` at ``(H, W)`` or ``fov`` (horizontal degrees), default the
    official camera. Then :func:`render_conditions` with ``render_mode``, ``clean_holes`` (official
    ``--mask``), ``size_policy``, ``sample_size``, ``num_reference_frames``, ``progress``.
    """
    spec = camera_spec(camera, target_pose=target_pose, preset=preset, amount=amount, traj_txt=traj_txt,
                       trajectory_file=trajectory_file, mode=mode, direct_cut=direct_cut, anchor=anchor,
                       radius_scale=radius_scale, focal_end=focal_end, translation_scale=translation_scale,
                       target_camera=target_camera, easing=easing, zoom=zoom)
    frames = as_frames(frames, "frames")
    depths = as_depth(depths, "depths", like=frames)
    K = source_intrinsics(int(frames.shape[1]), int(frames.shape[2]), K, fov)
    if size_policy not in SIZE_POLICIES:
        raise TrajCrafterError(f"size_policy must be one of {', '.join(SIZE_POLICIES)}, got {size_policy!r}.")
    sample_size_for(tuple(frames.shape[1:3]), size_policy, sample_size)  # checked before any rendering
    trajectory = build_trajectory(spec, depths, K)
    return render_conditions(frames, depths, trajectory, K, render_mode=render_mode, clean_holes=clean_holes,
                             size_policy=size_policy, sample_size=sample_size,
                             num_reference_frames=num_reference_frames, progress=progress, device=device,
                             **render_options)


def prepare_conditions_many(frames, depths, cameras: Sequence[Union[CameraSpec, dict]], *,
                            clean_holes: bool = True, render_mode: str = "official", size_policy: str = "official",
                            K=None, fov: Optional[float] = None, sample_size: Optional[Sequence[int]] = None,
                            num_reference_frames: int = OFFICIAL_REFERENCE_FRAMES,
                            progress: Optional[ProgressFn] = None, device=None, **render_options) -> List[Conditions]:
    """:func:`prepare_conditions` for several camera paths of one clip, one :class:`Conditions`
    each: the depth is given once, every camera is checked before any rendering, one point cloud
    and one resize of the source serve all (:func:`render_conditions_many`).

    ``cameras``: :class:`CameraSpec` values or dicts of :func:`camera_spec`'s keyword arguments
    (``{"preset": "orbit_left"}``, ``{"target_pose": (0, -30, 0.3, 0, 0), "mode": "bullet"}``).
    """
    specs = []
    for i, c in enumerate(cameras):
        try:
            specs.append(c if isinstance(c, CameraSpec) else camera_spec(**dict(c)))
        except TrajCrafterError as exc:
            raise TrajCrafterError(f"camera {i + 1}: {exc}") from None
        except TypeError as exc:
            raise TrajCrafterError(f"camera {i + 1} must be a CameraSpec or a dict of camera options ({exc}).") from None
    if not specs:
        raise TrajCrafterError("give at least one camera.")
    frames = as_frames(frames, "frames")
    depths = as_depth(depths, "depths", like=frames)
    K = source_intrinsics(int(frames.shape[1]), int(frames.shape[2]), K, fov)
    if size_policy not in SIZE_POLICIES:
        raise TrajCrafterError(f"size_policy must be one of {', '.join(SIZE_POLICIES)}, got {size_policy!r}.")
    sample_size_for(tuple(frames.shape[1:3]), size_policy, sample_size)
    trajectories = []
    for i, spec in enumerate(specs):
        try:
            trajectories.append(build_trajectory(spec, depths, K))
        except TrajCrafterError as exc:
            raise TrajCrafterError(f"camera {i + 1} ({spec.describe()}): {exc}") from None
    return render_conditions_many(frames, depths, trajectories, K, render_mode=render_mode, clean_holes=clean_holes,
                                  size_policy=size_policy, sample_size=sample_size,
                                  num_reference_frames=num_reference_frames, progress=progress, device=device,
                                  **render_options)


# ------------------------------------------------------------------------------------ sampling


def generate(pipe, conditions: Union[Conditions, Sequence[Conditions]], *, prompt: str,
             negative_prompt: Optional[str] = None, num_inference_steps: int = DEFAULT_STEPS,
             guidance_scale: float = DEFAULT_GUIDANCE, seed: int = 0,
             callback: Optional[Callable[[int, int, torch.Tensor], None]] = None,
             noise_aug_strength: float = NOISE_AUG_STRENGTH, notes: Optional[List[str]] = None,
             window_frames: Optional[int] = DEFAULT_WINDOW_FRAMES, overlap_frames: Optional[int] = None,
             batch_size: Optional[int] = None) -> Union[torch.Tensor, List[torch.Tensor]]:
    """The redirected video ``[T, h, w, 3]`` float32 0..1 (CPU) for one :class:`Conditions`, or
    one such video per item for a list of them (camera paths of one clip, or clips).

    - One :class:`Conditions` of at most ``window_frames`` frames (or ``window_frames=None``):
      equal to ``pipe(source, render, mask, reference=..., generator=torch.Generator("cpu")
      .manual_seed(seed), ...)``; a frame count other than ``8m + 1`` is padded for the model and
      trimmed back.
    - Longer clips go through overlapping windows of ``window_frames`` (``8m + 1``, 49 native)
      that continue each other, ``overlap_frames`` apart (default about a quarter window; see
      :mod:`trajcrafter_core.windows`): exactly ``T`` frames out, the model holds one window at
      a time, time linear in ``T``.
    - A list: the text is encoded once, reference frames once per window, and up to
      ``batch_size`` videos (``None`` = all, halved on a CUDA out-of-memory error) share a
      transformer batch (:mod:`trajcrafter_core.sampling`); each video equals its own
      ``generate`` call with the same seed (to 1e-3).

    ``callback(steps_done, total, latents)`` after each denoising step, counted over all windows
    and batches (raise in it to stop); ``notes``, when a list, receives what was changed on the
    way (padding, windows).
    """
    single = isinstance(conditions, Conditions)
    items = [conditions] if single else list(conditions) if isinstance(conditions, (list, tuple)) else None
    if not items or not all(isinstance(c, Conditions) for c in items):
        what = type(conditions).__name__ if items is None else ", ".join(sorted({type(c).__name__ for c in items})) or "an empty list"
        raise TrajCrafterError(
            f"conditions must come from prepare_conditions / render_conditions (one, or a list of them), got {what}.")
    if window_frames is not None:
        window_frames, overlap_frames = check_window(window_frames, overlap_frames)
    if single and (window_frames is None or conditions.num_frames <= window_frames):
        return _generate_one(pipe, conditions, prompt=prompt, negative_prompt=negative_prompt,
                             num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed,
                             callback=callback, noise_aug_strength=noise_aug_strength, notes=notes)
    if window_frames is None:  # every clip in one window
        longest = max(c.num_frames for c in items)
        window_frames, overlap_frames = max(9, longest + (-(longest - 1)) % 8), None
    sampler = SharedSampler(pipe, prompt=prompt, negative_prompt=negative_prompt,
                            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                            noise_aug_strength=noise_aug_strength, batch_size=batch_size, callback=callback)
    clips = [(c.render, c.mask, c.source, c.reference.shape[0], c.reference_from) for c in items]
    plans, schedule = window_schedule([tuple(c.render.shape) for c in items], window_frames, overlap_frames)
    sampler.expect(sum(sampler.batches(len(group)) for groups in schedule for group in groups))
    sample = lambda inputs, window_seed: sampler.sample(  # noqa: E731
        [SampleJob(w.render, w.mask, w.reference) for w in inputs], window_seed)
    videos = generate_windows(clips, sample, window_frames, overlap_frames, seed)
    windowed = sorted({len(p) for p in plans if len(p) > 1})
    if windowed:
        o = plans[next(i for i, p in enumerate(plans) if len(p) > 1)][1].overlap
        sampler.note(f"clips longer than {window_frames} frames were generated in {'/'.join(map(str, windowed))} "
                     f"overlapping windows of {window_frames} frames ({o} frames overlap, seams blended).")
    if notes is not None:
        notes.extend(sampler.notes)
    return videos[0] if single else videos


def _generate_one(pipe, conditions: Conditions, *, prompt, negative_prompt, num_inference_steps, guidance_scale,
                  seed, callback, noise_aug_strength, notes) -> torch.Tensor:
    """One pipeline call with the conditions as they are (the official flow)."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    out = pipe(conditions.source, conditions.render, conditions.mask, prompt=prompt,
               negative_prompt=negative_prompt, num_inference_steps=num_inference_steps,
               guidance_scale=guidance_scale, generator=generator, noise_aug_strength=noise_aug_strength,
               reference=conditions.reference, callback=callback, shape_policy="pad")
    if notes is not None:
        notes.extend(out.notes)
    return out.frames
