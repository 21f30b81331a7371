"""Camera Trajectory: a mode + a camera path (target pose, preset or file) → per-frame cameras."""

from __future__ import annotations

import os

from . import bridge
from .common import CATEGORY, POINT_CLOUD, TRAJECTORY

CAMERA_SOURCES = ("target_pose", "preset", "trajectory_file")
NO_FILE = "none"
_TRAJECTORY_EXTENSIONS = (".txt", ".json")
# Official target-pose ranges (docs/config_help.md: theta, phi < 60 deg, r < 0.6, x, y < 4).
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "example_trajectories")
RANGES = {"theta": 60.0, "phi": 60.0, "r": 0.6, "x": 4.0, "y": 4.0}


def _slider(default, limit, step, tooltip):
    return ("FLOAT", {"default": default, "min": -limit, "max": limit, "step": step, "display": "slider", "tooltip": tooltip})


def load_trajectory_file(path: str, mode: str, cloud, radius: float, cut: int, translation_scale: float):
    """A :class:`~trajcrafter_core.camera.Trajectory` from a file, format by content.

    - ``.txt`` with 3 lines of numbers: official trajectory (theta, phi, r keys);
    - ``.txt`` with 19 numbers per line (optionally a URL first): RealEstate10K / CameraCtrl;
    - ``.json`` with ``camera_path``: nerfstudio; with ``"format": "trajcrafter.trajectory"``:
      a saved trajectory (used as is, rescaled to the point cloud's size).
    """
    import json

    from trajcrafter_core import camera, trajectory_io
    from trajcrafter_core.errors import TrajCrafterError

    height, width = cloud.size
    n = cloud.num_frames
    K = cloud.K[0].cpu()
    ext = os.path.splitext(path)[1].lower()
    name = os.path.basename(path)
    if ext == ".json":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TrajCrafterError(f"trajectory file {name} is not valid JSON ({exc}).") from None
        if isinstance(data, dict) and data.get("format") == trajectory_io.TRAJECTORY_JSON_FORMAT:
            traj = trajectory_io.load_trajectory_json(data)
            if int(traj.source_index.max()) >= n:
                raise TrajCrafterError(
                    f"trajectory file {name} uses source frame {int(traj.source_index.max())} but the clip has {n} "
                    f"frames; load the same number of frames it was made for."
                )
            return traj.rescaled(height, width) if traj.size != (height, width) else traj
        if isinstance(data, dict) and "camera_path" in data:
            path_ = trajectory_io.load_nerfstudio_camera_path(data, height, width, translation_scale=translation_scale)
            return path_.to_trajectory(mode, n, K=K, cut=cut if mode == "direct" else None)
        raise TrajCrafterError(
            f"trajectory file {name}: JSON must be a nerfstudio camera_path.json (with 'camera_path') or a "
            f"saved TrajectoryCrafter trajectory."
        )
    if ext != ".txt":
        raise TrajCrafterError(f"trajectory file {name}: use a .txt (official or RealEstate10K) or .json (nerfstudio) file.")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise TrajCrafterError(f"trajectory file {name} is not UTF-8 text.") from None
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    if any(len(r) == 19 for r in rows):
        path_ = trajectory_io.load_realestate10k(text, height, width, translation_scale=translation_scale)
        return path_.to_trajectory(mode, n, K=K, cut=cut if mode == "direct" else None)
    theta, phi, r = camera.parse_trajectory_txt(text)
    focal_end = camera.dolly_zoom_focal_end(float(K[0, 0]), float(r[-1])) if mode == "dolly_zoom" else None
    return camera.make_trajectory(
        mode,
        lambda count: camera.txt_trajectory(text, count, radius),
        n,
        height,
        width,
        K=K,
        cut=cut if mode == "direct" else None,
        focal_end=focal_end,
    )


class CameraTrajectory:
    """Per-output-frame cameras for Render Views, plus a picture of the path over the point cloud."""

    DESCRIPTION = (
        "Makes the new camera path. camera: 'target_pose' uses the official (theta, phi, r, x, y) "
        "sliders — the camera ramps from the source view to that pose; 'preset' a named move; "
        "'trajectory_file' an official trajectory .txt (theta / phi / r lines), a RealEstate10K "
        ".txt or a nerfstudio camera_path.json. mode: gradual (frame i seen from camera i), direct "
        "(move over the first frame, then play from the final pose), bullet (freeze the last frame "
        "while the camera moves), dolly_zoom (dolly in while zooming out, centre keeps its size). "
        "The orbit centre is the depth at the image centre of the first frame x radius scale "
        "(capped at 5), as in the official code. The preview shows the camera frusta (white = "
        "source, cyan → orange = first → last frame) from the top and the side over the points."
    )
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (TRAJECTORY, "IMAGE")
    RETURN_NAMES = ("trajectory", "preview")
    OUTPUT_TOOLTIPS = (
        "Per output frame: source frame, camera transform and intrinsics.",
        "Top and side view of the cameras over the point cloud.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        from trajcrafter_core.camera import MODES, PRESET_NAMES

        files = [NO_FILE] + bridge.list_example_files(EXAMPLES_DIR, _TRAJECTORY_EXTENSIONS)
        files += bridge.list_input_files(_TRAJECTORY_EXTENSIONS)
        return {
            "required": {
                "point_cloud": (POINT_CLOUD, {"tooltip": "From Lift Point Cloud: sets the orbit radius, frame count, size and intrinsics."}),
                "mode": (list(MODES), {"default": "gradual", "tooltip": "How output frames pick source frames (see the node description)."}),
                "camera": (list(CAMERA_SOURCES), {"default": "target_pose", "tooltip": "Where the path comes from: the pose sliders, a preset, or a file."}),
                "theta": _slider(0.0, RANGES["theta"], 1.0, "Degrees; + moves the camera up around the centre (official range ±60)."),
                "phi": _slider(-30.0, RANGES["phi"], 1.0, "Degrees; + moves the camera right around the centre (official range ±60)."),
                "r": _slider(0.3, RANGES["r"], 0.01, "Fraction of the radius; + moves the camera forward (official range ±0.6)."),
                "x": _slider(0.0, RANGES["x"], 0.05, "Depth units; + pans (translates) the camera right (official range ±4)."),
                "y": _slider(0.0, RANGES["y"], 0.05, "Depth units; + pans (translates) the camera up (official range ±4)."),
                "preset": (list(PRESET_NAMES), {"default": "orbit_left", "tooltip": "Named camera move (camera = preset)."}),
                "preset_amount": ("FLOAT", {"default": 1.0, "min": -2.0, "max": 2.0, "step": 0.05, "tooltip": "Scales the preset (negative reverses it)."}),
                "trajectory_file": (files, {"default": NO_FILE, "tooltip": "A .txt / .json file in ComfyUI's input folder, or one bundled with the pack ([example]) (camera = trajectory_file)."}),
                "radius_scale": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 2.0, "step": 0.05, "tooltip": "Orbit centre = centre depth x this (official center_scale, 0.1-2)."}),
                "direct_cut": ("INT", {"default": 20, "min": 2, "max": 1000, "tooltip": "direct mode: output frames spent moving over the first frame (official 20)."}),
            },
            "optional": {
                "trajectory_path": ("STRING", {"default": "", "tooltip": "Optional path of a trajectory file; overrides the list. Relative to the input folder, or absolute."}),
                "translation_scale": ("FLOAT", {"default": 1.0, "min": 0.001, "max": 1000.0, "step": 0.01, "tooltip": "RealEstate10K / nerfstudio files: multiplies their translations into depth units."}),
                "preview_size": ("INT", {"default": 384, "min": 128, "max": 2048, "step": 32, "tooltip": "Height of each preview panel in pixels."}),
            },
        }

    def make(
        self, point_cloud, mode, camera, theta, phi, r, x, y, preset, preset_amount, trajectory_file, radius_scale,
        direct_cut, trajectory_path="", translation_scale=1.0, preview_size=384,
    ):
        from trajcrafter_core import camera as cam
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.pointcloud import PointCloud

        if not isinstance(point_cloud, PointCloud):
            raise TrajCrafterError(f"point_cloud must come from Lift Point Cloud, got {type(point_cloud).__name__}.")
        cloud = point_cloud
        height, width = cloud.size
        n = cloud.num_frames
        if n < 2:
            raise TrajCrafterError(f"a camera path needs a clip of at least 2 frames; the point cloud has {n}.")
        if mode == "direct" and direct_cut > n:
            raise TrajCrafterError(
                f"direct_cut={direct_cut} is longer than the clip ({n} frames); use direct_cut <= {n}."
            )
        radius = cam.orbit_radius(cloud.depths[0].cpu(), radius_scale)
        K = cloud.K[0].cpu()
        cut = direct_cut if mode == "direct" else None
        if camera == "trajectory_file":
            if (trajectory_path or "").strip():
                path = bridge.resolve_input_file("", trajectory_path, "trajectory file")
            elif trajectory_file and trajectory_file != NO_FILE:
                path = bridge.resolve_input_file(trajectory_file, "", "trajectory file", examples_dir=EXAMPLES_DIR)
            else:
                raise TrajCrafterError("camera = trajectory_file but no file is chosen: pick one in trajectory_file or type trajectory_path.")
            traj = load_trajectory_file(path, mode, cloud, radius, direct_cut, translation_scale)
        else:
            if camera == "preset":
                pose = cam.preset_pose(preset, radius, preset_amount)
            elif camera == "target_pose":
                pose = cam.TargetPose(theta, phi, r, x, y)
            else:
                raise TrajCrafterError(f"camera must be one of {CAMERA_SOURCES}, got {camera!r}.")
            focal_end = cam.dolly_zoom_focal_end(float(K[0, 0]), pose.r) if mode == "dolly_zoom" else None
            traj = cam.make_trajectory(
                mode,
                lambda count: cam.target_pose_trajectory(*pose, num_frames=count, radius=radius),
                n,
                height,
                width,
                K=K,
                cut=cut,
                focal_end=focal_end,
            )
        preview = self._preview(cloud, traj, radius, preview_size)
        return (traj, preview)

    @staticmethod
    def _preview(cloud, traj, radius, size):
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
            size=int(size), caption=f"{traj.mode}, {len(traj)} frames, radius {radius:.2f}",
        )
        return torch.from_numpy(image.astype(np.float32) / 255.0).unsqueeze(0).to(bridge.intermediate_device())


NODE_CLASS_MAPPINGS = {"TrajCrafterCameraTrajectory": CameraTrajectory}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterCameraTrajectory": "Camera Trajectory"}
