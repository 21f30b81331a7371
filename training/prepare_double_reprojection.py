"""Build double-reprojection training shards from monocular videos with depth.

For each clip: draw a relative camera move, render the clip to the moved cameras (``I'`` and its
depth ``D'``), lift ``I'`` with ``D'`` and render it back (``I''``), and store
``(target = the clip, render = I'', mask)`` — see :mod:`trajcrafter_core.reprojection`.

Input: a JSON-lines manifest, one video per line::

    {"video": "clips/0001.mp4", "depth": "depth/0001.npy", "prompt": "a dog runs on a beach"}

``depth``: ``[T, H, W]`` float z-depth per frame (larger = farther) in the range the model
expects, e.g. DepthCrafter output mapped by ``trajcrafter_core.depth``; ``.npy``, ``.npz`` or
``.safetensors``. Optional ``"intrinsics"`` (3x3, pixels at the video's size; default: the
official focal of 500 px at 1024 px width) and ``"id"``. Or ``--synthetic N`` for N procedural
clips with exact depth (smoke tests, demos).

Sharded: ``--shard i --num-shards N`` processes manifest lines ``i, i+N, ...`` and writes
``<out-dir>/<prefix>-<i>-of-<N>-<part>.tar`` + a JSON report; run the N jobs anywhere.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.sizing import DEFAULT_READ_SIDE

from .builders import (
    ClipOptions,
    DoubleReprojectionOptions,
    VideoItem,
    double_reprojection_samples,
    read_manifest,
    run_sharded_job,
)
from .shards import Sample
from .video_codec import CODEC_NAMES, DEFAULT_CODEC

SYNTHETIC_PROMPT = "a room with colourful textured walls, moving spheres and boxes"


def synthetic_items(count: int, num_frames: int, height: int, width: int, seed: int = 0) -> List[VideoItem]:
    """Procedural clips with exact depth (static camera, moving objects), rendered at
    ``height`` x ``width`` (pass the render size; official intrinsics)."""
    from trajcrafter_core.synthetic import example_clip

    items = []
    for i in range(count):
        clip = example_clip(num_frames=num_frames, height=height, width=width, seed=seed + i)
        items.append(VideoItem(id=f"synthetic{seed + i:05d}", video="", depth="", prompt=SYNTHETIC_PROMPT,
                               intrinsics=clip["K"].tolist(), frames=clip["frames"], depths=clip["depths"]))
    return items


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-dir", required=True, help="folder for the shards")
    p.add_argument("--prefix", default=None, help="shard file prefix")
    p.add_argument("--shard", type=int, default=0, help="this job's index in [0, --num-shards)")
    p.add_argument("--num-shards", type=int, default=1, help="number of jobs the corpus is split into")
    p.add_argument("--num-frames", type=int, default=49, help="clip length (4k+1)")
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--width", type=int, default=672)
    p.add_argument("--stride", type=int, default=1, help="take every n-th frame")
    p.add_argument("--mode", default="official", choices=["official", "zbuffer"],
                   help="renderer mode; use the one inference uses (official for the released model)")
    p.add_argument("--clean-holes", action="store_true", help="official --mask hole dilation")
    p.add_argument("--render-long-side", type=int, default=DEFAULT_READ_SIDE,
                   help="long side renders are made at before the resize to --height x --width, as inference does "
                        "(1024: 576x1024 renders for 384x672; 0 = render at the training size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto",
                   help="where clips are resized and rendered: auto (a GPU when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--video-codec", default=DEFAULT_CODEC, choices=CODEC_NAMES,
                   help="how shards store the videos: h264 (visually lossless, ~1/50 of raw), lossless "
                        "(bit-exact H.264 RGB, ~1/5) or raw (uncompressed uint8)")
    p.add_argument("--samples-per-shard", type=int, default=256)
    p.add_argument("--on-error", default="raise", choices=["raise", "skip"],
                   help="raise: stop and remove this job's shards; skip: report bad inputs and go on")


def check_geometry(num_frames: int, height: int, width: int) -> None:
    if num_frames < 2 or (num_frames - 1) % 4:
        raise TrajCrafterError(f"--num-frames must be 4k+1 (e.g. 49), got {num_frames}.")
    if height % 16 or width % 16 or height < 16 or width < 16:
        raise TrajCrafterError(f"--height/--width must be multiples of 16, got {height}x{width}.")


def check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device("cpu" if device == "auto" else device)
    except RuntimeError:
        raise TrajCrafterError(f"--device {device!r} is not a device; use auto, cpu, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrajCrafterError(f"--device {device}: no CUDA GPU is available here; use --device cpu or auto.")


def clip_options(args: argparse.Namespace) -> Dict[str, object]:
    """The :class:`~training.builders.ClipOptions` fields from :func:`add_common_arguments`' values."""
    return {f.name: getattr(args, f.name) for f in fields(ClipOptions)}


def run_preparation_job(args: argparse.Namespace, default_prefix: str, load_items: Callable[[], Sequence],
                        make_samples: Callable[[object, int], Iterable[Sample]],
                        describe: Callable[[object], str]) -> int:
    """The command-line run shared by the preparation scripts: check the clip geometry, load the
    inputs, write this job's shards (:func:`~training.builders.run_sharded_job` with the common
    arguments) and print a summary. Exit status 0, or 2 with ``error: ...`` on stderr for a
    :class:`TrajCrafterError`."""
    try:
        check_geometry(args.num_frames, args.height, args.width)
        check_device(args.device)
        report = run_sharded_job(load_items(), make_samples, args.out_dir, args.prefix or default_prefix,
                                 args.shard, args.num_shards, args.samples_per_shard, args.on_error,
                                 describe=describe, video_codec=args.video_codec)
    except TrajCrafterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {report.samples} samples to {len(report.shards)} shard(s); skipped {len(report.skipped)} input(s)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.prepare_double_reprojection",
                                description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="JSON-lines manifest of videos with depth")
    src.add_argument("--synthetic", type=int, metavar="N", help="use N procedural clips instead")
    add_common_arguments(p)
    p.add_argument("--clips-per-video", type=int, default=1)
    p.add_argument("--max-theta", type=float, default=40.0, help="|theta| range in degrees (official limit 60)")
    p.add_argument("--max-phi", type=float, default=45.0, help="|phi| range in degrees (official limit 60)")
    p.add_argument("--max-r", type=float, default=0.5, help="|r| range, fraction of the radius (official limit 0.6)")
    p.add_argument("--max-xy", type=float, default=0.1, help="|x|,|y| range as a fraction of the radius")
    args = p.parse_args(argv)
    opts = DoubleReprojectionOptions(**clip_options(args), clips_per_video=args.clips_per_video,
                                     theta=args.max_theta, phi=args.max_phi, r=args.max_r, xy=args.max_xy)
    return run_preparation_job(
        args, "dr",
        load_items=lambda: (read_manifest(args.manifest) if args.manifest else
                            synthetic_items(args.synthetic, args.num_frames, *ClipOptions(
                                **clip_options(args)).render_size, args.seed)),
        make_samples=lambda item, i: double_reprojection_samples(item, i, opts),
        describe=lambda it: it.video or it.id)


if __name__ == "__main__":
    sys.exit(main())
