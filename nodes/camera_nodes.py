"""Camera Trajectory: a mode + a camera path (target pose, preset or file) → per-frame cameras."""

from __future__ import annotations

import os

from trajcrafter_core.specs import EASINGS, MODES, PRESET_NAMES, TARGET_POSE_LIMITS

from . import bridge
from .common import CATEGORY, POINT_CLOUD, TRAJECTORY

CAMERA_SOURCES = ("target_pose", "preset", "trajectory_file")
NO_FILE = "none"
_TRAJECTORY_EXTENSIONS = (".txt", ".json")
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "example_trajectories")


def _slider(default, limit, step, tooltip):
    return ("FLOAT", {"default": default, "min": -limit, "max": limit, "step": step, "display": "slider", "tooltip": tooltip})


class CameraTrajectory:
    """Per-output-frame cameras for Render Views, plus a picture of the path over the point cloud."""

    DESCRIPTION = (
        "Makes the new camera path. camera: 'target_pose' uses the official (theta, phi, r, x, y) "
        "sliders — the camera ramps from the source view to that pose (easing: linear as the "
        "official, or ease_in_out); 'preset' a named move (stabilize = a fixed camera; recam_* = "
        "ReCamMaster's ten moves); "
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
        files = [NO_FILE] + bridge.list_example_files(EXAMPLES_DIR, _TRAJECTORY_EXTENSIONS)
        files += bridge.list_input_files(_TRAJECTORY_EXTENSIONS)
        return {
            "required": {
                "point_cloud": (POINT_CLOUD, {"tooltip": "From Lift Point Cloud: sets the orbit radius, frame count, size and intrinsics."}),
                "mode": (list(MODES), {"default": "gradual", "tooltip": "How output frames pick source frames (see the node description)."}),
                "camera": (list(CAMERA_SOURCES), {"default": "target_pose", "tooltip": "Where the path comes from: the pose sliders, a preset, or a file."}),
                "theta": _slider(0.0, TARGET_POSE_LIMITS["theta"], 1.0, "Degrees; + moves the camera up around the centre (official range ±60)."),
                "phi": _slider(-30.0, TARGET_POSE_LIMITS["phi"], 1.0, "Degrees; + moves the camera right around the centre (official range ±60)."),
                "r": _slider(0.3, TARGET_POSE_LIMITS["r"], 0.01, "Fraction of the radius; + moves the camera forward (official range ±0.6)."),
                "x": _slider(0.0, TARGET_POSE_LIMITS["x"], 0.05, "Depth units; + pans (translates) the camera right (official range ±4)."),
                "y": _slider(0.0, TARGET_POSE_LIMITS["y"], 0.05, "Depth units; + pans (translates) the camera up (official range ±4)."),
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
                "anchor": ("INT", {"default": 0, "min": -10000, "max": 10000, "tooltip": "The path's camera that is the source camera (official anchor_idx; 0 = the path starts at the source view, -1 = it ends there)."}),
                "focal_end": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100000.0, "step": 1.0, "tooltip": "dolly_zoom: final focal length in pixels at the frames' size (0 = keep the orbit centre's size; official 250 at 1024 px for r = 0.5)."}),
                "easing": (list(EASINGS), {"default": "linear", "tooltip": "How a target pose or preset ramps: linear (official) or ease_in_out (starts and stops at rest)."}),
            },
        }

    def make(
        self, point_cloud, mode, camera, theta, phi, r, x, y, preset, preset_amount, trajectory_file, radius_scale,
        direct_cut, trajectory_path="", translation_scale=1.0, preview_size=384, anchor=0, focal_end=0.0,
        easing="linear",
    ):
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.pointcloud import PointCloud
        from trajcrafter_core.redirect import build_trajectory

        if not isinstance(point_cloud, PointCloud):
            raise TrajCrafterError(f"point_cloud must come from Lift Point Cloud, got {type(point_cloud).__name__}.")
        spec = self.camera_spec(mode, camera, theta, phi, r, x, y, preset, preset_amount, trajectory_file,
                                radius_scale, direct_cut, trajectory_path, translation_scale, anchor, focal_end,
                                easing)
        traj = build_trajectory(spec, point_cloud.depths.cpu(), point_cloud.K[0].cpu())
        return (traj, self._preview(point_cloud, traj, traj.radius, preview_size))

    @staticmethod
    def camera_spec(mode, camera, theta, phi, r, x, y, preset, preset_amount, trajectory_file, radius_scale,
                    direct_cut, trajectory_path="", translation_scale=1.0, anchor=0, focal_end=0.0,
                    easing="linear"):
        """The widgets as a :class:`~trajcrafter_core.specs.CameraSpec` (what the CLI's flags build too)."""
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.specs import CameraSpec

        common = dict(mode=mode, direct_cut=direct_cut, radius_scale=radius_scale, translation_scale=translation_scale,
                      anchor=anchor, focal_end=focal_end if focal_end else None)
        if camera == "target_pose":
            return CameraSpec(target_pose=(theta, phi, r, x, y), easing=easing, **common)
        if camera == "preset":
            return CameraSpec(preset=preset, amount=preset_amount, easing=easing, **common)
        if camera != "trajectory_file":
            raise TrajCrafterError(f"camera must be one of {CAMERA_SOURCES}, got {camera!r}.")
        if (trajectory_path or "").strip():
            path = bridge.resolve_input_file("", trajectory_path, "trajectory file")
        elif trajectory_file and trajectory_file != NO_FILE:
            path = bridge.resolve_input_file(trajectory_file, "", "trajectory file", examples_dir=EXAMPLES_DIR)
        else:
            raise TrajCrafterError("camera = trajectory_file but no file is chosen: pick one in trajectory_file or type trajectory_path.")
        return CameraSpec(file=path, **common)

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
