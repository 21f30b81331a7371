"""Camera path import/export: hand-written files with known geometry, and round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from trajcrafter_core import camera
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.trajectory_io import (
    CameraPath,
    load_nerfstudio_camera_path,
    load_realestate10k,
    load_trajectory_json,
    resample_path,
    save_nerfstudio_camera_path,
    save_realestate10k,
    save_trajectory_json,
)

H, W = 576, 1024
K = camera.official_intrinsics(W, H)


def row(ts, intr, w2c_3x4):
    return " ".join(str(v) for v in [ts, *intr, 0, 0, *np.asarray(w2c_3x4, dtype=float).reshape(-1)])


def pose(R=np.eye(3), t=(0, 0, 0)):
    return np.concatenate([np.asarray(R, float), np.asarray(t, float)[:, None]], axis=1)


def ry(deg):
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def apply(T, X):
    return (np.asarray(T, dtype=np.float64) @ np.append(X, 1.0))[:3]


# ---- RealEstate10K / CameraCtrl -------------------------------------------------------------


def test_realestate10k_hand_written():
    # camera 1 sits 1 unit to the right of camera 0 (world-to-camera t = -C = (-1, 0, 0))
    text = "\n".join(
        [
            "https://www.youtube.com/watch?v=abc",
            row(0, (0.5, 0.9, 0.5, 0.5), pose()),
            row(33366, (0.6, 1.0, 0.5, 0.45), pose(t=(-1, 0, 0))),
        ]
    )
    path = load_realestate10k(text, height=H, width=W)
    assert path.url.endswith("abc") and len(path) == 2
    assert np.allclose(path.transforms[1].numpy(), np.array([[1, 0, 0, -1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    assert torch.allclose(path.K[0], torch.tensor([[512.0, 0, 512], [0, 518.4, 288], [0, 0, 1]]))
    assert torch.allclose(path.K[1], torch.tensor([[614.4, 0, 512], [0, 576, 259.2], [0, 0, 1]]))
    assert np.allclose(path.timestamps.numpy(), [0.0, 0.033366])
    # relative to camera 1 instead, and in other units
    path = load_realestate10k(text, height=H, width=W, reference=1, translation_scale=2.0)
    assert np.allclose(path.transforms[0, :3, 3].numpy(), [2.0, 0, 0]) and np.allclose(path.transforms[1].numpy(), np.eye(4))


def test_realestate10k_rotation_relative_to_first_camera():
    # camera 0 is somewhere in the world; camera 1 is camera 0 turned 90 deg to its right
    R0, C0 = ry(20), np.array([0.3, -0.2, 1.5])
    R1 = ry(-90) @ R0  # points rotate by Ry(-90) in camera axes: the camera turned right (about y)
    text = "\n".join([row(0, (0.5, 0.9, 0.5, 0.5), pose(R0, -R0 @ C0)), row(1, (0.5, 0.9, 0.5, 0.5), pose(R1, -R1 @ C0))])
    T = load_realestate10k(text, H, W).transforms  # CameraCtrl style: no URL line
    # a point 1 unit to the right of camera 0 is straight ahead of camera 1
    assert np.allclose(apply(T[1], [1.0, 0, 0]), [0, 0, 1], atol=1e-6)


def test_realestate10k_round_trip(tmp_path):
    T = camera.target_pose_trajectory(10, -30, 0.3, 0.2, -0.1, num_frames=17, radius=2.0)
    text = save_realestate10k(tmp_path / "cam.txt", T, K, H, W, url="https://example.com/v")
    assert text.splitlines()[0] == "https://example.com/v" and len(text.splitlines()) == 18
    back = load_realestate10k(tmp_path / "cam.txt", H, W)
    assert torch.allclose(back.transforms, T, atol=1e-6)
    assert torch.allclose(back.K, K.repeat(17, 1, 1), atol=1e-4)
    # a path whose first camera is not the source camera (anchor 8) survives with reference=None
    T8 = camera.target_pose_trajectory(10, -30, 0.3, 0.2, -0.1, num_frames=17, radius=2.0, anchor_index=8)
    back = load_realestate10k(save_realestate10k(None, T8, K, H, W), H, W, reference=None)
    assert torch.allclose(back.transforms, T8, atol=1e-6)
    relative = load_realestate10k(save_realestate10k(None, T8, K, H, W), H, W, reference=0)
    assert torch.allclose(relative.transforms, T8 @ torch.linalg.inv(T8[0]), atol=1e-5)


@pytest.mark.parametrize(
    "text",
    [
        row(0, (0.5, 0.9, 0.5, 0.5), pose()) + "\n" + row(1, (0.5, 0.9, 0.5, 0.5), pose()) + " 7",  # 20 fields
        "url\n" + row(0, (0.5, 0.9, 0.5, 0.5), pose()) + "\n",  # a single camera
        row(0, (0.5, 0.9, 0.5, 0.5), pose()) + "\n" + row(1, (0.5, 0.9, 0.5, 0.5), pose(2 * np.eye(3))),  # scaled
        "url\n" + row(0, (0.5, 0.9, 0.5, 0.5), pose()) + "\n" + row(1, (0.5, 0.9, 0.5, 0.5), pose()).replace("1.0", "x", 1),
    ],
)
def test_realestate10k_malformed(text):
    with pytest.raises(TrajCrafterError):
        load_realestate10k(text, H, W)


# ---- nerfstudio -----------------------------------------------------------------------------


def ns_file(c2ws_gl, fov=90.0, h=480, w=640, kind="perspective"):
    return {
        "camera_type": kind,
        "render_height": h,
        "render_width": w,
        "camera_path": [{"camera_to_world": np.asarray(m, float).reshape(-1).tolist(), "fov": fov, "aspect": w / h} for m in c2ws_gl],
    }


def gl_c2w(R=np.eye(3), C=(0, 0, 0)):
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, C
    return M


def test_nerfstudio_hand_written(tmp_path):
    # OpenGL world: camera 0 at the origin looking down -z; camera 1 one unit to its right;
    # camera 2 turned +90 deg about the (up) y axis: it looks along -x, i.e. to camera 0's left.
    data = ns_file([gl_c2w(), gl_c2w(C=(1, 0, 0)), gl_c2w(R=ry(90))])
    (tmp_path / "camera_path.json").write_text(json.dumps(data))
    path = load_nerfstudio_camera_path(tmp_path / "camera_path.json")
    assert (path.height, path.width) == (480, 640)
    assert np.allclose(apply(path.transforms[1], [0, 0, 3]), [-1, 0, 3], atol=1e-6)  # OpenCV: seen 1 unit left
    assert np.allclose(apply(path.transforms[2], [-1, 0, 0]), [0, 0, 1], atol=1e-6)  # left of cam 0 = ahead of cam 2
    assert np.allclose(apply(path.transforms[2], [0, -1, 0]), [0, -1, 0], atol=1e-6)  # up stays up
    # fov 90 deg vertical over 480 px -> f = 240
    assert torch.allclose(path.K[0], torch.tensor([[240.0, 0, 320], [0, 240, 240], [0, 0, 1]]))
    half = load_nerfstudio_camera_path(data, height=240, width=320)
    assert torch.allclose(half.K[0, 0, 0], torch.tensor(120.0))
    assert torch.equal(half.transforms, path.transforms)


def test_nerfstudio_round_trip():
    T = camera.target_pose_trajectory(-15, 25, 0.2, 0.1, 0.3, num_frames=9, radius=1.5)
    Kn = camera.intrinsics(640, 480, fov_degrees=70)
    data = save_nerfstudio_camera_path(None, T, Kn, 480, 640)
    back = load_nerfstudio_camera_path(json.dumps(data))
    assert torch.allclose(back.transforms, T, atol=1e-6)
    assert torch.allclose(back.K, Kn.repeat(9, 1, 1), atol=1e-3)
    with pytest.raises(TrajCrafterError):  # nerfstudio cannot store an off-centre principal point
        save_nerfstudio_camera_path(None, T, camera.official_intrinsics(640, 480) + torch.tensor([[0, 0, 5.0], [0, 0, 0], [0, 0, 0]]), 480, 640)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(camera_type="fisheye"),
        lambda d: d["camera_path"][1].pop("fov"),
        lambda d: d["camera_path"][0].update(camera_to_world=[1.0] * 15),
        lambda d: d.pop("render_height"),
        lambda d: d.update(camera_path=d["camera_path"][:1]),
    ],
)
def test_nerfstudio_malformed(mutate):
    data = ns_file([gl_c2w(), gl_c2w(C=(1, 0, 0))])
    mutate(data)
    with pytest.raises(TrajCrafterError):
        load_nerfstudio_camera_path(data)


def test_nerfstudio_bad_json_text():
    with pytest.raises(TrajCrafterError):
        load_nerfstudio_camera_path("{not json")


# ---- trajectory JSON --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gradual", "direct", "bullet", "dolly_zoom"])
def test_trajectory_json_round_trip(tmp_path, mode):
    path = lambda n: camera.target_pose_trajectory(5, -20, 0.3, 0.1, 0, n, 2.2)  # noqa: E731
    traj = camera.make_trajectory(mode, path, 25, H, W, cut=6 if mode == "direct" else None)
    save_trajectory_json(traj, tmp_path / "t.json")
    back = load_trajectory_json(tmp_path / "t.json")
    for name in ("source_index", "transforms", "K_src", "K_dst"):
        assert torch.equal(getattr(back, name), getattr(traj, name)), name
    assert (back.mode, back.reference_from, back.trim_start, back.size) == (traj.mode, traj.reference_from, traj.trim_start, traj.size)


def test_hand_written_trajectory_json():
    data = {
        "height": 288,
        "width": 512,
        "frames": [
            {"transform": np.eye(4).tolist(), "K": [[250, 0, 256], [0, 250, 144], [0, 0, 1]]},
            {"transform": [[1, 0, 0, -0.1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "K": [[250, 0, 256], [0, 250, 144], [0, 0, 1]]},
        ],
    }
    traj = load_trajectory_json(data)
    assert traj.source_index.tolist() == [0, 1] and traj.size == (288, 512)
    assert float(traj.transforms[1, 0, 3]) == pytest.approx(-0.1)
    data["frames"][1]["K"] = [[0, 0, 0], [0, 0, 0], [0, 0, 1]]  # singular
    with pytest.raises(TrajCrafterError):
        load_trajectory_json(data)
    with pytest.raises(TrajCrafterError):
        load_trajectory_json({"height": 288, "width": 512, "frames": [{"K": []}]})


# ---- resampling -------------------------------------------------------------------------------


def test_resample_path_slerps_rotation_and_moves_centre_linearly():
    T1 = np.eye(4)
    T1[:3, :3] = ry(40)
    T1[:3, 3] = -ry(40) @ np.array([1.0, 0, 0])  # camera centre at (1, 0, 0)
    T = torch.from_numpy(np.stack([np.eye(4), T1])).float()
    Kp = torch.stack([K, K * torch.tensor([[2.0, 1, 1], [1, 2, 1], [1, 1, 1]])])
    out, Kout = resample_path(T, 5, Kp)
    for i, a in enumerate([0, 10, 20, 30, 40]):
        expected = np.eye(4)
        expected[:3, :3] = ry(a)
        expected[:3, 3] = -ry(a) @ np.array([i / 4, 0, 0])
        assert np.allclose(out[i].numpy(), expected, atol=1e-6)
    assert torch.allclose(Kout[:, 0, 0], torch.linspace(500, 1000, 5))
    same, _ = resample_path(out, 5)
    assert torch.allclose(same, out, atol=1e-6)


def test_camera_path_to_trajectory_resamples_to_the_mode():
    T = camera.target_pose_trajectory(0, -30, 0, 0, 0, num_frames=5, radius=2.0)
    path = CameraPath(transforms=T, K=K.repeat(5, 1, 1), height=H, width=W)
    traj = path.to_trajectory("gradual", num_source_frames=9)
    assert len(traj) == 9 and torch.allclose(traj.transforms[::2], T, atol=1e-6)
    direct = path.to_trajectory("direct", num_source_frames=12, cut=5)
    assert direct.source_index.tolist() == [0] * 5 + list(range(7)) and torch.allclose(direct.transforms[4], T[-1], atol=1e-6)
