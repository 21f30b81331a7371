"""Choice of the attention kernel used by the transformer's self- and cross-attention.

Default: PyTorch's fused ``scaled_dot_product_attention`` — diffusers'
``CogVideoXAttnProcessor2_0`` in the blocks, :func:`fused_attention` in the reference
cross-attention. Any other name is one of diffusers' attention backends (``"flash"``,
``"_native_flash"``, ``"_native_efficient"``, ``"sage"``, ``"xformers"``, ...); the blocks then
use :class:`DispatchCogVideoXAttnProcessor`, which is CogVideoX's processor with the kernel call
routed through ``diffusers.models.attention_dispatch.dispatch_attention_fn``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..errors import TrajCrafterError

__all__ = ["DispatchCogVideoXAttnProcessor", "check_attention_backend", "DEFAULT_BACKENDS"]

#: Names that mean "PyTorch SDPA, as the official code".
DEFAULT_BACKENDS = (None, "sdpa", "native")


def check_attention_backend(backend: Optional[str]) -> Optional[str]:
    """Return ``None`` for the default SDPA path, else the validated diffusers backend name."""
    if backend is None or backend.lower() in ("sdpa", "native"):
        return None
    from diffusers.models.attention_dispatch import AttentionBackendName, _check_attention_backend_requirements

    names = sorted(member.value for member in AttentionBackendName)
    try:
        name = AttentionBackendName(backend.lower())
    except ValueError:
        raise TrajCrafterError(
            f"attention backend {backend!r} is unknown; use 'sdpa' (default) or one of: {', '.join(names)}."
        ) from None
    try:
        _check_attention_backend_requirements(name)
    except (RuntimeError, ImportError, ValueError) as error:
        raise TrajCrafterError(f"attention backend {backend!r} is not usable here: {error}") from None
    return name.value


class DispatchCogVideoXAttnProcessor:
    """CogVideoX joint text+video self-attention (same maths as diffusers'
    ``CogVideoXAttnProcessor2_0``: QK layer-norm, RoPE on the video part of q and k) with the
    kernel chosen by ``backend``."""

    def __init__(self, backend: Optional[str] = None):
        self._attention_backend = backend

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        image_rotary_emb: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        from diffusers.models.embeddings import apply_rotary_emb

        if attention_mask is not None:
            raise TrajCrafterError("DispatchCogVideoXAttnProcessor does not take an attention mask.")
        text_length = encoder_hidden_states.shape[1]
        tokens = torch.cat([encoder_hidden_states, hidden_states], dim=1)

        def heads(x: torch.Tensor) -> torch.Tensor:  # [B, N, heads·d] -> [B, heads, N, d]
            return x.unflatten(-1, (attn.heads, -1)).transpose(1, 2)

        query, key, value = heads(attn.to_q(tokens)), heads(attn.to_k(tokens)), heads(attn.to_v(tokens))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if image_rotary_emb is not None:
            query = torch.cat(
                [query[:, :, :text_length], apply_rotary_emb(query[:, :, text_length:], image_rotary_emb)], dim=2
            )
            key = torch.cat(
                [key[:, :, :text_length], apply_rotary_emb(key[:, :, text_length:], image_rotary_emb)], dim=2
            )
        out = dispatch_attention_fn(
            query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), backend=self._attention_backend
        )
        out = attn.to_out[1](attn.to_out[0](out.flatten(2)))
        return out[:, text_length:], out[:, :text_length]
