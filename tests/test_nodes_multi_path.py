"""The nodes for several camera paths, long clips and picking the camera in 3-D, run as ComfyUI
runs them (without ComfyUI): Camera Paths → Render Many Views → Sampler (Many Paths) equals the
core layer path by path; the Sampler with Sampling Options takes any length; Export Scene 3D
writes the .glb for Preview 3D and Load 3D, and Camera From Load 3D turns the viewer's camera back
into the path it came from."""

from __future__ import annotations

import os

import pytest
import torch

from nodes_harness import run_node, widget_defaults
from trajcrafter_core import redirect
from trajcrafter_core.errors import TrajCrafterError


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    save_tiny_checkpoints(root / "trajectorycrafter", seed=6)
    return root


@pytest.fixture(scope="module")
def model(models_root):
    old = os.environ.get("TRAJCRAFTER_MODELS_DIR")
    os.environ["TRAJCRAFTER_MODELS_DIR"] = str(models_root)
    try:
        args = widget_defaults("TrajCrafterLoadModel")
        args.update(transformer="TrajectoryCrafter", base_model="CogVideoX-Fun-V1.1-5b-InP", precision="fp32")
        return run_node("TrajCrafterLoadModel", **args)[0]
    finally:
        if old is None:
            del os.environ["TRAJCRAFTER_MODELS_DIR"]
        else:
            os.environ["TRAJCRAFTER_MODELS_DIR"] = old


@pytest.fixture(scope="module")
def cloud():
    frames, depth = run_node("TrajCrafterSyntheticScene", **{**widget_defaults("TrajCrafterSyntheticScene"),
                                                              "num_frames": 21, "width": 96, "height": 64})[:2]
    return run_node("TrajCrafterLiftPointCloud", frames=frames, depth=depth, intrinsics="official", fov_degrees=60.0)[0]


CAMERA_NODES = {"preset": "TrajCrafterCameraPreset", "target_pose": "TrajCrafterCameraTargetPose"}


def camera_path(node, **widgets):
    return run_node(node, **{**widget_defaults(node), **widgets})[0]


def trajectory(cloud, camera, mode="gradual", **widgets):
    """A scheduled path: the camera node ``camera`` with ``widgets``, then Camera Trajectory."""
    path = camera if not isinstance(camera, str) else camera_path(CAMERA_NODES[camera], **widgets)
    args = widget_defaults("TrajCrafterCameraTrajectory")
    args.update(point_cloud=cloud, camera_path=path, mode=mode, preview_size=128)
    return run_node("TrajCrafterCameraTrajectory", **args)[0]


def render_args(**more):
    return dict(render_mode="official", clean_holes=True, size_policy="keep_aspect", sample_height=32,
                sample_width=48, reference_frames=3, **more)


SAMPLE = dict(prompt="a room", steps=1, guidance=2.0, seed=3, scheduler="DDIM_Origin")


def test_many_paths_through_the_nodes_equal_the_core_layer(cloud, model):
    paths = [trajectory(cloud, "preset", preset="orbit_left"),
             trajectory(cloud, "preset", preset="recam_arc_right", easing="ease_in_out"),
             trajectory(cloud, "target_pose", mode="bullet", theta=0.0, phi=20.0, r=0.0)]
    (first_two,) = run_node("TrajCrafterCameraPaths", trajectory_1=paths[0], trajectory_2=paths[1])
    (collected,) = run_node("TrajCrafterCameraPaths", trajectory_1=paths[2], paths=first_two)
    assert [label for label, _ in collected] == ["path 1: gradual, 21 frames", "path 2: gradual, 21 frames",
                                                 "path 3: bullet, 21 frames"]
    conditions, comparison = run_node("TrajCrafterRenderManyViews", point_cloud=cloud, paths=collected, **render_args())
    assert len(conditions) == 3 and comparison.shape[0] == 21 and comparison.shape[2] > 3 * 48
    single = run_node("TrajCrafterRenderViews", point_cloud=cloud, trajectory=paths[1], **render_args())[0]
    assert torch.equal(single.render, conditions[1][1].render) and torch.equal(single.mask, conditions[1][1].mask)

    (options,) = run_node("TrajCrafterSamplingOptions", window_frames=17, overlap_frames=5, batch_size=0)
    videos, side_by_side = run_node("TrajCrafterSamplerMany", model=model, conditions=conditions, options=options, **SAMPLE)
    assert len(videos) == 3 and all(v.shape == (21, 32, 48, 3) for v in videos)
    assert side_by_side.shape[0] == 21 and side_by_side.shape[2] >= 3 * 48
    core = redirect.generate(model.pipe, [c for _, c in conditions], prompt="a room", num_inference_steps=1,
                             guidance_scale=2.0, seed=3, window_frames=17, overlap_frames=5)
    for video, expected in zip(videos, core):
        assert torch.equal(video, expected)
    # the single-path sampler takes any length the same way
    (alone,) = run_node("TrajCrafterSampler", model=model, conditions=conditions[0][1], options=options, **SAMPLE)
    assert alone.shape == (21, 32, 48, 3) and float((alone - videos[0]).abs().max()) <= 1e-3


def test_sampling_options_are_checked():
    with pytest.raises(TrajCrafterError, match="window_frames must be 8m\\+1"):
        run_node("TrajCrafterSamplingOptions", window_frames=20, overlap_frames=0, batch_size=0)
    with pytest.raises(TrajCrafterError, match="overlap_frames must be"):
        run_node("TrajCrafterSamplingOptions", window_frames=17, overlap_frames=9, batch_size=0)
    assert run_node("TrajCrafterSamplingOptions", window_frames=49, overlap_frames=0, batch_size=2)[0] == dict(
        window_frames=49, overlap_frames=None, batch_size=2)


def test_export_scene_and_pick_the_camera_in_load3d(cloud, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJCRAFTER_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("TRAJCRAFTER_INPUT_DIR", str(tmp_path / "input"))
    path = trajectory(cloud, "target_pose", theta=0.0, phi=-25.0, r=0.2, x=0.3, y=0.0)
    model_file, camera_info = run_node("TrajCrafterExportScene3D", point_cloud=cloud, trajectory=path,
                                       max_points=5000, filename_prefix="trajcrafter/scene", for_load_3d=True)
    assert model_file.startswith("trajcrafter/scene_") and (tmp_path / "output" / model_file).is_file()
    assert (tmp_path / "input" / "3d" / "trajcrafter" / "scene.glb").read_bytes() == (tmp_path / "output" / model_file).read_bytes()
    assert camera_info["cameraType"] == "perspective" and set(camera_info["position"]) == {"x", "y", "z"}
    # Load 3D hands back the camera it was opened at and the file it shows: the same path's end
    (spec,) = run_node("TrajCrafterCameraFromLoad3D", camera_info=camera_info, mesh_path="3d/trajcrafter/scene.glb",
                       easing="linear")
    assert spec.source == "target_camera" and spec.easing == "linear"
    picked = trajectory(cloud, spec)
    assert torch.allclose(picked.transforms[-1], path.transforms[-1], atol=1e-4)
    assert torch.equal(picked.transforms[0], torch.eye(4))
    with pytest.raises(TrajCrafterError, match="does not exist"):
        run_node("TrajCrafterCameraFromLoad3D", camera_info=camera_info, mesh_path="3d/missing.glb", easing="linear")
    with pytest.raises(TrajCrafterError, match="filename_prefix"):
        run_node("TrajCrafterExportScene3D", point_cloud=cloud, max_points=5000, filename_prefix="../escape",
                 for_load_3d=False)
