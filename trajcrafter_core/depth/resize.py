"""Resizing images and depth maps between the video's size and a model's working size."""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

__all__ = ["resize_bchw", "multiple_of_64_size", "gaussian_antialiased_resize"]


def resize_bchw(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``[B, C, H, W]`` to ``size = (h, w)``, antialiased when shrinking.

    Bilinear weights are convex, so values stay within the input's range (no overshoot), which
    keeps normalised disparity inside ``[0, 1]``. Returns ``x`` itself when the size already matches.
    """
    h, w = int(size[0]), int(size[1])
    if tuple(x.shape[-2:]) == (h, w):
        return x
    shrink = h < x.shape[-2] or w < x.shape[-1]
    dtype = x.dtype
    y = F.interpolate(x.float(), size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
    return y.to(dtype)


def multiple_of_64_size(height: int, width: int, max_res: int = 1024) -> Tuple[int, int]:
    """DepthCrafter's working size: each side rounded to a multiple of 64, the longer side at most
    ``max_res`` (official ``read_video_frames``; Python's ``round``). Never below 64."""
    h = round(height / 64) * 64
    w = round(width / 64) * 64
    if max(h, w) > max_res:
        scale = max_res / max(height, width)
        h = round(height * scale / 64) * 64
        w = round(width * scale / 64) * 64
    return max(h, 64), max(w, 64)


def _gaussian_kernel(size: int, sigma: float, dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype) - size // 2
    if size % 2 == 0:
        x = x + 0.5
    k = torch.exp(-x.pow(2.0) / (2 * torch.tensor(sigma, dtype=dtype).pow(2.0)))
    return k / k.sum()


def _blur_1d(x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """Depthwise convolution along ``dim`` (-1 = width, -2 = height) with reflect padding."""
    n = kernel.numel()
    front = (n - 1) // 2
    rear = n - 1 - front
    c = x.shape[1]
    if dim == -1:
        weight = kernel.view(1, 1, 1, n).expand(c, 1, 1, n)
        x = F.pad(x, (front, rear, 0, 0), mode="reflect")
    else:
        weight = kernel.view(1, 1, n, 1).expand(c, 1, n, 1)
        x = F.pad(x, (0, 0, front, rear), mode="reflect")
    return F.conv2d(x, weight.to(x.device, x.dtype), groups=c)


def gaussian_antialiased_resize(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Stable Video Diffusion's resize of frames for the CLIP encoder.

    Gaussian blur with ``sigma = max((scale - 1) / 2, 0.001)`` per axis (scikit-image's rule) and
    an odd kernel of ``max(4 * sigma, 3)`` taps (reflect padding), then bicubic interpolation with
    aligned corners. ``x``: ``[B, C, H, W]`` float; returns ``[B, C, h, w]``.
    """
    h, w = x.shape[-2:]
    fy, fx = h / size[0], w / size[1]
    sy, sx = max((fy - 1.0) / 2.0, 0.001), max((fx - 1.0) / 2.0, 0.001)
    ky, kx = int(max(4.0 * sy, 3)), int(max(4.0 * sx, 3))
    ky += 1 - ky % 2
    kx += 1 - kx % 2
    x = _blur_1d(x, _gaussian_kernel(kx, sx, x.dtype), dim=-1)
    x = _blur_1d(x, _gaussian_kernel(ky, sy, x.dtype), dim=-2)
    return F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=True)
