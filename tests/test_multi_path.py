"""Many camera paths of one clip: conditions prepared with one depth and one point cloud, the text
encoder and the reference encoding run once, paths batched in the transformer, and every video
equal (to 1e-3) to that path's own run with the same seed."""

from __future__ import annotations

import pytest
import torch

from trajcrafter_core import redirect
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.specs import CameraSpec

SIZE = (32, 48)
CAMERAS = [dict(preset="orbit_left"), dict(target_pose=(10, 20, 0.2, 0, 0)), dict(preset="recam_arc_right", easing="ease_in_out")]
KW = dict(prompt="a room with a red sphere", num_inference_steps=2, guidance_scale=3.0, seed=11)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from trajcrafter_core.fixtures import save_tiny_checkpoints
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    torch.set_num_threads(1)
    tiny = save_tiny_checkpoints(tmp_path_factory.mktemp("tiny"), seed=4)
    return TrajectoryCrafterPipeline.from_pretrained(tiny["base"], tiny["transformer"], dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def clip():
    from trajcrafter_core.synthetic import example_clip

    c = example_clip(num_frames=9, height=48, width=64, seed=2)
    return c["frames"], c["depths"]


@pytest.fixture(scope="module")
def conditions(clip):
    frames, depths = clip
    return redirect.prepare_conditions_many(frames, depths, CAMERAS, sample_size=SIZE, num_reference_frames=4)


def count_calls(monkeypatch, obj, name):
    calls = []
    original = getattr(obj, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


def test_many_conditions_equal_one_at_a_time(clip, conditions):
    frames, depths = clip
    for camera, many in zip(CAMERAS, conditions):
        one = redirect.prepare_conditions(frames, depths, sample_size=SIZE, num_reference_frames=4, **camera)
        assert torch.equal(one.render, many.render) and torch.equal(one.mask, many.mask)
        assert torch.equal(one.reference, many.reference) and torch.equal(one.trajectory.transforms, many.trajectory.transforms)
    assert all(c.source is conditions[0].source for c in conditions)  # one resize of the clip for all
    assert not torch.equal(conditions[0].render, conditions[1].render)


def test_a_bad_camera_is_named_before_any_rendering(clip, monkeypatch):
    frames, depths = clip
    import trajcrafter_core.render as render

    monkeypatch.setattr(render, "render_trajectory", lambda *a, **k: pytest.fail("rendered before checking"))
    with pytest.raises(TrajCrafterError, match="camera 2: .*target pose theta"):
        redirect.prepare_conditions_many(frames, depths, [dict(preset="orbit_left"), dict(target_pose=(90, 0, 0, 0, 0))])
    with pytest.raises(TrajCrafterError, match="camera 1 .*direct cut 20 is longer"):
        redirect.prepare_conditions_many(frames, depths, [CameraSpec(preset="static", mode="direct")])
    with pytest.raises(TrajCrafterError, match="camera 1 must be a CameraSpec or a dict"):
        redirect.prepare_conditions_many(frames, depths, [dict(presets="orbit_left")])


@pytest.mark.parametrize("batch_size", [None, 1])
def test_three_paths_share_text_and_reference_and_equal_their_solo_runs(pipe, conditions, monkeypatch, batch_size):
    solo = [redirect.generate(pipe, c, **KW) for c in conditions]
    texts = count_calls(monkeypatch, pipe, "encode_text")
    references = count_calls(monkeypatch, pipe, "encode_reference_frames")
    batches = count_calls(monkeypatch, pipe, "denoise")
    steps = []
    videos = redirect.generate(pipe, conditions, batch_size=batch_size,
                               callback=lambda done, total, _l: steps.append((done, total)), **KW)
    assert len(texts) == 1 and len(references) == 1
    assert len(batches) == (1 if batch_size is None else 3)
    assert [tuple(b[0].shape[:1]) for b in batches] == ([(3,)] if batch_size is None else [(1,)] * 3)
    assert steps[-1] == (2 * len(batches), 2 * len(batches))
    assert len(videos) == 3
    for video, alone in zip(videos, solo):
        assert video.shape == alone.shape == (9, *SIZE, 3)
        assert float((video - alone).abs().max()) <= 1e-3
    assert float((videos[0] - videos[1]).abs().max()) > 1e-2  # the paths differ


def test_different_reference_frames_are_encoded_each(pipe, clip, monkeypatch):
    frames, depths = clip
    conds = redirect.prepare_conditions_many(frames, depths, [dict(preset="orbit_left"), dict(preset="orbit_right", mode="bullet")],
                                             sample_size=SIZE, num_reference_frames=4)
    solo = redirect.generate(pipe, conds[1], **KW)
    references = count_calls(monkeypatch, pipe, "encode_reference_frames")
    videos = redirect.generate(pipe, conds, **KW)
    assert len(references) == 2  # first frames for gradual, last frames for bullet time
    assert float((videos[1] - solo).abs().max()) <= 1e-3


def test_a_sampler_that_draws_noise_runs_paths_one_at_a_time(pipe, conditions, monkeypatch):
    pipe.set_scheduler("Euler A")
    try:
        solo = redirect.generate(pipe, conditions[2], **KW)
        batches = count_calls(monkeypatch, pipe, "denoise")
        notes = []
        videos = redirect.generate(pipe, conditions, notes=notes, **KW)
        assert len(batches) == 3 and any("one at a time" in n for n in notes)
        assert float((videos[2] - solo).abs().max()) <= 1e-3
    finally:
        pipe.set_scheduler("DDIM_Origin")


def test_paths_of_different_lengths_are_grouped(pipe, clip):
    frames, depths = clip
    short = redirect.prepare_conditions(frames[:5], depths[:5], preset="orbit_left", sample_size=SIZE, num_reference_frames=4)
    long = redirect.prepare_conditions(frames, depths, preset="orbit_left", sample_size=SIZE, num_reference_frames=4)
    videos = redirect.generate(pipe, [short, long], **KW)
    assert [v.shape[0] for v in videos] == [5, 9]
    assert float((videos[0] - redirect.generate(pipe, short, **KW)).abs().max()) <= 1e-3
