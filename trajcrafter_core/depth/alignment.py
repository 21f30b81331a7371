"""Per-frame scale/shift alignment of affine-invariant disparity, against flicker.

A per-image estimator (Depth Anything) predicts disparity only up to an unknown scale and shift
*per frame*; played as a video the depth "breathes". Fitting each frame to a reference with
least squares, ``argmin_{s,b} || s * d_t + b - ref ||²``, removes that ambiguity so the whole
clip shares one scale and shift (which the clip-wide normalisation then fixes).
"""

from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["fit_scale_shift", "align_to_reference", "flicker"]


def fit_scale_shift(pred: torch.Tensor, ref: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Least-squares ``(s, b)`` with ``s * pred + b ≈ ref`` for each map of a ``[N, H, W]`` batch.

    Computed in float64. A map with (nearly) no variation, or a fit with ``s <= 0`` (which would
    flip near and far), falls back to matching mean and standard deviation.
    """
    p = pred.double().flatten(1)
    r = ref.double().flatten(1)
    pm, rm = p.mean(1), r.mean(1)
    pc, rc = p - pm[:, None], r - rm[:, None]
    var = (pc * pc).mean(1)
    cov = (pc * rc).mean(1)
    tiny = 1e-12 * (1 + pm.abs() ** 2)
    s = torch.where(var > tiny, cov / var.clamp_min(1e-300), torch.zeros_like(var))
    std_ratio = torch.where(var > tiny, rc.std(1, unbiased=False) / var.clamp_min(1e-300).sqrt(), torch.zeros_like(var))
    s = torch.where(s > 0, s, std_ratio)
    b = rm - s * pm
    return s, b


def align_to_reference(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``pred [N, H, W]`` mapped by its per-map least-squares scale/shift onto ``ref [N or 1, H, W]``."""
    if ref.shape[0] == 1 and pred.shape[0] > 1:
        ref = ref.expand_as(pred)
    s, b = fit_scale_shift(pred, ref)
    out = pred.double() * s[:, None, None] + b[:, None, None]
    return out.to(pred.dtype)


def flicker(maps: torch.Tensor) -> float:
    """Mean absolute frame-to-frame change of ``[T, H, W]`` maps, relative to their mean magnitude.

    0 for a static clip; a per-frame scale/shift jitter shows up directly.
    """
    if maps.shape[0] < 2:
        return 0.0
    m = maps.double()
    return float((m[1:] - m[:-1]).abs().mean() / m.abs().mean().clamp_min(1e-12))
