"""Pre-encode shards: add VAE latents and T5 embeddings so training never runs the VAE or T5.

Reads tar shards written by the preparation scripts and writes shards of the same name into
``--out-dir`` with, per sample, its meta and a ``<key>.latents.safetensors`` member (layout in
:mod:`training.inputs`) — no second copy of the videos, which training from cached latents never
reads (keep the input shards for per-step encoding or new encodings). The member holds: target and reference posteriors (a fresh sample is drawn every training
step), the condition latents exactly as the sampler forms them (the render's noise augmentation
strength ``exp(N(mean, std²))`` is drawn here, once per sample, seeded by the sample key), the
prompt embeddings, and the VAE scaling factor. Also writes ``empty_prompt.safetensors`` (the
``""`` embeddings used for text dropout; point ``model.empty_prompt_embeds`` at it).

The transformer's *config* decides the condition layout (``add_noise_in_inpaint_model``,
channels); its weights are never loaded. Sharded: ``--shard i --num-shards N`` takes input shard
files ``i, i+N, ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from trajcrafter_core.checkpoints import parse_dtype
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.official import DTYPE_NAMES

from .builders import check_shard_args, item_generator
from .checkpointing import write_text_atomic
from .conditioning import (
    batch_inpaint_latents,
    config_only_transformer,
    make_condition_pipeline,
    sample_noise_sigma,
    video_posterior,
)
from .shards import Sample, ShardWriter, expand_shard_patterns, iter_shard



def load_encoding_pipeline(base_dir: str, transformer_dir: str, dtype: torch.dtype, device):
    """VAE + T5 from ``base_dir`` around a config-only transformer from ``transformer_dir``."""
    from trajcrafter_core import checkpoints
    from trajcrafter_core.models import CrossTransformer3DModel

    base = Path(base_dir)
    config = CrossTransformer3DModel.load_config(str(checkpoints.resolve_transformer_dir(transformer_dir)))
    vae = checkpoints.load_vae(base / "vae", dtype=dtype, device=device).eval().requires_grad_(False)
    text_encoder = checkpoints.load_text_encoder(base / "text_encoder", dtype=dtype, device=device)
    tokenizer = checkpoints.load_tokenizer(base / "tokenizer")
    scheduler = checkpoints.load_scheduler(base / "scheduler")
    return make_condition_pipeline(config_only_transformer(config), vae, text_encoder, tokenizer, scheduler, device)


@torch.no_grad()
def encode_sample(pipe, sample: Sample, reference_frames: int, noise_aug: tuple, seed: int,
                  store_dtype: torch.dtype) -> Sample:
    """``sample`` with its latents member filled (see the module docstring)."""
    video = sample.video
    gen = item_generator(seed, "noise_aug", sample.key)
    add_noise = bool(getattr(pipe.transformer.config, "add_noise_in_inpaint_model", False))
    sigma = float(sample_noise_sigma(1, *noise_aug, generator=gen)[0]) if add_noise else 0.0
    state = torch.get_rng_state()
    torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))  # the augmentation noise draw
    try:
        inpaint = batch_inpaint_latents(pipe, video["render"][None], video["mask"][None], [sigma])[0]
    finally:
        torch.set_rng_state(state)
    mean, std = video_posterior(pipe.vae, video["target"][None])
    latents = {"target_mean": mean[0], "target_std": std[0], "inpaint_latents": inpaint,
               "prompt_embeds": pipe.encode_text([sample.prompt])[0],
               "scaling_factor": torch.tensor(float(pipe.vae.config.scaling_factor))}
    if sample.kind == "triplet":
        r_mean, r_std = video_posterior(pipe.vae, video["reference"][None], reference_frames)
        latents.update(reference_mean=r_mean[0], reference_std=r_std[0])
    latents = {k: v.detach().to("cpu", store_dtype if k != "scaling_factor" else torch.float32).contiguous()
               for k, v in latents.items()}
    meta = dict(sample.meta)
    meta.pop("sha256", None)
    meta["latents"] = {"reference_frames": reference_frames, "noise_aug_sigma": sigma,
                       "dtype": str(store_dtype).replace("torch.", "")}
    return Sample(sample.key, meta, None, latents)  # training from latents never reads the videos


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.prepare_latents", description=__doc__.split("\n\n")[0])
    p.add_argument("--shards", nargs="+", required=True, help="input shard files or glob patterns")
    p.add_argument("--out-dir", required=True, help="folder for the encoded shards (not the input folder)")
    p.add_argument("--base-dir", required=True, help="CogVideoX-Fun base folder (vae/, text_encoder/, tokenizer/)")
    p.add_argument("--transformer-dir", required=True, help="transformer folder whose config.json to follow")
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--reference-frames", type=int, default=10, help="source frames for the reference (official 10)")
    p.add_argument("--noise-aug-mean", type=float, default=-3.0)
    p.add_argument("--noise-aug-std", type=float, default=0.5)
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPE_NAMES), help="VAE/T5 compute and storage dtype")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        check_shard_args(args.shard, args.num_shards)
        inputs = expand_shard_patterns(args.shards)
        out_dir = Path(args.out_dir)
        if any(path.resolve().parent == out_dir.resolve() for path in inputs):
            raise TrajCrafterError(f"--out-dir {out_dir} holds input shards; write the encoded shards elsewhere.")
        dtype = parse_dtype(args.dtype)
        pipe = load_encoding_pipeline(args.base_dir, args.transformer_dir, dtype, args.device)
        out_dir.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file

        empty = pipe.encode_text([""])[0].to("cpu", dtype).contiguous()
        tmp = out_dir / ".empty_prompt.safetensors.tmp"
        save_file({"prompt_embeds": empty}, str(tmp))
        tmp.replace(out_dir / "empty_prompt.safetensors")
        count = 0
        for path in inputs[args.shard::args.num_shards]:
            with ShardWriter(out_dir / path.name) as writer:
                for sample in iter_shard(path, with_latents=False):
                    encoded = encode_sample(pipe, sample, args.reference_frames,
                                            (args.noise_aug_mean, args.noise_aug_std), args.seed, dtype)
                    encoded.meta["encoded_from"] = str(path)
                    writer.write(encoded)
                    count += 1
        write_text_atomic(out_dir / f"latents-{args.shard:05d}-of-{args.num_shards:05d}.done",
                          f"{count} samples\n")
    except TrajCrafterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"encoded {count} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
