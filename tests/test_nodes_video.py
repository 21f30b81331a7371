"""Load Video node and the bridge's file rules, on real small files, without ComfyUI."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from nodes_harness import node_class, run_node

TrajCrafterError = pytest.importorskip("trajcrafter_core.errors").TrajCrafterError


@pytest.fixture()
def input_dir(tmp_path, monkeypatch):
    folder = tmp_path / "input"
    folder.mkdir()
    monkeypatch.setenv("TRAJCRAFTER_INPUT_DIR", str(folder))
    return folder


@pytest.fixture()
def gradient_video(input_dir):
    """A 10-frame 64x48 clip whose frame t has red = t/9 (exact content known)."""
    from trajcrafter_core.video import write_video

    t = torch.linspace(0, 1, 10).view(10, 1, 1, 1)
    frames = torch.cat([t.expand(10, 48, 64, 1), torch.full((10, 48, 64, 1), 0.5), torch.zeros(10, 48, 64, 1)], -1)
    write_video(input_dir / "ramp.mp4", frames, fps=12, crf=0)
    return "ramp.mp4"


def test_load_video_selects_frames_and_reports_info(gradient_video):
    frames, fps, count, info, audio = run_node(
        "TrajCrafterLoadVideo", video=gradient_video, frame_cap=3, skip_first=2, every_nth=3, max_size=0
    )
    assert audio is None  # the clip has no sound
    assert frames.shape == (3, 48, 64, 3) and frames.dtype == torch.float32
    assert count == 3 and fps == pytest.approx(4.0)
    # frames 2, 5, 8 of the ramp: red = t / 9 (lossless encode, limited-range rounding)
    red = frames[:, 24, 32, 0]
    assert torch.allclose(red, torch.tensor([2 / 9, 5 / 9, 8 / 9]), atol=0.03)
    meta = json.loads(info)
    assert meta["frame_indices"] == [2, 5, 8]
    assert meta["source_fps"] == pytest.approx(12.0) and meta["source_size"] == [64, 48]
    assert meta["size"] == [64, 48] and meta["frame_count"] == 3


def test_load_video_real_clip_is_resized_keeping_aspect(input_dir, media_dir):
    shutil.copy(media_dir / "p7.mp4", input_dir / "p7.mp4")
    frames, fps, count, _, audio = run_node(
        "TrajCrafterLoadVideo", video="p7.mp4", frame_cap=5, skip_first=4, every_nth=2, max_size=160
    )
    assert frames.shape == (5, 96, 160, 3)  # 1296x720 -> long side 160, short 88.9 -> 96 (mult. of 16)
    assert fps == pytest.approx(12.0) and count == 5
    assert 0.05 < float(frames.mean()) < 0.95
    # the sound of source frames 4..13 (5 frames at 12 fps = 10/24 s) as ComfyUI's AUDIO
    from trajcrafter_core.audio import read_audio

    assert audio["sample_rate"] == 48000 and audio["waveform"].shape[:2] == (1, 2)
    assert audio["waveform"].shape[2] == pytest.approx(48000 * 10 / 24, abs=48)
    whole = read_audio(media_dir / "p7.mp4")
    start = round(4 / 24 * 48000)
    assert torch.allclose(audio["waveform"][0], torch.from_numpy(whole.samples[:, start:start + audio["waveform"].shape[2]]))


def test_upload_combo_lists_videos_of_the_input_folder(gradient_video, input_dir):
    (input_dir / "sub").mkdir()
    (input_dir / "sub" / "b.webm").write_bytes(b"x")
    (input_dir / "notes.txt").write_text("x")
    spec = node_class("TrajCrafterLoadVideo").INPUT_TYPES()["required"]["video"]
    assert spec[0] == ["example.mp4 [example]", "example_depth.mp4 [example]", "ramp.mp4", "sub/b.webm"]
    assert spec[1]["video_upload"] is True


def test_the_bundled_example_clip_loads_on_a_fresh_install(input_dir):
    frames, fps, count, info, audio = run_node("TrajCrafterLoadVideo", video="example.mp4 [example]", frame_cap=9,
                                               skip_first=0, every_nth=1, max_size=0)
    assert frames.shape == (9, 288, 512, 3) and json.loads(info)["file"] == "example.mp4"


def test_missing_files_are_found_before_the_queue_runs(gradient_video, input_dir):
    cls = node_class("TrajCrafterLoadVideo")
    assert cls.VALIDATE_INPUTS(video=gradient_video) is True
    assert "does not exist" in cls.VALIDATE_INPUTS(video="gone.mp4")
    assert cls.VALIDATE_INPUTS(video="gone.mp4", path=gradient_video) is True  # the path wins


def test_files_outside_comfyui_folders_reveal_nothing(input_dir, tmp_path):
    """Whoever can queue a prompt must not learn whether a file elsewhere exists, its size or kind."""
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "notes.mp4").write_bytes(b"secret " * 1000)
    messages = set()
    for path in (outside / "notes.mp4", outside / "missing.mp4", outside):
        with pytest.raises(TrajCrafterError) as err:
            run_node("TrajCrafterLoadVideo", video="x.mp4", frame_cap=1, skip_first=0, every_nth=1, max_size=0,
                     path=str(path))
        messages.add(str(err.value).replace(str(path), "<path>"))
        # checking before the queue would tell too: such paths are left to the run
        assert node_class("TrajCrafterLoadVideo").VALIDATE_INPUTS(video="x.mp4", path=str(path)) is True
    (message,) = messages  # the same words whatever is there
    assert "7000" not in message and "bytes" not in message and "exist" not in message


def test_path_input_overrides_the_combo_and_absolute_paths_are_allowed(gradient_video, input_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(input_dir / gradient_video, elsewhere / "clip.mp4")
    frames, *_ = run_node(
        "TrajCrafterLoadVideo", video="missing.mp4", frame_cap=2, skip_first=0, every_nth=1, max_size=0,
        path=str(elsewhere / "clip.mp4"),
    )
    assert frames.shape[0] == 2


@pytest.mark.parametrize("choice, path", [("../secret.mp4", ""), ("", "../secret.mp4"), ("sub/../../secret.mp4", "")])
def test_relative_names_cannot_leave_the_input_folder(input_dir, choice, path):
    (input_dir.parent / "secret.mp4").write_bytes(b"not for you")
    with pytest.raises(TrajCrafterError, match="outside ComfyUI's folder"):
        run_node("TrajCrafterLoadVideo", video=choice, frame_cap=1, skip_first=0, every_nth=1, max_size=0, path=path)


def test_symlink_escaping_the_input_folder_is_refused(input_dir):
    (input_dir.parent / "secret.mp4").write_bytes(b"x")
    (input_dir / "link.mp4").symlink_to(input_dir.parent / "secret.mp4")
    with pytest.raises(TrajCrafterError, match="outside"):
        run_node("TrajCrafterLoadVideo", video="link.mp4", frame_cap=1, skip_first=0, every_nth=1, max_size=0)


def test_wrong_file_type_and_missing_file_give_our_message(input_dir):
    (input_dir / "photo.mp4").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(TrajCrafterError, match="photo.mp4"):
        run_node("TrajCrafterLoadVideo", video="photo.mp4", frame_cap=1, skip_first=0, every_nth=1, max_size=0)
    with pytest.raises(TrajCrafterError, match="does not exist"):
        run_node("TrajCrafterLoadVideo", video="nope.mp4", frame_cap=1, skip_first=0, every_nth=1, max_size=0)


def test_is_changed_follows_the_file(gradient_video, input_dir):
    cls = node_class("TrajCrafterLoadVideo")
    first = cls.IS_CHANGED(gradient_video)
    assert first == cls.IS_CHANGED(gradient_video)
    import os

    os.utime(input_dir / gradient_video, (1, 1))
    assert cls.IS_CHANGED(gradient_video) != first
