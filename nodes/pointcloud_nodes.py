"""Lift Point Cloud: frames + depth + intrinsics → one point cloud per frame."""

from __future__ import annotations

from . import bridge
from .common import CATEGORY, DEPTH, POINT_CLOUD, DepthMaps

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


class LiftPointCloud:
    """Build the dynamic point cloud (one per source frame) the renderer draws from new cameras."""

    DESCRIPTION = (
        "Turns each frame and its depth into a coloured 3D point cloud (OpenCV camera axes). "
        "Intrinsics: 'official' uses the official TrajectoryCrafter camera (focal 500 px at 1024 px "
        "width, scaled to the frame width); 'fov' uses a horizontal field of view you give. The "
        "depth must have one map per frame; a different map size is resized to the frames."
    )
    CATEGORY = CATEGORY
    FUNCTION = "lift"
    RETURN_TYPES = (POINT_CLOUD,)
    RETURN_NAMES = ("point_cloud",)
    OUTPUT_TOOLTIPS = ("Frames + depth + intrinsics; points are lifted when rendering.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": ("IMAGE", {"tooltip": "Source video frames [frames, height, width, 3]."}),
                "depth": (DEPTH, {"tooltip": "Depth of those frames (Estimate Depth, Depth From Image, Synthetic Scene)."}),
                "intrinsics": (
                    list(INTRINSICS),
                    {"default": "official", "tooltip": "official: focal 500 px at 1024 px width (the official default); fov: from field of view."},
                ),
                "fov_degrees": (
                    "FLOAT",
                    {
                        "default": 60.0,
                        "min": 10.0,
                        "max": 170.0,
                        "step": 0.5,
                        "tooltip": "Horizontal field of view in degrees (used when intrinsics = fov). The official camera is about 91.7.",
                    },
                ),
            }
        }

    def lift(self, frames, depth, intrinsics, fov_degrees):
        from trajcrafter_core.conventions import as_frames
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.pointcloud import PointCloud
        from trajcrafter_core.redirect import source_intrinsics

        if intrinsics not in INTRINSICS:
            raise TrajCrafterError(f"intrinsics must be one of {INTRINSICS}, got {intrinsics!r}.")
        frames = as_frames(frames, "frames").cpu()
        d = match_depth_to_frames(depth, frames)
        K = source_intrinsics(int(frames.shape[1]), int(frames.shape[2]),
                              fov=fov_degrees if intrinsics == "fov" else None)
        cloud = PointCloud(frames, d.cpu(), K)
        return (cloud.to(bridge.intermediate_device()),)


NODE_CLASS_MAPPINGS = {"TrajCrafterLiftPointCloud": LiftPointCloud}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterLiftPointCloud": "Lift Point Cloud"}
