"""Load TrajectoryCrafter Model: Ref-DiT transformer + CogVideoX-Fun VAE, T5, tokenizer, scheduler."""

from __future__ import annotations

from trajcrafter_core.memory import MEMORY_PRESETS, PRESET_NAMES, preset_options

from . import bridge
from .common import CATEGORY, MODEL, require
from .folders import choices

PRECISIONS = ("bf16", "fp16", "fp32")
MEMORY_MODES = {"full_gpu": "none", "model_offload": "model", "block_offload": "block"}
#: ``custom`` = the memory_mode and vae_tiling inputs; any other name is a preset that sets both.
CUSTOM_MEMORY = "custom"
MEMORY_PRESET_CHOICES = (CUSTOM_MEMORY,) + PRESET_NAMES
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


class LoadTrajectoryCrafterModel:
    """Load the TrajectoryCrafter pipeline from models/trajectorycrafter/ (or the Hub)."""

    DESCRIPTION = (
        "Loads TrajectoryCrafter: the Ref-DiT transformer (folder 'TrajectoryCrafter', from "
        "TrajectoryCrafter/TrajectoryCrafter) and the VAE, T5 text encoder, tokenizer and scheduler "
        "of CogVideoX-Fun (folder 'CogVideoX-Fun-V1.1-5b-InP', from alibaba-pai; its own "
        "transformer is not needed). Folders live in ComfyUI's models/trajectorycrafter/ or any "
        "'trajectorycrafter' path of extra_model_paths.yaml. download_missing fetches missing files "
        "from the Hugging Face Hub (configs and safetensors only; a failed download leaves nothing "
        "behind). memory_preset picks the memory options for a card size ("
        + "; ".join(f"{name}: {preset.summary}" for name, preset in MEMORY_PRESETS.items())
        + "); 'custom' uses memory_mode (full_gpu: all weights on the GPU; model_offload: each part "
        "on the GPU only while it runs; block_offload: transformer and T5 streamed block by block) "
        "and vae_tiling. Weights are only ever read from safetensors."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The pipeline, for the TrajectoryCrafter Sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "transformer": (choices("transformer"), {"tooltip": "Folder of the TrajectoryCrafter transformer (config.json + safetensors, or crosstransformer/ inside)."}),
                "base_model": (choices("base"), {"tooltip": "CogVideoX-Fun-V1.1-5b-InP folder: vae/, text_encoder/, tokenizer/, scheduler/."}),
                "precision": (list(PRECISIONS), {"default": "bf16", "tooltip": "Weights and compute dtype (official: bf16)."}),
                "memory_mode": (list(MEMORY_MODES), {"default": "model_offload", "tooltip": "full_gpu: all weights on the GPU while sampling; model_offload: one part at a time; block_offload: transformer blocks streamed (smallest VRAM)."}),
                "vae_tiling": ("BOOLEAN", {"default": False, "tooltip": "Decode the VAE in tiles: less VRAM, tiny seams possible (off = official)."}),
                "attention": (list(ATTENTION), {"default": "sdpa", "tooltip": "Attention kernel: sdpa (PyTorch, official) or an installed diffusers backend (flash, sage, xformers ...)."}),
                "download_missing": ("BOOLEAN", {"default": False, "tooltip": "Download missing files from the Hugging Face Hub into the first trajectorycrafter model folder."}),
                "memory_preset": (list(MEMORY_PRESET_CHOICES), {"default": CUSTOM_MEMORY, "tooltip": "Memory options for a card size: 'fastest' (all on the GPU, 40 GB+), '24 GB' (model offload), '16 GB' (block offload + VAE tiling); sets memory_mode and vae_tiling, which are then not used. 'custom': use memory_mode and vae_tiling."}),
            }
        }

    def load(self, transformer, base_model, precision, memory_mode, vae_tiling, attention, download_missing,
             memory_preset=CUSTOM_MEMORY):
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
        )
        bar = bridge.Progress(1)
        pipe = TrajectoryCrafterPipeline.from_spec(spec, progress=bar.callback, cancel=bridge.cancel_requested)
        return (TrajectoryCrafterModel(pipe, mode, device, (transformer, base_model)),)


NODE_CLASS_MAPPINGS = {"TrajCrafterLoadModel": LoadTrajectoryCrafterModel}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterLoadModel": "Load TrajectoryCrafter Model"}
