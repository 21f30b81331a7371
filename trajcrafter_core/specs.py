"""A user's choices as typed, torch-free specs: the camera, the depth, the model weights.

Every front-end (nodes, CLI, training) turns its widgets or flags into these specs and hands
them to the one builder of each, so the same choice gives the same result everywhere:

- :class:`CameraSpec` → :func:`trajcrafter_core.redirect.build_trajectory`
- :class:`DepthSpec` → :func:`trajcrafter_core.depth.choice.load_estimator` /
  :func:`trajcrafter_core.depth.choice.depth_for_frames`
- :class:`ModelSpec` → :meth:`trajcrafter_core.pipeline.TrajectoryCrafterPipeline.from_spec`

A spec checks its own values when built (names, ranges, exactly one camera source) and raises
:class:`~trajcrafter_core.errors.TrajCrafterError` naming the value; the official constants and
checks it uses come from :mod:`trajcrafter_core.official`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Optional, Tuple

from .errors import TrajCrafterError
from .memory import DEFAULT_MEMORY_OPTIONS, canonical_memory_preset, resolve_memory_options
from .official import (  # noqa: F401  (re-exported: the specs' vocabulary)
    CAMERA_SOURCES,
    DTYPE_NAMES,
    EASINGS,
    MODE_ALIASES,
    MODES,
    OFFICIAL_DIRECT_CUT,
    OFFLOAD_MODES,
    PRESET_AMOUNT_LIMIT,
    PRESET_NAMES,
    PRESETS,
    RADIUS_SCALE_LIMIT,
    RECAMMASTER_PRESETS,
    RECAMMASTER_SUBJECT_DISTANCE_M,
    RENDER_MODES,
    SCHEDULER_CLASSES,
    TARGET_POSE_LIMITS,
    canonical_mode,
    canonical_preset,
    check_target_pose,
)

__all__ = [
    "MODES",
    "MODE_ALIASES",
    "PRESETS",
    "RECAMMASTER_PRESETS",
    "RECAMMASTER_SUBJECT_DISTANCE_M",
    "PRESET_NAMES",
    "EASINGS",
    "TARGET_POSE_LIMITS",
    "OFFICIAL_DIRECT_CUT",
    "RENDER_MODES",
    "CAMERA_SOURCES",
    "DEPTH_ESTIMATORS",
    "DEPTH_POLARITIES",
    "DTYPE_NAMES",
    "OFFLOAD_MODES",
    "SCHEDULER_CLASSES",
    "CameraSpec",
    "DepthSpec",
    "ModelSpec",
    "canonical_mode",
    "canonical_preset",
]

def _number(value, name: str, low: Optional[float] = None, high: Optional[float] = None,
            low_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise TrajCrafterError(f"{name} must be finite, got {value!r}.")
    if low is not None and (v < low or (low_open and v == low)):
        raise TrajCrafterError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {v:g}.")
    if high is not None and v > high:
        raise TrajCrafterError(f"{name} must be <= {high:g}, got {v:g}.")
    return v


def _integer(value, name: str, low: Optional[int] = None) -> int:
    try:
        v = int(value)
        whole = float(value) == v
    except (TypeError, ValueError):
        raise TrajCrafterError(f"{name} must be a whole number, got {value!r}.") from None
    if not whole:
        raise TrajCrafterError(f"{name} must be a whole number, got {value!r}.")
    if low is not None and v < low:
        raise TrajCrafterError(f"{name} must be >= {low}, got {v}.")
    return v


def _set(obj, name: str, value) -> None:
    object.__setattr__(obj, name, value)


def _rigid_transform(values) -> Tuple[float, ...]:
    """16 finite numbers of a row-major ``4x4`` rigid transform (rotation, translation, last row
    ``0 0 0 1``), checked to 1e-4."""
    try:
        flat = [float(v) for row in values for v in (row if hasattr(row, "__iter__") else [row])]
    except (TypeError, ValueError):
        raise TrajCrafterError(f"target camera must be 16 numbers (a row-major 4x4 transform), got {values!r}.") from None
    if len(flat) != 16 or not all(math.isfinite(v) for v in flat):
        raise TrajCrafterError(f"target camera must be 16 finite numbers (a row-major 4x4 transform), got {len(flat)} numbers.")
    rows = [flat[4 * i: 4 * i + 4] for i in range(4)]
    R = [r[:3] for r in rows[:3]]
    gram = [[sum(R[k][i] * R[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
    det = (R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1]) - R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0])
           + R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0]))
    orthonormal = all(abs(gram[i][j] - (i == j)) < 1e-4 for i in range(3) for j in range(3))
    if not orthonormal or det < 0 or any(abs(a - b) > 1e-6 for a, b in zip(rows[3], (0.0, 0.0, 0.0, 1.0))):
        raise TrajCrafterError("target camera must be a rigid transform: an orthonormal rotation (det +1), a "
                               "translation and the last row 0 0 0 1.")
    return tuple(flat)


@dataclass(frozen=True)
class CameraSpec:
    """A camera path and the schedule of the output frames.

    Exactly one source:

    - ``target_pose``: the official ``(theta, phi, r, x, y)`` (degrees, degrees, fraction of the
      radius, depth units, depth units), each within :data:`TARGET_POSE_LIMITS`;
    - ``preset``: a name of :data:`PRESET_NAMES` scaled by ``amount`` (in ``[-2, 2]``);
    - ``file``: a trajectory file, read by content: an official trajectory txt (theta, phi, r
      lines), a RealEstate10K / CameraCtrl pose txt, a nerfstudio ``camera_path.json`` or a
      saved trajectory JSON. ``file`` may also be the text of an official txt itself;
    - ``target_camera``: the final camera as 16 numbers, the row-major ``4x4`` source-camera →
      target-camera transform (OpenCV axes, depth units; e.g. picked in ComfyUI's 3-D viewer,
      :mod:`trajcrafter_core.load3d_camera`); the camera moves there from the source view
      (:func:`trajcrafter_core.camera_moves.target_camera_path`).

    Schedule: ``mode`` (:data:`MODES`, aliases allowed), ``direct_cut`` (direct mode: frames the
    camera moves over the first frame, official 20), ``anchor`` (the path's camera that is the
    source camera, official ``anchor_idx`` 0), ``radius_scale`` (orbit centre = centre depth of
    frame 0 × this, capped at 5; official ``radius_scale``), ``focal_end`` (dolly zoom: final
    focal in pixels at the render size; default keeps the orbit centre's size, see
    :func:`trajcrafter_core.camera.dolly_zoom_focal_end_of`), ``translation_scale`` (RealEstate10K
    / nerfstudio: multiplies their translations into depth units), ``easing``
    (:data:`EASINGS`: how a target pose, preset or target camera ramps; not for files), ``zoom``
    (final focal length × this, ramped with the path; target pose, preset or target camera, not
    dolly_zoom, which has ``focal_end``).
    """

    target_pose: Optional[Tuple[float, float, float, float, float]] = None
    preset: Optional[str] = None
    amount: float = 1.0
    file: Optional[str] = None
    mode: str = "gradual"
    direct_cut: int = OFFICIAL_DIRECT_CUT
    anchor: int = 0
    radius_scale: float = 1.0
    focal_end: Optional[float] = None
    translation_scale: float = 1.0
    target_camera: Optional[Tuple[float, ...]] = None
    easing: str = "linear"
    zoom: float = 1.0

    def __post_init__(self):
        given = [name for name in ("target_pose", "preset", "file", "target_camera")
                 if getattr(self, name) not in (None, "")]
        if len(given) != 1:
            raise TrajCrafterError(
                "give exactly one camera source: a target pose (theta phi r x y), a preset, a "
                f"trajectory file or a target camera; got {', '.join(given) if given else 'none'}.")
        if self.target_pose is not None:
            _set(self, "target_pose", check_target_pose(self.target_pose))
        if self.preset not in (None, ""):
            _set(self, "preset", canonical_preset(self.preset))
        else:
            _set(self, "preset", None)
        _set(self, "amount", _number(self.amount, "preset amount", -PRESET_AMOUNT_LIMIT, PRESET_AMOUNT_LIMIT))
        if self.file not in (None, ""):
            if not isinstance(self.file, (str, os.PathLike)):
                raise TrajCrafterError(f"trajectory file must be a path, got {type(self.file).__name__}.")
            _set(self, "file", os.fspath(self.file))
        else:
            _set(self, "file", None)
        _set(self, "mode", canonical_mode(self.mode))
        _set(self, "direct_cut", _integer(self.direct_cut, "direct cut", low=2))
        _set(self, "anchor", _integer(self.anchor, "anchor frame"))
        _set(self, "radius_scale", _number(self.radius_scale, "radius scale", *RADIUS_SCALE_LIMIT, low_open=True))
        if self.focal_end is not None:
            _set(self, "focal_end", _number(self.focal_end, "focal end", 0.0, low_open=True))
            if self.mode != "dolly_zoom":
                raise TrajCrafterError(f"focal end only applies to mode dolly_zoom, not {self.mode}.")
        _set(self, "translation_scale", _number(self.translation_scale, "translation scale", 0.0, low_open=True))
        if self.target_camera is not None:
            _set(self, "target_camera", _rigid_transform(self.target_camera))
        if self.easing not in EASINGS:
            raise TrajCrafterError(f"easing must be one of {', '.join(EASINGS)}, got {self.easing!r}.")
        _set(self, "zoom", _number(self.zoom, "zoom", 0.0, 20.0, low_open=True))
        if self.file is not None and (self.easing != "linear" or self.zoom != 1.0):
            raise TrajCrafterError("easing and zoom apply to target poses, presets and target cameras; a trajectory "
                                   "file brings its own timing and intrinsics.")
        if self.mode == "dolly_zoom" and self.zoom != 1.0:
            raise TrajCrafterError("dolly_zoom sets its own focal ramp: give focal_end, not zoom.")

    @property
    def source(self) -> str:
        """Which of :data:`CAMERA_SOURCES` this spec uses."""
        if self.target_camera is not None:
            return "target_camera"
        return "target_pose" if self.target_pose is not None else ("preset" if self.preset else "file")

    def describe(self) -> str:
        """One line for logs and summaries."""
        if self.target_pose is not None:
            what = "target pose " + " ".join(f"{v:g}" for v in self.target_pose)
        elif self.preset:
            what = f"preset {self.preset} x{self.amount:g}"
        elif self.target_camera is not None:
            what = "target camera at " + " ".join(f"{v:.3g}" for v in self.target_camera[3:12:4])
        else:
            is_text = "\n" in self.file
            what = "trajectory text" if is_text else f"file {os.path.basename(self.file)}"
        return f"{what}, mode {self.mode}"


# ------------------------------------------------------------------------------------- depth

#: Depth sources: the two estimators, or depth the user brings as a file.
DEPTH_ESTIMATORS = ("depthcrafter", "depth_anything_v2", "file")
#: How grey depth images read: near = bright (disparity-like, most packs) or far = bright.
DEPTH_POLARITIES = ("near_bright", "far_bright")


@dataclass(frozen=True)
class DepthSpec:
    """Where the clip's depth comes from.

    - ``estimator="depthcrafter"``: ``path`` = a tencent/DepthCrafter UNet folder, ``svd_path`` =
      a stable-video-diffusion-img2vid(-xt) folder; ``steps``, ``window``, ``overlap``, ``seed``,
      ``max_res`` as the official inference (5, 110, 25, 42, 1024).
    - ``estimator="depth_anything_v2"``: ``path`` = a Depth Anything V2 folder (transformers layout).
    - ``estimator="file"``: ``path`` = depth you bring: ``.npy`` / ``.npz`` z-depth (larger =
      farther, used as is), or grey maps — a folder (or glob) of 8/16-bit PNGs, or a depth video —
      read with ``polarity`` and the official disparity→depth mapping. Maps are resized to the
      frames; a file with one map per *source file* frame is subsampled like the clip.

    ``dtype`` (``"fp16"``, ``"bf16"``, ``"fp32"`` or None = fp16 on CUDA, fp32 elsewhere),
    ``device`` (None = CUDA when available), ``download`` (fetch missing official files into the
    folders first).
    """

    estimator: str
    path: str
    svd_path: Optional[str] = None
    polarity: str = "near_bright"
    dtype: Optional[str] = None
    device: Optional[str] = None
    download: bool = False
    steps: int = 5
    window: int = 110
    overlap: int = 25
    seed: int = 42
    max_res: int = 1024

    def __post_init__(self):
        if self.estimator not in DEPTH_ESTIMATORS:
            raise TrajCrafterError(f"depth estimator must be one of {', '.join(DEPTH_ESTIMATORS)}, got {self.estimator!r}.")
        if self.path in (None, ""):
            raise TrajCrafterError(f"depth ({self.estimator}) needs a path.")
        _set(self, "path", os.fspath(self.path))
        if self.estimator == "depthcrafter":
            if self.svd_path in (None, ""):
                raise TrajCrafterError("DepthCrafter needs two folders: the UNet (tencent/DepthCrafter) and "
                                       "stable-video-diffusion-img2vid-xt.")
            _set(self, "svd_path", os.fspath(self.svd_path))
        if self.polarity not in DEPTH_POLARITIES:
            raise TrajCrafterError(f"depth polarity must be one of {', '.join(DEPTH_POLARITIES)}, got {self.polarity!r}.")
        if self.dtype is not None and self.dtype not in DTYPE_NAMES:
            raise TrajCrafterError(f"depth precision must be one of {', '.join(DTYPE_NAMES)} (or auto), got {self.dtype!r}.")
        _set(self, "steps", _integer(self.steps, "depth steps", low=1))
        _set(self, "window", _integer(self.window, "depth window", low=2))
        _set(self, "overlap", _integer(self.overlap, "depth overlap", low=0))
        if self.overlap >= self.window:
            raise TrajCrafterError(f"depth overlap ({self.overlap}) must be smaller than the window ({self.window}).")
        _set(self, "seed", _integer(self.seed, "depth seed", low=0))
        _set(self, "max_res", _integer(self.max_res, "depth max resolution", low=64))

    def estimate_options(self) -> dict:
        """Keyword options for the estimator's ``estimate`` (DepthCrafter only)."""
        if self.estimator != "depthcrafter":
            return {}
        return dict(num_inference_steps=self.steps, window_size=self.window, overlap=self.overlap,
                    seed=self.seed, max_res=self.max_res)


# ------------------------------------------------------------------------------------- model

@dataclass(frozen=True)
class ModelSpec:
    """The TrajectoryCrafter diffusion model: two folders in their official layouts and how to run it.

    ``base_dir``: alibaba-pai/CogVideoX-Fun-V1.1-5b-InP (vae/, text_encoder/, tokenizer/,
    scheduler/); ``transformer_dir``: TrajectoryCrafter/TrajectoryCrafter (or its
    ``crosstransformer/``). ``dtype`` (official bf16), ``device`` (None = CUDA when available),
    ``offload`` (:data:`OFFLOAD_MODES`), ``scheduler`` (official name, :data:`SCHEDULER_CLASSES`),
    ``attention`` (``"sdpa"`` or an installed diffusers backend), ``fp8`` (fp8 weight storage),
    ``vae_tiling`` / ``vae_slicing``, ``download`` (fetch missing files from the Hub first),
    ``blocks_per_group`` (block offload), ``memory`` (a preset of :mod:`trajcrafter_core.memory`:
    ``"fastest"``, ``"24 GB"``, ``"16 GB"``; it sets ``offload``, ``fp8``, ``vae_tiling``,
    ``vae_slicing`` and ``blocks_per_group``, which then read the preset's values), ``lora`` (an
    adapter file or folder merged into the transformer at ``lora_strength``).
    """

    base_dir: str
    transformer_dir: str
    dtype: str = "bf16"
    device: Optional[str] = None
    offload: str = "none"
    scheduler: str = "DDIM_Origin"
    attention: str = "sdpa"
    fp8: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    download: bool = False
    blocks_per_group: int = 1
    memory: Optional[str] = None
    lora: Optional[str] = None
    lora_strength: float = 1.0

    def __post_init__(self):
        if self.memory not in (None, ""):
            _set(self, "memory", canonical_memory_preset(self.memory))
            for key, value in resolve_memory_options(
                    self.memory, **{key: getattr(self, key) for key in DEFAULT_MEMORY_OPTIONS}).items():
                _set(self, key, value)
        else:
            _set(self, "memory", None)
        _set(self, "blocks_per_group", _integer(self.blocks_per_group, "blocks per group", low=1))
        for name in ("base_dir", "transformer_dir"):
            if getattr(self, name) in (None, ""):
                raise TrajCrafterError(f"model spec needs {name.replace('_', ' ')}.")
            _set(self, name, os.fspath(getattr(self, name)))
        if self.dtype not in DTYPE_NAMES:
            raise TrajCrafterError(f"model precision must be one of {', '.join(DTYPE_NAMES)}, got {self.dtype!r}.")
        if self.offload not in OFFLOAD_MODES:
            raise TrajCrafterError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {self.offload!r}.")
        if self.scheduler not in SCHEDULER_CLASSES:
            raise TrajCrafterError(f"scheduler must be one of {', '.join(SCHEDULER_CLASSES)}, got {self.scheduler!r}.")
        _set(self, "lora", os.fspath(self.lora) if self.lora else None)
        try:
            strength = float(self.lora_strength)
        except (TypeError, ValueError):
            strength = float("nan")
        if not math.isfinite(strength):
            raise TrajCrafterError(f"LoRA strength must be a finite number, got {self.lora_strength!r}.")
        _set(self, "lora_strength", strength)

    def options(self) -> dict:
        """Everything but the two folders, as keyword arguments of ``from_pretrained`` (the
        memory preset already spelled out in the options it sets)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("base_dir", "transformer_dir", "memory")}
