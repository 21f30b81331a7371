"""ComfyUI nodes of the TrajectoryCrafter pack: thin wrappers over :mod:`trajcrafter_core`.

V1 node API (``NODE_CLASS_MAPPINGS`` / ``NODE_DISPLAY_NAME_MAPPINGS``): plain classes that work
on every ComfyUI release since 2024 and that tests call directly without ComfyUI.

Each node module is imported on its own: if one fails (e.g. an optional dependency is missing)
its nodes are left out and the failure is logged; the rest of the pack still loads. Node modules
import no torch-heavy code at import time.
"""

from __future__ import annotations

import importlib
import logging

from . import bridge
from .common import CATEGORY, FEATURES, missing_packages

log = logging.getLogger("TrajectoryCrafter")

try:  # models/trajectorycrafter/ (+ extra_model_paths.yaml entries) in ComfyUI's folder registry
    bridge.register_model_folders()
except Exception as _exc:  # noqa: BLE001 - the loaders still find the default folder
    log.warning("TrajectoryCrafter: could not register the model folder (%s)", _exc)

_NODE_MODULES = (
    "video_nodes",
    "depth_nodes",
    "pointcloud_nodes",
    "camera_nodes",
    "render_nodes",
    "model_nodes",
    "sampler_nodes",
    "multi_path_nodes",
    "scene3d_nodes",
)

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
DISABLED_MODULES: dict = {}
"""Node modules that failed to import: name -> reason (also logged)."""

DISABLED_FEATURES = {f: missing_packages(f) for f in FEATURES if missing_packages(f)}
"""Features turned off for a missing package: feature -> pip names (also logged)."""
for _feature, _missing in DISABLED_FEATURES.items():
    log.warning("TrajectoryCrafter: %s disabled, missing Python package(s): %s (pip install -r requirements.txt)",
                _feature, ", ".join(_missing))

for _name in _NODE_MODULES:
    try:
        _module = importlib.import_module(f".{_name}", __name__)
    except Exception as _exc:  # noqa: BLE001 - never break ComfyUI start-up
        DISABLED_MODULES[_name] = f"{type(_exc).__name__}: {_exc}"
        log.warning("TrajectoryCrafter: nodes from %s disabled (%s)", _name, DISABLED_MODULES[_name])
        continue
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "CATEGORY", "DISABLED_MODULES", "DISABLED_FEATURES"]
