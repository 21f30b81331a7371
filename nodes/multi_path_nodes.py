"""Several camera paths of one clip, and long clips: Camera Paths → Render Many Views →
TrajectoryCrafter Sampler (Many Paths), and Sampling Options for the samplers.

Thin wrappers over :func:`trajcrafter_core.redirect.render_conditions_many` and
:func:`trajcrafter_core.redirect.generate` (one text and reference encoding, paths batched).
"""

from __future__ import annotations

import logging

from trajcrafter_core.sizing import DEFAULT_SIZE_POLICY, SIZE_POLICIES
from trajcrafter_core.specs import RENDER_MODES, SCHEDULER_CLASSES

from . import bridge
from .common import CATEGORY, CONDITIONS_LIST, MAX_SEED, MODEL, POINT_CLOUD, SAMPLING_OPTIONS, TRAJECTORIES, TRAJECTORY

logger = logging.getLogger(__name__)
MAX_PATHS = 6


def _label(index: int, trajectory) -> str:
    return f"path {index}: {trajectory.mode}, {len(trajectory)} frames"


class CameraPaths:
    """Collect camera paths (from Camera Trajectory or Camera From Load 3D) into one list."""

    DESCRIPTION = (
        f"Puts up to {MAX_PATHS} camera paths made for the same point cloud into one list for Render Many Views; "
        "chain another Camera Paths into 'paths' for more. Each path gives its own video, sampled together "
        "(one text encoding, one reference encoding, one transformer batch when memory allows)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "collect"
    RETURN_TYPES = (TRAJECTORIES,)
    RETURN_NAMES = ("paths",)
    OUTPUT_TOOLTIPS = ("The camera paths, in order (chained paths first).",)

    @classmethod
    def INPUT_TYPES(cls):
        optional = {"paths": (TRAJECTORIES, {"tooltip": "More paths from another Camera Paths node (they come first)."})}
        for k in range(2, MAX_PATHS + 1):
            optional[f"trajectory_{k}"] = (TRAJECTORY, {"tooltip": f"Camera path {k}."})
        return {"required": {"trajectory_1": (TRAJECTORY, {"tooltip": "Camera path 1."})}, "optional": optional}

    def collect(self, trajectory_1, paths=None, trajectory_2=None, trajectory_3=None, trajectory_4=None,
                trajectory_5=None, trajectory_6=None):
        from trajcrafter_core.camera import Trajectory
        from trajcrafter_core.errors import TrajCrafterError

        given = (trajectory_1, trajectory_2, trajectory_3, trajectory_4, trajectory_5, trajectory_6)
        trajectories = [t for t in given[:MAX_PATHS] if t is not None]
        for t in trajectories:
            if not isinstance(t, Trajectory):
                raise TrajCrafterError(f"camera paths must come from Camera Trajectory, got {type(t).__name__}.")
        collected = list(paths or [])
        collected += [(_label(len(collected) + i + 1, t), t) for i, t in enumerate(trajectories)]
        return (collected,)


class RenderManyViews:
    """Render Views for every camera path of a list, sharing the point cloud and the resized frames."""

    DESCRIPTION = (
        "Renders the point cloud along each camera path (as Render Views does for one: at the frames' size, then "
        "resized to the model's size) and shows the renders side by side, holes magenta. The conditions feed "
        "TrajectoryCrafter Sampler (Many Paths)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = (CONDITIONS_LIST, "IMAGE")
    RETURN_NAMES = ("conditions", "comparison")
    OUTPUT_TOOLTIPS = (
        "One set of sampler conditions per camera path.",
        "The renders of every path side by side (holes magenta), [frames, height, width, 3].",
    )

    @classmethod
    def INPUT_TYPES(cls):
        from .render_nodes import RenderViews

        single = RenderViews.INPUT_TYPES()
        required = {"point_cloud": single["required"]["point_cloud"],
                    "paths": (TRAJECTORIES, {"tooltip": "From Camera Paths, made for this point cloud."})}
        required.update({k: v for k, v in single["required"].items() if k not in ("point_cloud", "trajectory")})
        return {"required": required, "optional": dict(single["optional"])}

    def render(self, point_cloud, paths, render_mode, clean_holes, size_policy=DEFAULT_SIZE_POLICY,
               sample_height=0, sample_width=0, reference_frames=10):
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
        return (list(zip(labels, conditions)), comparison.to(bridge.intermediate_device()))


class SamplingOptions:
    """Long clips and batching for the samplers: window length, overlap, paths per batch."""

    DESCRIPTION = (
        "Clips longer than window_frames are generated in overlapping windows of that length (8m+1; 49 native), "
        "each continuing the last: it sees the previous window's last overlap_frames generated frames as known "
        "content, and the seams are cross-faded. Memory stays that of one window; time grows linearly with the "
        "length. batch_size: camera paths per transformer batch in the Many Paths sampler (0 = all at once, halved "
        "when GPU memory runs out)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "options"
    RETURN_TYPES = (SAMPLING_OPTIONS,)
    RETURN_NAMES = ("options",)
    OUTPUT_TOOLTIPS = ("For the 'options' input of a TrajectoryCrafter sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "window_frames": ("INT", {"default": 49, "min": 9, "max": 1001, "step": 8, "tooltip": "Frames the model generates at a time (8m+1; 49 native). Longer clips are split into overlapping windows."}),
            "overlap_frames": ("INT", {"default": 0, "min": 0, "max": 500, "tooltip": "Frames each window shares with the one before (0 = about a quarter window: 13 for 49); at most half a window."}),
            "batch_size": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "Camera paths per transformer batch (0 = all at once, halved when GPU memory runs out; 1 = one at a time)."}),
        }}

    def options(self, window_frames, overlap_frames, batch_size):
        from trajcrafter_core.windows import check_window

        check_window(int(window_frames), int(overlap_frames) or None)
        return (dict(window_frames=int(window_frames), overlap_frames=int(overlap_frames) or None,
                     batch_size=int(batch_size) or None),)


def sampling_options(options) -> dict:
    """The keyword arguments of :func:`~trajcrafter_core.redirect.generate` an options input gives."""
    from trajcrafter_core.errors import TrajCrafterError

    if options is None:
        return {}
    if not isinstance(options, dict) or not set(options) <= {"window_frames", "overlap_frames", "batch_size"}:
        raise TrajCrafterError("options must come from Sampling Options.")
    return dict(options)


class TrajectoryCrafterSamplerMany:
    """TrajectoryCrafter Sampler for several camera paths of one clip: one video per path."""

    DESCRIPTION = (
        "Generates one video per camera path from Render Many Views. The prompt is encoded once, the reference "
        "frames once, and the paths share the transformer's batch (Sampling Options' batch_size); each video is "
        "what the TrajectoryCrafter Sampler gives for that path alone with the same seed. 'videos' is a list (nodes "
        "after it run once per video, e.g. one saved file each); 'comparison' shows them side by side."
    )
    CATEGORY = CATEGORY
    FUNCTION = "sample"
    RETURN_TYPES = ("IMAGE", "IMAGE")
    RETURN_NAMES = ("videos", "comparison")
    OUTPUT_IS_LIST = (True, False)
    OUTPUT_TOOLTIPS = (
        "One redirected video per camera path [frames, height, width, 3] (a list).",
        "All videos side by side, labelled.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        from .sampler_nodes import TrajectoryCrafterSampler

        single = TrajectoryCrafterSampler.INPUT_TYPES()
        required = {"model": single["required"]["model"],
                    "conditions": (CONDITIONS_LIST, {"tooltip": "From Render Many Views."})}
        required.update({k: v for k, v in single["required"].items() if k not in ("model", "conditions")})
        optional = dict(single["optional"])
        optional.setdefault("options", (SAMPLING_OPTIONS, {"tooltip": "From Sampling Options: long clips and batching."}))
        return {"required": required, "optional": optional}

    def sample(self, model, conditions, prompt, steps, guidance, seed, scheduler, negative_prompt="", options=None):
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.redirect import Conditions, generate
        from trajcrafter_core.video import compare_videos

        from .model_nodes import TrajectoryCrafterModel

        if not isinstance(model, TrajectoryCrafterModel):
            raise TrajCrafterError(f"model must come from Load TrajectoryCrafter Model, got {type(model).__name__}.")
        if not conditions or not all(isinstance(c, Conditions) for _, c in conditions):
            raise TrajCrafterError("conditions must come from Render Many Views.")
        labels, items = zip(*conditions)
        pipe = model.pipe
        pipe.set_scheduler(scheduler)
        bar = bridge.Progress(steps)
        notes = []
        bridge.check_interrupt()
        try:
            model.onload()
            videos = generate(
                pipe, [c.to("cpu") for c in items], prompt=prompt,
                negative_prompt=(negative_prompt or "").strip() or None, num_inference_steps=int(steps),
                guidance_scale=float(guidance), seed=int(seed),
                callback=lambda done, total, _latents: bar.callback(done, total), notes=notes,
                **sampling_options(options))
            for note in notes:
                logger.warning("TrajectoryCrafter Sampler (Many Paths): %s", note)
        finally:
            model.park()
            bridge.soft_empty_cache()
        out = bridge.intermediate_device()
        kept = [c.kept(v) for c, v in zip(items, videos)]
        return ([v.to(out) for v in kept], compare_videos(kept, labels).to(out))


NODE_CLASS_MAPPINGS = {
    "TrajCrafterCameraPaths": CameraPaths,
    "TrajCrafterRenderManyViews": RenderManyViews,
    "TrajCrafterSamplingOptions": SamplingOptions,
    "TrajCrafterSamplerMany": TrajectoryCrafterSamplerMany,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "TrajCrafterCameraPaths": "Camera Paths",
    "TrajCrafterRenderManyViews": "Render Many Views",
    "TrajCrafterSamplingOptions": "Sampling Options (long clips, batching)",
    "TrajCrafterSamplerMany": "TrajectoryCrafter Sampler (Many Paths)",
}
