"""The redirect layer: the official flow end to end (render at the read size, then resize), size
policies, and the sampler call — checked against expectations built here by hand: the schedule
of each mode written out, the (already verified) official-mode renderer run at 576x1024, and the
resize to 384x672 computed with its formula in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajcrafter_core import camera, redirect, sizing
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.render import render_views
from trajcrafter_core.specs import CameraSpec

T, H, W = 9, 576, 1024  # the official read size
SAMPLE = (384, 672)


@pytest.fixture(scope="module")
def clip():
    from trajcrafter_core.synthetic import example_clip

    c = example_clip(num_frames=T, height=H, width=W, seed=2)
    return c["frames"], c["depths"]


def bilinear_by_hand(x: np.ndarray, size) -> np.ndarray:
    """``[T, H, W, C]`` resized with the align_corners=False formula: source coordinate
    ``(i + 0.5) * in / out - 0.5`` clamped at 0, weights from its fraction."""
    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo)[:, None]

    x = x.astype(np.float64)
    r0, r1, fr = axis(x.shape[1], size[0])
    c0, c1, fc = axis(x.shape[2], size[1])
    rows = x[:, r0] * (1 - fr[None, :, :, None]) + x[:, r1] * fr[None, :, :, None]
    return rows[:, :, c0] * (1 - fc[None, None]) + rows[:, :, c1] * fc[None, None]


def nearest_by_hand(m: np.ndarray, size) -> np.ndarray:
    """``[T, H, W]`` → pixel ``(i, j)`` takes source ``(floor(i * H / h), floor(j * W / w))``."""
    rows = np.floor(np.arange(size[0]) * m.shape[1] / size[0]).astype(int)
    cols = np.floor(np.arange(size[1]) * m.shape[2] / size[1]).astype(int)
    return m[:, rows][:, :, cols]


def expected_official(frames, depths, mode, pose=None, txt=None, cut=None, clean_holes=True):
    """The official demo's conditions, written out: schedule, render at 576x1024, resize."""
    K = torch.tensor([[500.0, 0, 512], [0, 500.0, 288], [0, 0, 1]])  # demo.py's f, cx, cy
    radius = min(float(depths[0, H // 2, W // 2]), 5.0)
    n = cut if mode == "direct" else T
    path = (camera.txt_trajectory(txt, n, radius) if txt is not None
            else camera.target_pose_trajectory(*pose, num_frames=n, radius=radius))
    if mode == "gradual":
        src, tr, K_dst = list(range(T)), path, K.expand(T, 3, 3)
    elif mode == "bullet":
        src, tr, K_dst = [T - 1] * T, path, K.expand(T, 3, 3)
    elif mode == "direct":
        src = [0 if i < cut else i - cut for i in range(T)]
        tr, K_dst = path[[min(i, cut - 1) for i in range(T)]], K.expand(T, 3, 3)
    else:  # zoom: get_poses_f, focal 500 -> 250
        src, tr = list(range(T)), path
        K_dst = K.repeat(T, 1, 1)
        K_dst[:, 0, 0] = K_dst[:, 1, 1] = torch.linspace(500.0, 250.0, T)
    render, hole = render_views(frames[src], depths[src], K, tr, K_dst, mode="official", clean_holes=clean_holes)
    source = bilinear_by_hand(frames.numpy(), SAMPLE)
    ref = source[-10:] if mode == "bullet" else source[:10]
    return (source, bilinear_by_hand(render.numpy(), SAMPLE), nearest_by_hand(hole.numpy(), SAMPLE), ref)


@pytest.mark.parametrize("mode, kwargs", [
    ("gradual", dict(target_pose=(0, -30, 0.3, 0, 0))),
    ("direct", dict(target_pose=(0, -30, 0.3, 0, 0), direct_cut=4)),
    ("bullet", dict(target_pose=(0, -30, 0.3, 0, 0))),
    ("dolly_zoom", dict(target_pose=(0, 0, 0.5, 0, 0))),
    ("gradual", dict(traj_txt="loop1")),
])
def test_official_policy_reproduces_the_official_demo(clip, trajectories_dir, mode, kwargs):
    frames, depths = clip
    if "traj_txt" in kwargs:
        kwargs = dict(traj_txt=str(trajectories_dir / f"{kwargs['traj_txt']}.txt"))
    c = redirect.prepare_conditions(frames, depths, mode=mode, size_policy="official", **kwargs)
    source, render, hole, ref = expected_official(frames, depths, mode, pose=kwargs.get("target_pose"),
                                                  txt=kwargs.get("traj_txt"), cut=kwargs.get("direct_cut"))
    assert c.size == SAMPLE and c.render_size == (H, W) and c.size_policy == "official"
    # float32 interpolation weights against the float64 formula: a few 1e-5 at most
    assert float(np.abs(c.source.numpy() - source).max()) < 1e-4
    assert float(np.abs(c.render.numpy() - render).max()) < 1e-4
    assert np.array_equal(c.mask.numpy(), hole) and 0.01 < float(hole.mean()) < 0.6
    assert float(np.abs(c.reference.numpy() - ref).max()) < 1e-4 and c.reference.shape[0] == min(10, T)
    assert c.trajectory.size == SAMPLE and c.trajectory.radius == pytest.approx(float(depths[0, H // 2, W // 2]))


def test_rendering_at_the_model_size_is_not_the_official_flow(clip):
    """Why the layer exists: a render made at 384x672 has other holes than one made at 576x1024
    and resized (what the released model was trained on)."""
    frames, depths = clip
    official = redirect.prepare_conditions(frames, depths, target_pose=(0, -30, 0.3, 0, 0))
    small = redirect.prepare_conditions(redirect.resize_video(frames, SAMPLE),
                                        torch.nn.functional.interpolate(depths[:, None], SAMPLE)[:, 0],
                                        target_pose=(0, -30, 0.3, 0, 0))
    assert small.render_size == SAMPLE
    assert float((official.mask != small.mask).float().mean()) > 0.002


def test_frames_at_the_sample_size_are_rendered_there(clip):
    frames, depths = clip
    f, d = redirect.resize_video(frames, SAMPLE), torch.nn.functional.interpolate(depths[:, None], SAMPLE)[:, 0]
    for policy in sizing.SIZE_POLICIES:
        c = redirect.prepare_conditions(f, d, preset="orbit_right", size_policy=policy, clean_holes=False)
        K = camera.official_intrinsics(SAMPLE[1], SAMPLE[0])
        traj = camera.preset_trajectory("orbit_right", T, camera.orbit_radius(d[0]))
        render, hole = render_views(f, d, K, traj, mode="official")
        assert c.render_size == SAMPLE and torch.equal(c.render, render) and torch.equal(c.mask, hole)
        assert torch.equal(c.source, f)


def test_keep_aspect_sizes():
    assert sizing.keep_aspect_size(576, 1024) == (384, 672)  # 16:9 is the official size
    assert sizing.keep_aspect_size(720, 1296) == (384, 688)  # 1.8:1 is more than a 16-px step from 672/384
    assert sizing.keep_aspect_size(1280, 720) == (672, 384)  # portrait 9:16
    assert sizing.keep_aspect_size(720, 720) == (512, 512)
    h, w = sizing.keep_aspect_size(480, 640)  # 4:3
    assert (h % 16, w % 16) == (0, 0) and abs(w - h * 4 / 3) < 8 and abs(h * w / (384 * 672) - 1) < 0.05
    assert sizing.sample_size_for((1280, 720), "official") == (384, 672)
    assert sizing.sample_size_for((1280, 720), "keep_aspect", (320, 176)) == (320, 176)
    with pytest.raises(TrajCrafterError, match="multiples of 16"):
        sizing.sample_size_for((1280, 720), "keep_aspect", (320, 170))
    with pytest.raises(TrajCrafterError, match="size_policy must be one of"):
        sizing.sample_size_for((1280, 720), "stretch")
    assert sizing.read_size_for((384, 672)) == (576, 1024)


def test_resize_helpers_follow_the_official_formulas():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 37, 53, 3, generator=g)
    assert float(np.abs(redirect.resize_video(x, (16, 32)).numpy() - bilinear_by_hand(x.numpy(), (16, 32))).max()) < 1e-5
    m = (torch.rand(2, 37, 53, generator=g) > 0.5).float()
    assert np.array_equal(redirect.resize_mask(m, (16, 32)).numpy(), nearest_by_hand(m.numpy(), (16, 32)))


def test_camera_sources_build_the_same_trajectory_as_the_camera_module(clip, trajectories_dir):
    frames, depths = clip
    radius = camera.orbit_radius(depths[0])
    K = camera.official_intrinsics(W, H)
    traj = redirect.build_trajectory(CameraSpec(preset="arc_up", amount=0.5, anchor=2), depths, K)
    assert torch.equal(traj.transforms, camera.preset_trajectory("arc_up", T, radius, 0.5, anchor_index=2))
    traj = redirect.build_trajectory(CameraSpec(file=str(trajectories_dir / "loop2.txt"), radius_scale=0.8), depths, K)
    assert torch.equal(traj.transforms, camera.txt_trajectory(trajectories_dir / "loop2.txt", T, camera.orbit_radius(depths[0], 0.8)))
    # dolly zoom keeps the centre's size: f * (1 - r) for a pose (the official 500 -> 250 at r = 0.5)
    zoom = redirect.build_trajectory(CameraSpec(target_pose=(0, 0, 0.3, 0, 0), mode="zoom"), depths, K)
    assert float(zoom.K_dst[-1, 0, 0]) == pytest.approx(500 * 0.7)
    # ... and the path's own end for a file: the same rule, derived from the transforms
    from_file = redirect.build_trajectory(CameraSpec(file=str(trajectories_dir / "loop1.txt"), mode="dolly_zoom"), depths, K)
    keys = camera.parse_trajectory_txt(trajectories_dir / "loop1.txt")
    assert keys[2][-1] == 0 and float(from_file.K_dst[-1, 0, 0]) == pytest.approx(500.0, rel=1e-4)  # loop1 ends at r = 0


def test_camera_errors_name_the_input(clip, tmp_path):
    frames, depths = clip
    with pytest.raises(TrajCrafterError, match="exactly one camera source"):
        CameraSpec(target_pose=(0, 1, 0, 0, 0), preset="orbit_left")
    with pytest.raises(TrajCrafterError, match=r"target pose phi = 75 is outside the official range"):
        CameraSpec(target_pose=(0, 75, 0, 0, 0))
    with pytest.raises(TrajCrafterError, match="direct cut 20 is longer than the clip"):
        redirect.prepare_conditions(frames, depths, target_pose=(0, -30, 0.3, 0, 0), mode="direct")
    with pytest.raises(TrajCrafterError, match="anchor frame 9 is outside"):
        redirect.prepare_conditions(frames, depths, preset="orbit_left", anchor=9)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(TrajCrafterError, match="trajectory file empty.txt is empty"):
        redirect.prepare_conditions(frames, depths, traj_txt=str(empty))
    with pytest.raises(TrajCrafterError, match="is a folder"):
        redirect.prepare_conditions(frames, depths, traj_txt=str(tmp_path))
    with pytest.raises(TrajCrafterError, match="not both"):
        redirect.prepare_conditions(frames, depths, camera=CameraSpec(preset="static"), target_pose=(0, 0, 0, 0, 0))


# ------------------------------------------------------------------------------------ sampling


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from trajcrafter_core.fixtures import save_tiny_checkpoints
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    tiny = save_tiny_checkpoints(tmp_path_factory.mktemp("tiny"), seed=3)
    return TrajectoryCrafterPipeline.from_pretrained(tiny["base"], tiny["transformer"], dtype="fp32", device="cpu")


def test_generate_equals_the_seeded_pipeline_call(pipe):
    from trajcrafter_core.synthetic import example_clip

    c = example_clip(num_frames=9, height=48, width=64, seed=1)
    cond = redirect.prepare_conditions(c["frames"], c["depths"], mode="bullet", target_pose=(0, 20, 0, 0, 0),
                                       sample_size=(32, 48), num_reference_frames=3)
    assert torch.equal(cond.reference, cond.source[-3:])  # bullet time: the last frames
    notes = []
    out = redirect.generate(pipe, cond, prompt="a room", num_inference_steps=2, guidance_scale=3.0, seed=7, notes=notes)
    ref = pipe(cond.source, cond.render, cond.mask, prompt="a room", num_inference_steps=2, guidance_scale=3.0,
               generator=torch.Generator().manual_seed(7), num_reference_frames=3, reference_from="end")
    assert out.shape == (9, 32, 48, 3) and torch.equal(out, ref.frames) and notes == []
    other = redirect.generate(pipe, cond, prompt="a room", num_inference_steps=2, guidance_scale=3.0, seed=8)
    assert not torch.equal(other, out)
    with pytest.raises(TrajCrafterError, match="conditions must come from"):
        redirect.generate(pipe, (cond.source, cond.render, cond.mask), prompt="")
