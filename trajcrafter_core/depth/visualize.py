"""Colourised depth previews as a ComfyUI IMAGE (``float32 [T, H, W, 3]`` in 0..1).

Depth is shown as disparity (``1 / depth``), near = bright, with one colour scale for the whole
clip so brightness changes mean depth changes, not per-frame rescaling.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..errors import TrajCrafterError
from .mapping import _as_maps

__all__ = ["COLORMAPS", "apply_colormap", "colorize_disparity", "colorize_depth"]

# "inferno" sampled at 10 evenly spaced points (as DepthCrafter's previews use), linearly
# interpolated in between.
_INFERNO_HEX = ["000004", "1B0C42", "4B0C6B", "781C6D", "A52C60", "CF4446", "ED6925", "FB9A06", "F7D03C", "FCFFA4"]
_INFERNO = torch.tensor([[int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)] for h in _INFERNO_HEX])
COLORMAPS = ("inferno", "gray")


def apply_colormap(values: torch.Tensor, colormap: str = "inferno") -> torch.Tensor:
    """``values [...]`` in ``[0, 1]`` (clipped) -> RGB ``[..., 3]`` float32 in ``[0, 1]``."""
    if colormap not in COLORMAPS:
        raise TrajCrafterError(f"colormap must be one of {COLORMAPS}, got {colormap!r}.")
    v = values.float().clamp(0, 1)
    if colormap == "gray":
        return v.unsqueeze(-1).expand(*v.shape, 3).contiguous()
    lut = _INFERNO.to(v.device)
    pos = v * (lut.shape[0] - 1)
    lo = pos.floor().long().clamp(max=lut.shape[0] - 2)
    frac = (pos - lo.float()).unsqueeze(-1)
    return lut[lo] * (1 - frac) + lut[lo + 1] * frac


def colorize_disparity(disparity, colormap: str = "inferno", vmin: Optional[float] = None,
                       vmax: Optional[float] = None) -> torch.Tensor:
    """IMAGE ``[T, H, W, 3]`` of disparity ``[T, H, W]`` (near = bright), scaled by one clip-wide
    ``[vmin, vmax]`` (default: the clip's min and max)."""
    d = _as_maps(disparity, "disparity").float()
    lo = float(d.min()) if vmin is None else float(vmin)
    hi = float(d.max()) if vmax is None else float(vmax)
    scale = (d - lo) / (hi - lo) if hi > lo else torch.zeros_like(d)
    return apply_colormap(scale, colormap)


def colorize_depth(depth, colormap: str = "inferno") -> torch.Tensor:
    """IMAGE ``[T, H, W, 3]`` of depth ``[T, H, W]`` (> 0), shown as ``1 / depth``, near = bright."""
    d = _as_maps(depth, "depth").float()
    if bool((d <= 0).any()):
        raise TrajCrafterError("depth must be > 0 everywhere to be colourised (it is shown as 1 / depth).")
    return colorize_disparity(1.0 / d, colormap)
