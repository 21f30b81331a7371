"""Checks a diffusers model folder (config.json + safetensors, single file or sharded) against the
model class *before* loading, so a wrong or incomplete checkpoint fails with a message naming
the config key, file or state-dict key and both shapes — never silently re-initialised weights.

Only safetensors headers are read (no tensor data); the expected shapes come from the model
built on the ``meta`` device (no memory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ..errors import MissingFilesError, TrajCrafterError

__all__ = ["REQUIRED_CONFIG_KEYS", "CROSS_ATTENTION_CONFIG_KEYS", "check_checkpoint_folder", "checkpoint_shapes"]

#: Keys that define the architecture; the class defaults are not those of the official model.
#: (``is_train_cross`` may be absent, as in CogVideoX-Fun base configs: it then means false, and
#: weights that do have reference layers are caught by the key comparison.)
REQUIRED_CONFIG_KEYS = (
    "num_attention_heads",
    "attention_head_dim",
    "in_channels",
    "out_channels",
    "num_layers",
    "text_embed_dim",
    "time_embed_dim",
    "patch_size",
    "use_rotary_positional_embeddings",
)
#: Also required when ``is_train_cross`` is true.
CROSS_ATTENTION_CONFIG_KEYS = (
    "cross_attn_in_channels",
    "cross_attn_interval",
    "cross_attn_dim_head",
    "cross_attn_num_heads",
)

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
INDEX_FILE = "diffusion_pytorch_model.safetensors.index.json"


def _with_variant(name: str, variant: Optional[str]) -> str:
    if not variant:
        return name
    parts = name.split(".")
    return ".".join(parts[:-1] + [variant] + parts[-1:])


def checkpoint_shapes(folder: Path, variant: Optional[str] = None) -> Dict[str, Tuple[Tuple[int, ...], str]]:
    """``{state-dict key: (shape, file name)}`` from the safetensors headers in ``folder``."""
    from safetensors import safe_open

    folder = Path(folder)
    single = folder / _with_variant(WEIGHTS_FILE, variant)
    index = folder / _with_variant(INDEX_FILE, variant)
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError) as error:
            raise TrajCrafterError(f"{index} is not a valid safetensors index (needs 'weight_map'): {error}") from None
        names = sorted(set(weight_map.values()))
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise MissingFilesError(
                f"{index.name} lists weight shards that are not in {folder}: {', '.join(missing)}. "
                f"Download the complete transformer folder."
            )
        files = [folder / name for name in names]
    else:
        others = sorted(p.name for p in folder.glob("*.safetensors")) + sorted(p.name for p in folder.glob("*.bin"))
        hint = f" Found {', '.join(others)}." if others else ""
        raise MissingFilesError(
            f"no transformer weights in {folder}: expected {single.name} or {index.name} (sharded).{hint} "
            f"Pickle (.bin) checkpoints are not loaded; download the safetensors files."
        )
    shapes: Dict[str, Tuple[Tuple[int, ...], str]] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    shapes[key] = (tuple(handle.get_slice(key).get_shape()), path.name)
        except Exception as error:  # safetensors raises its own error types for corrupt headers
            raise TrajCrafterError(f"{path} is not a readable safetensors file ({error}); re-download it.") from None
    return shapes


def _read_config(folder: Path) -> dict:
    config_path = folder / "config.json"
    if not folder.is_dir():
        raise MissingFilesError(f"transformer folder {folder} does not exist; it must hold config.json and the weights.")
    if not config_path.is_file():
        raise MissingFilesError(f"{config_path} is missing; the transformer folder needs its config.json.")
    try:
        config = json.loads(config_path.read_text())
    except ValueError as error:
        raise TrajCrafterError(f"{config_path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise TrajCrafterError(f"{config_path} must hold a JSON object of model settings.")
    required = list(REQUIRED_CONFIG_KEYS)
    if config.get("is_train_cross"):
        required += CROSS_ATTENTION_CONFIG_KEYS
    missing = [key for key in required if key not in config]
    if missing:
        raise TrajCrafterError(
            f"{config_path} lacks the key(s) {', '.join(missing)} that define the transformer; use the "
            f"config.json that came with the weights."
        )
    return config


def check_checkpoint_folder(model_cls, folder: Path, variant: Optional[str] = None) -> None:
    """Raise :class:`TrajCrafterError` / :class:`MissingFilesError` unless ``folder`` holds a
    config.json with the architecture keys and weights whose keys and shapes match it exactly."""
    folder = Path(folder)
    config = _read_config(folder)
    try:
        with torch.device("meta"):
            model = model_cls.from_config(config)
    except TrajCrafterError:
        raise
    except Exception as error:
        raise TrajCrafterError(f"{folder / 'config.json'} does not describe a valid {model_cls.__name__}: {error}") from None
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    found = checkpoint_shapes(folder, variant)

    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} key(s) the config needs are not in the weights (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} key(s) in the weights are not in the model (e.g. {unexpected[:3]})")
        raise TrajCrafterError(
            f"{folder}: weights and config.json do not match: {'; '.join(parts)}. Check that config.json "
            f"belongs to these weights (e.g. is_train_cross, num_layers, cross_attn_interval)."
        )
    for key, shape in expected.items():
        if found[key][0] != shape:
            raise TrajCrafterError(
                f"{folder / found[key][1]}: weight '{key}' has shape {list(found[key][0])} but config.json "
                f"implies {list(shape)}; the config and weights belong to different models."
            )
