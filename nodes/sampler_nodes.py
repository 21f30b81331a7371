"""Sampling: TrajectoryCrafter Sampler — model + conditions + prompt → redirected video."""

from __future__ import annotations

import logging

from trajcrafter_core.official import DEFAULT_GUIDANCE, DEFAULT_SCHEDULER, DEFAULT_SEED, DEFAULT_STEPS, SCHEDULER_CLASSES

from . import bridge
from .common import CONDITIONS, MAX_SEED, MODEL, SAMPLING_OPTIONS
from .declare import Choice, Float, Int, NodeDef, Out, Socket, Text

logger = logging.getLogger(__name__)


def sampling_options(options) -> dict:
    """The keyword arguments of :func:`~trajcrafter_core.redirect.generate` an ``options`` input
    (from Sampling Options) gives: ``window_frames``, ``overlap_frames``, ``batch_size``."""
    from trajcrafter_core.errors import TrajCrafterError

    if options is None:
        return {}
    if not isinstance(options, dict) or not set(options) <= {"window_frames", "overlap_frames", "batch_size"}:
        raise TrajCrafterError("options must come from Sampling Options.")
    return dict(options)


def run_generate(node: str, model, conditions, prompt, steps, guidance, seed, scheduler, negative_prompt, options):
    """:func:`~trajcrafter_core.redirect.generate` as both samplers run it: progress bar, cancel,
    the model onloaded for the run and parked after, notes logged under the node's name."""
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.redirect import generate

    from .model_nodes import TrajectoryCrafterModel

    if not isinstance(model, TrajectoryCrafterModel):
        raise TrajCrafterError(f"model must come from Load TrajectoryCrafter Model, got {type(model).__name__}.")
    kwargs = sampling_options(options)
    pipe = model.pipe
    pipe.set_scheduler(scheduler)
    bar = bridge.Progress(steps)
    notes = []
    bridge.check_interrupt()
    try:
        model.onload()
        frames = generate(
            pipe, conditions, prompt=prompt, negative_prompt=(negative_prompt or "").strip() or None,
            num_inference_steps=int(steps), guidance_scale=float(guidance), seed=int(seed),
            callback=lambda done, total, _latents: bar.callback(done, total), notes=notes, **kwargs,
        )
        for note in notes:
            logger.warning("%s: %s", node, note)
    finally:
        model.park()
        bridge.soft_empty_cache()
    return frames


def sample(model, conditions, prompt, steps, guidance, seed, scheduler, negative_prompt="", options=None):
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.redirect import Conditions

    if not isinstance(conditions, Conditions):
        raise TrajCrafterError(f"conditions must come from Render Views, got {type(conditions).__name__}.")
    options = {k: v for k, v in sampling_options(options).items() if k != "batch_size"}  # one path: no batch
    frames = run_generate("TrajectoryCrafter Sampler", model, conditions.to("cpu"), prompt, steps, guidance, seed,
                          scheduler, negative_prompt, options or None)
    return (conditions.kept(frames).to(bridge.intermediate_device()),)


SAMPLER = NodeDef(
    id="TrajCrafterSampler",
    display_name="TrajectoryCrafter Sampler",
    category="sampling",
    description=(
        "Generates the video seen from the new camera path: the renders and hole mask of Render Views condition "
        "the diffusion model, its reference frames are what the model looks at (Ref-DiT), the prompt describes "
        "the scene (the official quality suffix is appended; an empty negative prompt uses the official one). "
        "The model takes 8m+1 frames (9, 17, 25, 33, 41, 49 native); other counts are padded (last frame "
        "repeated) and trimmed back (logged in the console). Longer clips, of any length, are generated in "
        "overlapping 49-frame windows that continue each other (set the window in Sampling Options). Direct mode drops its camera-move frames from the "
        "output, as the official demo saves it. Official settings: 50 steps, guidance 6, seed 43, DDIM_Origin. "
        "Cancel stops after the current step; VRAM is freed when the node finishes or stops."
    ),
    inputs=(
        Socket("model", MODEL, "From Load TrajectoryCrafter Model."),
        Socket("conditions", CONDITIONS, "From Render Views: frames, renders, hole mask and reference frames at the "
               "model's size."),
        Text("prompt", "", "What the video shows (a caption of the source).", multiline=True),
        Int("steps", DEFAULT_STEPS, 1, 500, "Denoising steps (official 50)."),
        Float("guidance", DEFAULT_GUIDANCE, 1.0, 30.0, "Classifier-free guidance scale (official 6; 1 = off, faster).",
              step=0.1),
        Int("seed", DEFAULT_SEED, 0, MAX_SEED, "Noise seed (official 43).", control_after_generate=True),
        Choice("scheduler", list(SCHEDULER_CLASSES), DEFAULT_SCHEDULER, "Sampler, by its official name (official: "
               "DDIM_Origin)."),
        Text("negative_prompt", "", "What to avoid; empty = the official negative prompt.", multiline=True,
             optional=True),
        Socket("options", SAMPLING_OPTIONS, "From Sampling Options: window length and overlap for long clips "
               "(default 49-frame windows).", optional=True),
    ),
    outputs=(Out("frames", "IMAGE", "The redirected video [frames, height, width, 3] at the model's size."),),
    run=sample,
    aliases=("trajectorycrafter", "sampler", "generate", "diffusion", "redirect"),
)

NODES = (SAMPLER,)
