"""Render Views: point cloud + trajectory → renders (IMAGE) + hole mask (MASK) + preview."""

from __future__ import annotations

from . import bridge
from .common import CATEGORY, POINT_CLOUD, TRAJECTORY

RENDER_MODES = ("official", "zbuffer")
HOLE_TINT = (1.0, 0.0, 1.0)


def hole_preview(renders, mask):
    """Renders with holes painted magenta, ``[T, H, W, 3]``."""
    import torch

    tint = torch.tensor(HOLE_TINT, dtype=renders.dtype, device=renders.device)
    m = mask.unsqueeze(-1).to(renders.dtype)
    return renders * (1 - m) + tint * m


class RenderViews:
    """Splat the point cloud from every camera of the trajectory: the diffusion model's condition."""

    DESCRIPTION = (
        "Renders the point cloud from each camera of the trajectory. The renders and the hole mask "
        "(1 = no point landed there, to be generated) feed the TrajectoryCrafter Sampler. "
        "'official' reproduces the official renderer (the released model was trained on it); "
        "'zbuffer' uses a hard depth test with flying-pixel removal. clean_holes is the official "
        "--mask option (holes dilated by 5x5). The preview paints holes magenta."
    )
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = ("IMAGE", "MASK", "IMAGE")
    RETURN_NAMES = ("renders", "hole_mask", "preview")
    OUTPUT_TOOLTIPS = (
        "Rendered frames, holes black, [frames, height, width, 3].",
        "1 where nothing was rendered (to be generated), [frames, height, width].",
        "Renders with holes painted magenta.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "point_cloud": (POINT_CLOUD, {"tooltip": "From Lift Point Cloud."}),
                "trajectory": (TRAJECTORY, {"tooltip": "From Camera Trajectory, made for this point cloud."}),
                "render_mode": (list(RENDER_MODES), {"default": "official", "tooltip": "official: as the released model was trained; zbuffer: hard depth test, fewer see-through artefacts."}),
                "clean_holes": ("BOOLEAN", {"default": True, "tooltip": "Dilate holes by 5x5 and blank their rims (official --mask, on in the official run.sh)."}),
            }
        }

    def render(self, point_cloud, trajectory, render_mode, clean_holes):
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.pointcloud import PointCloud
        from trajcrafter_core.render import render_trajectory

        if not isinstance(point_cloud, PointCloud):
            raise TrajCrafterError(f"point_cloud must come from Lift Point Cloud, got {type(point_cloud).__name__}.")
        bar = bridge.Progress(len(trajectory))

        def progress(done, total):
            bar.update_absolute(done)
            bridge.check_interrupt()

        device = bridge.torch_device()
        try:
            renders, mask = render_trajectory(
                point_cloud.to(device), trajectory.to(device), mode=render_mode, clean_holes=bool(clean_holes),
                progress=progress,
            )
        finally:
            if getattr(device, "type", "cpu") != "cpu":
                bridge.soft_empty_cache()
        out = bridge.intermediate_device()
        renders, mask = renders.to(out), mask.to(out)
        return (renders, mask, hole_preview(renders, mask))


NODE_CLASS_MAPPINGS = {"TrajCrafterRenderViews": RenderViews}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterRenderViews": "Render Views"}
