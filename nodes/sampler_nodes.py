"""TrajectoryCrafter Sampler: model + conditions + prompt → redirected video."""

from __future__ import annotations

import logging

from trajcrafter_core.specs import SCHEDULER_CLASSES

from . import bridge
from .common import CATEGORY, CONDITIONS, MAX_SEED, MODEL, SAMPLING_OPTIONS

logger = logging.getLogger(__name__)


class TrajectoryCrafterSampler:
    """Fill the holes of the renders with Ref-DiT video diffusion, guided by the source video."""

    DESCRIPTION = (
        "Generates the video seen from the new camera path: the renders and hole mask of Render "
        "Views condition the diffusion model, its reference frames are what the model looks at "
        "(Ref-DiT), the prompt describes the scene (the official quality suffix is appended; an "
        "empty negative prompt uses the official one). The model takes 8m+1 frames (9, 17, 25, 33, "
        "41, 49 native); other counts are padded (last frame repeated) and trimmed back (logged in "
        "the console). Longer clips, of any length, are generated in overlapping 49-frame windows that "
        "continue each other (set the window in Sampling Options). Direct mode drops its camera-move frames from the output, as the official "
        "demo saves it. Official settings: 50 steps, guidance 6, seed 43, DDIM_Origin. Cancel stops "
        "after the current step; VRAM is freed when the node finishes or stops."
    )
    CATEGORY = CATEGORY
    FUNCTION = "sample"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("The redirected video [frames, height, width, 3] at the model's size.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From Load TrajectoryCrafter Model."}),
                "conditions": (CONDITIONS, {"tooltip": "From Render Views: frames, renders, hole mask and reference frames at the model's size."}),
                "prompt": ("STRING", {"default": "", "multiline": True, "tooltip": "What the video shows (a caption of the source)."}),
                "steps": ("INT", {"default": 50, "min": 1, "max": 500, "tooltip": "Denoising steps (official 50)."}),
                "guidance": ("FLOAT", {"default": 6.0, "min": 1.0, "max": 30.0, "step": 0.1, "tooltip": "Classifier-free guidance scale (official 6; 1 = off, faster)."}),
                "seed": ("INT", {"default": 43, "min": 0, "max": MAX_SEED, "control_after_generate": True, "tooltip": "Noise seed (official 43)."}),
                "scheduler": (list(SCHEDULER_CLASSES), {"default": "DDIM_Origin", "tooltip": "Sampler, by its official name (official: DDIM_Origin)."}),
            },
            "optional": {
                "negative_prompt": ("STRING", {"default": "", "multiline": True, "tooltip": "What to avoid; empty = the official negative prompt."}),
                "options": (SAMPLING_OPTIONS, {"tooltip": "From Sampling Options: window length and overlap for long clips (default 49-frame windows)."}),
            },
        }

    def sample(self, model, conditions, prompt, steps, guidance, seed, scheduler, negative_prompt="", options=None):
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.redirect import Conditions, generate

        from .model_nodes import TrajectoryCrafterModel
        from .multi_path_nodes import sampling_options

        if not isinstance(model, TrajectoryCrafterModel):
            raise TrajCrafterError(f"model must come from Load TrajectoryCrafter Model, got {type(model).__name__}.")
        if not isinstance(conditions, Conditions):
            raise TrajCrafterError(f"conditions must come from Render Views, got {type(conditions).__name__}.")
        pipe = model.pipe
        pipe.set_scheduler(scheduler)
        bar = bridge.Progress(steps)
        notes = []
        bridge.check_interrupt()
        try:
            model.onload()
            frames = generate(
                pipe, conditions.to("cpu"), prompt=prompt, negative_prompt=(negative_prompt or "").strip() or None,
                num_inference_steps=int(steps), guidance_scale=float(guidance), seed=int(seed),
                callback=lambda done, total, _latents: bar.callback(done, total), notes=notes,
                **{k: v for k, v in sampling_options(options).items() if k != "batch_size"},
            )
            for note in notes:
                logger.warning("TrajectoryCrafter Sampler: %s", note)
        finally:
            model.park()
            bridge.soft_empty_cache()
        return (conditions.kept(frames).to(bridge.intermediate_device()),)


NODE_CLASS_MAPPINGS = {"TrajCrafterSampler": TrajectoryCrafterSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterSampler": "TrajectoryCrafter Sampler"}
