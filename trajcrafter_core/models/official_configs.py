"""The full-size architectures TrajectoryCrafter runs, as config dicts (torch-free), and the
official sampling geometry. Used to build full-size random-init or meta-device models for
memory plans and benchmarks (weights never matter for memory or speed).

Sources (public configs; values copied, not code):

- :data:`TRANSFORMER_CONFIG`: ``config.json`` of TrajectoryCrafter/TrajectoryCrafter
  ``crosstransformer/`` = the ``CogVideoX-Fun-V1.1-5b-InP`` transformer (CogVideoX-5B widths:
  48 heads × 64, 42 layers, RoPE; ``in_channels`` 33 = noise 16 + mask 1 + masked video 16,
  recognisable by ``patch_embed.proj.weight`` of shape (3072, 33, 2, 2) as third-party loaders
  such as kijai's ComfyUI-CogVideoXWrapper check) plus the reference keys of the official
  ``CrossTransformer3DModel`` (``is_train_cross``, a Perceiver cross-attention of 16 heads × 128
  after every 2nd block). ``tests/test_transformer.py`` pins the resulting state-dict keys and
  shapes (6.1 B parameters).
- :data:`VAE_CONFIG`: ``vae/config.json`` of THUDM/CogVideoX-5b (and -5b-I2V), which
  CogVideoX-Fun-V1.1-5b-InP ships unchanged: diffusers ``AutoencoderKLCogVideoX`` with
  ``block_out_channels`` (128, 256, 256, 512), 3 layers per block, 16 latent channels,
  ``scaling_factor`` 0.7 (the 2B model's is 1.15258426).
- :data:`T5_ENCODER_CONFIG`: ``text_encoder/config.json`` of CogVideoX-5b = google/t5-v1_1-xxl
  (encoder only): d_model 4096, 64 heads × 64, d_ff 10240 gated-GELU, 24 layers, vocab 32128.
"""

from __future__ import annotations

from typing import Any, Dict

__all__ = [
    "TRANSFORMER_CONFIG",
    "VAE_CONFIG",
    "T5_ENCODER_CONFIG",
    "OFFICIAL_GEOMETRY",
    "official_transformer_config",
]

TRANSFORMER_CONFIG: Dict[str, Any] = {
    "activation_fn": "gelu-approximate",
    "add_noise_in_inpaint_model": True,
    "attention_bias": True,
    "attention_head_dim": 64,
    "cross_attn_dim_head": 128,
    "cross_attn_in_channels": 16,
    "cross_attn_interval": 2,
    "cross_attn_num_heads": 16,
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 33,
    "is_train_cross": True,
    "max_text_seq_length": 226,
    "norm_elementwise_affine": True,
    "norm_eps": 1e-05,
    "num_attention_heads": 48,
    "num_layers": 42,
    "out_channels": 16,
    "patch_size": 2,
    "sample_frames": 49,
    "sample_height": 60,
    "sample_width": 90,
    "spatial_interpolation_scale": 1.875,
    "temporal_compression_ratio": 4,
    "temporal_interpolation_scale": 1.0,
    "text_embed_dim": 4096,
    "time_embed_dim": 512,
    "timestep_activation_fn": "silu",
    "use_rotary_positional_embeddings": True,
}

VAE_CONFIG: Dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 256, 512],
    "down_block_types": ["CogVideoXDownBlock3D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 16,
    "latents_mean": None,
    "latents_std": None,
    "layers_per_block": 3,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_height": 480,
    "sample_width": 720,
    "scaling_factor": 0.7,
    "shift_factor": None,
    "temporal_compression_ratio": 4,
    "up_block_types": ["CogVideoXUpBlock3D"] * 4,
    "use_post_quant_conv": False,
    "use_quant_conv": False,
}

T5_ENCODER_CONFIG: Dict[str, Any] = {
    "d_ff": 10240,
    "d_kv": 64,
    "d_model": 4096,
    "dropout_rate": 0.1,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": True,
    "layer_norm_epsilon": 1e-06,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "num_layers": 24,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False,
    "vocab_size": 32128,
}

#: What one official generation runs (``demo.py`` / ``run.sh``): 49 frames at 384×672,
#: classifier-free guidance (batch 2: negative + positive prompt), T5 prompts padded to 226
#: tokens, the first 10 source frames as reference, bf16.
OFFICIAL_GEOMETRY: Dict[str, Any] = {
    "frames": 49,
    "height": 384,
    "width": 672,
    "cfg_batch": 2,
    "text_tokens": 226,
    "reference_frames": 10,
    "dtype": "bf16",
}


def official_transformer_config(**overrides: Any) -> Dict[str, Any]:
    """A copy of :data:`TRANSFORMER_CONFIG` with ``overrides`` applied (e.g. a narrower model
    of the same family for CPU-sized checks)."""
    config = dict(TRANSFORMER_CONFIG)
    config.update(overrides)
    return config
