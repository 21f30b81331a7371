"""Tiny random-init transformers in the official on-disk layout, for tests on CPU in seconds.

The config has every official key (same architecture family: RoPE, reference cross-attention
every 2nd block, 16 latent channels, 33 input channels = noise 16 + mask 1 + masked video 16),
only with small widths. Weights are drawn from a seeded generator, independent of torch's
global RNG; nothing is left at zero or at an identity value (LayerNorm scales, biases, gates
are all random) so every input visibly changes the output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Union

import torch

__all__ = ["tiny_transformer_config", "build_tiny_transformer", "save_tiny_transformer", "randomise_weights"]


def tiny_transformer_config(latent_channels: int = 16, **overrides: Any) -> Dict[str, Any]:
    """Config dict (all official keys) of a ~0.1M-parameter transformer.

    ``latent_channels`` sets ``in_channels = 2·latent_channels + 1``, ``out_channels`` and
    ``cross_attn_in_channels`` consistently (match the tiny VAE's latent channels).
    Text embeddings are ``text_embed_dim = 32`` wide (match the tiny text encoder's width).
    ``overrides`` replace any key.
    """
    config: Dict[str, Any] = {
        "num_attention_heads": 2,
        "attention_head_dim": 16,  # RoPE needs a multiple of 16
        "in_channels": 2 * latent_channels + 1,
        "out_channels": latent_channels,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "time_embed_dim": 16,
        "text_embed_dim": 32,
        "num_layers": 4,
        "dropout": 0.0,
        "attention_bias": True,
        "sample_width": 90,
        "sample_height": 60,
        "sample_frames": 49,
        "patch_size": 2,
        "temporal_compression_ratio": 4,
        "max_text_seq_length": 226,
        "activation_fn": "gelu-approximate",
        "timestep_activation_fn": "silu",
        "norm_elementwise_affine": True,
        "norm_eps": 1e-5,
        "spatial_interpolation_scale": 1.875,
        "temporal_interpolation_scale": 1.0,
        "use_rotary_positional_embeddings": True,
        "add_noise_in_inpaint_model": True,
        "is_train_cross": True,
        "cross_attn_in_channels": latent_channels,
        "cross_attn_interval": 2,
        "cross_attn_dim_head": 8,
        "cross_attn_num_heads": 2,
    }
    config.update(overrides)
    return config


@torch.no_grad()
def randomise_weights(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Redraw every parameter from a seeded generator: matrices/kernels ``N(0, 1/fan_in)``,
    1-D scales ``1 + N(0, 0.2²)``, biases ``N(0, 0.2²)``. Returns ``module``."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in module.named_parameters():
        noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
        if param.ndim >= 2:
            value = noise / math.sqrt(param[0].numel())
        elif name.endswith("weight"):
            value = 1.0 + 0.2 * noise
        else:
            value = 0.2 * noise
        param.copy_(value.to(param.dtype))
    return module


def build_tiny_transformer(seed: int = 0, **overrides: Any):
    """A tiny :class:`CrossTransformer3DModel` in eval mode, float32, seeded random weights."""
    from .cross_transformer import CrossTransformer3DModel

    model = CrossTransformer3DModel.from_config(tiny_transformer_config(**overrides))
    return randomise_weights(model, seed).eval()


def save_tiny_transformer(directory: Union[str, Path], seed: int = 0, sharded: bool = False, **overrides: Any) -> Path:
    """Write a tiny transformer as the official folder layout and return the folder.

    ``config.json`` + ``diffusion_pytorch_model.safetensors``; with ``sharded=True`` several
    ``diffusion_pytorch_model-0000i-of-0000n.safetensors`` shards plus
    ``diffusion_pytorch_model.safetensors.index.json`` (as large checkpoints are published).
    """
    directory = Path(directory)
    model = build_tiny_transformer(seed, **overrides)
    model.save_pretrained(directory, safe_serialization=True, max_shard_size="100KB" if sharded else "10GB")
    return directory
