"""ComfyUI nodes of the TrajectoryCrafter pack: declarations (:mod:`.declare`) over :mod:`trajcrafter_core`.

Each node module declares its nodes as data (``NODES``: :class:`~.declare.NodeDef`) with plain
run functions. From them the pack registers:

- V3 nodes (``comfy_api.latest``) through :func:`comfy_entrypoint` when the running ComfyUI has
  that API (:func:`.bridge.comfy_io`);
- V1 classes (``NODE_CLASS_MAPPINGS``) otherwise — on older ComfyUI, with
  ``TRAJCRAFTER_NODE_API=v1``, and in tests that run nodes without ComfyUI.

Each node module is imported on its own: if one fails (e.g. an optional dependency is missing)
its nodes are left out and the failure is logged; the rest of the pack still loads. Node modules
import no torch-heavy code at import time.
"""

from __future__ import annotations

import importlib
import logging

from . import bridge
from .common import FEATURES, missing_packages
from .declare import ROOT_CATEGORY, NodeDef
from .v1 import v1_class

log = logging.getLogger("TrajectoryCrafter")

try:  # models/trajectorycrafter/ (+ extra_model_paths.yaml entries) in ComfyUI's folder registry
    bridge.register_model_folders()
except Exception as _exc:  # noqa: BLE001 - the loaders still find the default folder
    log.warning("TrajectoryCrafter: could not register the model folder (%s)", _exc)

_NODE_MODULES = (
    "video_nodes",
    "depth_nodes",
    "camera_nodes",
    "pointcloud_nodes",
    "render_nodes",
    "model_nodes",
    "sampler_nodes",
    "multi_path_nodes",
    "scene3d_nodes",
)

NODE_DEFS: dict = {}
"""Node id -> :class:`~.declare.NodeDef`, in menu order."""
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
    for _definition in _module.NODES:
        assert isinstance(_definition, NodeDef) and _definition.id not in NODE_DEFS, _definition
        NODE_DEFS[_definition.id] = _definition

NODE_CLASS_MAPPINGS = {node_id: v1_class(d) for node_id, d in NODE_DEFS.items()}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: d.display_name for node_id, d in NODE_DEFS.items()}


def v3_node_classes(io):
    """The V3 node classes of every declaration (``io``: ``comfy_api.latest.io``)."""
    from .v3 import v3_class

    return [v3_class(d, io) for d in NODE_DEFS.values()]


def comfy_entrypoint():
    """V3 entry point ComfyUI calls when the pack exposes no ``NODE_CLASS_MAPPINGS``."""
    return bridge.comfy_extension(v3_node_classes(bridge.comfy_io()))


CATEGORY = ROOT_CATEGORY
__all__ = ["NODE_DEFS", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "comfy_entrypoint", "v3_node_classes",
           "CATEGORY", "DISABLED_MODULES", "DISABLED_FEATURES"]
