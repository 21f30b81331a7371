"""Benchmark: forward time and peak memory of our Ref-DiT transformer vs the same network with the
reference cross-attention written the straightforward (official) way — explicit
``softmax((q·d^-¼)(k·d^-¼)ᵀ)`` in float32, then ``@ v`` — which materialises the
``[heads, N_video, N_ref]`` attention matrix.

Scales:

- ``--scale cpu``  (default without CUDA): a narrow model on CPU, small latents; peak memory of
  the forward from the profiler's allocation events (live bytes at their highest).
- ``--scale full`` (CUDA): the official 5B config with random weights, 49 frames at 384×672
  (13×48×84 latents, 13104 video and 13104 reference tokens), CFG batch 2, bf16; s/step and
  peak VRAM (``torch.cuda.max_memory_allocated``). Compute floor on an H200 is ~0.59 s/step.

Run from the repository root::

    python bench/transformer.py                   # CPU scale
    python bench/transformer.py --scale full      # GPU, needs ~60 GB for the naive variant
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Dict

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trajcrafter_core.models import CrossTransformer3DModel, rotary_embedding  # noqa: E402
from bench.profiling import cpu_peak_bytes  # noqa: E402
from trajcrafter_core.models.official_configs import official_transformer_config  # noqa: E402
from trajcrafter_core.models.reference_attention import naive_reference_attention  # noqa: E402
from trajcrafter_core.models.tiny import randomise_weights, tiny_transformer_config  # noqa: E402

#: Official TrajectoryCrafter transformer config (CogVideoX-Fun-V1.1-5b-InP + reference keys).
FULL_CONFIG = official_transformer_config()
#: A narrow model that runs on a small CPU in seconds but keeps the token counts meaningful.
CPU_CONFIG = tiny_transformer_config(
    num_attention_heads=4,
    attention_head_dim=32,
    text_embed_dim=64,
    time_embed_dim=64,
    num_layers=4,
    cross_attn_dim_head=32,
    cross_attn_num_heads=4,
)


def use_naive_cross_attention(model: CrossTransformer3DModel, naive: bool) -> None:
    for layer in model.perceiver_cross_attention:
        if naive:
            layer.forward = functools.partial(naive_reference_attention, layer)
        elif "forward" in layer.__dict__:
            del layer.forward


def make_inputs(config, batch, frames, height, width, text_length, device, dtype) -> Dict:
    g = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    latent = config["out_channels"]
    return dict(
        hidden_states=randn(batch, frames, latent, height, width),
        encoder_hidden_states=randn(batch, text_length, config["text_embed_dim"]),
        timestep=torch.full((batch,), 500, device=device, dtype=torch.long),
        inpaint_latents=randn(batch, frames, config["in_channels"] - latent, height, width),
        cross_latents=randn(batch, frames, config["cross_attn_in_channels"], height, width),
        image_rotary_emb=tuple(
            t.to(device=device, dtype=dtype)
            for t in rotary_embedding(height * 8, width * 8, frames, config["attention_head_dim"])
        ),
    )


def timed(fn: Callable[[], object], repeats: int, device: str) -> tuple:
    """Mean (wall seconds, process CPU seconds) per call after one warm-up call. On a shared
    CPU the CPU seconds are the steadier figure."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()  # warm-up
    sync()
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats, (time.process_time() - start_cpu) / repeats


@torch.no_grad()
def randomise_on_device(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights generated on the model's device (the CPU generator is too slow for 5B)."""
    g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    for name, p in model.named_parameters():
        if p.ndim >= 2:
            p.normal_(0, 1 / math.sqrt(p[0].numel()), generator=g)
        elif name.endswith("weight"):
            p.normal_(1, 0.2, generator=g)
        else:
            p.normal_(0, 0.2, generator=g)


def run(args) -> Dict:
    device = "cuda" if args.scale == "full" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--scale full needs a CUDA GPU")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    if args.scale == "full":
        config, shape = FULL_CONFIG, dict(batch=2, frames=13, height=48, width=84, text_length=226)
    else:
        config, shape = CPU_CONFIG, dict(
            batch=2, frames=args.cpu_frames, height=args.cpu_latent[0], width=args.cpu_latent[1], text_length=32
        )
    torch.manual_seed(0)
    if device == "cuda":
        with torch.device("meta"):
            model = CrossTransformer3DModel.from_config(config)
        model = torch.nn.Module.to(model.to_empty(device=device), dtype)  # plain cast, no diffusers warning
        randomise_on_device(model)
    else:
        model = torch.nn.Module.to(randomise_weights(CrossTransformer3DModel.from_config(config)), dtype)
    model.eval()
    if args.attention_backend:
        model.set_attention_backend(args.attention_backend)
    if args.fp8:
        model.enable_fp8_weight_storage(compute_dtype=dtype)
    inputs = make_inputs(config, device=device, dtype=dtype, **shape)
    tokens = shape["frames"] * (shape["height"] // 2) * (shape["width"] // 2)
    params = sum(p.numel() for p in model.parameters())
    report = dict(
        scale=args.scale, device=torch.cuda.get_device_name() if device == "cuda" else "cpu",
        dtype=args.dtype, params=params, batch_cfg=shape["batch"], video_tokens=tokens, reference_tokens=tokens,
        text_tokens=shape["text_length"], fp8_weights=args.fp8, attention_backend=args.attention_backend or "sdpa",
        threads=torch.get_num_threads(), results={},
    )
    outputs = {}
    variants = ["ours"] + ([] if args.skip_naive else ["naive_perceiver"])
    for variant in variants:
        use_naive_cross_attention(model, variant != "ours")

        def step():
            with torch.no_grad():
                return model(**inputs, return_dict=False)[0]

        try:
            if device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                outputs[variant] = step().float().cpu()
                peak = torch.cuda.max_memory_allocated()
            else:
                outputs[variant] = step().float()
                peak = cpu_peak_bytes(step)
            seconds, cpu_seconds = timed(step, args.repeats, device)
            report["results"][variant] = dict(
                seconds_per_step=round(seconds, 4), process_cpu_seconds_per_step=round(cpu_seconds, 4),
                peak_gib=round(peak / 2**30, 3),
            )
        except torch.OutOfMemoryError as error:
            report["results"][variant] = dict(error=f"out of memory: {str(error)[:120]}")
        print(variant, report["results"][variant], flush=True)
    if len(outputs) == 2:
        a, b = outputs["ours"], outputs["naive_perceiver"]
        report["max_abs_diff_ours_vs_naive"] = float((a - b).abs().max())
        report["output_max_abs"] = float(b.abs().max())
    if device == "cuda":
        report["h200_compute_floor_s_per_step"] = 0.59
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["cpu", "full"], default="full" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None,
                        help="default: bf16 on GPU, fp32 on CPU")
    parser.add_argument("--repeats", type=int, default=None, help="timed forwards (default 3 GPU, 2 CPU)")
    parser.add_argument("--cpu-frames", type=int, default=5)
    parser.add_argument("--cpu-latent", type=int, nargs=2, default=(32, 48), metavar=("H", "W"))
    parser.add_argument("--skip-naive", action="store_true", help="only time our implementation")
    parser.add_argument("--fp8", action="store_true", help="store Linear weights in float8_e4m3fn")
    parser.add_argument("--attention-backend", default=None, help="diffusers backend name (default: SDPA)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    args.dtype = args.dtype or ("bf16" if args.scale == "full" else "fp32")
    args.repeats = args.repeats or (3 if args.scale == "full" else 2)
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
