"""Benchmark the depth estimators: seconds and peak memory per estimator, plus the Depth Anything
alignment's flicker figure on an exact synthetic clip.

Scales:

- ``--scale cpu`` (default without CUDA): tiny random-init models in the official layouts
  (:mod:`trajcrafter_core.depth.tiny`), a synthetic clip at a small size; peak memory is the
  process's peak RSS.
- ``--scale full`` (CUDA): the official architectures (SVD UNet/VAE/CLIP ViT-H as DepthCrafter
  uses them, Depth Anything V2 Small) with random weights — or real weights with
  ``--unet-dir/--svd-dir/--da-dir`` — at 1024x576 x 49 frames, float16; seconds and peak VRAM
  (``torch.cuda.max_memory_allocated``) per estimator.

Run from the repository root::

    python bench/depth.py                        # CPU scale
    python bench/depth.py --scale full           # GPU
    python bench/depth.py --check-configs        # parameter counts of the full configs (meta device)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trajcrafter_core.depth import DepthAnythingEstimator, DepthCrafterEstimator  # noqa: E402
from trajcrafter_core.depth.alignment import fit_scale_shift, flicker  # noqa: E402
from trajcrafter_core.depth.tiny import (  # noqa: E402
    CLIP_IMAGE_MEAN,
    CLIP_IMAGE_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SVD_SCHEDULER_CONFIG,
    build_tiny_depth_models,
)
from trajcrafter_core.errors import TrajCrafterError  # noqa: E402

# Official architectures (configs of tencent/DepthCrafter's UNet = SVD-xt's, SVD's VAE and
# image encoder, Depth-Anything-V2-Small-hf).
FULL_UNET = dict(
    sample_size=96, in_channels=8, out_channels=4,
    down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",),
    up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3,
    block_out_channels=(320, 640, 1280, 1280), addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=768, layers_per_block=2, cross_attention_dim=1024,
    transformer_layers_per_block=1, num_attention_heads=(5, 10, 20, 20), num_frames=25,
)
FULL_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
    sample_size=768, scaling_factor=0.18215, force_upcast=True,
)
FULL_CLIP = dict(
    hidden_size=1280, intermediate_size=5120, num_attention_heads=16, num_hidden_layers=32,
    patch_size=14, image_size=224, projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5,
)
FULL_DA_BACKBONE = dict(
    hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, image_size=518,
    patch_size=14, out_indices=[3, 6, 9, 12], reshape_hidden_states=False, apply_layernorm=True,
)
FULL_DA = dict(
    patch_size=14, reassemble_hidden_size=384, reassemble_factors=[4, 2, 1, 0.5],
    neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64, head_hidden_size=32,
    head_in_index=-1, depth_estimation_type="relative",
)


def full_depthcrafter(device, dtype) -> DepthCrafterEstimator:
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from trajcrafter_core.depth.unet import DepthCrafterUNet

    with torch.device(device):
        unet = DepthCrafterUNet(**FULL_UNET).to(dtype)
        vae = AutoencoderKLTemporalDecoder(**FULL_VAE).to(dtype)
        enc = CLIPVisionModelWithProjection(CLIPVisionConfig(**FULL_CLIP)).to(dtype)
    sched = EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG)
    return DepthCrafterEstimator(unet, vae, enc, sched, CLIP_IMAGE_MEAN, CLIP_IMAGE_STD, device=device, dtype=dtype)


def full_depth_anything(device, dtype) -> DepthAnythingEstimator:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    cfg = DepthAnythingConfig(backbone_config=Dinov2Config(**FULL_DA_BACKBONE), **FULL_DA)
    with torch.device(device):
        model = DepthAnythingForDepthEstimation(cfg).to(dtype)
    pre = {"size": {"height": 518, "width": 518}, "ensure_multiple_of": 14, "keep_aspect_ratio": True,
           "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD}
    return DepthAnythingEstimator(model, pre, device=device, dtype=dtype)


def check_configs() -> dict:
    """Parameter counts of the full architectures, built on the meta device (no memory)."""
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import (CLIPVisionConfig, CLIPVisionModelWithProjection, DepthAnythingConfig,
                              DepthAnythingForDepthEstimation, Dinov2Config)

    from trajcrafter_core.depth.unet import DepthCrafterUNet

    with torch.device("meta"):
        models = {
            "depthcrafter_unet": DepthCrafterUNet(**FULL_UNET),
            "svd_vae": AutoencoderKLTemporalDecoder(**FULL_VAE),
            "clip_vit_h_image_encoder": CLIPVisionModelWithProjection(CLIPVisionConfig(**FULL_CLIP)),
            "depth_anything_v2_small": DepthAnythingForDepthEstimation(
                DepthAnythingConfig(backbone_config=Dinov2Config(**FULL_DA_BACKBONE), **FULL_DA)),
        }
    return {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}


def synthetic_frames(frames: int, height: int, width: int):
    from trajcrafter_core.synthetic import example_clip

    clip = example_clip(num_frames=frames, height=height, width=width)
    return clip["frames"], clip["depths"]


def flicker_figure(depth: torch.Tensor, seed: int = 0) -> dict:
    """Depth Anything alignment on exact disparity under per-frame random scale/shift (+1% noise)."""
    from trajcrafter_core.depth.alignment import align_to_reference

    truth = 1.0 / depth
    g = torch.Generator().manual_seed(seed)
    t = truth.shape[0]
    pred = (0.5 + 1.5 * torch.rand(t, 1, 1, generator=g)) * truth \
        + (torch.rand(t, 1, 1, generator=g) - 0.5) * 0.6 * float(truth.mean()) \
        + 0.01 * float(truth.std()) * torch.randn(truth.shape, generator=g)
    aligned, ref = [], None
    for d in pred:
        d = d[None] if ref is None else align_to_reference(d[None], ref)
        ref = d
        aligned.append(d)
    aligned = torch.cat(aligned)

    def clip_error(x):
        s, b = fit_scale_shift(x.reshape(1, -1, 1), truth.reshape(1, -1, 1))
        return float(((x.double() * s + b) - truth.double()).abs().mean() / truth.double().abs().mean())

    def norm(x):
        return (x - x.min()) / (x.max() - x.min())

    return {
        "clip_affine_rel_error_unaligned": clip_error(pred),
        "clip_affine_rel_error_aligned": clip_error(aligned),
        "flicker_truth": flicker(norm(truth)),
        "flicker_unaligned": flicker(norm(pred)),
        "flicker_aligned": flicker(norm(aligned)),
    }


def timed(fn, device) -> tuple:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    note = ""
    try:
        fn()
    except TrajCrafterError as exc:  # random full-size weights may give a non-finite/flat map
        note = f"result unusable with random weights ({str(exc).splitlines()[0][:80]})"
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
        return seconds, f"{peak:.2f} GiB VRAM", note
    return seconds, f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB peak RSS (process)", note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=["cpu", "full"], default="full" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--unet-dir"), ap.add_argument("--svd-dir"), ap.add_argument("--da-dir")
    ap.add_argument("--check-configs", action="store_true")
    args = ap.parse_args()

    if args.check_configs:
        print(json.dumps(check_configs(), indent=2))
        return

    full = args.scale == "full"
    if full and not torch.cuda.is_available():
        sys.exit("--scale full needs CUDA")
    device = torch.device("cuda" if full else "cpu")
    dtype = torch.float16 if full else torch.float32
    frames_n = args.frames or (49 if full else 25)
    h, w = args.height or (576 if full else 128), args.width or (1024 if full else 192)
    frames, depth = synthetic_frames(frames_n, h, w)
    results = {"scale": args.scale, "clip": f"{frames_n}x{h}x{w}", "device": str(device), "dtype": str(dtype)}

    with tempfile.TemporaryDirectory() as tmp:
        if full:
            dc = (DepthCrafterEstimator.from_pretrained(args.unet_dir, args.svd_dir, dtype=dtype, device=device)
                  if args.unet_dir and args.svd_dir else full_depthcrafter(device, dtype))
            da = (DepthAnythingEstimator.from_pretrained(args.da_dir, dtype=dtype, device=device)
                  if args.da_dir else full_depth_anything(device, dtype))
        else:
            paths = build_tiny_depth_models(tmp)
            dc = DepthCrafterEstimator.from_pretrained(paths["unet"], paths["svd"], dtype=dtype, device=device)
            da = DepthAnythingEstimator.from_pretrained(paths["depth_anything"], dtype=dtype, device=device)
        runs = {
            "depthcrafter (5 steps, window 110)": lambda: dc.estimate(frames),
            "depthcrafter (5 steps, window 20 / overlap 5)": lambda: dc.estimate(frames, window_size=20, overlap=5),
            "depth_anything_v2 (aligned)": lambda: da.estimate(frames),
        }
        for name, fn in runs.items():
            if device.type == "cuda":
                fn()  # warm-up (kernels, allocator)
            seconds, memory, note = timed(fn, device)
            results[name] = {"seconds": round(seconds, 3), "peak_memory": memory, **({"note": note} if note else {})}
            print(f"{name:48s} {seconds:8.2f} s   {memory}" + (f"   [{note}]" if note else ""), flush=True)
    results["flicker"] = flicker_figure(depth)
    print("Depth Anything alignment on the exact synthetic clip:", json.dumps(results["flicker"], indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
