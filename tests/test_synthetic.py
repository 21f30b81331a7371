"""Synthetic scenes against closed-form geometry (independent of the renderer's code path)."""

from __future__ import annotations

import math

import pytest
import torch

from trajcrafter_core import synthetic as S
from trajcrafter_core.errors import TrajCrafterError


def pinhole(f: float, cx: float, cy: float) -> torch.Tensor:
    return torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def rot_x(a: float) -> torch.Tensor:
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> torch.Tensor:
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def w2c_from(R: torch.Tensor, centre) -> torch.Tensor:
    """World-to-camera for a camera with rotation R (world->cam) placed at ``centre``."""
    m = torch.eye(4)
    m[:3, :3] = R
    m[:3, 3] = -R @ torch.as_tensor(centre, dtype=torch.float32)
    return m


EMPTY = dict(spheres=[], boxes=[])


def test_ground_depth_matches_ray_plane_closed_form():
    scene = S.SyntheticScene(seed=1, **EMPTY)
    g = scene.ground_y
    K = pinhole(40.0, 31.5, 23.5)
    _, depth, ids = scene.render(torch.eye(4), K, 48, 64, return_ids=True)
    v = torch.arange(48, dtype=torch.float32)[:, None].expand(48, 64)
    ground = ids[0] == 0
    assert int(ground.sum()) > 300
    # identity camera: the ray through row v meets y = g at z = g * f / (v - cy)
    expected = g * 40.0 / (v - 23.5)
    assert torch.allclose(depth[0][ground], expected[ground], rtol=1e-5)

    # a pitched-down, raised, shifted camera: z-depth of the ray-plane hit in camera coordinates
    R = rot_x(0.3)  # world->cam; optical axis R^T e_z has +y (down) component: looks down
    centre = torch.tensor([0.7, -0.4, 1.2])
    _, depth, ids = scene.render(w2c_from(R, centre), K, 48, 64, return_ids=True)
    u = torch.arange(64, dtype=torch.float32)[None, :].expand(48, 64)
    d_cam = torch.stack([(u - 31.5) / 40.0, (v - 23.5) / 40.0, torch.ones(48, 64)], -1)
    d_world = d_cam @ R  # R^T d
    s = (g - centre[1]) / d_world[..., 1]  # world hit X = c + s d_world; camera z of X is s
    ground = ids[0] == 0
    assert int(ground.sum()) > 1000
    assert torch.allclose(depth[0][ground], s[ground], rtol=1e-4)


def test_sphere_on_the_axis_has_depth_centre_z_minus_radius():
    sphere = S.Sphere(centre=(0.0, 0.0, 4.0), radius=0.5)
    scene = S.SyntheticScene(spheres=[sphere], boxes=[])
    rgb, depth, ids = scene.render(torch.eye(4), pinhole(50.0, 32.0, 24.0), 49, 65, return_ids=True)
    assert int(ids[0, 24, 32]) == 6
    assert float(depth[0, 24, 32]) == pytest.approx(3.5, abs=1e-5)
    # silhouette radius on the image: tangent rays, f * r / sqrt(z^2 - r^2)
    row = ids[0, 24] == 6
    expected_half_width = 50.0 * 0.5 / math.sqrt(4.0 ** 2 - 0.5 ** 2)
    assert abs(int(row.sum()) / 2 - expected_half_width) <= 1.0
    # off-axis pixel: z of the near intersection of its ray with the sphere
    u, v = 36, 21
    d = torch.tensor([(u - 32.0) / 50.0, (v - 24.0) / 50.0, 1.0], dtype=torch.float64)
    c = torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)
    a, b, cc = d @ d, -2 * (d @ c), c @ c - 0.25
    t = (-b - math.sqrt(b * b - 4 * a * cc)) / (2 * a)
    assert float(depth[0, v, u]) == pytest.approx(float(t), rel=1e-5)


def test_box_front_face_is_flat_at_its_z():
    box = S.Box(centre=(0.0, 0.0, 3.0), half_size=(0.51, 0.4, 0.5))
    scene = S.SyntheticScene(spheres=[], boxes=[box])
    _, depth, ids = scene.render(torch.eye(4), pinhole(30.0, 20.0, 15.0), 31, 41, return_ids=True)
    face = ids[0] == 6
    # front face spans |x| <= 0.51 at z = 2.5 -> |u - cx| <= 30 * 0.51 / 2.5 = 6.12 px
    assert int(face[15].sum()) == 13
    assert torch.allclose(depth[0][face], torch.full_like(depth[0][face], 2.5), atol=1e-5)


def test_objects_move_between_frames():
    sphere = S.Sphere(centre=(-0.5, 0.0, 4.0), radius=0.4, velocity=(1.0, 0.0, 0.0))
    scene = S.SyntheticScene(spheres=[sphere], boxes=[])
    K = pinhole(50.0, 32.0, 24.0)
    _, _, ids = scene.render(torch.eye(4), K, 48, 64, times=torch.tensor([0.0, 1.0]), return_ids=True)
    cols = [ids[i].eq(6).nonzero()[:, 1].float().mean() for i in range(2)]
    # centre x moves -0.5 -> +0.5 at z = 4: image centre moves f * 1.0 / 4 = 12.5 px right
    assert float(cols[0]) == pytest.approx(32 - 6.25, abs=0.6)
    assert float(cols[1] - cols[0]) == pytest.approx(12.5, abs=0.6)
    assert torch.allclose(scene.sphere_centres(torch.tensor([0.5]))[0, 0], torch.tensor([0.0, 0.0, 4.0]))


def test_random_scene_depth_is_finite_positive_from_any_camera_inside():
    scene = S.SyntheticScene(seed=3)
    gen = torch.Generator().manual_seed(0)
    poses = []
    for _ in range(6):
        yaw, pitch = (torch.rand(2, generator=gen) * 2 - 1).tolist()
        R = rot_x(pitch * 1.2) @ rot_y(yaw * math.pi)
        centre = (torch.rand(3, generator=gen) * 2 - 1) * torch.tensor([3.0, 1.0, 1.0])
        poses.append(w2c_from(R, centre))
    rgb, depth = scene.render(torch.stack(poses), pinhole(20.0, 16.0, 12.0), 24, 32,
                              times=torch.linspace(0, 1, 6))
    assert torch.isfinite(depth).all() and float(depth.min()) > 0
    assert float(depth.max()) < 25.0  # the room closes every ray
    assert float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0 and float(rgb.std()) > 0.05


def test_default_scene_and_example_clip():
    clip = S.example_clip(num_frames=3, height=72, width=128)
    frames, depths, K = clip["frames"], clip["depths"], clip["K"]
    assert frames.shape == (3, 72, 128, 3) and depths.shape == (3, 72, 128)
    assert torch.allclose(K, pinhole(500.0 * 128 / 1024, 64.0, 36.0))
    assert torch.equal(clip["w2c"], torch.eye(4).expand(3, 4, 4))
    assert torch.allclose(clip["times"], torch.tensor([0.0, 0.5, 1.0]))
    # depth in a range like the official pipeline's: nearest ~2.6, centre on an object a few units away
    assert 2.0 < float(depths.min()) < 3.5 and float(depths.max()) <= 10.0 + 1e-4
    assert 2.0 < float(depths[0, 36, 64]) < 5.0
    assert float((frames[0] - frames[-1]).abs().mean()) > 0.01  # objects moved
    assert float((depths[0] - depths[-1]).abs().gt(0.05).float().mean()) > 0.01


def test_determinism_by_seed():
    K, size = pinhole(30.0, 24.0, 16.0), (32, 48)
    a = S.SyntheticScene(seed=7).render(torch.eye(4), K, *size, times=0.3)
    b = S.SyntheticScene(seed=7).render(torch.eye(4), K, *size, times=0.3)
    c = S.SyntheticScene(seed=8).render(torch.eye(4), K, *size, times=0.3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_two_sizes_agree_through_K_scaling():
    scene = S.SyntheticScene(seed=2)
    K = pinhole(40.0, 32.0, 18.0)
    lo_rgb, lo_depth = scene.render(torch.eye(4), K, 36, 64, times=0.4)
    K2 = K.clone()
    K2[:2] *= 2.0  # high-res pixel (2u, 2v) casts exactly the ray of low-res pixel (u, v)
    hi_rgb, hi_depth = scene.render(torch.eye(4), K2, 72, 128, times=0.4)
    assert torch.allclose(hi_depth[:, ::2, ::2], lo_depth, rtol=1e-5)
    assert torch.allclose(hi_rgb[:, ::2, ::2], lo_rgb, atol=1e-4)
    # and the standard resize rule (pixel centres) gives the same geometry on average
    from trajcrafter_core.camera import rescale_intrinsics

    K3 = rescale_intrinsics(K, (36, 64), (72, 128))
    _, d3 = scene.render(torch.eye(4), K3, 72, 128, times=0.4)
    pooled = 1.0 / torch.nn.functional.avg_pool2d(1.0 / d3[:, None], 2)[:, 0]
    close = ((pooled - lo_depth).abs() / lo_depth < 0.01).float().mean()
    assert float(close) > 0.95  # all but object/wall edges


def test_target_views_are_consistent_with_the_source_view():
    """Each target pixel's 3D point, seen from the source camera through a 1x1 render whose
    principal point puts the pixel exactly on that point, has the same depth and colour."""
    scene = S.SyntheticScene(seed=4)
    K = pinhole(32.0, 24.0, 16.0)
    w2c_src = w2c_from(rot_y(0.1), (0.2, -0.1, 0.0))
    tr = w2c_from(rot_y(-0.25) @ rot_x(0.1), (0.6, -0.2, 0.3))  # source cam -> target cam
    rgb_t, depth_t, ids_t = S.render_target_views(scene, w2c_src, tr[None], K, 32, 48, times=0.6,
                                                  return_ids=True)
    direct = scene.render(tr @ w2c_src, K, 32, 48, times=0.6)
    assert torch.equal(direct[1], depth_t)

    gen = torch.Generator().manual_seed(0)
    v = torch.randint(0, 32, (200,), generator=gen)
    u = torch.randint(0, 48, (200,), generator=gen)
    z = depth_t[0, v, u]
    X_dst = torch.stack([(u - 24.0) / 32.0 * z, (v - 16.0) / 32.0 * z, z, torch.ones_like(z)], -1)
    X_src = X_dst @ torch.linalg.inv(tr).T
    us = 32.0 * X_src[:, 0] / X_src[:, 2] + 24.0
    vs = 32.0 * X_src[:, 1] / X_src[:, 2] + 16.0
    Ks = K.expand(200, 3, 3).clone()
    Ks[:, 0, 2] -= us  # pixel (0, 0) of frame n looks exactly at (us[n], vs[n])
    Ks[:, 1, 2] -= vs
    rgb_s, depth_s, ids_s = scene.render(w2c_src, Ks, 1, 1, times=0.6, return_ids=True)
    visible = ids_s[:, 0, 0] == ids_t[0, v, u]  # same surface (not occluded in the source)
    assert int(visible.sum()) > 150
    assert torch.allclose(depth_s[visible, 0, 0], X_src[visible, 2], rtol=1e-3)
    assert torch.allclose(rgb_s[visible, 0, 0], rgb_t[0, v, u][visible], atol=2e-3)
    # occluded points are genuinely occluded: the source sees something nearer
    hidden = ~visible
    assert bool((depth_s[hidden, 0, 0] < X_src[hidden, 2] - 1e-3).all())


def test_bad_inputs():
    scene = S.SyntheticScene(seed=0)
    K = pinhole(20.0, 8.0, 8.0)
    with pytest.raises(TrajCrafterError, match="outside the synthetic room"):
        scene.render(w2c_from(torch.eye(3), (0.0, 0.0, -20.0)), K, 16, 16)
    bad = torch.eye(4)
    bad[0, 0] = 2.0
    with pytest.raises(TrajCrafterError, match="rigid"):
        scene.render(bad, K, 16, 16)
    with pytest.raises(TrajCrafterError, match="disagree"):
        scene.render(torch.eye(4).expand(3, 4, 4), K, 16, 16, times=torch.zeros(2))
    with pytest.raises(TrajCrafterError):
        scene.render(torch.eye(4), torch.zeros(3, 3), 16, 16)
    with pytest.raises(TrajCrafterError, match="height and width"):
        scene.render(torch.eye(4), K, 0, 16)
    with pytest.raises(TrajCrafterError, match="radius"):
        S.SyntheticScene(spheres=[S.Sphere((0, 0, 3), -1.0)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    scene = S.SyntheticScene(seed=5)
    K = pinhole(30.0, 24.0, 16.0)
    times = torch.linspace(0, 1, 4)
    cpu = scene.render(torch.eye(4), K, 32, 48, times)
    gpu = scene.render(torch.eye(4), K, 32, 48, times, device="cuda")
    assert gpu[0].device.type == "cuda"
    assert torch.allclose(gpu[1].cpu(), cpu[1], rtol=1e-4)
    assert float((gpu[0].cpu() - cpu[0]).abs().gt(1e-3).float().mean()) < 0.002
