"""TrajectoryCrafter's Ref-DiT: the CogVideoX(-Fun)-5B-InP transformer plus cross-attention to
reference (source video) tokens. Loads the official ``crosstransformer`` folder unchanged.

Built from diffusers' CogVideoX parts (``CogVideoXPatchEmbed``, ``CogVideoXBlock``,
``Timesteps``/``TimestepEmbedding``, ``AdaLayerNorm``); the reference injection lives in
:mod:`.reference_attention`. Compared with diffusers 0.31 (what the official code ran on), the
0.42 block, attention processor, norms and feed-forward compute the same; two things differ
and are handled here: ``get_3d_rotary_pos_embed`` grid positions (see :mod:`.rotary`) and
``CogVideoXPatchEmbed``'s sin-cos positions, which it rebuilds at the input size whereas the
official model resizes the sample-size table — so the patch embedding runs without positions
and :meth:`CrossTransformer3DModel._sincos_video_positions` adds the official ones. Layout is frames-first, like the official code:

- ``hidden_states``        noisy latents ``[B, F, C, H, W]`` (F latent frames, H/W latent size)
- ``inpaint_latents``      ``[B, F, in_channels − C, H, W]`` (mask + masked-video latents),
                           concatenated to ``hidden_states`` along channels
- ``cross_latents``        reference latents ``[B, F_ref, cross_attn_in_channels, H_ref, W_ref]``,
                           or ``None`` to skip the reference stream entirely: no
                           ``ref_patch_embed``, no perceiver cross-attention, so the output is
                           that of the same weights built with ``is_train_cross=False`` (stage-1
                           training; ignored by models without reference layers)
- ``encoder_hidden_states`` text embeddings ``[B, L, text_embed_dim]``
- ``timestep``             ``[B]`` (or a scalar, broadcast)
- ``image_rotary_emb``     ``(cos, sin)`` ``[F·H/p·W/p, attention_head_dim]`` from
                           :func:`~trajcrafter_core.models.rotary_embedding`

Output: ``[B, F, out_channels, H, W]`` (the official returns the same, wrapped in
``Transformer2DModelOutput`` unless ``return_dict=False``).

Memory options: ``transformer_blocks`` / ``perceiver_cross_attention`` are ``ModuleList``s
(diffusers' group offloading and accelerate hooks work per block),
``enable_gradient_checkpointing()``, :meth:`enable_fp8_weight_storage`,
:meth:`set_attention_backend`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention_processor import CogVideoXAttnProcessor2_0
from diffusers.models.embeddings import (
    CogVideoXPatchEmbed,
    TimestepEmbedding,
    Timesteps,
    get_3d_sincos_pos_embed,
)
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNorm
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock
from torch import nn

from ..conventions import check_finite
from ..errors import TrajCrafterError
from .attention_backend import DispatchCogVideoXAttnProcessor, check_attention_backend
from .checkpoint_check import check_checkpoint_folder
from .reference_attention import PerceiverCrossAttention, ReferencePatchEmbed

__all__ = ["CrossTransformer3DModel"]


class CrossTransformer3DModel(ModelMixin, ConfigMixin):
    """CogVideoX-5B-InP transformer with TrajectoryCrafter's reference cross-attention.

    Config keys are the official ones (see ``__init__``); with ``is_train_cross`` the video
    tokens attend to the reference tokens after blocks ``0, k, 2k, ...`` (``k =
    cross_attn_interval``), using ``num_layers // k`` ``PerceiverCrossAttention`` layers.
    """

    _supports_gradient_checkpointing = True
    # Kept in the compute dtype by enable_layerwise_casting / fp8 storage (as diffusers' CogVideoX).
    _skip_layerwise_casting_patterns = ["patch_embed", "norm"]
    _no_split_modules = ["CogVideoXBlock", "CogVideoXPatchEmbed", "PerceiverCrossAttention"]

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 30,
        attention_head_dim: int = 64,
        in_channels: int = 16,
        out_channels: Optional[int] = 16,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        time_embed_dim: int = 512,
        text_embed_dim: int = 4096,
        num_layers: int = 30,
        dropout: float = 0.0,
        attention_bias: bool = True,
        sample_width: int = 90,
        sample_height: int = 60,
        sample_frames: int = 49,
        patch_size: int = 2,
        temporal_compression_ratio: int = 4,
        max_text_seq_length: int = 226,
        activation_fn: str = "gelu-approximate",
        timestep_activation_fn: str = "silu",
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        spatial_interpolation_scale: float = 1.875,
        temporal_interpolation_scale: float = 1.0,
        use_rotary_positional_embeddings: bool = False,
        add_noise_in_inpaint_model: bool = False,
        is_train_cross: bool = False,
        cross_attn_in_channels: int = 16,
        cross_attn_interval: int = 2,
        cross_attn_dim_head: int = 128,
        cross_attn_num_heads: int = 16,
    ):
        super().__init__()
        # ``add_noise_in_inpaint_model`` is read by the sampler, not by the network.
        if is_train_cross and (cross_attn_interval <= 0 or num_layers % cross_attn_interval):
            raise TrajCrafterError(
                f"transformer config: num_layers={num_layers} must be a positive multiple of "
                f"cross_attn_interval={cross_attn_interval} (one cross-attention layer per interval)."
            )
        inner_dim = num_attention_heads * attention_head_dim
        out_channels = in_channels if out_channels is None else out_channels

        # 1. Text + video patch embedding (the sin-cos positions of non-RoPE configs are added in
        # forward, resized the official way: see _sincos_video_positions).
        self.patch_embed = CogVideoXPatchEmbed(
            patch_size=patch_size,
            in_channels=in_channels,
            embed_dim=inner_dim,
            text_embed_dim=text_embed_dim,
            bias=True,
            use_positional_embeddings=False,
            use_learned_positional_embeddings=False,
        )
        self.embedding_dropout = nn.Dropout(dropout)

        # 2. Timestep embedding
        self.time_proj = Timesteps(inner_dim, flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(inner_dim, time_embed_dim, timestep_activation_fn)

        # 3. Blocks
        self.transformer_blocks = nn.ModuleList(
            [
                CogVideoXBlock(
                    dim=inner_dim,
                    num_attention_heads=num_attention_heads,
                    attention_head_dim=attention_head_dim,
                    time_embed_dim=time_embed_dim,
                    dropout=dropout,
                    activation_fn=activation_fn,
                    attention_bias=attention_bias,
                    norm_elementwise_affine=norm_elementwise_affine,
                    norm_eps=norm_eps,
                )
                for _ in range(num_layers)
            ]
        )
        self.norm_final = nn.LayerNorm(inner_dim, norm_eps, norm_elementwise_affine)

        # 4. Output
        self.norm_out = AdaLayerNorm(
            embedding_dim=time_embed_dim,
            output_dim=2 * inner_dim,
            norm_elementwise_affine=norm_elementwise_affine,
            norm_eps=norm_eps,
            chunk_dim=1,
        )
        self.proj_out = nn.Linear(inner_dim, patch_size * patch_size * out_channels)

        # 5. Reference injection
        if is_train_cross:
            self.ref_patch_embed = ReferencePatchEmbed(patch_size, cross_attn_in_channels, inner_dim, bias=True)
            self.perceiver_cross_attention = nn.ModuleList(
                [
                    PerceiverCrossAttention(dim=inner_dim, dim_head=cross_attn_dim_head, heads=cross_attn_num_heads)
                    for _ in range(num_layers // cross_attn_interval)
                ]
            )

        self.gradient_checkpointing = False
        self._sincos_cache: Dict[Tuple, torch.Tensor] = {}

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **kwargs):
        """diffusers' ``from_pretrained`` after checking a local folder against its config.

        Raises :class:`TrajCrafterError` (naming the key, file or shapes) for a config.json without
        the keys that define the architecture, missing weight files, missing/unexpected
        state-dict keys and shape mismatches — instead of silently re-initialising weights.
        """
        folder = Path(pretrained_model_name_or_path)
        if kwargs.get("subfolder"):
            folder = folder / kwargs["subfolder"]
        looks_like_hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", str(pretrained_model_name_or_path)) is not None
        if folder.exists() or not looks_like_hub_id:
            check_checkpoint_folder(cls, folder, kwargs.get("variant"))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    # ------------------------------------------------------------------ memory / speed options

    def set_attention_backend(self, backend: Optional[str]) -> None:
        """``None``/``"sdpa"`` (default, as the official) or a diffusers backend name."""
        name = check_attention_backend(backend)
        for block in self.transformer_blocks:
            block.attn1.set_processor(
                CogVideoXAttnProcessor2_0() if name is None else DispatchCogVideoXAttnProcessor(name)
            )
        for layer in getattr(self, "perceiver_cross_attention", []):
            layer.attention_backend = name

    def reset_attention_backend(self) -> None:
        self.set_attention_backend(None)

    def enable_fp8_weight_storage(
        self, compute_dtype: torch.dtype = torch.bfloat16, storage_dtype: torch.dtype = torch.float8_e4m3fn
    ) -> None:
        """Keep Linear/Conv weights in ``storage_dtype`` (fp8) and upcast each layer to
        ``compute_dtype`` just for its forward (diffusers' layerwise casting hooks). Patch
        embeddings and norms (incl. the AdaLN modulation layers) stay in ``compute_dtype``; the
        rest takes half the memory of bf16."""
        nn.Module.to(self, compute_dtype)  # the layers left out of fp8 storage run as they are stored
        self.enable_layerwise_casting(storage_dtype=storage_dtype, compute_dtype=compute_dtype)

    # ------------------------------------------------------------------ forward

    def _sincos_video_positions(self, frames: int, rows: int, cols: int, device: torch.device) -> torch.Tensor:
        """Sin-cos positions ``[1, frames·rows·cols, dim]`` float32 of non-RoPE configs.

        Same as the official: the table built at the config's sample size is resized
        (trilinear, ``align_corners=False``) to ``(sample latent frames, rows, cols)`` and its
        first ``frames`` frames are used.
        """
        cfg = self.config
        sample_frames = (cfg.sample_frames - 1) // cfg.temporal_compression_ratio + 1
        if frames > sample_frames:
            raise TrajCrafterError(
                f"hidden_states has {frames} latent frames but this transformer (sin-cos positions, "
                f"sample_frames={cfg.sample_frames}) supports at most {sample_frames}."
            )
        key = (frames, rows, cols, str(device))
        if key not in self._sincos_cache:
            dim = cfg.num_attention_heads * cfg.attention_head_dim
            sample_rows, sample_cols = cfg.sample_height // cfg.patch_size, cfg.sample_width // cfg.patch_size
            table = get_3d_sincos_pos_embed(
                dim,
                (sample_cols, sample_rows),
                sample_frames,
                cfg.spatial_interpolation_scale,
                cfg.temporal_interpolation_scale,
                device=device,
                output_type="pt",
            ).to(torch.float32)
            table = table.reshape(1, sample_frames, sample_rows, sample_cols, dim).permute(0, 4, 1, 2, 3)
            table = F.interpolate(table, size=(sample_frames, rows, cols), mode="trilinear", align_corners=False)
            table = table.permute(0, 2, 3, 4, 1).reshape(1, -1, dim)
            self._sincos_cache[key] = table[:, : frames * rows * cols]
        return self._sincos_cache[key]

    def _check_inputs(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        inpaint_latents: Optional[torch.Tensor],
        cross_latents: Optional[torch.Tensor],
        image_rotary_emb: Optional[Tuple[torch.Tensor, torch.Tensor]],
    ) -> None:
        cfg = self.config
        p = cfg.patch_size
        if hidden_states.ndim != 5:
            raise TrajCrafterError(
                f"hidden_states must be [B, F, C, H, W] (frames first), got {list(hidden_states.shape)}."
            )
        batch, frames, channels, height, width = hidden_states.shape
        if height % p or width % p:
            raise TrajCrafterError(
                f"hidden_states latent size {height}x{width} must be divisible by patch_size={p} "
                f"(pixel sizes must be multiples of {8 * p})."
            )
        extra = cfg.in_channels - channels
        if extra > 0:
            expected = [batch, frames, extra, height, width]
            if inpaint_latents is None or list(inpaint_latents.shape) != expected:
                got = None if inpaint_latents is None else list(inpaint_latents.shape)
                raise TrajCrafterError(
                    f"inpaint_latents must be {expected} (mask + masked-video latents; {channels} noise "
                    f"channels + {extra} = in_channels {cfg.in_channels}), got {got}."
                )
        elif extra < 0 or inpaint_latents is not None:
            raise TrajCrafterError(
                f"hidden_states has {channels} channels; with inpaint_latents the total must be "
                f"in_channels={cfg.in_channels}."
            )
        if (
            encoder_hidden_states.ndim != 3
            or encoder_hidden_states.shape[0] != batch
            or encoder_hidden_states.shape[2] != cfg.text_embed_dim
        ):
            raise TrajCrafterError(
                f"encoder_hidden_states must be [B={batch}, L, {cfg.text_embed_dim}] (text embeddings), "
                f"got {list(encoder_hidden_states.shape)}."
            )
        if timestep.ndim != 1 or timestep.shape[0] != batch:
            raise TrajCrafterError(f"timestep must be a scalar or [B={batch}], got {list(timestep.shape)}.")
        if cfg.is_train_cross and cross_latents is not None:
            if (
                cross_latents.ndim != 5
                or cross_latents.shape[0] != batch
                or cross_latents.shape[2] != cfg.cross_attn_in_channels
                or cross_latents.shape[3] % p
                or cross_latents.shape[4] % p
            ):
                raise TrajCrafterError(
                    f"cross_latents (reference video latents) must be [B={batch}, F_ref, "
                    f"{cfg.cross_attn_in_channels}, H_ref, W_ref] with H_ref, W_ref divisible by {p} "
                    f"(or None to skip the reference stream), got {list(cross_latents.shape)}."
                )
        if cfg.use_rotary_positional_embeddings and image_rotary_emb is not None:
            tokens = frames * (height // p) * (width // p)
            shapes = [list(t.shape) for t in image_rotary_emb]
            if len(shapes) != 2 or any(s != [tokens, cfg.attention_head_dim] for s in shapes):
                raise TrajCrafterError(
                    f"image_rotary_emb must be (cos, sin), each [{tokens}, {cfg.attention_head_dim}] for "
                    f"{frames} latent frames of {height}x{width}; got {shapes}. Build it with "
                    f"rotary_embedding({height * 8}, {width * 8}, {frames}, {cfg.attention_head_dim})."
                )
        named = {
            "hidden_states": hidden_states,
            "encoder_hidden_states": encoder_hidden_states,
            "timestep": timestep,
            "inpaint_latents": inpaint_latents,
            "cross_latents": cross_latents if cfg.is_train_cross else None,
        }
        for name, value in named.items():
            if value is not None:
                check_finite(value, name)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: Union[int, float, torch.Tensor],
        timestep_cond: Optional[torch.Tensor] = None,
        inpaint_latents: Optional[torch.Tensor] = None,
        cross_latents: Optional[torch.Tensor] = None,
        image_rotary_emb: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
        return_dict: bool = True,
    ) -> Union[Tuple[torch.Tensor], Transformer2DModelOutput]:
        """Predict the denoiser output ``[B, F, out_channels, H, W]`` (see module docstring).

        ``cross_latents=None`` runs without the reference stream (the reference layers are not
        called), exactly as the same weights built with ``is_train_cross=False``.
        """
        cfg = self.config
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], device=hidden_states.device)
        if timestep.ndim == 0 or (timestep.ndim == 1 and timestep.shape[0] == 1):
            timestep = timestep.reshape(1).expand(hidden_states.shape[0])
        if not torch.compiler.is_compiling():
            self._check_inputs(
                hidden_states, encoder_hidden_states, timestep, inpaint_latents, cross_latents, image_rotary_emb
            )
        batch, frames, _, height, width = hidden_states.shape
        p = cfg.patch_size

        # 1. Timestep embedding (sinusoids are float32; cast to the activations' dtype like diffusers)
        emb = self.time_embedding(self.time_proj(timestep).to(dtype=hidden_states.dtype), timestep_cond)

        # 2. Tokens: [text, video] and reference
        if inpaint_latents is not None:
            hidden_states = torch.cat([hidden_states, inpaint_latents], dim=2)
        tokens = self.patch_embed(encoder_hidden_states, hidden_states)
        text_length = encoder_hidden_states.shape[1]
        if not cfg.use_rotary_positional_embeddings:
            positions = self._sincos_video_positions(frames, height // p, width // p, tokens.device)
            tokens = torch.cat([tokens[:, :text_length], tokens[:, text_length:] + positions.to(tokens.dtype)], 1)
            tokens = self.embedding_dropout(tokens)
        encoder_hidden_states, hidden_states = tokens[:, :text_length], tokens[:, text_length:]
        # cross_latents=None skips the reference stream: no reference tokens, no cross-attention.
        use_reference = cfg.is_train_cross and cross_latents is not None
        reference_tokens = self.ref_patch_embed(cross_latents) if use_reference else None

        # 3. Blocks, with reference cross-attention after blocks 0, k, 2k, ...
        checkpointing = torch.is_grad_enabled() and self.gradient_checkpointing
        for index, block in enumerate(self.transformer_blocks):
            if checkpointing:
                hidden_states, encoder_hidden_states = self._gradient_checkpointing_func(
                    block, hidden_states, encoder_hidden_states, emb, image_rotary_emb
                )
            else:
                hidden_states, encoder_hidden_states = block(
                    hidden_states=hidden_states,
                    encoder_hidden_states=encoder_hidden_states,
                    temb=emb,
                    image_rotary_emb=image_rotary_emb,
                )
            if reference_tokens is not None and index % cfg.cross_attn_interval == 0:
                layer = self.perceiver_cross_attention[index // cfg.cross_attn_interval]
                if checkpointing:
                    update = self._gradient_checkpointing_func(layer, reference_tokens, hidden_states)
                else:
                    update = layer(reference_tokens, hidden_states)
                hidden_states = hidden_states + update

        # 4. Output head. LayerNorm is per token, so normalising only the video tokens equals the
        # official norm over [text, video] followed by dropping the text.
        hidden_states = self.proj_out(self.norm_out(self.norm_final(hidden_states), temb=emb))

        # 5. Unpatchify: [B, F·h·w, p·p·C] -> [B, F, C, H, W]
        output = hidden_states.reshape(batch, frames, height // p, width // p, -1, p, p)
        output = output.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
