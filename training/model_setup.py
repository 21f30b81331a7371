"""The transformer for training: loading, which parameters train, LoRA, skipping the reference.

- Stage 1 trains the DiT blocks and the patch embedding with the reference stream skipped: its
  step inputs carry ``cross_latents=None`` (:func:`training.inputs.build_step_inputs`), for which
  the transformer runs neither ``ref_patch_embed`` nor the ``perceiver_cross_attention`` layers
  (the output equals a model without them); those layers are frozen and saved unchanged.
- Stage 2 trains only ``perceiver_cross_attention.*`` and ``ref_patch_embed.*``.

Trainable parameters are chosen by name prefix (:func:`select_trainable`); a prefix that matches
nothing is an error. With LoRA, adapters are added to the ``nn.Linear`` layers under those
prefixes whose leaf name is a LoRA target, and only the adapters train.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Sequence

import torch
from torch import nn

from trajcrafter_core.errors import TrajCrafterError


def load_transformer_for_training(transformer_dir: str | Path, stage: int):
    """Load ``CrossTransformer3DModel`` (float32 master weights) from an official-layout folder.

    A folder whose config has ``is_train_cross: false`` (e.g. a CogVideoX-Fun-InP transformer
    converted to this layout) gets freshly initialised reference layers for stage 1, with
    ``to_out`` zeroed so that adding them leaves the base model's output unchanged. Stage 2
    needs a folder that already has them (normally stage 1's export).
    """
    from trajcrafter_core.checkpoints import resolve_transformer_dir
    from trajcrafter_core.models import CrossTransformer3DModel

    folder = resolve_transformer_dir(transformer_dir)
    config = CrossTransformer3DModel.load_config(str(folder))
    if config.get("is_train_cross", False):
        return CrossTransformer3DModel.from_pretrained(str(folder), torch_dtype=torch.float32)
    if stage == 2:
        raise TrajCrafterError(
            f"stage 2 trains the reference cross-attention, but {folder}/config.json has is_train_cross: false; "
            f"start stage 2 from a stage-1 export (or an official TrajectoryCrafter checkpoint)."
        )
    base = CrossTransformer3DModel.from_pretrained(str(folder), torch_dtype=torch.float32)
    config = {k: v for k, v in base.config.items() if not k.startswith("_")}  # drop _use_default_values
    config["is_train_cross"] = True
    model = CrossTransformer3DModel.from_config(config)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    fresh = ("ref_patch_embed.", "perceiver_cross_attention.")
    if unexpected or any(not k.startswith(fresh) for k in missing):
        raise TrajCrafterError(f"cannot add reference layers to {folder}: unexpected {unexpected[:3]}, missing {missing[:3]}.")
    with torch.no_grad():
        for layer in model.perceiver_cross_attention:
            layer.to_out.weight.zero_()
    return model


def select_trainable(model: nn.Module, prefixes: Sequence[str]) -> List[str]:
    """Freeze every parameter except those whose name starts with one of ``prefixes``.

    Returns the trainable names; raises if a prefix matches no parameter (likely a typo).
    """
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in names):
            raise TrajCrafterError(
                f"train.trainable prefix {prefix!r} matches no parameter of the transformer "
                f"(top-level modules: {sorted({n.split('.')[0] for n in names})})."
            )
    trainable = []
    for name, param in model.named_parameters():
        on = any(name.startswith(p) for p in prefixes)
        param.requires_grad_(on)
        if on:
            trainable.append(name)
    return trainable


def add_lora(model: nn.Module, prefixes: Sequence[str], targets: Sequence[str], rank: int, alpha: float,
             dropout: float) -> List[str]:
    """Add LoRA adapters (peft) to Linear layers under ``prefixes`` named ``targets``; only the
    adapters train. Returns the adapted module names."""
    from peft import LoraConfig, inject_adapter_in_model

    wanted = [n for n, m in model.named_modules()
              if isinstance(m, nn.Linear) and any(n.startswith(p) for p in prefixes)
              and any(n == t or n.endswith("." + t) for t in targets)]
    if not wanted:
        raise TrajCrafterError(
            f"lora.target_modules {list(targets)} match no Linear layer under {list(prefixes)}; "
            f"use leaf names such as to_q, to_k, to_v, to_out.0 (blocks) or to_q, to_kv, to_out (reference)."
        )
    pattern = "^(" + "|".join(re.escape(n) for n in wanted) + ")$"
    for p in model.parameters():
        p.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern), model)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return wanted


def trainable_parameters(model: nn.Module) -> Dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}

