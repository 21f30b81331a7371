"""The model folders the pack reads: official names, Hub repositories, and how to recognise one.

Torch-free. Every front-end names folders and repositories from here. Folders keep their
official (Hub repository) names; a folder is recognised by its files (:func:`kind_of`):

- ``transformer``: ``config.json`` (or ``crosstransformer/config.json``) of a diffusers
  ``*Transformer*`` class — TrajectoryCrafter/TrajectoryCrafter;
- ``base``: ``vae/`` + ``text_encoder/`` — alibaba-pai/CogVideoX-Fun-V1.1-5b-InP;
- ``depthcrafter_unet``: ``config.json`` of a ``*UNet*`` class — tencent/DepthCrafter;
- ``svd``: ``vae/`` + ``image_encoder/`` — stabilityai/stable-video-diffusion-img2vid(-xt);
- ``depth_anything``: transformers ``config.json`` with ``model_type`` ``depth_anything``.
"""

from __future__ import annotations

import json
import os
from typing import Optional

__all__ = ["KINDS", "REPO_IDS", "FOLDER_NAMES", "MODEL_FOLDER", "kind_of"]

KINDS = ("transformer", "base", "depthcrafter_unet", "svd", "depth_anything")

#: Official Hub repository of each kind.
REPO_IDS = {
    "transformer": "TrajectoryCrafter/TrajectoryCrafter",
    "base": "alibaba-pai/CogVideoX-Fun-V1.1-5b-InP",
    "depthcrafter_unet": "tencent/DepthCrafter",
    "svd": "stabilityai/stable-video-diffusion-img2vid-xt",
    "depth_anything": "depth-anything/Depth-Anything-V2-Small-hf",
}

#: Folder name of each kind (the repository's name), inside :data:`MODEL_FOLDER`.
FOLDER_NAMES = {kind: repo.split("/")[1] for kind, repo in REPO_IDS.items()}

#: ComfyUI's ``models/<name>/`` folder of the pack (also the ``extra_model_paths.yaml`` key).
MODEL_FOLDER = "trajectorycrafter"


def _config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def kind_of(folder) -> Optional[str]:
    """The kind of model ``folder`` holds (see the module docstring), or None."""
    folder = os.fspath(folder)
    join = os.path.join
    if not os.path.isdir(folder):
        return None
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
