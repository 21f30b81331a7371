"""Clips of any length: overlapping windows of the model's length, each continuing the last.

The diffusion model samples ``8m + 1`` frames at a time (49 native). A clip of ``T`` frames
longer than a window of ``L`` frames is generated in windows that overlap by ``O`` frames:

- **plan** (:func:`plan_windows`): window ``j`` covers output frames ``[s_j, s_j + L)`` with
  ``s_j = j (L - O)``; the last window ends at ``T`` and is the only one shorter than ``L`` (the
  sampler pads it to the next ``8m + 1`` by repeating its last frame and trims back).
  ``n = 1 + ceil((T - L) / (L - O))`` windows, so time grows linearly with ``T`` and the model
  only ever holds one window.
- **continuation** (:func:`window_inputs`): every window after the first sees the previous
  window's generated frames in its first ``O`` frames as known content — render = those frames,
  hole mask = 0 — so the video continues instead of restarting. ``O <= (L - 1) / 2`` keeps
  seams apart: the known frames are the previous window's own output, untouched by the seam
  before.
- **reference**: each window cross-attends to its own source frames ``source[s_j : s_j + L]``:
  the first ``R`` of them, the last ``R`` for bullet time (``reference_from="end"``, as the
  official mode), ``R`` the count of the clip's reference frames.
- **seams** (:func:`blend_weights`): output frame ``s_j + k`` of an overlap is
  ``(1 - w_k) prev + w_k cur`` with ``w_k = (k + 1) / (O + 1)``: the video moves from the old
  window to the new one over the overlap, so no frame-to-frame step across a seam exceeds the
  larger of the two windows' own steps plus ``|cur - prev| / (O + 1)``.
- **seeds**: window ``j`` samples with seed ``seed + j``.

The default overlap (:func:`default_overlap`) is about a quarter of the window, ``4k + 1`` frames
(the causal VAE encodes the first frame alone and then groups of 4, so the known frames fill
whole latents): 13 for the native 49, 5 for 17.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .errors import TrajCrafterError

__all__ = [
    "Window",
    "WindowInputs",
    "DEFAULT_WINDOW_FRAMES",
    "default_overlap",
    "check_window",
    "plan_windows",
    "window_schedule",
    "blend_weights",
    "window_inputs",
    "generate_windows",
]

#: The model's native length.
DEFAULT_WINDOW_FRAMES = 49


@dataclass(frozen=True)
class Window:
    """Output frames ``[start, stop)`` of one window; ``overlap``: how many of its first frames
    the previous window already generated (0 for the first window)."""

    start: int
    stop: int
    overlap: int

    @property
    def num_frames(self) -> int:
        return self.stop - self.start


@dataclass
class WindowInputs:
    """What the sampler gets for one window of one clip: ``render`` ``[n, h, w, 3]`` 0..1,
    ``mask`` ``[n, h, w]`` (1 = hole), ``reference`` ``[R, h, w, 3]``."""

    render: torch.Tensor
    mask: torch.Tensor
    reference: torch.Tensor


def default_overlap(window_frames: int) -> int:
    """``4 * ((L - 1) // 16) + 1`` frames: about a quarter of the window, whole latents."""
    return 4 * ((int(window_frames) - 1) // 16) + 1


def check_window(window_frames: int, overlap_frames: Optional[int]) -> Tuple[int, int]:
    """``(L, O)`` checked: ``L = 8m + 1 >= 9`` (a length the model takes), ``1 <= O <= (L - 1) // 2``;
    ``O`` defaults to :func:`default_overlap`."""
    try:
        L = int(window_frames)
        ok = L == window_frames
    except (TypeError, ValueError):
        ok = False
    if not ok or L < 9 or (L - 1) % 8:
        raise TrajCrafterError(
            f"window_frames must be 8m+1 frames, at least 9 (the model's lengths: 9, 17, 25, 33, 41, 49 native), "
            f"got {window_frames!r}.")
    O = default_overlap(L) if overlap_frames is None else overlap_frames
    try:
        ok = int(O) == O
    except (TypeError, ValueError):
        ok = False
    if not ok or not 1 <= int(O) <= (L - 1) // 2:
        raise TrajCrafterError(
            f"overlap_frames must be a whole number from 1 to {(L - 1) // 2} (at most half a window of {L}, so "
            f"seams stay apart), got {overlap_frames!r}.")
    return L, int(O)


def plan_windows(num_frames: int, window_frames: int, overlap_frames: Optional[int] = None) -> List[Window]:
    """The windows of a clip of ``num_frames`` (see the module docstring); one window when the
    clip fits in one."""
    L, O = check_window(window_frames, overlap_frames)
    T = int(num_frames)
    if T < 1:
        raise TrajCrafterError(f"a clip needs at least 1 frame, got {num_frames}.")
    if T <= L:
        return [Window(0, T, 0)]
    count = 1 + math.ceil((T - L) / (L - O))
    starts = [j * (L - O) for j in range(count)]
    return [Window(s, min(s + L, T), O if j else 0) for j, s in enumerate(starts)]


def blend_weights(overlap: int) -> torch.Tensor:
    """Weights ``w_k = (k + 1) / (O + 1)``, float32 ``[O]``, of the new window across an overlap."""
    return torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)


def window_inputs(render: torch.Tensor, mask: torch.Tensor, source: torch.Tensor, num_reference: int,
                  reference_from: str, window: Window, generated: Optional[torch.Tensor]) -> WindowInputs:
    """Inputs of ``window`` for a clip's ``render`` ``[T, h, w, 3]``, ``mask`` ``[T, h, w]`` and
    ``source`` ``[T, h, w, 3]``; ``generated``: the clip's output so far (``[T, h, w, 3]``, needed
    for a window with an overlap, whose first frames become known content)."""
    s, e = window.start, window.stop
    win_render, win_mask = render[s:e].clone(), mask[s:e].clone()
    if window.overlap:
        win_render[: window.overlap] = generated[s: s + window.overlap]
        win_mask[: window.overlap] = 0.0
    frames = source[s:e]
    count = min(int(num_reference), frames.shape[0])
    reference = frames[:count] if reference_from == "start" else frames[frames.shape[0] - count:]
    return WindowInputs(win_render, win_mask, reference.clone())


def window_schedule(shapes: Sequence[tuple], window_frames: int,
                    overlap_frames: Optional[int]) -> Tuple[List[List[Window]], List[List[List[int]]]]:
    """``(plans, schedule)`` for clips of render shapes ``[T, h, w, 3]``: each clip's windows, and
    for each window index ``j`` the groups of clips sampled together (same window geometry)."""
    plans = [plan_windows(shape[0], window_frames, overlap_frames) for shape in shapes]
    schedule = []
    for j in range(max(len(p) for p in plans)):
        groups: Dict[tuple, List[int]] = {}
        for i, plan in enumerate(plans):
            if j < len(plan):
                groups.setdefault((plan[j].num_frames,) + tuple(shapes[i][1:]), []).append(i)
        schedule.append(list(groups.values()))
    return plans, schedule


#: ``sample(inputs, seed) -> frames``: one window of several clips (the same shape) → one video each.
SampleFn = Callable[[List[WindowInputs], int], List[torch.Tensor]]


def generate_windows(clips: Sequence[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, str]], sample: SampleFn,
                     window_frames: int, overlap_frames: Optional[int], seed: int) -> List[torch.Tensor]:
    """Generate every clip window by window; returns one ``[T, h, w, 3]`` video per clip.

    ``clips``: ``(render, mask, source, num_reference, reference_from)`` each (see
    :func:`window_inputs`). Window ``j`` of all clips whose window ``j`` has the same shape goes
    to one ``sample(inputs, seed + j)`` call (so several camera paths of a clip share it), the
    results are blended in at the seams (:func:`blend_weights`).
    """
    plans, schedule = window_schedule([tuple(c[0].shape) for c in clips], window_frames, overlap_frames)
    outputs = [torch.zeros_like(c[0]) for c in clips]
    for j, groups in enumerate(schedule):
        for members in groups:
            inputs = [window_inputs(*clips[i], plans[i][j], outputs[i]) for i in members]
            results = sample(inputs, int(seed) + j)
            for i, frames in zip(members, results):
                _place(outputs[i], plans[i][j], frames)
    return outputs


def _place(output: torch.Tensor, window: Window, frames: torch.Tensor) -> None:
    """Write a window's frames into the clip's output, blending across its overlap."""
    s, e, o = window.start, window.stop, window.overlap
    frames = frames.to(output)
    if o:
        w = blend_weights(o)[:, None, None, None]
        output[s: s + o] = (1.0 - w) * output[s: s + o] + w * frames[:o]
    output[s + o: e] = frames[o:]
