"""From a data batch to the transformer's inputs and the regression target of one step.

Uses the pre-encoded latents/embeddings a batch carries (``training/prepare_latents.py``) or
runs the frozen VAE / T5 through the sampler's conditioning methods
(:mod:`training.conditioning`); then CFG dropout, timesteps, noise and target
(:mod:`training.objective`).

Pre-encoded tensors (``<key>.latents.safetensors``, frames-first, one video each):
``target_mean``/``target_std`` ``[F,C,h,w]`` (unscaled posterior), ``inpaint_latents``
``[F,1+C,h,w]`` (as the sampler forms them, noise augmentation drawn at preparation),
``reference_mean``/``reference_std`` ``[F_ref,C,h,w]`` (triplets), ``prompt_embeds`` ``[L,D]``,
``scaling_factor`` ``[]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from trajcrafter_core.errors import TrajCrafterError

from .conditioning import (
    batch_inpaint_latents,
    batch_video_latents,
    make_condition_pipeline,
    sample_noise_sigma,
    sample_posterior,
)
from .objective import DiffusionObjective, apply_cfg_dropout


@dataclass
class FrozenParts:
    """What a step needs besides the trained transformer.

    ``pipe``: sampler used for its conditioning methods (``None`` when everything is
    pre-encoded); ``empty_prompt``: T5 embeddings ``[L, D]`` of ``""`` for text dropout.
    """

    pipe: Optional[Any] = None
    empty_prompt: Optional[torch.Tensor] = None


def load_frozen_parts(base_dir: str | Path, transformer, need_encoders: bool, dtype: torch.dtype, device,
                      scheduler, empty_prompt_file: str = "") -> FrozenParts:
    """Load the VAE and T5 (frozen, ``dtype``, on ``device``) unless the data is pre-encoded."""
    from trajcrafter_core import checkpoints

    parts = FrozenParts()
    if need_encoders:
        if not base_dir:
            raise TrajCrafterError("model.base_dir is required: the shards carry no pre-encoded latents/embeddings.")
        base = Path(base_dir)
        vae = checkpoints.load_vae(base / "vae", dtype=dtype, device=device).eval().requires_grad_(False)
        text_encoder = checkpoints.load_text_encoder(base / "text_encoder", dtype=dtype, device=device)
        tokenizer = checkpoints.load_tokenizer(base / "tokenizer")
        parts.pipe = make_condition_pipeline(transformer, vae, text_encoder, tokenizer, scheduler, device)
    if empty_prompt_file:
        from safetensors.torch import load_file

        path = Path(empty_prompt_file)
        if not path.is_file():
            raise TrajCrafterError(f"model.empty_prompt_embeds file {path} does not exist (prepare_latents.py writes it).")
        parts.empty_prompt = load_file(str(path))["prompt_embeds"]
    elif parts.pipe is not None:
        parts.empty_prompt = parts.pipe.encode_text([""])[0].float().cpu()
    return parts


def _pre(batch: Dict, name: str) -> torch.Tensor:
    lat = batch.get("latents") or {}
    if name not in lat:
        raise TrajCrafterError(
            f"the batch's pre-encoded latents lack {name!r} (have {sorted(lat)}); re-run prepare_latents.py "
            f"on these shards or set data.use_latents: false."
        )
    return lat[name]


def build_step_inputs(batch: Dict, parts: FrozenParts, model_config, objective: DiffusionObjective, *,
                      uses_reference: bool, reference_frames: int, noise_aug: Tuple[float, float],
                      cfg_dropout: Tuple[float, float, float], device,
                      rotary_fn=None) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """Transformer keyword inputs (float32) and the target for ``batch`` (module docstring).

    Random draws use torch's global generator in a fixed order (target sample, noise
    augmentation, reference sample, text/reference/condition dropout, timesteps, noise), so a
    resumed run that restored the RNG state continues exactly.
    """
    pre = "latents" in batch
    pipe = parts.pipe
    if not pre and pipe is None:
        raise TrajCrafterError("this batch has no pre-encoded latents and no VAE/T5 is loaded.")
    B = len(batch["key"])
    if pre:
        sf = _pre(batch, "scaling_factor").float()
        z0 = sample_posterior(_pre(batch, "target_mean").float(), _pre(batch, "target_std").float(), sf)
        inpaint = _pre(batch, "inpaint_latents").float()
    else:
        z0 = batch_video_latents(pipe, batch["target"]).float()
        add_noise = bool(model_config.get("add_noise_in_inpaint_model", False))
        sigma = sample_noise_sigma(B, *noise_aug) if add_noise else torch.zeros(B)
        inpaint = batch_inpaint_latents(pipe, batch["render"], batch["mask"], sigma.tolist()).float()
    z0, inpaint = z0.to(device), inpaint.to(device)
    if inpaint.shape[:2] != z0.shape[:2] or inpaint.shape[3:] != z0.shape[3:]:
        raise TrajCrafterError(f"condition latents {list(inpaint.shape)} do not match target latents {list(z0.shape)}.")

    if uses_reference:
        if pre:
            ref = sample_posterior(_pre(batch, "reference_mean").float(), _pre(batch, "reference_std").float(), sf)
            expected = (reference_frames - 1) // 4 + 1
            if ref.shape[1] != expected:
                raise TrajCrafterError(
                    f"pre-encoded reference latents have {ref.shape[1]} latent frames but data.reference_frames="
                    f"{reference_frames} needs {expected}; re-run prepare_latents.py with --reference-frames "
                    f"{reference_frames} (or change data.reference_frames)."
                )
        else:
            ref = batch_video_latents(pipe, batch["reference"], reference_frames).float()
        ref = ref.to(device)
    else:  # stage 1: no reference; the transformer skips its reference stream for cross_latents=None
        ref = None

    if pre and "prompt_embeds" in batch["latents"]:
        text = batch["latents"]["prompt_embeds"]
    else:
        if pipe is None:
            raise TrajCrafterError("the batch has no pre-encoded prompt embeddings and no text encoder is loaded.")
        text = pipe.encode_text(batch["prompt"])
    text = text.to(device).float()

    inputs = {"encoder_hidden_states": text, "inpaint_latents": inpaint, "cross_latents": ref}
    inputs = apply_cfg_dropout(inputs, parts.empty_prompt, *cfg_dropout)
    t = objective.sample_timesteps(B, device)
    noise = torch.randn(z0.shape, dtype=torch.float32).to(device)
    noisy, target = objective.noisy_and_target(z0, noise, t)
    inputs.update(hidden_states=noisy, timestep=t)
    if rotary_fn is not None:
        inputs["image_rotary_emb"] = rotary_fn(z0.shape[1], z0.shape[3], z0.shape[4])
    return inputs, target


def cast_inputs(inputs: Dict[str, Any], dtype: torch.dtype) -> Dict[str, Any]:
    """``inputs`` with every floating-point tensor in ``dtype`` (integer timesteps, ``None`` and
    the RoPE tables, which the attention applies in float32, unchanged).

    Under DeepSpeed the engine holds the model in the training dtype (bf16/fp16) and accelerate
    runs no autocast, so the inputs must be in that dtype; elsewhere ``dtype`` is the float32 of
    the master weights and autocast does the casting.
    """
    return {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in inputs.items()}


def make_rotary_fn(model_config, device, vae_scale: int = 8):
    """Cached ``(latent frames, h, w) -> (cos, sin)`` for RoPE configs, else ``None``."""
    if not model_config.get("use_rotary_positional_embeddings", False):
        return None
    from trajcrafter_core.models import rotary_embedding

    cache: Dict[Tuple[int, int, int], Tuple[torch.Tensor, torch.Tensor]] = {}

    def fn(frames: int, h: int, w: int):
        key = (frames, h, w)
        if key not in cache:
            cache[key] = rotary_embedding(h * vae_scale, w * vae_scale, frames, int(model_config["attention_head_dim"]),
                                          patch_size=int(model_config["patch_size"]), device=device)
        return cache[key]

    return fn
