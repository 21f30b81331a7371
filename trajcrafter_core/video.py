"""Video and image files in and out: frame selection, aspect-preserving size buckets, previews.

Reading (:func:`read_video`, :func:`probe_video`) uses PyAV (FFmpeg), so every container and
codec FFmpeg decodes works: mp4, mov, webm, mkv, gif, ... Frames come back as the pack's
``float32 [T, H, W, 3]`` in ``0..1`` (see :mod:`.conventions`).

- **Selection**: source frames ``skip_first, skip_first + every_nth, ...``, at most
  ``max_frames`` of them. Decoding is sequential and stops as soon as the last wanted frame is
  decoded; only the selected frames are converted to RGB, resized and kept.
- **Size**: frames are resized to :func:`fit_size` of the *display* size (after the
  container's rotation and the pixel aspect ratio). The aspect ratio is kept as closely as
  multiples of ``size_multiple`` allow; nothing is squashed to a fixed size.
- **Colour**: YUV→RGB uses the stream's tagged matrix and range; untagged streams get FFmpeg's
  defaults (BT.601, limited range for ``yuv*``, full range for ``yuvj*``), the same conversion the
  official decord-based loader gets.

Writing (:func:`write_video`) produces browser-playable H.264 mp4 (``libx264``, ``yuv420p``,
BT.709 tagged, ``+faststart``); :func:`write_image` writes PNG/JPG. Both write to a temporary
file next to the destination and ``os.replace`` it, so a failure never leaves a half-written
file. Every problem with an input file or option raises :class:`TrajCrafterError`.
"""

from __future__ import annotations

import math
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .conventions import as_frames
from .errors import MissingFilesError, TrajCrafterError

__all__ = [
    "VideoInfo",
    "VideoClip",
    "probe_video",
    "read_video",
    "fit_size",
    "resize_frames",
    "write_video",
    "write_image",
    "side_by_side",
    "depth_to_frames",
    "mask_to_frames",
    "HOLE_COLOR",
    "paint_holes",
    "labelled_panels",
    "VIDEO_EXTENSIONS",
    "H264_ENCODER",
]

PathLike = Union[str, os.PathLike]

#: File extensions the loader lists as videos (anything FFmpeg opens is read, though).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif")
#: The H.264 encoder :func:`write_video` uses (bundled with PyAV's FFmpeg build).
H264_ENCODER = "libx264"
_IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
_MP4_EXTENSIONS = (".mp4", ".m4v", ".mov")


def _av():
    try:
        import av  # noqa: F401  (PyAV; ComfyUI itself depends on it)
    except ImportError as exc:  # pragma: no cover - av is a dependency
        raise TrajCrafterError(
            "PyAV (the `av` package) is needed to read and write video; install it with "
            "`pip install av`."
        ) from exc
    return av


# ----------------------------------------------------------------------------------------------
# Metadata
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read from its headers without decoding the frames.

    ``width`` / ``height`` are the *display* size: after the container's rotation (multiples of
    90°) and the pixel aspect ratio; ``coded_width`` / ``coded_height`` are the stored size.
    ``frame_count`` comes from the container index (``frame_count_from_index``) or
    ``duration × fps``; it is an estimate (headers can be off by a frame) and ``None`` when the
    file gives neither.
    """

    path: str
    width: int
    height: int
    fps: float
    frame_count: Optional[int]
    duration: Optional[float]
    codec: str
    container: str
    pix_fmt: str
    rotation: int = 0
    coded_width: int = 0
    coded_height: int = 0
    fps_known: bool = True
    frame_count_from_index: bool = False

    @property
    def size(self) -> Tuple[int, int]:
        """``(width, height)`` as displayed."""
        return self.width, self.height


@dataclass
class VideoClip:
    """Frames read by :func:`read_video` plus where they came from.

    - ``frames``: ``float32 [T, H, W, 3]`` in 0..1.
    - ``fps``: frame rate of the *selected* frames (``source_fps / every_nth``).
    - ``source_fps``, ``source_size`` (``(W, H)`` as displayed), ``source_frame_count``: the file.
      ``source_frame_count`` is exact (``source_frame_count_exact``) when decoding ran to the end,
      otherwise the header's estimate (``None`` if unknown).
    - ``frame_indices``: source frame index of each returned frame.
    """

    frames: torch.Tensor
    fps: float
    source_fps: float
    source_size: Tuple[int, int]
    source_frame_count: Optional[int]
    source_frame_count_exact: bool
    frame_indices: List[int] = field(default_factory=list)
    path: str = ""
    info: Optional[VideoInfo] = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> Tuple[int, int]:
        """``(width, height)`` of the returned frames."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def _check_input_path(path: PathLike, what: str = "video") -> Path:
    if path is None or str(path) == "":
        raise TrajCrafterError(f"No {what} file given; pass the path of a {what} file.")
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        raise MissingFilesError(
            f"{what.capitalize()} file not found: {p}. Check the path (relative paths are "
            f"resolved from {os.getcwd()})."
        )
    if p.is_dir():
        raise TrajCrafterError(f"{p} is a folder, not a {what} file; give the path of a file.")
    return p


@contextmanager
def _open_container(path: Path) -> Iterator:
    av = _av()
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        size = path.stat().st_size
        raise TrajCrafterError(
            f"Could not open {path} as a video ({size} bytes): {exc}. The file is damaged, "
            f"incomplete (e.g. an interrupted download) or not a video; re-download it or "
            f"re-encode it to H.264 mp4."
        ) from None
    try:
        yield container
    finally:
        container.close()


def _video_stream(container, path: Path):
    streams = list(container.streams.video)
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise TrajCrafterError(
            f"{path} has no video stream (streams found: {', '.join(kinds)}); give a video file."
        )
    return streams[0]


def _stream_fps(stream) -> Tuple[float, bool]:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            fps = float(rate)
            if math.isfinite(fps) and 0.0 < fps <= 1000.0:
                return fps, True
    return 24.0, False


def _frame_rotation(frame) -> int:
    """Counter-clockwise display rotation of a decoded frame (its display matrix), 0/90/180/270."""
    try:
        angle = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):  # pragma: no cover - odd side data
        return 0
    return int(round(angle / 90.0)) % 4 * 90


def _display_size(coded_w: int, coded_h: int, sar, rotation: int) -> Tuple[int, int]:
    w, h = coded_w, coded_h
    if sar is not None and sar > 0 and sar != 1:
        w = max(1, int(round(coded_w * float(sar))))
    if rotation % 180 == 90:
        w, h = h, w
    return w, h


def _sample_aspect(stream):
    for sar in (getattr(stream, "sample_aspect_ratio", None),
                getattr(stream.codec_context, "sample_aspect_ratio", None)):
        if sar is not None and sar > 0:
            return sar
    return None


def _info_from_stream(container, stream, path: Path, rotation: int = 0) -> VideoInfo:
    fps, fps_known = _stream_fps(stream)
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000.0
    frame_count = int(stream.frames) if stream.frames and stream.frames > 0 else None
    if frame_count is None and duration is not None and duration > 0:
        frame_count = max(1, int(round(duration * fps)))
    cw, ch = int(stream.codec_context.width), int(stream.codec_context.height)
    w, h = _display_size(cw, ch, _sample_aspect(stream), rotation)
    return VideoInfo(
        path=str(path), width=w, height=h, fps=fps, frame_count=frame_count, duration=duration,
        codec=stream.codec_context.name, container=container.format.name,
        pix_fmt=str(stream.codec_context.pix_fmt), rotation=rotation, coded_width=cw,
        coded_height=ch, fps_known=fps_known, frame_count_from_index=bool(stream.frames and stream.frames > 0),
    )


def probe_video(path: PathLike) -> VideoInfo:
    """Read size, fps, frame count, codec and container of a video from its headers.

    Only the first frame is decoded (to learn the display rotation, which FFmpeg attaches to
    frames). Raises :class:`TrajCrafterError` for a missing, unreadable or stream-less file.
    """
    av = _av()
    p = _check_input_path(path)
    with _open_container(p) as container:
        stream = _video_stream(container, p)
        rotation = 0
        try:
            for frame in container.decode(stream):
                rotation = _frame_rotation(frame)
                break
        except av.FFmpegError as exc:
            raise TrajCrafterError(f"{p} is damaged: its first frame does not decode ({exc}).") from None
        info = _info_from_stream(container, stream, p, rotation)
        if info.width <= 0 or info.height <= 0:
            raise TrajCrafterError(f"{p}: the video stream reports no frame size; the file is damaged.")
        return info


# ----------------------------------------------------------------------------------------------
# Sizes and resizing
# ----------------------------------------------------------------------------------------------


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def fit_size(
    width: int,
    height: int,
    max_side: Optional[int] = None,
    multiple: int = 16,
    max_pixels: Optional[int] = None,
    allow_upscale: bool = False,
) -> Tuple[int, int]:
    """Output ``(width, height)`` for a ``width × height`` source: aspect kept, multiples of ``multiple``.

    Rounding rule:

    1. scale ``s = min(max_side / long_side, sqrt(max_pixels / area))`` over the limits given;
       without ``allow_upscale`` also ``s ≤ 1`` (no limits and no upscale: ``s = 1``);
    2. long side ``L = floor(long_side · s / multiple) · multiple`` (never above ``max_side``);
    3. short side = the multiple nearest to ``L · short_side / long_side`` (ties round up) —
       the best aspect multiples allow — but, without ``allow_upscale``, not above the source's
       short side floored to a multiple;
    4. while ``L · short > max_pixels``, ``L`` drops by one multiple and step 3 repeats.

    Both sides are at least ``multiple`` (a source smaller than that is enlarged to it).
    ``max_side`` / ``max_pixels`` of ``None`` or ``0`` mean no limit. Example: 1280×720 with
    ``max_side=1024`` → ``(1024, 576)``; 1296×720 → ``(1024, 576)``; 720×1280 → ``(576, 1024)``.
    """
    try:
        width, height, multiple = int(width), int(height), int(multiple)
    except (TypeError, ValueError):
        raise TrajCrafterError(
            f"fit_size needs integer width/height/multiple, got {width!r}, {height!r}, {multiple!r}."
        ) from None
    if width < 1 or height < 1:
        raise TrajCrafterError(f"source size must be positive, got {width}x{height}.")
    if multiple < 1:
        raise TrajCrafterError(f"size multiple must be >= 1, got {multiple}.")
    max_side = _optional_limit(max_side, "max_side")
    max_pixels = _optional_limit(max_pixels, "max_pixels")
    if max_side is not None and max_side < multiple:
        raise TrajCrafterError(
            f"max_side={max_side} is smaller than the size multiple {multiple}; use at least {multiple}."
        )
    if max_pixels is not None and max_pixels < multiple * multiple:
        raise TrajCrafterError(
            f"max_pixels={max_pixels} is below one {multiple}x{multiple} block; use at least "
            f"{multiple * multiple}."
        )

    landscape = width >= height
    long_src, short_src = (width, height) if landscape else (height, width)
    scales = []
    if max_side is not None:
        scales.append(max_side / long_src)
    if max_pixels is not None:
        scales.append(math.sqrt(max_pixels / (long_src * short_src)))
    scale = min(scales) if scales else 1.0
    if not allow_upscale:
        scale = min(scale, 1.0)

    short_cap = None if allow_upscale else max(multiple, (short_src // multiple) * multiple)
    long_out = max(multiple, int(math.floor(long_src * scale / multiple + 1e-9)) * multiple)

    def short_for(long_side: int) -> int:
        s = max(multiple, _round_half_up(long_side * short_src / long_src / multiple) * multiple)
        return min(s, short_cap) if short_cap is not None else s

    short_out = short_for(long_out)
    while max_pixels is not None and long_out * short_out > max_pixels and long_out > multiple:
        long_out -= multiple
        short_out = short_for(long_out)
    return (long_out, short_out) if landscape else (short_out, long_out)


def _optional_limit(value, name: str) -> Optional[int]:
    if value is None:
        return None
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"{name} must be a whole number or None, got {value!r}.") from None
    if v < 0:
        raise TrajCrafterError(f"{name} must be >= 0 (0 or None = no limit), got {v}.")
    return v or None


def resize_frames(frames: torch.Tensor, height: int, width: int, chunk: int = 16) -> torch.Tensor:
    """Resize ``[T, H, W, C]`` (or ``[H, W, C]``) float frames to ``height × width``.

    Antialiased bilinear (``F.interpolate(..., mode="bilinear", antialias=True)``): when
    shrinking, the triangle filter is widened by the scale factor, so every source pixel
    contributes (an area-like average, like PIL's BILINEAR resample); when enlarging it is plain
    bilinear. Pixel centres are aligned (``align_corners=False``). Output is clamped to the
    input's range for 0..1 data. Works in chunks of ``chunk`` frames to bound memory; keeps
    dtype and device. Same size returns the input unchanged.
    """
    if not isinstance(frames, torch.Tensor):
        raise TrajCrafterError(f"frames must be a torch tensor, got {type(frames).__name__}.")
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise TrajCrafterError(f"target size must be positive, got {width}x{height}.")
    single = frames.ndim == 3
    x = frames.unsqueeze(0) if single else frames
    if x.ndim != 4:
        raise TrajCrafterError(f"frames must be [T, H, W, C] or [H, W, C], got {list(frames.shape)}.")
    if tuple(x.shape[1:3]) == (height, width):
        return frames
    if not x.is_floating_point():
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    out = torch.empty((x.shape[0], height, width, x.shape[3]), dtype=x.dtype, device=x.device)
    lo, hi = (0.0, 1.0) if (x.numel() and float(x.min()) >= 0.0 and float(x.max()) <= 1.0) else (None, None)
    for start in range(0, x.shape[0], max(1, chunk)):
        part = x[start:start + chunk].permute(0, 3, 1, 2).float()
        res = F.interpolate(part, size=(height, width), mode="bilinear", align_corners=False,
                            antialias=True)
        if lo is not None:
            res = res.clamp_(lo, hi)
        out[start:start + chunk] = res.permute(0, 2, 3, 1).to(out.dtype)
    return out[0] if single else out


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def _check_count(value, name: str, minimum: int, none_ok: bool) -> Optional[int]:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TrajCrafterError(f"{name} must be a whole number, got {value!r}.")
    value = int(value)
    if value < minimum:
        raise TrajCrafterError(f"{name} must be >= {minimum}, got {value}.")
    return value


class _FrameBuffer:
    """Preallocated ``[N, H, W, 3]`` float32 storage that grows if the estimate was short."""

    def __init__(self, capacity: int, height: int, width: int):
        self.data = torch.empty((max(1, capacity), height, width, 3), dtype=torch.float32)
        self.count = 0

    def append(self, frame_uint8: np.ndarray) -> None:
        if self.count == self.data.shape[0]:
            grow = torch.empty((max(8, self.count // 2),) + tuple(self.data.shape[1:]), dtype=torch.float32)
            self.data = torch.cat([self.data, grow], dim=0)
        # numpy, single-threaded: small torch ops stall next to FFmpeg's decoder threads
        np.divide(frame_uint8, np.float32(255.0), out=self.data[self.count].numpy(), dtype=np.float32)
        self.count += 1

    def result(self) -> torch.Tensor:
        out = self.data[: self.count]
        if self.count < 0.9 * self.data.shape[0]:
            out = out.clone()  # release an over-estimated buffer
        return out


def read_video(
    path: PathLike,
    max_frames: Optional[int] = None,
    skip_first: int = 0,
    every_nth: int = 1,
    max_side: Optional[int] = None,
    size_multiple: int = 16,
    max_pixels: Optional[int] = None,
    allow_upscale: bool = False,
) -> VideoClip:
    """Decode selected frames of a video file as ``float32 [T, H, W, 3]`` in 0..1.

    Selection: source frames ``skip_first + k · every_nth`` for ``k = 0 .. max_frames - 1``
    (``max_frames`` ``None``/``0`` = to the end). Decoding is sequential and stops right after
    the last selected frame; skipped frames are never converted or stored.

    Size: ``fit_size(display_w, display_h, max_side, size_multiple, max_pixels, allow_upscale)``
    — aspect kept, sides multiples of ``size_multiple`` (16 by default as the diffusion model
    needs; 1 keeps the exact source size). Each selected frame is converted and resized as it
    is decoded (FFmpeg's area filter, see :func:`_frame_to_display_rgb`; :func:`resize_frames`
    is the torch equivalent for tensors) and turned per the container's display matrix.

    Raises :class:`TrajCrafterError` for a missing/unreadable/damaged file, a file without a
    video stream, invalid options, or a selection that contains no frame.
    """
    av = _av()
    max_frames = _check_count(max_frames, "max_frames", 0, none_ok=True) or None
    skip_first = _check_count(skip_first, "skip_first", 0, none_ok=False)
    every_nth = _check_count(every_nth, "every_nth", 1, none_ok=False)
    size_multiple = _check_count(size_multiple, "size_multiple", 1, none_ok=False)
    p = _check_input_path(path)

    with _open_container(p) as container:
        stream = _video_stream(container, p)
        stream.thread_type = "AUTO"
        info = _info_from_stream(container, stream, p)
        if info.width <= 0 or info.height <= 0:
            raise TrajCrafterError(f"{p}: the video stream reports no frame size; the file is damaged.")
        out_w, out_h = fit_size(info.width, info.height, max_side, size_multiple, max_pixels,
                                allow_upscale)

        estimate = info.frame_count if info.frame_count else 64
        selectable = max(1, -(-(estimate + 2 - skip_first) // every_nth))
        capacity = min(max_frames or selectable, selectable, 2048)  # grows if the header was short
        buffer: Optional[_FrameBuffer] = None
        indices: List[int] = []
        decoded = 0
        reached_end = False
        try:
            for frame in container.decode(stream):
                index = decoded
                decoded += 1
                if index == 0 and _frame_rotation(frame):
                    # FFmpeg attaches the container's display matrix to the frames
                    info = _info_from_stream(container, stream, p, _frame_rotation(frame))
                    out_w, out_h = fit_size(info.width, info.height, max_side, size_multiple,
                                            max_pixels, allow_upscale)
                if index < skip_first or (index - skip_first) % every_nth:
                    continue
                if buffer is None:
                    buffer = _FrameBuffer(capacity, out_h, out_w)
                buffer.append(_frame_to_display_rgb(frame, info, out_w, out_h))
                indices.append(index)
                if max_frames is not None and len(indices) >= max_frames:
                    break
            else:
                reached_end = True
        except av.FFmpegError as exc:
            raise TrajCrafterError(
                f"{p} is damaged: decoding failed after {decoded} frame(s) ({exc}); "
                f"{len(indices)} of the requested frames were read. Re-encode or re-download the "
                f"file, or select fewer frames (max_frames / skip_first)."
            ) from None

    if not indices:
        if decoded == 0:
            raise TrajCrafterError(
                f"{p} contains no decodable video frame; the file is empty or damaged."
            )
        raise TrajCrafterError(
            f"No frame selected from {p}: it has {decoded} frame(s) but skip_first={skip_first} "
            f"skips them all; use skip_first < {decoded}."
        )
    if reached_end and info.frame_count_from_index and decoded < 0.95 * info.frame_count - 1:
        # threaded decoding hides the decoder's error on a cut-off file; the index does not lie
        raise TrajCrafterError(
            f"{p} is damaged or incomplete: its index lists {info.frame_count} frames but only "
            f"{decoded} decode. Re-download or re-encode it, or read at most {decoded} frames "
            f"(max_frames / skip_first / every_nth)."
        )
    source_count = decoded if reached_end else info.frame_count
    return VideoClip(
        frames=buffer.result(),
        fps=info.fps / every_nth,
        source_fps=info.fps,
        source_size=(info.width, info.height),
        source_frame_count=source_count,
        source_frame_count_exact=reached_end,
        frame_indices=indices,
        path=str(p),
        info=info,
    )


def _frame_to_display_rgb(frame, info: VideoInfo, out_w: int, out_h: int) -> np.ndarray:
    """One decoded frame → ``uint8 [out_h, out_w, 3]`` RGB at display orientation.

    FFmpeg's swscale converts YUV→RGB (tagged matrix/range, FFmpeg defaults otherwise) and
    resizes in one pass with its ``AREA`` filter (box averaging when shrinking, bilinear when
    enlarging) — 5-10× faster on CPU than converting first and resizing in torch. Rotation is
    applied after scaling, so the scaler gets the stored orientation.
    """
    quarter_turns = info.rotation // 90
    scale_w, scale_h = (out_h, out_w) if quarter_turns % 2 else (out_w, out_h)
    if (scale_w, scale_h) == (frame.width, frame.height):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.to_ndarray(format="rgb24", width=scale_w, height=scale_h, interpolation="AREA")
    if quarter_turns:
        rgb = np.rot90(rgb, k=quarter_turns)  # counter-clockwise, as displayed
    return np.ascontiguousarray(rgb)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _prepare_output(path: PathLike, allowed: Sequence[str], what: str) -> Path:
    if path is None or str(path) == "":
        raise TrajCrafterError(f"No output path given for the {what}.")
    p = Path(os.path.expanduser(str(path)))
    if p.suffix.lower() not in allowed:
        raise TrajCrafterError(
            f"Cannot write a {what} to {p.name!r}: the name must end with one of "
            f"{', '.join(allowed)}."
        )
    if p.is_dir():
        raise TrajCrafterError(f"{p} is a folder; give a file name for the {what}.")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrajCrafterError(f"Cannot create the folder {p.parent} for the {what}: {exc}.") from None
    return p


@contextmanager
def _atomic_target(path: Path):
    """Yield a temporary path next to ``path``; on success it replaces ``path``, else it is removed."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.part{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:  # pragma: no cover
                pass


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    return (frames.detach().to("cpu", torch.float32).clamp(0.0, 1.0).mul(255.0).round()
            .to(torch.uint8).numpy())


def _grey_to_rgb(x, name: str) -> torch.Tensor:
    """Accept ``[T,H,W]`` / ``[H,W]`` grey (masks, depth previews) as well as RGB frames."""
    if isinstance(x, torch.Tensor) and x.ndim in (2, 3) and x.shape[-1] != 3:
        x = x if x.ndim == 3 else x.unsqueeze(0)
        x = x.unsqueeze(-1).expand(*x.shape, 3)
    if isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[-1] == 1:
        x = x.expand(*x.shape[:3], 3)
    return as_frames(x, name)


def write_video(
    path: PathLike,
    frames,
    fps: float,
    crf: int = 18,
    preset: str = "medium",
    audio=None,
) -> Path:
    """Write frames ``[T, H, W, 3]`` (0..1 float or uint8) as browser-playable H.264 mp4.

    ``libx264``, ``yuv420p``, BT.709 matrix and limited range (tagged), ``+faststart``;
    ``crf`` 0..51 (lower = better; 18 is visually lossless), ``preset`` an x264 preset. 4:2:0
    needs even sizes: an odd width/height is **padded** by repeating the last column/row once
    (nothing is cropped; readers get a frame one pixel wider/taller). Grey ``[T, H, W]`` input
    (masks) is written as grey video. ``audio`` (a :class:`trajcrafter_core.audio.Audio`) is
    added as an AAC track. The file appears atomically (temporary file + rename). Returns the path.
    """
    av = _av()
    p = _prepare_output(path, _MP4_EXTENSIONS, "video")
    x = _grey_to_rgb(frames, "frames")
    try:
        fps_value = float(fps)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"fps must be a number, got {fps!r}.") from None
    if not math.isfinite(fps_value) or fps_value <= 0 or fps_value > 1000:
        raise TrajCrafterError(f"fps must be > 0 (and at most 1000), got {fps}.")
    crf = _check_count(crf, "crf", 0, none_ok=False)
    if crf > 51:
        raise TrajCrafterError(f"crf must be in 0..51 (lower = better quality), got {crf}.")
    pad_h, pad_w = x.shape[1] % 2, x.shape[2] % 2
    height, width = x.shape[1] + pad_h, x.shape[2] + pad_w
    rate = Fraction(fps_value).limit_denominator(1001)

    with _atomic_target(p) as tmp:
        try:
            container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        except av.FFmpegError as exc:
            raise TrajCrafterError(f"Cannot create {p}: {exc}.") from None
        try:
            stream = container.add_stream(H264_ENCODER, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": str(preset)}
            cc = stream.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 1, 1, 1, 1  # BT.709, limited
            if audio is not None:
                from .audio import add_audio_stream, mux_audio

                sound = add_audio_stream(container, audio)
            for start in range(0, x.shape[0], 8):
                chunk = _to_uint8(x[start:start + 8])
                if pad_h or pad_w:
                    chunk = np.pad(chunk, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                for rgb in chunk:
                    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                        format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
                    for packet in stream.encode(vf):
                        container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            if audio is not None:
                mux_audio(container, sound, audio)
        except av.FFmpegError as exc:
            raise TrajCrafterError(f"Writing {p} failed: {exc} (crf={crf}, preset={preset!r}).") from None
        finally:
            container.close()
    return p


def write_image(path: PathLike, image, quality: int = 95) -> Path:
    """Write one image as PNG or JPG (by the file extension), atomically.

    ``image``: ``[H, W, 3]``, ``[1, H, W, 3]`` (0..1 float or uint8) or grey ``[H, W]``; a
    ``[T, H, W, 3]`` clip writes its first frame. ``quality`` is for JPG (1..100).
    """
    from PIL import Image

    p = _prepare_output(path, tuple(_IMAGE_FORMATS), "image")
    x = _grey_to_rgb(image if isinstance(image, torch.Tensor) else
                     torch.as_tensor(np.asarray(image)), "image")
    quality = _check_count(quality, "quality", 1, none_ok=False)
    pil = Image.fromarray(_to_uint8(x[0]), mode="RGB")
    fmt = _IMAGE_FORMATS[p.suffix.lower()]
    with _atomic_target(p) as tmp:
        try:
            pil.save(tmp, format=fmt, **({"quality": min(quality, 100)} if fmt == "JPEG" else {}))
        except OSError as exc:
            raise TrajCrafterError(f"Writing {p} failed: {exc}.") from None
    return p


# ----------------------------------------------------------------------------------------------
# Previews
# ----------------------------------------------------------------------------------------------


def side_by_side(*videos, gap: int = 8, gap_value: float = 1.0) -> torch.Tensor:
    """Place clips left to right with ``gap`` pixels of ``gap_value`` between them.

    Each clip is ``[T, H, W, 3]`` or grey ``[T, H, W]`` (e.g. a mask); clips of another height
    are resized (aspect kept) to the first clip's height; shorter clips repeat their last frame
    up to the longest. Returns ``float32 [T, H, W_total, 3]`` on CPU.
    """
    if not videos:
        raise TrajCrafterError("side_by_side needs at least one clip.")
    if int(gap) < 0:
        raise TrajCrafterError(f"gap must be >= 0 pixels, got {gap}.")
    clips = [_grey_to_rgb(v.detach().cpu() if isinstance(v, torch.Tensor) else v, f"clip {i}")
             for i, v in enumerate(videos)]
    height = clips[0].shape[1]
    length = max(c.shape[0] for c in clips)
    parts = []
    for i, clip in enumerate(clips):
        if clip.shape[1] != height:
            clip = resize_frames(clip, height, max(1, _round_half_up(clip.shape[2] * height / clip.shape[1])))
        if clip.shape[0] < length:
            clip = torch.cat([clip, clip[-1:].expand(length - clip.shape[0], -1, -1, -1)], dim=0)
        if i and gap:
            parts.append(torch.full((length, height, int(gap), 3), float(gap_value)))
        parts.append(clip)
    return torch.cat(parts, dim=2)


#: Colour of holes in previews (magenta: rare in real footage, unlike the black of the renders).
HOLE_COLOR = (1.0, 0.0, 1.0)


def paint_holes(frames: torch.Tensor, mask: torch.Tensor, color=HOLE_COLOR) -> torch.Tensor:
    """``frames`` ``[T, H, W, 3]`` with the holes of ``mask`` ``[T, H, W]`` (1 = hole) in ``color``."""
    tint = torch.tensor(color, dtype=frames.dtype, device=frames.device)
    m = mask.to(frames.device, frames.dtype).unsqueeze(-1)
    return frames * (1 - m) + tint * m


def labelled_panels(panels, gap: int = 8) -> torch.Tensor:
    """One image ``[H + band, W_total, 3]`` of ``(label, image [H, W, 3] or [H, W])`` panels side
    by side, each with its label in a dark band above it and grey gaps between them (panels are
    resized to the first's height), so white or black panel edges stay visible."""
    from PIL import Image, ImageDraw, ImageFont

    if not panels:
        raise TrajCrafterError("labelled_panels needs at least one panel.")
    strip = side_by_side(*[img[None] for _, img in panels], gap=gap, gap_value=0.5)[0]
    height = strip.shape[0]
    font_size = max(12, height // 16)
    band = font_size + font_size // 2
    canvas = Image.new("RGB", (strip.shape[1], height + band), (40, 40, 40))
    canvas.paste(Image.fromarray(_to_uint8(strip[None])[0]), (0, band))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=font_size)
    x = 0
    for (label, img) in panels:
        width = _round_half_up(img.shape[1] * height / img.shape[0])
        draw.text((x + font_size // 3, font_size // 5), str(label), fill=(255, 255, 255), font=font)
        x += width + gap
    return torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)


def compare_videos(videos, labels=None, columns: Optional[int] = None, gap: int = 8) -> torch.Tensor:
    """Several clips ``[T, H, W, 3]`` in a labelled grid, float32 ``[T, H', W', 3]``: at most
    ``columns`` per row (default up to 3), each under a dark band with its label (default its
    number), grey gaps between; clips are fitted to the first one's height and the shorter ones
    hold their last frame (see :func:`side_by_side`)."""
    from PIL import Image, ImageDraw, ImageFont

    videos = list(videos)
    if not videos:
        raise TrajCrafterError("compare_videos needs at least one clip.")
    labels = [str(k + 1) for k in range(len(videos))] if labels is None else [str(x) for x in labels]
    columns = max(1, min(int(columns or 3), len(videos)))
    height = int(videos[0].shape[1])
    font_size = max(12, height // 16)
    band = font_size + font_size // 2
    rows = []
    for start in range(0, len(videos), columns):
        clips = videos[start: start + columns]
        strip = side_by_side(*clips, gap=gap, gap_value=0.5)
        canvas = Image.new("RGB", (strip.shape[2], band), (40, 40, 40))
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default(size=font_size)
        x = 0
        for clip, label in zip(clips, labels[start: start + columns]):
            draw.text((x + font_size // 3, font_size // 5), label, fill=(255, 255, 255), font=font)
            x += _round_half_up(clip.shape[2] * height / clip.shape[1]) + gap
        header = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)
        rows.append(torch.cat([header[None].expand(strip.shape[0], -1, -1, -1), strip], dim=1))
    width = max(r.shape[2] for r in rows)
    length = max(r.shape[0] for r in rows)
    padded = []
    for i, r in enumerate(rows):
        if r.shape[2] < width:
            r = torch.cat([r, torch.full((r.shape[0], r.shape[1], width - r.shape[2], 3), 0.5)], dim=2)
        if r.shape[0] < length:
            r = torch.cat([r, r[-1:].expand(length - r.shape[0], -1, -1, -1)])
        if i:
            padded.append(torch.full((length, int(gap), width, 3), 0.5))
        padded.append(r)
    return torch.cat(padded, dim=1).contiguous()


def depth_to_frames(depth, near: Optional[float] = None, far: Optional[float] = None) -> torch.Tensor:
    """Grey preview ``[T, H, W, 3]`` of depth ``[T, H, W]``: near = white, far = black.

    Maps inverse depth linearly between ``1/near`` and ``1/far`` (default: the clip's own
    min/max, the same scale for every frame so brightness is comparable over time).
    """
    from .conventions import as_depth

    d = as_depth(depth.detach().cpu() if isinstance(depth, torch.Tensor) else depth)
    inv = 1.0 / d
    hi = 1.0 / float(near) if near else float(inv.max())
    lo = 1.0 / float(far) if far else float(inv.min())
    grey = ((inv - lo) / max(hi - lo, 1e-12)).clamp(0.0, 1.0)
    return grey.unsqueeze(-1).expand(*grey.shape, 3).contiguous()


def mask_to_frames(mask) -> torch.Tensor:
    """Preview ``[T, H, W, 3]`` of a hole mask ``[T, H, W]``: holes white, covered black."""
    from .conventions import as_mask

    m = as_mask(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask).clamp(0.0, 1.0)
    return m.unsqueeze(-1).expand(*m.shape, 3).contiguous()
