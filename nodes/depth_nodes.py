"""Depth: Load Depth Model, Estimate Depth, and Depth From Image (another pack's depth IMAGE)."""

from __future__ import annotations

from trajcrafter_core.specs import DEPTH_POLARITIES

from . import bridge
from .common import CATEGORY, DEPTH, DEPTH_MODEL, DepthMaps, require

ESTIMATORS = ("depthcrafter", "depth_anything_v2")
PRECISIONS = ("auto", "fp16", "bf16", "fp32")
POLARITIES = DEPTH_POLARITIES


def folder_choices(kind: str):
    """Folders of this kind in models/trajectorycrafter (the official name always listed first)."""
    from .folders import choices

    return choices(kind)


class DepthModel:
    """A loaded depth estimator (``estimator.place(device)``), parked on the offload device between runs."""

    def __init__(self, estimator, name: str):
        self.estimator = estimator
        self.name = name

    def place(self, device) -> None:
        self.estimator.place(device)


class LoadDepthModel:
    """Load DepthCrafter (official) or Depth Anything V2 from models/trajectorycrafter/."""

    DESCRIPTION = (
        "Loads a video depth estimator from ComfyUI's models/trajectorycrafter/ folder (or folders "
        "named 'trajectorycrafter' in extra_model_paths.yaml). depthcrafter: the official choice, "
        "needs the 'DepthCrafter' UNet folder and the 'stable-video-diffusion-img2vid-xt' folder; "
        "depth_anything_v2: per frame, aligned over time, much faster (Small is Apache-2.0; Base / "
        "Large are non-commercial). With download_missing the official Hub repositories are fetched "
        "into that folder (safetensors only)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (DEPTH_MODEL,)
    RETURN_NAMES = ("depth_model",)
    OUTPUT_TOOLTIPS = ("The estimator, for Estimate Depth.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "estimator": (list(ESTIMATORS), {"default": "depthcrafter", "tooltip": "depthcrafter (official, best over time) or depth_anything_v2 (fast)."}),
                "depthcrafter_unet": (folder_choices("depthcrafter_unet"), {"tooltip": "DepthCrafter UNet folder (tencent/DepthCrafter)."}),
                "svd": (folder_choices("svd"), {"tooltip": "Stable Video Diffusion img2vid(-xt) folder: VAE, image encoder, scheduler for DepthCrafter."}),
                "depth_anything": (folder_choices("depth_anything"), {"tooltip": "Depth Anything V2 folder (transformers layout)."}),
                "precision": (list(PRECISIONS), {"default": "auto", "tooltip": "auto: fp16 on GPU, fp32 on CPU."}),
                "download_missing": ("BOOLEAN", {"default": False, "tooltip": "Download the official folders from the Hugging Face Hub if they are missing."}),
            }
        }

    def load(self, estimator, depthcrafter_unet, svd, depth_anything, precision, download_missing):
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
        if estimator == "depthcrafter":
            spec = DepthSpec("depthcrafter", bridge.model_path(depthcrafter_unet), svd_path=bridge.model_path(svd), dtype=precision,
                             download=bool(download_missing))
        else:
            spec = DepthSpec("depth_anything_v2", bridge.model_path(depth_anything), dtype=precision, download=bool(download_missing))
        bar = bridge.Progress(1)
        model = load_estimator(spec, device=bridge.offload_device(), progress=bar.callback, cancel=bridge.cancel_requested)
        return (DepthModel(model, estimator),)


class _DepthOutputs:
    """Outputs shared by the nodes that produce depth: the depth and its colourised preview."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (DEPTH, "IMAGE")
    RETURN_NAMES = ("depth", "preview")
    OUTPUT_TOOLTIPS = ("Depth [frames, height, width], > 0, larger = farther.", "Colourised depth (near = bright).")

    @staticmethod
    def depth_outputs(depth, source: str):
        """``(DepthMaps on the CPU, preview IMAGE on ComfyUI's intermediate device)``."""
        from trajcrafter_core.depth import colorize_depth

        preview = colorize_depth(depth).to(bridge.intermediate_device())
        return (DepthMaps(depth.cpu(), source=source), preview)


class EstimateDepth(_DepthOutputs):
    """Video depth from frames, mapped to the depth range TrajectoryCrafter was trained on."""

    DESCRIPTION = (
        "Estimates depth for every frame and maps it with the official disparity→depth rule, so "
        "renders match what the model was trained on. Steps, window, overlap, seed and max "
        "resolution apply to DepthCrafter (official: 5 steps, windows of 110 frames overlapping by "
        "25, seed 42, 1024 px). Outputs the raw depth and a colourised preview (near = bright)."
    )
    FUNCTION = "estimate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": ("IMAGE", {"tooltip": "Video frames [frames, height, width, 3]."}),
                "depth_model": (DEPTH_MODEL, {"tooltip": "From Load Depth Model."}),
                "steps": ("INT", {"default": 5, "min": 1, "max": 50, "tooltip": "DepthCrafter denoising steps (official 5)."}),
                "window": ("INT", {"default": 110, "min": 2, "max": 1000, "tooltip": "DepthCrafter frames per window (official 110)."}),
                "overlap": ("INT", {"default": 25, "min": 0, "max": 500, "tooltip": "DepthCrafter frames shared by neighbouring windows (official 25)."}),
                "depth_seed": ("INT", {"default": 42, "min": 0, "max": 2**32 - 1, "tooltip": "DepthCrafter noise seed (official 42); fixed, so the same frames give the same depth."}),
                "max_res": ("INT", {"default": 1024, "min": 64, "max": 4096, "step": 64, "tooltip": "DepthCrafter works at most at this long side (multiples of 64; official 1024)."}),
            }
        }

    def estimate(self, frames, depth_model, steps, window, overlap, depth_seed, max_res):
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
            depth = depth_for_frames(frames.cpu(), depth_model.estimator, progress=bar.update_absolute,
                                     cancel=bridge.cancel_requested, **options)
        finally:
            depth_model.place(bridge.offload_device())
            bridge.soft_empty_cache()
        return self.depth_outputs(depth, depth_model.name)


class DepthFromImage(_DepthOutputs):
    """Use another pack's depth map (an IMAGE batch) as our depth."""

    DESCRIPTION = (
        "Turns a grey depth video from any other node pack (Depth Anything, Marigold, "
        "VideoDepthAnything, a loaded depth video ...) into depth for Lift Point Cloud, through the "
        "same official mapping as Estimate Depth. polarity: near_bright for disparity-like maps "
        "(most packs), far_bright for depth-like maps. Give the frames to check the frame count "
        "and resize the maps to the frames' size."
    )
    FUNCTION = "convert"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "depth_image": ("IMAGE", {"tooltip": "Grey depth maps [frames, height, width, 3] from another pack."}),
                "polarity": (list(POLARITIES), {"default": "near_bright", "tooltip": "near_bright: near = white (disparity-like, most packs); far_bright: far = white."}),
            },
            "optional": {
                "frames": ("IMAGE", {"tooltip": "The video the maps belong to: checks the frame count, resizes maps to its size."}),
            },
        }

    def convert(self, depth_image, polarity, frames=None):
        from trajcrafter_core.depth import depth_from_image

        depth = depth_from_image(depth_image.cpu(), frames=None if frames is None else frames.cpu(),
                                 polarity=polarity, resize=True)
        return self.depth_outputs(depth, "image")


NODE_CLASS_MAPPINGS = {
    "TrajCrafterLoadDepthModel": LoadDepthModel,
    "TrajCrafterEstimateDepth": EstimateDepth,
    "TrajCrafterDepthFromImage": DepthFromImage,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "TrajCrafterLoadDepthModel": "Load Depth Model",
    "TrajCrafterEstimateDepth": "Estimate Depth",
    "TrajCrafterDepthFromImage": "Depth From Image",
}
