"""Sizes of the official flow and the size policies that choose the model's size (torch-free).

The official demo reads every clip at :data:`OFFICIAL_READ_SIZE` (576x1024), estimates depth and
renders the point cloud at that size, and only then resizes frames, renders and masks to the
model's :data:`OFFICIAL_SAMPLE_SIZE` (384x672). The released weights were made for conditions
rendered large and downsampled; rendering directly at 384x672 gives other crack and hole
statistics. Sizes are ``(height, width)`` in pixels everywhere.

Size policies (:data:`SIZE_POLICIES`) say which ``sample_size`` the model gets:

- ``"official"``: the official sample size (384x672), whatever the clip's aspect (the official
  demo squashes every clip to 16:9).
- ``"keep_aspect"``: a size of about the official token count that keeps the frames' aspect
  (:func:`keep_aspect_size`); for a 16:9 clip that is the official 384x672 itself.

Under both, conditions are rendered at the frames' own size and then resized to the sample size
(frames and renders bilinear with ``align_corners=False``, masks nearest), as ``demo.py`` does.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

from .errors import TrajCrafterError

__all__ = [
    "OFFICIAL_READ_SIZE",
    "OFFICIAL_SAMPLE_SIZE",
    "SIZE_MULTIPLE",
    "SIZE_POLICIES",
    "DEFAULT_SIZE_POLICY",
    "DEFAULT_READ_SIDE",
    "check_size",
    "keep_aspect_size",
    "sample_size_for",
    "read_size_for",
]

OFFICIAL_READ_SIZE = (576, 1024)
OFFICIAL_SAMPLE_SIZE = (384, 672)
#: The model's sides are multiples of this (VAE x8, patch x2).
SIZE_MULTIPLE = 16
SIZE_POLICIES = ("official", "keep_aspect")
#: What the nodes and the CLI use: identical to the official flow for 16:9 clips, and it never
#: distorts a portrait, square or other clip (the official policy would squash it to 16:9).
DEFAULT_SIZE_POLICY = "keep_aspect"
#: Long side clips are read at by default (the official read size, 576x1024 for 16:9).
DEFAULT_READ_SIDE = max(OFFICIAL_READ_SIZE)


def check_size(size, name: str = "size", multiple: int = 1) -> Tuple[int, int]:
    """``(height, width)`` as two ints >= ``multiple`` (and multiples of it), else a clear error."""
    try:
        h, w = (int(v) for v in size)
        ok = all(float(a) == b for a, b in zip(size, (h, w)))
    except (TypeError, ValueError):
        raise TrajCrafterError(f"{name} must be (height, width) in pixels, got {size!r}.") from None
    if not ok or h < max(2, multiple) or w < max(2, multiple):
        raise TrajCrafterError(f"{name} must be whole pixels (height, width) >= {max(2, multiple)}, got {size!r}.")
    if multiple > 1 and (h % multiple or w % multiple):
        lo = lambda v: max(multiple, v - v % multiple)  # noqa: E731
        raise TrajCrafterError(
            f"{name} {h}x{w} must be multiples of {multiple} (the model's sides), e.g. {lo(h)}x{lo(w)}.")
    return h, w


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)


def keep_aspect_size(height: int, width: int, pixels: Optional[int] = None,
                     multiple: int = SIZE_MULTIPLE) -> Tuple[int, int]:
    """A sample size of about ``pixels`` pixels (default the official 384x672 count) with the
    aspect of ``height`` x ``width``, sides multiples of ``multiple``.

    If the official sample size (or its transpose, for portrait clips) keeps the aspect within
    one ``multiple`` step (``|w - h * W / H| < multiple``), that size is returned, so a 16:9 clip
    gets exactly the official flow. Otherwise ``h = round(sqrt(pixels * H / W))`` and
    ``w = round(h * W / H)``, each to the nearest multiple: the aspect is then kept within half a
    step (e.g. 720x1280 -> 384x672 is official-shaped; 512x512 for a square; 448x592 for 4:3).
    """
    height, width = check_size((height, width))
    aspect = width / height
    for h, w in (OFFICIAL_SAMPLE_SIZE, OFFICIAL_SAMPLE_SIZE[::-1]):
        if abs(w - h * aspect) < multiple and abs(h - w / aspect) < multiple:
            if pixels is None or pixels == h * w:
                return h, w
    count = float(pixels if pixels is not None else OFFICIAL_SAMPLE_SIZE[0] * OFFICIAL_SAMPLE_SIZE[1])
    if not (math.isfinite(count) and count >= multiple * multiple):
        raise TrajCrafterError(f"pixels must be at least {multiple * multiple}, got {pixels!r}.")
    h = _round_to(math.sqrt(count / aspect), multiple)
    return h, _round_to(h * aspect, multiple)


def sample_size_for(frame_size: Sequence[int], policy: str = DEFAULT_SIZE_POLICY,
                    sample_size: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """The model's ``(height, width)`` for frames of ``frame_size`` under ``policy``.

    ``sample_size`` (multiples of 16) wins when given. Otherwise ``"official"`` gives 384x672 and
    ``"keep_aspect"`` :func:`keep_aspect_size` of the frames.
    """
    if policy not in SIZE_POLICIES:
        raise TrajCrafterError(f"size_policy must be one of {', '.join(SIZE_POLICIES)}, got {policy!r}.")
    frame_size = check_size(frame_size, "frame size")
    if sample_size is not None:
        return check_size(sample_size, "sample_size", multiple=SIZE_MULTIPLE)
    if policy == "official":
        return OFFICIAL_SAMPLE_SIZE
    return keep_aspect_size(*frame_size)


def read_size_for(sample_size: Sequence[int], long_side: int = DEFAULT_READ_SIDE) -> Tuple[int, int]:
    """The size to read (and render) a clip at for a given sample size: the official read size
    576x1024 for the official 384x672; otherwise the sample size scaled so its long side is
    ``long_side`` (multiples of 16). Used where the frames are resized on purpose (training)."""
    h, w = check_size(sample_size, "sample_size", multiple=SIZE_MULTIPLE)
    if (h, w) == OFFICIAL_SAMPLE_SIZE and long_side == DEFAULT_READ_SIDE:
        return OFFICIAL_READ_SIZE
    scale = long_side / max(h, w)
    return _round_to(h * scale, SIZE_MULTIPLE), _round_to(w * scale, SIZE_MULTIPLE)
