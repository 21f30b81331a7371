"""Tiny random-init checkpoints in the official on-disk layouts (tests, demos, CI).

Nothing is downloaded: the VAE and the T5 encoder are built from tiny configs with random
weights, and the T5 tokenizer (a sentencepiece unigram model) is trained here on a few lines
of text. Each component is written exactly where the real checkpoints keep it, so every loader
and pipeline path runs on CPU in seconds:

``base_dir/`` (the ``alibaba-pai/CogVideoX-Fun-V1.1-5b-InP`` layout)
    ``model_index.json``, ``vae/`` (``config.json`` + ``diffusion_pytorch_model.safetensors``),
    ``text_encoder/`` (``config.json`` + ``model.safetensors``), ``tokenizer/`` (``spiece.model``
    + ``tokenizer_config.json`` + ``special_tokens_map.json``), ``scheduler/``
    (``scheduler_config.json`` with the real values).
``transformer_dir/`` (the ``TrajectoryCrafter/TrajectoryCrafter`` layout)
    ``config.json`` + safetensors, written by :func:`trajcrafter_core.models.tiny.save_tiny_transformer`.

Random init is never degenerate: parameters that a constructor initialises to a constant
(zero biases, zero-initialised projections) are re-drawn, so every input can change the output.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Dict, Iterable, Optional, Union

import torch

PathLike = Union[str, Path]

#: The scheduler config shipped in ``CogVideoX-Fun-V1.1-5b-InP/scheduler/`` (the CogVideoX-5b
#: values: zero-terminal-SNR scaled-linear betas, v-prediction, trailing spacing). Schedulers of
#: other classes ignore the keys they do not know (e.g. ``snr_shift_scale``), as in the official demo.
COGVIDEOX_FUN_SCHEDULER_CONFIG: Dict[str, object] = {
    "_class_name": "CogVideoXDDIMScheduler",
    "_diffusers_version": "0.31.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "snr_shift_scale": 1.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
    "trained_betas": None,
}

#: Tiny CogVideoX VAE: same block structure as the real one (4 levels → 8x spatial, 4x temporal
#: compression, 16 latent channels), with a handful of channels.
TINY_VAE_CONFIG: Dict[str, object] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["CogVideoXDownBlock3D"] * 4,
    "up_block_types": ["CogVideoXUpBlock3D"] * 4,
    "block_out_channels": [8, 8, 16, 16],
    "latent_channels": 16,
    "layers_per_block": 1,
    "act_fn": "silu",
    "norm_eps": 1e-6,
    "norm_num_groups": 4,
    "temporal_compression_ratio": 4,
    "sample_height": 480,
    "sample_width": 720,
    "scaling_factor": 0.7,
    "force_upcast": True,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}

#: Tiny T5 v1.1 encoder (gated-GELU feed-forward like t5-v1_1-xxl). ``vocab_size`` is set from the
#: tokenizer when written.
TINY_T5_CONFIG: Dict[str, object] = {
    "d_model": 32,
    "d_ff": 64,
    "d_kv": 8,
    "num_heads": 4,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 32,
    "layer_norm_epsilon": 1e-6,
    "dropout_rate": 0.0,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}

#: Text dimension of the tiny T5 (the tiny transformer's ``text_embed_dim`` must equal it).
TINY_TEXT_DIM = int(TINY_T5_CONFIG["d_model"])

_TOKENIZER_CORPUS = (
    "The video is of high quality, and the view is very clear. High quality, masterpiece, best "
    "quality, highres, ultra-detailed, fantastic.",
    "The video is not of a high quality, it has a low resolution. Watermark present in each "
    "frame. The background is solid. Strange body and strange trajectory. Distortion.",
    "a cat sitting on a red sofa in a bright living room",
    "a man walking a dog along the beach at sunset while waves roll in",
    "the camera orbits around an old tree in a green park with children playing",
    "a woman rides a bicycle through a busy city street full of cars and people",
    "snow falls over a quiet mountain village at night with warm lights in the windows",
    "two birds fly above a lake surrounded by tall pine trees and grey rocks",
    "a chef prepares fresh vegetables on a wooden table in a small kitchen",
    "a train crosses a bridge over a wide river under a cloudy sky",
)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def redraw_degenerate_parameters(module: torch.nn.Module, seed: int = 0, std: float = 0.02) -> int:
    """Re-draw every parameter whose values are all equal to one constant that is zero.

    Zero-initialised biases and output projections make some inputs invisible to a random
    model; re-drawing them (``N(0, std)``) lets tests see every input matter. Returns how many
    tensors were re-drawn.
    """
    gen = _generator(seed)
    count = 0
    with torch.no_grad():
        for param in module.parameters():
            if param.numel() and bool((param == 0).all()):
                noise = torch.randn(param.shape, generator=gen, dtype=torch.float32) * std
                param.copy_(noise.to(param.dtype))
                count += 1
    return count


# --------------------------------------------------------------------------------------------
# components
# --------------------------------------------------------------------------------------------


def build_tiny_vae(seed: int = 0, **overrides):
    """A random-init diffusers ``AutoencoderKLCogVideoX`` with :data:`TINY_VAE_CONFIG`."""
    from diffusers import AutoencoderKLCogVideoX

    config = {**TINY_VAE_CONFIG, **overrides}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKLCogVideoX(**config)
    redraw_degenerate_parameters(vae, seed=seed + 1)
    return vae.eval()


def save_tiny_vae(directory: PathLike, seed: int = 0, **overrides) -> Path:
    """Write a tiny VAE as ``config.json`` + ``diffusion_pytorch_model.safetensors``."""
    directory = Path(directory)
    build_tiny_vae(seed, **overrides).save_pretrained(directory, safe_serialization=True)
    return directory


def train_tiny_tokenizer(directory: PathLike, vocab_size: int = 200,
                         extra_text: Iterable[str] = ()) -> Path:
    """Train a sentencepiece unigram model locally and save it in the T5 ``tokenizer/`` layout.

    Ids follow T5: ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2, plus 100 ``<extra_id_*>`` tokens.
    The folder loads with ``transformers.T5Tokenizer`` / ``AutoTokenizer`` (v4 and v5).
    """
    import sentencepiece as spm

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = list(_TOKENIZER_CORPUS) + list(extra_text)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 8),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    (directory / "spiece.model").write_bytes(model.getvalue())
    special = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    extra_ids = [f"<extra_id_{i}>" for i in range(100)]
    (directory / "special_tokens_map.json").write_text(
        json.dumps({**special, "additional_special_tokens": extra_ids}, indent=2))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "T5Tokenizer",
        "extra_ids": 100,
        "additional_special_tokens": extra_ids,
        "model_max_length": 226,
        "legacy": True,
        "clean_up_tokenization_spaces": True,
        **special,
    }, indent=2))
    return directory


def tokenizer_vocab_size(tokenizer_dir: PathLike) -> int:
    """Number of ids the tokenizer in ``tokenizer_dir`` can produce (pieces + extra ids)."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(Path(tokenizer_dir) / "spiece.model"))
    return int(processor.get_piece_size()) + 100


def build_tiny_text_encoder(vocab_size: int, seed: int = 0, **overrides):
    """A random-init ``transformers.T5EncoderModel`` with :data:`TINY_T5_CONFIG`."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(**{**TINY_T5_CONFIG, "vocab_size": int(vocab_size), **overrides})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5EncoderModel(config)
    redraw_degenerate_parameters(model, seed=seed + 1)
    return model.eval()


def save_tiny_text_encoder(directory: PathLike, vocab_size: int, seed: int = 0, **overrides) -> Path:
    """Write a tiny T5 encoder as ``config.json`` + ``model.safetensors``."""
    directory = Path(directory)
    build_tiny_text_encoder(vocab_size, seed, **overrides).save_pretrained(
        directory, safe_serialization=True)
    return directory


def save_scheduler_config(directory: PathLike, **overrides) -> Path:
    """Write ``scheduler_config.json`` with the real CogVideoX-Fun values (plus ``overrides``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {**COGVIDEOX_FUN_SCHEDULER_CONFIG, **overrides}
    (directory / "scheduler_config.json").write_text(json.dumps(config, indent=2))
    return directory


def save_tiny_base_model(base_dir: PathLike, seed: int = 0) -> Path:
    """Write a complete tiny CogVideoX-Fun base folder (VAE, T5, tokenizer, scheduler).

    No ``transformer/`` folder: the pipeline never uses the CogVideoX-Fun transformer.
    """
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = train_tiny_tokenizer(base_dir / "tokenizer")
    save_tiny_text_encoder(base_dir / "text_encoder", tokenizer_vocab_size(tokenizer_dir), seed=seed)
    save_tiny_vae(base_dir / "vae", seed=seed + 10)
    save_scheduler_config(base_dir / "scheduler")
    (base_dir / "model_index.json").write_text(json.dumps({
        "_class_name": "CogVideoXPipeline",
        "_diffusers_version": "0.31.0",
        "scheduler": ["diffusers", "CogVideoXDDIMScheduler"],
        "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "T5Tokenizer"],
        "transformer": ["diffusers", "CogVideoXTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"],
    }, indent=2))
    return base_dir


def save_tiny_checkpoints(root: PathLike, seed: int = 0, subfolder: Optional[str] = None,
                          **transformer_kwargs) -> Dict[str, Path]:
    """Write a tiny base folder and a tiny TrajectoryCrafter transformer under ``root``.

    Returns ``{"base": root/"CogVideoX-Fun-V1.1-5b-InP", "transformer": root/"TrajectoryCrafter"}``.
    With ``subfolder="crosstransformer"`` the transformer files go one level down, as in the
    official download. ``transformer_kwargs`` go to ``save_tiny_transformer``.
    """
    from .models.tiny import save_tiny_transformer

    root = Path(root)
    base = save_tiny_base_model(root / "CogVideoX-Fun-V1.1-5b-InP", seed=seed)
    transformer_root = root / "TrajectoryCrafter"
    target = transformer_root / subfolder if subfolder else transformer_root
    transformer_kwargs.setdefault("text_embed_dim", TINY_TEXT_DIM)
    save_tiny_transformer(target, seed=seed + 20, **transformer_kwargs)
    return {"base": base, "transformer": transformer_root}


def tiny_video_inputs(num_frames: int = 9, height: int = 16, width: int = 32, seed: int = 0):
    """Random ``source``, ``render`` ``[T, H, W, 3]`` and ``hole_mask`` ``[T, H, W]`` for a pipeline call.

    About 30 % of the pixels are holes, plus the 12 leftmost columns (a disocclusion band).
    """
    gen = _generator(seed)
    source = torch.rand(num_frames, height, width, 3, generator=gen)
    render = torch.rand(num_frames, height, width, 3, generator=gen)
    hole = (torch.rand(num_frames, height, width, generator=gen) > 0.7).float()
    hole[:, :, :12] = 1.0
    return source, render, hole
