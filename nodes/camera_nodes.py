"""Camera: small camera-source nodes (target pose, preset, trajectory file, imported path) that
each give a CAMERA_PATH, and one Camera Trajectory node that schedules it over the clip (mode,
direct cut, anchor, orbit radius) and draws it over the point cloud."""

from __future__ import annotations

import dataclasses
import functools
import os

from trajcrafter_core.official import (
    EASINGS,
    MODES,
    OFFICIAL_DIRECT_CUT,
    PRESET_AMOUNT_LIMIT,
    PRESET_NAMES,
    RADIUS_SCALE_LIMIT,
    TARGET_POSE_LIMITS,
)

from . import bridge
from .common import CAMERA_PATH, POINT_CLOUD, TRAJECTORY
from .declare import Choice, Float, Int, NodeDef, Out, Result, Socket, Text

NO_FILE = "none"
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "example_trajectories")
CAMERA_PATH_OUT = Out("camera_path", CAMERA_PATH, "Where the camera goes; schedule it with Camera Trajectory.")


def _spec(**fields):
    from trajcrafter_core.specs import CameraSpec

    return CameraSpec(**fields)


# ------------------------------------------------------------------------------------ target pose


def _slider(name, default, step, tooltip):
    limit = TARGET_POSE_LIMITS[name]
    return Float(name, default, -limit, limit, tooltip, step=step, slider=True)


#: How a target pose, preset or 3-D-picked camera ramps, and the zoom that ramps with it: optional
#: widgets of those camera nodes (the official ramp is linear at the source focal length).
EASING = Choice("easing", list(EASINGS), "linear", "How the camera ramps: linear (official) or ease_in_out (starts "
                "and stops at rest).", optional=True)
ZOOM = Float("zoom", 1.0, 0.05, 20.0, "Final focal length x this, ramped with the move (1 = the source lens; not "
             "for mode dolly_zoom, which has focal_end).", step=0.05, optional=True)


def target_pose(theta, phi, r, x, y, easing="linear", zoom=1.0):
    return (_spec(target_pose=(theta, phi, r, x, y), easing=easing, zoom=zoom),)


TARGET_POSE = NodeDef(
    id="TrajCrafterCameraTargetPose",
    display_name="Camera Target Pose (TrajectoryCrafter)",
    category="camera",
    description=(
        "The official target pose (theta, phi, r, x, y): the camera ramps from the source view to this pose "
        "around the orbit centre (the depth at the image centre of the first frame). Ranges are the official "
        "ones (theta, phi ±60 degrees, r ±0.6 of the radius, x, y ±4 depth units)."
    ),
    inputs=(
        _slider("theta", 0.0, 1.0, "Degrees; + moves the camera up around the centre."),
        _slider("phi", -30.0, 1.0, "Degrees; + moves the camera right around the centre."),
        _slider("r", 0.3, 0.01, "Fraction of the radius; + moves the camera forward."),
        _slider("x", 0.0, 0.05, "Depth units; + pans (translates) the camera right."),
        _slider("y", 0.0, 0.05, "Depth units; + pans (translates) the camera up."),
        EASING,
        ZOOM,
    ),
    outputs=(CAMERA_PATH_OUT,),
    run=target_pose,
    aliases=("trajectorycrafter", "camera", "orbit", "pose", "theta phi"),
)

# ------------------------------------------------------------------------------------ preset


def preset(preset, amount, easing="linear", zoom=1.0):
    return (_spec(preset=preset, amount=amount, easing=easing, zoom=zoom),)


PRESET = NodeDef(
    id="TrajCrafterCameraPreset",
    display_name="Camera Preset (TrajectoryCrafter)",
    category="camera",
    description=(
        "A named camera move, scaled by amount: orbits, arcs, dollies, pans, dolly zoom, static; stabilize (a "
        "fixed camera: every output frame seen from the first frame's camera); recam_* (ReCamMaster's ten moves)."
    ),
    inputs=(
        Choice("preset", list(PRESET_NAMES), "orbit_left", "Named camera move."),
        Float("amount", 1.0, -PRESET_AMOUNT_LIMIT, PRESET_AMOUNT_LIMIT, "Scales the move (negative reverses it).",
              step=0.05),
        EASING,
        ZOOM,
    ),
    outputs=(CAMERA_PATH_OUT,),
    run=preset,
    aliases=("trajectorycrafter", "camera", "orbit", "dolly", "pan"),
)

# ------------------------------------------------------------------------------------ files


def _file_choices(extensions, examples: bool):
    files = [NO_FILE] + (bridge.list_example_files(EXAMPLES_DIR, extensions) if examples else [])
    return files + bridge.list_input_files(extensions)


def _resolve_file(file, path):
    from trajcrafter_core.errors import TrajCrafterError

    if (path or "").strip():
        return bridge.resolve_input_file("", path, "trajectory file")
    if file and file != NO_FILE:
        return bridge.resolve_input_file(file, "", "trajectory file", examples_dir=EXAMPLES_DIR)
    raise TrajCrafterError("no trajectory file is chosen: pick one in the list or type its path.")


def _read(file, path, kinds, translation_scale=1.0):
    """``(full path, CameraFile)`` of a chosen file that must be one of ``kinds``; problems with
    files outside ComfyUI's folders get the one private message."""
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.trajectory_io import read_camera_file

    full = _resolve_file(file, path)
    try:
        read = read_camera_file(full, 576, 1024, translation_scale)
    except TrajCrafterError:
        if bridge.is_private_path(full):
            raise TrajCrafterError(bridge.private_path_message(path, "trajectory file")) from None
        raise
    if read.kind not in kinds:
        other = "Import Camera Path" if read.kind != "official_txt" else "Camera Trajectory File"
        raise TrajCrafterError(f"{read.label} is not the kind of file this node reads; load it with {other}.")
    return full, read


def _checked(read):
    """A validator with ``read``'s parameters: True, or the message ``read`` raised (files outside
    ComfyUI's folders are left to the run, see :func:`bridge.check_input_file`)."""

    @functools.wraps(read)
    def check(**kw):
        from trajcrafter_core.errors import TrajCrafterError

        if any(bridge.typed_private_path(v) for k, v in kw.items() if k.endswith("_path")):
            return True
        try:
            read(**kw)
        except TrajCrafterError as exc:
            return str(exc)
        return True

    return check


def trajectory_file(trajectory_file, trajectory_path=""):
    full, _ = _read(trajectory_file, trajectory_path, ("official_txt",))
    return (_spec(file=full),)


def _fingerprint(file, path=""):
    return bridge.file_fingerprint(lambda: _resolve_file(file, path))


TRAJECTORY_FILE = NodeDef(
    id="TrajCrafterCameraTrajectoryFile",
    display_name="Camera Trajectory File (TrajectoryCrafter)",
    category="camera",
    description=(
        "An official trajectory .txt: three lines of keys (theta degrees, phi degrees, r as a fraction of the "
        "radius), resampled to the clip as the official code does. Keys get the target pose's official ranges. "
        "Files from ComfyUI's input folder, the bundled [example] files, or a typed path."
    ),
    inputs=(
        Choice("trajectory_file", lambda: _file_choices((".txt",), True), NO_FILE,
               "A .txt in ComfyUI's input folder, or one bundled with the pack ([example])."),
        Text("trajectory_path", "", "Optional path of a trajectory file; overrides the list. Relative to the input "
             "folder, or absolute.", optional=True),
    ),
    outputs=(CAMERA_PATH_OUT,),
    run=trajectory_file,
    aliases=("trajectorycrafter", "camera", "trajectory txt", "loop"),
    validate=_checked(lambda trajectory_file, trajectory_path="": _read(trajectory_file, trajectory_path,
                                                                        ("official_txt",))),
    fingerprint=lambda trajectory_file, trajectory_path="": _fingerprint(trajectory_file, trajectory_path),
)


def import_path(camera_file, translation_scale, camera_path=""):
    full, _ = _read(camera_file, camera_path, ("path", "trajectory"), translation_scale)
    return (_spec(file=full, translation_scale=translation_scale),)


IMPORT_PATH = NodeDef(
    id="TrajCrafterImportCameraPath",
    display_name="Import Camera Path (TrajectoryCrafter)",
    category="camera",
    description=(
        "A camera path made elsewhere: a RealEstate10K / CameraCtrl pose .txt, a nerfstudio camera_path.json or a "
        "saved TrajectoryCrafter trajectory .json. translation_scale converts the file's length unit into depth "
        "units (the point cloud's)."
    ),
    inputs=(
        Choice("camera_file", lambda: _file_choices((".txt", ".json"), False), NO_FILE,
               "A .txt / .json camera path in ComfyUI's input folder."),
        Float("translation_scale", 1.0, 0.001, 1000.0, "Multiplies the file's translations into depth units."),
        Text("camera_path", "", "Optional path of the file; overrides the list. Relative to the input folder, or "
             "absolute.", optional=True),
    ),
    outputs=(CAMERA_PATH_OUT,),
    run=import_path,
    aliases=("trajectorycrafter", "camera", "realestate10k", "nerfstudio", "blender"),
    validate=_checked(lambda camera_file, camera_path="": _read(camera_file, camera_path, ("path", "trajectory"))),
    fingerprint=lambda camera_file, camera_path="": _fingerprint(camera_file, camera_path),
)

# ------------------------------------------------------------------------------------ schedule


def camera_trajectory(point_cloud, camera_path, mode, direct_cut, anchor, radius_scale, focal_end=0.0,
                      preview_size=384):
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.pointcloud import PointCloud
    from trajcrafter_core.redirect import build_trajectory
    from trajcrafter_core.specs import CameraSpec

    if not isinstance(point_cloud, PointCloud):
        raise TrajCrafterError(f"point_cloud must come from Lift Point Cloud, got {type(point_cloud).__name__}.")
    if not isinstance(camera_path, CameraSpec):
        raise TrajCrafterError("camera_path must come from a camera node (Camera Target Pose, Camera Preset, "
                               "Camera Trajectory File, Import Camera Path, Camera From Load 3D), got "
                               f"{type(camera_path).__name__}.")
    spec = dataclasses.replace(camera_path, mode=mode, direct_cut=direct_cut, anchor=anchor, radius_scale=radius_scale,
                               focal_end=focal_end or None)
    traj = build_trajectory(spec, point_cloud.depths.cpu(), point_cloud.K[0].cpu())
    preview = _preview(point_cloud, traj, spec, preview_size)
    return Result((traj, preview), previews=preview)


def _preview(cloud, traj, spec, size):
    import numpy as np
    import torch

    from .camera_preview import draw_camera_path

    index = int(traj.source_index[0])
    h, w = cloud.size
    step = max(1, int(np.ceil(np.sqrt(h * w / 40000.0))))
    pts = cloud.points(index)[0, ::step, ::step].reshape(-1, 3).cpu().numpy()
    col = cloud.colors(index)[0, ::step, ::step].reshape(-1, 3).cpu().numpy()
    image = draw_camera_path(
        pts, col, traj.transforms.cpu().numpy(), traj.K_dst.cpu().numpy(), traj.height, traj.width,
        size=int(size), caption=f"{spec.describe()}\n{len(traj)} frames, radius {traj.radius:.2f}",
    )
    return torch.from_numpy(image.astype(np.float32) / 255.0).unsqueeze(0).to(bridge.intermediate_device())


CAMERA_TRAJECTORY = NodeDef(
    id="TrajCrafterCameraTrajectory",
    display_name="Camera Trajectory (TrajectoryCrafter)",
    category="camera",
    description=(
        "Schedules a camera path over the clip. mode: gradual (frame i seen from camera i), direct (move over "
        "the first frame, then play from the final pose; the sampler drops the move), bullet (freeze the last "
        "frame while the camera moves), dolly_zoom (dolly in while zooming out, the centre keeps its size). The "
        "orbit centre is the depth at the image centre of the first frame x radius scale (capped at 5), as in "
        "the official code. Shows the camera frusta (white = source, cyan → orange = first → last frame) from "
        "the top and the side over the points."
    ),
    inputs=(
        Socket("point_cloud", POINT_CLOUD, "From Lift Point Cloud: sets the orbit radius, frame count, size and "
               "intrinsics."),
        Socket("camera_path", CAMERA_PATH, "From Camera Target Pose, Camera Preset, Camera Trajectory File, Import "
               "Camera Path or Camera From Load 3D."),
        Choice("mode", list(MODES), "gradual", "How output frames pick source frames (see the node description)."),
        Int("direct_cut", OFFICIAL_DIRECT_CUT, 2, 1000, "direct mode: output frames spent moving over the first "
            "frame (official 20)."),
        Int("anchor", 0, -10000, 10000, "The path's camera that is the source camera (official anchor_idx; 0 = the "
            "path starts at the source view, -1 = it ends there)."),
        Float("radius_scale", 1.0, 0.05, RADIUS_SCALE_LIMIT[1], "Orbit centre = centre depth x this (official "
              "radius_scale).", step=0.05),
        Float("focal_end", 0.0, 0.0, 100000.0, "dolly_zoom: final focal length in pixels at the frames' size (0 = "
              "keep the orbit centre's size; official 250 at 1024 px for r = 0.5).", step=1.0, optional=True),
        Int("preview_size", 384, 128, 2048, "Height of each preview panel in pixels.", step=32, optional=True),
    ),
    outputs=(
        Out("trajectory", TRAJECTORY, "Per output frame: source frame, camera transform and intrinsics."),
        Out("preview", "IMAGE", "Top and side view of the cameras over the point cloud."),
    ),
    run=camera_trajectory,
    aliases=("trajectorycrafter", "camera", "schedule", "bullet time", "dolly zoom"),
    previews=True,
)

NODES = (TARGET_POSE, PRESET, TRAJECTORY_FILE, IMPORT_PATH, CAMERA_TRAJECTORY)
