"""What each folder under models/trajectorycrafter/ holds, so every loader lists only its own kind.

Folders keep their official (Hub repository) names; a folder is recognised by its files:

- ``transformer``: ``config.json`` (or ``crosstransformer/config.json``) of a diffusers
  ``*Transformer*`` class — TrajectoryCrafter/TrajectoryCrafter;
- ``base``: ``vae/config.json`` + ``text_encoder/`` — alibaba-pai/CogVideoX-Fun-V1.1-5b-InP;
- ``depthcrafter_unet``: ``config.json`` of a ``*UNet*`` class — tencent/DepthCrafter;
- ``svd``: ``vae/`` + ``image_encoder/`` — stabilityai/stable-video-diffusion-img2vid(-xt);
- ``depth_anything``: transformers ``config.json`` with ``model_type`` ``depth_anything``.

Other folders (e.g. a folder grouping several models) are searched one level deeper.
"""

from __future__ import annotations

import json
import os
from typing import List, Optional

from . import bridge

KINDS = ("transformer", "base", "depthcrafter_unet", "svd", "depth_anything")


def _config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def kind_of(folder: str) -> Optional[str]:
    """The kind of model a folder holds (see the module docstring), or None."""
    join = os.path.join
    if os.path.isdir(join(folder, "vae")):
        if os.path.isdir(join(folder, "text_encoder")):
            return "base"
        if os.path.isdir(join(folder, "image_encoder")):
            return "svd"
    if os.path.isfile(join(folder, "crosstransformer", "config.json")):
        return "transformer"
    cfg = _config(join(folder, "config.json"))
    if not cfg:
        return None
    if cfg.get("model_type") == "depth_anything":
        return "depth_anything"
    name = str(cfg.get("_class_name", ""))
    if "UNet" in name:
        return "depthcrafter_unet"
    if "Transformer" in name:
        return "transformer"
    return None


def choices(kind: str, default: str) -> List[str]:
    """Combo values for a loader: the official folder name first, then every folder of ``kind``."""
    found = bridge.list_model_dirs(bridge.MODEL_FOLDER, lambda p: kind_of(p) == kind,
                                   descend=lambda p: kind_of(p) is None)
    return [default] + [f for f in found if f != default]
