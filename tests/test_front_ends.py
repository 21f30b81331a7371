"""The nodes and the CLI make the same camera path and the same conditions from the same choice,
for every camera source: both go through trajcrafter_core.redirect with the same defaults."""

from __future__ import annotations

import json

import pytest
import torch

from trajcrafter_core import cli
from trajcrafter_core.synthetic import example_clip

from nodes_harness import run_node, widget_defaults

T, H, W = 9, 96, 160


@pytest.fixture(scope="module")
def clip():
    c = example_clip(num_frames=T, height=H, width=W, seed=4)
    return c["frames"], c["depths"]


def _re10k(path):
    rows = ["https://example.com/video"]
    for i, tx in enumerate([0.0, -0.1, -0.2]):
        rows.append(f"{i * 100000} 0.5 0.888 0.5 0.5 0 0 0.996 0 0.087 {tx} 0 1 0 0 -0.087 0 0.996 0")
    path.write_text("\n".join(rows) + "\n")


def _nerfstudio(path):
    cams = [{"camera_to_world": [1, 0, 0, 0.1 * z, 0, 1, 0, 0, 0, 0, 1, -z, 0, 0, 0, 1], "fov": 60}
            for z in (0.0, 0.2, 0.4)]
    path.write_text(json.dumps({"render_height": H, "render_width": W, "camera_type": "perspective",
                                "camera_path": cams}))


def _saved(path, clip):
    from trajcrafter_core import redirect, trajectory_io
    from trajcrafter_core.specs import CameraSpec

    traj = redirect.build_trajectory(CameraSpec(preset="arc_down"), clip[1])
    trajectory_io.save_trajectory_json(traj, path)


# source -> (camera node, its widgets, Camera Trajectory's widgets, CLI flags)
SOURCES = {
    "target_pose": ("TrajCrafterCameraTargetPose", dict(theta=5.0, phi=-20.0, r=0.2, x=0.1, y=-0.1), {},
                    ["--target-pose", "5", "-20", "0.2", "0.1", "-0.1"]),
    "target_pose_direct": ("TrajCrafterCameraTargetPose", dict(theta=0.0, phi=-30.0, r=0.3, x=0.0, y=0.0),
                           dict(mode="direct", direct_cut=4),
                           ["--target-pose", "0", "-30", "0.3", "0", "0", "--mode", "direct", "--direct-cut", "4"]),
    "preset_zoom": ("TrajCrafterCameraPreset", dict(preset="dolly_zoom", amount=0.8), dict(mode="dolly_zoom"),
                    ["--preset", "dolly_zoom", "--mode", "dolly_zoom", "--amount", "0.8"]),
    "preset_anchor": ("TrajCrafterCameraPreset", dict(preset="orbit_right", amount=1.0),
                      dict(radius_scale=0.7, anchor=-1), ["--preset", "orbit_right", "--radius-scale", "0.7",
                                                          "--anchor", "-1"]),
    "official_txt": ("TrajCrafterCameraTrajectoryFile", {}, dict(mode="dolly_zoom"), ["--mode", "dolly_zoom"]),
    "realestate10k": ("TrajCrafterImportCameraPath", dict(translation_scale=2.0), {}, ["--translation-scale", "2"]),
    "nerfstudio": ("TrajCrafterImportCameraPath", {}, dict(mode="bullet"), ["--mode", "bullet"]),
    "saved_json": ("TrajCrafterImportCameraPath", {}, {}, []),
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_node_and_cli_make_the_same_trajectory_and_conditions(clip, tmp_path, trajectories_dir, source):
    frames, depths = clip
    node, widgets, schedule, flags = SOURCES[source]
    file = None
    if source == "official_txt":
        file = trajectories_dir / "loop2.txt"
    elif source == "realestate10k":
        _re10k(file := tmp_path / "re10k.txt")
    elif source == "nerfstudio":
        _nerfstudio(file := tmp_path / "camera_path.json")
    elif source == "saved_json":
        _saved(file := tmp_path / "trajectory.json", clip)
    if file is not None:
        key = "trajectory_path" if node == "TrajCrafterCameraTrajectoryFile" else "camera_path"
        widgets = dict(widgets, **{key: str(file)})
        flags = flags + ["--traj-txt", str(file)]

    # the nodes, with their defaults
    (cloud,) = run_node("TrajCrafterLiftPointCloud", frames=frames, depth=_depth_maps(depths), intrinsics="official",
                        fov_degrees=60.0)
    (camera_path,) = run_node(node, **dict(widget_defaults(node), **widgets))
    args = widget_defaults("TrajCrafterCameraTrajectory")
    args.update(point_cloud=cloud, camera_path=camera_path, preview_size=128, **schedule)
    node_traj, _ = run_node("TrajCrafterCameraTrajectory", **args)
    render_args = widget_defaults("TrajCrafterRenderViews")
    render_args.update(point_cloud=cloud, trajectory=node_traj)
    node_cond = run_node("TrajCrafterRenderViews", **render_args)[0]

    # the CLI, with its defaults
    parsed = cli.build_parser().parse_args(["render", "clip.mp4", "--depth", "depth.npy", *flags])
    cli_cond = cli._conditions(parsed, cli.camera_spec_from_args(parsed), frames, depths)

    for field in ("source_index", "transforms", "K_src", "K_dst"):
        assert torch.equal(getattr(node_cond.trajectory, field), getattr(cli_cond.trajectory, field)), field
    for field in ("mode", "reference_from", "trim_start", "radius", "height", "width"):
        assert getattr(node_cond.trajectory, field) == getattr(cli_cond.trajectory, field), field
    for field in ("source", "render", "mask", "reference", "intrinsics"):
        assert torch.equal(getattr(node_cond, field), getattr(cli_cond, field)), field
    assert node_cond.size == cli_cond.size and node_cond.size_policy == cli_cond.size_policy == "keep_aspect"
    assert float(node_cond.mask.mean()) < 0.9


def _depth_maps(depths):
    from nodes_harness import node_module

    return node_module("common").DepthMaps(depths, source="synthetic")
