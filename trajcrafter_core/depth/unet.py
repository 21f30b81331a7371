"""DepthCrafter's UNet: SVD's spatio-temporal UNet conditioned on one CLIP embedding *per frame*.

Stable Video Diffusion conditions every frame on the embedding of a single image
(``encoder_hidden_states [B, 1, C]`` repeated over frames). DepthCrafter conditions frame ``t`` on
the CLIP embedding of input frame ``t``: ``encoder_hidden_states [B, T, C]`` becomes
``[B * T, 1, C]``, one token per frame, for every cross-attention. Everything else (time and
added-time embeddings, the block stack, weights and config) is SVD's, so the official
``tencent/DepthCrafter`` folder (``config.json`` + ``diffusion_pytorch_model.safetensors``) loads
into this class unchanged. Like the official model, inputs and the time embedding are cast to the
weights' dtype, so a float32 latent runs through a float16 UNet.
"""

from __future__ import annotations

from typing import Tuple, Union

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.models.unets.unet_spatio_temporal_condition import UNetSpatioTemporalConditionOutput

__all__ = ["DepthCrafterUNet"]


class DepthCrafterUNet(UNetSpatioTemporalConditionModel):
    """``forward(sample [B,T,C,H,W], timestep, encoder_hidden_states [B,T,D], added_time_ids [B,3])``."""

    def _frame_embedding(self, timestep, added_time_ids: torch.Tensor, batch: int, frames: int, device) -> torch.Tensor:
        """Time + added-time embedding ``[B * T, E]`` (same for every frame of a clip)."""
        t = timestep
        if not torch.is_tensor(t):
            t = torch.tensor([t], dtype=torch.float64 if isinstance(t, float) else torch.int64, device=device)
        elif t.ndim == 0:
            t = t[None].to(device)
        if device.type == "mps" and t.dtype == torch.float64:  # pragma: no cover - Apple only
            t = t.float()
        t_emb = self.time_proj(t.expand(batch)).to(dtype=self.conv_in.weight.dtype)
        emb = self.time_embedding(t_emb)
        added = self.add_time_proj(added_time_ids.flatten()).reshape(batch, -1).to(emb.dtype)
        emb = emb + self.add_embedding(added)
        return emb.repeat_interleave(frames, dim=0)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: Union[torch.Tensor, float, int],
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        return_dict: bool = True,
    ) -> Union[UNetSpatioTemporalConditionOutput, Tuple[torch.Tensor]]:
        batch, frames = sample.shape[:2]
        if encoder_hidden_states.ndim != 3 or tuple(encoder_hidden_states.shape[:2]) != (batch, frames):
            raise ValueError(
                f"DepthCrafterUNet needs one embedding per frame: encoder_hidden_states "
                f"[{batch}, {frames}, C], got {list(encoder_hidden_states.shape)}"
            )
        emb = self._frame_embedding(timestep, added_time_ids, batch, frames, sample.device)
        # one conditioning token per frame: [B, T, C] -> [B*T, 1, C]
        context = encoder_hidden_states.flatten(0, 1).unsqueeze(1)
        x = sample.flatten(0, 1).to(dtype=self.conv_in.weight.dtype)
        x = self.conv_in(x)
        only_images = torch.zeros(batch, frames, dtype=x.dtype, device=x.device)

        skips = (x,)
        for block in self.down_blocks:
            kwargs = dict(hidden_states=x, temb=emb, image_only_indicator=only_images)
            if getattr(block, "has_cross_attention", False):
                kwargs["encoder_hidden_states"] = context
            x, block_skips = block(**kwargs)
            skips += block_skips

        x = self.mid_block(hidden_states=x, temb=emb, encoder_hidden_states=context, image_only_indicator=only_images)

        for block in self.up_blocks:
            n = len(block.resnets)
            block_skips, skips = skips[-n:], skips[:-n]
            kwargs = dict(hidden_states=x, res_hidden_states_tuple=block_skips, temb=emb, image_only_indicator=only_images)
            if getattr(block, "has_cross_attention", False):
                kwargs["encoder_hidden_states"] = context
            x = block(**kwargs)

        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        x = x.reshape(batch, frames, *x.shape[1:])
        if not return_dict:
            return (x,)
        return UNetSpatioTemporalConditionOutput(sample=x)
