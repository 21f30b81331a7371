"""Reference injection of TrajectoryCrafter's Ref-DiT: the source video's latents become tokens
(``ref_patch_embed``) that the video tokens attend to after every ``cross_attn_interval``-th
transformer block (``perceiver_cross_attention.*``).

Parameter names and shapes are those of the official checkpoint. The attention itself runs
through fused scaled-dot-product attention: the official code forms ``(q·d^-¼)(k·d^-¼)ᵀ``,
takes a float32 softmax and multiplies by ``v``; fused kernels compute the same
``softmax(q kᵀ/√d) v`` (softmax accumulated in float32) blockwise, so the
``[N_video × N_ref]`` attention matrix is never held in memory (at 49×384×672 it would be
13104² per head and batch entry).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ReferencePatchEmbed", "PerceiverCrossAttention", "fused_attention", "naive_reference_attention"]


def fused_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, backend: Optional[str] = None
) -> torch.Tensor:
    """``softmax(q kᵀ · scale) v`` for ``[B, heads, N, d]`` tensors without an ``N_q × N_k`` buffer.

    ``backend=None`` uses ``torch.nn.functional.scaled_dot_product_attention`` (PyTorch picks a
    flash / memory-efficient kernel); another name is passed to diffusers' attention dispatcher
    (``"flash"``, ``"sage"``, ``"_native_flash"``, ... see ``diffusers.AttentionBackendName``).
    """
    if backend is None:
        return F.scaled_dot_product_attention(query, key, value, scale=scale)
    from diffusers.models.attention_dispatch import dispatch_attention_fn

    out = dispatch_attention_fn(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), scale=scale, backend=backend
    )
    return out.transpose(1, 2)


class ReferencePatchEmbed(nn.Module):
    """Reference latents ``[B, F, C, H, W]`` → tokens ``[B, F·H/p·W/p, dim]`` (frame, row, column order).

    One ``p×p`` stride-``p`` convolution per frame (``proj``), like the video patch embedding
    but without text.
    """

    def __init__(self, patch_size: int, in_channels: int, embed_dim: int, bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        batch, frames = latents.shape[:2]
        tokens = self.proj(latents.flatten(0, 1))  # [B·F, dim, H/p, W/p]
        return tokens.flatten(2).transpose(1, 2).reshape(batch, -1, tokens.shape[1])


class PerceiverCrossAttention(nn.Module):
    """Video tokens (queries) attend to reference tokens (keys/values); returns the update to add.

    ``norm1`` normalises the reference tokens, ``norm2`` the video tokens; ``to_q`` /
    ``to_kv`` / ``to_out`` are bias-free projections with ``heads · dim_head`` inner channels.
    Inputs ``[B, N_ref, kv_dim]`` and ``[B, N_video, dim]``; output ``[B, N_video, dim]``.
    """

    def __init__(self, dim: int, dim_head: int, heads: int, kv_dim: Optional[int] = None):
        super().__init__()
        kv_dim = dim if kv_dim is None else kv_dim
        inner_dim = dim_head * heads
        self.dim_head = dim_head
        self.heads = heads
        self.attention_backend: Optional[str] = None
        self.norm1 = nn.LayerNorm(kv_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(kv_dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, self.dim_head)).transpose(1, 2)  # [B, heads, N, d]

    def forward(self, reference_tokens: torch.Tensor, video_tokens: torch.Tensor) -> torch.Tensor:
        query = self._split_heads(self.to_q(self.norm2(video_tokens)))
        key, value = self.to_kv(self.norm1(reference_tokens)).chunk(2, dim=-1)
        out = fused_attention(
            query, self._split_heads(key), self._split_heads(value), self.dim_head**-0.5, self.attention_backend
        )
        return self.to_out(out.transpose(1, 2).flatten(2))


def naive_reference_attention(
    layer: PerceiverCrossAttention, reference_tokens: torch.Tensor, video_tokens: torch.Tensor
) -> torch.Tensor:
    """The reference implementation of ``layer(reference_tokens, video_tokens)``: the official
    maths written out, ``softmax((q·d^-¼)(k·d^-¼)ᵀ) v`` with the softmax in float32 (float64
    kept). It materialises the ``[B, heads, N_video, N_ref]`` attention matrix, so it is for
    tests and benchmarks that check :class:`PerceiverCrossAttention` against it, not for use.
    """
    x, latents = layer.norm1(reference_tokens), layer.norm2(video_tokens)
    b, n, _ = latents.shape
    q = layer.to_q(latents).view(b, n, layer.heads, -1).transpose(1, 2)
    k, v = layer.to_kv(x).chunk(2, dim=-1)
    k = k.view(b, -1, layer.heads, layer.dim_head).transpose(1, 2)
    v = v.view(b, -1, layer.heads, layer.dim_head).transpose(1, 2)
    scale = layer.dim_head**-0.25
    softmax_dtype = torch.promote_types(q.dtype, torch.float32)
    weights = torch.softmax(((q * scale) @ (k * scale).transpose(-2, -1)).to(softmax_dtype), dim=-1).to(q.dtype)
    return layer.to_out((weights @ v).transpose(1, 2).reshape(b, n, -1))
