"""DepthCrafter's sliding windows over a long clip: which frames, which noise, how to blend.

A clip longer than ``window_size`` frames is denoised window by window; consecutive windows
share ``overlap`` frames. For window ``k > 0`` (DepthCrafter's long-video inference):

- **noise**: window 0 uses the initial noise ``N`` (``window_size`` frames). Each later window's
  noise is the previous window's noise rotated, ``cat(prev[-overlap:], prev[:stride])``, so an
  overlapped frame keeps the noise it had in the window before.
- **initialisation**: the overlapped frames start from the previous window's *finished* latents
  plus fresh noise at the first sigma (the denoiser does that; it receives them as ``previous``).
- **blending**: the finished overlapped latents are mixed ``w * new + (1 - w) * old`` with
  ``w = linspace(0, 1, overlap)`` (first shared frame keeps the old result, last takes the new).

A clip of at most ``window_size`` frames is one window without overlap.
Latents here are ``[F, ...]`` (frames first, no batch axis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

import torch

from ..errors import TrajCrafterError

__all__ = ["Window", "plan_windows", "rotate_window_noise", "blend_weights", "run_windows"]


@dataclass(frozen=True)
class Window:
    """Frames ``[start, end)`` of the clip; the first ``overlap`` were already in the previous window."""

    start: int
    end: int
    overlap: int

    @property
    def length(self) -> int:
        return self.end - self.start


def plan_windows(num_frames: int, window_size: int, overlap: int) -> List[Window]:
    """The windows DepthCrafter denoises for a clip of ``num_frames`` frames.

    Windows start every ``window_size - overlap`` frames while a window would still add a frame
    not covered by the previous one; the last window is cut at the clip's end.
    """
    if num_frames < 1:
        raise TrajCrafterError("the clip has zero frames; give at least one frame.")
    if window_size < 1:
        raise TrajCrafterError(f"window_size must be >= 1 frame, got {window_size}.")
    if num_frames <= window_size:
        return [Window(0, num_frames, 0)]
    if not (0 <= overlap < window_size):
        raise TrajCrafterError(
            f"overlap must be in [0, window_size - 1] = [0, {window_size - 1}], got {overlap} "
            f"(official: window_size=110, overlap=25)."
        )
    stride = window_size - overlap
    windows = []
    start = 0
    while start < num_frames - overlap:
        end = min(start + window_size, num_frames)
        windows.append(Window(start, end, overlap if start > 0 else 0))
        start += stride
    return windows


def rotate_window_noise(noise: torch.Tensor, overlap: int) -> torch.Tensor:
    """Next window's noise from this window's (``[window_size, ...]``): last ``overlap`` frames first."""
    if overlap == 0:
        return noise
    stride = noise.shape[0] - overlap
    return torch.cat([noise[-overlap:], noise[:stride]], dim=0)


def blend_weights(overlap: int, device=None) -> torch.Tensor:
    """Weights of the *new* window on the ``overlap`` shared frames: ``linspace(0, 1, overlap)``."""
    return torch.linspace(0.0, 1.0, overlap, device=device)


DenoiseWindow = Callable[[Window, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def run_windows(
    num_frames: int,
    window_size: int,
    overlap: int,
    initial_noise: torch.Tensor,
    denoise: DenoiseWindow,
    finished_device: Optional[torch.device] = None,
) -> torch.Tensor:
    """Denoise a whole clip window by window and stitch the results.

    ``initial_noise``: ``[min(window_size, num_frames), ...]`` unit noise of the first window.
    ``denoise(window, noise, previous)``: returns the window's finished latents ``[window.length,
    ...]``; ``noise`` is the window's unit noise (``[window.length, ...]``), ``previous`` the
    finished latents of its first ``window.overlap`` frames from the clip so far (None for the
    first window). Frames no later window can touch are moved to ``finished_device`` (default:
    where they are) so device memory stays bounded by about one window.

    Returns ``[num_frames, ...]`` latents on ``finished_device``.
    """
    windows = plan_windows(num_frames, window_size, overlap)
    if initial_noise.shape[0] != windows[0].length:
        raise TrajCrafterError(
            f"initial noise has {initial_noise.shape[0]} frames but the first window has "
            f"{windows[0].length}; give noise for min(window_size, frame count) frames."
        )
    finished: List[torch.Tensor] = []
    tail: Optional[torch.Tensor] = None  # latents of frames a later window may still blend
    noise = initial_noise
    for k, window in enumerate(windows):
        previous = None if tail is None or window.overlap == 0 else tail[-window.overlap:]
        result = denoise(window, noise[: window.length], previous)
        if result.shape[0] != window.length:
            raise RuntimeError(f"denoiser returned {result.shape[0]} frames for a window of {window.length}")
        if previous is None:
            if tail is not None:
                finished.append(tail.to(finished_device) if finished_device is not None else tail)
            tail = result
        else:
            w = blend_weights(window.overlap, device=result.device).view(-1, *([1] * (result.ndim - 1)))
            shared = result[: window.overlap] * w + previous * (1 - w)
            shared = shared.to(result.dtype)
            done = tail[: tail.shape[0] - window.overlap]
            if done.shape[0]:
                finished.append(done.to(finished_device) if finished_device is not None else done)
            tail = torch.cat([shared, result[window.overlap:]], dim=0)
        if k + 1 < len(windows):
            noise = rotate_window_noise(noise, overlap)
    finished.append(tail.to(finished_device) if finished_device is not None else tail)
    return torch.cat(finished, dim=0)
