"""Combo lists of model folders under models/trajectorycrafter/, each loader showing only its kind.

Which kind a folder holds, the official folder names and Hub repositories live in
:mod:`trajcrafter_core.model_folders`; other folders (e.g. one grouping several models) are
searched one level deeper.
"""

from __future__ import annotations

from typing import List

from trajcrafter_core.model_folders import FOLDER_NAMES, KINDS, kind_of

from . import bridge

__all__ = ["KINDS", "kind_of", "choices", "LORA_FOLDER", "NO_LORA", "lora_choices"]

#: ComfyUI's model folder for LoRA files (shared with every other model family's LoRAs)
LORA_FOLDER = "loras"
NO_LORA = "none"


def choices(kind: str) -> List[str]:
    """Combo values for a loader: the official folder name first, then every folder of ``kind``."""
    default = FOLDER_NAMES[kind]
    found = bridge.list_model_dirs(bridge.MODEL_FOLDER, lambda p: kind_of(p) == kind,
                                   descend=lambda p: kind_of(p) is None)
    return [default] + [f for f in found if f != default]


def lora_choices() -> List[str]:
    """Combo values for a LoRA input: ``"none"``, then the ``.safetensors`` files of ``models/loras``."""
    return [NO_LORA] + bridge.list_model_files(LORA_FOLDER, (".safetensors",))
