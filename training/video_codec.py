"""How a shard stores a sample's videos and hole mask: compressed members decoded by the loader.

Codecs (``ShardWriter(video_codec=...)``, ``--video-codec`` of the preparation scripts):

- ``"h264"`` (default): each video ``[T, H, W, 3]`` uint8 is one Matroska member with H.264
  4:4:4 at CRF 10 (libx264, no chroma subsampling) — visually lossless: about 45 dB PSNR and
  1/50 to 1/100 of the raw size on the shared real clips at 49x384x672 (``bench/training_shards.py``).
- ``"lossless"``: H.264 RGB at QP 0 (libx264rgb) — bit-exact, about 1/5 of the raw size.
- ``"raw"``: uncompressed uint8 tensors in one ``video.safetensors`` member (shard format 1).

The hole mask ``[T, H, W]`` (1 = hole) is always bit-packed (8 pixels a byte, ``numpy.packbits``
along the flattened mask) and zlib-compressed: exact, and ~1/100 of a byte per pixel on real
renders. Decoding checks that the frame count and size match the sample's meta, so a truncated
member is an error, never a shorter clip.
"""

from __future__ import annotations

import io
import zlib
from typing import Dict, Tuple

import numpy as np
import torch

from trajcrafter_core.errors import TrajCrafterError

#: codec name -> (FFmpeg encoder, pixel format, encoder options)
VIDEO_CODECS: Dict[str, Tuple[str, str, Dict[str, str]]] = {
    "h264": ("libx264", "yuv444p", {"crf": "10", "preset": "medium"}),
    "lossless": ("libx264rgb", "rgb24", {"qp": "0", "preset": "veryfast"}),
}
CODEC_NAMES = tuple(VIDEO_CODECS) + ("raw",)
DEFAULT_CODEC = "h264"
VIDEO_SUFFIX = "mkv"
MASK_SUFFIX = "mask.bin"
# a nominal rate: members are frame sequences, their timing means nothing
_RATE = 8


def encode_video(frames: torch.Tensor, codec: str = DEFAULT_CODEC) -> bytes:
    """``uint8 [T, H, W, 3]`` frames as one Matroska file in memory (``codec`` of :data:`VIDEO_CODECS`)."""
    import av

    if codec not in VIDEO_CODECS:
        raise TrajCrafterError(f"video codec must be one of {list(VIDEO_CODECS)}, got {codec!r}.")
    encoder, pix_fmt, options = VIDEO_CODECS[codec]
    x = frames.contiguous().numpy()
    buffer = io.BytesIO()
    container = av.open(buffer, mode="w", format="matroska")
    try:
        stream = container.add_stream(encoder, rate=_RATE)
        stream.width, stream.height, stream.pix_fmt = int(x.shape[2]), int(x.shape[1]), pix_fmt
        stream.options = dict(options)
        for rgb in x:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pix_fmt != "rgb24":
                frame = frame.reformat(format=pix_fmt)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return buffer.getvalue()


def decode_video(data: bytes, shape: Tuple[int, int, int], where: str) -> torch.Tensor:
    """``uint8 [T, H, W, 3]`` from :func:`encode_video`'s bytes; ``shape`` = ``(T, H, W)`` expected."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.FFmpegError, IndexError) as exc:
        raise TrajCrafterError(f"{where}: the video member cannot be decoded ({exc}).") from None
    got = (len(frames),) + (tuple(frames[0].shape[:2]) if frames else ())
    if got != tuple(shape):
        raise TrajCrafterError(f"{where}: the video member decodes to {list(got)} [T,H,W], its meta says {list(shape)}.")
    return torch.from_numpy(np.stack(frames))


def encode_mask(mask: torch.Tensor) -> bytes:
    """``uint8 [T, H, W]`` with values 0/1 → zlib(packbits) bytes."""
    return zlib.compress(np.packbits(mask.numpy().astype(bool).reshape(-1)).tobytes(), 6)


def decode_mask(data: bytes, shape: Tuple[int, int, int], where: str) -> torch.Tensor:
    """``uint8 [T, H, W]`` (1 = hole) from :func:`encode_mask`'s bytes."""
    count = int(np.prod(shape))
    try:
        bits = np.frombuffer(zlib.decompress(data), dtype=np.uint8)
    except zlib.error as exc:
        raise TrajCrafterError(f"{where}: the mask member cannot be decompressed ({exc}).") from None
    if bits.size != (count + 7) // 8:
        raise TrajCrafterError(f"{where}: the mask member holds {bits.size * 8} bits, {list(shape)} needs {count}.")
    return torch.from_numpy(np.unpackbits(bits, count=count).reshape(shape))
