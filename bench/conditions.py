"""Benchmark making the sampler's conditions: the official flow against rendering at the model size.

For one clip (``--video``, default ``../shared/media/p7.mp4``: ``--frames`` frames at the official
read size 576x1024, with bench/render.py's plausible depth) it times, in ``--rounds`` rounds whose
order alternates (this machine's speed drifts):

- ``official``: :func:`trajcrafter_core.redirect.prepare_conditions` with ``size_policy="official"``
  — render at 576x1024, resize frames / renders / masks to 384x672, pick the reference frames;
- ``render_only``: the same render at 576x1024 alone (the renderer's share of ``official``);
- ``direct_small``: frames and depth resized to 384x672 first and rendered there, what the nodes did
  before the redirect layer (fewer pixels, other holes than the released model expects).

It prints ms/frame per configuration (median over rounds) and the per-round ratios to ``official``.

    python bench/conditions.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from render import DEFAULT_VIDEO, _plausible_depth, _read_frames  # noqa: E402

from trajcrafter_core import camera, redirect  # noqa: E402
from trajcrafter_core.render import render_views  # noqa: E402

SAMPLE = (384, 672)
POSE = (0.0, -30.0, 0.3, 0.0, 0.0)


def _official(frames, depths):
    return redirect.prepare_conditions(frames, depths, target_pose=POSE, size_policy="official")


def _render_only(frames, depths):
    T, H, W = depths.shape
    path = camera.target_pose_trajectory(*POSE, num_frames=T, radius=camera.orbit_radius(depths[0]))
    return render_views(frames, depths, camera.official_intrinsics(W, H), path, clean_holes=True)


def _direct_small(frames, depths):
    small = redirect.resize_video(frames, SAMPLE)
    d = F.interpolate(depths[:, None], size=SAMPLE, mode="bilinear", align_corners=False)[:, 0]
    return redirect.prepare_conditions(small, d, target_pose=POSE, size_policy="official")


CONFIGS = {"official": _official, "render_only": _render_only, "direct_small": _direct_small}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", default=str(DEFAULT_VIDEO))
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if Path(args.video).exists():
        frames = _read_frames(Path(args.video), args.frames, 576, 1024)
        depths = _plausible_depth(frames)
    else:
        from trajcrafter_core.synthetic import example_clip

        clip = example_clip(num_frames=args.frames, height=576, width=1024)
        frames, depths = clip["frames"], clip["depths"]
    for fn in CONFIGS.values():  # warm-up
        fn(frames[:2], depths[:2])
    times = {name: [] for name in CONFIGS}
    for r in range(args.rounds):
        order = list(CONFIGS) if r % 2 == 0 else list(CONFIGS)[::-1]
        for name in order:
            start = time.perf_counter()
            CONFIGS[name](frames, depths)
            times[name].append((time.perf_counter() - start) * 1000.0 / args.frames)
    print(f"{args.frames} frames of {Path(args.video).name} at 576x1024, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds")
    print(f"{'configuration':<14} {'ms/frame (median)':>18} {'ratio to official, per round':>32}")
    for name in CONFIGS:
        ratios = [t / o for t, o in zip(times[name], times["official"])]
        print(f"{name:<14} {statistics.median(times[name]):>18.1f}   "
              f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
