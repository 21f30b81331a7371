"""Clips of any length through overlapping windows: the plan written out by hand, an ideal
inpainter that must reproduce its render exactly, and the tiny pipeline on a 41-frame clip with
17-frame windows — exactly 41 frames, deterministic, and the continuity property of every seam:

1. window ``j > 0`` is conditioned on the previous window's own generated frames over the
   overlap (render = those frames, hole mask = 0), so the video continues;
2. over the overlap the output is ``(1 - w_k) prev + w_k cur`` with ``w_k = (k + 1) / (O + 1)``
   and elsewhere the window's own frames, so no frame-to-frame step across a seam exceeds the
   larger of the two windows' own steps plus ``|cur - prev| / (O + 1)``."""

from __future__ import annotations

import pytest
import torch

from trajcrafter_core import redirect, windows
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.sampling import SharedSampler

T_LONG, WINDOW, OVERLAP = 41, 17, 5
SIZE = (32, 48)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from trajcrafter_core.fixtures import save_tiny_checkpoints
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    torch.set_num_threads(1)
    tiny = save_tiny_checkpoints(tmp_path_factory.mktemp("tiny"), seed=3)
    return TrajectoryCrafterPipeline.from_pretrained(tiny["base"], tiny["transformer"], dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def clip():
    from trajcrafter_core.synthetic import example_clip

    c = example_clip(num_frames=T_LONG, height=48, width=64, seed=1)
    return c["frames"], c["depths"]


def conditions_of(clip, n=T_LONG, **camera):
    frames, depths = clip
    camera = camera or dict(preset="orbit_left")
    return redirect.prepare_conditions(frames[:n], depths[:n], sample_size=SIZE, num_reference_frames=3, **camera)


def test_plans_by_hand():
    W = windows.Window
    assert windows.plan_windows(41, 17, 5) == [W(0, 17, 0), W(12, 29, 5), W(24, 41, 5)]
    assert windows.plan_windows(17, 17, 5) == [W(0, 17, 0)]
    assert windows.plan_windows(18, 17, 5) == [W(0, 17, 0), W(12, 18, 5)]  # only the last one is short
    assert windows.plan_windows(50, 49) == [W(0, 49, 0), W(36, 50, 13)]  # default overlap 13
    assert windows.default_overlap(49) == 13 and windows.default_overlap(17) == 5 and windows.default_overlap(9) == 1
    for T in range(2, 400, 7):
        plan = windows.plan_windows(T, 49, 13)
        assert plan[0].start == 0 and plan[-1].stop == T
        assert all(w.num_frames == 49 for w in plan[:-1]) and (T <= 49 or plan[-1].num_frames > 13)
        assert all(b.start == a.stop - 13 for a, b in zip(plan, plan[1:]))
        assert len(plan) == (1 if T <= 49 else 1 + -(-(T - 49) // 36))  # linear in T


@pytest.mark.parametrize("window, overlap, match", [
    (16, None, "8m\\+1"), (1, None, "8m\\+1"), (17, 0, "from 1 to 8"), (17, 9, "from 1 to 8"), (17, 2.5, "whole"),
])
def test_bad_windows_are_named(window, overlap, match):
    with pytest.raises(TrajCrafterError, match=match):
        windows.check_window(window, overlap)


def test_an_ideal_inpainter_gives_back_its_render_exactly():
    """A model that returns its render: every window's known overlap equals what it generated
    before, so the windowed output is the render itself, frame for frame."""
    g = torch.Generator().manual_seed(0)
    render = torch.rand(41, 8, 8, 3, generator=g)
    mask = (torch.rand(41, 8, 8, generator=g) > 0.7).float()
    seen = []

    def ideal(inputs, seed):
        seen.append((seed, inputs))
        return [w.render.clone() for w in inputs]

    out = windows.generate_windows([(render, mask, render, 3, "start")], ideal, 17, 5, seed=100)
    assert float((out[0] - render).abs().max()) < 1e-6
    assert [s for s, _ in seen] == [100, 101, 102]
    for (_, [w]), window in zip(seen, windows.plan_windows(41, 17, 5)):
        assert torch.equal(w.mask[window.overlap:], mask[window.start + window.overlap: window.stop])
        assert bool((w.mask[: window.overlap] == 0).all())


def record_windows(monkeypatch):
    """Record every SharedSampler.sample call: (seed, jobs, outputs)."""
    calls = []
    original = SharedSampler.sample

    def spy(self, jobs, seed):
        out = original(self, jobs, seed)
        calls.append((seed, jobs, [o.clone() for o in out]))
        return out

    monkeypatch.setattr(SharedSampler, "sample", spy)
    return calls


def test_a_41_frame_clip_in_17_frame_windows(pipe, clip, monkeypatch):
    cond = conditions_of(clip)
    calls = record_windows(monkeypatch)
    model_lengths = []
    original_inpaint = pipe.inpaint_latents
    monkeypatch.setattr(pipe, "inpaint_latents", lambda render, *a, **k: (
        model_lengths.append(render.shape[0]), original_inpaint(render, *a, **k))[1])
    notes, steps = [], []
    kwargs = dict(prompt="a room", num_inference_steps=2, guidance_scale=3.0, seed=7, window_frames=WINDOW,
                  overlap_frames=OVERLAP)
    out = redirect.generate(pipe, cond, notes=notes, callback=lambda d, t, _l: steps.append((d, t)), **kwargs)
    assert out.shape == (T_LONG, *SIZE, 3) and out.dtype == torch.float32
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert model_lengths == [17, 17, 17]  # the model never holds more than one window
    assert steps[-1] == (6, 6) and [d for d, _ in steps] == list(range(1, 7))
    assert any("3 overlapping windows of 17" in n for n in notes)

    plan = windows.plan_windows(T_LONG, WINDOW, OVERLAP)
    assert [seed for seed, _, _ in calls] == [7, 8, 9]
    raw = [outs[0] for _, _, outs in calls]
    jobs = [jobs[0] for _, jobs, _ in calls]
    w = windows.blend_weights(OVERLAP)
    assert torch.allclose(w, torch.tensor([1, 2, 3, 4, 5]) / 6.0)
    for j, window in enumerate(plan):
        s, e, o = window.start, window.stop, window.overlap
        own_end = plan[j + 1].start if j + 1 < len(plan) else e
        # each window's reference: its own first source frames; its new frames: the clip's render and mask
        assert torch.equal(jobs[j].reference, cond.source[s: s + 3])
        assert torch.equal(jobs[j].render[o:], cond.render[s + o: e]) and torch.equal(jobs[j].hole[o:], cond.mask[s + o: e])
        # outside the seams the output is the window's own frames
        assert torch.equal(out[s + o: own_end], raw[j][o: own_end - s])
        if j == 0:
            continue
        prev_window = plan[j - 1]
        prev = raw[j - 1][s - prev_window.start: s - prev_window.start + o]
        # (1) continuation: the previous window's generated frames as known content
        assert torch.equal(jobs[j].render[:o], prev) and bool((jobs[j].hole[:o] == 0).all())
        # (2) the seam blend ...
        blended = (1 - w[:, None, None, None]) * prev + w[:, None, None, None] * raw[j][:o]
        assert torch.allclose(out[s: s + o], blended, atol=1e-6)
        # ... so no step across the seam exceeds the windows' own steps + their disagreement / (O + 1)
        stitched = out[s - 1: s + o + 1]
        prev_path = torch.cat([out[s - 1: s], prev, raw[j][o: o + 1]])
        cur_path = torch.cat([out[s - 1: s], raw[j][: o + 1]])
        step = (stitched[1:] - stitched[:-1]).abs()
        own = torch.maximum((prev_path[1:] - prev_path[:-1]).abs(), (cur_path[1:] - cur_path[:-1]).abs())
        gap = torch.cat([torch.zeros_like(out[:1]), (raw[j][:o] - prev).abs(), torch.zeros_like(out[:1])])
        assert bool((step <= own + (gap[1:] + gap[:-1]) / (o + 1) + 1e-6).all())

    again = redirect.generate(pipe, cond, **kwargs)
    assert torch.equal(again, out)  # deterministic
    other = redirect.generate(pipe, cond, **{**kwargs, "seed": 8})
    assert not torch.equal(other, out)


def test_a_clip_that_fits_one_window_is_exactly_the_single_call(pipe, clip):
    cond = conditions_of(clip, n=17)
    kwargs = dict(prompt="a room", num_inference_steps=2, guidance_scale=3.0, seed=5)
    out = redirect.generate(pipe, cond, window_frames=17, **kwargs)
    ref = pipe(cond.source, cond.render, cond.mask, reference=cond.reference, generator=torch.Generator().manual_seed(5),
               num_inference_steps=2, guidance_scale=3.0, prompt="a room")
    assert torch.equal(out, ref.frames)
    assert torch.equal(redirect.generate(pipe, cond, window_frames=None, **kwargs), ref.frames)


def test_bullet_time_windows_take_their_reference_from_their_end(pipe, clip, monkeypatch):
    cond = conditions_of(clip, n=25, target_pose=(0, 20, 0, 0, 0), mode="bullet")
    assert cond.reference_from == "end"
    calls = record_windows(monkeypatch)
    out = redirect.generate(pipe, cond, prompt="", num_inference_steps=1, guidance_scale=1.0, seed=1,
                            window_frames=17, overlap_frames=5)
    assert out.shape[0] == 25
    (_, [first], _), (_, [second], _) = calls
    assert torch.equal(first.reference, cond.source[14:17]) and torch.equal(second.reference, cond.source[22:25])
    assert second.render.shape[0] == 13  # the last window, padded by the sampler only


def test_generate_names_bad_inputs(pipe, clip):
    cond = conditions_of(clip, n=9)
    with pytest.raises(TrajCrafterError, match="window_frames must be 8m\\+1"):
        redirect.generate(pipe, cond, prompt="", window_frames=20)
    with pytest.raises(TrajCrafterError, match="one, or a list of them"):
        redirect.generate(pipe, [cond, "render.mp4"], prompt="")
    with pytest.raises(TrajCrafterError, match="one, or a list of them"):
        redirect.generate(pipe, [], prompt="")


def test_the_cli_generates_every_frame_of_a_long_clip(tmp_path, capsys):
    """``trajcrafter generate --frames 0`` on a 21-frame clip with 9-frame windows: 21 frames out."""
    import json

    import numpy as np

    from trajcrafter_core import cli
    from trajcrafter_core.fixtures import save_tiny_checkpoints
    from trajcrafter_core.synthetic import example_clip
    from trajcrafter_core.video import probe_video, write_video

    c = example_clip(num_frames=21, height=48, width=80, seed=6)
    write_video(tmp_path / "clip.mp4", c["frames"], fps=8)
    np.save(tmp_path / "depth.npy", c["depths"].numpy())
    tiny = save_tiny_checkpoints(tmp_path / "models", seed=2)
    rc = cli.main(["generate", str(tmp_path / "clip.mp4"), "--frames", "0", "--max-side", "0", "--depth",
                   str(tmp_path / "depth.npy"), "--base-dir", str(tiny["base"]), "--transformer-dir", str(tiny["transformer"]),
                   "--dtype", "fp32", "--device", "cpu", "--steps", "1", "--guidance", "1", "--sample-size", "32", "48",
                   "--window-frames", "9", "--overlap-frames", "3", "--reference-frames", "3", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["frames"] == 21 and any("overlapping windows of 9" in n for n in summary["notes"])
    assert probe_video(tmp_path / "out" / "generated.mp4").frame_count == 21
    rc = cli.main(["generate", str(tmp_path / "clip.mp4"), "--depth", str(tmp_path / "depth.npy"), "--base-dir",
                   str(tiny["base"]), "--transformer-dir", str(tiny["transformer"]), "--window-frames", "10",
                   "--out", str(tmp_path / "out2")])
    assert rc == 2 and "--window-frames/--overlap-frames: window_frames must be 8m+1" in capsys.readouterr().err
