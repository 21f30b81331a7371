"""What every node module shares: the category, our socket types, small input helpers.

Socket types between our nodes (ComfyUI only checks that names match):

- ``IMAGE`` / ``MASK``: ComfyUI's own (frames ``[T, H, W, 3]`` 0..1, masks ``[T, H, W]`` with
  1 = hole), so video loaders and savers of any pack plug in.
- :data:`DEPTH`: a :class:`DepthMaps` (raw depth ``[T, H, W]``, > 0, larger = farther).
- :data:`CAMERA_PATH`: a :class:`trajcrafter_core.specs.CameraSpec` (where the camera goes, not
  yet scheduled over a clip).
- :data:`DEPTH_MODEL`, :data:`POINT_CLOUD`, :data:`TRAJECTORY`, :data:`MODEL`: core objects;
  :data:`CONDITIONS`: a :class:`trajcrafter_core.redirect.Conditions` (the sampler's inputs at
  the model's size); :data:`TRAJECTORIES` / :data:`CONDITIONS_LIST`: several of them, labelled.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import List


DEPTH = "TRAJCRAFTER_DEPTH"
DEPTH_MODEL = "TRAJCRAFTER_DEPTH_MODEL"
POINT_CLOUD = "TRAJCRAFTER_POINT_CLOUD"
TRAJECTORY = "TRAJCRAFTER_TRAJECTORY"
MODEL = "TRAJCRAFTER_MODEL"
CONDITIONS = "TRAJCRAFTER_CONDITIONS"
CAMERA_PATH = "TRAJCRAFTER_CAMERA_PATH"
#: several camera paths: a list of ``(label, Trajectory)``; their conditions: a list of ``(label, Conditions)``
TRAJECTORIES = "TRAJCRAFTER_TRAJECTORIES"
CONDITIONS_LIST = "TRAJCRAFTER_CONDITIONS_LIST"
#: long-clip and batching options for the samplers: a dict (window_frames, overlap_frames, batch_size)
SAMPLING_OPTIONS = "TRAJCRAFTER_SAMPLING_OPTIONS"
#: ComfyUI core's Load 3D camera (``position``, ``target``, ``zoom``, ``cameraType``)
LOAD3D_CAMERA = "LOAD3D_CAMERA"

MAX_SEED = 0xFFFFFFFFFFFFFFFF

#: Python packages each feature needs (import names). All are in requirements.txt; a missing one
#: is logged when the pack loads and turns that feature off with a message saying what to install.
FEATURES = {
    "video files": ("av",),
    "depth models": ("diffusers", "transformers", "safetensors"),
    "TrajectoryCrafter model": ("diffusers", "transformers", "accelerate", "sentencepiece", "google.protobuf", "safetensors"),
    "Hub downloads": ("huggingface_hub",),
}
_PIP_NAMES = {"google.protobuf": "protobuf"}


def missing_packages(feature: str) -> List[str]:
    """pip names of the packages ``feature`` needs that are not installed (checked without importing them)."""
    missing = []
    for module in FEATURES[feature]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(_PIP_NAMES.get(module, module))
    return missing


def require(feature: str) -> None:
    """Raise a TrajCrafterError naming what to install if ``feature`` lacks a package."""
    missing = missing_packages(feature)
    if missing:
        from trajcrafter_core.errors import TrajCrafterError

        raise TrajCrafterError(
            f"{feature}: turned off because the Python package(s) {', '.join(missing)} are not installed. "
            f"Install them into ComfyUI's Python (pip install {' '.join(missing)}, or pip install -r "
            f"requirements.txt in the TrajectoryCrafter folder) and restart ComfyUI."
        )


@dataclass
class DepthMaps:
    """Depth travelling on a :data:`DEPTH` socket.

    - ``depth``: float32 ``[T, H, W]`` on CPU, finite and > 0 (larger = farther), in the units the
      diffusion model was trained on (the official disparity→depth mapping) unless ``kind`` says
      otherwise.
    - ``source``: what produced it (estimator name, ``"image"`` for an imported map,
      ``"synthetic"`` for exact scene depth) — shown in errors and previews.
    """

    depth: object
    source: str = "unknown"
    extra: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.depth.shape[0])

    @property
    def size(self):
        """``(H, W)``."""
        return int(self.depth.shape[1]), int(self.depth.shape[2])
