"""Sampling: Load TrajectoryCrafter Model — Ref-DiT transformer + CogVideoX-Fun VAE, T5, tokenizer, scheduler."""

from __future__ import annotations

from trajcrafter_core.memory import MEMORY_PRESETS, PRESET_NAMES, preset_options
from trajcrafter_core.official import DTYPE_NAMES

from . import bridge
from .common import MODEL, require
from .declare import Bool, Choice, Float, NodeDef, Out
from .folders import LORA_FOLDER, NO_LORA, choices, lora_choices

MEMORY_MODES = {"full_gpu": "none", "model_offload": "model", "block_offload": "block"}
#: ``custom`` = the memory_mode and vae_tiling inputs; any other name is a preset that sets both.
CUSTOM_MEMORY = "custom"
MEMORY_PRESET_CHOICES = PRESET_NAMES + (CUSTOM_MEMORY,)
ATTENTION = ("sdpa", "flash", "_native_flash", "_native_efficient", "sage", "xformers")


class TrajectoryCrafterModel:
    """A loaded pipeline and where it runs.

    ``mode`` is the pipeline's offload mode. With ``"none"`` (full GPU) the weights wait on the
    offload device between runs and :meth:`onload` / :meth:`park` move them, so VRAM is free
    when no sampler runs; ``"model"`` and ``"block"`` stream weights to the GPU by themselves.
    """

    def __init__(self, pipe, mode: str, device, names):
        self.pipe, self.mode, self.device, self.names = pipe, mode, device, names

    def onload(self) -> None:
        if self.mode == "none" and self.pipe.device != self.device:
            bridge.make_room(self.pipe.weight_bytes(), self.device)
            self.pipe.place(self.device)

    def park(self) -> None:
        offload = bridge.offload_device()
        if self.mode == "none" and self.pipe.device != offload:
            self.pipe.place(offload)


def check_model_folders(transformer, base_model, download_missing):
    """Before the queue runs: both folders are complete (or will be downloaded)."""
    if download_missing:
        return True
    from trajcrafter_core import checkpoints
    from trajcrafter_core.errors import TrajCrafterError

    try:
        checkpoints.ensure_models(bridge.model_path(base_model), bridge.model_path(transformer))
    except TrajCrafterError as exc:
        return f"{exc}\n(Or turn on download_missing.)"
    return True


def load_model(transformer, base_model, precision, memory_preset, memory_mode, vae_tiling, attention,
               download_missing, lora=NO_LORA, lora_strength=1.0):
    require("TrajectoryCrafter model")
    if download_missing:
        require("Hub downloads")
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline
    from trajcrafter_core.specs import ModelSpec

    if memory_preset == CUSTOM_MEMORY:
        if memory_mode not in MEMORY_MODES:
            raise TrajCrafterError(f"memory_mode must be one of {list(MEMORY_MODES)}, got {memory_mode!r}.")
        memory = dict(offload=MEMORY_MODES[memory_mode], vae_tiling=bool(vae_tiling))
    else:
        memory = dict(memory=memory_preset)
    mode = memory.get("offload") or preset_options(memory_preset)["offload"]
    device = bridge.torch_device()
    spec = ModelSpec(
        base_dir=bridge.model_path(base_model), transformer_dir=bridge.model_path(transformer),
        dtype=precision, device=str(bridge.offload_device() if mode == "none" else device),
        attention=attention, download=bool(download_missing), **memory,
        lora=bridge.model_file_path(lora, LORA_FOLDER) if lora and lora != NO_LORA else None,
        lora_strength=lora_strength,
    )
    bar = bridge.Progress(1)
    pipe = TrajectoryCrafterPipeline.from_spec(spec, progress=bar.callback, cancel=bridge.cancel_requested)
    return (TrajectoryCrafterModel(pipe, mode, device, (transformer, base_model)),)


LOAD_MODEL = NodeDef(
    id="TrajCrafterLoadModel",
    display_name="Load TrajectoryCrafter Model",
    category="sampling",
    description=(
        "Loads TrajectoryCrafter: the Ref-DiT transformer (folder 'TrajectoryCrafter', from "
        "TrajectoryCrafter/TrajectoryCrafter) and the VAE, T5 text encoder, tokenizer and scheduler of "
        "CogVideoX-Fun (folder 'CogVideoX-Fun-V1.1-5b-InP', from alibaba-pai; its own transformer is not needed). "
        "Folders live in ComfyUI's models/trajectorycrafter/ or any 'trajectorycrafter' path of "
        "extra_model_paths.yaml. download_missing fetches missing files from the Hugging Face Hub (configs and "
        "safetensors only; a failed download leaves nothing behind). memory_preset picks the memory options for a "
        "card size (" + "; ".join(f"{name}: {preset.summary}" for name, preset in MEMORY_PRESETS.items())
        + "); 'custom' uses memory_mode (full_gpu: all weights on the GPU; model_offload: each part on the GPU only "
        "while it runs; block_offload: transformer and T5 streamed block by block) and vae_tiling. Weights are only "
        "ever read from safetensors."
    ),
    inputs=(
        Choice("transformer", lambda: choices("transformer"), None, "Folder of the TrajectoryCrafter transformer "
               "(config.json + safetensors, or crosstransformer/ inside)."),
        Choice("base_model", lambda: choices("base"), None, "CogVideoX-Fun-V1.1-5b-InP folder: vae/, text_encoder/, "
               "tokenizer/, scheduler/."),
        Choice("precision", list(DTYPE_NAMES), "bf16", "Weights and compute dtype (official: bf16)."),
        Choice("memory_preset", list(MEMORY_PRESET_CHOICES), "24 GB", "Memory options for a card size: 'fastest' (all "
               "on the GPU, 40 GB+), '24 GB' (model offload), '16 GB' (block offload + VAE tiling); 'custom': use "
               "memory_mode and vae_tiling below."),
        Choice("memory_mode", list(MEMORY_MODES), "model_offload", "memory_preset = custom: full_gpu: all weights on "
               "the GPU while sampling; model_offload: one part at a time; block_offload: transformer blocks streamed "
               "(smallest VRAM)."),
        Bool("vae_tiling", False, "memory_preset = custom: decode the VAE in tiles: less VRAM, tiny seams possible "
             "(off = official)."),
        Choice("attention", list(ATTENTION), "sdpa", "Attention kernel: sdpa (PyTorch, official) or an installed "
               "diffusers backend (flash, sage, xformers ...)."),
        Bool("download_missing", False, "Download missing files from the Hugging Face Hub into the first "
             "trajectorycrafter model folder."),
        Choice("lora", lora_choices, NO_LORA, "A TrajectoryCrafter transformer LoRA from models/loras (diffusers/PEFT "
               "safetensors, e.g. the pytorch_lora_weights.safetensors a training run exports), merged into the "
               "weights.", optional=True),
        Float("lora_strength", 1.0, -4.0, 4.0, "How much of the LoRA to merge (0 = none, 1 = as trained).", step=0.05,
              optional=True),
    ),
    outputs=(Out("model", MODEL, "The pipeline, for the TrajectoryCrafter Sampler."),),
    run=load_model,
    aliases=("trajectorycrafter", "cogvideox", "checkpoint", "model loader", "lora"),
    validate=check_model_folders,
)

NODES = (LOAD_MODEL,)
