"""Lifting depth to points, the PointCloud container and flying-pixel detection.

Expectations are hand-built (pinhole geometry, analytic depth maps), not taken from any
reference implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.pointcloud import PointCloud, flying_pixel_mask, lift_depth, pixel_rays

K = torch.tensor([[40.0, 0.0, 15.5], [0.0, 42.0, 11.5], [0.0, 0.0, 1.0]])


def _pixels(H, W):
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    return u, v


def test_lifted_points_project_back_to_their_pixels():
    T, H, W = 2, 24, 32
    depths = 1.0 + torch.rand(T, H, W) * 5
    pts = lift_depth(depths, K)
    assert pts.shape == (T, H, W, 3)
    torch.testing.assert_close(pts[..., 2], depths)
    u, v = _pixels(H, W)
    torch.testing.assert_close(K[0, 0] * pts[..., 0] / pts[..., 2] + K[0, 2], u.expand(T, H, W), atol=1e-4, rtol=0)
    torch.testing.assert_close(K[1, 1] * pts[..., 1] / pts[..., 2] + K[1, 2], v.expand(T, H, W), atol=1e-4, rtol=0)


def test_pixel_rays_hand_computed():
    rays = pixel_rays(K, 24, 32)
    assert rays.shape == (1, 24, 32, 3)
    # pixel (u=20, v=3): ((20 - 15.5) / 40, (3 - 11.5) / 42, 1)
    torch.testing.assert_close(rays[0, 3, 20], torch.tensor([4.5 / 40, -8.5 / 42, 1.0]))


def test_per_frame_intrinsics_are_used():
    K2 = torch.stack([K, K * torch.tensor([[2.0, 1, 1], [1, 2.0, 1], [1, 1, 1]])])
    pts = lift_depth(torch.full((2, 4, 4), 2.0), K2)
    # doubling the focal lengths halves x and y
    torch.testing.assert_close(pts[1, ..., :2], pts[0, ..., :2] / 2)


def test_point_cloud_is_lazy_and_selects_frames():
    T, H, W = 3, 6, 8
    frames = torch.rand(T, H, W, 3)
    depths = torch.arange(1, T + 1, dtype=torch.float32).view(T, 1, 1).expand(T, H, W).contiguous()
    cloud = PointCloud(frames, depths, K)
    assert cloud.num_frames == 3 and len(cloud) == 3 and cloud.size == (H, W)
    assert cloud.K.shape == (T, 3, 3)  # one K expanded per frame
    torch.testing.assert_close(cloud.points(), lift_depth(depths, K))
    torch.testing.assert_close(cloud.points(2), lift_depth(depths[2:], K))
    torch.testing.assert_close(cloud.points([2, 0]), lift_depth(depths[[2, 0]], K))
    torch.testing.assert_close(cloud.colors(slice(1, 3)), frames[1:3])
    sub = cloud.select([2, 2, 0])
    assert sub.num_frames == 3
    torch.testing.assert_close(sub.depths[:, 0, 0], torch.tensor([3.0, 3.0, 1.0]))
    assert cloud.to("cpu").device.type == "cpu"


def test_point_cloud_accepts_uint8_and_numpy():
    frames = np.full((1, 4, 5, 3), 255, dtype=np.uint8)
    cloud = PointCloud(frames, np.ones((1, 4, 5), dtype=np.float32), K.numpy())
    assert cloud.frames.dtype == torch.float32 and float(cloud.frames.max()) == 1.0


@pytest.mark.parametrize(
    "depths, K_, match",
    [
        (torch.full((2, 6, 8), float("nan")), K, "NaN"),
        (torch.zeros(2, 6, 8), K, "<= 0"),
        (torch.ones(2, 6, 7), K, "shape"),
        (torch.ones(2, 6, 8), torch.zeros(3, 3), "singular"),
        (torch.ones(2, 6, 8), torch.stack([K, K, K]), "3 matrices"),
    ],
)
def test_point_cloud_rejects_bad_input(depths, K_, match):
    with pytest.raises(TrajCrafterError, match=match):
        PointCloud(torch.rand(2, 6, 8, 3), depths, K_)


def test_point_cloud_rejects_out_of_range_index():
    cloud = PointCloud(torch.rand(2, 4, 4, 3), torch.ones(2, 4, 4), K)
    with pytest.raises(TrajCrafterError, match="out of range"):
        cloud.points(5)


def test_flying_pixels_flag_both_sides_of_a_depth_step_only():
    d = torch.full((1, 10, 12), 2.0)
    d[:, :, 6:] = 5.0  # a vertical depth edge between columns 5 and 6
    flagged = flying_pixel_mask(d, threshold=0.1)
    expected = torch.zeros_like(flagged)
    expected[:, :, 5:7] = True
    assert torch.equal(flagged, expected)


def test_flying_pixels_ignore_a_smooth_slanted_plane():
    # Depth of the plane z = 3 + 0.5 * X seen by K: 1/z is affine in u, a 30-ish degree slant.
    H, W = 24, 32
    u, _ = _pixels(H, W)
    x_over_z = (u - K[0, 2]) / K[0, 0]
    depth = 3.0 / (1.0 - 0.5 * x_over_z)
    assert float(depth.max() / depth.min()) > 1.3  # a real depth range, not a flat image
    assert not bool(flying_pixel_mask(depth.unsqueeze(0)).any())


def test_flying_pixel_threshold_is_relative():
    d = torch.full((1, 4, 4), 10.0)
    d[:, :, 2:] = 10.0 * math.exp(0.05)  # a 5 % step
    assert not bool(flying_pixel_mask(d, threshold=0.1).any())
    assert bool(flying_pixel_mask(d, threshold=0.01).any())
    with pytest.raises(TrajCrafterError):
        flying_pixel_mask(d, threshold=0.0)


def test_moving_or_selecting_keeps_the_values():
    cloud = PointCloud(torch.rand(3, 4, 5, 3), 1.0 + torch.rand(3, 4, 5), K)
    assert cloud.to("cpu") is cloud and cloud.to(None) is cloud
    sub = cloud.select([1])
    assert isinstance(sub, PointCloud) and sub.K.shape == (1, 3, 3)
    torch.testing.assert_close(sub.points(), cloud.points(1))
