"""A clip's sound: read the audio of a time span of a video file, and mux it into an mp4.

:class:`Audio` holds float32 samples ``[channels, samples]`` in ``-1..1`` and their rate.
:func:`read_audio` decodes the first audio stream of a file between two times (seconds; the
span of the frames a clip selected); :func:`add_audio_stream` + :func:`mux_audio` encode it as
AAC into a container that is being written (:func:`trajcrafter_core.video.write_video` does). The layouts come back as
FFmpeg names them (``"mono"``, ``"stereo"``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import TrajCrafterError

__all__ = ["Audio", "read_audio", "clip_audio", "add_audio_stream", "mux_audio", "AAC_FRAME"]

AAC_FRAME = 1024  # samples per AAC frame


@dataclass
class Audio:
    """``samples`` float32 ``[channels, n]`` in -1..1 at ``sample_rate`` Hz, ``layout`` by FFmpeg name."""

    samples: np.ndarray
    sample_rate: int
    layout: str = "stereo"

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / float(self.sample_rate)


def read_audio(path, start: float = 0.0, end: Optional[float] = None) -> Optional[Audio]:
    """The first audio stream of ``path`` between ``start`` and ``end`` seconds (None = to the end),
    or None when the file has no audio. Times are from the start of the stream."""
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise TrajCrafterError(f"Could not open {path} to read its audio: {exc}.") from None
    try:
        streams = list(container.streams.audio)
        if not streams:
            return None
        stream = streams[0]
        rate = int(stream.codec_context.sample_rate or stream.rate)
        layout = stream.codec_context.layout.name if stream.codec_context.layout else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks, first_sample = [], None
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                if first_sample is None:
                    first_sample = int(round((out.time or 0.0) * rate))
                chunks.append(out.to_ndarray())
            if end is not None and frame.time is not None and frame.time > end:
                break
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    except av.FFmpegError as exc:
        raise TrajCrafterError(f"Could not decode the audio of {path}: {exc}.") from None
    finally:
        container.close()
    if not chunks:
        return None
    samples = np.concatenate(chunks, axis=1).astype(np.float32)
    offset = first_sample or 0
    lo = max(0, int(round(start * rate)) - offset)
    hi = samples.shape[1] if end is None else max(lo, int(round(end * rate)) - offset)
    samples = np.ascontiguousarray(samples[:, lo:hi])
    if samples.shape[1] == 0:
        return None
    return Audio(samples, rate, layout)


def clip_audio(clip, count: Optional[int] = None) -> Optional[Audio]:
    """The source sound of the first ``count`` selected frames of a
    :class:`~trajcrafter_core.video.VideoClip` (all of them by default): from the first selected
    frame to one frame step after the last, so it lasts as long as the frames play at
    ``clip.fps``. None when the file has no audio or nothing is selected."""
    indices = list(clip.frame_indices)[: count if count is not None else None]
    if not indices or not clip.path:
        return None
    step = max(1, round(clip.source_fps / clip.fps))
    return read_audio(clip.path, indices[0] / clip.source_fps, (indices[-1] + step) / clip.source_fps)


def add_audio_stream(container, audio: Audio):
    """An AAC stream for ``audio`` in an ``av`` output container (before anything is muxed)."""
    stream = container.add_stream("aac", rate=audio.sample_rate)
    stream.layout = audio.layout
    return stream


def mux_audio(container, stream, audio: Audio) -> None:
    """Encode ``audio`` into ``stream`` (from :func:`add_audio_stream`) of ``container``."""
    import av

    samples = np.clip(audio.samples, -1.0, 1.0).astype(np.float32)
    for begin in range(0, samples.shape[1], AAC_FRAME):
        chunk = np.ascontiguousarray(samples[:, begin:begin + AAC_FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=audio.layout)
        frame.sample_rate = audio.sample_rate
        frame.pts = begin
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
