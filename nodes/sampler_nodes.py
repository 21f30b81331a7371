"""TrajectoryCrafter Sampler: model + source + render + hole mask + prompt → redirected video."""

from __future__ import annotations

import logging

from . import bridge
from .common import CATEGORY, MAX_SEED, MODEL, TRAJECTORY

REFERENCE_FROM = ("auto", "start", "end")
logger = logging.getLogger(__name__)


class TrajectoryCrafterSampler:
    """Fill the holes of the renders with Ref-DiT video diffusion, guided by the source video."""

    DESCRIPTION = (
        "Generates the video seen from the new camera path: the renders and hole mask condition the "
        "diffusion model, the source frames are its reference (Ref-DiT), the prompt describes the "
        "scene (the official quality suffix is appended; an empty negative prompt uses the official "
        "one). The model takes 8m+1 frames (9, 17, 25, 33, 41, 49 native) with sides that are multiples "
        "of 16; other clips are padded (last frame repeated, bottom/right edges replicated) and the "
        "result is trimmed back to the input's frame count and size (logged in the console). "
        "Official settings: 50 steps, guidance 6, seed 43, DDIM_Origin, 10 reference frames. "
        "reference_from auto takes the trajectory's choice (the last frames for bullet time). "
        "Cancel stops after the current step; VRAM is freed when the node finishes or stops."
    )
    CATEGORY = CATEGORY
    FUNCTION = "sample"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("The redirected video [frames, height, width, 3].",)

    @classmethod
    def INPUT_TYPES(cls):
        from trajcrafter_core.checkpoints import SCHEDULERS  # official sampler names

        return {
            "required": {
                "model": (MODEL, {"tooltip": "From Load TrajectoryCrafter Model."}),
                "source": ("IMAGE", {"tooltip": "The source video frames (what the point cloud was lifted from)."}),
                "renders": ("IMAGE", {"tooltip": "Render Views' renders, one per source frame, same size. Any frame count "
                                                 "and size: padded to 8m+1 frames and multiples of 16 for the model, output trimmed back."}),
                "hole_mask": ("MASK", {"tooltip": "Render Views' hole mask (1 = to generate), same frames and size."}),
                "prompt": ("STRING", {"default": "", "multiline": True, "tooltip": "What the video shows (a caption of the source)."}),
                "steps": ("INT", {"default": 50, "min": 1, "max": 500, "tooltip": "Denoising steps (official 50)."}),
                "guidance": ("FLOAT", {"default": 6.0, "min": 1.0, "max": 30.0, "step": 0.1, "tooltip": "Classifier-free guidance scale (official 6; 1 = off, faster)."}),
                "seed": ("INT", {"default": 43, "min": 0, "max": MAX_SEED, "control_after_generate": True, "tooltip": "Noise seed (official 43)."}),
                "scheduler": (list(SCHEDULERS), {"default": "DDIM_Origin", "tooltip": "Sampler, by its official name (official: DDIM_Origin)."}),
                "reference_frames": ("INT", {"default": 10, "min": 1, "max": 200, "tooltip": "Source frames the model looks at through cross-attention (official 10)."}),
                "reference_from": (list(REFERENCE_FROM), {"default": "auto", "tooltip": "Take the reference frames from the start or the end of the clip; auto asks the trajectory (bullet time: end)."}),
            },
            "optional": {
                "negative_prompt": ("STRING", {"default": "", "multiline": True, "tooltip": "What to avoid; empty = the official negative prompt."}),
                "trajectory": (TRAJECTORY, {"tooltip": "Optional: the Camera Trajectory, so reference_from auto follows its mode."}),
            },
        }

    def sample(self, model, source, renders, hole_mask, prompt, steps, guidance, seed, scheduler, reference_frames,
               reference_from, negative_prompt="", trajectory=None):
        import torch

        from trajcrafter_core.errors import TrajCrafterError

        from .model_nodes import TrajectoryCrafterModel

        if not isinstance(model, TrajectoryCrafterModel):
            raise TrajCrafterError(f"model must come from Load TrajectoryCrafter Model, got {type(model).__name__}.")
        if reference_from == "auto":
            reference_from = getattr(trajectory, "reference_from", "start") if trajectory is not None else "start"
        pipe = model.pipe
        source, renders, hole = pipe.check_inputs(source.cpu(), renders.cpu(), hole_mask.cpu(), shape_policy="pad")
        pipe.set_scheduler(scheduler)
        bar = bridge.Progress(steps)

        def on_step(done, total, _latents):
            bar.update_absolute(done, total)
            bridge.check_interrupt()

        bridge.check_interrupt()
        try:
            model.onload()
            frames = pipe(
                source=source, render=renders, hole_mask=hole, prompt=prompt,
                negative_prompt=(negative_prompt or "").strip() or None,
                num_inference_steps=int(steps), guidance_scale=float(guidance),
                generator=torch.Generator("cpu").manual_seed(int(seed)),
                num_reference_frames=int(reference_frames), reference_from=reference_from,
                callback=on_step, shape_policy="pad",
            )
            for note in pipe.notes:
                logger.warning("TrajectoryCrafter Sampler: %s", note)
        finally:
            model.park()
            bridge.soft_empty_cache()
        return (frames.to(bridge.intermediate_device()),)


NODE_CLASS_MAPPINGS = {"TrajCrafterSampler": TrajectoryCrafterSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterSampler": "TrajectoryCrafter Sampler"}
