"""Build multi-view triplet shards ``(source, target, render, mask)`` from posed static sequences.

For each sequence, pick a source clip and an overlapping target clip of the same sequence, and
render the source frames' points into the target cameras (renderer mode as at inference); the
target clip is the ground truth, the source clip the reference. See
:func:`training.builders.triplet_samples`.

Inputs (any mix):

- ``--sequences DIR ...``: folders in our posed-sequence format (``DIR/cameras.json``, see
  :mod:`training.posed`) or COLMAP scenes (``DIR/sparse/0`` or ``DIR/sparse`` with
  ``cameras.txt`` + ``images.txt``, images in ``DIR/images``, depth maps in
  ``DIR/stereo/depth_maps`` or ``DIR/depth``);
- ``--manifest FILE``: JSON lines ``{"path": DIR, "prompt": "...", "id"?: ..., "model"?: ...,
  "images"?: ..., "depth"?: ...}`` (the last three override the COLMAP folders);
- ``--synthetic N``: N procedural static scenes filmed by a moving camera (smoke tests).

Sharded like the other preparation scripts: ``--shard i --num-shards N``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch

from trajcrafter_core.errors import MissingFilesError, TrajCrafterError

from .builders import ClipOptions, TripletOptions, iter_json_lines, triplet_samples
from .posed import read_colmap_sequence, read_posed_sequence, write_posed_sequence
from .prepare_double_reprojection import SYNTHETIC_PROMPT, add_common_arguments, clip_options, run_preparation_job

SequenceSpec = Tuple[str, dict]  # (id, how to open it)


def open_sequence(spec: dict):
    """A :class:`~training.posed.PosedSequence` from a spec ``{"path", "model"?, "images"?, "depth"?}``
    (or a synthetic spec, written to its ``path`` on first use)."""
    if "synthetic" in spec:
        write_synthetic_sequence(Path(spec["path"]), **spec["synthetic"])
    path = Path(spec["path"])
    if (path / "cameras.json").is_file():
        return read_posed_sequence(path)
    model = spec.get("model")
    if model is None:
        for candidate in (path / "sparse" / "0", path / "sparse", path):
            if (candidate / "cameras.txt").is_file():
                model = candidate
                break
    if model is None:
        raise MissingFilesError(
            f"{path} is neither a posed sequence (cameras.json) nor a COLMAP scene (sparse/0/cameras.txt + "
            f"images.txt); see training/README.md."
        )
    images = Path(spec.get("images") or path / "images")
    depth = spec.get("depth")
    if depth is None:
        depth = next((d for d in (path / "stereo" / "depth_maps", path / "depth") if d.is_dir()), path / "depth")
    return read_colmap_sequence(model, images, depth, name=path.name)


def write_synthetic_sequence(folder: Path, seed: int, length: int, height: int, width: int) -> Path:
    """A static synthetic scene filmed along a sideways dolly with a slow pan, in our on-disk
    format (exact depth, official intrinsics)."""
    from trajcrafter_core.camera import official_intrinsics
    from trajcrafter_core.synthetic import SyntheticScene

    if (folder / "cameras.json").is_file():
        return folder
    K = official_intrinsics(width, height)
    s = torch.linspace(-1.0, 1.0, length)
    c2w = torch.eye(4).repeat(length, 1, 1)
    yaw = s * math.radians(12.0)
    c2w[:, 0, 0], c2w[:, 0, 2], c2w[:, 2, 0], c2w[:, 2, 2] = yaw.cos(), yaw.sin(), -yaw.sin(), yaw.cos()
    c2w[:, 0, 3], c2w[:, 2, 3] = 1.2 * s, 0.3 * s
    frames, depths = SyntheticScene(seed=seed).render(torch.linalg.inv(c2w), K, height, width, times=0.0)
    return write_posed_sequence(folder, frames, depths, K, c2w)


def synthetic_specs(count: int, length: int, height: int, width: int, out_dir: Path, seed: int = 0) -> List[dict]:
    """Specs of ``count`` synthetic sequences (written when a job opens them)."""
    return [{"path": str(out_dir / f"synthetic{seed + i:05d}"), "id": f"synthetic{seed + i:05d}",
             "prompt": SYNTHETIC_PROMPT,
             "synthetic": {"seed": seed + i, "length": length, "height": height, "width": width}}
            for i in range(count)]


def collect_specs(args) -> List[dict]:
    specs: List[dict] = []
    for d in args.sequences or []:
        specs.append({"path": d, "id": Path(d).name, "prompt": ""})
    if args.manifest:
        path = Path(args.manifest)
        allowed = {"path", "prompt", "id", "model", "images", "depth"}
        for n, entry in iter_json_lines(path):
            if "path" not in entry or set(entry) - allowed:
                raise TrajCrafterError(f"{path}:{n}: needs 'path'; allowed keys {sorted(allowed)}.")
            for key in ("path", "model", "images", "depth"):
                if entry.get(key):
                    entry[key] = str(path.parent / entry[key])
            entry.setdefault("id", Path(entry["path"]).name)
            specs.append(entry)
    if args.synthetic:
        length = (args.num_frames - 1) * args.stride + 1 + args.max_offset
        specs.extend(synthetic_specs(args.synthetic, length, *ClipOptions(**clip_options(args)).render_size,
                                     Path(args.out_dir) / "_synthetic_sequences", args.seed))
    if not specs:
        raise TrajCrafterError("give --sequences, --manifest or --synthetic.")
    return specs


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.prepare_triplets", description=__doc__.split("\n\n")[0])
    p.add_argument("--sequences", nargs="*", help="posed-sequence or COLMAP scene folders")
    p.add_argument("--manifest", help="JSON-lines list of sequences with prompts")
    p.add_argument("--synthetic", type=int, metavar="N", default=0, help="N procedural static scenes")
    add_common_arguments(p)
    p.add_argument("--clips-per-sequence", type=int, default=1)
    p.add_argument("--min-offset", type=int, default=4, help="min frames between source and target clip starts")
    p.add_argument("--max-offset", type=int, default=30, help="max frames between source and target clip starts")
    p.add_argument("--min-coverage", type=float, default=0.3, help="min fraction of the target the render covers")
    p.add_argument("--max-coverage", type=float, default=0.98, help="max fraction (reject near-identical views)")
    p.add_argument("--attempts", type=int, default=8, help="draws per clip before giving up")
    args = p.parse_args(argv)
    opts = TripletOptions(**clip_options(args), clips_per_sequence=args.clips_per_sequence,
                          min_offset=args.min_offset, max_offset=args.max_offset, min_coverage=args.min_coverage,
                          max_coverage=args.max_coverage, attempts=args.attempts)
    return run_preparation_job(
        args, "mv", load_items=lambda: collect_specs(args),
        make_samples=lambda spec, i: triplet_samples(open_sequence(spec), i, opts, spec.get("prompt", ""), spec["id"]),
        describe=lambda spec: spec["path"])


if __name__ == "__main__":
    sys.exit(main())
