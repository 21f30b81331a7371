"""Estimate per-frame depth for every video of a manifest (the input of prepare_double_reprojection).

Runs the pack's depth estimators through :mod:`trajcrafter_core.depth.choice` — DepthCrafter
(``--depthcrafter UNET_DIR SVD_DIR``, what the official demo uses) or Depth Anything V2
(``--depth-anything DIR``) — with the same reading and disparity→depth mapping as inference:
frames are read at the inference read size (``--max-side``, 1024 like the official demo) and
the depth is the z-depth the model expects. On a GPU when present (``--device``).

    python -m training.estimate_depth --manifest videos.jsonl --out-dir depth \\
        --out-manifest videos_depth.jsonl --depthcrafter models/DepthCrafter models/svd-xt \\
        --shard $I --num-shards $N

Writes ``<out-dir>/<id>.npy`` (float16 ``[T, H, W]``, one map per decoded frame) atomically and
an output manifest with ``"depth"`` filled in (:mod:`training.manifests`). Lines that already
name an existing depth file keep it unless ``--overwrite``; a re-run after an interruption only
estimates what is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.sizing import DEFAULT_READ_SIDE

from .manifests import ManifestEntry, run_manifest_job


def depth_spec(args):
    """The :class:`~trajcrafter_core.specs.DepthSpec` of the estimator flags."""
    from trajcrafter_core.depth.choice import check_depth_source
    from trajcrafter_core.specs import DepthSpec

    device = None if args.device == "auto" else args.device
    if args.depth_anything:
        spec = DepthSpec("depth_anything_v2", args.depth_anything, device=device, dtype=args.dtype)
    else:
        spec = DepthSpec("depthcrafter", args.depthcrafter[0], svd_path=args.depthcrafter[1], device=device,
                         dtype=args.dtype, steps=args.steps)
    check_depth_source(spec, label="--depth-anything" if args.depth_anything else "--depthcrafter")
    return spec


def save_depth(path: Path, depth) -> Path:
    """float16 ``.npy`` written to a temporary name and renamed (no half-written depth file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
    np.save(tmp, depth.numpy().astype(np.float16))
    os.replace(tmp, path)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.estimate_depth", description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True, help="JSON-lines manifest: {\"video\": ..., \"prompt\"?, \"id\"?}")
    p.add_argument("--out-dir", required=True, help="folder for the depth files")
    p.add_argument("--out-manifest", required=True, help="the manifest with 'depth' filled in")
    est = p.add_mutually_exclusive_group(required=True)
    est.add_argument("--depthcrafter", nargs=2, metavar=("UNET_DIR", "SVD_DIR"), help="DepthCrafter (official)")
    est.add_argument("--depth-anything", metavar="DIR", help="Depth Anything V2 folder (transformers layout)")
    p.add_argument("--device", default="auto", help="auto (a GPU when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default=None, choices=["fp16", "bf16", "fp32"], help="default: fp16 on GPU, fp32 on CPU")
    p.add_argument("--steps", type=int, default=5, help="DepthCrafter denoising steps (official 5)")
    p.add_argument("--max-side", type=int, default=DEFAULT_READ_SIDE, help="long side frames are read at")
    p.add_argument("--max-frames", type=int, default=0, help="read at most this many frames (0 = all)")
    p.add_argument("--overwrite", action="store_true", help="estimate again where a depth file exists")
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--on-error", default="raise", choices=["raise", "skip"])
    args = p.parse_args(argv)
    try:
        from tqdm.auto import tqdm

        from trajcrafter_core.depth.choice import depth_for_frames, load_estimator
        from trajcrafter_core.video import read_video

        spec = depth_spec(args)
        estimator = load_estimator(spec)
        out_dir = Path(args.out_dir).resolve()
        estimated = []

        def annotate(entry: ManifestEntry):
            values = dict(entry.values)
            if values.get("depth") and Path(values["depth"]).is_file() and not args.overwrite:
                return values
            clip = read_video(values["video"], max_frames=args.max_frames or None, max_side=args.max_side,
                              size_multiple=1)
            depth = depth_for_frames(clip.frames, estimator, **spec.estimate_options())
            values["depth"] = str(save_depth(out_dir / f"{entry.id}.npy", depth))
            estimated.append(entry.id)
            return values

        report = run_manifest_job(args.manifest, args.out_manifest, annotate, args.shard, args.num_shards,
                                  args.on_error, what="depth", progress=lambda xs: tqdm(xs, desc="depth"))
    except TrajCrafterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"depth for {len(estimated)} video(s) ({spec.estimator} on {estimator.device}); "
          f"{report.written} line(s) in {report.out_manifest}; skipped {len(report.skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
