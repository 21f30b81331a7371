"""Training-sample builders: double reprojection of monocular videos, multi-view triplets of
posed static sequences, and the sharded job driver both preparation scripts use.

Every clip is brought to the *render size* by a centre crop to the target aspect ratio and a
resize (antialiased bilinear for colour, nearest for depth so no depth is blended across
edges); intrinsics follow exactly. Renders are made at that size and then resized to the
training size exactly as inference does it (:mod:`trajcrafter_core.redirect`: frames and renders
bilinear, masks nearest): the render size is the inference read size for the training size
(:func:`trajcrafter_core.sizing.read_size_for`, 576x1024 for 384x672), so the model learns the
crack and hole statistics it is shown at inference. Every random choice is seeded by ``(seed,
item index, clip index)``, so the same corpus gives the same samples however it is split into jobs.
"""

from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from trajcrafter_core.camera import official_intrinsics, rescale_intrinsics
from trajcrafter_core.errors import MissingFilesError, TrajCrafterError
from trajcrafter_core.official import is_hole
from trajcrafter_core.redirect import resize_mask, resize_video
from trajcrafter_core.sizing import DEFAULT_READ_SIDE, read_size_for

from .checkpointing import write_text_atomic
from .shards import Sample, ShardSeriesWriter
from .video_codec import DEFAULT_CODEC

# ---------------------------------------------------------------------------------------
# Clip geometry
# ---------------------------------------------------------------------------------------


def fit_clip(frames: torch.Tensor, depths: torch.Tensor, K: torch.Tensor, height: int, width: int,
             valid: Optional[torch.Tensor] = None):
    """Centre-crop to ``width/height`` aspect, resize to ``height x width``; returns
    ``(frames [T,h,w,3], depths [T,h,w], K [T,3,3], valid or None)``."""
    from trajcrafter_core.video import resize_frames

    T, H, W = depths.shape
    K = K.expand(T, 3, 3) if K.ndim == 2 or K.shape[0] == 1 else K
    target = width / height
    if W / H > target:  # too wide: crop columns
        cw, ch = max(1, round(H * target)), H
    else:
        cw, ch = W, max(1, round(W / target))
    left, top = (W - cw) // 2, (H - ch) // 2
    frames = frames[:, top:top + ch, left:left + cw]
    depths = depths[:, top:top + ch, left:left + cw]
    K = K.double().clone()
    K[:, 0, 2] -= left
    K[:, 1, 2] -= top
    if valid is not None:
        valid = valid[:, top:top + ch, left:left + cw]
    if (ch, cw) != (height, width):
        frames = resize_frames(frames, height, width)
        depths = F.interpolate(depths[:, None], size=(height, width), mode="nearest-exact")[:, 0]
        if valid is not None:
            valid = F.interpolate(valid[:, None].float(), size=(height, width), mode="nearest-exact")[:, 0] > 0.5
        K = rescale_intrinsics(K, (ch, cw), (height, width))
    return frames.contiguous(), depths.contiguous(), K.float(), valid


def item_generator(seed: int, *ids) -> torch.Generator:
    """A generator seeded from ``seed`` and item ids (stable across processes and splits)."""
    key = json.dumps([seed, *ids]).encode("utf-8")
    return torch.Generator().manual_seed(zlib.crc32(key) * 2654435761 % (2**63))


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8)


def sample_key(*parts) -> str:
    return "_".join(str(p) for p in parts).replace(".", "-").replace("/", "-").replace(" ", "-")


# ---------------------------------------------------------------------------------------
# Monocular videos with depth (double reprojection)
# ---------------------------------------------------------------------------------------


@dataclass
class VideoItem:
    """One manifest line: a video (file or frames tensor) with per-frame depth."""

    id: str
    video: str
    depth: str
    prompt: str = ""
    intrinsics: Optional[List[List[float]]] = None  # at the video's own size; default official
    frames: Optional[torch.Tensor] = None  # in-memory alternative to ``video`` (tests, synthetic)
    depths: Optional[torch.Tensor] = None


MANIFEST_KEYS = {"id", "video", "depth", "prompt", "intrinsics"}


def iter_json_lines(path: Path) -> Iterator[Tuple[int, object]]:
    """``(line number, parsed value)`` of each non-blank line of a JSON-lines manifest; raises
    :class:`MissingFilesError` if the file is missing and :class:`TrajCrafterError` naming the
    line if one is not JSON."""
    if not path.is_file():
        raise MissingFilesError(f"manifest {path} does not exist.")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrajCrafterError(f"{path}:{n} is not JSON: {exc}") from None
        yield n, entry


def read_manifest(path: str | Path) -> List[VideoItem]:
    """JSON-lines manifest: ``{"video": ..., "depth": ..., "prompt": ..., "id"?, "intrinsics"?}``.

    Relative paths are relative to the manifest's folder.
    """
    path = Path(path)
    items = []
    for n, entry in iter_json_lines(path):
        unknown = set(entry) - MANIFEST_KEYS
        if unknown or "video" not in entry:
            raise TrajCrafterError(f"{path}:{n}: needs 'video' (and 'depth'); unknown keys {sorted(unknown)}; "
                                   f"allowed {sorted(MANIFEST_KEYS)}.")
        if not entry.get("depth"):
            raise MissingFilesError(f"{path}:{n}: video {entry['video']} has no 'depth' file; every video needs "
                                    f"per-frame depth (e.g. DepthCrafter mapped by trajcrafter_core.depth).")
        items.append(VideoItem(id=str(entry.get("id", Path(entry["video"]).stem)),
                               video=str(path.parent / entry["video"]), depth=str(path.parent / entry["depth"]),
                               prompt=str(entry.get("prompt", "")), intrinsics=entry.get("intrinsics")))
    return items


def load_depth_file(path: str | Path) -> torch.Tensor:
    """``[T, H, W]`` float32 depth from ``.npy``, ``.npz`` (key ``depth`` or the only array) or
    ``.safetensors`` (key ``depth``)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFilesError(f"depth file {path} is missing; every video needs per-frame depth.")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arr = z["depth"] if "depth" in z.files else z[z.files[0]]
        elif path.suffix == ".safetensors":
            from safetensors.torch import load_file

            arr = load_file(str(path))["depth"].numpy()
        else:
            raise TrajCrafterError(f"depth file {path}: use .npy, .npz or .safetensors (no pickles).")
    except (ValueError, OSError, KeyError) as exc:
        raise TrajCrafterError(f"depth file {path} cannot be read: {exc}") from None
    return torch.from_numpy(np.asarray(arr, dtype=np.float32))


def _too_short(item: VideoItem, what: str, have: int, need: int, count: int, stride: int, start: int) -> TrajCrafterError:
    return TrajCrafterError(
        f"{what} of {item.video or item.id} has {have} frames but the clip needs {need} ({count} frames, "
        f"stride {stride}, from frame {start}); use shorter clips (--num-frames/--stride) or skip this video."
    )


def load_video_item(item: VideoItem, start: int, count: int, stride: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frames ``[count,H,W,3]`` (0..1), depth ``[count,H,W]`` and K ``[3,3]`` of frames
    ``start, start + stride, ...``; raises if the video or its depth is too short."""
    need = start + (count - 1) * stride + 1
    if item.frames is not None or item.video.endswith(".safetensors"):
        if item.frames is not None:
            frames_all = item.frames
        else:
            from safetensors.torch import load_file

            frames_all = load_file(item.video)["frames"]
        if frames_all.shape[0] < need:
            raise _too_short(item, "video", int(frames_all.shape[0]), need, count, stride, start)
        frames = frames_all[start:need:stride]
    else:
        from trajcrafter_core.video import read_video

        clip = read_video(item.video, max_frames=count, skip_first=start, every_nth=stride, size_multiple=1)
        frames = clip.frames
        if frames.shape[0] < count:
            have = clip.source_frame_count if clip.source_frame_count is not None else start + frames.shape[0] * stride
            raise _too_short(item, "video", int(have), need, count, stride, start)
    if frames.dtype == torch.uint8:
        frames = frames.float() / 255.0
    depth_all = item.depths if item.depths is not None else load_depth_file(item.depth)
    if depth_all.ndim != 3:
        raise TrajCrafterError(f"depth {item.depth} must be [T, H, W], got {list(depth_all.shape)}.")
    if depth_all.shape[0] < need:
        raise _too_short(item, "depth", int(depth_all.shape[0]), need, count, stride, start)
    depths = depth_all[start:need:stride].float()
    if depths.shape[1:] != frames.shape[1:3]:
        depths = F.interpolate(depths[:, None], size=tuple(frames.shape[1:3]), mode="nearest-exact")[:, 0]
    H, W = frames.shape[1:3]
    K = torch.tensor(item.intrinsics, dtype=torch.float32) if item.intrinsics else official_intrinsics(W, H)
    return frames.float(), depths, K


@dataclass
class ClipOptions:
    """What every sample builder shares: clip length, training size, frame stride, renderer
    mode (as at inference) with its hole clean-up, the long side renders are made at before
    they are resized to the training size (the inference read size; 0 = render at the training
    size), the seed of every random choice, and the device clips are rendered on (the renderers
    are plain torch: a GPU renders a paper-size clip in a fraction of the CPU's time)."""

    num_frames: int = 49
    height: int = 384
    width: int = 672
    stride: int = 1
    mode: str = "official"
    clean_holes: bool = False
    render_long_side: int = DEFAULT_READ_SIDE
    seed: int = 0
    device: str = "auto"  # where clips are resized and rendered: "auto" = CUDA when available

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def render_size(self) -> Tuple[int, int]:
        """``(height, width)`` clips are rendered at: 576x1024 for the official 384x672."""
        if not self.render_long_side:
            return self.height, self.width
        return read_size_for((self.height, self.width), self.render_long_side)

    def to_training_size(self, video: torch.Tensor) -> torch.Tensor:
        """A render-size video ``[T, H, W, 3]`` (or mask ``[T, H, W]``) at the training size, as
        inference resizes it."""
        size = (self.height, self.width)
        return resize_video(video, size) if video.ndim == 4 else resize_mask(video.float(), size)


@dataclass
class DoubleReprojectionOptions(ClipOptions):
    clips_per_video: int = 1
    theta: float = 40.0
    phi: float = 45.0
    r: float = 0.5
    xy: float = 0.1


def double_reprojection_samples(item: VideoItem, index: int, opts: DoubleReprojectionOptions) -> Iterator[Sample]:
    """``clips_per_video`` double-reprojection samples of one video (clip starts spread evenly)."""
    from trajcrafter_core.reprojection import MoveRanges, double_reprojection, sample_relative_move

    ranges = MoveRanges(theta=opts.theta, phi=opts.phi, r=opts.r, xy=opts.xy)
    span = (opts.num_frames - 1) * opts.stride + 1
    total = _frame_count(item)
    if total is not None and total < span:
        raise TrajCrafterError(
            f"video {item.video or item.id} has {total} frames but the clip needs {span} ({opts.num_frames} frames, "
            f"stride {opts.stride}); use shorter clips or skip this video."
        )
    starts = [0] if total is None or opts.clips_per_video == 1 else \
        np.linspace(0, total - span, opts.clips_per_video).round().astype(int).tolist()
    device = opts.torch_device
    for clip, start in enumerate(starts):
        frames, depths, K = load_video_item(item, int(start), opts.num_frames, opts.stride)
        frames, depths, K, _ = fit_clip(frames.to(device), depths.to(device), K.to(device), *opts.render_size)
        gen = item_generator(opts.seed, "double_reprojection", item.id, clip)
        move = sample_relative_move(depths, ranges, gen)
        result = double_reprojection(frames, depths, K, move.transforms(opts.num_frames).to(device), mode=opts.mode,
                                     clean_holes=opts.clean_holes)
        frames, render, holes = (opts.to_training_size(x).cpu() for x in (frames, result.render, result.hole_mask))
        yield Sample(
            key=sample_key("dr", item.id, clip),
            meta={"kind": "double_reprojection", "prompt": item.prompt, "source": item.video or item.id,
                  "start": int(start), "stride": opts.stride, "render_mode": opts.mode,
                  "move": {"theta": move.theta, "phi": move.phi, "r": move.r, "x": move.x, "y": move.y,
                           "radius": move.radius},
                  "render_size": list(opts.render_size), "hole_fraction": float(holes.mean())},
            video={"target": to_uint8(frames), "render": to_uint8(render), "mask": is_hole(holes).to(torch.uint8)},
        )


def _frame_count(item: VideoItem) -> Optional[int]:
    """Frames of the item's video: decoded, not the container's count, which can promise a frame
    that never decodes (``0-NNvgaTcVzAG0-r.mp4`` reports 146 and decodes 145); clip starts spread
    over a promised frame would ask for a frame that is not there."""
    if item.frames is not None:
        return int(item.frames.shape[0])
    if item.video.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(item.video, "pt") as fh:
            return int(fh.get_slice("frames").get_shape()[0])
    return decoded_frame_count(item.video)


def decoded_frame_count(path: str | Path) -> int:
    """How many frames of the video file ``path`` decode (decodes them all, converts none)."""
    import av

    from trajcrafter_core.video import probe_video

    probe_video(path)  # a missing or unreadable file: the video module's message
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return sum(1 for _ in container.decode(stream))
    except av.FFmpegError as exc:
        raise TrajCrafterError(f"{path} is damaged: decoding failed ({exc}); re-encode or skip it.") from None


# ---------------------------------------------------------------------------------------
# Posed static sequences (multi-view triplets)
# ---------------------------------------------------------------------------------------


@dataclass
class TripletOptions(ClipOptions):
    clips_per_sequence: int = 1
    min_offset: int = 4  # frames between source and target clip starts (either direction)
    max_offset: int = 30
    min_coverage: float = 0.3  # fraction of target pixels the render must cover
    max_coverage: float = 0.98  # ... and leave uncovered at least this much (not a copy)
    attempts: int = 8


def triplet_samples(sequence, index: int, opts: TripletOptions, prompt: str = "",
                    seq_id: Optional[str] = None) -> Iterator[Sample]:
    """Triplets ``(source, target, render, mask)`` from a :class:`~training.posed.PosedSequence`.

    Source clip frames ``a + k·stride``, target clip ``b + k·stride`` with ``|b − a|`` in
    ``[min_offset, max_offset]``; source frame ``k``'s points are rendered into target camera
    ``k``. A pair is kept when the render covers between ``min_coverage`` and ``max_coverage``
    of the target (the clips overlap but are not the same view); up to ``attempts`` draws.
    """
    from trajcrafter_core.reprojection import render_between_cameras

    seq_id = seq_id or sequence.name
    span = (opts.num_frames - 1) * opts.stride + 1
    n = len(sequence)
    if n < span + opts.min_offset:
        raise TrajCrafterError(
            f"sequence {seq_id} has {n} frames; a source and a target clip of {opts.num_frames} frames "
            f"(stride {opts.stride}) at least {opts.min_offset} frames apart need {span + opts.min_offset}."
        )
    for clip in range(opts.clips_per_sequence):
        gen = item_generator(opts.seed, "triplet", seq_id, clip)
        best = None
        for attempt in range(opts.attempts):
            a = int(torch.randint(0, n - span + 1, (1,), generator=gen))
            lo, hi = opts.min_offset, min(opts.max_offset, n - span)
            offset = int(torch.randint(lo, hi + 1, (1,), generator=gen)) if hi >= lo else lo
            sign = 1 if bool(torch.rand(1, generator=gen) < 0.5) else -1
            b = a + sign * offset
            if not 0 <= b <= n - span:
                b = a - sign * offset
            if not 0 <= b <= n - span:
                continue
            src = sequence.load(range(a, a + span, opts.stride), *_load_size(sequence, opts))
            dst = sequence.load(range(b, b + span, opts.stride), *_load_size(sequence, opts))
            dev = opts.torch_device
            s_frames, s_depth, s_K, s_valid = fit_clip(src.frames.to(dev), src.depths.to(dev), src.intrinsics.to(dev),
                                                       *opts.render_size, valid=src.depths.to(dev) > 0)
            t_frames, _, t_K, _ = fit_clip(dst.frames.to(dev), dst.depths.to(dev), dst.intrinsics.to(dev),
                                           *opts.render_size)
            s_depth = torch.where(s_valid, s_depth, torch.zeros_like(s_depth))
            render, holes = render_between_cameras(s_frames, s_depth, s_K, src.cam_to_world.to(dev), t_K,
                                                   dst.cam_to_world.to(dev), mode=opts.mode, valid=s_valid,
                                                   clean_holes=opts.clean_holes)
            coverage = 1.0 - float(holes.mean())
            if opts.min_coverage <= coverage <= opts.max_coverage:
                s_frames, t_frames, render, holes = (opts.to_training_size(x).cpu()
                                                     for x in (s_frames, t_frames, render, holes))
                best = (a, b, s_frames, t_frames, render, holes, coverage)
                break
        if best is None:
            print(f"[triplets] {seq_id} clip {clip}: no source/target pair with coverage in "
                  f"[{opts.min_coverage}, {opts.max_coverage}] after {opts.attempts} draws; skipped.", file=sys.stderr)
            continue
        a, b, s_frames, t_frames, render, holes, coverage = best
        yield Sample(
            key=sample_key("mv", seq_id, clip),
            meta={"kind": "triplet", "prompt": prompt, "source": seq_id, "source_start": a, "target_start": b,
                  "stride": opts.stride, "render_mode": opts.mode, "render_size": list(opts.render_size),
                  "coverage": coverage},
            video={"target": to_uint8(t_frames), "render": to_uint8(render),
                   "mask": is_hole(holes).to(torch.uint8), "reference": to_uint8(s_frames)},
        )


def _load_size(sequence, opts) -> Tuple[int, int]:
    """Load frames at a size that covers the crop at the training size without upsampling much."""
    fr = sequence.frames[0]
    height, width = opts.render_size
    scale = max(height / fr.height, width / fr.width)
    return max(height, round(fr.height * scale)), max(width, round(fr.width * scale))


# ---------------------------------------------------------------------------------------
# Sharded job driver
# ---------------------------------------------------------------------------------------


def check_shard_args(shard: int, num_shards: int) -> None:
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise TrajCrafterError(f"--shard must be in [0, --num-shards) with --num-shards >= 1, got {shard} of {num_shards}.")


@dataclass
class JobReport:
    shards: List[str] = field(default_factory=list)
    samples: int = 0
    skipped: List[Dict] = field(default_factory=list)


def run_sharded_job(items: Sequence, make_samples: Callable[[object, int], Iterable[Sample]], out_dir: str | Path,
                    prefix: str, shard: int, num_shards: int, samples_per_shard: int = 256,
                    on_error: str = "raise", describe: Callable[[object], str] = str,
                    video_codec: str = DEFAULT_CODEC) -> JobReport:
    """Process items ``shard, shard + num_shards, ...`` into tar shards
    ``<out_dir>/<prefix>-<shard>-of-<num_shards>-<part>.tar`` plus a JSON report.

    An item's samples are written only once all of them are made, so an item is in the shards
    whole or not at all. ``on_error="raise"``: the first bad item aborts the job and removes
    every shard it wrote (re-run the job after fixing the input); ``"skip"``: bad items are
    reported and skipped.
    """
    check_shard_args(shard, num_shards)
    if on_error not in ("raise", "skip"):
        raise TrajCrafterError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{prefix}-{shard:05d}-of-{num_shards:05d}"
    writer = ShardSeriesWriter(out_dir / stem, samples_per_shard, video_codec)
    report = JobReport()
    try:
        for index in range(shard, len(items), num_shards):
            item = items[index]
            try:
                samples = list(make_samples(item, index))
                for sample in samples:
                    writer.write(sample)
                    report.samples += 1
            except TrajCrafterError as exc:
                if on_error == "raise":
                    raise TrajCrafterError(f"{describe(item)}: {exc}") from None
                report.skipped.append({"item": describe(item), "error": str(exc)})
                print(f"[{prefix}] skipped {describe(item)}: {exc}", file=sys.stderr)
        report.shards = [str(p) for p in writer.close()]
    except BaseException:
        writer.abort()
        for p in writer.paths:
            Path(p).unlink(missing_ok=True)
        raise
    write_text_atomic(out_dir / f"{stem}.json", json.dumps(
        {"shards": report.shards, "samples": report.samples, "skipped": report.skipped}, indent=1))
    return report
