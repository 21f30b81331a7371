"""Renderer behaviour against independent expectations: analytic planes, hand-computed splat
weights, hand-made masks. No reference implementation is imported."""

from __future__ import annotations

import math

import pytest
import torch

from trajcrafter_core import render
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.render import dilate_holes, render_views, splat_points

H, W, F = 24, 32, 64.0  # power-of-two focal: the analytic shifts below are exact in float32
K = torch.tensor([[F, 0.0, (W - 1) / 2], [0.0, F, (H - 1) / 2], [0.0, 0.0, 1.0]])
MODES = ["official", "zbuffer"]


def translation(tx=0.0, ty=0.0, tz=0.0, T=1):
    m = torch.eye(4)
    m[:3, 3] = torch.tensor([tx, ty, tz])
    return m.expand(T, 4, 4).clone()


def textured(T=1, h=H, w=W, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, h, w, 3, generator=g)


@pytest.mark.parametrize("mode", MODES)
def test_identity_transform_reproduces_the_image_without_holes(mode):
    frames = textured(T=2)
    v = torch.arange(H, dtype=torch.float32).view(1, H, 1)
    depths = (2.0 + 0.01 * v).expand(2, H, W).contiguous()  # smooth, no depth edges
    images, holes = render_views(frames, depths, K, translation(T=2), mode=mode)
    assert images.shape == (2, H, W, 3) and holes.shape == (2, H, W)
    assert float(holes.max()) == 0.0
    torch.testing.assert_close(images, frames, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", MODES)
def test_plane_translation_shifts_by_fx_tx_over_z_integer(mode):
    Z, shift = 4.0, 5  # tx = shift * Z / fx
    frames = textured()
    images, holes = render_views(frames, torch.full((1, H, W), Z), K, translation(tx=shift * Z / F), mode=mode)
    torch.testing.assert_close(images[:, :, shift:], frames[:, :, :-shift], atol=1e-5, rtol=0)
    expected_holes = torch.zeros(1, H, W)
    expected_holes[:, :, :shift] = 1.0
    assert torch.equal(holes, expected_holes)
    assert float(images[:, :, :shift].abs().max()) == 0.0  # holes are black


@pytest.mark.parametrize("mode", MODES)
def test_plane_translation_fractional_shift_is_bilinear(mode):
    Z, shift = 3.0, 2.5  # every point lands half way between two pixels
    frames = textured(seed=1)
    images, holes = render_views(frames, torch.full((1, H, W), Z), K, translation(tx=shift * Z / F), mode=mode)
    # pixel p receives the points from p - 3 and p - 2 with weights 1/2 each
    expected = 0.5 * (frames[:, :, :-3] + frames[:, :, 1:-2])
    torch.testing.assert_close(images[:, :, 3:], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(images[:, :, 2], frames[:, :, 0], atol=1e-5, rtol=0)  # only one point
    assert torch.equal(holes[0, :, :2], torch.ones(H, 2)) and float(holes[0, :, 2:].max()) == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_plane_vertical_translation(mode):
    Z, shift = 2.0, 3
    frames = textured(seed=2)
    images, holes = render_views(frames, torch.full((1, H, W), Z), K, translation(ty=-shift * Z / F), mode=mode)
    torch.testing.assert_close(images[:, :-shift], frames[:, shift:], atol=1e-5, rtol=0)  # moves up
    assert float(holes[0, -shift:].min()) == 1.0 and float(holes[0, :-shift].max()) == 0.0


def test_single_point_bilinear_weights_official():
    x, y, z = torch.tensor([[3.25]]), torch.tensor([[2.5]]), torch.tensor([[2.0]])
    colour = torch.tensor([[[1.0, 0.5, 0.0]]])
    sums, weights = splat_points(x, y, z, colour, (6, 8), "official", normalize=False)
    # Official depth weight: 1 / exp(50 * log(1 + z) / max(log(1 + z))) = exp(-50) for one point.
    dw = math.exp(-50.0)
    expected = torch.zeros(1, 6, 8, dtype=torch.float64)
    expected[0, 2, 3] = 0.75 * 0.5 * dw  # (1 - 0.25) * (1 - 0.5)
    expected[0, 2, 4] = 0.25 * 0.5 * dw
    expected[0, 3, 3] = 0.75 * 0.5 * dw
    expected[0, 3, 4] = 0.25 * 0.5 * dw
    torch.testing.assert_close(weights.double(), expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(sums.double(), expected.unsqueeze(-1) * colour[0, 0].double(), rtol=1e-5, atol=0)
    images, holes = splat_points(x, y, z, colour, (6, 8), "official")
    assert int((holes == 0).sum()) == 4
    torch.testing.assert_close(images[0, 3, 4], colour[0, 0])


def test_integral_projection_puts_all_four_corners_on_one_pixel_official():
    # floor == ceil at integral coordinates: weight 4 on that pixel, none on the neighbours
    _, weights = splat_points(torch.tensor([[3.0]]), torch.tensor([[2.0]]), torch.tensor([[2.0]]),
                              torch.ones(1, 1, 3), (6, 8), "official", normalize=False)
    assert int((weights > 0).sum()) == 1
    torch.testing.assert_close(weights[0, 2, 3].double(), torch.tensor(4 * math.exp(-50.0), dtype=torch.float64), rtol=1e-5, atol=0)


def test_single_point_bilinear_weights_zbuffer():
    _, weights = splat_points(torch.tensor([[3.25]]), torch.tensor([[2.5]]), torch.tensor([[2.0]]),
                              torch.ones(1, 1, 3), (6, 8), "zbuffer", normalize=False)
    expected = torch.zeros(1, 6, 8)
    expected[0, 2:4, 3] = 0.375
    expected[0, 2:4, 4] = 0.125
    torch.testing.assert_close(weights, expected)


@pytest.mark.parametrize("x_near, hole", [(8.2, False), (7.6, True)])
def test_zbuffer_a_near_point_occludes_only_if_it_reaches_the_image(x_near, hole):
    # A far surface with one point on every pixel of a 6x8 image, and one near point at the
    # right edge: at x = 8.2 its bilinear footprint (columns 8, 9) misses the image, so it must
    # not hide the far points there; at x = 7.6 it reaches column 7 (weight 0.4, row 3 only)
    # and owns cell (3, 8), so the far points of column 7 within its 3x3 depth neighbourhood
    # (rows 2..4) give way: pixel (3, 7) shows it, (2, 7) and (4, 7) are holes.
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(8.0), indexing="ij")
    x = torch.cat([xs.reshape(-1), torch.tensor([x_near])]).view(1, -1)
    y = torch.cat([ys.reshape(-1), torch.tensor([3.0])]).view(1, -1)
    z = torch.cat([torch.full((48,), 10.0), torch.tensor([1.0])]).view(1, -1)
    colour = torch.cat([torch.zeros(48, 3), torch.ones(1, 3)]).view(1, -1, 3)
    images, holes = splat_points(x, y, z, colour, (6, 8), "zbuffer")
    expected_holes, expected_white = torch.zeros(1, 6, 8), torch.zeros(1, 6, 8)
    if hole:
        expected_holes[0, [2, 4], 7] = 1.0
        expected_white[0, 3, 7] = 1.0
    assert torch.equal(holes, expected_holes)
    torch.testing.assert_close(images, expected_white.unsqueeze(-1).expand(1, 6, 8, 3))


def test_exp_depth_weights_prefer_the_nearer_point_official():
    x, y = torch.tensor([[5.0, 5.0]]), torch.tensor([[4.0, 4.0]])
    z = torch.tensor([[2.0, 4.0]])
    colours = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])  # near red, far blue
    images, holes = splat_points(x, y, z, colours, (8, 10), "official")
    # weights 1 / exp(50 * log(1 + z) / log(5)): the far one is exp(-50 * (1 - log 3 / log 5)) times smaller
    ratio = math.exp(-50.0 * (1.0 - math.log(3.0) / math.log(5.0)))
    red = 1.0 / (1.0 + ratio)
    torch.testing.assert_close(images[0, 4, 5], torch.tensor([red, 0.0, 1.0 - red]), atol=1e-6, rtol=0)
    assert red > 0.9999 and float(holes[0, 4, 5]) == 0.0
    images_z, _ = splat_points(x, y, z, colours, (8, 10), "zbuffer")
    torch.testing.assert_close(images_z[0, 4, 5], torch.tensor([1.0, 0.0, 0.0]))


def test_dilate_holes_on_a_hand_made_mask():
    mask = torch.zeros(1, 9, 10)
    mask[0, 4, 5] = 1.0
    mask[0, 0, 0] = 1.0
    expected = torch.zeros(1, 9, 10)
    expected[0, 2:7, 3:8] = 1.0  # 5x5 around (4, 5)
    expected[0, 0:3, 0:3] = 1.0  # clipped at the border (outside pixels are not holes)
    assert torch.equal(dilate_holes(mask), expected)


@pytest.mark.parametrize("mode", MODES)
def test_clean_holes_dilates_and_blanks(mode):
    Z, shift = 4.0, 5
    frames = textured(seed=3)
    args = (frames, torch.full((1, H, W), Z), K, translation(tx=shift * Z / F))
    plain, _ = render_views(*args, mode=mode)
    images, holes = render_views(*args, mode=mode, clean_holes=True)
    expected = torch.zeros(1, H, W)
    expected[:, :, : shift + 2] = 1.0  # the 5-wide hole strip grows by 2 columns
    assert torch.equal(holes, expected)
    assert float(images[:, :, : shift + 2].abs().max()) == 0.0
    torch.testing.assert_close(images[:, :, shift + 2 :], plain[:, :, shift + 2 :])


def _behind_camera_scene():
    """Left half red at depth 1, right half green at depth 5; the camera steps 2 back... forward:
    z -= 2 puts the red half behind the camera (z = -1), the green half stays in front (z = 3)."""
    frames = torch.zeros(1, H, W, 3)
    frames[:, :, : W // 2, 0] = 1.0
    frames[:, :, W // 2 :, 1] = 1.0
    depths = torch.full((1, H, W), 5.0)
    depths[:, :, : W // 2] = 1.0
    return frames, depths, translation(tz=-2.0)


def test_points_behind_the_camera_official_keeps_them_mirrored():
    frames, depths, tr = _behind_camera_scene()
    images, holes = render_views(frames, depths, K, tr, mode="official")
    # A point at z = -1 projects through the centre: pixel (u, v) -> (2 cx - u, 2 cy - v), and
    # clamping z to 0 gives it the largest weight, so it wins over the points in front.
    mirrored = frames.flip(1, 2)
    right = slice(W // 2, None)
    torch.testing.assert_close(images[:, :, right], mirrored[:, :, right], atol=1e-5, rtol=0)
    assert float(holes[:, :, right].max()) == 0.0


def test_points_behind_the_camera_zbuffer_culls_them():
    frames, depths, tr = _behind_camera_scene()
    images, holes = render_views(frames, depths, K, tr, mode="zbuffer")
    assert float(images[..., 0].max()) == 0.0  # no red anywhere
    covered = holes == 0
    assert int(covered.sum()) > H * W // 4
    assert bool((images[..., 1][covered] > 0.99).all())  # what is covered is the green plane


def _foreground_over_background(fg_depth, bg_depth, width=160, height=48, f=100.0, cols=(40, 80)):
    """Blue background plane, red foreground square (rows 12..35, ``cols``)."""
    frames = torch.zeros(1, height, width, 3)
    frames[..., 2] = 1.0
    depths = torch.full((1, height, width), bg_depth)
    fg = (slice(None), slice(12, 36), slice(*cols))
    frames[fg] = torch.tensor([1.0, 0.0, 0.0])  # red foreground square
    depths[fg] = fg_depth
    Kf = torch.tensor([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    return frames, depths, Kf


def test_zbuffer_background_does_not_bleed_into_the_foreground():
    # The camera moves so the foreground shifts 60 px and the background 50 px: 10 columns of
    # background points end up behind the foreground square.
    frames, depths, Kf = _foreground_over_background(100.0, 120.0)
    tr = translation(tx=60.0 * 100.0 / 100.0)
    inner = (0, slice(12 + 2, 36 - 2), slice(100 + 2, 140 - 2))  # target foreground minus a margin
    red = torch.tensor([1.0, 0.0, 0.0])
    images, holes = render_views(frames, depths, Kf, tr, mode="zbuffer")
    assert float(holes[inner].max()) == 0.0
    torch.testing.assert_close(images[inner], red.expand_as(images[inner]), atol=1e-5, rtol=0)
    # The official splat has no depth test: the background leaks in with exp depth weights
    # that differ little between depths 100 and 120.
    official, _ = render_views(frames, depths, Kf, tr, mode="official")
    assert float((official[inner] - red).abs().max()) > 0.05


@pytest.mark.parametrize(
    "far, options, dropped",
    [
        (1.2, {}, True),  # log(1.2) = 0.18 > 0.1 (the default threshold): both sides of the step go
        (1.05, {}, False),  # log(1.05) = 0.049: a smooth surface
        (1.05, {"flying_threshold": 0.01}, True),
        (1.2, {"drop_flying_pixels": False}, False),
    ],
)
def test_zbuffer_drops_the_pixels_on_both_sides_of_a_depth_step(far, options, dropped):
    # Two fronto-parallel half planes, static camera: each point lands exactly on its pixel, so
    # a dropped point is a hole. The step is between columns 15 and 16, a jump of log(far) in
    # log depth seen from either side (near side: exactly; far side: -log(2 - e^-t) = 0.091 at t = 0.1).
    depths = torch.ones(1, H, W)
    depths[:, :, W // 2 :] = far
    images, holes = render_views(textured(), depths, K, translation(), mode="zbuffer", **options)
    expected = torch.zeros(1, H, W)
    if dropped:
        expected[:, :, W // 2 - 1 : W // 2 + 1] = 1.0
    assert torch.equal(holes, expected)


def test_zbuffer_auto_radius_closes_pinholes_of_a_forward_move():
    frames = textured(seed=4)
    depths = torch.full((1, H, W), 4.0)
    tr = translation(tz=-2.6)  # magnifies x 4 / 1.4 = 2.9: bilinear footprints leave gaps
    _, holes_auto = render_views(frames, depths, K, tr, mode="zbuffer")
    _, holes_r1 = render_views(frames, depths, K, tr, mode="zbuffer", splat_radius=1)
    _, holes_official = render_views(frames, depths, K, tr, mode="official")
    assert float(holes_auto.max()) == 0.0
    assert float(holes_r1.mean()) > 0.1 and float(holes_official.mean()) > 0.1


def test_zbuffer_auto_radius_hides_the_background_behind_a_magnified_foreground():
    frames, depths, Kf = _foreground_over_background(3.0, 8.0, width=64, height=48, f=50.0, cols=(20, 44))
    tr = translation(tz=-1.8)  # foreground magnified x 2.5, background x 1.3
    # Background points next to the square's right edge (12.5 px from the centre) land 16 px
    # from the centre, well inside the magnified square (30 px): columns 48..58.
    centre = (0, slice(20, 28), slice(48, 58))
    auto, holes = render_views(frames, depths, Kf, tr, mode="zbuffer")
    assert float(holes[centre].max()) == 0.0
    assert float(auto[centre][..., 2].max()) == 0.0  # no blue shows through the red square
    official, _ = render_views(frames, depths, Kf, tr, mode="official")
    assert float(official[centre][..., 2].max()) > 0.5  # through the official splat's pinholes it does


def test_render_size_and_default_target_intrinsics():
    # A colour ramp c(u) = u / W rendered at half size with K rescaled: pixel u' sees source u = 2u' + 0.5
    ramp = (torch.arange(W, dtype=torch.float32) / W).view(1, 1, W, 1).expand(1, H, W, 3).contiguous()
    for mode in MODES:
        images, holes = render_views(ramp, torch.full((1, H, W), 3.0), K, translation(), mode=mode, size=(H // 2, W // 2))
        assert images.shape == (1, H // 2, W // 2, 3)
        assert float(holes.max()) == 0.0
        expected = (2 * torch.arange(W // 2, dtype=torch.float32) + 0.5) / W
        torch.testing.assert_close(images[0, 4, 1:-1, 0], expected[1:-1], atol=1e-5, rtol=0)


def test_chunking_and_progress_do_not_change_the_result():
    T = 5
    frames = textured(T=T, seed=5)
    depths = 2.0 + torch.rand(T, H, W)
    tr = translation(tx=0.1, ty=-0.05, T=T)
    calls = []
    for mode in MODES:
        whole, holes = render_views(frames, depths, K, tr, mode=mode)
        parts, holes_c = render_views(frames, depths, K, tr, mode=mode, chunk_size=2,
                                      progress=lambda done, total: calls.append((done, total)))
        torch.testing.assert_close(parts, whole)
        assert torch.equal(holes, holes_c)
    assert calls == [(2, 5), (4, 5), (5, 5)] * 2


def test_per_frame_transforms_and_intrinsics():
    T = 3
    frames = textured(T=T, seed=6)
    depths = torch.full((T, H, W), 4.0)
    tr = torch.cat([translation(tx=s * 4.0 / F) for s in (0, 2, 4)])
    images, holes = render_views(frames, depths, torch.stack([K] * T), tr, K_dst=K)
    for t, s in enumerate((0, 2, 4)):
        torch.testing.assert_close(images[t, :, s:], frames[t, :, : W - s], atol=1e-5, rtol=0)
        assert s == 0 or float(holes[t, :, :s].min()) == 1.0  # exact: F, Z, tx are powers of two


@pytest.mark.parametrize("mode", MODES)
def test_whole_chunk_bands_as_on_cuda_give_the_cpu_result(mode, monkeypatch):
    # CUDA renders a chunk as one band of several frames; here that layout runs on the CPU.
    # Per-frame zoom (1x, 2.5x, 3x): the magnified points of each frame take their own radius.
    T = 3
    frames = textured(T=T, seed=11)
    slope = torch.linspace(0.0, 0.5, W).expand(T, H, W)  # smooth: no flying pixels to drop
    depths = (3.0 + slope + torch.tensor([0.0, 0.3, 0.6]).view(T, 1, 1)).contiguous()
    tr = translation(tx=0.05, tz=-0.4, T=T)
    K_dst = torch.stack([K.clone() for _ in range(T)])
    for t, zoom in enumerate((1.0, 2.5, 3.0)):
        K_dst[t, 0, 0] = K_dst[t, 1, 1] = F * zoom
    banded, holes_banded = render_views(frames, depths, K, tr, K_dst=K_dst, mode=mode)
    monkeypatch.setattr(render, "_bands", lambda n, h, w, device: [(slice(0, n), slice(0, h))])
    whole, holes_whole = render_views(frames, depths, K, tr, K_dst=K_dst, mode=mode, chunk_size=T)
    # the zoomed frames are magnified: pinholes in the official splat, closed by the auto radius
    assert (float(holes_banded[1:].mean()) < 0.02) == (mode == "zbuffer")
    assert torch.equal(holes_whole, holes_banded)
    torch.testing.assert_close(whole, banded, atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", MODES)
def test_cuda_matches_cpu(mode):
    frames = textured(T=3, seed=7)
    depths = 2.0 + torch.rand(3, H, W)
    tr = translation(tx=0.2, tz=-0.3, T=3)
    cpu, holes_cpu = render_views(frames, depths, K, tr, mode=mode)
    gpu, holes_gpu = render_views(frames.cuda(), depths.cuda(), K.cuda(), tr.cuda(), mode=mode)
    assert gpu.device.type == "cuda"
    assert float((holes_gpu.cpu() != holes_cpu).float().mean()) < 1e-3
    both = (holes_cpu == 0) & (holes_gpu.cpu() == 0)
    assert float((gpu.cpu() - cpu).abs().amax(-1)[both].max()) < 1e-3
    # compute on the GPU, results come back to the inputs' device
    via, _ = render_views(frames, depths, K, tr, mode=mode, device="cuda")
    assert via.device.type == "cpu"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(depths=torch.full((1, H, W), float("nan"))), "NaN"),
        (dict(depths=torch.full((1, H, W), float("inf"))), "NaN/inf"),
        (dict(depths=torch.zeros(1, H, W)), "<= 0"),
        (dict(depths=torch.ones(1, H, W + 1)), "shape"),
        (dict(K_src=torch.zeros(3, 3)), "singular"),
        (dict(K_dst=torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 0]])), "singular"),
        (dict(transforms=torch.eye(4)[:3].unsqueeze(0)), r"\[T, 4, 4\]"),
        (dict(transforms=torch.eye(4)), r"\[T, 4, 4\]"),
        (dict(transforms=translation(T=2)), "T = 1"),
        (dict(transforms=translation() * float("nan")), "NaN"),
        (dict(mode="fancy"), "mode"),
        (dict(size=(0, 5)), "size"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(splat_radius=0.5), "splat_radius"),
    ],
)
def test_bad_inputs_raise_our_error(kwargs, match):
    args = dict(frames=textured(), depths=torch.ones(1, H, W), K_src=K, transforms=translation())
    args.update(kwargs)
    with pytest.raises(TrajCrafterError, match=match):
        render_views(**args)


def test_modes_constant():
    assert render.MODES == ("official", "zbuffer")


def test_render_trajectory_picks_source_frames_and_sizes():
    from trajcrafter_core import camera
    from trajcrafter_core.pointcloud import PointCloud
    from trajcrafter_core.render import render_trajectory

    T = 3
    frames = textured(T=T, seed=8)
    depths = 3.0 + 0.1 * torch.arange(T, dtype=torch.float32).view(T, 1, 1).expand(T, H, W)
    cloud = PointCloud(frames, depths, K)
    path = torch.cat([translation(tx=s * 3.0 / F) for s in (0, 1, 2)])
    traj = camera.make_trajectory("bullet", path, num_source_frames=T, height=H, width=W, K=K)
    assert traj.source_index.tolist() == [T - 1] * T
    for mode in MODES:
        images, holes = render_trajectory(cloud, traj, mode=mode)
        expected, expected_holes = render_views(frames[[T - 1] * T], depths[[T - 1] * T], K, traj.transforms,
                                                traj.K_dst, mode=mode)
        torch.testing.assert_close(images, expected)
        assert torch.equal(holes, expected_holes)
    # render size override: K_dst is rescaled with it
    images, holes = render_trajectory(cloud, traj, mode="zbuffer", size=(2 * H, 2 * W))
    assert images.shape == (T, 2 * H, 2 * W, 3) and float(holes[0].mean()) == 0.0
    # a trajectory made for another size: its intrinsics are rescaled to the cloud's size
    big = traj.rescaled(2 * H, 2 * W)
    images_big, _ = render_trajectory(cloud, big, mode="zbuffer")
    torch.testing.assert_close(images_big, images, atol=1e-5, rtol=0)


def test_render_trajectory_rejects_a_schedule_for_another_clip():
    from trajcrafter_core import camera
    from trajcrafter_core.pointcloud import PointCloud
    from trajcrafter_core.render import render_trajectory

    cloud = PointCloud(textured(T=2), torch.ones(2, H, W), K)
    traj = camera.make_trajectory("gradual", translation(T=5), num_source_frames=5, height=H, width=W, K=K)
    with pytest.raises(TrajCrafterError, match="source_index"):
        render_trajectory(cloud, traj)
    with pytest.raises(TrajCrafterError, match="PointCloud"):
        render_trajectory(textured(), traj)


@pytest.mark.parametrize("mode", MODES)
def test_working_memory_does_not_grow_with_the_clip(mode):
    from bench.profiling import cpu_peak_bytes

    h, w = 48, 64
    Kc = torch.tensor([[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]])

    def working_bytes(T):
        frames, depths = textured(T=T, h=h, w=w), 2.0 + torch.rand(T, h, w)
        tr = translation(tx=0.1, tz=-0.2, T=T)
        peak = cpu_peak_bytes(lambda: render_views(frames, depths, Kc, tr, mode=mode, chunk_size=2))
        return peak - T * h * w * 4 * 4  # minus the outputs (images + hole mask)

    short, long = working_bytes(2), working_bytes(12)
    assert long < 1.2 * short + 64 * 1024


@pytest.mark.parametrize("bad, match", [("nan_frame", "NaN"), ("zero_depth", "<= 0")])
def test_bad_values_in_a_later_frame_are_caught(bad, match):
    frames, depths = textured(T=5), torch.full((5, H, W), 2.0)
    if bad == "nan_frame":
        frames[4, 3, 3, 1] = float("nan")
    else:
        depths[4, 0, 0] = 0.0
    with pytest.raises(TrajCrafterError, match=match):
        render_views(frames, depths, K, translation(T=5), chunk_size=2)


def test_uint8_frames_are_accepted():
    frames = (textured() * 255).to(torch.uint8)
    images, holes = render_views(frames, torch.full((1, H, W), 2.0), K, translation())
    torch.testing.assert_close(images, frames.float() / 255, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", MODES)
def test_return_depth_of_a_plane_moved_along_the_axis(mode):
    # a fronto-parallel plane at Z seen from a camera moved back by tz: every point lies at Z + tz
    Z, tz = 4.0, 1.0
    frames = textured(seed=3)
    images, holes, depth = render_views(frames, torch.full((1, H, W), Z), K, translation(tz=tz), mode=mode,
                                        return_depth=True)
    plain, plain_holes = render_views(frames, torch.full((1, H, W), Z), K, translation(tz=tz), mode=mode)
    assert torch.equal(images, plain) and torch.equal(holes, plain_holes)  # the depth is extra
    covered = holes[0] < 0.5
    assert covered.float().mean() > 0.5  # the image shrinks towards the centre
    torch.testing.assert_close(depth[0][covered], torch.full_like(depth[0][covered], Z + tz), atol=1e-5, rtol=0)
    assert float(depth[0][~covered].abs().max()) == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_return_depth_of_a_slanted_plane_is_its_depth_with_a_static_camera(mode):
    v = torch.arange(H, dtype=torch.float32).view(1, H, 1)
    depths = (2.0 + 0.05 * v).expand(1, H, W).contiguous()
    _, holes, depth = render_views(textured(), depths, K, translation(), mode=mode, return_depth=True,
                                   clean_holes=True)
    assert float(holes.max()) == 0.0
    torch.testing.assert_close(depth, depths, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", MODES)
def test_point_mask_drops_points_and_leaves_holes_where_only_they_land(mode):
    frames = textured(T=2, seed=4)
    depths = torch.full((2, H, W), 3.0)
    mask = torch.ones(2, H, W, dtype=torch.bool)
    mask[0, 5:9, 10:16] = False
    mask[1, :, :4] = False
    images, holes, depth = render_views(frames, depths, K, translation(T=2), mode=mode, point_mask=mask,
                                        return_depth=True)
    # static camera: every pixel is reached by its own point only
    assert torch.equal(holes > 0.5, ~mask)
    torch.testing.assert_close(images[mask], frames[mask], atol=1e-5, rtol=0)
    assert float(images[~mask].abs().max()) == 0.0 and float(depth[~mask].abs().max()) == 0.0
    # shifted by 2.5 px: a pixel next to the masked block blends only the unmasked point
    shifted, shifted_holes = render_views(frames[:1], depths[:1], K, translation(tx=2.5 * 3.0 / F), mode=mode,
                                          point_mask=mask[:1])
    # pixel p receives the points from p - 3 and p - 2
    torch.testing.assert_close(shifted[0, 6, 12], frames[0, 6, 9], atol=1e-5, rtol=0)  # 9 kept, 10 masked
    torch.testing.assert_close(shifted[0, 6, 18], frames[0, 6, 16], atol=1e-5, rtol=0)  # 15 masked, 16 kept
    assert torch.equal(shifted_holes[0, 6, 13:18], torch.ones(5))  # both of their points masked


def test_point_mask_official_masked_points_still_set_the_depth_normalisation():
    # official mask1 semantics: a masked point gets weight 0 but its depth still counts in the
    # per-frame maximum of log(1 + z) that the exp depth weights are normalised by
    frames = torch.zeros(1, H, W, 3)
    frames[0, 4, 5] = torch.tensor([1.0, 0.0, 0.0])  # near red, z = 2
    frames[0, 4, 6] = torch.tensor([0.0, 0.0, 1.0])  # far blue, z = 4
    depths = torch.full((1, H, W), 2.0)
    depths[0, 4, 6] = 4.0
    depths[0, 20, 30] = 100.0  # far away and masked out
    mask = torch.zeros(1, H, W, dtype=torch.bool)
    mask[0, 4, 5] = mask[0, 4, 6] = True
    a = -4.0 / 3.0  # fx * tx: red moves a / 2 to x = 4.333, blue a / 4 to x = 5.667
    images, holes = render_views(frames, depths, K, translation(tx=a / F), mode="official", point_mask=mask)
    # pixel 5 gets 1/3 of each (same bilinear share), weighted by 1 / exp(50 log(1 + z) / L)

    def red_fraction(L):
        return 1.0 / (1.0 + math.exp(-50.0 * (math.log(5.0) - math.log(3.0)) / L))

    expected = red_fraction(math.log(101.0))  # L from the masked point: 0.99607
    torch.testing.assert_close(images[0, 4, 5], torch.tensor([expected, 0.0, 1.0 - expected]), atol=2e-5, rtol=0)
    assert abs(expected - red_fraction(math.log(5.0))) > 3e-3  # ignoring it would be visibly different
    assert float(holes[0, 20, 30]) == 1.0 and float(holes[0, 4, 4]) == 0.0 and float(holes[0, 4, 6]) == 0.0
    assert float(holes[0].sum()) == H * W - 3


def test_unknown_render_options_and_bad_point_masks_raise_our_error():
    args = dict(frames=textured(), depths=torch.ones(1, H, W), K_src=K, transforms=translation())
    with pytest.raises(TrajCrafterError, match="point_mask"):
        render_views(**args, point_mask=torch.ones(1, H, W - 1, dtype=torch.bool))
    from trajcrafter_core.pointcloud import PointCloud

    cloud = PointCloud(textured(), torch.ones(1, H, W), K)

    class Static:
        source_index = torch.zeros(1, dtype=torch.long)
        transforms = translation()
        K_src = K[None]
        K_dst = K[None]
        height, width = H, W

    with pytest.raises(TrajCrafterError, match="unknown render option"):
        render.render_trajectory(cloud, Static(), mode="zbuffer", splat_raduis=2)
    images, holes, depth = render.render_trajectory(cloud, Static(), mode="zbuffer", return_depth=True, splat_radius=2)
    torch.testing.assert_close(depth, torch.ones(1, H, W))


@pytest.mark.parametrize("mode", MODES)
def test_renders_are_deterministic(mode):
    # the accumulators scatter channels (and, for the depth pass, two halves of the points) in
    # parallel, each in a fixed order: the same inputs give the same bits
    frames = textured(T=3, seed=5)
    g = torch.Generator().manual_seed(6)
    depths = 2.0 + 3.0 * torch.rand(3, H, W, generator=g)
    tr = translation(tx=0.3, tz=-0.2, T=3)
    first = render_views(frames, depths, K, tr, mode=mode, return_depth=True)
    for _ in range(3):
        again = render_views(frames, depths, K, tr, mode=mode, return_depth=True)
        assert all(torch.equal(a, b) for a, b in zip(first, again))
