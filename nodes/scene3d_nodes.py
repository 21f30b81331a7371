"""See and pick the camera in 3-D: Export Scene 3D (→ core Preview 3D / Load 3D) and Camera From
Load 3D (core Load 3D's camera → a trajectory).

Thin wrappers over :func:`trajcrafter_core.scene3d.export_scene` and
:mod:`trajcrafter_core.load3d_camera`.
"""

from __future__ import annotations

import hashlib
import os

from trajcrafter_core.specs import EASINGS, MODES

from . import bridge
from .common import CATEGORY, LOAD3D_CAMERA, POINT_CLOUD, TRAJECTORY

LOAD3D_FOLDER = "3d"  # Load 3D lists the models under input/3d


def _prefix(text: str) -> str:
    from trajcrafter_core.errors import TrajCrafterError

    parts = [p for p in str(text).replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise TrajCrafterError(f"filename_prefix {text!r} must be a relative name such as trajcrafter/scene.")
    return "/".join(parts)


class ExportScene3D:
    """Write the point cloud with the source camera, the target cameras and their path as a .glb."""

    DESCRIPTION = (
        "Writes the scene as a glTF binary (.glb): one frame's point cloud in its colours (at most max_points "
        "points), the source camera (white), the camera path's frusta (cyan = first frame → orange = last) and the "
        "path line. Connect model_file to core 'Preview 3D' to look around it (camera_info opens it at the path's "
        "last camera). With for_load_3d the file is also saved as input/3d/<prefix>.glb: pick it in core 'Load 3D', "
        "orbit to the view you want and connect Load 3D's camera_info and mesh_path to 'Camera From Load 3D' "
        "(press R to refresh the file list after the first run)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "export"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", LOAD3D_CAMERA)
    RETURN_NAMES = ("model_file", "camera_info")
    OUTPUT_TOOLTIPS = (
        "The .glb's path in the output folder, for Preview 3D's model_file.",
        "The path's last camera (or the source camera) as a Load 3D camera, for Preview 3D's camera_info.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "point_cloud": (POINT_CLOUD, {"tooltip": "From Lift Point Cloud."}),
                "max_points": ("INT", {"default": 100000, "min": 1000, "max": 2000000, "step": 1000, "tooltip": "The frame's pixels are thinned on a regular grid to at most this many points."}),
                "filename_prefix": ("STRING", {"default": "trajcrafter/scene", "tooltip": "Name under the output folder (and input/3d for Load 3D)."}),
                "for_load_3d": ("BOOLEAN", {"default": True, "tooltip": "Also save input/3d/<prefix>.glb, so core Load 3D can open it to pick a camera."}),
            },
            "optional": {
                "trajectory": (TRAJECTORY, {"tooltip": "From Camera Trajectory: its cameras are drawn."}),
            },
        }

    def export(self, point_cloud, max_points, filename_prefix, for_load_3d, trajectory=None):
        import numpy as np

        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.load3d_camera import transform_to_camera_info
        from trajcrafter_core.pointcloud import PointCloud
        from trajcrafter_core.scene3d import export_scene

        if not isinstance(point_cloud, PointCloud):
            raise TrajCrafterError(f"point_cloud must come from Lift Point Cloud, got {type(point_cloud).__name__}.")
        prefix = _prefix(filename_prefix)
        output = bridge.output_directory()
        staging = os.path.join(output, prefix + ".glb")
        scene = export_scene(staging, point_cloud.to("cpu"), None if trajectory is None else trajectory.to("cpu"),
                             max_points=int(max_points))
        data = open(scene.path, "rb").read()
        name = f"{prefix}_{hashlib.sha1(data).hexdigest()[:10]}.glb"  # a new name per content: no stale viewer cache
        os.replace(scene.path, os.path.join(output, name))
        if for_load_3d:
            target = os.path.join(bridge.input_directory(), LOAD3D_FOLDER, prefix + ".glb")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            partial = target + ".partial"
            with open(partial, "wb") as f:
                f.write(data)
            os.replace(partial, target)
        if trajectory is not None:
            T, distance = trajectory.transforms[-1].double().cpu().numpy(), trajectory.radius
        else:
            T, distance = np.eye(4), None
        distance = distance or float(point_cloud.depths[scene.source_frame].median())
        try:
            camera_info = transform_to_camera_info(T, scene.frame, distance)
        except TrajCrafterError:  # a rolled camera has no Load 3D equivalent: open at the source view
            camera_info = transform_to_camera_info(np.eye(4), scene.frame, distance)
        return (name, camera_info)


class CameraFromLoad3D:
    """A camera path that ends at the view framed in core Load 3D (over a scene from Export Scene 3D)."""

    DESCRIPTION = (
        "Makes the camera path from the source view to the camera of core 'Load 3D': open the .glb that Export "
        "Scene 3D saved (input/3d/...) in Load 3D, orbit / pan / dolly to the view you want, and connect Load 3D's "
        "camera_info and mesh_path here. The move turns about the orbit centre (depth at the image centre x "
        "radius_scale); Load 3D's zoom scales the focal length; the lens is the source camera's. mode and "
        "easing as in Camera Trajectory."
    )
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (TRAJECTORY, "IMAGE")
    RETURN_NAMES = ("trajectory", "preview")
    OUTPUT_TOOLTIPS = ("Per output frame: source frame, camera transform and intrinsics.",
                       "Top and side view of the cameras over the point cloud.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "point_cloud": (POINT_CLOUD, {"tooltip": "From Lift Point Cloud: the same cloud the scene was exported from."}),
                "camera_info": (LOAD3D_CAMERA, {"tooltip": "Load 3D's camera_info output."}),
                "mesh_path": ("STRING", {"default": f"{LOAD3D_FOLDER}/trajcrafter/scene.glb", "tooltip": "Load 3D's mesh_path output (the .glb it shows, under the input folder): it holds where the source camera sits in the viewer."}),
                "mode": (list(MODES), {"default": "gradual", "tooltip": "How output frames pick source frames (see Camera Trajectory)."}),
                "easing": (list(EASINGS), {"default": "ease_in_out", "tooltip": "linear, or ease_in_out (starts and stops at rest)."}),
                "radius_scale": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 2.0, "step": 0.05, "tooltip": "The move turns about the centre depth x this."}),
                "direct_cut": ("INT", {"default": 20, "min": 2, "max": 1000, "tooltip": "direct mode: output frames spent moving over the first frame (official 20)."}),
            },
            "optional": {
                "anchor": ("INT", {"default": 0, "min": -10000, "max": 10000, "tooltip": "The path's camera that is the source camera (0 = the path starts at the source view)."}),
                "preview_size": ("INT", {"default": 384, "min": 128, "max": 2048, "step": 32, "tooltip": "Height of each preview panel in pixels."}),
            },
        }

    def make(self, point_cloud, camera_info, mesh_path, mode, easing, radius_scale, direct_cut, anchor=0,
             preview_size=384):
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.load3d_camera import camera_info_spec
        from trajcrafter_core.pointcloud import PointCloud
        from trajcrafter_core.redirect import build_trajectory
        from trajcrafter_core.scene3d import read_viewer_frame

        from .camera_nodes import CameraTrajectory

        if not isinstance(point_cloud, PointCloud):
            raise TrajCrafterError(f"point_cloud must come from Lift Point Cloud, got {type(point_cloud).__name__}.")
        if not camera_info:
            raise TrajCrafterError("camera_info is empty: connect core Load 3D's camera_info (and run it with a model loaded).")
        path = bridge.resolve_input_file("", str(mesh_path or ""), "scene file (mesh_path)")
        frame = read_viewer_frame(path)
        spec = camera_info_spec(camera_info, frame, mode=mode, easing=easing, radius_scale=radius_scale,
                                direct_cut=direct_cut, anchor=anchor)
        traj = build_trajectory(spec, point_cloud.depths.cpu(), point_cloud.K[0].cpu())
        return (traj, CameraTrajectory._preview(point_cloud, traj, traj.radius, preview_size))


NODE_CLASS_MAPPINGS = {
    "TrajCrafterExportScene3D": ExportScene3D,
    "TrajCrafterCameraFromLoad3D": CameraFromLoad3D,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "TrajCrafterExportScene3D": "Export Scene 3D (.glb)",
    "TrajCrafterCameraFromLoad3D": "Camera From Load 3D",
}
