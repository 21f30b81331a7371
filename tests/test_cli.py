"""The CLI runs the core stages in order and writes playable outputs (README's main command)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trajcrafter_core import cli, video


def test_demo_writes_videos_and_preview_and_matches_ground_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = cli.main(["demo", "--out", str(out), "--frames", "9", "--height", "96", "--width", "160",
                   "--preset", "orbit_right", "--amount", "0.5"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("source", "render", "mask", "target_gt"):
        info = video.probe_video(out / f"{name}.mp4")
        assert (info.width, info.height) == (160, 96)
        assert info.frame_count == 9
    preview = video.read_video(out / "source.mp4", size_multiple=1).frames
    assert preview.shape == (9, 96, 160, 3)
    assert (out / "preview.png").stat().st_size > 0
    # An orbit opens holes, but most of the view stays covered...
    assert 0.0 < summary["hole_fraction"] < 0.5
    # ... and the covered pixels agree with the exact target view of the synthetic scene
    # (bilinear splatting blurs texture edges, so this is far from lossless but far above noise).
    assert summary["covered_psnr_db"] > 20.0


@pytest.mark.parametrize("renderer", ["official", "zbuffer"])
def test_static_camera_reproduces_the_source(tmp_path, capsys, renderer):
    rc = cli.main(["demo", "--out", str(tmp_path), "--frames", "5", "--height", "64", "--width", "96",
                   "--preset", "static", "--renderer", renderer])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    if renderer == "official":
        # Every point lands on its own pixel (no holes). The official float32 projection puts
        # points ~1e-5 px off their pixel and its exp(50·log-depth) weights let a far point's tiny
        # bilinear share win over a near one at depth edges, so edges bleed a little.
        assert summary["hole_fraction"] == 0.0
        assert summary["covered_psnr_db"] > 35.0
    else:
        # The z-buffer keeps the nearest point exactly; it drops flying pixels at depth edges,
        # which leaves a thin band of holes there and nowhere else.
        assert summary["hole_fraction"] < 0.1
        assert summary["covered_psnr_db"] > 60.0


def test_user_error_is_one_line_and_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "traj.txt"
    bad.write_text("0 10\n0 abc\n")
    rc = cli.main(["demo", "--out", str(tmp_path / "o"), "--frames", "5", "--height", "64", "--width", "96",
                   "--traj-txt", str(bad)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "o" / "render.mp4").exists()


def test_render_command_on_a_real_clip_with_depth_file(media_dir, tmp_path, capsys):
    clip = video.read_video(media_dir / "p7.mp4", max_frames=5, every_nth=2, max_side=128)
    T, H, W, _ = clip.frames.shape
    # A tilted plane: depth grows towards the top of the image.
    depth = np.broadcast_to(np.linspace(4.0, 2.0, H, dtype=np.float32)[None, :, None], (T, H, W)).copy()
    np.save(tmp_path / "depth.npy", depth)
    rc = cli.main(["render", str(media_dir / "p7.mp4"), "--depth", str(tmp_path / "depth.npy"),
                   "--out", str(tmp_path / "r"), "--frames", "5", "--every-nth", "2", "--max-side", "128",
                   "--target-pose", "0", "-10", "0.1", "0", "0"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["size"] == [H, W] and summary["frames"] == T
    assert video.probe_video(tmp_path / "r" / "render.mp4").frame_count == T
    # Radius rule: depth at the centre pixel of frame 0.
    assert summary["radius"] == pytest.approx(float(depth[0, H // 2, W // 2]), abs=1e-4)


def test_generate_runs_the_whole_method_on_tiny_weights(media_dir, tmp_path, capsys):
    from trajcrafter_core.depth import tiny as depth_tiny
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    models = save_tiny_checkpoints(tmp_path / "models", subfolder="crosstransformer")
    depth_dir = depth_tiny.build_tiny_depth_anything(tmp_path / "da")
    rc = cli.main(["generate", str(media_dir / "p7.mp4"), "--base-dir", str(models["base"]),
                   "--transformer-dir", str(models["transformer"]), "--depth-anything", str(depth_dir),
                   "--frames", "6", "--max-side", "48", "--steps", "2", "--dtype", "fp32", "--device", "cpu",
                   "--prompt", "a street", "--out", str(tmp_path / "g"), "--target-pose", "0", "-10", "0.1", "0", "0"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2
    # 6 frames are not 8m+1: the run pads to 9 and trims back, and says so.
    assert summary["frames"] == 6 and summary["notes"]
    out = video.probe_video(tmp_path / "g" / "generated.mp4")
    assert (out.width, out.height, out.frame_count) == (summary["size"][1], summary["size"][0], 6)


def test_generate_without_weights_says_what_to_put_where(media_dir, tmp_path, capsys):
    rc = cli.main(["generate", str(media_dir / "p7.mp4"), "--base-dir", str(tmp_path / "nope"),
                   "--transformer-dir", str(tmp_path / "nope2"), "--depth", str(tmp_path / "d.npy"),
                   "--frames", "5", "--max-side", "48", "--out", str(tmp_path / "g")])
    assert rc == 2
    err = capsys.readouterr().err
    # The message names the missing files and the folder they belong in.
    assert "Traceback" not in err and "nope" in err and "vae" in err
    assert not (tmp_path / "g").exists()
