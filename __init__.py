"""ComfyUI entry point of the TrajectoryCrafter node pack.

Importing this file must stay cheap and must never fail for a missing optional dependency:
nodes import torch-heavy modules only when they run.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # make the standalone library importable as `trajcrafter_core`
    sys.path.insert(0, _HERE)

try:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: F401
except ImportError:  # running outside a package context (e.g. pytest collecting the root)
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

WEB_DIRECTORY = None
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
