"""The CLI as a user meets it: the same layer and defaults as the nodes, outputs with audio and a
labelled preview, progress on stderr, a clean Ctrl-C, and one line naming the flag for every bad
input — checked before any compute."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from trajcrafter_core import cli, video
from trajcrafter_core.errors import TrajCrafterError


def run(capsys, *argv):
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own exit, for a flag it refuses
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_demo_writes_videos_and_a_labelled_preview_and_matches_ground_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    rc, stdout, err = run(capsys, "demo", "--out", out, "--frames", 9, "--height", 96, "--width", 160,
                          "--preset", "orbit_right", "--amount", 0.5)
    assert rc == 0, err
    summary = json.loads(stdout)
    for name in ("source", "render", "mask", "target_gt"):
        info = video.probe_video(out / f"{name}.mp4")
        assert (info.width, info.height, info.frame_count) == (160, 96, 9)
    assert sorted(os.listdir(out)) == ["mask.mp4", "preview.png", "render.mp4", "source.mp4", "target_gt.mp4"]
    assert 0.0 < summary["hole_fraction"] < 0.5 and summary["covered_psnr_db"] > 20.0
    assert "render" in err  # the progress bar
    # preview: four labelled panels, holes in the nodes' magenta
    from PIL import Image

    img = np.asarray(Image.open(out / "preview.png").convert("RGB")).astype(int)
    band = img[: img.shape[0] - 96]
    assert img.shape[1] == 4 * 160 + 3 * 8 and band.shape[0] >= 12
    assert (band.min(-1) > 200).sum() > 50 and (band == 40).all(-1).mean() > 0.5  # white text on a dark band
    magenta = (np.abs(img - [255, 0, 255]).max(-1) <= 2)[:, 168:328]  # the render panel
    assert magenta.mean() > 0.01


@pytest.mark.parametrize("renderer", ["official", "zbuffer"])
def test_static_camera_reproduces_the_source(tmp_path, capsys, renderer):
    rc, stdout, _ = run(capsys, "demo", "--out", tmp_path, "--frames", 5, "--height", 64, "--width", 96,
                        "--preset", "static", "--renderer", renderer, "--no-clean-holes")
    assert rc == 0
    summary = json.loads(stdout)
    if renderer == "official":
        # Every point lands on its own pixel (no holes); the official float32 projection and its
        # exp(50·log-depth) weights let edges bleed a little.
        assert summary["hole_fraction"] == 0.0 and summary["covered_psnr_db"] > 35.0
    else:
        # The z-buffer keeps the nearest point exactly and drops flying pixels at depth edges.
        assert summary["hole_fraction"] < 0.1 and summary["covered_psnr_db"] > 60.0


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["render", "--help"])
    text = capsys.readouterr().out
    assert "(default: 1024)" in text and "(default: keep_aspect)" in text and "(default: 49)" in text


@pytest.fixture()
def depth_npy(tmp_path):
    """A tilted plane as z-depth for 5 frames of p7 (read at a 128-px long side: 64x128)."""
    depth = np.broadcast_to(np.linspace(4.0, 2.0, 64, dtype=np.float32)[None, :, None], (5, 64, 128)).copy()
    np.save(tmp_path / "depth.npy", depth)
    return tmp_path / "depth.npy"


def _render(media_dir, tmp_path, *extra):
    return ["render", media_dir / "p7.mp4", "--out", tmp_path / "r", "--frames", 5, "--every-nth", 2,
            "--max-side", 128, "--target-pose", 0, -10, 0.1, 0, 0, *extra]


def test_render_a_real_clip_with_a_depth_file(media_dir, tmp_path, capsys, depth_npy):
    rc, stdout, err = run(capsys, *_render(media_dir, tmp_path, "--depth", depth_npy))
    assert rc == 0, err
    summary = json.loads(stdout)
    # 64x128 frames are rendered there and resized to keep_aspect's size for 2:1 (352x704)
    from trajcrafter_core.sizing import keep_aspect_size

    assert summary["render_size"] == [64, 128] and summary["size"] == list(keep_aspect_size(64, 128)) == [352, 704]
    assert summary["frames"] == 5 and summary["size_policy"] == "keep_aspect"
    assert video.probe_video(tmp_path / "r" / "render.mp4").frame_count == 5
    # radius rule: depth at the centre pixel of frame 0
    d = np.load(depth_npy)
    assert summary["radius"] == pytest.approx(float(d[0, d.shape[1] // 2, d.shape[2] // 2]), abs=1e-3)
    # gradual keeps the source's timing: the source audio of the 5 selected frames (stride 2 at 24 fps)
    from trajcrafter_core.audio import read_audio

    sound = read_audio(tmp_path / "r" / "render.mp4")
    assert sound is not None and sound.duration == pytest.approx(10 / 24, abs=0.05)
    assert read_audio(tmp_path / "r" / "mask.mp4") is None


def test_bullet_time_has_no_audio(media_dir, tmp_path, capsys, depth_npy):
    rc, _, err = run(capsys, *_render(media_dir, tmp_path, "--depth", depth_npy, "--mode", "bullet"))
    assert rc == 0, err
    from trajcrafter_core.audio import read_audio

    assert read_audio(tmp_path / "r" / "render.mp4") is None


def test_render_reads_png_folders_and_depth_videos(media_dir, tmp_path, capsys):
    from PIL import Image

    pngs = tmp_path / "pngs"
    pngs.mkdir()
    maps = np.linspace(0.2, 0.9, 32 * 64, dtype=np.float32).reshape(32, 64)  # half size: resized to the frames
    for i in range(5):
        Image.fromarray((maps * 65535).astype(np.uint16)).save(pngs / f"{i:03d}.png")
    rc, stdout, err = run(capsys, *_render(media_dir, tmp_path, "--depth", pngs))
    assert rc == 0, err
    from_pngs = json.loads(stdout)
    clip = torch.from_numpy(np.repeat(maps[None, :, :, None], 3, axis=-1)).repeat(5, 1, 1, 1)
    video.write_video(tmp_path / "depth.mp4", clip, 12.0, crf=0)
    rc, stdout, err = run(capsys, *_render(media_dir, tmp_path / "v", "--depth", tmp_path / "depth.mp4"))
    assert rc == 0, err
    from_video = json.loads(stdout)
    # the same maps (16-bit PNG or an almost lossless 8-bit video) give the same radius
    assert from_video["radius"] == pytest.approx(from_pngs["radius"], rel=0.02)


def test_render_runs_an_estimator_folder(media_dir, tmp_path, capsys):
    from trajcrafter_core.depth import tiny as depth_tiny

    folder = depth_tiny.build_tiny_depth_anything(tmp_path / "Depth-Anything-V2-Small-hf")
    rc, stdout, err = run(capsys, *_render(media_dir, tmp_path, "--depth", folder, "--device", "cpu"))
    assert rc == 0, err
    assert "depth" in err and json.loads(stdout)["frames"] == 5
    unet = depth_tiny.build_tiny_depthcrafter_unet(tmp_path / "DepthCrafter")
    rc, _, err = run(capsys, *_render(media_dir, tmp_path, "--depth", unet))
    assert rc == 2 and err.startswith("error: --depth") and "--depthcrafter" in err


def _bad(capsys, argv, lines: int = 1):
    """The message of a refused run: one ``error:`` line (``lines`` for a list of missing files),
    last on stderr (status lines may come before it)."""
    rc, _, err = run(capsys, *argv)
    start = err.find("error:")
    message = err[start:].rstrip()
    assert rc == 2 and "Traceback" not in err and start >= 0 and err.count("error:") == 1, err
    assert len(message.splitlines()) <= lines, message
    return message


@pytest.fixture()
def no_decoding(monkeypatch):
    """Fail the test if a video is decoded: the checks must come first."""
    def refuse(*a, **k):
        raise AssertionError("the video was decoded before the inputs were checked")

    monkeypatch.setattr(video, "read_video", refuse)


def test_bad_depth_inputs_are_named_before_decoding(media_dir, tmp_path, capsys, no_decoding):
    empty = tmp_path / "folder"
    empty.mkdir()
    err = _bad(capsys, _render(media_dir, tmp_path, "--depth", empty))
    assert err.startswith("error: --depth") and "without *.png depth frames" in err
    err = _bad(capsys, _render(media_dir, tmp_path, "--depth", tmp_path / "gone.npy"))
    assert err.startswith("error: --depth") and "no such file or folder" in err


def test_object_array_and_wrong_shape_depth(media_dir, tmp_path, capsys):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    err = _bad(capsys, _render(media_dir, tmp_path, "--depth", tmp_path / "objects.npy"))
    assert err.startswith("error: --depth") and "Python objects" in err
    np.save(tmp_path / "three.npy", np.ones((3, 64, 128), np.float32))
    err = _bad(capsys, _render(media_dir, tmp_path, "--depth", tmp_path / "three.npy"))
    assert "has 3 depth map(s) but the clip has 5 frames" in err


def test_depth_with_one_map_per_source_frame_is_subsampled_like_the_clip(media_dir, tmp_path, capsys):
    d = np.stack([np.full((64, 128), 1.0 + 0.25 * i, np.float32) for i in range(120)])  # p7 has 120 frames
    np.save(tmp_path / "all.npy", d)
    rc, stdout, err = run(capsys, *_render(media_dir, tmp_path, "--depth", tmp_path / "all.npy", "--skip-first", 4))
    assert rc == 0, err
    assert json.loads(stdout)["radius"] == pytest.approx(1.0 + 0.25 * 4, abs=1e-4)  # clip frame 0 = source frame 4


def test_bad_outputs_and_files_are_named_before_any_work(media_dir, tmp_path, capsys, depth_npy, no_decoding):
    (tmp_path / "file").write_text("x")
    argv = _render(media_dir, tmp_path, "--depth", depth_npy)
    argv[argv.index("--out") + 1] = tmp_path / "file"
    err = _bad(capsys, argv)
    assert err.startswith("error: --out") and "existing file" in err
    blocked = tmp_path / "ro"
    blocked.mkdir()
    blocked.chmod(0o500)
    try:
        if not os.access(blocked, os.W_OK):  # root can write anywhere
            argv = _render(media_dir, tmp_path, "--depth", depth_npy)
            argv[argv.index("--out") + 1] = blocked / "sub"
            err = _bad(capsys, argv)
            assert err.startswith("error: --out") and "cannot write there" in err
    finally:
        blocked.chmod(0o700)
    (tmp_path / "empty.txt").write_text("")
    argv = [a for a in _render(media_dir, tmp_path, "--depth", depth_npy)]
    i = argv.index("--target-pose")
    argv[i:i + 6] = ["--traj-txt", tmp_path / "empty.txt"]
    err = _bad(capsys, argv)
    assert err.startswith(f"error: --traj-txt {tmp_path / 'empty.txt'}") and "is empty" in err
    argv[i + 1] = tmp_path / "nothing.txt"
    assert "not found" in _bad(capsys, argv)
    err = _bad(capsys, ["render", tmp_path / "nothing.mp4", "--depth", depth_npy, "--out", tmp_path / "o"])
    assert err.startswith("error: video") and "not found" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize("argv_tail, flag", [
    (["--every-nth", "0"], "--every-nth"),
    (["--frames", "-1"], "--frames"),
    (["--target-pose", "0", "75", "0", "0", "0"], "--target-pose"),
    (["--direct-cut", "1", "--mode", "direct"], "--direct-cut"),
    (["--radius-scale", "0"], "--radius-scale"),
    (["--sample-size", "100", "10"], "--sample-size"),
])
def test_flag_values_are_named(media_dir, tmp_path, capsys, depth_npy, argv_tail, flag):
    argv = ["render", media_dir / "p7.mp4", "--depth", depth_npy, "--out", tmp_path / "o", *argv_tail]
    err = _bad(capsys, argv)
    assert flag in err and "num_frames" not in err and "every_nth" not in err


def test_read_errors_name_the_flags(media_dir, tmp_path, capsys, depth_npy):
    err = _bad(capsys, ["render", media_dir / "p7.mp4", "--depth", depth_npy, "--out", tmp_path / "o",
                        "--skip-first", "500"])
    assert "--skip-first" in err and "skip_first" not in err


def test_ctrl_c_stops_cleanly_and_writes_nothing(media_dir, tmp_path, capsys, depth_npy, monkeypatch):
    from trajcrafter_core import redirect

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(redirect, "render_conditions", interrupted)
    rc, _, err = run(capsys, *_render(media_dir, tmp_path, "--depth", depth_npy))
    assert rc == 130 and "stopped" in err and "Traceback" not in err
    assert os.listdir(tmp_path / "r") == []  # the output folder was checked (made), nothing left in it


def test_a_failure_while_writing_leaves_no_partial_outputs(media_dir, tmp_path, capsys, depth_npy, monkeypatch):
    real = video.write_image

    def broken(*a, **k):
        raise TrajCrafterError("disk full")

    monkeypatch.setattr(video, "write_image", broken)
    rc, _, err = run(capsys, *_render(media_dir, tmp_path, "--depth", depth_npy))
    assert rc == 2 and "disk full" in err
    assert os.listdir(tmp_path / "r") == []
    monkeypatch.setattr(video, "write_image", real)


def test_generate_runs_the_whole_method_on_tiny_weights(media_dir, tmp_path, capsys):
    from trajcrafter_core.depth import tiny as depth_tiny
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    models = save_tiny_checkpoints(tmp_path / "models", subfolder="crosstransformer")
    depth_dir = depth_tiny.build_tiny_depth_anything(tmp_path / "da")
    rc, stdout, err = run(capsys, "generate", media_dir / "p7.mp4", "--base-dir", models["base"],
                          "--transformer-dir", models["transformer"], "--depth-anything", depth_dir,
                          "--frames", 6, "--max-side", 64, "--sample-size", 32, 48, "--steps", 2, "--dtype", "fp32",
                          "--device", "cpu", "--prompt", "a street", "--out", tmp_path / "g",
                          "--target-pose", 0, -10, 0.1, 0, 0)
    assert rc == 0, err
    summary = json.loads(stdout)
    assert summary["steps"] == 2 and "sampling" in err and "depth" in err
    # 6 frames are not 8m+1: the run pads to 9 and trims back, and says so.
    assert summary["frames"] == 6 and any("padded to 9" in n for n in summary["notes"])
    out = video.probe_video(tmp_path / "g" / "generated.mp4")
    assert (out.width, out.height, out.frame_count) == (48, 32, 6)


def test_generate_without_weights_says_what_to_put_where(media_dir, tmp_path, capsys, depth_npy, no_decoding):
    err = _bad(capsys, ["generate", media_dir / "p7.mp4", "--base-dir", tmp_path / "nope",
                        "--transformer-dir", tmp_path / "nope2", "--depth", depth_npy, "--frames", 5,
                        "--max-side", 48, "--out", tmp_path / "g"], lines=10)
    # The message names the missing files and the folder they belong in.
    assert "nope" in err and "vae" in err
    assert os.listdir(tmp_path / "g") == []


@pytest.mark.parametrize("shape", ["portrait", "square"])
def test_keep_aspect_keeps_portrait_and_square_clips_end_to_end(media_dir, tmp_path, capsys, shape):
    """A phone-shaped 720x1280 clip (cropped from a shared clip) and a square one keep their aspect
    through depth, render, resize and the sampler (tiny weights), within one 16-px step."""
    import torch.nn.functional as F

    from trajcrafter_core.fixtures import save_tiny_checkpoints

    src = video.read_video(media_dir / "p7.mp4", max_frames=9, size_multiple=1).frames  # 720x1296
    crop = src[:, :, 446:851] if shape == "portrait" else src[:, :, 288:1008]  # 405x720 or 720x720
    size = (1280, 720) if shape == "portrait" else (720, 720)
    clip = F.interpolate(crop.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
    video.write_video(tmp_path / "clip.mp4", clip.permute(0, 2, 3, 1).clamp(0, 1), 24.0)
    np.save(tmp_path / "depth.npy", np.broadcast_to(np.linspace(3.0, 2.0, 32, dtype=np.float32)[None, :, None],
                                                    (9, 32, 32)).copy())
    models = save_tiny_checkpoints(tmp_path / "models")
    rc, stdout, err = run(capsys, "generate", tmp_path / "clip.mp4", "--base-dir", models["base"],
                          "--transformer-dir", models["transformer"], "--depth", tmp_path / "depth.npy",
                          "--max-side", 512, "--steps", 1, "--dtype", "fp32", "--device", "cpu",
                          "--out", tmp_path / "g", "--preset", "orbit_left", "--amount", 0.3)
    assert rc == 0, err
    out = video.probe_video(tmp_path / "g" / "generated.mp4")
    aspect = size[1] / size[0]  # width / height of the clip
    assert out.frame_count == 9 and out.width % 16 == 0 and out.height % 16 == 0
    assert abs(out.width - out.height * aspect) < 16 and abs(out.height - out.width / aspect) < 16
    assert (out.height, out.width) == ((672, 384) if shape == "portrait" else (512, 512))
