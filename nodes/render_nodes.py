"""Render Views: point cloud + trajectory → the sampler's conditions, renders (IMAGE) + hole mask (MASK) + preview."""

from __future__ import annotations

from trajcrafter_core.sizing import DEFAULT_SIZE_POLICY, SIZE_POLICIES
from trajcrafter_core.specs import RENDER_MODES

from . import bridge
from .common import CATEGORY, CONDITIONS, POINT_CLOUD, TRAJECTORY


class RenderViews:
    """Splat the point cloud from every camera of the trajectory: the diffusion model's condition."""

    DESCRIPTION = (
        "Renders the point cloud from each camera of the trajectory at the frames' own size, then "
        "resizes frames, renders (bilinear) and the hole mask (nearest) to the model's size, as the "
        "official demo does (it renders at 576x1024 and resizes to 384x672). size_policy: "
        "keep_aspect (about the official pixel count at the clip's aspect: 384x672 for 16:9, never "
        "distorts portrait or square clips) or official (384x672 for every clip); sample_height / "
        "sample_width override it. The conditions (frames, renders, mask, reference frames) feed the "
        "TrajectoryCrafter Sampler. 'official' reproduces the official renderer (the released model "
        "was trained on it); 'zbuffer' uses a hard depth test with flying-pixel removal. "
        "clean_holes is the official --mask option (holes dilated by 5x5). The preview paints holes "
        "magenta."
    )
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = (CONDITIONS, "IMAGE", "MASK", "IMAGE")
    RETURN_NAMES = ("conditions", "renders", "hole_mask", "preview")
    OUTPUT_TOOLTIPS = (
        "Frames, renders, hole mask and reference frames at the model's size, for the TrajectoryCrafter Sampler.",
        "Rendered frames at the model's size, holes black, [frames, height, width, 3].",
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
                "size_policy": (list(SIZE_POLICIES), {"default": DEFAULT_SIZE_POLICY, "tooltip": "Model size: keep_aspect = about 384x672 pixels at the clip's aspect (exactly 384x672 for 16:9); official = 384x672 for every clip (squashes other aspects, as the official demo)."}),
            },
            "optional": {
                "sample_height": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 16, "tooltip": "Model height in pixels (multiple of 16); 0 = from size_policy."}),
                "sample_width": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 16, "tooltip": "Model width in pixels (multiple of 16); 0 = from size_policy."}),
                "reference_frames": ("INT", {"default": 10, "min": 1, "max": 200, "tooltip": "Source frames the model cross-attends to (official 10: the first ones, the last ones for bullet time)."}),
            },
        }

    def render(self, point_cloud, trajectory, render_mode, clean_holes, size_policy=DEFAULT_SIZE_POLICY,
               sample_height=0, sample_width=0, reference_frames=10):
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.pointcloud import PointCloud
        from trajcrafter_core.redirect import render_conditions
        from trajcrafter_core.video import paint_holes

        if not isinstance(point_cloud, PointCloud):
            raise TrajCrafterError(f"point_cloud must come from Lift Point Cloud, got {type(point_cloud).__name__}.")
        if bool(sample_height) != bool(sample_width):
            raise TrajCrafterError("give both sample_height and sample_width (or leave both 0 to use size_policy).")
        bar = bridge.Progress(len(trajectory))
        device = bridge.torch_device()
        try:
            conditions = render_conditions(
                point_cloud.frames, point_cloud.depths, trajectory.to("cpu"), point_cloud.K[0].cpu(),
                render_mode=render_mode, clean_holes=bool(clean_holes), size_policy=size_policy,
                sample_size=(sample_height, sample_width) if sample_height else None,
                num_reference_frames=int(reference_frames), progress=bar.callback, device=device,
            )
        finally:
            if getattr(device, "type", "cpu") != "cpu":
                bridge.soft_empty_cache()
        out = bridge.intermediate_device()
        renders, mask = conditions.render.to(out), conditions.mask.to(out)
        return (conditions, renders, mask, paint_holes(renders, mask))


NODE_CLASS_MAPPINGS = {"TrajCrafterRenderViews": RenderViews}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterRenderViews": "Render Views"}
