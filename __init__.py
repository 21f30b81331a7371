"""ComfyUI entry point of the TrajectoryCrafter node pack.

Importing this file must stay cheap and must never fail for a missing optional dependency:
nodes import torch-heavy modules only when they run.

ComfyUI imports this folder as a package; our ``nodes/`` sub-package is only ever imported
relatively (ComfyUI has its own top-level ``nodes`` module). Where the running ComfyUI has the V3
node API the pack registers through ``comfy_entrypoint`` (ComfyUI reads ``NODE_CLASS_MAPPINGS``
first, so it is None then); otherwise through the V1 ``NODE_CLASS_MAPPINGS``.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # make the standalone library importable as `trajcrafter_core`
    sys.path.insert(0, _HERE)

if __package__:  # imported as a package (ComfyUI, or the test harness)
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, bridge, comfy_entrypoint

    if bridge.comfy_io() is not None:
        NODE_CLASS_MAPPINGS = NODE_DISPLAY_NAME_MAPPINGS = None  # noqa: F811 - V3 through comfy_entrypoint
else:  # executed as a plain file (e.g. a tool collecting the repo root): no nodes
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

WEB_DIRECTORY = None
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "comfy_entrypoint"]
