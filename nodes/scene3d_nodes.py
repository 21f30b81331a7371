"""See and pick the camera in 3-D: Export Scene 3D (→ core Preview 3D / Load 3D) and Camera From
Load 3D (core Load 3D's camera → a camera path).

Thin wrappers over :func:`trajcrafter_core.scene3d.export_scene` and
:mod:`trajcrafter_core.load3d_camera`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

from . import bridge
from .camera_nodes import CAMERA_PATH_OUT, EASING
from .common import LOAD3D_CAMERA, POINT_CLOUD, TRAJECTORY
from .declare import Bool, Int, NodeDef, Out, Socket, Text

LOAD3D_FOLDER = "3d"  # Load 3D lists the models under input/3d


def _prefix(text: str) -> str:
    from trajcrafter_core.errors import TrajCrafterError

    parts = [p for p in str(text).replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise TrajCrafterError(f"filename_prefix {text!r} must be a relative name such as trajcrafter/scene.")
    return "/".join(parts)


def _write_atomically(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)


def export_scene3d(point_cloud, max_points, filename_prefix, for_load_3d, trajectory=None):
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
    with open(scene.path, "rb") as f:
        data = f.read()
    name = f"{prefix}_{hashlib.sha1(data).hexdigest()[:10]}.glb"  # a new name per content: no stale viewer cache
    os.replace(scene.path, os.path.join(output, name))
    if for_load_3d:
        _write_atomically(os.path.join(bridge.input_directory(), LOAD3D_FOLDER, prefix + ".glb"), data)
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


EXPORT_SCENE = NodeDef(
    id="TrajCrafterExportScene3D",
    display_name="Export Scene 3D (TrajectoryCrafter)",
    category="camera",
    description=(
        "Writes the scene as a glTF binary (.glb): one frame's point cloud in its colours (at most max_points "
        "points), the source camera (white), the camera path's frusta (cyan = first frame → orange = last) and the "
        "path line. Connect model_file to core 'Preview 3D' to look around it (camera_info opens it at the path's "
        "last camera). With for_load_3d the file is also saved as input/3d/<prefix>.glb: pick it in core 'Load 3D', "
        "orbit to the view you want and connect Load 3D's camera_info and mesh_path to 'Camera From Load 3D' "
        "(press R to refresh the file list after the first run)."
    ),
    inputs=(
        Socket("point_cloud", POINT_CLOUD, "From Lift Point Cloud."),
        Int("max_points", 100000, 1000, 2000000, "The frame's pixels are thinned on a regular grid to at most this "
            "many points.", step=1000),
        Text("filename_prefix", "trajcrafter/scene", "Name under the output folder (and input/3d for Load 3D)."),
        Bool("for_load_3d", True, "Also save input/3d/<prefix>.glb, so core Load 3D can open it to pick a camera."),
        Socket("trajectory", TRAJECTORY, "From Camera Trajectory: its cameras are drawn.", optional=True),
    ),
    outputs=(
        Out("model_file", "STRING", "The .glb's path in the output folder, for Preview 3D's model_file."),
        Out("camera_info", LOAD3D_CAMERA, "The path's last camera (or the source camera) as a Load 3D camera, for "
            "Preview 3D's camera_info."),
    ),
    run=export_scene3d,
    aliases=("trajectorycrafter", "glb", "gltf", "3d", "point cloud", "preview 3d"),
    output_node=True,
)


def camera_from_load3d(camera_info, mesh_path, easing="ease_in_out"):
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.load3d_camera import camera_info_spec
    from trajcrafter_core.scene3d import read_viewer_frame

    if not camera_info:
        raise TrajCrafterError("camera_info is empty: connect core Load 3D's camera_info (and run it with a model "
                               "loaded).")
    path = bridge.resolve_input_file("", str(mesh_path or ""), "scene file (mesh_path)")
    return (camera_info_spec(camera_info, read_viewer_frame(path), easing=easing),)


CAMERA_FROM_LOAD3D = NodeDef(
    id="TrajCrafterCameraFromLoad3D",
    display_name="Camera From Load 3D (TrajectoryCrafter)",
    category="camera",
    description=(
        "A camera path from the source view to the camera of core 'Load 3D': open the .glb that Export Scene 3D "
        "saved (input/3d/...) in Load 3D, orbit / pan / dolly to the view you want, and connect Load 3D's "
        "camera_info and mesh_path here, then schedule the path with Camera Trajectory. The move turns about the "
        "orbit centre (depth at the image centre x Camera Trajectory's radius_scale); Load 3D's zoom scales the "
        "focal length; the lens is the source camera's."
    ),
    inputs=(
        Socket("camera_info", LOAD3D_CAMERA, "Load 3D's camera_info output."),
        Text("mesh_path", f"{LOAD3D_FOLDER}/trajcrafter/scene.glb", "Load 3D's mesh_path output (the .glb it shows, "
             "under the input folder): it holds where the source camera sits in the viewer."),
        dataclasses.replace(EASING, default="ease_in_out"),  # a picked view: start and stop at rest
    ),
    outputs=(CAMERA_PATH_OUT,),
    run=camera_from_load3d,
    aliases=("trajectorycrafter", "camera", "load 3d", "3d viewer", "pick view"),
)

NODES = (EXPORT_SCENE, CAMERA_FROM_LOAD3D)
