"""Camera moves beyond the official ramps: ReCamMaster's ten presets against their own 81-frame
paths (numbers read from ReCamMaster's ``camera_extrinsics.json`` through its own loader's axis
conversion), eased ramps, the stabilize preset, a target camera reached from the source view, and
the zoom ramp — each through the one builder every front-end uses (``redirect.build_trajectory``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajcrafter_core import camera, camera_moves, redirect
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.specs import PRESET_NAMES, RECAMMASTER_PRESETS, CameraSpec

# ReCamMaster cam01..cam10 at frames 20, 50, 80 of 81, relative to frame 0, in OpenCV camera axes
# and metres: (yaw deg, + = facing right; pitch deg, + = facing up; camera centre x, y, z).
RECAMMASTER_REFERENCE = {
    "recam_pan_right": [(4.9689, 0, 0, 0, 0), (12.4223, 0, 0, 0, 0), (19.8758, 0, 0, 0, 0)],
    "recam_pan_left": [(-4.9689, 0, 0, 0, 0), (-12.4223, 0, 0, 0, 0), (-19.8758, 0, 0, 0, 0)],
    "recam_tilt_up": [(0, 2.4845, 0, 0, 0), (0, 6.2112, 0, 0, 0), (0, 9.9379, 0, 0, 0)],
    "recam_tilt_down": [(0, -2.4845, 0, 0, 0), (0, -6.2112, 0, 0, 0), (0, -9.9379, 0, 0, 0)],
    "recam_zoom_in": [(0, 0, 0, 0, 0.4969), (0, 0, 0, 0, 1.2422), (0, 0, 0, 0, 1.9876)],
    "recam_zoom_out": [(0, 0, 0, 0, -0.4969), (0, 0, 0, 0, -1.2422), (0, 0, 0, 0, -1.9876)],
    "recam_translate_up": [(0, -3.5542, 0, -0.24845, 0), (0, -8.8264, 0, -0.62112, 0), (0, -13.9525, 0, -0.99379, 0)],
    "recam_translate_down": [(0, 3.5542, 0, 0.24845, 0), (0, 8.8264, 0, 0.62112, 0), (0, 13.9525, 0, 0.99379, 0)],
    "recam_arc_left": [(7.3224, 0, -0.4969, 0, 0.1331), (18.7137, 0, -1.2422, 0, 0.3329), (29.8219, 0, -1.9876, 0, 0.5326)],
    "recam_arc_right": [(-7.3224, 0, 0.4969, 0, 0.1331), (-18.7137, 0, 1.2422, 0, 0.3329), (-29.8219, 0, 1.9876, 0, 0.5326)],
}


def camera_pose(T):
    """(yaw, pitch, centre) of the camera a source→target transform describes."""
    pose = np.linalg.inv(T.double().numpy())
    z = pose[:3, 2]
    return math.degrees(math.atan2(z[0], z[2])), math.degrees(math.asin(-z[1])), pose[:3, 3], pose[:3, :3]


@pytest.mark.parametrize("name", sorted(RECAMMASTER_PRESETS))
def test_recammaster_presets_follow_recammasters_own_paths(name):
    """With the orbit radius at ReCamMaster's 4 m subject distance, depth units are metres."""
    path = camera.preset_trajectory(name, 81, radius=4.0)
    for frame, (yaw, pitch, *centre) in zip((20, 50, 80), RECAMMASTER_REFERENCE[name]):
        our_yaw, our_pitch, our_centre, R = camera_pose(path[frame])
        assert our_yaw == pytest.approx(yaw, abs=0.01) and our_pitch == pytest.approx(pitch, abs=0.01)
        assert np.allclose(our_centre, centre, atol=2e-3)
        assert abs(R[1, 0]) < 1e-6  # no roll: the x axis stays level
    assert torch.equal(path[0], torch.eye(4))


def test_recammaster_presets_scale_with_the_radius_and_amount():
    small = camera.preset_trajectory("recam_arc_left", 9, radius=2.0)
    _, _, centre, _ = camera_pose(small[-1])
    assert np.allclose(centre, np.array([-1.9876, 0, 0.5326]) / 2, atol=1e-3)  # 4 m -> radius 2
    back = camera.preset_trajectory("recam_pan_right", 9, radius=2.0, amount=-0.5)
    assert camera_pose(back[-1])[0] == pytest.approx(-19.876 / 2, abs=1e-3)
    with pytest.raises(TrajCrafterError, match="camera path .*not a target pose"):
        camera.preset_pose("recam_zoom_in")
    assert set(RECAMMASTER_PRESETS) <= set(PRESET_NAMES) and "stabilize" in PRESET_NAMES


def test_ease_in_out_ramps_start_and_stop_at_rest():
    t = camera.ramp(5, "ease_in_out")
    assert np.allclose(t, [(1 - math.cos(math.pi * s)) / 2 for s in (0, 0.25, 0.5, 0.75, 1)])
    eased = camera.target_pose_trajectory(0, -30, 0, 0, 0, num_frames=5, radius=3.0, easing="ease_in_out")
    by_hand = camera.relative_transforms(camera.orbit_poses([0] * 5, -30 * t, [0] * 5, 3.0))
    assert torch.allclose(eased, by_hand, atol=1e-6)
    linear = camera.target_pose_trajectory(0, -30, 0, 0, 0, num_frames=5, radius=3.0)
    assert torch.equal(linear[[0, -1]], eased[[0, -1]]) and not torch.allclose(linear[1], eased[1], atol=1e-3)


@pytest.fixture(scope="module")
def clip():
    from trajcrafter_core.synthetic import example_clip

    c = example_clip(num_frames=9, height=48, width=64, seed=3)
    return c["frames"], c["depths"]


def test_stabilize_is_the_fixed_anchor_camera(clip):
    frames, depths = clip
    for anchor in (0, 4):
        traj = redirect.build_trajectory(CameraSpec(preset="stabilize", anchor=anchor), depths)
        assert torch.equal(traj.transforms, torch.eye(4).expand(9, 4, 4))
        assert torch.equal(traj.source_index, torch.arange(9))


def test_target_camera_reaches_its_target_and_follows_an_orbit(clip):
    frames, depths = clip
    radius = camera.orbit_radius(depths[0])
    orbit = camera.target_pose_trajectory(0, 25, 0, 0, 0, num_frames=9, radius=radius)
    spec = CameraSpec(target_camera=tuple(orbit[-1].double().flatten().tolist()))
    traj = redirect.build_trajectory(spec, depths)
    assert torch.allclose(traj.transforms, orbit, atol=1e-5)  # a pure orbit is followed frame by frame
    general = camera.target_pose_trajectory(15, -20, 0.3, 0.2, -0.1, num_frames=9, radius=radius)[-1]
    path = camera_moves.target_camera_path(general, 9, pivot=(0, 0, radius), easing="ease_in_out")
    assert torch.equal(path[0], torch.eye(4)) and torch.allclose(path[-1], general, atol=1e-5)
    with pytest.raises(TrajCrafterError, match="rigid transform"):
        CameraSpec(target_camera=tuple((2 * torch.eye(4)).flatten().tolist()))
    with pytest.raises(TrajCrafterError, match="16 finite numbers .*got 2 numbers"):
        CameraSpec(target_camera=(1.0, 0.0))


def test_zoom_ramps_the_focal_length(clip):
    frames, depths = clip
    traj = redirect.build_trajectory(CameraSpec(preset="orbit_left", zoom=2.0), depths)
    f0 = float(camera.official_intrinsics(64, 48)[0, 0])
    assert torch.allclose(traj.K_dst[:, 0, 0], torch.linspace(f0, 2 * f0, 9))
    assert torch.allclose(traj.K_dst[:, 1, 1], traj.K_dst[:, 0, 0]) and torch.equal(traj.K_dst[:, :2, 2], traj.K_src[:, :2, 2])
    with pytest.raises(TrajCrafterError, match="focal_end, not zoom"):
        CameraSpec(preset="dolly_zoom", mode="dolly_zoom", zoom=2.0)
    with pytest.raises(TrajCrafterError, match="easing must be one of"):
        CameraSpec(preset="orbit_left", easing="bounce")


def test_presets_reach_the_cli_and_the_node():
    from nodes_harness import node_class
    from trajcrafter_core.cli import build_parser

    args = build_parser().parse_args(["demo", "--preset", "recam_arc_left", "--easing", "ease_in_out"])
    assert args.preset == "recam_arc_left" and args.easing == "ease_in_out"
    inputs = node_class("TrajCrafterCameraPreset").INPUT_TYPES()
    choices = inputs["required"]["preset"][0]
    assert "recam_arc_left" in choices and "stabilize" in choices
    assert inputs["optional"]["easing"][0] == ["linear", "ease_in_out"]
    assert "zoom" in inputs["optional"] and "easing" in node_class("TrajCrafterCameraTargetPose").INPUT_TYPES()["optional"]
