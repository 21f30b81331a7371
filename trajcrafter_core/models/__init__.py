"""Model side of TrajectoryCrafter: the Ref-DiT transformer (official-checkpoint compatible),
its rotary position embeddings, and tiny random-init builders for tests.

Public API (imported lazily; diffusers loads on first use):

- :class:`CrossTransformer3DModel` — ``from_pretrained(folder)`` on the official
  ``crosstransformer`` folder; ``forward(hidden_states, encoder_hidden_states, timestep,
  inpaint_latents=..., cross_latents=..., image_rotary_emb=..., return_dict=...)``.
- :func:`rotary_embedding` ``(height, width, num_latent_frames, head_dim) -> (cos, sin)``,
  pixel height/width, diffusers ≤ 0.31 grid positions by default.
- :func:`tiny_transformer_config`, :func:`build_tiny_transformer`,
  :func:`save_tiny_transformer` — tiny models / folders in the official layout.
- :func:`check_checkpoint_folder` — validate a folder against the class before loading.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CrossTransformer3DModel": ".cross_transformer",
    "PerceiverCrossAttention": ".reference_attention",
    "ReferencePatchEmbed": ".reference_attention",
    "fused_attention": ".reference_attention",
    "naive_reference_attention": ".reference_attention",
    "rotary_embedding": ".rotary",
    "crop_box_in_canvas": ".rotary",
    "tiny_transformer_config": ".tiny",
    "build_tiny_transformer": ".tiny",
    "save_tiny_transformer": ".tiny",
    "randomise_weights": ".tiny",
    "check_checkpoint_folder": ".checkpoint_check",
    "checkpoint_shapes": ".checkpoint_check",
    "REQUIRED_CONFIG_KEYS": ".checkpoint_check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
