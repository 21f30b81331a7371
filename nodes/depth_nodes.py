"""Depth: Load Depth Model, Estimate Depth, and Depth From Image (another pack's depth IMAGE)."""

from __future__ import annotations

from trajcrafter_core.specs import DEPTH_POLARITIES

from . import bridge
from .common import DEPTH, DEPTH_MODEL, DepthMaps, require
from .declare import Bool, Choice, Int, NodeDef, Out, Result, Socket

ESTIMATORS = ("depthcrafter", "depth_anything_v2")
PRECISIONS = ("auto", "fp16", "bf16", "fp32")


def folder_choices(kind: str):
    """Folders of this kind in models/trajectorycrafter (the official name always listed first)."""
    from .folders import choices

    return choices(kind)


class DepthModel:
    """A loaded depth estimator, parked on the offload device between runs."""

    def __init__(self, estimator, name: str):
        self.estimator = estimator
        self.name = name

    def place(self, device) -> None:
        self.estimator.place(device)


def _layouts(estimator, depthcrafter_unet, svd, depth_anything):
    from trajcrafter_core.depth.depth_anything import DEPTH_ANYTHING_LAYOUT
    from trajcrafter_core.depth.depthcrafter import UNET_LAYOUT, svd_layout

    if estimator == "depthcrafter":
        return [(bridge.model_path(depthcrafter_unet), UNET_LAYOUT),
                (bridge.model_path(svd), svd_layout(prefer_fp16=False))]
    return [(bridge.model_path(depth_anything), DEPTH_ANYTHING_LAYOUT)]


def check_depth_folders(estimator, depthcrafter_unet, svd, depth_anything, download_missing):
    """Before the queue runs: the chosen folders hold their files (or will be downloaded)."""
    if download_missing or estimator not in ESTIMATORS:
        return True
    from trajcrafter_core.depth.weights import missing_files

    for folder, layout in _layouts(estimator, depthcrafter_unet, svd, depth_anything):
        missing = missing_files(folder, layout)
        if missing:
            names = ", ".join(" or ".join(n.names) for n in missing)
            return (f"{layout.what}: {folder} lacks {names}. Download https://huggingface.co/{layout.hub_id} into "
                    f"it, or turn on download_missing.")
    return True


def load_depth_model(estimator, depthcrafter_unet, svd, depth_anything, precision, download_missing):
    require("depth models")
    if download_missing:
        require("Hub downloads")
    from trajcrafter_core.depth.choice import load_estimator
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.specs import DepthSpec

    if estimator not in ESTIMATORS:
        raise TrajCrafterError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}.")
    if precision == "auto":  # for the device it will run on, not the one it waits on
        precision = "fp16" if getattr(bridge.torch_device(), "type", "cpu") == "cuda" else "fp32"
    (first, _), *rest = _layouts(estimator, depthcrafter_unet, svd, depth_anything)
    spec = DepthSpec("depthcrafter" if estimator == "depthcrafter" else "depth_anything_v2", str(first),
                     svd_path=str(rest[0][0]) if rest else None, dtype=precision, download=bool(download_missing))
    bar = bridge.Progress(1)
    model = load_estimator(spec, device=bridge.offload_device(), progress=bar.callback, cancel=bridge.cancel_requested)
    return (DepthModel(model, estimator),)


LOAD_DEPTH_MODEL = NodeDef(
    id="TrajCrafterLoadDepthModel",
    display_name="Load Depth Model (TrajectoryCrafter)",
    category="depth",
    description=(
        "Loads a video depth estimator from ComfyUI's models/trajectorycrafter/ folder (or folders named "
        "'trajectorycrafter' in extra_model_paths.yaml). depthcrafter: the official choice, needs the "
        "'DepthCrafter' UNet folder and the 'stable-video-diffusion-img2vid-xt' folder; depth_anything_v2: per "
        "frame, aligned over time, much faster (Small is Apache-2.0; Base / Large are non-commercial). With "
        "download_missing the official Hub repositories are fetched into that folder (safetensors only; a "
        "failed download leaves nothing behind). Weights that do not match their config are refused."
    ),
    inputs=(
        Choice("estimator", list(ESTIMATORS), "depthcrafter", "depthcrafter (official, best over time) or "
               "depth_anything_v2 (fast)."),
        Choice("depthcrafter_unet", lambda: folder_choices("depthcrafter_unet"), None,
               "DepthCrafter UNet folder (tencent/DepthCrafter)."),
        Choice("svd", lambda: folder_choices("svd"), None, "Stable Video Diffusion img2vid(-xt) folder: VAE, image "
               "encoder, scheduler for DepthCrafter."),
        Choice("depth_anything", lambda: folder_choices("depth_anything"), None,
               "Depth Anything V2 folder (transformers layout)."),
        Choice("precision", list(PRECISIONS), "auto", "auto: fp16 on GPU, fp32 on CPU."),
        Bool("download_missing", False, "Download the official folders from the Hugging Face Hub if they are missing."),
    ),
    outputs=(Out("depth_model", DEPTH_MODEL, "The estimator, for Estimate Depth."),),
    run=load_depth_model,
    aliases=("trajectorycrafter", "depthcrafter", "depth anything", "depth model"),
    validate=check_depth_folders,
)


def _depth_outputs(depth, source: str) -> Result:
    """``(DepthMaps on the CPU, colourised preview IMAGE)`` and the preview shown in the node."""
    from trajcrafter_core.depth import colorize_depth

    preview = colorize_depth(depth).to(bridge.intermediate_device())
    return Result((DepthMaps(depth.cpu(), source=source), preview), previews=preview)


DEPTH_OUTPUTS = (
    Out("depth", DEPTH, "Depth [frames, height, width], > 0, larger = farther."),
    Out("preview", "IMAGE", "Colourised depth (near = bright)."),
)


def estimate_depth(frames, depth_model, steps, window, overlap, depth_seed, max_res):
    from trajcrafter_core.depth.choice import depth_for_frames
    from trajcrafter_core.errors import TrajCrafterError

    if not isinstance(depth_model, DepthModel):
        raise TrajCrafterError(f"depth_model must come from Load Depth Model, got {type(depth_model).__name__}.")
    options = {}
    if depth_model.name == "depthcrafter":
        options = dict(num_inference_steps=steps, window_size=window, overlap=overlap, seed=depth_seed, max_res=max_res)
    bar = bridge.Progress(1)
    device = bridge.torch_device()
    depth_model.place(device)
    try:
        depth = depth_for_frames(frames.cpu(), depth_model.estimator, progress=bar.callback,
                                 cancel=bridge.cancel_requested, **options)
    finally:
        depth_model.place(bridge.offload_device())
        bridge.soft_empty_cache()
    return _depth_outputs(depth, depth_model.name)


ESTIMATE_DEPTH = NodeDef(
    id="TrajCrafterEstimateDepth",
    display_name="Estimate Depth (TrajectoryCrafter)",
    category="depth",
    description=(
        "Estimates depth for every frame and maps it with the official disparity→depth rule, so renders match "
        "what the model was trained on. Steps, window, overlap, seed and max resolution apply to DepthCrafter "
        "(official: 5 steps, windows of 110 frames overlapping by 25, seed 42, 1024 px). Outputs the raw depth "
        "and a colourised preview (near = bright), also shown in the node."
    ),
    inputs=(
        Socket("frames", "IMAGE", "Video frames [frames, height, width, 3]."),
        Socket("depth_model", DEPTH_MODEL, "From Load Depth Model."),
        Int("steps", 5, 1, 50, "DepthCrafter denoising steps (official 5)."),
        Int("window", 110, 2, 1000, "DepthCrafter frames per window (official 110)."),
        Int("overlap", 25, 0, 500, "DepthCrafter frames shared by neighbouring windows (official 25)."),
        Int("depth_seed", 42, 0, 2**32 - 1, "DepthCrafter noise seed (official 42); fixed, so the same frames give "
            "the same depth."),
        Int("max_res", 1024, 64, 4096, "DepthCrafter works at most at this long side (multiples of 64; official "
            "1024).", step=64),
    ),
    outputs=DEPTH_OUTPUTS,
    run=estimate_depth,
    aliases=("trajectorycrafter", "depthcrafter", "video depth"),
    previews=True,
)


def depth_from_image(depth_image, polarity, frames=None):
    from trajcrafter_core.depth import depth_from_image as convert

    depth = convert(depth_image.cpu(), frames=None if frames is None else frames.cpu(), polarity=polarity, resize=True)
    return _depth_outputs(depth, "image")


DEPTH_FROM_IMAGE = NodeDef(
    id="TrajCrafterDepthFromImage",
    display_name="Depth From Image (TrajectoryCrafter)",
    category="depth",
    description=(
        "Turns a grey depth video from any other node pack (Depth Anything, Marigold, VideoDepthAnything, a "
        "loaded depth video ...) into depth for Lift Point Cloud, through the same official mapping as "
        "Estimate Depth. polarity: near_bright for disparity-like maps (most packs), far_bright for depth-like "
        "maps. Give the frames to check the frame count and resize the maps to the frames' size."
    ),
    inputs=(
        Socket("depth_image", "IMAGE", "Grey depth maps [frames, height, width, 3] from another pack."),
        Choice("polarity", list(DEPTH_POLARITIES), "near_bright", "near_bright: near = white (disparity-like, most "
               "packs); far_bright: far = white."),
        Socket("frames", "IMAGE", "The video the maps belong to: checks the frame count, resizes maps to its size.",
               optional=True),
    ),
    outputs=DEPTH_OUTPUTS,
    run=depth_from_image,
    aliases=("trajectorycrafter", "external depth", "depth map"),
    previews=True,
)

NODES = (LOAD_DEPTH_MODEL, ESTIMATE_DEPTH, DEPTH_FROM_IMAGE)
