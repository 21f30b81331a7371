"""Synthetic Scene → Lift Point Cloud → Camera Trajectory → Render Views, run as nodes on small
real inputs, checked against the synthetic scene's exact views and hand-built geometry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from nodes_harness import node_class, node_module, run_node, widget_defaults

TrajCrafterError = pytest.importorskip("trajcrafter_core.errors").TrajCrafterError

H, W, T = 64, 96, 5


@pytest.fixture(scope="module")
def scene():
    frames, depth, fps, count = run_node(
        "TrajCrafterSyntheticScene", scene_seed=3, num_frames=T, width=W, height=H, spheres=2, boxes=1
    )
    return frames, depth


@pytest.fixture(scope="module")
def cloud(scene):
    frames, depth = scene
    (pc,) = run_node("TrajCrafterLiftPointCloud", frames=frames, depth=depth, intrinsics="official", fov_degrees=60.0)
    return pc


@pytest.fixture()
def input_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJCRAFTER_INPUT_DIR", str(tmp_path))
    return tmp_path


SCHEDULE = {"mode", "direct_cut", "anchor", "radius_scale", "focal_end", "preview_size"}
SOURCES = {"target_pose": "TrajCrafterCameraTargetPose", "preset": "TrajCrafterCameraPreset",
           "trajectory_file": "TrajCrafterCameraTrajectoryFile", "import": "TrajCrafterImportCameraPath"}


def trajectory(cloud, camera="target_pose", **widgets):
    """A camera-source node (``camera``) with ``widgets``, scheduled by Camera Trajectory."""
    source = SOURCES[camera]
    args = widget_defaults(source)
    args.update({k: v for k, v in widgets.items() if k not in SCHEDULE})
    (path,) = run_node(source, **args)
    args = widget_defaults("TrajCrafterCameraTrajectory")
    args.update(point_cloud=cloud, camera_path=path, preview_size=128)
    args.update({k: v for k, v in widgets.items() if k in SCHEDULE})
    return run_node("TrajCrafterCameraTrajectory", **args)


def render_views(cloud, traj, **widgets):
    """Render Views at the frames' own size (no resize): ``(renders, hole_mask, preview)``."""
    args = dict(point_cloud=cloud, trajectory=traj, render_mode="official", clean_holes=False, size_policy="official",
                sample_height=H, sample_width=W)
    args.update(widgets)
    conditions, renders, mask, preview = run_node("TrajCrafterRenderViews", **args)
    assert torch.equal(conditions.render, renders) and torch.equal(conditions.mask, mask)
    return renders, mask, preview


def psnr(a, b):
    return float(10 * torch.log10(1.0 / torch.mean((a - b) ** 2).clamp_min(1e-12)))


def test_synthetic_scene_outputs_exact_frames_and_depth(scene):
    frames, depth = scene
    assert frames.shape == (T, H, W, 3) and 0 <= float(frames.min()) and float(frames.max()) <= 1
    assert depth.depth.shape == (T, H, W) and float(depth.depth.min()) > 0 and depth.source == "synthetic"
    from trajcrafter_core.synthetic import SyntheticScene, example_clip

    ref = example_clip(num_frames=T, height=H, width=W, scene=SyntheticScene(seed=3, num_spheres=2, num_boxes=1))
    assert torch.equal(ref["frames"], frames) and torch.equal(ref["depths"], depth.depth)


def test_lift_official_and_fov_intrinsics(scene):
    frames, depth = scene
    (pc,) = run_node("TrajCrafterLiftPointCloud", frames=frames, depth=depth, intrinsics="official", fov_degrees=60.0)
    assert pc.K[0, 0, 0] == pytest.approx(500.0 * W / 1024) and pc.K[0, 0, 2] == pytest.approx(W / 2)
    (pc2,) = run_node("TrajCrafterLiftPointCloud", frames=frames, depth=depth, intrinsics="fov", fov_degrees=90.0)
    assert pc2.K[0, 0, 0] == pytest.approx(W / 2)  # tan(45 deg) = 1
    # centre pixel lifts to (≈0, ≈0, depth)
    p = pc.points(0)[0, H // 2, W // 2]
    assert float(p[2]) == pytest.approx(float(depth.depth[0, H // 2, W // 2]))


def test_lift_refuses_depth_of_other_frames_and_resizes_other_sizes(scene):
    frames, depth = scene
    with pytest.raises(TrajCrafterError, match="depth has 4 depth map\\(s\\) but the clip has 5 frames"):
        short = type(depth)(depth.depth[:4], "test")
        run_node("TrajCrafterLiftPointCloud", frames=frames, depth=short, intrinsics="official", fov_degrees=60.0)
    half = type(depth)(depth.depth[:, ::2, ::2].contiguous(), "test")
    (pc,) = run_node("TrajCrafterLiftPointCloud", frames=frames, depth=half, intrinsics="official", fov_degrees=60.0)
    assert pc.depths.shape == (T, H, W)
    with pytest.raises(TrajCrafterError, match="depth must come from"):
        run_node("TrajCrafterLiftPointCloud", frames=frames, depth=depth.depth, intrinsics="official", fov_degrees=60.0)


def test_static_camera_renders_the_source_frames(scene, cloud):
    frames, _ = scene
    traj, preview = trajectory(cloud, theta=0.0, phi=0.0, r=0.0, x=0.0, y=0.0)
    renders, mask, hole_view = render_views(cloud, traj, render_mode="official", clean_holes=False
    )
    assert renders.shape == (T, H, W, 3) and mask.shape == (T, H, W)
    assert float(mask.mean()) < 0.01
    assert psnr(renders, frames) > 30  # official splat: float32 round-off blends a few neighbours


@pytest.mark.parametrize("render_mode", ["official", "zbuffer"])
def test_target_pose_render_matches_the_exact_synthetic_view(scene, cloud, render_mode):
    from trajcrafter_core.synthetic import SyntheticScene, render_target_views

    frames, depth = scene
    traj, _ = trajectory(cloud, mode="gradual", theta=5.0, phi=-10.0, r=0.1, x=0.0, y=0.0)
    renders, mask, _ = render_views(cloud, traj, render_mode=render_mode, clean_holes=False
    )
    exact, _ = render_target_views(
        SyntheticScene(seed=3, num_spheres=2, num_boxes=1), torch.eye(4), traj.transforms, traj.K_dst[0], H, W,
        times=torch.linspace(0, 1, T),
    )
    covered = mask < 0.5
    assert 0.0 < float(mask[-1].mean()) < 0.5  # the move uncovers something, most stays visible
    err = (renders - exact).abs().mean(-1)[covered]
    assert float(err.median()) < 0.05
    # the last frame moved: it differs from the source more than from the exact view
    assert float((renders[-1] - frames[-1]).abs().mean()) > float((renders[-1] - exact[-1]).abs().mean())


def test_modes_schedule_source_frames(cloud):
    gradual, _ = trajectory(cloud, mode="gradual")
    bullet, _ = trajectory(cloud, mode="bullet")
    direct, _ = trajectory(cloud, mode="direct", direct_cut=3)
    assert gradual.source_index.tolist() == [0, 1, 2, 3, 4]
    assert bullet.source_index.tolist() == [4] * T and bullet.reference_from == "end"
    assert direct.source_index.tolist() == [0, 0, 0, 0, 1]
    with pytest.raises(TrajCrafterError, match="direct cut 9 is longer than the clip"):
        trajectory(cloud, mode="direct", direct_cut=9)


def test_dolly_zoom_ramps_the_focal_length_to_keep_the_centre_size(cloud):
    traj, _ = trajectory(cloud, mode="dolly_zoom", theta=0.0, phi=0.0, r=0.5, x=0.0, y=0.0)
    f0 = 500.0 * W / 1024
    assert traj.K_dst[0, 0, 0] == pytest.approx(f0) and traj.K_dst[-1, 0, 0] == pytest.approx(f0 * 0.5)
    # camera moved forward by r * radius
    from trajcrafter_core.camera import orbit_radius

    radius = orbit_radius(cloud.depths[0])
    assert float(traj.transforms[-1, 2, 3]) == pytest.approx(-0.5 * radius, rel=1e-4)


def test_preset_matches_the_core_preset(cloud):
    from trajcrafter_core.camera import orbit_radius, preset_trajectory

    traj, _ = trajectory(cloud, camera="preset", preset="pan_right", amount=0.5)
    expected = preset_trajectory("pan_right", T, orbit_radius(cloud.depths[0]), amount=0.5)
    assert torch.allclose(traj.transforms, expected)


def test_official_txt_trajectory_file(cloud, input_dir, trajectories_dir):
    from trajcrafter_core.camera import orbit_radius, txt_trajectory

    (input_dir / "loop1.txt").write_text((trajectories_dir / "loop1.txt").read_text())
    node = node_class("TrajCrafterCameraTrajectoryFile")
    assert "loop1.txt" in node.INPUT_TYPES()["required"]["trajectory_file"][0]
    assert node.VALIDATE_INPUTS(trajectory_file="loop1.txt") is True  # checked before the queue runs
    traj, _ = trajectory(cloud, camera="trajectory_file", trajectory_file="loop1.txt")
    expected = txt_trajectory(trajectories_dir / "loop1.txt", T, orbit_radius(cloud.depths[0]))
    assert torch.allclose(traj.transforms, expected)


def test_bundled_example_trajectories_are_listed_and_read(cloud, input_dir):
    from trajcrafter_core.camera import orbit_radius, txt_trajectory

    options = node_class("TrajCrafterCameraTrajectoryFile").INPUT_TYPES()["required"]["trajectory_file"][0]
    assert options[0] == "none" and "swing.txt [example]" in options
    traj, _ = trajectory(cloud, camera="trajectory_file", trajectory_file="swing.txt [example]")
    folder = node_module("camera_nodes").EXAMPLES_DIR
    expected = txt_trajectory(f"{folder}/swing.txt", T, orbit_radius(cloud.depths[0]))
    assert torch.allclose(traj.transforms, expected)
    with pytest.raises(TrajCrafterError, match="outside"):
        trajectory(cloud, camera="trajectory_file", trajectory_file="../camera_nodes.py [example]")


def test_realestate10k_and_nerfstudio_files(cloud, input_dir):
    # camera 1 moved 0.5 units right: world-to-camera translation -0.5 in x
    rows = ["https://example.com/video"]
    for i, tx in enumerate([0.0, -0.25, -0.5]):
        rows.append(f"{i * 100000} 0.5 0.888 0.5 0.5 0 0 1 0 0 {tx} 0 1 0 0 0 0 1 0")
    (input_dir / "re10k.txt").write_text("\n".join(rows) + "\n")
    traj, _ = trajectory(cloud, camera="import", camera_file="re10k.txt")
    assert torch.allclose(traj.transforms[-1, :3, 3], torch.tensor([-0.5, 0.0, 0.0]), atol=1e-5)
    # nerfstudio: OpenGL camera-to-world, camera moves 1 unit forward (-z in OpenGL)
    cams = [{"camera_to_world": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, -z, 0, 0, 0, 1], "fov": 50} for z in (0.0, 0.5, 1.0)]
    (input_dir / "path.json").write_text(json.dumps({"render_height": H, "render_width": W, "camera_type": "perspective", "camera_path": cams}))
    traj, _ = trajectory(cloud, camera="import", camera_file="none", camera_path="path.json")
    assert torch.allclose(traj.transforms[-1, :3, 3], torch.tensor([0.0, 0.0, -1.0]), atol=1e-5)
    assert traj.K_dst[0, 1, 1] == pytest.approx(0.5 * H / math.tan(math.radians(25)), rel=1e-4)


def test_trajectory_file_errors_name_the_problem(cloud, input_dir):
    with pytest.raises(TrajCrafterError, match="no trajectory file is chosen"):
        trajectory(cloud, camera="trajectory_file")
    with pytest.raises(TrajCrafterError, match="does not exist"):
        trajectory(cloud, camera="trajectory_file", trajectory_file="gone.txt")
    (input_dir / "bad.txt").write_text("1 2 3\nfour five\n7 8\n")
    with pytest.raises(TrajCrafterError, match="numbers only"):
        trajectory(cloud, camera="trajectory_file", trajectory_file="bad.txt")
    assert "numbers only" in node_class("TrajCrafterCameraTrajectoryFile").VALIDATE_INPUTS(trajectory_file="bad.txt")
    with pytest.raises(TrajCrafterError, match="outside ComfyUI's folder"):
        trajectory(cloud, camera="trajectory_file", trajectory_path="../../etc/passwd.txt")
    (input_dir / "folder.txt").mkdir()
    with pytest.raises(TrajCrafterError, match="trajectory file 'folder.txt' is a folder"):
        trajectory(cloud, camera="trajectory_file", trajectory_file="folder.txt")
    # numbers read from a file get the sliders' ranges: r >= 5 used to render NaN
    (input_dir / "far.txt").write_text("0 10\n0 -20\n0 5\n")
    with pytest.raises(TrajCrafterError, match=r"far.txt, line 3 \(r\): 5 is outside the official range ±0.6"):
        trajectory(cloud, camera="trajectory_file", trajectory_file="far.txt")
    # each file node reads its own kind
    (input_dir / "re10k.txt").write_text("0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
                                         "1 0.5 0.9 0.5 0.5 0 0 1 0 0 -0.1 0 1 0 0 0 0 1 0\n")
    with pytest.raises(TrajCrafterError, match="load it with Import Camera Path"):
        trajectory(cloud, camera="trajectory_file", trajectory_file="re10k.txt")


def test_preview_draws_source_and_path_cameras(cloud):
    traj, preview = trajectory(cloud, phi=-40.0)
    assert preview.shape == (1, 128, 2 * 128 + 4, 3)
    img = (preview[0].numpy() * 255).round().astype(np.uint8)
    white = np.all(img == 255, axis=-1).sum()
    orange = np.all(np.abs(img.astype(int) - [255, 140, 30]) <= 2, axis=-1).sum()
    assert white > 20 and orange > 20


def test_frusta_follow_the_transform_convention():
    cp = node_module("camera_preview")
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    T_right = np.eye(4)
    T_right[0, 3] = -2.0  # X_dst = X_src - (2, 0, 0): the camera moved 2 units right
    f = cp.camera_frusta(np.stack([np.eye(4), T_right]), np.stack([K, K]), 48, 64, depth=1.0)
    assert np.allclose(f[0, 0], 0) and np.allclose(f[1, 0], [2.0, 0, 0])
    assert np.allclose(f[1, 1:, 2], 1.0)  # corners one unit in front
    assert f[1, 1, 0] < f[1, 2, 0] and f[1, 1, 1] < f[1, 3, 1]  # top-left is left of top-right, above bottom


def test_render_mask_preview_and_progress(scene, cloud):
    bridge = node_module("bridge")
    seen = []
    bridge.Progress.listeners.append(lambda done, total: seen.append((done, total)))
    try:
        traj, _ = trajectory(cloud, phi=-40.0)
        renders, mask, hole_view = render_views(cloud, traj, render_mode="official", clean_holes=True
        )
    finally:
        bridge.Progress.listeners.clear()
    assert seen and seen[-1] == (T, T)
    holes = mask > 0.5
    assert holes.any()
    assert torch.allclose(hole_view[holes], torch.tensor([1.0, 0.0, 1.0]))
    assert torch.equal(hole_view[~holes], renders[~holes])


def test_render_can_be_interrupted(cloud):
    bridge = node_module("bridge")
    traj, _ = trajectory(cloud)
    bridge.request_interrupt()
    with pytest.raises(bridge.Interrupted):
        render_views(cloud, traj, render_mode="official", clean_holes=False)
    # the flag is consumed: the next run works
    renders, _, _ = render_views(cloud, traj, render_mode="official", clean_holes=False)
    assert renders.shape[0] == T


def test_nodes_show_their_previews_in_themselves(cloud):
    bridge = node_module("bridge")
    traj, _ = trajectory(cloud, phi=-30.0)
    for node, args in (("TrajCrafterRenderViews", dict(point_cloud=cloud, trajectory=traj, render_mode="official",
                                                       clean_holes=True, size_policy="official")),
                       ("TrajCrafterCameraTrajectory", dict(widget_defaults("TrajCrafterCameraTrajectory"),
                                                            point_cloud=cloud, camera_path=run_node(
                                                                "TrajCrafterCameraPreset", preset="orbit_left",
                                                                amount=1.0)[0]))):
        out = node_class(node)().run(**args)
        images = out["ui"]["images"]
        assert len(out["result"]) == len(node_class(node).RETURN_TYPES)
        assert 1 <= len(images) <= 4 and all(i["type"] == "temp" for i in images)
        from PIL import Image

        for entry in images:
            with Image.open(f"{bridge.temp_directory()}/{entry['filename']}") as im:
                assert im.size[0] >= 64 and im.mode == "RGB"


def test_synthetic_scene_reports_each_frame_and_can_be_cancelled():
    bridge = node_module("bridge")
    seen = []
    bridge.Progress.listeners.append(lambda done, total: seen.append((done, total)))
    try:
        run_node("TrajCrafterSyntheticScene", scene_seed=1, num_frames=3, width=1024, height=576, spheres=1, boxes=1)
        assert seen == [(1, 3), (2, 3), (3, 3)]
        bridge.Progress.listeners.append(lambda done, total: bridge.request_interrupt() if done == 1 else None)
        with pytest.raises(bridge.Interrupted):
            run_node("TrajCrafterSyntheticScene", scene_seed=1, num_frames=3, width=1024, height=576, spheres=1, boxes=1)
    finally:
        bridge.Progress.listeners.clear()
