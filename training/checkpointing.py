"""Atomic, resumable training checkpoints and the official-layout transformer export.

Checkpoint folder layout (``<output.dir>/checkpoints``)::

    step-00000500/            accelerate state (model, optimizer, LR scheduler, registered
                              objects such as EMA, every process's RNG states) +
                              training_state.json (step, data position, config) written last
    latest                    text file naming the newest complete checkpoint

A checkpoint is first written to ``.tmp-step-...`` and renamed when complete, so a run killed
while saving leaves no half checkpoint that could be resumed from; stale temporary folders are
removed by the next run. ``training_state.json`` marks a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Dict, Optional

import torch

from trajcrafter_core.errors import TrajCrafterError

STATE_FILE = "training_state.json"
_STEP_RE = re.compile(r"^step-(\d+)$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class CheckpointManager:
    """Save, find and prune checkpoints under ``<root>/checkpoints``."""

    def __init__(self, root: str | Path, keep_last: int = 3):
        self.dir = Path(root) / "checkpoints"
        self.keep_last = keep_last

    # -- discovery -------------------------------------------------------------------------
    def complete_checkpoints(self) -> Dict[int, Path]:
        out = {}
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                m = _STEP_RE.match(p.name)
                if m and p.is_dir() and (p / STATE_FILE).is_file():
                    out[int(m.group(1))] = p
        return dict(sorted(out.items()))

    def latest(self) -> Optional[Path]:
        """Newest complete checkpoint (the ``latest`` pointer, else the highest step)."""
        pointer = self.dir / "latest"
        if pointer.is_file():
            candidate = self.dir / pointer.read_text(encoding="utf-8").strip()
            if (candidate / STATE_FILE).is_file():
                return candidate
        found = self.complete_checkpoints()
        return found[max(found)] if found else None

    def remove_stale_temporaries(self) -> int:
        """Delete ``.tmp-*`` folders left by a run killed while saving; returns how many."""
        n = 0
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                if p.name.startswith(".tmp-"):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                    n += 1
        return n

    # -- saving ----------------------------------------------------------------------------
    def save(self, accelerator, step: int, state: Dict) -> Path:
        """Save accelerate's state plus ``state`` (JSON) as checkpoint ``step``, atomically.

        Every process must call this (accelerate writes per-process RNG and, with DeepSpeed or
        FSDP, sharded states); the main process finalises, updates ``latest`` and prunes.
        Needs a file system shared by all processes, as accelerate's ``save_state`` does.
        """
        final = self.dir / f"step-{step:08d}"
        tmp = self.dir / f".tmp-step-{step:08d}"
        if accelerator.is_main_process:
            self.dir.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        try:
            accelerator.save_state(str(tmp))
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                write_text_atomic(tmp / STATE_FILE, json.dumps(dict(state, step=step), indent=1, sort_keys=True))
                _fsync_dir(tmp)
        except BaseException:
            if accelerator.is_main_process:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        if accelerator.is_main_process:
            if final.exists():  # re-saving the same step (e.g. final save right after a periodic one)
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(self.dir)
            write_text_atomic(self.dir / "latest", final.name)
            self._prune()
        accelerator.wait_for_everyone()
        return final

    def _prune(self) -> None:
        found = self.complete_checkpoints()
        for step in list(found)[: max(0, len(found) - self.keep_last)]:
            shutil.rmtree(found[step], ignore_errors=True)

    # -- loading ---------------------------------------------------------------------------
    @staticmethod
    def read_state(checkpoint: Path) -> Dict:
        path = Path(checkpoint) / STATE_FILE
        if not path.is_file():
            raise TrajCrafterError(f"{checkpoint} is not a complete checkpoint ({STATE_FILE} missing).")
        return json.loads(path.read_text(encoding="utf-8"))


LORA_ADAPTER = "default"  # peft's name of the one adapter training adds


def _lora_layers(model: torch.nn.Module) -> Dict[str, float]:
    """Module name -> scaling ``alpha / r`` of every LoRA layer of ``model``."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # pragma: no cover - peft is in the training extra
        return {}
    return {name: float(module.scaling[LORA_ADAPTER]) for name, module in model.named_modules()
            if isinstance(module, LoraLayer) and LORA_ADAPTER in module.lora_A}


def _lora_merged_state_dict(model: torch.nn.Module,
                            overrides: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
    """State dict with every LoRA layer merged into its base weight (``W + (alpha/r)·B·A``, in
    float32) and the LoRA keys dropped. ``overrides``: parameter name -> value to use instead
    (the fp32 master copies of a DeepSpeed run)."""
    state = dict(model.state_dict())
    state.update(overrides or {})
    layers = _lora_layers(model)
    out = {}
    for key, value in state.items():
        if "lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    for name, scaling in layers.items():
        a = state[f"{name}.lora_A.{LORA_ADAPTER}.weight"].float()
        b = state[f"{name}.lora_B.{LORA_ADAPTER}.weight"].float()
        weight = out[f"{name}.weight"]
        out[f"{name}.weight"] = (weight.float() + scaling * (b @ a).to(weight.device)).to(weight.dtype)
    return out


def _replace_folder(tmp: Path, out_dir: Path) -> None:
    """Move the complete folder ``tmp`` to ``out_dir``, replacing an older one."""
    _fsync_dir(tmp)
    old = out_dir.with_name(f".old-{out_dir.name}")
    if out_dir.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old.exists():
        shutil.rmtree(old)


def _fresh_tmp(out_dir: Path) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def export_transformer(model: torch.nn.Module, out_dir: str | Path, dtype: Optional[torch.dtype] = None,
                       state_dict: Optional[Dict[str, torch.Tensor]] = None,
                       overrides: Optional[Dict[str, torch.Tensor]] = None) -> Path:
    """Write ``model`` in the official transformer layout (``config.json`` + safetensors).

    LoRA adapters are merged into the base weights, so the export loads with
    ``CrossTransformer3DModel.from_pretrained`` with no missing or unexpected keys.
    ``state_dict`` replaces the weights (e.g. FSDP's gathered state); ``overrides`` replaces
    some parameters by name (the fp32 master copies of a DeepSpeed run). Atomic: written to a
    temporary folder that replaces ``out_dir`` only when complete.
    """
    out_dir = Path(out_dir)
    weights = _lora_merged_state_dict(model, overrides) if state_dict is None else dict(state_dict)
    if dtype is not None:
        weights = {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}
    tmp = _fresh_tmp(out_dir)
    try:
        model.save_config(tmp)
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()},
                  str(tmp / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
        _replace_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def export_lora_adapter(model: torch.nn.Module, out_dir: str | Path, dtype: Optional[torch.dtype] = None,
                        overrides: Optional[Dict[str, torch.Tensor]] = None) -> Path:
    """Write the LoRA adapter alone as diffusers writes transformer LoRAs:
    ``out_dir/pytorch_lora_weights.safetensors`` with keys
    ``transformer.<module>.lora_A.weight`` / ``.lora_B.weight`` (PEFT naming under diffusers'
    ``transformer.`` prefix) and the PEFT ``LoraConfig`` (``r``, ``lora_alpha``,
    ``target_modules``, ...) in the safetensors metadata — what
    :func:`trajcrafter_core.lora.read_lora` and diffusers' loaders read. Atomic like
    :func:`export_transformer`."""
    from diffusers.loaders.lora_pipeline import CogVideoXLoraLoaderMixin
    from peft.utils import get_peft_model_state_dict

    config = getattr(model, "peft_config", {}).get(LORA_ADAPTER)
    if config is None:
        raise TrajCrafterError("the model has no LoRA adapter to export (lora.enabled is false).")
    state = dict(model.state_dict())
    state.update(overrides or {})
    layers = get_peft_model_state_dict(model, state_dict=state, adapter_name=LORA_ADAPTER)
    if dtype is not None:
        layers = {k: v.to(dtype) for k, v in layers.items()}
    layers = {k: v.detach().cpu().contiguous() for k, v in layers.items()}
    metadata = {k: v for k, v in config.to_dict().items()
                if k in ("r", "lora_alpha", "target_modules", "lora_dropout", "bias", "use_rslora", "use_dora",
                         "rank_pattern", "alpha_pattern", "init_lora_weights", "fan_in_fan_out")}
    out_dir = Path(out_dir)
    tmp = _fresh_tmp(out_dir)
    try:
        CogVideoXLoraLoaderMixin.save_lora_weights(str(tmp), transformer_lora_layers=layers,
                                                   transformer_lora_adapter_metadata=metadata)
        _replace_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
