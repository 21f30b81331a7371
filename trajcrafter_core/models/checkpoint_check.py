"""Checks model weights against the model class *before* loading: :func:`check_state_dict` for
any module (shared by every loader in :mod:`trajcrafter_core.checkpoints`) and
:func:`check_checkpoint_folder` for a diffusers folder (config.json + safetensors, single file
or sharded), so a wrong or incomplete checkpoint fails with a message naming
the config key, file or state-dict key and both shapes — never silently re-initialised weights.

Only safetensors headers are read (no tensor data); the expected shapes come from the model
built on the ``meta`` device (no memory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..errors import MissingFilesError, TrajCrafterError

__all__ = [
    "REQUIRED_CONFIG_KEYS",
    "CROSS_ATTENTION_CONFIG_KEYS",
    "check_checkpoint_folder",
    "checkpoint_shapes",
    "check_state_dict",
    "strictly_loaded",
    "safetensors_shapes",
]

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


def checkpoint_shapes(folder: Path, variant: Optional[str] = None) -> Dict[str, Tuple[Tuple[int, ...], Path]]:
    """``{state-dict key: (shape, file)}`` from the safetensors headers of the diffusers weights
    (single file or shards named by the index) in ``folder``."""
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
    return safetensors_shapes(files)


def safetensors_shapes(files: Sequence[Path]) -> Dict[str, Tuple[Tuple[int, ...], Path]]:
    """``key → (shape, file)`` read from the safetensors headers (no tensor data is loaded)."""
    from safetensors import safe_open

    shapes: Dict[str, Tuple[Tuple[int, ...], Path]] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():
                    shapes[key] = (tuple(handle.get_slice(key).get_shape()), file)
        except Exception as exc:  # corrupt / truncated download
            raise TrajCrafterError(
                f"{file} is not a readable safetensors file ({exc}); the download is probably "
                f"incomplete: delete it and download it again.") from exc
    return shapes


def _tied_groups(model: torch.nn.Module) -> List[List[str]]:
    """Parameter/buffer names sharing one tensor (e.g. T5 ``shared`` = ``encoder.embed_tokens``)."""
    groups: Dict[int, List[str]] = {}
    for name, tensor in list(model.named_parameters(remove_duplicate=False)) + list(
            model.named_buffers(remove_duplicate=False)):
        groups.setdefault(id(tensor), []).append(name)
    result = list(groups.values())
    declared = getattr(model, "_tied_weights_keys", None) or {}
    if isinstance(declared, dict):  # transformers 5: {tied name: source name}
        for target, source in declared.items():
            for names in result:
                if source in names and target not in names:
                    names.append(target)
            result = [names for names in result if names != [target]]
    return result


def check_state_dict(model: torch.nn.Module, shapes: Dict[str, Tuple[Tuple[int, ...], Path]],
                     what: str, folder: Union[str, Path],
                     advice: str = "Use the official files for this folder, unchanged.") -> None:
    """Raise unless ``shapes`` (from the files) has every key ``model`` needs, with its shape.

    Tied tensors count as present when any of their names is. Extra keys are an error too (a
    file of another model). The message names the key, both shapes and the file; ``advice``
    ends the message about missing/unexpected keys.
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}
    groups = _tied_groups(model)
    persistent = set(expected)
    missing = []
    for names in groups:
        names = [n for n in names if n in persistent]
        if names and not any(n in shapes for n in names):
            missing.append(names[0])
    unexpected = sorted(k for k in shapes if k not in expected)
    mismatched = [
        f"'{k}' has shape {list(shapes[k][0])} in {shapes[k][1].name} but config.json implies {list(expected[k])}"
        for k in sorted(shapes) if k in expected and shapes[k][0] != expected[k]
    ]
    if mismatched:
        raise TrajCrafterError(
            f"{what} in {folder}: {len(mismatched)} tensor(s) have the wrong shape for its "
            f"config.json: " + "; ".join(mismatched[:5]) + (" ..." if len(mismatched) > 5 else "")
            + ". The weights and config.json come from different models: download both again.")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        raise TrajCrafterError(
            f"{what} in {folder}: the weights do not match its config.json ({'; '.join(parts)}). {advice}")


def strictly_loaded(loaded, what: str, folder: Union[str, Path]):
    """The model of ``cls.from_pretrained(..., output_loading_info=True)``, or an error naming the
    keys when the files and config.json did not match exactly.

    diffusers and transformers only *warn* about missing or unexpected keys and randomly
    initialise what is missing; their loading info (which applies their own key conversions)
    makes that a refusal, as :func:`check_state_dict` does for the loaders that read headers.
    """
    model, info = loaded
    problems = []
    for key, label in (("missing_keys", "missing keys"), ("unexpected_keys", "unexpected keys"),
                       ("mismatched_keys", "keys of another shape")):
        found = sorted(str(k) for k in (info.get(key) or []))
        if found:
            problems.append(f"{label} {found[:8]}{' ...' if len(found) > 8 else ''}")
    if problems:
        raise TrajCrafterError(
            f"{what} in {folder}: the weights do not match its config.json ({'; '.join(problems)}); they would "
            f"load as a randomly initialised network. Use the official files for this folder, unchanged "
            f"(weights and config.json together).")
    return model


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
    check_state_dict(
        model, checkpoint_shapes(folder, variant), model_cls.__name__, folder,
        advice="Check that config.json belongs to these weights (e.g. is_train_cross, num_layers, "
               "cross_attn_interval).",
    )
