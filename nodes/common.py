"""What every node module shares: the category, our socket types, small input helpers.

Socket types between our nodes (ComfyUI only checks that names match):

- ``IMAGE`` / ``MASK``: ComfyUI's own (frames ``[T, H, W, 3]`` 0..1, masks ``[T, H, W]`` with
  1 = hole), so video loaders and savers of any pack plug in.
- :data:`DEPTH`: a :class:`DepthMaps` (raw depth ``[T, H, W]``, > 0, larger = farther).
- :data:`DEPTH_MODEL`, :data:`POINT_CLOUD`, :data:`TRAJECTORY`, :data:`MODEL`: core objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CATEGORY = "TrajectoryCrafter"

DEPTH = "TRAJCRAFTER_DEPTH"
DEPTH_MODEL = "TRAJCRAFTER_DEPTH_MODEL"
POINT_CLOUD = "TRAJCRAFTER_POINT_CLOUD"
TRAJECTORY = "TRAJCRAFTER_TRAJECTORY"
MODEL = "TRAJCRAFTER_MODEL"

MAX_SEED = 0xFFFFFFFFFFFFFFFF


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
