"""Command line: ``python -m trajcrafter_core <command>`` (also installed as ``trajcrafter``).

Commands call the same core functions, in the same order, as the ComfyUI nodes:

- ``demo``: render a new camera path for the bundled synthetic clip (exact depth, no weights)
  and write ``source.mp4``, ``render.mp4``, ``mask.mp4``, ``target_gt.mp4`` and a side-by-side
  ``preview.png``.
- ``render``: the same for a video file, with depth from a file (``.npy``/``.npz``) or an
  estimator folder.
- ``generate``: the whole method (depth → point cloud → render → Ref-DiT diffusion), given the
  model folders; writes ``generated.mp4`` beside the render and mask.

Every user error is a :class:`~trajcrafter_core.errors.TrajCrafterError`, printed as one line
(exit code 2); outputs are written atomically, so a failure never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from .errors import TrajCrafterError

MODES = ("gradual", "direct", "bullet", "dolly_zoom")


# ----------------------------------------------------------------------------------------------
# Shared steps (the same order as the nodes)
# ----------------------------------------------------------------------------------------------


def build_trajectory(args, depths, height: int, width: int, K):
    """Trajectory of the chosen mode from ``--preset`` / ``--target-pose`` / ``--traj-txt``."""
    from . import camera

    radius = camera.orbit_radius(depths[0], args.radius_scale)
    num_frames = int(depths.shape[0])
    if args.traj_txt:
        text = Path(args.traj_txt).read_text() if Path(args.traj_txt).exists() else None
        if text is None:
            raise TrajCrafterError(f"--traj-txt {args.traj_txt}: file not found.")
        path_fn = lambda n: camera.txt_trajectory(text, n, radius, anchor_index=args.anchor)  # noqa: E731
        r_end = None
    else:
        pose = (camera.TargetPose(*args.target_pose) if args.target_pose is not None
                else camera.preset_pose(args.preset, radius=1.0, amount=args.amount))
        # preset x/y are fractions of the radius at radius 1; the official x, y are absolute.
        x, y = (pose.x, pose.y) if args.target_pose is not None else (pose.x * radius, pose.y * radius)
        path_fn = lambda n: camera.target_pose_trajectory(  # noqa: E731
            pose.theta, pose.phi, pose.r, x, y, n, radius, anchor_index=args.anchor)
        r_end = pose.r
    focal_end = None
    if args.mode == "dolly_zoom":
        if args.focal_end is not None:
            focal_end = args.focal_end
        elif r_end is not None:
            focal_end = camera.dolly_zoom_focal_end(float(K[0, 0]), r_end)
    traj = camera.make_trajectory(
        args.mode, path_fn, num_frames, height, width, K=K,
        cut=args.cut if args.mode == "direct" else None, focal_end=focal_end,
    )
    return traj, radius


def render_outputs(out_dir: Path, frames, images, mask, fps: float, extra=None) -> dict:
    """Write source/render/mask videos and a side-by-side preview of the middle frame."""
    from . import video

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {
        "source": video.write_video(out_dir / "source.mp4", frames, fps),
        "render": video.write_video(out_dir / "render.mp4", images, fps),
        "mask": video.write_video(out_dir / "mask.mp4", video.mask_to_frames(mask), fps),
    }
    panels = [frames, images, video.mask_to_frames(mask)]
    for name, clip in (extra or {}).items():
        written[name] = video.write_video(out_dir / f"{name}.mp4", clip, fps)
        panels.append(clip)
    mid = images.shape[0] // 2
    strip = video.side_by_side(*[p[min(mid, p.shape[0] - 1)][None] for p in panels])
    written["preview"] = video.write_image(out_dir / "preview.png", strip[0])
    return {k: str(v) for k, v in written.items()}


def covered_psnr(pred, target, hole_mask) -> float:
    """PSNR (dB) over covered pixels (hole_mask == 0) of two 0..1 videos."""
    covered = (hole_mask < 0.5).unsqueeze(-1).expand_as(pred)
    mse = float(((pred - target)[covered] ** 2).mean()) if bool(covered.any()) else float("nan")
    import math

    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def cmd_demo(args) -> dict:
    from . import render, synthetic
    from .pointcloud import PointCloud

    t0 = time.perf_counter()
    clip = synthetic.example_clip(num_frames=args.frames, height=args.height, width=args.width)
    frames, depths, K = clip["frames"], clip["depths"], clip["K"]
    H, W = int(frames.shape[1]), int(frames.shape[2])
    traj, radius = build_trajectory(args, depths, H, W, K)
    images, mask = render.render_trajectory(PointCloud(frames, depths, K), traj, mode=args.renderer,
                                            clean_holes=args.clean_holes)
    # Exact target views of the same schedule: what a perfect generator would produce.
    gt, _ = synthetic.render_target_views(
        clip["scene"], clip["w2c"][traj.source_index], traj.transforms, traj.K_dst, H, W,
        clip["times"][traj.source_index])
    written = render_outputs(Path(args.out), frames, images, mask, clip["fps"], extra={"target_gt": gt})
    summary = dict(
        command="demo", frames=int(images.shape[0]), size=[H, W], mode=traj.mode, renderer=args.renderer,
        radius=round(float(radius), 4), hole_fraction=round(float(mask.mean()), 4),
        covered_psnr_db=round(covered_psnr(images, gt, mask), 2), seconds=round(time.perf_counter() - t0, 2),
        outputs=written,
    )
    return summary


def _load_depth_file(path: str, like):
    from . import depth as depth_pkg

    loader = getattr(depth_pkg, "load_depth_file", None)
    if loader is not None:
        return loader(path)
    import numpy as np
    import torch

    p = Path(path)
    if not p.exists():
        raise TrajCrafterError(f"--depth {path}: file not found.")
    arr = np.load(p, allow_pickle=False)
    if hasattr(arr, "files"):
        arr = arr[arr.files[0]]
    return torch.from_numpy(np.asarray(arr, dtype="float32"))


def cmd_render(args) -> dict:
    from . import camera, render, video
    from .conventions import as_depth
    from .pointcloud import PointCloud

    t0 = time.perf_counter()
    clip = video.read_video(args.video, max_frames=args.frames, skip_first=args.skip_first,
                            every_nth=args.every_nth, max_side=args.max_side)
    frames = clip.frames
    depths = as_depth(_load_depth_file(args.depth, frames), "--depth", like=frames)
    H, W = int(frames.shape[1]), int(frames.shape[2])
    K = camera.official_intrinsics(W, H) if args.fov is None else camera.intrinsics(W, H, fov_degrees=args.fov)
    traj, radius = build_trajectory(args, depths, H, W, K)
    images, mask = render.render_trajectory(PointCloud(frames, depths, K), traj, mode=args.renderer,
                                            clean_holes=args.clean_holes)
    written = render_outputs(Path(args.out), frames, images, mask, clip.fps)
    return dict(command="render", frames=int(images.shape[0]), size=[H, W], mode=traj.mode,
                radius=round(float(radius), 4), hole_fraction=round(float(mask.mean()), 4),
                seconds=round(time.perf_counter() - t0, 2), outputs=written)


def _estimate_depth(args, frames):
    """Depth [T,H,W] from ``--depth`` (a file) or an estimator folder, mapped as the official code."""
    from . import depth as depth_pkg
    from .conventions import as_depth

    if args.depth:
        return as_depth(_load_depth_file(args.depth, frames), "--depth", like=frames)
    if args.depth_anything:
        estimator = depth_pkg.DepthAnythingEstimator.from_pretrained(args.depth_anything, device=args.device)
    elif args.depthcrafter:
        unet_dir, svd_dir = args.depthcrafter
        estimator = depth_pkg.DepthCrafterEstimator.from_pretrained(unet_dir, svd_dir, device=args.device)
    else:
        raise TrajCrafterError("give depth: --depth FILE, --depth-anything DIR or --depthcrafter UNET_DIR SVD_DIR.")
    return depth_pkg.estimate(frames, estimator)


def cmd_generate(args) -> dict:
    """The whole method: depth → point cloud → render along the path → Ref-DiT diffusion."""
    import torch

    from . import camera, checkpoints, render, video
    from .pointcloud import PointCloud

    t0 = time.perf_counter()
    if not args.download:  # fail before minutes of depth and rendering, naming what is missing
        checkpoints.check_base_dir(args.base_dir)
        checkpoints.resolve_transformer_dir(args.transformer_dir)
    clip = video.read_video(args.video, max_frames=args.frames, skip_first=args.skip_first,
                            every_nth=args.every_nth, max_side=args.max_side)
    frames = clip.frames
    depths = _estimate_depth(args, frames)
    H, W = int(frames.shape[1]), int(frames.shape[2])
    K = camera.official_intrinsics(W, H) if args.fov is None else camera.intrinsics(W, H, fov_degrees=args.fov)
    traj, radius = build_trajectory(args, depths, H, W, K)
    images, mask = render.render_trajectory(PointCloud(frames, depths, K), traj, mode=args.renderer,
                                            clean_holes=args.clean_holes)
    pipe = checkpoints.load_pipeline(args.base_dir, args.transformer_dir, dtype=args.dtype, device=args.device,
                                     scheduler=args.scheduler, download=args.download, offload=args.offload)
    generator = torch.Generator("cpu").manual_seed(args.seed)
    steps = []
    result = pipe(source=frames, render=images, hole_mask=mask, prompt=args.prompt,
                  negative_prompt=args.negative_prompt, num_inference_steps=args.steps,
                  guidance_scale=args.guidance, generator=generator,
                  num_reference_frames=args.reference_frames, reference_from=traj.reference_from,
                  callback=lambda done, total, _latents: steps.append(done), shape_policy="pad")
    # direct mode: the official demo keeps the frames after the camera move (trim_start = cut).
    start = int(getattr(traj, "trim_start", 0) or 0)
    written = render_outputs(Path(args.out), frames[: len(frames) - start], images[start:], mask[start:],
                             clip.fps, extra={"generated": result[start:]})
    return dict(command="generate", frames=int(result.shape[0] - start), size=[H, W], mode=traj.mode,
                radius=round(float(radius), 4), hole_fraction=round(float(mask.mean()), 4),
                steps=len(steps), notes=list(getattr(pipe, "notes", [])),
                seconds=round(time.perf_counter() - t0, 2), outputs=written)


# ----------------------------------------------------------------------------------------------
# Argument parsing
# ----------------------------------------------------------------------------------------------


def _add_camera_args(p: argparse.ArgumentParser) -> None:
    from .camera import PRESET_NAMES

    g = p.add_argument_group("camera path (official parameterisation)")
    g.add_argument("--mode", choices=MODES, default="gradual", help="output-frame schedule (default gradual)")
    g.add_argument("--preset", choices=PRESET_NAMES, default="orbit_left", help="named camera move")
    g.add_argument("--amount", type=float, default=1.0, help="scale of the preset move (negative reverses)")
    g.add_argument("--target-pose", type=float, nargs=5, metavar=("THETA", "PHI", "R", "X", "Y"),
                   help="official target pose; overrides --preset (e.g. 0 -30 0.3 0 0)")
    g.add_argument("--traj-txt", help="official trajectory txt (theta line, phi line, r line)")
    g.add_argument("--radius-scale", type=float, default=1.0, help="official radius_scale (default 1)")
    g.add_argument("--anchor", type=int, default=0, help="anchor frame of the path (official anchor_idx)")
    g.add_argument("--cut", type=int, default=20, help="direct mode: frames the camera moves (official 20)")
    g.add_argument("--focal-end", type=float, help="dolly zoom: final focal in pixels (default keeps the centre size)")
    g.add_argument("--renderer", choices=("official", "zbuffer"), default="official",
                   help="point renderer: official splat (what the model was trained on) or z-buffer")
    g.add_argument("--clean-holes", action="store_true", help="official --mask hole cleanup (5x5 dilation)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trajcrafter", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="render a new camera path for the bundled synthetic clip")
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--frames", type=int, default=25, help="number of frames (default 25)")
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--width", type=int, default=512)
    _add_camera_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("render", help="render a new camera path for a video with known depth")
    p.add_argument("video", help="input video (mp4/mov/webm/mkv/gif)")
    p.add_argument("--depth", required=True, help="depth [T,H,W] as .npy/.npz (larger = farther)")
    p.add_argument("--out", default="out/render")
    p.add_argument("--frames", type=int, default=49, help="frame cap (default 49)")
    p.add_argument("--skip-first", type=int, default=0)
    p.add_argument("--every-nth", type=int, default=1)
    p.add_argument("--max-side", type=int, default=1024)
    p.add_argument("--fov", type=float, help="horizontal field of view in degrees (default: official focal)")
    _add_camera_args(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("generate", help="the whole method: depth, render along the path, Ref-DiT diffusion")
    p.add_argument("video", help="input video (mp4/mov/webm/mkv/gif)")
    p.add_argument("--base-dir", required=True, help="CogVideoX-Fun-V1.1-5b-InP folder (vae/ text_encoder/ tokenizer/ scheduler/)")
    p.add_argument("--transformer-dir", required=True, help="TrajectoryCrafter transformer folder (or its parent with crosstransformer/)")
    p.add_argument("--download", action="store_true", help="fetch missing model files from the Hub first")
    d = p.add_mutually_exclusive_group()
    d.add_argument("--depth", help="depth [T,H,W] as .npy/.npz (larger = farther) instead of an estimator")
    d.add_argument("--depth-anything", metavar="DIR", help="Depth Anything V2 folder or Hub id")
    d.add_argument("--depthcrafter", nargs=2, metavar=("UNET_DIR", "SVD_DIR"), help="DepthCrafter UNet + SVD folders")
    p.add_argument("--prompt", default="", help="what the video shows (the official code captions it with BLIP-2)")
    p.add_argument("--negative-prompt", default=None, help="default: the official negative prompt")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=6.0)
    p.add_argument("--seed", type=int, default=43)
    p.add_argument("--scheduler", default="DDIM_Origin", help="DDIM_Origin, DDIM_Cog, Euler, Euler A, DPM++, PNDM")
    p.add_argument("--reference-frames", type=int, default=10)
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="bf16")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--offload", choices=("none", "model", "block"), default="none", help="memory mode")
    p.add_argument("--out", default="out/generate")
    p.add_argument("--frames", type=int, default=49, help="frame cap (default 49; the model needs 8m+1, others are padded)")
    p.add_argument("--skip-first", type=int, default=0)
    p.add_argument("--every-nth", type=int, default=1)
    p.add_argument("--max-side", type=int, default=672, help="long side (default 672: the official 672x384)")
    p.add_argument("--fov", type=float, help="horizontal field of view in degrees (default: official focal)")
    _add_camera_args(p)
    p.set_defaults(func=cmd_generate)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        summary = args.func(args)
    except TrajCrafterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
