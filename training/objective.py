"""Diffusion training objective: timesteps, noising, the target the scheduler config names,
classifier-free-guidance dropout, and the loss.

The scheduler is built from the base model's ``scheduler/scheduler_config.json`` with the class
that file names (``CogVideoXDDIMScheduler`` for CogVideoX-Fun), so the noise levels are exactly
those used at inference. Target by ``prediction_type``: ``"v_prediction"`` (CogVideoX-Fun) →
``alpha_t·noise − sigma_t·x0``; ``"epsilon"`` → ``noise``; ``"sample"`` → ``x0``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from trajcrafter_core.errors import MissingFilesError, TrajCrafterError

PREDICTION_TYPES = ("v_prediction", "epsilon", "sample")


def load_training_scheduler(scheduler_dir: str | Path):
    """The noise scheduler of ``scheduler_dir/scheduler_config.json`` (class named in it)."""
    import diffusers

    path = Path(scheduler_dir) / "scheduler_config.json"
    if not path.is_file():
        raise MissingFilesError(f"scheduler config {path} is missing (model.base_dir must be a CogVideoX-Fun folder).")
    config = json.loads(path.read_text(encoding="utf-8"))
    cls = getattr(diffusers, str(config.get("_class_name", "")), None)
    if cls is None or not hasattr(cls, "add_noise") or not hasattr(cls, "get_velocity"):
        cls = diffusers.DDPMScheduler
    scheduler = cls.from_config(config)
    pred = scheduler.config.get("prediction_type", "epsilon")
    if pred not in PREDICTION_TYPES:
        raise TrajCrafterError(f"{path}: prediction_type {pred!r} is not one of {PREDICTION_TYPES}.")
    return scheduler


class DiffusionObjective:
    """Noising and targets of one scheduler."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.prediction_type = scheduler.config.get("prediction_type", "epsilon")
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)

    def sample_timesteps(self, batch: int, device, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Uniform integer timesteps ``[B]`` in ``[0, num_train_timesteps)``."""
        return torch.randint(0, self.num_train_timesteps, (batch,), generator=generator).to(device)

    def noisy_and_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        noisy = self.scheduler.add_noise(x0, noise, t)
        if self.prediction_type == "v_prediction":
            target = self.scheduler.get_velocity(x0, noise, t)
        elif self.prediction_type == "epsilon":
            target = noise
        else:
            target = x0
        return noisy, target

    @staticmethod
    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error in float32."""
        return F.mse_loss(prediction.float(), target.float(), reduction="mean")


def dropout_mask(batch: int, p: float, device, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Bool ``[B]``: True where the condition is dropped (probability ``p``)."""
    return (torch.rand(batch, generator=generator) < p).to(device)


def apply_cfg_dropout(inputs: Dict[str, torch.Tensor], empty_prompt: Optional[torch.Tensor], p_text: float,
                      p_reference: float, p_condition: float,
                      generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """Drop conditions per sample for classifier-free guidance.

    - text → the empty prompt's embeddings (``empty_prompt`` ``[L, D]``), as the sampler's
      negative branch;
    - reference → zero ``cross_latents``;
    - condition → zero ``inpaint_latents`` (what the sampler feeds when the whole clip is a hole).
    The draws happen in this order, every step, whatever the probabilities, so the random stream
    does not depend on them being zero.
    """
    text = inputs["encoder_hidden_states"]
    batch, device = text.shape[0], text.device
    drop_text = dropout_mask(batch, p_text, device, generator)
    drop_ref = dropout_mask(batch, p_reference, device, generator)
    drop_cond = dropout_mask(batch, p_condition, device, generator)
    out = dict(inputs)
    if bool(drop_text.any()):
        if empty_prompt is None:
            raise TrajCrafterError("text dropout needs the empty prompt's embeddings (see model.empty_prompt_embeds).")
        empty = empty_prompt.to(text.device, text.dtype).unsqueeze(0).expand_as(text)
        out["encoder_hidden_states"] = torch.where(drop_text.view(-1, 1, 1), empty, text)
    if bool(drop_ref.any()) and out.get("cross_latents") is not None:
        ref = out["cross_latents"]
        out["cross_latents"] = torch.where(drop_ref.view(-1, 1, 1, 1, 1), torch.zeros_like(ref), ref)
    if bool(drop_cond.any()):
        cond = out["inpaint_latents"]
        out["inpaint_latents"] = torch.where(drop_cond.view(-1, 1, 1, 1, 1), torch.zeros_like(cond), cond)
    return out
