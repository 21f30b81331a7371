"""Benchmark: the preparation render of one double-reprojection sample, ms per frame, on a device.

What ``prepare_double_reprojection --device D`` does per clip (:func:`training.builders.
double_reprojection_samples`): crop and resize the clip to the render size (576x1024 for the
official 384x672), render it to the moved cameras and back (official renderer), resize to the
training size. Input: 49 frames of a shared clip (``p7.mp4``, stride 2 as the official run.sh)
with a stand-in depth (tilted plane modulated by luminance); reading the video is not timed.

    python bench/prepare_render.py --device cuda            # GPU
    python bench/prepare_render.py --device cpu --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    from trajcrafter_core.camera import official_intrinsics
    from trajcrafter_core.video import read_video
    from training.builders import DoubleReprojectionOptions, VideoItem, double_reprojection_samples

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--video", default=str(REPO.parent / "shared" / "media" / "p7.mp4"))
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--width", type=int, default=672)
    p.add_argument("--render-long-side", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    clip = read_video(args.video, max_frames=args.frames, every_nth=2, size_multiple=1).frames
    h, w = clip.shape[1:3]
    depth = (3.0 - 2.0 * torch.linspace(0.0, 1.0, h).view(1, h, 1)) * (1.0 + 0.3 * clip.mean(-1))
    item = VideoItem(id="bench", video="", depth="", intrinsics=official_intrinsics(w, h).tolist(), frames=clip,
                     depths=depth)
    opts = DoubleReprojectionOptions(num_frames=args.frames, height=args.height, width=args.width,
                                     render_long_side=args.render_long_side, device=args.device)
    times = []
    for r in range(args.repeats + 1):
        if opts.torch_device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        (sample,) = double_reprojection_samples(item, 0, opts)
        if opts.torch_device.type == "cuda":
            torch.cuda.synchronize()
        if r or args.repeats == 0:
            times.append(time.perf_counter() - t0)
    per_frame = statistics.median(times) / args.frames * 1e3
    name = torch.cuda.get_device_name() if opts.torch_device.type == "cuda" else "cpu"
    print(f"{name}: {per_frame:.1f} ms per frame ({statistics.median(times):.2f} s per {args.frames}-frame clip "
          f"rendered at {opts.render_size[0]}x{opts.render_size[1]}, twice, to {args.height}x{args.width}; "
          f"holes {float(sample.video['mask'].float().mean()):.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
