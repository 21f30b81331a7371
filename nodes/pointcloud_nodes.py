"""Render: Lift Point Cloud — frames + depth + intrinsics → one point cloud per frame."""

from __future__ import annotations

from . import bridge
from .common import DEPTH, POINT_CLOUD, DepthMaps
from .declare import Choice, Float, NodeDef, Out, Socket

INTRINSICS = ("official", "fov")


def match_depth_to_frames(depth: DepthMaps, frames):
    """Depth ``[T, H, W]`` for ``frames`` ``[T, H, W, 3]``: same count required, size resized if needed."""
    from trajcrafter_core.depth.choice import fit_to_frames
    from trajcrafter_core.errors import TrajCrafterError

    if not isinstance(depth, DepthMaps):
        raise TrajCrafterError(
            f"depth must come from Estimate Depth, Depth From Image or Synthetic Scene, got {type(depth).__name__}."
        )
    return fit_to_frames(depth.depth, frames, label="depth", hint="The depth must be estimated from the same "
                         "frames (same Load Video settings: frame cap, skip first, every nth).")


def lift_point_cloud(frames, depth, intrinsics, fov_degrees):
    from trajcrafter_core.conventions import as_frames
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.pointcloud import PointCloud
    from trajcrafter_core.redirect import source_intrinsics

    if intrinsics not in INTRINSICS:
        raise TrajCrafterError(f"intrinsics must be one of {INTRINSICS}, got {intrinsics!r}.")
    frames = as_frames(frames, "frames").cpu()
    d = match_depth_to_frames(depth, frames)
    K = source_intrinsics(int(frames.shape[1]), int(frames.shape[2]), fov=fov_degrees if intrinsics == "fov" else None)
    return (PointCloud(frames, d.cpu(), K).to(bridge.intermediate_device()),)


LIFT_POINT_CLOUD = NodeDef(
    id="TrajCrafterLiftPointCloud",
    display_name="Lift Point Cloud (TrajectoryCrafter)",
    category="render",
    description=(
        "Turns each frame and its depth into a coloured 3D point cloud (OpenCV camera axes). Intrinsics: "
        "'official' uses the official TrajectoryCrafter camera (focal 500 px at 1024 px width, scaled to the frame "
        "width); 'fov' uses a horizontal field of view you give. The depth must have one map per frame; a "
        "different map size is resized to the frames."
    ),
    inputs=(
        Socket("frames", "IMAGE", "Source video frames [frames, height, width, 3]."),
        Socket("depth", DEPTH, "Depth of those frames (Estimate Depth, Depth From Image, Synthetic Scene)."),
        Choice("intrinsics", list(INTRINSICS), "official", "official: focal 500 px at 1024 px width (the official "
               "default); fov: from field of view."),
        Float("fov_degrees", 60.0, 10.0, 170.0, "Horizontal field of view in degrees (used when intrinsics = fov). "
              "The official camera is about 91.7.", step=0.5),
    ),
    outputs=(Out("point_cloud", POINT_CLOUD, "Frames + depth + intrinsics; points are lifted when rendering."),),
    run=lift_point_cloud,
    aliases=("trajectorycrafter", "point cloud", "3d", "unproject"),
)

NODES = (LIFT_POINT_CLOUD,)
