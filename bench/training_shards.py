"""Bytes per training sample and samples read per second, shard layout by shard layout.

Samples are made from the shared real clips (``../shared/media``) at 49x384x672, as the
preparation scripts make them: the clip centre-cropped and resized to 384x672 (the target), its
double reprojection along a random move (render + hole mask; official renderer) and, for the
triplet figures, 49 other frames of the same video as the reference. The depth is a stand-in
(a tilted plane modulated by luminance: no depth model can be downloaded here); it decides where
the holes are, not how the layouts compare. Renders are cached in ``--cache`` (they take minutes
on a CPU).

Layouts, side by side in one run:

- ``raw``: format 1 (the layout before): uncompressed uint8 in one ``video.safetensors`` member;
- ``h264``: the default now: H.264 4:4:4 CRF 10 members + bit-packed masks (PSNR printed);
- ``lossless``: H.264 RGB QP 0 members + bit-packed masks (bit-exact);
- encoded shards: the latents ``prepare_latents`` writes for this size (real shapes and bf16
  dtype, random values: safetensors stores them uncompressed, so the size does not depend on
  the values) — before: with a raw copy of the videos, read whole; now: latents only.

Reading = what the loader does per sample (:func:`training.shards.read_sample`: seek, read,
sha256 of every member read, decode), warm page cache, one process, torch on one thread (PyAV's
decoder threads as in the loader): a CPU cost. From a disk or network file system the raw
layout also pays for moving 17x the bytes.

    python bench/training_shards.py [--clips 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MEDIA = REPO.parent / "shared" / "media"
CLIPS = [("p7.mp4", 2), ("part-2-3.mp4", 1), ("UST-fn-RvhJwMR5S.mp4", 1), ("tUfDESZsQFhdDW9S.mp4", 1),
         ("0-NNvgaTcVzAG0-r.mp4", 1)]
T, H, W = 49, 384, 672


def make_sample(name: str, stride: int, seed: int) -> dict:
    """``target``/``render``/``reference`` uint8 ``[T,H,W,3]``, ``mask`` ``[T,H,W]`` of one clip."""
    from trajcrafter_core.camera import official_intrinsics
    from trajcrafter_core.reprojection import MoveRanges, double_reprojection, sample_relative_move
    from trajcrafter_core.video import read_video
    from training.builders import fit_clip, to_uint8

    clip = read_video(MEDIA / name, max_frames=2 * T, every_nth=stride, size_multiple=1).frames
    frames, other = clip[:T], clip[-T:]
    h, w = frames.shape[1:3]
    rows = torch.linspace(0.0, 1.0, h).view(1, h, 1)
    depth = (3.0 - 2.0 * rows) * (1.0 + 0.3 * frames.mean(-1))  # tilted plane + luminance relief
    frames, depth, K, _ = fit_clip(frames, depth, official_intrinsics(w, h), H, W)
    reference, _, _, _ = fit_clip(other, torch.ones(other.shape[:3]), official_intrinsics(w, h), H, W)
    move = sample_relative_move(depth, MoveRanges(), torch.Generator().manual_seed(seed))
    result = double_reprojection(frames, depth, K, move.transforms(T))
    return {"target": to_uint8(frames), "render": to_uint8(result.render), "reference": to_uint8(reference),
            "mask": (result.hole_mask > 0.5).to(torch.uint8)}


def cached_samples(count: int, cache: Path) -> list:
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (name, stride) in enumerate(CLIPS[:count]):
        path = cache / f"{Path(name).stem}-{T}x{H}x{W}.pt"
        if not path.is_file():
            t0 = time.perf_counter()
            torch.save(make_sample(name, stride, i), path)
            print(f"  rendered {name} in {time.perf_counter() - t0:.0f} s", flush=True)
        out.append((name, torch.load(path)))
    return out


def fake_latents(kind: str) -> dict:
    """What prepare_latents stores for one 49x384x672 sample (bf16; 10 reference frames)."""
    F, h, w, C = (T - 1) // 4 + 1, H // 8, W // 8, 16
    lat = {"target_mean": torch.randn(F, C, h, w), "target_std": torch.rand(F, C, h, w),
           "inpaint_latents": torch.randn(F, C + 1, h, w), "prompt_embeds": torch.randn(226, 4096)}
    if kind == "triplet":
        lat.update(reference_mean=torch.randn(3, C, h, w), reference_std=torch.rand(3, C, h, w))
    lat = {k: v.bfloat16() for k, v in lat.items()}
    lat["scaling_factor"] = torch.tensor(0.7)
    return lat


def write_shard(path: Path, samples: list, kind: str, codec: str, video: bool, latents: bool) -> int:
    from training.shards import Sample, ShardWriter

    with ShardWriter(path, video_codec=codec) as writer:
        for i, (name, s) in enumerate(samples):
            v = {k: s[k] for k in ("target", "render", "mask")}
            if kind == "triplet":
                v["reference"] = s["reference"]
            meta = {"kind": kind, "prompt": name, "num_frames": T, "height": H, "width": W}
            writer.write(Sample(f"s{i}", meta, v if video else None, fake_latents(kind) if latents else None))
    return path.stat().st_size


def read_rates(shards: list, repeats: int) -> list:
    """Median samples/s of reading every sample of each ``(path, with_video)`` shard; the
    layouts take turns in every round (a first round warms the page cache and is dropped), so
    the load of a shared machine weighs on all of them alike."""
    from training.shards import index_shard, read_sample

    refs = [index_shard(path) for path, _ in shards]
    times = [[] for _ in shards]
    for r in range(repeats + 1):
        for i, (_, with_video) in enumerate(shards):
            t0 = time.perf_counter()
            for ref in refs[i]:
                read_sample(ref, with_latents=True, with_video=with_video)
            if r:
                times[i].append(time.perf_counter() - t0)
    return [len(refs[i]) / statistics.median(t) for i, t in enumerate(times)]


def psnr(path: Path, samples: list) -> float:
    from training.shards import iter_shard

    errs = []
    for got, (_, want) in zip(iter_shard(path), samples):
        for name in ("target", "render"):
            errs.append(float(((got.video[name].float() - want[name].float()) ** 2).mean()))
    return 10 * math.log10(255**2 / statistics.mean(errs))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=3, help=f"how many shared clips (1-{len(CLIPS)})")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "trajcrafter-bench-shards"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"samples from {args.clips} shared clip(s) at {T}x{H}x{W}:", flush=True)
    samples = cached_samples(args.clips, Path(args.cache))
    holes = statistics.mean(float(s["mask"].float().mean()) for _, s in samples)
    print(f"  hole fraction {holes:.1%}; raw uint8 per double-reprojection sample "
          f"{sum(samples[0][1][k].numel() for k in ('target', 'render', 'mask')) / 1e6:.1f} MB")
    rows, shards = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        layouts = [("raw videos (before)", "raw", True, False, True),
                   ("h264 videos (now, default)", "h264", True, False, True),
                   ("lossless videos", "lossless", True, False, True),
                   ("encoded: raw videos + latents, read whole (before)", "raw", True, True, True),
                   ("encoded: latents only (now)", "raw", False, True, False)]
        for label, codec, video, latents, read_video in layouts:
            sizes = {}
            for kind in ("double_reprojection", "triplet"):
                path = tmp / f"{codec}-{video}-{latents}-{kind}.tar"
                sizes[kind] = write_shard(path, samples, kind, codec, video, latents) / len(samples)
            path = tmp / f"{codec}-{video}-{latents}-double_reprojection.tar"
            shards.append((path, read_video))
            quality = f"{psnr(path, samples):.1f} dB" if codec == "h264" and video else (
                "exact" if video else "-")
            rows.append([label, sizes["double_reprojection"], sizes["triplet"], 0.0, quality])
        for row, rate in zip(rows, read_rates(shards, args.repeats)):
            row[3] = rate
    print(f"\n{'layout':52s} {'MB/sample (dr)':>15s} {'MB/sample (triplet)':>20s} {'samples/s read':>15s}  quality")
    for label, dr, tr, rate, quality in rows:
        print(f"{label:52s} {dr / 1e6:15.2f} {tr / 1e6:20.2f} {rate:15.2f}  {quality}")
    raw, h264 = rows[0], rows[1]
    print(f"\nh264 vs raw: {raw[1] / h264[1]:.0f}x fewer bytes per double-reprojection sample, "
          f"{raw[2] / h264[2]:.0f}x per triplet; reading {h264[3] / raw[3]:.2f}x the samples/s")
    print(f"latents only vs encoded-with-raw-videos: {rows[3][1] / rows[4][1]:.0f}x fewer bytes, "
          f"{rows[4][3] / rows[3][3]:.1f}x the samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
