"""TrajectoryCrafter core: redirect the camera of a monocular video.

Standalone library (no ComfyUI imports). Stages, each a plain function:

``video`` (read/write) → ``depth`` (video depth) → ``pointcloud`` (lift) → ``camera``
(trajectories and mode schedules) → ``render`` (point splatting, holes + mask) → ``pipeline``
(Ref-DiT video diffusion) — with ``checkpoints`` (weights), ``synthetic`` (exact test scenes)
and a CLI (``python -m trajcrafter_core``).

Layouts and camera conventions are defined once in :mod:`trajcrafter_core.conventions`.
Importing this package is cheap: submodules load on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "batch", "camera", "camera_moves", "checkpoints", "conventions", "depth", "errors", "glb", "load3d_camera",
    "models", "pipeline", "pointcloud", "redirect", "render", "sampling", "scene3d", "synthetic", "trajectory_io",
    "video", "windows",
}

from .errors import MissingFilesError, TrajCrafterError  # noqa: E402  (tiny, no torch)

__all__ = sorted(_SUBMODULES) + ["TrajCrafterError", "MissingFilesError", "__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
