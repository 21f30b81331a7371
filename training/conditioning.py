"""The diffusion model's conditioning for training, formed by the sampler's own methods.

Training must feed the transformer exactly what :class:`trajcrafter_core.pipeline.TrajectoryCrafterPipeline`
feeds it at inference, so this module calls the pipeline's public conditioning methods on each
video of a batch instead of re-implementing them:

- ``inpaint_latents(render, hole, noise_aug_strength)`` — mask channel + masked-render latents
  (holes at -1, noise augmentation outside holes when the transformer config has
  ``add_noise_in_inpaint_model``, posterior mode; zeros for an all-hole clip);
- ``encode_reference(frames, n)`` — posterior sample of the first ``n`` source frames
  (``cross_latents``); with ``n = T`` it is also the target latents ``z0``;
- ``encode_text(prompts)`` — T5, 226 tokens, no attention mask.

Training-only differences (paper / CogVideoX-Fun recipe): the render's noise-augmentation
strength is drawn per video as ``exp(N(-3, 0.5²))`` instead of the fixed inference 0.0563, and
prompts are the raw captions (the inference-time quality suffix is not added).

For pre-encoding (``training/prepare_latents.py``) the pipeline can be built around a
*config-only* transformer (:func:`config_only_transformer`, weights on the ``meta`` device), so
the 5B model never has to be loaded to encode data. Target and reference latents are then stored
as posterior ``(mean, std)`` so each step still draws a fresh sample.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch


def config_only_transformer(config: dict):
    """A ``CrossTransformer3DModel`` with this config and no allocated weights (``meta`` device)."""
    from accelerate import init_empty_weights

    from trajcrafter_core.models import CrossTransformer3DModel

    with init_empty_weights():
        return CrossTransformer3DModel.from_config(dict(config))


def make_condition_pipeline(transformer, vae, text_encoder, tokenizer, scheduler, device):
    """A sampler object used only for its conditioning methods (models already on ``device``)."""
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    pipe = TrajectoryCrafterPipeline(transformer=transformer, vae=vae, text_encoder=text_encoder,
                                     tokenizer=tokenizer, scheduler=scheduler)
    pipe.device = torch.device(device)  # placement is managed by the trainer, not the pipeline
    return pipe


def frames01(video: torch.Tensor) -> torch.Tensor:
    """uint8 (or float 0..1) ``[..., 3]`` frames → float32 0..1."""
    return video.float() / 255.0 if video.dtype == torch.uint8 else video.float()


def sample_noise_sigma(batch: int, mean: float = -3.0, std: float = 0.5,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Per-video render noise-augmentation strength ``exp(N(mean, std²))``, float32 ``[B]``."""
    return torch.exp(torch.randn(batch, generator=generator) * std + mean)


@torch.no_grad()
def batch_inpaint_latents(pipe, render: torch.Tensor, mask: torch.Tensor, sigma: Sequence[float]) -> torch.Tensor:
    """``[B, F, 1 + C, h, w]`` for renders ``[B,T,H,W,3]`` and masks ``[B,T,H,W]`` (1 = hole)."""
    return torch.cat([
        pipe.inpaint_latents(frames01(render[i]).to(pipe.device), mask[i].float().to(pipe.device),
                             noise_aug_strength=float(sigma[i]))
        for i in range(render.shape[0])
    ])


@torch.no_grad()
def batch_video_latents(pipe, video: torch.Tensor, num_frames: Optional[int] = None) -> torch.Tensor:
    """Posterior samples × scaling factor ``[B, F, C, h, w]`` of the first ``num_frames`` frames
    (all by default) of each video ``[B,T,H,W,3]`` — the sampler's reference encoding."""
    n = video.shape[1] if num_frames is None else num_frames
    return torch.cat([pipe.encode_reference(frames01(video[i]).to(pipe.device), n) for i in range(video.shape[0])])


@torch.no_grad()
def video_posterior(vae, video: torch.Tensor, num_frames: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Unscaled posterior ``(mean, std)``, each ``[B, F, C, h, w]``, of the first ``num_frames``
    frames of ``[B,T,H,W,3]`` videos (same VAE call as the sampler's, one video at a time)."""
    n = video.shape[1] if num_frames is None else num_frames
    means, stds = [], []
    for i in range(video.shape[0]):
        x = (frames01(video[i, :n]).permute(3, 0, 1, 2).unsqueeze(0) * 2.0 - 1.0).to(vae.device, vae.dtype)
        dist = vae.encode(x).latent_dist
        means.append(dist.mean.permute(0, 2, 1, 3, 4))
        stds.append(dist.std.permute(0, 2, 1, 3, 4))
    return torch.cat(means), torch.cat(stds)


def sample_posterior(mean: torch.Tensor, std: torch.Tensor, scaling_factor: torch.Tensor) -> torch.Tensor:
    """``(mean + std·ε) · scaling_factor`` with ``ε ~ N(0, 1)`` (global RNG); ``scaling_factor`` ``[B]``."""
    eps = torch.randn(mean.shape, dtype=torch.float32).to(mean.device, mean.dtype)
    return (mean + std * eps) * scaling_factor.to(mean).view(-1, *([1] * (mean.ndim - 1)))
