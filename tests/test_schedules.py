"""Mode schedules: which source frame, camera and intrinsics each output frame uses.

Expectations follow the official demo's indexing, written out per mode:
gradual  frame i, camera i, K / K
bullet   last frame, camera i, K / K, reference frames from the end
direct   path of `cut` cameras; i < cut: frame 0 with camera i; i >= cut: frame i - cut with the
         final camera; output as long as the clip
zoom     frame i, camera i, K_src = K, K_dst focal linear from f to f_end (500 -> 250 official)
"""

from __future__ import annotations

import pickle

import pytest
import torch

from trajcrafter_core import camera
from trajcrafter_core.errors import TrajCrafterError

H, W = 576, 1024
K = camera.official_intrinsics(W, H)


def path_of(n: int) -> torch.Tensor:
    """A path whose camera i is recognisable: translation x = i + 1."""
    T = torch.eye(4).repeat(n, 1, 1)
    T[:, 0, 3] = torch.arange(n, dtype=torch.float32) + 1
    return T


def camera_ids(traj) -> list:
    return [int(round(float(v))) - 1 for v in traj.transforms[:, 0, 3]]


def test_gradual():
    traj = camera.make_trajectory("gradual", path_of(49), 49, H, W)
    assert len(traj) == 49 and traj.mode == "gradual" and traj.reference_from == "start"
    assert traj.source_index.tolist() == list(range(49))
    assert camera_ids(traj) == list(range(49))
    assert torch.equal(traj.K_src, K.repeat(49, 1, 1)) and torch.equal(traj.K_dst, K.repeat(49, 1, 1))
    assert traj.source_index.dtype == torch.long and traj.transforms.dtype == torch.float32


def test_gradual_needs_one_camera_per_frame():
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("gradual", path_of(20), 49, H, W)


def test_bullet_renders_last_frame_along_the_path():
    traj = camera.make_trajectory("bullet", path_of(49), 49, H, W)
    assert traj.source_index.tolist() == [48] * 49
    assert camera_ids(traj) == list(range(49))
    assert traj.reference_from == "end"
    longer = camera.make_trajectory("bullet", path_of(25), 13, H, W)  # any path length
    assert longer.source_index.tolist() == [12] * 25


def test_direct_official_cut():
    calls = []

    def path(n):
        calls.append(n)
        return path_of(n)

    traj = camera.make_trajectory("direct", path, 49, H, W)
    assert calls == [20]  # official: the path is generated with cut = 20 cameras
    assert len(traj) == 49 and traj.trim_start == 20
    assert traj.source_index.tolist() == [0] * 20 + list(range(29))
    assert camera_ids(traj) == list(range(20)) + [19] * 29
    assert torch.equal(traj.K_dst, K.repeat(49, 1, 1))


def test_direct_with_tensor_path_and_cut():
    traj = camera.make_trajectory("direct", path_of(4), 10, H, W)  # cut defaults to the path length
    assert traj.source_index.tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]
    assert camera_ids(traj) == [0, 1, 2, 3, 3, 3, 3, 3, 3, 3]
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("direct", path_of(4), 10, H, W, cut=5)  # path length != cut
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("direct", path_of, 10, H, W, cut=11)  # cut > clip
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("direct", path_of, 10, H, W, cut=1)


def test_dolly_zoom_official_focal_ramp():
    traj = camera.make_trajectory("zoom", path_of(49), 49, H, W)
    assert traj.mode == "dolly_zoom"
    assert traj.source_index.tolist() == list(range(49))
    assert torch.equal(traj.K_src, K.repeat(49, 1, 1))
    f = torch.tensor([500 + (250 - 500) * i / 48 for i in range(49)])
    assert torch.allclose(traj.K_dst[:, 0, 0], f, atol=1e-4) and torch.allclose(traj.K_dst[:, 1, 1], f, atol=1e-4)
    assert float(traj.K_dst[0, 0, 0]) == 500.0 and float(traj.K_dst[-1, 0, 0]) == 250.0
    assert torch.all(traj.K_dst[:, 0, 2] == 512) and torch.all(traj.K_dst[:, 1, 2] == 288)


def test_dolly_zoom_at_another_size_and_focal_end():
    Ks = camera.official_intrinsics(672, 384)
    traj = camera.make_trajectory("dolly_zoom", path_of(5), 5, 384, 672, focal_end=656.25)
    assert torch.allclose(traj.K_dst[:, 0, 0], torch.linspace(328.125, 656.25, 5))
    assert torch.equal(traj.K_src[0], Ks)
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("gradual", path_of(5), 5, H, W, focal_end=250.0)


def test_callable_paths_match_the_official_builders():
    radius = 2.0
    traj = camera.make_trajectory(
        "gradual", lambda n: camera.target_pose_trajectory(0, -30, 0.3, 0, 0, n, radius), 13, H, W
    )
    assert torch.equal(traj.transforms, camera.target_pose_trajectory(0, -30, 0.3, 0, 0, 13, radius))


def test_per_camera_target_intrinsics_follow_the_schedule():
    Kd = K.repeat(4, 1, 1).clone()
    Kd[:, 0, 0] = torch.tensor([400.0, 410.0, 420.0, 430.0])
    traj = camera.make_trajectory("direct", path_of(4), 6, H, W, K_dst=Kd)
    assert traj.K_dst[:, 0, 0].tolist() == [400, 410, 420, 430, 430, 430]


def test_bad_mode_and_intrinsics():
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("teleport", path_of(5), 5, H, W)
    singular = torch.zeros(3, 3)
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("gradual", path_of(5), 5, H, W, K=singular)
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("gradual", torch.zeros(5, 3, 3), 5, H, W)
    bad = path_of(5)
    bad[2, 0, 0] = float("nan")
    with pytest.raises(TrajCrafterError):
        camera.make_trajectory("gradual", bad, 5, H, W)


def test_rescaled_to_render_size():
    traj = camera.make_trajectory("zoom", path_of(5), 5, H, W)
    small = traj.rescaled(288, 512)
    assert small.size == (288, 512)
    # half size: f / 2, c' = (c + 0.5) / 2 - 0.5
    assert torch.allclose(small.K_src[0], torch.tensor([[250.0, 0, 255.75], [0, 250, 143.75], [0, 0, 1]]))
    assert torch.allclose(small.K_dst[:, 0, 0], traj.K_dst[:, 0, 0] / 2)
    assert torch.equal(small.transforms, traj.transforms) and torch.equal(small.source_index, traj.source_index)
    back = small.rescaled(H, W)
    assert torch.allclose(back.K_dst, traj.K_dst, atol=1e-4)


def test_trajectory_is_plain_data():
    traj = camera.make_trajectory("direct", path_of(4), 6, H, W)
    clone = pickle.loads(pickle.dumps(traj))
    assert torch.equal(clone.transforms, traj.transforms) and clone.trim_start == 4
    moved = traj.to("cpu")
    assert moved.transforms.dtype == torch.float32 and moved.source_index.dtype == torch.long
    assert moved.transforms.device.type == "cpu" and moved.K_dst.device.type == "cpu"
    assert moved.num_frames == 6


def test_trajectory_validates_its_fields():
    with pytest.raises(TrajCrafterError):
        camera.Trajectory(torch.arange(3), torch.eye(4).repeat(2, 1, 1), K, K, H, W)
    with pytest.raises(TrajCrafterError):
        camera.Trajectory(torch.arange(2), torch.eye(4).repeat(2, 1, 1), K, K, H, W, reference_from="middle")
    with pytest.raises(TrajCrafterError):
        camera.Trajectory(torch.tensor([0, -1]), torch.eye(4).repeat(2, 1, 1), K, K, H, W)
