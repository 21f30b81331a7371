"""The official TrajectoryCrafter constants and the checks built on them, stated once (torch-free),
with the camera vocabulary the pack adds to them (presets, easings).

Values are those of the official ``inference.py`` / ``demo.py`` / ``docs/config_help.md``. Every
module, node and CLI flag takes its choices, defaults, ranges and tooltips' numbers from here;
the checks raise :class:`~trajcrafter_core.errors.TrajCrafterError` naming the value.

Masks: a hole mask is float ``[T, H, W]`` with 1 = hole; any value above
:data:`HOLE_THRESHOLD` counts as a hole (:func:`is_hole`), the rest as covered (:func:`covered`)
— the one binarisation used by the sampler, training and previews.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

from .errors import TrajCrafterError

__all__ = [
    "MODES", "MODE_ALIASES", "OFFICIAL_DIRECT_CUT", "TARGET_POSE_LIMITS", "PRESETS", "PRESET_NAMES",
    "RECAMMASTER_PRESETS", "RECAMMASTER_SUBJECT_DISTANCE_M", "EASINGS",
    "PRESET_AMOUNT_LIMIT", "RENDER_MODES", "CAMERA_SOURCES", "DTYPE_NAMES", "OFFLOAD_MODES",
    "SCHEDULER_CLASSES", "DEFAULT_SCHEDULER", "DEFAULT_STEPS", "DEFAULT_GUIDANCE", "DEFAULT_SEED",
    "REFERENCE_FRAMES", "NOISE_AUG_STRENGTH", "HOLE_THRESHOLD", "RADIUS_SCALE_LIMIT",
    "canonical_mode", "canonical_preset", "check_target_pose", "check_txt_keys", "is_hole", "covered",
]

# ------------------------------------------------------------------------------------ cameras

#: Output-frame schedules (see :func:`trajcrafter_core.camera.make_trajectory`).
MODES = ("gradual", "direct", "bullet", "dolly_zoom")
MODE_ALIASES = {"zoom": "dolly_zoom", "bullet_time": "bullet", "dollyzoom": "dolly_zoom"}
#: Frames the camera moves over the first frame in direct mode (official ``opts.cut``).
OFFICIAL_DIRECT_CUT = 20
#: Official target-pose ranges (``docs/config_help.md``: |theta|, |phi| < 60 deg, |r| < 0.6 of
#: the radius, |x|, |y| < 4 depth units). Node sliders, CLI flags and trajectory files all take
#: exactly these.
TARGET_POSE_LIMITS = {"theta": 60.0, "phi": 60.0, "r": 0.6, "x": 4.0, "y": 4.0}
#: Orbit radius scale range (official ``radius_scale``; the radius itself is capped at 5).
RADIUS_SCALE_LIMIT = (0.0, 5.0)
#: name -> (theta, phi, r, x / radius, y / radius) at amount 1 (see ``camera.preset_pose``).
PRESETS = {
    "static": (0.0, 0.0, 0.0, 0.0, 0.0),
    "orbit_left": (0.0, -30.0, 0.0, 0.0, 0.0),
    "orbit_right": (0.0, 30.0, 0.0, 0.0, 0.0),
    "arc_up": (20.0, 0.0, 0.0, 0.0, 0.0),
    "arc_down": (-20.0, 0.0, 0.0, 0.0, 0.0),
    "dolly_in": (0.0, 0.0, 0.4, 0.0, 0.0),
    "dolly_out": (0.0, 0.0, -0.4, 0.0, 0.0),
    "pan_left": (0.0, 0.0, 0.0, -0.3, 0.0),
    "pan_right": (0.0, 0.0, 0.0, 0.3, 0.0),
    "pan_up": (0.0, 0.0, 0.0, 0.0, 0.3),
    "pan_down": (0.0, 0.0, 0.0, 0.0, -0.3),
    "dolly_zoom": (0.0, 0.0, 0.5, 0.0, 0.0),
    # A fixed target camera: every output frame is seen from the anchor frame's camera (all
    # transforms are the identity). The pack estimates no source-camera motion: each frame's
    # point cloud is in that frame's own camera coordinates, so for a moving source camera the
    # output keeps the source's motion (no shake is removed) — what stays fixed is the new camera
    # relative to the source camera. The camera path of ``static``, named for what users ask.
    "stabilize": (0.0, 0.0, 0.0, 0.0, 0.0),
}
#: ReCamMaster's ten camera presets (KwaiVGI/ReCamMaster ``cam_type`` 1-10, the 81-frame paths of
#: ``example_test_data/cameras/camera_extrinsics.json``), converted to our poses. There: Unreal
#: Engine world axes (X forward, Y right, Z up), centimetres, transposed camera-to-world
#: matrices, which ReCamMaster's own loader turns into OpenCV camera axes in metres. Here, in the
#: first camera's OpenCV axes (x right, y down, z forward), every preset is:
#: ``(yaw, pitch, x, y, z, look_at)`` — ``yaw`` (+ = turn right) and ``pitch`` (+ = tilt up) in
#: degrees for a camera turning in place, ``(x, y, z)`` the final camera position in units of the
#: distance to the subject, which all ten paths frame at 4 m straight ahead
#: (:data:`RECAMMASTER_SUBJECT_DISTANCE_M`); with ``look_at`` the camera keeps the subject at the
#: image centre. We put the subject at the orbit centre (depth at the image centre × radius
#: scale), so 4 m there = one orbit radius here. Angles and positions ramp linearly over the path
#: (ReCamMaster's, checked frame by frame in ``tests/test_camera_moves.py``).
RECAMMASTER_SUBJECT_DISTANCE_M = 4.0
RECAMMASTER_PRESETS = {
    "recam_pan_right": (19.876, 0.0, 0.0, 0.0, 0.0, False),  # cam01: turn right in place
    "recam_pan_left": (-19.876, 0.0, 0.0, 0.0, 0.0, False),  # cam02
    "recam_tilt_up": (0.0, 9.938, 0.0, 0.0, 0.0, False),  # cam03: tilt up in place
    "recam_tilt_down": (0.0, -9.938, 0.0, 0.0, 0.0, False),  # cam04
    "recam_zoom_in": (0.0, 0.0, 0.0, 0.0, 0.49689, False),  # cam05: dolly 1.988 m forward (no focal change)
    "recam_zoom_out": (0.0, 0.0, 0.0, 0.0, -0.49689, False),  # cam06
    "recam_translate_up": (0.0, 0.0, 0.0, -0.24845, 0.0, True),  # cam07: rise 0.994 m, tilting down to the subject
    "recam_translate_down": (0.0, 0.0, 0.0, 0.24845, 0.0, True),  # cam08
    "recam_arc_left": (0.0, 0.0, -0.49689, 0.0, 0.13315, True),  # cam09: 29.8 deg arc to the left
    "recam_arc_right": (0.0, 0.0, 0.49689, 0.0, 0.13315, True),  # cam10
}
PRESET_NAMES = tuple(PRESETS) + tuple(RECAMMASTER_PRESETS)
#: How a target pose or preset ramps from the source view to its end: ``linear`` (official) or
#: ``ease_in_out`` (``(1 - cos(pi t)) / 2``: starts and stops at rest).
EASINGS = ("linear", "ease_in_out")
#: Range of a preset's ``amount`` (scales the move; negative reverses it).
PRESET_AMOUNT_LIMIT = 2.0
#: Point renderers (see :mod:`trajcrafter_core.render`).
RENDER_MODES = ("official", "zbuffer")
#: Where a camera path comes from.
CAMERA_SOURCES = ("target_pose", "preset", "file", "target_camera")

# ------------------------------------------------------------------------------------ sampling

DTYPE_NAMES = ("bf16", "fp16", "fp32")
#: Where the diffusion model's weights live while it runs (see ``pipeline.set_placement``).
OFFLOAD_MODES = ("none", "model", "block")
#: Official sampler names (``demo.py``) → diffusers scheduler classes.
SCHEDULER_CLASSES = {
    "DDIM_Origin": "DDIMScheduler",
    "DDIM_Cog": "CogVideoXDDIMScheduler",
    "Euler": "EulerDiscreteScheduler",
    "Euler A": "EulerAncestralDiscreteScheduler",
    "DPM++": "DPMSolverMultistepScheduler",
    "PNDM": "PNDMScheduler",
}
DEFAULT_SCHEDULER = "DDIM_Origin"
DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 6.0
DEFAULT_SEED = 43
#: Source frames the sampler cross-attends to (``frames[:, :, :10]``; the last 10 for bullet time).
REFERENCE_FRAMES = 10
#: Noise added to the covered part of the render before it is encoded (the official pipeline).
NOISE_AUG_STRENGTH = 0.0563

# ------------------------------------------------------------------------------------ masks

#: Mask values above this are holes.
HOLE_THRESHOLD = 0.5


def is_hole(mask):
    """Boolean holes of a hole mask (tensor or array; 1 = hole)."""
    return mask > HOLE_THRESHOLD


def covered(mask):
    """Boolean covered pixels of a hole mask (tensor or array; 0 = covered)."""
    return mask <= HOLE_THRESHOLD


# ------------------------------------------------------------------------------------ checks


def canonical_mode(mode) -> str:
    """A mode name (or alias such as ``"zoom"``) as one of :data:`MODES`."""
    key = str(mode).strip().lower()
    key = MODE_ALIASES.get(key, key)
    if key not in MODES:
        raise TrajCrafterError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)} ('zoom' = dolly_zoom).")
    return key


def canonical_preset(name) -> str:
    """A preset name (any case, ``-``/space for ``_``) as one of :data:`PRESET_NAMES`."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in PRESET_NAMES:
        raise TrajCrafterError(f"unknown camera preset {name!r}; choose one of {', '.join(PRESET_NAMES)}.")
    return key


def _limit_text(key: str, limit: float) -> str:
    return f"±{limit:g}{' degrees' if key in ('theta', 'phi') else ''}"


def check_target_pose(pose: Sequence[float], label: str = "target pose") -> Tuple[float, ...]:
    """``(theta, phi, r, x, y)`` as floats within :data:`TARGET_POSE_LIMITS`, else a clear error."""
    values = tuple(pose) if not isinstance(pose, str) else ()
    if len(values) != 5:
        raise TrajCrafterError(f"{label} must be 5 numbers (theta phi r x y), got {pose!r}.")
    out = []
    for (key, limit), value in zip(TARGET_POSE_LIMITS.items(), values):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise TrajCrafterError(f"{label} {key} must be a number, got {value!r}.") from None
        if not math.isfinite(v) or abs(v) > limit:
            raise TrajCrafterError(
                f"{label} {key} = {v:g} is outside the official range {_limit_text(key, limit)}; use a value in "
                f"[-{limit:g}, {limit:g}].")
        out.append(v)
    return tuple(out)


def check_txt_keys(theta: Sequence[float], phi: Sequence[float], r: Sequence[float], label: str) -> None:
    """The keys of an official trajectory txt within the target-pose ranges (the node sliders'
    and CLI's); a key outside names the file, its line and the value."""
    for line, (key, values) in enumerate((("theta", theta), ("phi", phi), ("r", r)), start=1):
        limit = TARGET_POSE_LIMITS[key]
        bad = [float(v) for v in values if not abs(float(v)) <= limit]
        if bad:
            raise TrajCrafterError(
                f"{label}, line {line} ({key}): {bad[0]:g} is outside the official range "
                f"{_limit_text(key, limit)} that the camera sliders accept; keep every key in "
                f"[-{limit:g}, {limit:g}].")
