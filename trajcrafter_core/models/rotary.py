"""3D rotary position embeddings (RoPE) of the CogVideoX-5B family, as TrajectoryCrafter uses them.

The official pipeline builds them once per video in ``_prepare_rotary_positional_embeddings``:
the token grid (pixel size / 16) is placed inside the 720×480 training canvas with a
"resize to fit, centre" crop box, and 1-D RoPE frequencies along time, height and width are
concatenated per head channel (``head_dim/4`` for time, ``3·head_dim/8`` each for height and
width).

Grid positions changed in diffusers 0.32: up to 0.31 ``np.linspace(start, stop, n,
endpoint=False)`` put token ``i`` at ``start + i·(stop − start)/n``; from 0.32 on
``torch.linspace(start, stop·(n−1)/n, n)`` is used, which is the same only when the crop box
starts at 0. At 384×672 (a 24×42 token grid) the box is rows 2..28 of the 30-row canvas, so the
vertical positions differ (at 480×640 the horizontal ones: columns 2..42); at 480×720 both agree. The official checkpoints were trained and run with diffusers ≤ 0.31,
so that behaviour is our default (``grid_positions="diffusers<=0.31"``).
"""

from __future__ import annotations

from typing import Literal, Tuple

import numpy as np
import torch

from ..errors import TrajCrafterError

__all__ = ["rotary_embedding", "crop_box_in_canvas"]

GridPositions = Literal["diffusers<=0.31", "diffusers>=0.32"]


def crop_box_in_canvas(
    grid_height: int, grid_width: int, canvas_height: int, canvas_width: int
) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Box ``((top, left), (bottom, right))`` of a ``grid_height × grid_width`` token grid
    resized (aspect kept) to fit inside the ``canvas_height × canvas_width`` canvas and centred.
    """
    if grid_height / grid_width > canvas_height / canvas_width:
        fit_height = canvas_height
        fit_width = int(round(canvas_height / grid_height * grid_width))
    else:
        fit_width = canvas_width
        fit_height = int(round(canvas_width / grid_width * grid_height))
    top = int(round((canvas_height - fit_height) / 2.0))
    left = int(round((canvas_width - fit_width) / 2.0))
    return (top, left), (top + fit_height, left + fit_width)


def _positions(start: float, stop: float, count: int, grid_positions: GridPositions) -> torch.Tensor:
    """``count`` float32 positions spanning ``[start, stop)`` the way each diffusers version did."""
    if grid_positions == "diffusers<=0.31":
        # numpy computes in float64 then rounds to float32: keep numpy for bit-identical values.
        return torch.from_numpy(np.linspace(start, stop, count, endpoint=False, dtype=np.float32))
    return torch.linspace(start, stop * (count - 1) / count, count, dtype=torch.float32)


def _rotary_1d(dim: int, positions: torch.Tensor, theta: float = 10000.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos/sin ``[len(positions), dim]`` with each frequency repeated for a (real, imag) pair."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    angles = torch.outer(positions, inv_freq)
    return angles.cos().repeat_interleave(2, dim=1), angles.sin().repeat_interleave(2, dim=1)


def rotary_embedding(
    height: int,
    width: int,
    num_latent_frames: int,
    head_dim: int,
    *,
    patch_size: int = 2,
    vae_scale_factor: int = 8,
    canvas_height: int = 480,
    canvas_width: int = 720,
    grid_positions: GridPositions = "diffusers<=0.31",
    device: torch.device | str | None = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """RoPE tables ``(cos, sin)``, each float32 ``[num_latent_frames · H/16 · W/16, head_dim]``.

    ``height`` and ``width`` are **pixel** sizes of the generated video (as the official
    pipeline takes them), multiples of ``vae_scale_factor · patch_size`` (16).
    ``num_latent_frames`` counts latent frames (13 for 49 video frames). Token order is
    frames-major, then rows, then columns — the order of the transformer's video tokens.

    ``grid_positions``: ``"diffusers<=0.31"`` (default) reproduces the official checkpoints'
    behaviour; ``"diffusers>=0.32"`` reproduces newer diffusers (differs when the crop box does
    not start at 0, e.g. at 384×672).
    """
    step = vae_scale_factor * patch_size
    for name, value in (("height", height), ("width", width)):
        if int(value) != value or value <= 0 or value % step:
            raise TrajCrafterError(
                f"rotary_embedding: {name}={value} must be a positive pixel size divisible by {step} "
                f"(VAE factor {vae_scale_factor} × patch {patch_size}); resize the video to a multiple of {step}."
            )
    if int(num_latent_frames) != num_latent_frames or num_latent_frames <= 0:
        raise TrajCrafterError(
            f"rotary_embedding: num_latent_frames={num_latent_frames} must be a positive integer "
            f"(latent frames, e.g. 13 for 49 video frames)."
        )
    if head_dim <= 0 or head_dim % 16:
        raise TrajCrafterError(
            f"rotary_embedding: head_dim={head_dim} must be a positive multiple of 16 so that time "
            f"(head_dim/4) and height/width (3·head_dim/8 each) get an even number of channels."
        )
    if grid_positions not in ("diffusers<=0.31", "diffusers>=0.32"):
        raise TrajCrafterError(
            f"rotary_embedding: grid_positions={grid_positions!r}; use 'diffusers<=0.31' (official "
            f"checkpoints) or 'diffusers>=0.32'."
        )

    grid_h, grid_w = height // step, width // step
    (top, left), (bottom, right) = crop_box_in_canvas(grid_h, grid_w, canvas_height // step, canvas_width // step)
    pos_t = _positions(0, num_latent_frames, num_latent_frames, grid_positions)
    pos_h = _positions(top, bottom, grid_h, grid_positions)
    pos_w = _positions(left, right, grid_w, grid_positions)

    dim_t, dim_hw = head_dim // 4, head_dim // 8 * 3
    tables = [_rotary_1d(dim_t, pos_t), _rotary_1d(dim_hw, pos_h), _rotary_1d(dim_hw, pos_w)]

    def combine(t: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        shape = (num_latent_frames, grid_h, grid_w)
        return torch.cat(
            [
                t[:, None, None, :].expand(*shape, -1),
                h[None, :, None, :].expand(*shape, -1),
                w[None, None, :, :].expand(*shape, -1),
            ],
            dim=-1,
        ).reshape(-1, head_dim)

    cos = combine(tables[0][0], tables[1][0], tables[2][0])
    sin = combine(tables[0][1], tables[1][1], tables[2][1])
    if device is not None:
        cos, sin = cos.to(device), sin.to(device)
    return cos, sin
