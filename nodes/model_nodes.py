"""Load TrajectoryCrafter Model: Ref-DiT transformer + CogVideoX-Fun VAE, T5, tokenizer, scheduler."""

from __future__ import annotations

from . import bridge
from .common import CATEGORY, MODEL, require
from .folders import LORA_FOLDER, NO_LORA, choices, lora_choices

PRECISIONS = ("bf16", "fp16", "fp32")
MEMORY_MODES = {"full_gpu": "none", "model_offload": "model", "block_offload": "block"}
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
        "behind). memory_mode: full_gpu (fastest, ~30 GB), model_offload (each part on the GPU only "
        "while it runs), block_offload (smallest cards; slowest). Weights are only ever read from "
        "safetensors."
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
            },
            "optional": {
                "lora": (lora_choices(), {"default": NO_LORA, "tooltip": "A TrajectoryCrafter transformer LoRA from models/loras (diffusers/PEFT safetensors, e.g. the pytorch_lora_weights.safetensors a training run exports), merged into the weights."}),
                "lora_strength": ("FLOAT", {"default": 1.0, "min": -4.0, "max": 4.0, "step": 0.05, "tooltip": "How much of the LoRA to merge (0 = none, 1 = as trained)."}),
            },
        }

    def load(self, transformer, base_model, precision, memory_mode, vae_tiling, attention, download_missing,
             lora=NO_LORA, lora_strength=1.0):
        require("TrajectoryCrafter model")
        if download_missing:
            require("Hub downloads")
        from trajcrafter_core.errors import TrajCrafterError
        from trajcrafter_core.pipeline import TrajectoryCrafterPipeline
        from trajcrafter_core.specs import ModelSpec

        if memory_mode not in MEMORY_MODES:
            raise TrajCrafterError(f"memory_mode must be one of {list(MEMORY_MODES)}, got {memory_mode!r}.")
        mode = MEMORY_MODES[memory_mode]
        device = bridge.torch_device()
        spec = ModelSpec(
            base_dir=bridge.model_path(base_model), transformer_dir=bridge.model_path(transformer),
            dtype=precision, device=str(bridge.offload_device() if mode == "none" else device), offload=mode,
            attention=attention, vae_tiling=bool(vae_tiling), download=bool(download_missing),
            lora=bridge.model_file_path(lora, LORA_FOLDER) if lora and lora != NO_LORA else None,
            lora_strength=lora_strength,
        )
        bar = bridge.Progress(1)
        pipe = TrajectoryCrafterPipeline.from_spec(spec, progress=bar.callback, cancel=bridge.cancel_requested)
        return (TrajectoryCrafterModel(pipe, mode, device, (transformer, base_model)),)


NODE_CLASS_MAPPINGS = {"TrajCrafterLoadModel": LoadTrajectoryCrafterModel}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterLoadModel": "Load TrajectoryCrafter Model"}
