"""Video I/O against the five real clips in ../shared/media and small files made from them.

Other containers, portrait/square/odd sizes, rotation and broken files are transcoded from
small crops of the real clips into tmp_path with PyAV, so every case is a real encoded file.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from trajcrafter_core import video as V
from trajcrafter_core.errors import MissingFilesError, TrajCrafterError

# README table of ../shared/media: name -> (width, height, fps, frames)
CLIPS = {
    "0-NNvgaTcVzAG0-r.mp4": (1280, 720, 30, 145),
    "UST-fn-RvhJwMR5S.mp4": (1280, 720, 30, 300),
    "p7.mp4": (1296, 720, 24, 120),
    "part-2-3.mp4": (1248, 704, 24, 129),
    "tUfDESZsQFhdDW9S.mp4": (1280, 720, 30, 450),
}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return 99.0 if mse == 0 else 10.0 * math.log10(1.0 / mse)


@pytest.fixture(scope="module")
def clip_path(media_dir) -> Path:
    p = media_dir / "p7.mp4"
    if not p.exists():
        pytest.skip(f"{p} missing")
    return p


@pytest.fixture(scope="module")
def source_crops(clip_path) -> np.ndarray:
    """First 12 frames of p7.mp4, a 192x160 crop, uint8 [12, 160, 192, 3] (plain PyAV decode)."""
    out = []
    with av.open(str(clip_path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == 12:
                break
            out.append(f.to_ndarray(format="rgb24")[200:360, 500:692])
    return np.stack(out)


def encode(path: Path, frames: np.ndarray, codec: str, pix_fmt: str, rate=12, fmt=None,
           options=None, rotation=None) -> Path:
    """Write uint8 RGB frames with a given codec/container (test fixture, independent of V)."""
    with av.open(str(path), "w", format=fmt) as c:
        st = c.add_stream(codec, rate=rate)
        st.width, st.height, st.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if options:
            st.options = options
        if rotation is not None:
            st.set_display_rotation(rotation)
        for a in frames:
            for p in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return path


# ------------------------------------------------------------------------------------------
# Real clips
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_probe_reports_the_real_clips(media_dir, name):
    w, h, fps, frames = CLIPS[name]
    info = V.probe_video(media_dir / name)
    assert (info.width, info.height) == (w, h)
    assert info.fps == pytest.approx(fps)
    assert abs(info.frame_count - frames) <= 1  # headers may count one frame more
    assert info.codec == "h264" and info.rotation == 0


def test_read_selects_frames_and_keeps_aspect(clip_path):
    clip = V.read_video(clip_path, max_frames=5, skip_first=3, every_nth=2, max_side=256)
    assert clip.frame_indices == [3, 5, 7, 9, 11]
    assert clip.frames.shape == (5, 144, 256, 3) and clip.frames.dtype == torch.float32
    assert 0.0 <= float(clip.frames.min()) and float(clip.frames.max()) <= 1.0
    assert clip.source_fps == pytest.approx(24.0) and clip.fps == pytest.approx(12.0)
    assert clip.source_size == (1296, 720) and clip.size == (256, 144)
    assert not clip.source_frame_count_exact and clip.source_frame_count == 120

    # the selected frames are the right ones: each is closest to the same-index full read
    full = V.read_video(clip_path, max_frames=14, max_side=256)
    for k, idx in enumerate(clip.frame_indices):
        scores = {j: psnr(clip.frames[k], full.frames[j]) for j in range(14)}
        assert max(scores, key=scores.get) == idx
        assert scores[idx] > 60  # identical decode path


def test_read_resize_matches_torch_antialiased_resize(clip_path):
    native = V.read_video(clip_path, max_frames=2, size_multiple=1)
    assert native.frames.shape == (2, 720, 1296, 3)
    small = V.read_video(clip_path, max_frames=2, max_side=320)
    assert small.size == (320, 176)  # 1296x720 -> 320 x round(177.8/16)*16
    reference = V.resize_frames(native.frames, 176, 320)
    assert psnr(small.frames, reference) > 32  # FFmpeg area filter ≈ torch antialiased bilinear


def test_decoding_stops_after_the_last_selected_frame(clip_path, monkeypatch):
    pulled = []
    original = V._open_container

    @contextmanager
    def counting(path):
        with original(path) as container:
            real_decode = container.decode

            class Proxy:
                def __getattr__(self, name):
                    return getattr(container, name)

                def decode(self, *args, **kwargs):
                    for f in real_decode(*args, **kwargs):
                        pulled.append(1)
                        yield f

            yield Proxy()

    monkeypatch.setattr(V, "_open_container", counting)
    clip = V.read_video(clip_path, max_frames=3, skip_first=1, every_nth=2, max_side=64)
    assert clip.frame_indices == [1, 3, 5]
    assert len(pulled) == 6  # frames 0..5 decoded, nothing after


def test_reading_to_the_end_counts_frames_exactly(media_dir):
    clip = V.read_video(media_dir / "0-NNvgaTcVzAG0-r.mp4", every_nth=8, max_side=64)
    assert clip.source_frame_count_exact and clip.source_frame_count == 145  # header says 146
    assert clip.frame_indices == list(range(0, 145, 8))
    assert clip.fps == pytest.approx(30 / 8)


# ------------------------------------------------------------------------------------------
# Sizes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "src, kwargs, expected",
    [
        ((1280, 720), dict(max_side=1024), (1024, 576)),
        ((1296, 720), dict(max_side=1024), (1024, 576)),
        ((720, 1280), dict(max_side=1024), (576, 1024)),
        ((1296, 720), dict(), (1296, 720)),
        ((1248, 704), dict(), (1248, 704)),
        ((161, 97), dict(), (160, 96)),
        ((500, 500), dict(max_side=256), (256, 256)),
        ((1280, 720), dict(max_pixels=1024 * 576), (1024, 576)),
        ((640, 360), dict(max_side=1024), (640, 352)),  # no upscale; 360 floors to 352
        ((640, 360), dict(max_side=1024, allow_upscale=True), (1024, 576)),
        ((1296, 720), dict(multiple=1), (1296, 720)),
        ((1000, 10), dict(), (992, 16)),  # never below one multiple
    ],
)
def test_fit_size_table(src, kwargs, expected):
    assert V.fit_size(*src, **kwargs) == expected


def test_fit_size_properties_on_random_sizes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        w, h = (int(v) for v in rng.integers(40, 3000, size=2))
        max_side = int(rng.integers(64, 2048))
        ow, oh = V.fit_size(w, h, max_side=max_side)
        assert ow % 16 == 0 and oh % 16 == 0
        assert max(ow, oh) <= max_side and ow <= max(16, w) and oh <= max(16, h)
        long_src, short_src = max(w, h), min(w, h)
        long_out, short_out = max(ow, oh), min(ow, oh)
        exact_short = long_out * short_src / long_src
        if exact_short <= (short_src // 16) * 16:  # not capped by the no-upscale rule
            assert abs(short_out - exact_short) <= 8 + 1e-6 or short_out == 16
        assert ow == oh or (ow > oh) == (w > h)  # orientation kept (near-square may round square)


def test_resize_frames_is_antialiased_and_keeps_constants():
    grey = torch.full((2, 30, 45, 3), 0.3)
    assert torch.allclose(V.resize_frames(grey, 10, 15), torch.full((2, 10, 15, 3), 0.3), atol=1e-6)
    yy, xx = torch.meshgrid(torch.arange(30), torch.arange(30), indexing="ij")
    checker = ((yy + xx) % 2).float()[None, :, :, None].expand(1, 30, 30, 3)
    small = V.resize_frames(checker, 10, 10)  # 3x shrink: plain bilinear would alias to 0/1
    assert float((small - 0.5).abs().max()) < 0.12
    assert V.resize_frames(grey, 30, 45) is grey


# ------------------------------------------------------------------------------------------
# Containers, orientations, odd sizes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, codec, pix_fmt, options, min_psnr",
    [
        ("a.mov", "libx264", "yuv420p", {"crf": "12"}, 30),
        ("a.webm", "libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "0"}, 25),
        ("a.mkv", "mpeg4", "yuv420p", {"qscale": "2"}, 25),
        ("a.gif", "gif", "rgb8", None, 18),
    ],
)
def test_other_containers(tmp_path, source_crops, name, codec, pix_fmt, options, min_psnr):
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this FFmpeg build")
    src = source_crops[:10]
    path = encode(tmp_path / name, src, codec, pix_fmt, options=options)
    info = V.probe_video(path)
    assert (info.width, info.height) == (192, 160)
    assert info.fps == pytest.approx(12, rel=0.1)  # gif stores delays in 1/100 s
    clip = V.read_video(path, size_multiple=1)
    assert clip.frames.shape == (10, 160, 192, 3) and clip.source_frame_count == 10
    assert clip.source_frame_count_exact
    assert psnr(clip.frames, torch.from_numpy(src).float() / 255) > min_psnr


def test_portrait_square_and_odd_sizes(tmp_path, source_crops):
    portrait = encode(tmp_path / "portrait.mp4", source_crops[:8, :, :96], "libx264", "yuv420p")
    clip = V.read_video(portrait, max_side=64)
    assert clip.source_size == (96, 160) and clip.size == (32, 64)  # 64 * 96/160 = 38.4 -> 32

    square = encode(tmp_path / "square.mp4", source_crops[:8, :128, :128], "libx264", "yuv420p")
    assert V.read_video(square, max_side=64).size == (64, 64)

    odd_src = source_crops[:8, :67, :99]  # odd sizes: lossless RGB codec in mov
    odd = encode(tmp_path / "odd.mov", odd_src, "png", "rgb24")
    exact = V.read_video(odd, size_multiple=1)
    assert exact.size == (99, 67)
    assert torch.equal((exact.frames * 255).round().to(torch.uint8), torch.from_numpy(odd_src))
    assert V.read_video(odd).size == (96, 64)  # 16-multiple bucket, aspect kept


def test_display_rotation_is_applied(tmp_path):
    frames = np.zeros((4, 64, 96, 3), np.uint8)
    frames[:, :16, :16] = 255  # white marker, top-left as stored
    path = encode(tmp_path / "rot.mp4", frames, "libx264", "yuv420p", rotation=90)
    info = V.probe_video(path)
    assert info.rotation == 90 and (info.width, info.height) == (64, 96)
    clip = V.read_video(path, size_multiple=1)
    assert clip.size == (64, 96)
    img = clip.frames[0].mean(-1)
    # 90° counter-clockwise: the stored top-left corner is displayed bottom-left
    assert float(img[-16:, :16].mean()) > 0.9 and float(img[:16, :16].mean()) < 0.1


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


def test_write_video_is_h264_yuv420p_and_round_trips(tmp_path, source_crops):
    frames = torch.from_numpy(source_crops[:8]).float() / 255
    out = V.write_video(tmp_path / "sub" / "out.mp4", frames, fps=24, crf=12)
    with av.open(str(out)) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264" and st.codec_context.pix_fmt == "yuv420p"
        first = next(c.decode(st))
        assert int(first.colorspace) == 1  # tagged BT.709, decoded with the same matrix
    back = V.read_video(out, size_multiple=1)
    assert back.frames.shape == frames.shape and back.source_fps == pytest.approx(24)
    assert psnr(back.frames, frames) > 33
    assert not [p for p in out.parent.iterdir() if p.name != "out.mp4"]  # no temp file left


def test_write_video_colours_are_exact_on_flat_patches(tmp_path):
    colours = torch.tensor([[0.8, 0.2, 0.1], [0.1, 0.6, 0.9], [0.5, 0.5, 0.5], [0.05, 0.95, 0.3]])
    frames = colours[:, None, None, :].expand(4, 32, 48, 3).contiguous()
    back = V.read_video(V.write_video(tmp_path / "flat.mp4", frames, fps=8, crf=0), size_multiple=1)
    assert float((back.frames - frames).abs().amax(dim=(1, 2)).max()) < 3 / 255


def test_write_video_pads_odd_sizes_and_accepts_grey(tmp_path):
    frames = torch.rand(3, 33, 47, 3)
    back = V.read_video(V.write_video(tmp_path / "odd.mp4", frames, 10, crf=0), size_multiple=1)
    assert back.size == (48, 34)
    assert torch.allclose(back.frames[:, -1], back.frames[:, -2], atol=0.12)  # replicated row
    grey = torch.zeros(2, 32, 32)
    grey[:, 8:24, 8:24] = 1.0
    g = V.read_video(V.write_video(tmp_path / "mask.mp4", grey, 10, crf=0), size_multiple=1).frames
    assert float(g[:, 16, 16].min()) > 0.95 and float(g[:, 2, 2].max()) < 0.05


def test_failed_write_leaves_existing_file_untouched(tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"old")
    with pytest.raises(TrajCrafterError):
        V.write_video(target, torch.rand(2, 16, 16, 3), fps=8, preset="no-such-preset")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_write_image_png_exact_and_jpg_close(tmp_path):
    from PIL import Image

    img = torch.rand(20, 30, 3)
    png = V.write_image(tmp_path / "a.png", img)
    arr = np.asarray(Image.open(png))
    assert arr.shape == (20, 30, 3)
    assert np.array_equal(arr, (img * 255).round().to(torch.uint8).numpy())
    smooth = torch.linspace(0, 1, 64)[None, :, None].expand(48, 64, 3).contiguous()
    jpg = np.asarray(Image.open(V.write_image(tmp_path / "a.jpg", smooth))).astype(np.float32) / 255
    assert np.abs(jpg - smooth.numpy()).mean() < 0.02
    assert np.asarray(Image.open(V.write_image(tmp_path / "m.png", torch.ones(8, 8)))).min() == 255
    with pytest.raises(TrajCrafterError, match="end with"):
        V.write_image(tmp_path / "a.bmp", img)


def test_side_by_side_and_previews():
    a = torch.zeros(3, 32, 40, 3)
    b = torch.ones(5, 16, 20)  # grey, half height, longer
    out = V.side_by_side(a, b, gap=4, gap_value=0.5)
    assert out.shape == (5, 32, 40 + 4 + 40, 3)
    assert float(out[:, :, 40:44].sub(0.5).abs().max()) == 0.0
    assert torch.equal(out[4, :, :40], a[-1])  # shorter clip repeats its last frame
    depth = torch.tensor([[[1.0, 2.0], [4.0, 4.0]]])
    prev = V.depth_to_frames(depth)
    assert prev.shape == (1, 2, 2, 3) and float(prev[0, 0, 0, 0]) == 1.0 and float(prev[0, 1, 1, 0]) == 0.0
    assert V.mask_to_frames(torch.ones(1, 4, 4)).shape == (1, 4, 4, 3)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(MissingFilesError, match="not found"):
        V.read_video(tmp_path / "nope.mp4")
    with pytest.raises(TrajCrafterError, match="folder"):
        V.probe_video(tmp_path)


def test_random_bytes_and_empty_file(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(TrajCrafterError, match="Could not open"):
        V.read_video(junk)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(TrajCrafterError, match="Could not open"):
        V.probe_video(empty)


def test_truncated_clips(tmp_path, media_dir):
    # index (moov) at the end: cut in half, the file cannot be opened at all
    data = (media_dir / "p7.mp4").read_bytes()
    cut = tmp_path / "cut_end.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrajCrafterError, match="damaged"):
        V.read_video(cut)
    # index at the start: the first frames still decode, reading past the cut fails clearly
    data = (media_dir / "UST-fn-RvhJwMR5S.mp4").read_bytes()
    cut = tmp_path / "cut_start.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert V.read_video(cut, max_frames=4, max_side=64).num_frames == 4
    with pytest.raises(TrajCrafterError, match="index lists 300 frames but only"):
        V.read_video(cut, max_side=64)


def test_file_without_video_stream(tmp_path):
    path = tmp_path / "audio_only.mp4"
    with av.open(str(path), "w") as c:
        st = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in st.encode(frame):
            c.mux(p)
        for p in st.encode():
            c.mux(p)
    with pytest.raises(TrajCrafterError, match="no video stream.*audio"):
        V.read_video(path)


def test_selection_past_the_end_and_bad_options(tmp_path, source_crops):
    path = encode(tmp_path / "short.mp4", source_crops[:6], "libx264", "yuv420p")
    with pytest.raises(TrajCrafterError, match="skip_first=10 skips them all"):
        V.read_video(path, skip_first=10)
    for kwargs, pattern in [
        (dict(every_nth=0), "every_nth must be >= 1"),
        (dict(max_frames=-2), "max_frames must be >= 0"),
        (dict(skip_first=-1), "skip_first must be >= 0"),
        (dict(every_nth=1.5), "whole number"),
        (dict(max_side=8), "max_side=8 is smaller"),
        (dict(max_side=-5), "max_side must be >= 0"),
    ]:
        with pytest.raises(TrajCrafterError, match=pattern):
            V.read_video(path, **kwargs)
    assert V.read_video(path, max_frames=0, every_nth=2, max_side=64).frame_indices == [0, 2, 4]
    with pytest.raises(TrajCrafterError, match="fps"):
        V.write_video(tmp_path / "x.mp4", torch.rand(2, 16, 16, 3), fps=0)
    with pytest.raises(TrajCrafterError, match="end with"):
        V.write_video(tmp_path / "x.avi", torch.rand(2, 16, 16, 3), fps=8)
