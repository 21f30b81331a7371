"""Render: Render Views — point cloud + trajectory → the sampler's conditions, renders (IMAGE),
hole mask (MASK) and a preview with the holes painted magenta."""

from __future__ import annotations

from trajcrafter_core.official import REFERENCE_FRAMES, RENDER_MODES
from trajcrafter_core.sizing import DEFAULT_SIZE_POLICY, SIZE_POLICIES

from . import bridge
from .common import CONDITIONS, POINT_CLOUD, TRAJECTORY
from .declare import Bool, Choice, Int, NodeDef, Out, Result, Socket


def render_views(point_cloud, trajectory, render_mode, clean_holes, size_policy=DEFAULT_SIZE_POLICY,
                 sample_height=0, sample_width=0, reference_frames=REFERENCE_FRAMES):
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
    preview = paint_holes(renders, mask)
    return Result((conditions, renders, mask, preview), previews=preview)


RENDER_VIEWS = NodeDef(
    id="TrajCrafterRenderViews",
    display_name="Render Views (TrajectoryCrafter)",
    category="render",
    description=(
        "Renders the point cloud from each camera of the trajectory at the frames' own size, then resizes frames, "
        "renders (bilinear) and the hole mask (nearest) to the model's size, as the official demo does (it renders "
        "at 576x1024 and resizes to 384x672). size_policy: keep_aspect (about the official pixel count at the "
        "clip's aspect: 384x672 for 16:9, never distorts portrait or square clips) or official (384x672 for every "
        "clip); sample_height / sample_width override it. The conditions (frames, renders, mask, reference frames) "
        "feed the TrajectoryCrafter Sampler. 'official' reproduces the official renderer (the released model was "
        "trained on it); 'zbuffer' uses a hard depth test with flying-pixel removal. clean_holes is the official "
        "--mask option (holes dilated by 5x5). The node shows the renders with holes painted magenta."
    ),
    inputs=(
        Socket("point_cloud", POINT_CLOUD, "From Lift Point Cloud."),
        Socket("trajectory", TRAJECTORY, "From Camera Trajectory, made for this point cloud."),
        Choice("render_mode", list(RENDER_MODES), "official", "official: as the released model was trained; "
               "zbuffer: hard depth test, fewer see-through artefacts."),
        Bool("clean_holes", True, "Dilate holes by 5x5 and blank their rims (official --mask, on in the official "
             "run.sh)."),
        Choice("size_policy", list(SIZE_POLICIES), DEFAULT_SIZE_POLICY, "Model size: keep_aspect = about 384x672 "
               "pixels at the clip's aspect (exactly 384x672 for 16:9); official = 384x672 for every clip (squashes "
               "other aspects, as the official demo)."),
        Int("sample_height", 0, 0, 4096, "Model height in pixels (multiple of 16); 0 = from size_policy.", step=16,
            optional=True),
        Int("sample_width", 0, 0, 4096, "Model width in pixels (multiple of 16); 0 = from size_policy.", step=16,
            optional=True),
        Int("reference_frames", REFERENCE_FRAMES, 1, 200, "Source frames the model cross-attends to (official 10: "
            "the first ones, the last ones for bullet time).", optional=True),
    ),
    outputs=(
        Out("conditions", CONDITIONS, "Frames, renders, hole mask and reference frames at the model's size, for the "
            "TrajectoryCrafter Sampler."),
        Out("renders", "IMAGE", "Rendered frames at the model's size, holes black, [frames, height, width, 3]."),
        Out("hole_mask", "MASK", "1 where nothing was rendered (to be generated), [frames, height, width]."),
        Out("preview", "IMAGE", "Renders with holes painted magenta."),
    ),
    run=render_views,
    aliases=("trajectorycrafter", "render", "splat", "warp", "holes"),
    previews=True,
)

NODES = (RENDER_VIEWS,)
