"""Load the node pack the way ComfyUI does, without ComfyUI.

ComfyUI imports ``custom_nodes/<pack>/__init__.py`` as a package; our ``nodes/`` folder must only
ever be imported relatively (ComfyUI owns the top-level name ``nodes``). :func:`load_pack` does
the same with a package name of our own, so tests import ``<PACK>.nodes.<module>``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACK = "comfyui_trajectorycrafter_pack"


def load_pack():
    """Import the repo root as package :data:`PACK` (once) and return it."""
    if PACK in sys.modules:
        return sys.modules[PACK]
    spec = importlib.util.spec_from_file_location(
        PACK, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACK]
        raise
    return module


def node_module(name: str):
    """A node module, e.g. ``node_module("video_nodes")`` or ``node_module("bridge")``."""
    load_pack()
    return importlib.import_module(f"{PACK}.nodes.{name}")


def node_class(class_name: str):
    """The node class registered under ``class_name`` in ``NODE_CLASS_MAPPINGS``."""
    return load_pack().NODE_CLASS_MAPPINGS[class_name]


def run_node(class_name: str, **inputs):
    """Instantiate a node and call its ``FUNCTION`` like ComfyUI does; returns the result tuple.

    A V1 node may return a tuple or a ``{"result": tuple, "ui": ...}`` dict; both give the tuple.
    """
    cls = node_class(class_name)
    out = getattr(cls(), cls.FUNCTION)(**inputs)
    if isinstance(out, dict):
        out = out["result"]
    assert isinstance(out, tuple) and len(out) == len(cls.RETURN_TYPES), (class_name, type(out))
    return out


def widget_defaults(class_name: str) -> dict:
    """Default value of every widget input of a node (first option for combos)."""
    cls = node_class(class_name)
    values = {}
    for section in ("required", "optional"):
        for name, spec in cls.INPUT_TYPES().get(section, {}).items():
            kind = spec[0]
            options = spec[1] if len(spec) > 1 else {}
            if isinstance(kind, (list, tuple)):
                values[name] = options.get("default", kind[0] if kind else None)
            elif kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
                values[name] = options.get("default", {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind])
    return values
