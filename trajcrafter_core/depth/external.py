"""Depth the user brings: another node pack's depth video, or raw arrays on disk.

Two kinds of input:

- **A depth video as a ComfyUI IMAGE** (what other depth packs output): ``[T, H, W, 3]`` (or
  ``[T, H, W, 1]``/``[T, H, W]``) in 0..1, grey, usually *near = bright* (disparity-like).
  ``polarity="near_bright"`` takes it as disparity; ``"far_bright"`` (a depth-like map) is
  flipped linearly (``1 - v``) first. The clip is normalised to ``[0, 1]`` and goes through the
  official mapping, exactly like an estimator's output.
- **Raw arrays** (:func:`load_depth_array`): ``.npy``, ``.npz`` (key ``depth`` as DepthCrafter
  saves it, or the only array), or a sequence of 16-/8-bit PNGs. ``kind="disparity"`` is
  normalised and mapped officially; ``kind="depth"`` is metric depth passed through.

Either must match the video: same frame count and size (``resize=True`` resizes the size, never
the count).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..conventions import _to_tensor, check_finite
from ..errors import MissingFilesError, TrajCrafterError
from .mapping import (
    OFFICIAL_FAR,
    OFFICIAL_NEAR,
    metric_depth_passthrough,
    normalize_disparity,
    official_depth_from_disparity,
)
from .resize import resize_bchw

__all__ = [
    "POLARITIES",
    "KINDS",
    "disparity_from_image",
    "depth_from_image",
    "load_depth_array",
    "depth_from_array",
]

POLARITIES = ("near_bright", "far_bright")
KINDS = ("disparity", "depth")
PathLike = Union[str, os.PathLike]


def _maps(x, name: str) -> torch.Tensor:
    """``[T, H, W]`` float32 from ``[T, H, W]``, ``[T, H, W, 1|3]`` or ``[H, W]``."""
    x = _to_tensor(x, name)
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        x = x[..., :3].float().mean(dim=-1) if x.shape[-1] != 1 else x[..., 0]
    if x.ndim != 3:
        raise TrajCrafterError(
            f"{name} must be [T, H, W] or an IMAGE [T, H, W, 3], got shape {list(x.shape)}."
        )
    if x.shape[0] == 0:
        raise TrajCrafterError(f"{name} has zero frames; give one depth map per video frame.")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.dtype in (torch.uint16, torch.int32, torch.int64, torch.int16):
        x = x.double()
    x = x.float()
    check_finite(x, name)
    return x


def _match_video(x: torch.Tensor, frames: Optional[torch.Tensor], name: str, resize: bool) -> torch.Tensor:
    if frames is None:
        return x
    t, h, w = (int(s) for s in frames.shape[:3])
    if x.shape[0] != t:
        raise TrajCrafterError(
            f"{name} has {x.shape[0]} frame(s) but the video has {t}; give exactly one depth map "
            f"per video frame (trim or re-export the depth video with the same frame selection)."
        )
    if tuple(x.shape[1:]) != (h, w):
        if not resize:
            raise TrajCrafterError(
                f"{name} is {x.shape[1]}x{x.shape[2]} (HxW) but the video is {h}x{w}; resize the "
                f"depth to the video's size (or pass resize=True)."
            )
        x = resize_bchw(x[:, None], (h, w))[:, 0]
    return x


def disparity_from_image(image, polarity: str = "near_bright") -> torch.Tensor:
    """Disparity ``[T, H, W]`` in ``[0, 1]`` (1 = nearest, normalised over the clip) from a grey
    depth IMAGE. ``polarity``: ``"near_bright"`` (disparity-like, most depth packs) or
    ``"far_bright"`` (depth-like; flipped as ``1 - v``)."""
    if polarity not in POLARITIES:
        raise TrajCrafterError(f"polarity must be one of {POLARITIES}, got {polarity!r}.")
    v = _maps(image, "depth image")
    if polarity == "far_bright":
        v = 1.0 - v
    return normalize_disparity(v, name="depth image")


def depth_from_image(
    image,
    frames=None,
    polarity: str = "near_bright",
    near: float = OFFICIAL_NEAR,
    far: float = OFFICIAL_FAR,
    resize: bool = False,
) -> torch.Tensor:
    """Depth ``[T, H, W]`` (> 0, larger = farther) from another pack's depth IMAGE, through the
    official mapping; checked against ``frames [T, H, W, 3]`` when given."""
    if polarity not in POLARITIES:
        raise TrajCrafterError(f"polarity must be one of {POLARITIES}, got {polarity!r}.")
    v = _match_video(_maps(image, "depth image"), frames, "depth image", resize)
    return official_depth_from_disparity(disparity_from_image(v, polarity), near=near, far=far)


def _png_paths(source) -> Sequence[Path]:
    if isinstance(source, (list, tuple)):
        return [Path(p) for p in source]
    p = Path(source)
    if p.is_dir():
        return sorted(p.glob("*.png"))
    return [Path(q) for q in sorted(glob.glob(os.fspath(p)))]


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.array(im)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=-1)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype in (np.uint16, np.int32, np.uint32) or im.mode.startswith("I"):
        return arr.astype(np.float32) / 65535.0
    return arr.astype(np.float32)


def load_depth_array(source, key: Optional[str] = None) -> torch.Tensor:
    """Raw depth/disparity ``[T, H, W]`` float32 from ``.npy``, ``.npz`` or PNGs.

    ``source``: a ``.npy``/``.npz`` file, a folder of ``*.png`` (sorted by name), a glob pattern
    or a list of PNG paths. PNGs are scaled to ``[0, 1]`` (16-bit / 65535, 8-bit / 255); arrays
    are returned as stored. ``.npz``: ``key``, else ``depth``, else the only array.
    """
    if isinstance(source, (list, tuple)) or Path(source).is_dir() or os.fspath(source).lower().endswith(".png") \
            or any(ch in os.fspath(source) for ch in "*?["):
        paths = _png_paths(source)
        if not paths:
            raise MissingFilesError(f"no PNG depth frames found at {source}; expected *.png files (one per frame).")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise MissingFilesError(f"depth PNG frame(s) not found: {', '.join(missing[:5])}.")
        maps = [_read_png(p) for p in paths]
        sizes = {m.shape for m in maps}
        if len(sizes) > 1:
            raise TrajCrafterError(f"depth PNG frames have different sizes {sorted(sizes)}; all must match.")
        return torch.from_numpy(np.stack(maps))
    path = Path(source)
    if not path.is_file():
        raise MissingFilesError(f"depth file not found: {path} (expected .npy, .npz or PNG frames).")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            names = list(z.keys())
            if key is None:
                key = "depth" if "depth" in names else (names[0] if len(names) == 1 else None)
            if key is None or key not in names:
                raise TrajCrafterError(f"{path} holds arrays {names}; say which one with key=...")
            arr = z[key]
    else:
        raise TrajCrafterError(f"unsupported depth file {path}: use .npy, .npz or a folder of 16-bit PNGs.")
    if not np.issubdtype(arr.dtype, np.number):
        raise TrajCrafterError(f"{path} does not hold a numeric array (dtype {arr.dtype}).")
    return _maps(torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32, copy=False)), str(path))


def depth_from_array(
    array,
    frames=None,
    kind: str = "disparity",
    near: float = OFFICIAL_NEAR,
    far: float = OFFICIAL_FAR,
    resize: bool = False,
) -> torch.Tensor:
    """Depth ``[T, H, W]`` from a raw array or a path (see :func:`load_depth_array`).

    ``kind="disparity"``: any-scale disparity (larger = nearer), normalised over the clip and
    mapped officially with ``near``/``far``. ``kind="depth"``: metric depth, validated and passed
    through unchanged. Checked against ``frames`` when given.
    """
    if kind not in KINDS:
        raise TrajCrafterError(f"kind must be one of {KINDS}, got {kind!r}.")
    is_paths = isinstance(array, (list, tuple)) and len(array) > 0 and all(
        isinstance(a, (str, os.PathLike)) for a in array)
    if isinstance(array, (str, os.PathLike)) or is_paths:
        array = load_depth_array(array)
    x = _match_video(_maps(array, "external depth"), frames, "external depth", resize)
    if kind == "depth":
        return metric_depth_passthrough(x)
    return official_depth_from_disparity(normalize_disparity(x, name="external disparity"), near=near, far=far)
