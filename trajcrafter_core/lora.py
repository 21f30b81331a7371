"""LoRA adapters for the TrajectoryCrafter transformer: read one, merge it into the weights.

Formats read (safetensors only, never pickles):

- diffusers' transformer LoRA file — what ``training`` exports: ``pytorch_lora_weights.safetensors``
  with keys ``transformer.<module>.lora_A.weight`` / ``.lora_B.weight`` and the PEFT
  ``LoraConfig`` (``r``, ``lora_alpha``, ``rank_pattern``, ``alpha_pattern``, ``use_rslora``) in
  its metadata (read with diffusers' own ``lora_state_dict``);
- a PEFT adapter folder: ``adapter_model.safetensors`` (keys ``base_model.model.<module>...``) +
  ``adapter_config.json``;
- the older diffusers naming ``.lora.down.weight`` / ``.lora.up.weight`` with optional
  ``.alpha`` entries.

``<module>`` is a Linear layer's name in :class:`~trajcrafter_core.models.CrossTransformer3DModel`
(e.g. ``transformer_blocks.0.attn1.to_q``, ``perceiver_cross_attention.3.to_kv``). Without an
alpha the scale is 1 (alpha = rank), as in PEFT and diffusers.

:func:`apply_lora` merges: ``W ← W + strength · scale · B·A`` per adapted layer, in float32,
before fp8 storage or offload are set up — the sampler then runs at full speed with no adapter
layers, whatever the placement; another strength means loading the model again.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

from .errors import MissingFilesError, TrajCrafterError

__all__ = ["LORA_WEIGHT_NAME", "LoraLayer", "LoraAdapter", "lora_file", "read_lora", "apply_lora"]

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' name
PEFT_WEIGHT_NAME = "adapter_model.safetensors"
PEFT_CONFIG_NAME = "adapter_config.json"
_PREFIXES = ("transformer.", "base_model.model.")
_SUFFIXES = {"lora_A.weight": "down", "lora_B.weight": "up", "lora.down.weight": "down", "lora.up.weight": "up",
             "alpha": "alpha"}


@dataclass
class LoraLayer:
    """One adapted Linear layer: ``down`` (A) ``[r, in]``, ``up`` (B) ``[out, r]``, ``scale``."""

    down: torch.Tensor
    up: torch.Tensor
    scale: float

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])


@dataclass
class LoraAdapter:
    """An adapter read from ``path``: module name -> :class:`LoraLayer`."""

    path: str
    layers: Dict[str, LoraLayer] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return max(layer.rank for layer in self.layers.values())

    def num_parameters(self) -> int:
        return sum(layer.down.numel() + layer.up.numel() for layer in self.layers.values())


def lora_file(path: Union[str, os.PathLike]) -> Path:
    """The safetensors file of an adapter given as that file or its folder; raises if absent."""
    p = Path(os.fspath(path)).expanduser()
    if p.is_dir():
        for name in (LORA_WEIGHT_NAME, PEFT_WEIGHT_NAME):
            if (p / name).is_file():
                return p / name
        found = sorted(p.glob("*.safetensors"))
        if len(found) == 1:
            return found[0]
        raise MissingFilesError(f"LoRA folder {p} holds no {LORA_WEIGHT_NAME} or {PEFT_WEIGHT_NAME}"
                                f"{' (and several other .safetensors files)' if found else ''}; give the file itself.")
    if not p.is_file():
        raise MissingFilesError(f"LoRA {p}: no such file or folder.")
    if p.suffix != ".safetensors":
        raise TrajCrafterError(f"LoRA {p}: give a .safetensors file (pickled weights are never loaded).")
    return p


def _config(file: Path, metadata: Optional[dict]) -> dict:
    """``r``/``lora_alpha``/patterns/``use_rslora`` from the file's metadata or a PEFT config."""
    if metadata:
        return {k.split(".", 1)[1] if k.startswith("transformer.") else k: v for k, v in metadata.items()}
    peft = file.parent / PEFT_CONFIG_NAME
    if peft.is_file():
        try:
            return json.loads(peft.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise TrajCrafterError(f"LoRA {peft} is not valid JSON ({exc}).") from None
    return {}


def _pattern_value(patterns: dict, name: str):
    """PEFT's rank/alpha pattern lookup: a key matches a module name that ends with it."""
    for key, value in (patterns or {}).items():
        if re.fullmatch(rf"(.*\.)?{key}", name):
            return value
    return None


def _split_key(key: str) -> Tuple[str, str]:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    for suffix, role in _SUFFIXES.items():
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1], role
    return key, ""


def read_lora(path: Union[str, os.PathLike]) -> LoraAdapter:
    """Read an adapter (formats in the module docstring); raises :class:`TrajCrafterError`
    naming the file for anything it cannot use."""
    from diffusers.loaders.lora_pipeline import CogVideoXLoraLoaderMixin

    file = lora_file(path)
    try:
        state, metadata = CogVideoXLoraLoaderMixin.lora_state_dict(
            str(file.parent), weight_name=file.name, use_safetensors=True, local_files_only=True,
            return_lora_metadata=True)
    except Exception as exc:  # safetensors / diffusers raise their own types for a damaged file
        raise TrajCrafterError(f"LoRA {file} cannot be read ({type(exc).__name__}: {exc}).") from None
    config = _config(file, metadata)
    parts: Dict[str, Dict[str, torch.Tensor]] = {}
    unknown = []
    for key, value in state.items():
        name, role = _split_key(key)
        if not role:
            unknown.append(key)
            continue
        parts.setdefault(name, {})[role] = value
    if unknown or not parts:
        raise TrajCrafterError(
            f"LoRA {file}: {'keys such as ' + repr(unknown[0]) if unknown else 'no LoRA weights'} are not LoRA weights "
            f"in diffusers/PEFT naming (<module>.lora_A.weight / .lora_B.weight); it is not a TrajectoryCrafter "
            f"transformer LoRA.")
    adapter = LoraAdapter(str(file))
    for name, p in sorted(parts.items()):
        if "down" not in p or "up" not in p:
            raise TrajCrafterError(f"LoRA {file}: layer {name} has only one of its two matrices (A/down, B/up).")
        down, up = p["down"], p["up"]
        if down.ndim != 2 or up.ndim != 2 or down.shape[0] != up.shape[1]:
            raise TrajCrafterError(f"LoRA {file}: layer {name} has A {list(down.shape)} and B {list(up.shape)}, "
                                   f"which do not form a rank-r update.")
        rank = int(down.shape[0])
        alpha = p["alpha"].item() if "alpha" in p else _pattern_value(config.get("alpha_pattern"), name)
        if alpha is None:
            alpha = config.get("lora_alpha", rank)
        r = _pattern_value(config.get("rank_pattern"), name) or config.get("r", rank)
        if int(r) != rank:
            raise TrajCrafterError(f"LoRA {file}: layer {name} has rank {rank} but its config says r = {r}.")
        scale = float(alpha) / (math.sqrt(rank) if config.get("use_rslora") else rank)
        adapter.layers[name] = LoraLayer(down.float(), up.float(), scale)
    return adapter


@torch.no_grad()
def apply_lora(transformer: torch.nn.Module, adapter: LoraAdapter, strength: float = 1.0) -> int:
    """Merge ``adapter`` into ``transformer``'s weights at ``strength`` (module docstring);
    returns the number of layers changed. All layers are checked before any weight changes."""
    strength = float(strength)
    if not math.isfinite(strength):
        raise TrajCrafterError(f"LoRA strength must be a finite number, got {strength!r}.")
    modules = dict(transformer.named_modules())
    absent = [n for n in adapter.layers if not isinstance(modules.get(n), torch.nn.Linear)]
    if absent:
        raise TrajCrafterError(
            f"LoRA {adapter.path}: {len(absent)} of its {len(adapter.layers)} layers are not Linear layers of this "
            f"transformer (e.g. {absent[0]!r}); it was trained for another model.")
    for name, layer in adapter.layers.items():
        weight = modules[name].weight
        if tuple(weight.shape) != (layer.up.shape[0], layer.down.shape[1]):
            raise TrajCrafterError(
                f"LoRA {adapter.path}: layer {name} updates a {layer.up.shape[0]}x{layer.down.shape[1]} weight but "
                f"this transformer's is {weight.shape[0]}x{weight.shape[1]}; it was trained for another model size.")
    if strength == 0.0:
        return 0
    for name, layer in adapter.layers.items():
        weight = modules[name].weight
        delta = (layer.up @ layer.down).to(weight.device) * (strength * layer.scale)
        weight.copy_((weight.float() + delta).to(weight.dtype))
    return len(adapter.layers)
