"""Several camera paths of one clip, and long clips: Camera Paths → Render Many Views →
TrajectoryCrafter Sampler (Many Paths), and Sampling Options for the samplers.

Thin wrappers over :func:`trajcrafter_core.redirect.render_conditions_many` and
:func:`trajcrafter_core.redirect.generate` (one text and reference encoding, paths batched).
"""

from __future__ import annotations

from trajcrafter_core.official import REFERENCE_FRAMES
from trajcrafter_core.sizing import DEFAULT_SIZE_POLICY

from . import bridge
from .common import CONDITIONS_LIST, POINT_CLOUD, SAMPLING_OPTIONS, TRAJECTORIES, TRAJECTORY
from .declare import Int, NodeDef, Out, Result, Socket
from .render_nodes import RENDER_VIEWS
from .sampler_nodes import SAMPLER, run_generate

MAX_PATHS = 6


def _label(index: int, trajectory) -> str:
    return f"path {index}: {trajectory.mode}, {len(trajectory)} frames"


def camera_paths(trajectory_1, paths=None, trajectory_2=None, trajectory_3=None, trajectory_4=None,
                 trajectory_5=None, trajectory_6=None):
    from trajcrafter_core.camera import Trajectory
    from trajcrafter_core.errors import TrajCrafterError

    given = (trajectory_1, trajectory_2, trajectory_3, trajectory_4, trajectory_5, trajectory_6)
    trajectories = [t for t in given if t is not None]
    for t in trajectories:
        if not isinstance(t, Trajectory):
            raise TrajCrafterError(f"camera paths must come from Camera Trajectory, got {type(t).__name__}.")
    collected = list(paths or [])
    collected += [(_label(len(collected) + i + 1, t), t) for i, t in enumerate(trajectories)]
    return (collected,)


CAMERA_PATHS = NodeDef(
    id="TrajCrafterCameraPaths",
    display_name="Camera Paths (TrajectoryCrafter)",
    category="camera",
    description=(
        f"Puts up to {MAX_PATHS} camera paths made for the same point cloud into one list for Render Many Views; "
        "chain another Camera Paths into 'paths' for more. Each path gives its own video, sampled together "
        "(one text encoding, one reference encoding, one transformer batch when memory allows)."
    ),
    inputs=(
        Socket("trajectory_1", TRAJECTORY, "Camera path 1 (from Camera Trajectory)."),
        Socket("paths", TRAJECTORIES, "More paths from another Camera Paths node (they come first).", optional=True),
        *(Socket(f"trajectory_{k}", TRAJECTORY, f"Camera path {k}.", optional=True) for k in range(2, MAX_PATHS + 1)),
    ),
    outputs=(Out("paths", TRAJECTORIES, "The camera paths, in order (chained paths first)."),),
    run=camera_paths,
    aliases=("trajectorycrafter", "camera", "many paths", "several cameras", "list"),
)


def render_many_views(point_cloud, paths, render_mode, clean_holes, size_policy=DEFAULT_SIZE_POLICY,
                      sample_height=0, sample_width=0, reference_frames=REFERENCE_FRAMES):
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.pointcloud import PointCloud
    from trajcrafter_core.redirect import render_conditions_many
    from trajcrafter_core.video import compare_videos, paint_holes

    if not isinstance(point_cloud, PointCloud):
        raise TrajCrafterError(f"point_cloud must come from Lift Point Cloud, got {type(point_cloud).__name__}.")
    if not paths:
        raise TrajCrafterError("paths is empty: connect Camera Paths.")
    if bool(sample_height) != bool(sample_width):
        raise TrajCrafterError("give both sample_height and sample_width (or leave both 0 to use size_policy).")
    labels, trajectories = zip(*paths)
    bar = bridge.Progress(sum(len(t) for t in trajectories))
    device = bridge.torch_device()
    try:
        conditions = render_conditions_many(
            point_cloud.frames, point_cloud.depths, [t.to("cpu") for t in trajectories], point_cloud.K[0].cpu(),
            render_mode=render_mode, clean_holes=bool(clean_holes), size_policy=size_policy,
            sample_size=(sample_height, sample_width) if sample_height else None,
            num_reference_frames=int(reference_frames), progress=bar.callback, device=device)
    finally:
        if getattr(device, "type", "cpu") != "cpu":
            bridge.soft_empty_cache()
    comparison = compare_videos([paint_holes(c.render, c.mask) for c in conditions], labels)
    comparison = comparison.to(bridge.intermediate_device())
    return Result((list(zip(labels, conditions)), comparison), previews=comparison)


RENDER_MANY_VIEWS = NodeDef(
    id="TrajCrafterRenderManyViews",
    display_name="Render Many Views (TrajectoryCrafter)",
    category="render",
    description=(
        "Renders the point cloud along each camera path (as Render Views does for one: at the frames' size, then "
        "resized to the model's size) and shows the renders side by side, holes magenta. The conditions feed "
        "TrajectoryCrafter Sampler (Many Paths)."
    ),
    inputs=(
        Socket("point_cloud", POINT_CLOUD, "From Lift Point Cloud."),
        Socket("paths", TRAJECTORIES, "From Camera Paths, made for this point cloud."),
        *(i for i in RENDER_VIEWS.inputs if i.name not in ("point_cloud", "trajectory")),
    ),
    outputs=(
        Out("conditions", CONDITIONS_LIST, "One set of sampler conditions per camera path."),
        Out("comparison", "IMAGE", "The renders of every path side by side (holes magenta), [frames, height, "
            "width, 3]."),
    ),
    run=render_many_views,
    aliases=("trajectorycrafter", "render", "many paths", "compare"),
    previews=True,
)


def sampling_options_node(window_frames, overlap_frames, batch_size):
    from trajcrafter_core.windows import check_window

    check_window(int(window_frames), int(overlap_frames) or None)
    return (dict(window_frames=int(window_frames), overlap_frames=int(overlap_frames) or None,
                 batch_size=int(batch_size) or None),)


def _check_window(window_frames, overlap_frames):
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.windows import check_window

    try:
        check_window(int(window_frames), int(overlap_frames) or None)
    except TrajCrafterError as exc:
        return str(exc)
    return True


SAMPLING_OPTIONS_NODE = NodeDef(
    id="TrajCrafterSamplingOptions",
    display_name="Sampling Options (TrajectoryCrafter)",
    category="sampling",
    description=(
        "Clips longer than window_frames are generated in overlapping windows of that length (8m+1; 49 native), "
        "each continuing the last: it sees the previous window's last overlap_frames generated frames as known "
        "content, and the seams are cross-faded. Memory stays that of one window; time grows linearly with the "
        "length. batch_size: camera paths per transformer batch in the Many Paths sampler (0 = all at once, halved "
        "when GPU memory runs out)."
    ),
    inputs=(
        Int("window_frames", 49, 9, 1001, "Frames the model generates at a time (8m+1; 49 native). Longer clips are "
            "split into overlapping windows.", step=8),
        Int("overlap_frames", 0, 0, 500, "Frames each window shares with the one before (0 = about a quarter window: "
            "13 for 49); at most half a window."),
        Int("batch_size", 0, 0, 64, "Camera paths per transformer batch (0 = all at once, halved when GPU memory "
            "runs out; 1 = one at a time)."),
    ),
    outputs=(Out("options", SAMPLING_OPTIONS, "For the 'options' input of a TrajectoryCrafter sampler."),),
    run=sampling_options_node,
    aliases=("trajectorycrafter", "long clip", "window", "overlap", "batch"),
    validate=_check_window,
)


def sample_many(model, conditions, prompt, steps, guidance, seed, scheduler, negative_prompt="", options=None):
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.redirect import Conditions
    from trajcrafter_core.video import compare_videos

    if not conditions or not all(isinstance(c, Conditions) for _, c in conditions):
        raise TrajCrafterError("conditions must come from Render Many Views.")
    labels, items = zip(*conditions)
    videos = run_generate("TrajectoryCrafter Sampler (Many Paths)", model, [c.to("cpu") for c in items], prompt,
                          steps, guidance, seed, scheduler, negative_prompt, options)
    out = bridge.intermediate_device()
    kept = [c.kept(v) for c, v in zip(items, videos)]
    return ([v.to(out) for v in kept], compare_videos(kept, labels).to(out))


SAMPLER_MANY = NodeDef(
    id="TrajCrafterSamplerMany",
    display_name="TrajectoryCrafter Sampler (Many Paths)",
    category="sampling",
    description=(
        "Generates one video per camera path from Render Many Views. The prompt is encoded once, the reference "
        "frames once, and the paths share the transformer's batch (Sampling Options' batch_size); each video is "
        "what the TrajectoryCrafter Sampler gives for that path alone with the same seed. 'videos' is a list (nodes "
        "after it run once per video, e.g. one saved file each); 'comparison' shows them side by side."
    ),
    inputs=tuple(
        Socket("conditions", CONDITIONS_LIST, "From Render Many Views.") if i.name == "conditions" else
        (Socket("options", SAMPLING_OPTIONS, "From Sampling Options: long clips and batching.", optional=True)
         if i.name == "options" else i)
        for i in SAMPLER.inputs
    ),
    outputs=(
        Out("videos", "IMAGE", "One redirected video per camera path [frames, height, width, 3] (a list).",
            is_list=True),
        Out("comparison", "IMAGE", "All videos side by side, labelled."),
    ),
    run=sample_many,
    aliases=("trajectorycrafter", "sampler", "many paths", "batch"),
)

NODES = (CAMERA_PATHS, RENDER_MANY_VIEWS, SAMPLING_OPTIONS_NODE, SAMPLER_MANY)
