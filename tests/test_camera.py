"""Camera paths against expectations built by hand from their geometric meaning.

The official target pose (theta, phi, r, x, y) means: move the camera x right, y up and
r * radius forward, then orbit the point c = (0, 0, radius) by Rx(theta) (camera goes up) and
Ry(phi) (camera goes right). As a source->target point map for the path's camera i:

    X_dst = R_i (X_src - c - d_i) + c,   R_i = Ry(phi_i) Rx(theta_i),   d_i = (x_i, -y_i, r_i * radius)

and with an anchor a the source camera is camera a: T_i = M_i inv(M_a). The expectations below
are float64 matrices written out from that formula; the code under test runs in float32.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.interpolate import UnivariateSpline

from trajcrafter_core import camera
from trajcrafter_core.errors import MissingFilesError, TrajCrafterError

TOL = 1e-6


# ---- hand-built geometry (float64) ---------------------------------------------------------


def rot_x(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])


def rot_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def orbit_map(theta, phi, r, x, y, radius) -> np.ndarray:
    """4x4 point map source-camera -> camera of pose (theta, phi, r, x, y), anchor at rest."""
    R = rot_y(phi) @ rot_x(theta)
    c = np.array([0.0, 0.0, radius])
    d = np.array([x, -y, r * radius])
    M = np.eye(4)
    M[:3, :3] = R
    M[:3, 3] = -R @ (c + d) + c
    return M


def expected_path(thetas, phis, rs, xs, ys, radius, anchor=0) -> np.ndarray:
    maps = [orbit_map(*p, radius) for p in zip(thetas, phis, rs, xs, ys)]
    inv_a = np.linalg.inv(maps[anchor])
    return np.stack([M @ inv_a for M in maps])


def expected_target(theta, phi, r, x, y, n, radius, anchor=0) -> np.ndarray:
    s = np.arange(n) / (n - 1)  # linear ramp from 0 to the target
    return expected_path(theta * s, phi * s, r * s, x * s, y * s, radius, anchor)


def project(T: torch.Tensor, K: torch.Tensor, X) -> np.ndarray:
    """Pixel (u, v) of source-camera point X seen by the camera T (float64)."""
    Xh = np.append(np.asarray(X, dtype=np.float64), 1.0)
    p = np.asarray(K, dtype=np.float64) @ (np.asarray(T, dtype=np.float64) @ Xh)[:3]
    return p[:2] / p[2]


def camera_centre(T: torch.Tensor) -> np.ndarray:
    """Position of the target camera in source-camera coordinates."""
    return np.linalg.inv(np.asarray(T, dtype=np.float64))[:3, 3]


def assert_close(actual: torch.Tensor, expected: np.ndarray, tol: float = TOL):
    assert actual.dtype == torch.float32
    err = float(np.abs(actual.double().numpy() - expected).max())
    assert err <= tol, f"max abs error {err:.3e} > {tol:.1e}"


# ---- intrinsics ----------------------------------------------------------------------------


def test_official_intrinsics_at_official_size_and_scaled():
    K = camera.official_intrinsics(1024, 576)
    assert K.dtype == torch.float32
    assert torch.equal(K, torch.tensor([[500.0, 0, 512], [0, 500, 288], [0, 0, 1]]))
    K = camera.official_intrinsics(672, 384)
    assert torch.allclose(K, torch.tensor([[328.125, 0, 336], [0, 328.125, 192], [0, 0, 1]]))


def test_user_focal_and_fov():
    K = camera.intrinsics(640, 480, focal=700.0)
    assert (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])) == (700.0, 700.0, 320.0, 240.0)
    K = camera.intrinsics(640, 480, fov_degrees=90.0)  # horizontal FoV: f = W/2 / tan(45 deg)
    assert abs(float(K[0, 0]) - 320.0) < 1e-4
    with pytest.raises(TrajCrafterError):
        camera.intrinsics(640, 480, focal=-3.0)
    with pytest.raises(TrajCrafterError):
        camera.intrinsics(640, 480, focal=500.0, fov_degrees=60.0)
    with pytest.raises(TrajCrafterError):
        camera.official_intrinsics(0, 576)


def test_rescale_intrinsics_matches_an_image_resize():
    K = camera.official_intrinsics(1024, 576)
    K2 = camera.rescale_intrinsics(K, (576, 1024), (384, 672))
    X = np.array([0.3, -0.2, 2.0])
    u, v = project(np.eye(4), K, X)
    sx, sy = 672 / 1024, 384 / 576  # an align_corners=False resize maps u to (u + 0.5) * s - 0.5
    assert np.allclose(project(np.eye(4), K2, X), [(u + 0.5) * sx - 0.5, (v + 0.5) * sy - 0.5], atol=1e-4)
    back = camera.rescale_intrinsics(K2, (384, 672), (576, 1024))
    assert torch.allclose(back, K, atol=1e-4)


# ---- radius rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("h,w", [(6, 8), (7, 9)])
def test_orbit_radius_reads_centre_pixel(h, w):
    depth = torch.full((h, w), 9.0)
    depth[h // 2, w // 2] = 1.7
    assert camera.orbit_radius(depth) == pytest.approx(1.7, abs=1e-6)
    assert camera.orbit_radius(depth, radius_scale=2.0) == pytest.approx(3.4, abs=1e-6)
    clip = torch.stack([depth, torch.full((h, w), 0.5)])  # [T, H, W]: first frame is used
    assert camera.orbit_radius(clip) == pytest.approx(1.7, abs=1e-6)


def test_orbit_radius_capped_at_5():
    depth = torch.full((4, 4), 7.3)
    assert camera.orbit_radius(depth) == 5.0
    assert camera.orbit_radius(torch.full((4, 4), 3.0), radius_scale=2.0) == 5.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_orbit_radius_rejects_invalid_depth(bad):
    depth = torch.ones(5, 5)
    depth[0, 3] = bad  # anywhere in the frame, not only the centre
    with pytest.raises(TrajCrafterError):
        camera.orbit_radius(depth)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_orbit_radius_rejects_bad_scale(scale):
    with pytest.raises(TrajCrafterError):
        camera.orbit_radius(torch.ones(3, 3), radius_scale=scale)


# ---- target pose ---------------------------------------------------------------------------


def test_official_default_final_camera_written_out():
    """run.sh default (0, -30, 0.3, 0, 0), radius 2.5: last camera orbits 30 deg to the left."""
    T = camera.target_pose_trajectory(0, -30, 0.3, 0, 0, num_frames=49, radius=2.5)
    c, s, rad = math.sqrt(3) / 2, 0.5, 2.5
    # R = Ry(-30); translation = R (0, 0, -1.3 rad) + (0, 0, rad)
    expected = np.array(
        [
            [c, 0, -s, 1.3 * rad * s],
            [0, 1, 0, 0],
            [s, 0, c, rad - 1.3 * rad * c],
            [0, 0, 0, 1],
        ]
    )
    assert_close(T[-1], expected)
    assert_close(T[0], np.eye(4))


@pytest.mark.parametrize(
    "pose",
    [(0, -30, 0.3, 0, 0), (0, 0, 0.5, 0, 0), (12.5, 33.3, -0.4, 0.7, -1.2), (-20, 10, 0.2, -0.3, 0.4)],
)
@pytest.mark.parametrize("radius", [2.5, 1.0975, 5.0])
def test_target_pose_matches_hand_built_orbit(pose, radius):
    T = camera.target_pose_trajectory(*pose, num_frames=49, radius=radius)
    assert T.shape == (49, 4, 4)
    assert_close(T, expected_target(*pose, 49, radius))


@pytest.mark.parametrize("anchor", [7, 20, -1])
def test_target_pose_anchor_is_the_source_camera(anchor):
    pose, n, radius = (10, -25, 0.3, 0.2, 0.1), 21, 1.8
    T = camera.target_pose_trajectory(*pose, num_frames=n, radius=radius, anchor_index=anchor)
    assert_close(T, expected_target(*pose, n, radius, anchor=anchor % n))
    assert_close(T[anchor], np.eye(4))  # the anchor camera renders the source view


def test_target_pose_with_capped_radius_from_depth():
    depth = torch.full((9, 16), 8.0)  # centre depth 8 -> radius capped at 5
    radius = camera.orbit_radius(depth)
    T = camera.target_pose_trajectory(0, -30, 0.3, 0, 0, num_frames=49, radius=radius)
    assert_close(T, expected_target(0, -30, 0.3, 0, 0, 49, 5.0))


@pytest.mark.parametrize("n", [0, 1, 2.5])
def test_num_frames_must_be_at_least_two(n):
    with pytest.raises(TrajCrafterError):
        camera.target_pose_trajectory(0, 10, 0, 0, 0, num_frames=n, radius=1.0)
    with pytest.raises(TrajCrafterError):
        camera.txt_trajectory("0 1\n0 1\n0 0\n", num_frames=n, radius=1.0)


@pytest.mark.parametrize("radius", [0.0, -2.0, float("nan"), float("inf"), "abc"])
def test_radius_must_be_positive_finite(radius):
    with pytest.raises(TrajCrafterError):
        camera.target_pose_trajectory(0, 10, 0, 0, 0, num_frames=5, radius=radius)
    with pytest.raises(TrajCrafterError):
        camera.txt_trajectory("0 1\n0 1\n0 0\n", num_frames=5, radius=radius)


def test_anchor_out_of_range():
    with pytest.raises(TrajCrafterError):
        camera.target_pose_trajectory(0, 10, 0, 0, 0, num_frames=5, radius=1.0, anchor_index=5)


# ---- trajectory txt ------------------------------------------------------------------------


def spline_rule(keys, n):
    """Documented rule: UnivariateSpline(k=3), default smoothing, endpoints set to the keys."""
    keys = np.asarray(keys, dtype=np.float64)
    values = UnivariateSpline(np.linspace(0, 1, len(keys)), keys, k=3)(np.linspace(0, 1, n))
    values[0], values[-1] = keys[0], keys[-1]
    return values


@pytest.mark.parametrize("name", ["loop1.txt", "loop2.txt"])
@pytest.mark.parametrize("radius,anchor", [(2.5, 0), (5.0, 0), (1.3, 11)])
def test_official_txt_files(trajectories_dir, name, radius, anchor):
    path = trajectories_dir / name
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    theta, phi, r = ([float(v) for v in ln] for ln in lines)
    assert min(len(theta), len(phi), len(r)) > 3  # both files take the spline branch
    n = 49
    # the r keys are scaled by the radius before resampling; x = y = 0
    r_frames = spline_rule(np.float32(r) * np.float32(radius), n) / radius
    expected = expected_path(spline_rule(theta, n), spline_rule(phi, n), r_frames, np.zeros(n), np.zeros(n), radius, anchor)
    T = camera.txt_trajectory(path, num_frames=n, radius=radius, anchor_index=anchor)
    assert_close(T, expected)


def test_txt_with_few_keys_is_piecewise_linear():
    # 3 theta keys, 2 phi keys, 3 r keys over 5 frames (positions 0, .25, .5, .75, 1)
    text = "0 10 -6\n0 -20\n0 0.4 0.2\n"
    thetas = [0, 5, 10, 2, -6]
    phis = [0, -5, -10, -15, -20]
    rs = [0, 0.2, 0.4, 0.3, 0.2]
    T = camera.txt_trajectory(text, num_frames=5, radius=2.0)
    assert_close(T, expected_path(thetas, phis, rs, [0] * 5, [0] * 5, 2.0))


def test_txt_keys_resampling_rule_directly():
    keys = [0, 2, 10, 15, 12, 6, 0]
    values = camera.txt_keys_to_frames(keys, 30)
    assert values[0] == 0 and values[-1] == 0
    assert np.allclose(values, spline_rule(keys, 30))


@pytest.mark.parametrize(
    "text",
    [
        "0 1\n0 1\n",  # two lines
        "0 1\n0 1\n0 1\n0 1\n",  # four lines
        "0 a\n0 1\n0 1\n",  # not a number
        "0 1\n0 nan\n0 1\n",  # not finite
        "0\n0 1\n0 1\n",  # a single key
    ],
)
def test_malformed_txt(text):
    with pytest.raises(TrajCrafterError):
        camera.txt_trajectory(text, num_frames=10, radius=1.0)


def test_missing_txt_file(tmp_path):
    with pytest.raises(MissingFilesError):
        camera.txt_trajectory(tmp_path / "nope.txt", num_frames=10, radius=1.0)


# ---- presets: sign conventions checked on projected points ----------------------------------

RAD = 2.0
K = camera.official_intrinsics(1024, 576)
CX, CY = 512.0, 288.0


def last(name, **kw):
    return camera.preset_trajectory(name, num_frames=9, radius=RAD, **kw)[-1]


@pytest.mark.parametrize("name,side", [("orbit_left", -1), ("orbit_right", 1)])
def test_orbit_presets(name, side):
    T = last(name)
    assert side * camera_centre(T)[0] > 0.1  # camera went left / right
    assert np.allclose(project(T, K, [0, 0, RAD]), [CX, CY], atol=1e-3)  # centre stays put
    u_near, _ = project(T, K, [0, 0, RAD / 2])
    u_far, _ = project(T, K, [0, 0, 2 * RAD])
    assert -side * (u_near - CX) > 10  # orbit left: near content slides right
    assert side * (u_far - CX) > 10  # ... and far content slides left


@pytest.mark.parametrize("name,side", [("arc_up", -1), ("arc_down", 1)])
def test_arc_presets(name, side):
    T = last(name)
    assert side * camera_centre(T)[1] > 0.1  # y is down: arc_up -> y < 0
    assert np.allclose(project(T, K, [0, 0, RAD]), [CX, CY], atol=1e-3)
    _, v_near = project(T, K, [0, 0, RAD / 2])
    assert -side * (v_near - CY) > 10  # arc up: near content slides down


@pytest.mark.parametrize("name,side", [("dolly_in", 1), ("dolly_out", -1)])
def test_dolly_presets(name, side):
    T = last(name)
    assert np.allclose(T[:3, :3].numpy(), np.eye(3), atol=1e-6)
    assert side * camera_centre(T)[2] > 0.1  # forward / back
    u, v = project(T, K, [0.5, 0.3, RAD])
    u0, v0 = project(np.eye(4), K, [0.5, 0.3, RAD])
    assert side * (math.hypot(u - CX, v - CY) - math.hypot(u0 - CX, v0 - CY)) > 10


@pytest.mark.parametrize(
    "name,axis,side",
    [("pan_left", 0, -1), ("pan_right", 0, 1), ("pan_up", 1, -1), ("pan_down", 1, 1)],
)
def test_pan_presets_translate(name, axis, side):
    T = last(name)
    assert np.allclose(T[:3, :3].numpy(), np.eye(3), atol=1e-6)  # no rotation
    centre = camera_centre(T)
    assert side * centre[axis] > 0.1 and abs(centre[1 - axis]) < 1e-6 and abs(centre[2]) < 1e-6
    uv = project(T, K, [0, 0, RAD])
    assert -side * (uv[axis] - (CX, CY)[axis]) > 10  # content slides the opposite way


def test_preset_amount_and_static():
    assert camera.preset_pose("orbit_left", radius=RAD) == camera.TargetPose(0, -30, 0, 0, 0)
    assert camera.preset_pose("orbit_left", radius=RAD, amount=-0.5) == camera.TargetPose(0, 15, 0, 0, 0)
    assert camera.preset_pose("pan_right", radius=RAD).x == pytest.approx(0.3 * RAD)
    assert_close(camera.preset_trajectory("static", 5, RAD), np.stack([np.eye(4)] * 5))
    with pytest.raises(TrajCrafterError):
        camera.preset_pose("barrel_roll")


def test_dolly_zoom_keeps_the_centre_size():
    pose = camera.preset_pose("dolly_zoom", radius=RAD)
    assert tuple(pose) == (0, 0, 0.5, 0, 0)  # official zoom example
    f_end = camera.dolly_zoom_focal_end(500.0, pose.r)
    assert f_end == 250.0
    traj = camera.make_trajectory(
        "dolly_zoom", lambda n: camera.preset_trajectory("dolly_zoom", n, RAD), 9, 576, 1024, focal_end=f_end
    )
    widths = [project(T, Kd, [0.2, 0, RAD])[0] - project(T, Kd, [-0.2, 0, RAD])[0] for T, Kd in zip(traj.transforms, traj.K_dst)]
    assert np.allclose(widths, widths[0], rtol=1e-5)
    near = [project(T, Kd, [0.2, 0, 0.7 * RAD])[0] for T, Kd in zip(traj.transforms, traj.K_dst)]
    assert near[-1] - near[0] > 10  # the nearer content still grows: it is a dolly zoom
