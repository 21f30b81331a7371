"""The scene as a .glb for ComfyUI's 3-D viewer, and Load 3D's camera as a target camera.

The file is parsed here with a reader written from the glTF 2.0 spec (not the writer's code):
counts, colours (linear in the file, the frame's sRGB after conversion), points back in the
source camera's coordinates, and the normalisation ComfyUI's viewer applies being a no-op. The
camera conversion is checked on hand-built cases (the source camera itself, a quarter turn), a
round trip, and renders: a Load 3D camera placed where a target pose ends renders that pose."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch

from trajcrafter_core import camera, redirect
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.load3d_camera import camera_info_spec, camera_info_to_transform, transform_to_camera_info
from trajcrafter_core.pointcloud import PointCloud
from trajcrafter_core.scene3d import VIEWER_SIZE, ViewerFrame, export_scene, read_viewer_frame
from trajcrafter_core.specs import CameraSpec


def parse_glb(path):
    """Independent reader: header, JSON and BIN chunks, every accessor as a numpy array."""
    data = path.read_bytes()
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF" and version == 2 and length == len(data) and length % 4 == 0
    json_len, json_type = struct.unpack("<I4s", data[12:20])
    assert json_type == b"JSON" and json_len % 4 == 0
    doc = json.loads(data[20: 20 + json_len])
    bin_len, bin_type = struct.unpack("<I4s", data[20 + json_len: 28 + json_len])
    assert bin_type == b"BIN\0" and bin_len % 4 == 0 and bin_len >= doc["buffers"][0]["byteLength"]
    blob = data[28 + json_len: 28 + json_len + bin_len]
    arrays = []
    for acc in doc["accessors"]:
        view = doc["bufferViews"][acc["bufferView"]]
        assert acc["componentType"] == 5126 and acc["type"] == "VEC3"
        raw = blob[view["byteOffset"]: view["byteOffset"] + view["byteLength"]]
        arrays.append(np.frombuffer(raw, dtype="<f4").reshape(acc["count"], 3))
    return doc, arrays


def srgb(linear):
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


@pytest.fixture(scope="module")
def clip():
    from trajcrafter_core.synthetic import example_clip

    c = example_clip(num_frames=9, height=96, width=160, seed=4)
    return c["frames"], c["depths"]


@pytest.fixture(scope="module")
def cloud(clip):
    frames, depths = clip
    return PointCloud(frames, depths, camera.official_intrinsics(160, 96))


def test_the_glb_holds_the_points_cameras_and_path(tmp_path, clip, cloud):
    frames, depths = clip
    traj = redirect.build_trajectory(CameraSpec(preset="orbit_left", mode="bullet"), depths)
    out = export_scene(tmp_path / "scene.glb", cloud, traj, max_points=4000, max_cameras=5)
    doc, arrays = parse_glb(out.path)
    points_mesh, lines_mesh = doc["meshes"]
    assert points_mesh["primitives"][0]["mode"] == 0 and lines_mesh["primitives"][0]["mode"] == 1
    points, colours = (arrays[points_mesh["primitives"][0]["attributes"][k]] for k in ("POSITION", "COLOR_0"))
    lines, line_colours = (arrays[lines_mesh["primitives"][0]["attributes"][k]] for k in ("POSITION", "COLOR_0"))
    # bullet time shows the last frame's points, every 2nd pixel (ceil(sqrt(96*160/4000)) = 2)
    assert out.source_frame == 8 and len(points) == 48 * 80 == out.num_points <= 4000
    assert np.allclose(srgb(colours.astype(np.float64)), frames[8, ::2, ::2].reshape(-1, 3).numpy(), atol=1e-5)
    back = ViewerFrame.from_dict(doc["asset"]["extras"]["trajcrafter"]["viewer_frame"]).to_source(points)
    assert np.allclose(back, cloud.points(8)[0, ::2, ::2].reshape(-1, 3).numpy(), atol=1e-4)
    # 8 edges per frustum (source + 5 picked cameras) + the path through all 9 centres
    assert len(lines) == 16 * (1 + 5) + 2 * 8 and out.num_cameras == 5
    assert np.allclose(line_colours[:16], 1.0) and np.allclose(srgb(line_colours[16].astype(np.float64)), [40 / 255, 200 / 255, 1], atol=1e-5)
    # what ComfyUI's viewer does to a loaded model (largest side 5, centred in x and z, on the floor) is a no-op
    everything = np.concatenate([points, lines]).astype(np.float64)
    lo, hi = everything.min(0), everything.max(0)
    assert (hi - lo).max() == pytest.approx(VIEWER_SIZE, abs=1e-5)
    assert abs(lo[0] + hi[0]) < 1e-5 and abs(lo[2] + hi[2]) < 1e-5 and abs(lo[1]) < 1e-5
    assert points_mesh["primitives"][0]["attributes"]["POSITION"] is not None
    acc = doc["accessors"][points_mesh["primitives"][0]["attributes"]["POSITION"]]
    assert np.allclose(acc["min"], points.min(0)) and np.allclose(acc["max"], points.max(0))
    # the source camera looks into the scene: points in front of it (OpenCV +z) are at -Z in the file
    source_centre = out.frame.to_viewer(np.zeros(3))
    assert float(np.median(points[:, 2])) < source_centre[2]
    assert read_viewer_frame(out.path) == out.frame


def test_the_point_count_is_bounded(tmp_path, cloud):
    for limit in (1, 100, 15360, 10 ** 6):
        out = export_scene(tmp_path / f"s{limit}.glb", cloud, max_points=limit)
        assert out.num_points <= max(limit, 1) and out.num_points >= min(limit, 15360) / 4
    with pytest.raises(TrajCrafterError, match="frame 9 is outside"):
        export_scene(tmp_path / "bad.glb", cloud, frame=9)


FRAME = ViewerFrame(0.7, (0.1, 1.3, -0.4))


def info(position, target, zoom=1.0):
    xyz = lambda v: dict(zip("xyz", map(float, v)))  # noqa: E731
    return {"position": xyz(position), "target": xyz(target), "zoom": zoom, "cameraType": "perspective"}


def test_the_source_camera_and_a_quarter_turn_by_hand():
    # the source camera itself, looking at a point 3 units ahead: the identity
    T, zoom = camera_info_to_transform(info(FRAME.to_viewer([0, 0, 0]), FRAME.to_viewer([0, 0, 3])), FRAME)
    assert np.allclose(T, np.eye(4), atol=1e-9) and zoom == 1.0
    # one unit to the right, turned a quarter to the right (looking along source +x), zoomed 2x
    T, zoom = camera_info_to_transform(info(FRAME.to_viewer([1, 0, 0]), FRAME.to_viewer([5, 0, 0]), 2.0), FRAME)
    R = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # camera-to-source: z -> +x, x -> -z
    expected = np.eye(4)
    expected[:3, :3], expected[:3, 3] = R.T, -R.T @ np.array([1.0, 0, 0])
    assert np.allclose(T, expected, atol=1e-9) and zoom == 2.0
    # in viewer axes the source camera looks down -Z with +Y up
    assert np.allclose(FRAME.to_viewer([0, 0, 1]) - FRAME.to_viewer([0, 0, 0]), [0, 0, -0.7])
    assert np.allclose(FRAME.to_viewer([0, -1, 0]) - FRAME.to_viewer([0, 0, 0]), [0, 0.7, 0])


def test_load3d_camera_round_trip():
    known = info((2.0, 1.5, 3.0), (0.3, 0.9, -0.5), zoom=1.25)
    T, zoom = camera_info_to_transform(known, FRAME)
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12) and np.linalg.det(T[:3, :3]) == pytest.approx(1)
    distance = math.dist(known["position"].values(), known["target"].values()) / FRAME.scale
    back = transform_to_camera_info(T, FRAME, distance, zoom)
    for key in ("position", "target"):
        assert back[key] == pytest.approx(known[key], abs=1e-9)
    assert back["zoom"] == 1.25 and back["cameraType"] == "perspective"


@pytest.mark.parametrize("pose", [(0, -25, 0.2, 0.3, 0), (15, 0, 0.1, 0, 0.2)])
def test_a_load3d_camera_renders_like_the_target_pose_it_stands_for(clip, pose):
    frames, depths = clip
    radius = camera.orbit_radius(depths[0])
    end = camera.target_pose_trajectory(*pose, num_frames=9, radius=radius)[-1]
    frame = ViewerFrame(1.9, (0.2, 0.5, 3.1))
    camera_info = transform_to_camera_info(end.double().numpy(), frame, target_distance=radius)
    spec = camera_info_spec(camera_info, frame, mode="gradual")
    kwargs = dict(sample_size=(96, 160), clean_holes=False)
    from_viewer = redirect.prepare_conditions(frames, depths, camera=spec, **kwargs)
    from_pose = redirect.prepare_conditions(frames, depths, target_pose=pose, **kwargs)
    assert torch.allclose(from_viewer.trajectory.transforms[-1], from_pose.trajectory.transforms[-1], atol=1e-5)
    assert float((from_viewer.mask[-1] != from_pose.mask[-1]).float().mean()) < 1e-3
    assert float((from_viewer.render[-1] - from_pose.render[-1]).abs().mean()) < 1e-3
    if pose[0] == 0 and pose[2:] == (0, 0, 0):  # a pure orbit is the same path all along
        assert torch.allclose(from_viewer.trajectory.transforms, from_pose.trajectory.transforms, atol=1e-5)


def test_bad_cameras_and_files_are_named(tmp_path):
    with pytest.raises(TrajCrafterError, match="orthographic; switch it to perspective"):
        camera_info_to_transform({**info((0, 0, 1), (0, 0, 0)), "cameraType": "orthographic"}, FRAME)
    with pytest.raises(TrajCrafterError, match="camera_info position must be"):
        camera_info_to_transform({"target": {"x": 0, "y": 0, "z": 0}}, FRAME)
    with pytest.raises(TrajCrafterError, match="straight up or down"):
        camera_info_to_transform(info((0, 5, 0), (0, 0, 0)), FRAME)
    with pytest.raises(TrajCrafterError, match="rolled"):
        rolled = np.eye(4)
        rolled[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]
        transform_to_camera_info(rolled, FRAME, 1.0)
    from trajcrafter_core.glb import Primitive, write_glb

    other = write_glb(tmp_path / "other.glb", [Primitive("POINTS", np.zeros((1, 3)), np.ones((1, 3)))])
    with pytest.raises(TrajCrafterError, match="not written by TrajectoryCrafter's scene export"):
        read_viewer_frame(other)
    with pytest.raises(TrajCrafterError, match="not a glTF 2.0 binary"):
        (tmp_path / "fake.glb").write_bytes(b"x" * 40)
        read_viewer_frame(tmp_path / "fake.glb")
