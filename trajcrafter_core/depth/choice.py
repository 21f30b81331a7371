"""The clip's depth from a :class:`~trajcrafter_core.specs.DepthSpec`: the one builder every front-end uses.

- :func:`load_estimator` — a DepthCrafter or Depth Anything V2 estimator from its folders.
- :func:`depth_for_frames` — depth ``[T, H, W]`` at the frames' size from a spec (estimator or
  file) or an already loaded estimator.
- :func:`read_depth_file` — depth the user brings (``.npy``/``.npz`` z-depth, a folder of 8/16-bit
  PNGs or a depth video), matched to the clip's frames.
- :func:`check_depth_source` — cheap checks of a spec's paths, before any frame is decoded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..conventions import as_depth
from ..errors import MissingFilesError, TrajCrafterError
from ..model_folders import FOLDER_NAMES, kind_of
from ..specs import DepthSpec
from .interface import CancelCallback, ProgressCallback, estimate

__all__ = ["load_estimator", "depth_for_frames", "read_depth_file", "fit_to_frames", "check_depth_source", "torch_dtype"]

_ARRAY_SUFFIXES = (".npy", ".npz")


def torch_dtype(name: Optional[str], device) -> torch.dtype:
    """``"fp16" | "bf16" | "fp32"``, or None: fp16 on CUDA, fp32 elsewhere."""
    if name is None:
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def _device(spec: DepthSpec):
    if spec.device is not None:
        return torch.device(spec.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_estimator(spec: DepthSpec, *, device=None, progress=None, cancel=None):
    """The estimator a spec names, loaded on ``device`` (default the spec's).

    ``progress``/``cancel`` follow a download when ``spec.download`` fetches missing files.
    """
    from . import DepthAnythingEstimator, DepthCrafterEstimator

    if spec.estimator == "file":
        raise TrajCrafterError("a depth file is read, not loaded: call depth_for_frames with the spec.")
    device = torch.device(device) if device is not None else _device(spec)
    dtype = torch_dtype(spec.dtype, device)
    fetch = dict(download=spec.download, progress=progress, cancel=cancel, local_files_only=not spec.download)
    if spec.estimator == "depthcrafter":
        return DepthCrafterEstimator.from_pretrained(spec.path, spec.svd_path, dtype=dtype, device=device, **fetch)
    return DepthAnythingEstimator.from_pretrained(spec.path, dtype=dtype, device=device, **fetch)


def check_depth_source(spec: DepthSpec, label: str = "depth") -> None:
    """Fail fast, naming ``label``, when a spec's file or folder cannot be what it claims.

    Runs before any video is decoded; an estimator's files are checked fully when it loads.
    """
    path = Path(spec.path).expanduser()
    if spec.estimator == "file":
        if any(ch in spec.path for ch in "*?["):
            return  # a glob of PNG frames, expanded when read
        if not path.exists():
            raise MissingFilesError(f"{label} {spec.path}: no such file or folder.")
        if path.is_dir():
            found = kind_of(path)
            if found in ("depth_anything", "depthcrafter_unet", "svd"):
                raise TrajCrafterError(
                    f"{label} {spec.path} is a {found.replace('_', ' ')} model folder, not depth; use it as "
                    f"an estimator.")
            if not any(path.glob("*.png")):
                raise TrajCrafterError(
                    f"{label} {spec.path} is a folder without *.png depth frames; give a .npy/.npz file, a "
                    f"depth video, a folder of 8/16-bit PNG frames, or a depth model folder.")
        elif path.stat().st_size == 0:
            raise TrajCrafterError(f"{label} {spec.path} is an empty file.")
        return
    folders = [(path, "depth_anything" if spec.estimator == "depth_anything_v2" else "depthcrafter_unet")]
    if spec.estimator == "depthcrafter":
        folders.append((Path(spec.svd_path).expanduser(), "svd"))
    for folder, kind in folders:
        if not folder.exists():
            if spec.download:
                continue
            raise MissingFilesError(
                f"{label} {folder}: no such folder (expected {FOLDER_NAMES[kind]}); download it, or turn on "
                f"downloading.")
        if not folder.is_dir():
            raise TrajCrafterError(f"{label} {folder} is a file; give the {FOLDER_NAMES[kind]} model folder.")


def fit_to_frames(maps: torch.Tensor, frames: torch.Tensor, frame_indices: Optional[Sequence[int]] = None,
                  label: str = "depth", hint: str = "", resize: bool = True) -> torch.Tensor:
    """``maps`` ``[n, h, w]`` as one map per frame of ``frames`` ``[T, H, W, 3]``, at their size.

    ``n == T``: as given; a file with one map per frame of the source video is subsampled with
    ``frame_indices`` (the clip's selected source frames); any other count is an error naming
    ``label`` (plus ``hint``). Another size is resized bilinearly (``align_corners=False``)
    unless ``resize`` is False.
    """
    T, H, W = (int(s) for s in frames.shape[:3])
    n = int(maps.shape[0])
    if n != T:
        if frame_indices is not None and len(frame_indices) == T and n > max(frame_indices):
            maps = maps[torch.as_tensor(list(frame_indices), dtype=torch.long)]
        else:
            per_source = f" (or one per source frame, more than {max(frame_indices)})" if frame_indices else ""
            raise TrajCrafterError(f"{label} has {n} depth map(s) but the clip has {T} frames; give {T}{per_source}."
                                   + (f" {hint}" if hint else ""))
    if resize and tuple(maps.shape[1:]) != (H, W):
        maps = F.interpolate(maps[:, None].float(), size=(H, W), mode="bilinear", align_corners=False)[:, 0]
    return maps


def read_depth_file(path: Union[str, os.PathLike], frames: torch.Tensor, *, polarity: str = "near_bright",
                    frame_indices: Optional[Sequence[int]] = None, label: str = "depth") -> torch.Tensor:
    """Depth ``float32 [T, H, W]`` for ``frames [T, H, W, 3]`` from a file the user brings.

    - ``.npy`` / ``.npz``: z-depth (larger = farther, > 0), used as is (``.npz``: key ``depth``
      or its only array).
    - a folder or glob of PNGs (8-bit / 16-bit), or a depth video: grey maps read with
      ``polarity`` (``near_bright`` = disparity-like) through the official disparity→depth mapping.

    Maps are resized to the frames' size (bilinear). A file with one map per frame of the source
    video is subsampled with ``frame_indices`` (the clip's selected source frames).
    """
    from ..video import VIDEO_EXTENSIONS, read_video
    from .external import depth_from_image, load_depth_array

    text = os.fspath(path)
    p = Path(text).expanduser()
    suffix = p.suffix.lower()
    if suffix in _ARRAY_SUFFIXES:
        try:
            maps = load_depth_array(p)
        except ValueError as exc:
            if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                raise TrajCrafterError(
                    f"{label} {text} holds Python objects, not numbers (a pickled object array is never "
                    f"loaded); save the depth as a float array [T, H, W] with numpy.save.") from None
            raise TrajCrafterError(f"{label} {text} could not be read as a numpy array ({exc}).") from None
        return as_depth(fit_to_frames(maps, frames, frame_indices, f"{label} {text}"), f"{label} {text}")
    if p.is_dir() or suffix == ".png" or any(ch in text for ch in "*?["):
        maps = load_depth_array(p if p.is_dir() else text)
    elif suffix in VIDEO_EXTENSIONS or p.is_file():
        maps = read_video(p, size_multiple=1).frames
    else:
        raise MissingFilesError(f"{label} {text}: no such file or folder.")
    maps = fit_to_frames(maps, frames, frame_indices, f"{label} {text}", resize=False)  # resized as grey maps
    return depth_from_image(maps, frames, polarity=polarity, resize=True)


def depth_for_frames(frames: torch.Tensor, source, *, frame_indices: Optional[Sequence[int]] = None,
                     progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCallback] = None,
                     label: str = "depth", **options) -> torch.Tensor:
    """Depth ``float32 [T, H, W]`` (> 0, larger = farther) at the size of ``frames``.

    ``source``: a :class:`DepthSpec` (a file is read, an estimator loaded and run) or a loaded
    estimator. Estimators run with the spec's options (``options`` for a loaded one: steps,
    window, ...) and the official disparity→depth mapping.
    """
    if isinstance(source, DepthSpec):
        if source.estimator == "file":
            return read_depth_file(source.path, frames, polarity=source.polarity, frame_indices=frame_indices,
                                   label=label)
        estimator = load_estimator(source)
        options = {**source.estimate_options(), **options}
    else:
        estimator = source
    return estimate(frames, estimator, progress=progress, cancel=cancel, **options)
