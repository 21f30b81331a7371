"""Command line: ``trajcrafter <command>`` (also ``python -m trajcrafter_core <command>``).

- ``demo``: render a new camera path for the bundled synthetic clip (exact depth, no weights)
  and write ``source.mp4``, ``render.mp4``, ``mask.mp4``, ``target_gt.mp4`` (the exact views)
  and a labelled ``preview.png``.
- ``render``: the same for a video file, with depth from a file (``.npy``/``.npz``, a folder of
  PNGs, a depth video) or an estimator folder.
- ``generate``: the whole method (depth → point cloud → render → Ref-DiT diffusion) from the
  model folders; adds ``generated.mp4``. Clips of any length (``--frames 0`` = all): longer
  ones go through overlapping windows (``--window-frames``, ``--overlap-frames``).
- ``batch``: a JSON-lines manifest of clips × camera paths, resumable, one share per process
  under ``accelerate launch`` (:mod:`trajcrafter_core.batch`).

Every stage goes through :mod:`trajcrafter_core.redirect`, the layer the ComfyUI nodes use, with
the same defaults (clips read at a 1024-px long side, ``keep_aspect`` size policy). Inputs are
checked before any compute, the output folder first; a bad input is one line naming the flag
(exit 2). Progress bars go to stderr; Ctrl-C stops cleanly (exit 130). Outputs appear together
at the end (written to a hidden folder and moved in), so a failure leaves no half-written file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .errors import TrajCrafterError
from .memory import MEMORY_PRESETS
from .sizing import DEFAULT_READ_SIDE, DEFAULT_SIZE_POLICY, SIZE_POLICIES
from .specs import (
    DEPTH_POLARITIES,
    DTYPE_NAMES,
    EASINGS,
    MODE_ALIASES,
    MODES,
    OFFICIAL_DIRECT_CUT,
    OFFLOAD_MODES,
    PRESET_NAMES,
    RENDER_MODES,
    SCHEDULER_CLASSES,
    CameraSpec,
    DepthSpec,
    ModelSpec,
)

#: Modes whose output keeps the source's timing, so the source audio fits (bullet time freezes it).
AUDIO_MODES = ("gradual", "dolly_zoom", "direct")
DEFAULT_PRESET = "orbit_left"


class UsageError(TrajCrafterError):
    """A flag's value is wrong: the message names the flag."""


def _flagged(flag: str, exc: Exception) -> UsageError:
    text = str(exc)
    return UsageError(text if text.startswith(flag) else f"{flag}: {text}")


# ----------------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------------


def _status(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def _bar(desc: str, unit: str):
    """A tqdm bar on stderr; yields ``update(done, total)``."""
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, leave=True, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


# ----------------------------------------------------------------------------------------------
# Checks before compute
# ----------------------------------------------------------------------------------------------


def _check_out(out: str) -> Path:
    """The output folder, made and written to once before any work."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out} is an existing file; give a folder for the outputs.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".trajcrafter-write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc}); choose a folder you can write to.") from None
    return path


def camera_spec_from_args(args) -> CameraSpec:
    """The :class:`CameraSpec` of the camera flags (a preset when no other source is given)."""
    sources = [flag for flag, value in (("--target-pose", args.target_pose), ("--traj-txt", args.traj_txt),
                                         ("--preset", args.preset)) if value is not None]
    if len(sources) > 1:
        raise UsageError(f"give one camera source, not {' and '.join(sources)}.")
    try:
        spec = CameraSpec(
            target_pose=tuple(args.target_pose) if args.target_pose is not None else None,
            preset=args.preset if args.preset is not None else (None if sources else DEFAULT_PRESET),
            amount=args.amount, file=args.traj_txt, mode=args.mode, direct_cut=args.direct_cut,
            anchor=args.anchor, radius_scale=args.radius_scale, focal_end=args.focal_end,
            translation_scale=args.translation_scale, easing=args.easing, zoom=args.zoom,
        )
    except TrajCrafterError as exc:
        flag = {"target pose": "--target-pose", "preset amount": "--amount", "direct cut": "--direct-cut",
                "anchor": "--anchor", "radius scale": "--radius-scale", "focal end": "--focal-end",
                "translation scale": "--translation-scale", "zoom": "--zoom", "easing and zoom": "--easing/--zoom"}
        for key, name in flag.items():
            if str(exc).startswith(key):
                raise _flagged(name, exc) from None
        raise
    if spec.file is not None:
        from . import trajectory_io

        try:  # read now: a bad file is reported before the video is decoded
            trajectory_io.read_camera_file(spec.file, 576, 1024, spec.translation_scale)
        except TrajCrafterError as exc:
            raise _flagged(f"--traj-txt {args.traj_txt}", exc) from None
    return spec


def depth_spec_from_args(args) -> DepthSpec:
    """The :class:`DepthSpec` of ``--depth`` / ``--depth-anything`` / ``--depthcrafter``.

    ``--depth`` takes a file, a PNG folder, a depth video, or an estimator folder (a Depth
    Anything V2 folder runs as the estimator; a DepthCrafter UNet folder needs ``--depthcrafter``).
    """
    from .depth.choice import check_depth_source
    from .model_folders import kind_of

    common = dict(polarity=args.depth_polarity, device=args.device, download=getattr(args, "download", False))
    if args.depth_anything:
        spec, flag = DepthSpec("depth_anything_v2", args.depth_anything, **common), "--depth-anything"
    elif args.depthcrafter:
        spec, flag = DepthSpec("depthcrafter", args.depthcrafter[0], svd_path=args.depthcrafter[1], **common), "--depthcrafter"
    elif args.depth:
        flag = "--depth"
        kind = kind_of(args.depth)
        if kind == "depth_anything":
            spec = DepthSpec("depth_anything_v2", args.depth, **common)
        elif kind == "depthcrafter_unet":
            raise UsageError(f"--depth {args.depth} is a DepthCrafter UNet folder; DepthCrafter also needs the "
                             f"stable-video-diffusion folder: give --depthcrafter {args.depth} SVD_DIR.")
        else:
            spec = DepthSpec("file", args.depth, **common)
    else:
        raise UsageError("give the depth: --depth FILE_OR_FOLDER, --depth-anything DIR or --depthcrafter UNET_DIR SVD_DIR.")
    try:
        check_depth_source(spec, label=flag)
    except TrajCrafterError as exc:
        raise _flagged(flag, exc) from None
    return spec


def _check_video(path: str):
    from . import video

    try:
        return video.probe_video(path)
    except TrajCrafterError as exc:
        raise _flagged(f"video {path}", exc) from None


# ----------------------------------------------------------------------------------------------
# Shared steps
# ----------------------------------------------------------------------------------------------


#: read_video's parameters as the flags that set them (its messages name the parameters).
_READ_FLAGS = {"max_frames": "--frames", "skip_first": "--skip-first", "every_nth": "--every-nth",
               "max_side": "--max-side"}


def _read_clip(args):
    from . import video

    _status(f"reading {args.video} (frames: cap {args.frames or 'all'}, skip {args.skip_first}, every {args.every_nth})")
    try:
        return video.read_video(args.video, max_frames=args.frames or None, skip_first=args.skip_first,
                                every_nth=args.every_nth, max_side=args.max_side or None)
    except TrajCrafterError as exc:
        text = str(exc)
        for name, flag in _READ_FLAGS.items():
            text = text.replace(name, flag)
        raise UsageError(f"video {args.video}: {text}") from None


def _depth(args, spec: DepthSpec, clip):
    from .depth.choice import depth_for_frames, load_estimator

    if spec.estimator == "file":
        _status(f"reading depth {spec.path}")
        try:
            return depth_for_frames(clip.frames, spec, frame_indices=clip.frame_indices, label="--depth")
        except TrajCrafterError as exc:
            raise _flagged("--depth", exc) from None
    _status(f"loading the depth estimator ({spec.estimator})")
    estimator = load_estimator(spec)
    with _bar("depth", "step") as update:
        depth = depth_for_frames(clip.frames, estimator, progress=update, **spec.estimate_options())
    del estimator
    return depth


def _conditions(args, camera: CameraSpec, frames, depths, sample_size=None):
    from . import redirect

    K = redirect.source_intrinsics(int(frames.shape[1]), int(frames.shape[2]), fov=args.fov)
    trajectory = redirect.build_trajectory(camera, depths, K)
    with _bar("render", "frame") as update:
        return redirect.render_conditions(
            frames, depths, trajectory, K, render_mode=args.renderer, clean_holes=args.clean_holes,
            size_policy=args.size_policy, sample_size=sample_size or args.sample_size,
            num_reference_frames=getattr(args, "reference_frames", 10), progress=update)


def _audio(clip, conditions):
    """The source audio of the frames the output keeps, where the mode keeps the source timing."""
    from .audio import clip_audio

    kept = conditions.kept(clip.frames, source=True).shape[0]
    if conditions.mode not in AUDIO_MODES or kept < 1:
        return None
    try:
        return clip_audio(clip, kept)
    except TrajCrafterError:
        return None  # a clip whose sound cannot be decoded still gets its video


def write_outputs(out_dir: Path, conditions, fps: float, extra: Optional[Dict[str, object]] = None,
                  audio=None) -> Dict[str, str]:
    """Write the kept frames of ``conditions`` (source, render, mask), ``extra`` clips (e.g.
    ``generated``) and a labelled ``preview.png``, all at the model's size, and move them into
    ``out_dir`` together. The audio goes with the render and the extra clips."""
    from . import video

    c = conditions
    source, render, mask = c.kept(c.source, source=True), c.kept(c.render), c.kept(c.mask)
    clips = {"source": source, "render": render, "mask": video.mask_to_frames(mask)}
    clips.update(extra or {})
    mid = render.shape[0] // 2
    panels = [("source", source[min(mid, source.shape[0] - 1)]), ("render (holes magenta)",
              video.paint_holes(render[mid][None], mask[mid][None])[0]), ("mask (white = hole)", clips["mask"][mid])]
    panels += [(name, clip[min(mid, clip.shape[0] - 1)]) for name, clip in (extra or {}).items()]
    staging = out_dir / f".partial-{uuid.uuid4().hex[:8]}"
    written = {}
    try:
        for name, clip in clips.items():
            sound = audio if name not in ("mask", "source") else None
            video.write_video(staging / f"{name}.mp4", clip, fps, audio=sound)
            written[name] = f"{name}.mp4"
        video.write_image(staging / "preview.png", video.labelled_panels(panels))
        written["preview"] = "preview.png"
        for name in written.values():
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {k: str(out_dir / v) for k, v in written.items()}


def covered_psnr(pred, target, hole_mask) -> float:
    """PSNR (dB) over covered pixels (hole_mask == 0) of two 0..1 videos."""
    from .official import covered

    seen = covered(hole_mask).unsqueeze(-1).expand_as(pred)
    mse = float(((pred - target)[seen] ** 2).mean()) if bool(seen.any()) else float("nan")
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def _summary(command: str, conditions, started: float, **more) -> dict:
    c = conditions
    return dict(command=command, frames=int(c.kept(c.render).shape[0]), size=list(c.size),
                render_size=list(c.render_size), size_policy=c.size_policy, mode=c.mode,
                radius=round(float(c.trajectory.radius), 4), hole_fraction=round(float(c.mask.mean()), 4),
                **more, seconds=round(time.perf_counter() - started, 2))


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def cmd_demo(args) -> dict:
    from . import synthetic

    started = time.perf_counter()
    for flag, value in (("--height", args.height), ("--width", args.width)):
        if value % 16:
            raise UsageError(f"{flag} {value} must be a multiple of 16 (the model's sides), e.g. {value - value % 16 or 16}.")
    out = _check_out(args.out)
    camera = camera_spec_from_args(args)
    clip = synthetic.example_clip(num_frames=args.frames, height=args.height, width=args.width)
    frames, depths = clip["frames"], clip["depths"]
    H, W = int(frames.shape[1]), int(frames.shape[2])
    conditions = _conditions(args, camera, frames, depths, sample_size=(H, W))
    traj = conditions.trajectory
    # Exact target views of the same schedule: what a perfect generator would produce.
    gt, _ = synthetic.render_target_views(clip["scene"], clip["w2c"][traj.source_index], traj.transforms,
                                          traj.K_dst, H, W, clip["times"][traj.source_index])
    written = write_outputs(out, conditions, clip["fps"], extra={"target_gt": conditions.kept(gt)})
    return _summary("demo", conditions, started, renderer=args.renderer,
                    covered_psnr_db=round(covered_psnr(conditions.render, gt, conditions.mask), 2), outputs=written)


def cmd_render(args) -> dict:
    started = time.perf_counter()
    out = _check_out(args.out)
    _check_video(args.video)
    depth = depth_spec_from_args(args)
    camera = camera_spec_from_args(args)
    clip = _read_clip(args)
    depths = _depth(args, depth, clip)
    conditions = _conditions(args, camera, clip.frames, depths)
    written = write_outputs(out, conditions, clip.fps, audio=_audio(clip, conditions))
    return _summary("render", conditions, started, outputs=written)


def cmd_generate(args) -> dict:
    """The whole method: depth → point cloud → render along the path → Ref-DiT diffusion."""
    from . import checkpoints, redirect
    from .pipeline import TrajectoryCrafterPipeline

    started = time.perf_counter()
    out = _check_out(args.out)
    _check_video(args.video)
    try:
        model = ModelSpec(args.base_dir, args.transformer_dir, dtype=args.dtype, device=args.device,
                          offload=args.offload, scheduler=args.scheduler, download=args.download,
                          memory=args.memory)
    except TrajCrafterError as exc:
        raise _flagged("--memory", exc) from None
    if args.window_frames:
        from .windows import check_window

        try:
            check_window(args.window_frames, args.overlap_frames)
        except TrajCrafterError as exc:
            raise _flagged("--window-frames/--overlap-frames", exc) from None
    if not args.download:  # fail before minutes of depth and rendering, naming what is missing
        checkpoints.ensure_models(model.base_dir, model.transformer_dir)
    depth = depth_spec_from_args(args)
    camera = camera_spec_from_args(args)
    clip = _read_clip(args)
    depths = _depth(args, depth, clip)
    conditions = _conditions(args, camera, clip.frames, depths)
    _status("loading the TrajectoryCrafter model")
    if args.download:
        with _bar("download", "file") as update:
            pipe = TrajectoryCrafterPipeline.from_spec(model, progress=lambda d, t: update(d // 1000, t // 1000))
    else:
        pipe = TrajectoryCrafterPipeline.from_spec(model)
    notes: List[str] = []
    with _bar("sampling", "step") as update:
        result = redirect.generate(pipe, conditions, prompt=args.prompt, negative_prompt=args.negative_prompt,
                                   num_inference_steps=args.steps, guidance_scale=args.guidance, seed=args.seed,
                                   callback=lambda done, total, _latents: update(done, total), notes=notes,
                                   window_frames=args.window_frames or None, overlap_frames=args.overlap_frames)
    written = write_outputs(out, conditions, clip.fps, extra={"generated": conditions.kept(result)},
                            audio=_audio(clip, conditions))
    return _summary("generate", conditions, started, steps=args.steps, notes=conditions.notes + notes,
                    outputs=written)


def cmd_batch(args) -> dict:
    """A manifest of clips × camera paths (see :mod:`trajcrafter_core.batch`): resumable, one
    share per process under ``accelerate launch``; render-only without model folders."""
    from . import batch

    if bool(args.base_dir) != bool(args.transformer_dir):
        raise UsageError("give both --base-dir and --transformer-dir to generate (or neither to render only).")
    default_depth = None
    if args.depth_anything or args.depthcrafter:
        default_depth = depth_spec_from_args(argparse.Namespace(
            depth=None, depth_anything=args.depth_anything, depthcrafter=args.depthcrafter,
            depth_polarity="near_bright", device=args.device, download=args.download))
    load_pipe = None
    if args.base_dir:
        from . import checkpoints
        from .pipeline import TrajectoryCrafterPipeline

        if not args.download:
            checkpoints.ensure_models(args.base_dir, args.transformer_dir)

        def model_spec(device) -> ModelSpec:
            return ModelSpec(args.base_dir, args.transformer_dir, dtype=args.dtype,
                             device=str(device) if device is not None else args.device, offload=args.offload,
                             scheduler=args.scheduler, download=args.download, memory=args.memory)

        try:
            model_spec(None)  # a wrong --memory fails here, before any clip is read
        except TrajCrafterError as exc:
            raise _flagged("--memory", exc) from None

        def load_pipe(device):
            return TrajectoryCrafterPipeline.from_spec(model_spec(device))
    out = _check_out(args.out)
    started = time.perf_counter()
    report = batch.run_batch(args.manifest, out, load_pipe=load_pipe, default_depth=default_depth,
                             batch_size=args.batch_size or None, status=_status)
    return dict(command="batch", generated=load_pipe is not None, **report,
                seconds=round(time.perf_counter() - started, 2))


# ----------------------------------------------------------------------------------------------
# Argument parsing
# ----------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """One line per usage error, naming the flag (argparse's own wording), no usage dump."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    pass


def _int_at_least(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({what})") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is too small; {what} must be >= {low}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a number > 0")
    return value


def _add_video_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="input video (mp4/mov/webm/mkv/gif/...)")
    g = p.add_argument_group("frames")
    g.add_argument("--frames", type=_int_at_least(0, "the frame cap"), default=49,
                   help="most frames to use (0 = all; the model takes 8m+1, others are padded and trimmed back)")
    g.add_argument("--skip-first", type=_int_at_least(0, "frames to skip"), default=0, help="source frames to skip")
    g.add_argument("--every-nth", type=_int_at_least(1, "the stride"), default=1,
                   help="take every n-th source frame (official --stride; run.sh uses 2)")
    g.add_argument("--max-side", type=_int_at_least(0, "the long side"), default=DEFAULT_READ_SIDE,
                   help="long side the clip is read, estimated and rendered at (0 = source size; official 1024)")


def _add_memory_arg(group) -> None:
    group.add_argument("--memory", default=None, metavar="PRESET",
                       help="memory preset for a card size, sets --offload and the VAE/fp8 options: "
                            + " | ".join(f"{name.replace(' ', '').lower()} = {preset.summary}"
                                         for name, preset in MEMORY_PRESETS.items()))


def _add_camera_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("camera path (official parameterisation)")
    g.add_argument("--mode", choices=list(MODES) + sorted(MODE_ALIASES), default="gradual", help="output-frame schedule")
    g.add_argument("--preset", choices=PRESET_NAMES, default=None,
                   help=f"named camera move (used when no --target-pose / --traj-txt is given: {DEFAULT_PRESET})")
    g.add_argument("--amount", type=float, default=1.0, help="scale of the preset move in [-2, 2] (negative reverses)")
    g.add_argument("--target-pose", type=float, nargs=5, metavar=("THETA", "PHI", "R", "X", "Y"),
                   help="official target pose, e.g. 0 -30 0.3 0 0 (|theta|,|phi| <= 60, |r| <= 0.6, |x|,|y| <= 4)")
    g.add_argument("--traj-txt", "--trajectory", dest="traj_txt", metavar="FILE",
                   help="trajectory file: official txt (theta/phi/r lines), RealEstate10K txt, nerfstudio "
                        "camera_path.json or a saved trajectory JSON")
    g.add_argument("--radius-scale", type=float, default=1.0, help="orbit centre = centre depth x this (official radius_scale)")
    g.add_argument("--anchor", type=int, default=0, help="camera of the path that is the source camera (official anchor_idx)")
    g.add_argument("--direct-cut", "--cut", dest="direct_cut", type=int, default=OFFICIAL_DIRECT_CUT,
                   help="direct mode: frames the camera moves over the first frame")
    g.add_argument("--focal-end", type=_positive_float, default=None,
                   help="dolly zoom: final focal in pixels at the render size (default keeps the centre's size)")
    g.add_argument("--easing", choices=EASINGS, default="linear",
                   help="how a target pose or preset ramps: linear (official) or ease_in_out (starts and stops at rest)")
    g.add_argument("--zoom", type=_positive_float, default=1.0,
                   help="final focal length x this, ramped with the path (target pose or preset)")
    g.add_argument("--translation-scale", type=_positive_float, default=1.0,
                   help="RealEstate10K / nerfstudio files: multiplies their translations into depth units")
    g.add_argument("--fov", type=_positive_float, default=None,
                   help="horizontal field of view of the source camera in degrees (default: official focal 500 px at 1024 px)")
    r = p.add_argument_group("rendering and size")
    r.add_argument("--renderer", choices=RENDER_MODES, default="official",
                   help="point renderer: official splat (what the model was trained on) or z-buffer")
    r.add_argument("--clean-holes", action=argparse.BooleanOptionalAction, default=True,
                   help="official --mask hole cleanup (5x5 dilation; on in the official run.sh)")
    r.add_argument("--size-policy", choices=SIZE_POLICIES, default=DEFAULT_SIZE_POLICY,
                   help="model size: official = 384x672 for every clip; keep_aspect = about as many pixels at "
                        "the clip's aspect (384x672 for 16:9)")
    r.add_argument("--sample-size", type=_int_at_least(16, "a side"), nargs=2, metavar=("H", "W"), default=None,
                   help="model size (multiples of 16); overrides --size-policy")


def _add_depth_args(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("depth")
    d = g.add_mutually_exclusive_group(required=required)
    d.add_argument("--depth", metavar="PATH",
                   help="depth you bring: .npy/.npz z-depth (larger = farther), a folder of 8/16-bit PNGs or a "
                        "depth video (grey maps, see --depth-polarity), or a Depth Anything V2 folder")
    d.add_argument("--depth-anything", metavar="DIR", help="Depth Anything V2 folder (transformers layout)")
    d.add_argument("--depthcrafter", nargs=2, metavar=("UNET_DIR", "SVD_DIR"),
                   help="DepthCrafter UNet folder + stable-video-diffusion-img2vid-xt folder (official depth)")
    g.add_argument("--depth-polarity", choices=DEPTH_POLARITIES, default="near_bright",
                   help="grey depth maps (PNGs, depth video): near_bright = disparity-like, far_bright = depth-like")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trajcrafter", description=__doc__.split("\n\n")[0], formatter_class=_Help)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="render a new camera path for the bundled synthetic clip", formatter_class=_Help)
    p.add_argument("--out", default="out/demo", help="output folder")
    p.add_argument("--frames", type=_int_at_least(2, "the frame count"), default=25, help="number of frames")
    p.add_argument("--height", type=_int_at_least(16, "the height"), default=288, help="frame height (multiple of 16)")
    p.add_argument("--width", type=_int_at_least(16, "the width"), default=512, help="frame width (multiple of 16)")
    p.add_argument("--device", default=None, help=argparse.SUPPRESS)
    _add_camera_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("render", help="render a new camera path for a video (depth from a file or an estimator)",
                       formatter_class=_Help)
    _add_video_args(p)
    _add_depth_args(p, required=True)
    p.add_argument("--device", default=None, help="depth estimator device (default: cuda if available)")
    p.add_argument("--out", default="out/render", help="output folder")
    _add_camera_args(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("generate", help="the whole method: depth, render along the path, Ref-DiT diffusion",
                       formatter_class=_Help)
    _add_video_args(p)
    m = p.add_argument_group("model")
    m.add_argument("--base-dir", required=True, help="CogVideoX-Fun-V1.1-5b-InP folder (vae/ text_encoder/ tokenizer/ scheduler/)")
    m.add_argument("--transformer-dir", required=True, help="TrajectoryCrafter transformer folder (or its parent with crosstransformer/)")
    m.add_argument("--download", action="store_true", help="fetch missing model files from the Hugging Face Hub first")
    m.add_argument("--dtype", choices=DTYPE_NAMES, default="bf16", help="weights and compute precision")
    m.add_argument("--device", default=None, help="where models run (default: cuda if available, else cpu)")
    m.add_argument("--offload", choices=OFFLOAD_MODES, default="none", help="memory mode")
    _add_memory_arg(m)
    _add_depth_args(p, required=True)
    s = p.add_argument_group("sampling")
    s.add_argument("--prompt", default="", help="what the video shows (the official code captions it with BLIP-2)")
    s.add_argument("--negative-prompt", default=None, help="what to avoid (default: the official negative prompt)")
    s.add_argument("--steps", type=_int_at_least(1, "the step count"), default=50, help="denoising steps")
    s.add_argument("--guidance", type=float, default=6.0, help="classifier-free guidance scale")
    s.add_argument("--seed", type=_int_at_least(0, "the seed"), default=43, help="noise seed (official 43)")
    s.add_argument("--scheduler", choices=list(SCHEDULER_CLASSES), default="DDIM_Origin", help="sampler (official name)")
    s.add_argument("--reference-frames", type=_int_at_least(1, "the reference count"), default=10,
                   help="source frames the model cross-attends to")
    s.add_argument("--window-frames", type=_int_at_least(0, "the window length"), default=49,
                   help="longer clips are generated in overlapping windows of this many frames (8m+1; 0 = the whole "
                        "clip at once)")
    s.add_argument("--overlap-frames", type=_int_at_least(1, "the overlap"), default=None,
                   help="frames each window shares with the one before (default about a quarter window: 13 for 49)")
    p.add_argument("--out", default="out/generate", help="output folder")
    _add_camera_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("batch", formatter_class=_Help,
                       help="a JSON-lines manifest of clips x camera paths: resumable, one share per process "
                            "under accelerate launch (see trajcrafter_core/batch.py for the line format)")
    p.add_argument("manifest", help="manifest .jsonl: one clip per line with its camera paths and options")
    p.add_argument("--out", default="out/batch", help="output folder (one folder per clip and camera path)")
    m = p.add_argument_group("model (leave out to render only)")
    m.add_argument("--base-dir", default=None, help="CogVideoX-Fun-V1.1-5b-InP folder")
    m.add_argument("--transformer-dir", default=None, help="TrajectoryCrafter transformer folder")
    m.add_argument("--download", action="store_true", help="fetch missing model files from the Hugging Face Hub first")
    m.add_argument("--dtype", choices=DTYPE_NAMES, default="bf16", help="weights and compute precision")
    m.add_argument("--device", default=None, help="device of a single process (accelerate sets one per process)")
    m.add_argument("--offload", choices=OFFLOAD_MODES, default="none", help="memory mode")
    _add_memory_arg(m)
    m.add_argument("--scheduler", choices=list(SCHEDULER_CLASSES), default="DDIM_Origin", help="sampler (official name)")
    m.add_argument("--batch-size", type=_int_at_least(0, "the batch size"), default=0,
                   help="camera paths of a clip per transformer batch (0 = all, halved when CUDA memory runs out)")
    d = p.add_argument_group("default depth (for lines that name none)")
    dd = d.add_mutually_exclusive_group()
    dd.add_argument("--depth-anything", metavar="DIR", help="Depth Anything V2 folder")
    dd.add_argument("--depthcrafter", nargs=2, metavar=("UNET_DIR", "SVD_DIR"), help="DepthCrafter + SVD folders")
    p.set_defaults(func=cmd_batch)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        # stdout carries the summary JSON alone (scripts parse it); whatever a library prints
        # while we work (e.g. DeepSpeed announcing its accelerator) goes to stderr with the logs
        with contextlib.redirect_stdout(sys.stderr):
            summary = args.func(args)
    except TrajCrafterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped (Ctrl-C); no output was written.", file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
