"""External depth (another pack's IMAGE, raw arrays on disk) and colourised previews."""

import numpy as np
import pytest
import torch
from PIL import Image

from trajcrafter_core.depth import (
    colorize_depth,
    colorize_disparity,
    depth_from_array,
    depth_from_image,
    disparity_from_image,
    load_depth_array,
)
from trajcrafter_core.errors import MissingFilesError, TrajCrafterError


def _ramp(t=2, h=4, w=5):
    """Disparity-like IMAGE: bright (near) on the right, identical in the three channels."""
    v = torch.linspace(0, 1, w).view(1, 1, w).expand(t, h, w)
    return v.unsqueeze(-1).expand(t, h, w, 3).contiguous()


def test_image_near_bright_maps_officially():
    frames = torch.rand(2, 4, 5, 3)
    depth = depth_from_image(_ramp(), frames)
    assert depth.shape == (2, 4, 5)
    assert float(depth[0, 0, -1]) == pytest.approx(10000 / 3900)  # brightest = nearest
    assert float(depth[0, 0, 2]) == pytest.approx(10000 / 1950)  # 0.5
    assert float(depth[0, 0, 0]) == 1e4  # darkest = farthest


def test_image_far_bright_is_flipped():
    near = disparity_from_image(_ramp(), "near_bright")
    far = disparity_from_image(_ramp(), "far_bright")
    torch.testing.assert_close(far, 1 - near)
    depth = depth_from_image(_ramp(), polarity="far_bright")
    assert float(depth[0, 0, 0]) == pytest.approx(10000 / 3900)  # now the left side is near


def test_image_single_channel_and_bad_polarity():
    img = _ramp()[..., :1]
    torch.testing.assert_close(disparity_from_image(img), disparity_from_image(_ramp()))
    with pytest.raises(TrajCrafterError, match="polarity"):
        depth_from_image(_ramp(), polarity="bright")


def test_image_mismatch_with_video_is_a_clear_error():
    with pytest.raises(TrajCrafterError, match="2 frame.*video has 3"):
        depth_from_image(_ramp(t=2), torch.rand(3, 4, 5, 3))
    with pytest.raises(TrajCrafterError, match="4x5.*video is 8x10"):
        depth_from_image(_ramp(), torch.rand(2, 8, 10, 3))
    resized = depth_from_image(_ramp(), torch.rand(2, 8, 10, 3), resize=True)
    assert resized.shape == (2, 8, 10)


def test_constant_external_disparity_is_a_clear_error():
    with pytest.raises(TrajCrafterError, match="constant"):
        depth_from_image(torch.full((3, 4, 4, 3), 0.5))


def test_npy_npz_metric_and_disparity(tmp_path):
    metric = np.random.default_rng(0).uniform(1.0, 5.0, size=(3, 6, 7)).astype(np.float32)
    np.save(tmp_path / "d.npy", metric)
    out = depth_from_array(tmp_path / "d.npy", torch.rand(3, 6, 7, 3), kind="depth")
    np.testing.assert_array_equal(out.numpy(), metric)

    disp = np.linspace(0, 2, 3 * 6 * 7, dtype=np.float32).reshape(3, 6, 7)  # any scale
    np.savez(tmp_path / "dc.npz", depth=disp)  # DepthCrafter's save_npz key
    out = depth_from_array(tmp_path / "dc.npz", kind="disparity")
    assert float(out.flatten()[-1]) == pytest.approx(10000 / 3900) and float(out.flatten()[0]) == 1e4
    np.savez(tmp_path / "two.npz", a=disp, b=disp)
    with pytest.raises(TrajCrafterError, match="key"):
        load_depth_array(tmp_path / "two.npz")
    assert load_depth_array(tmp_path / "two.npz", key="b").shape == (3, 6, 7)


def test_png16_sequence(tmp_path):
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    for i in range(3):
        Image.fromarray(values).save(tmp_path / f"frame_{i:03d}.png")
    arr = load_depth_array(tmp_path)
    assert arr.shape == (3, 2, 2)
    np.testing.assert_allclose(arr[0].numpy(), values / 65535.0, rtol=1e-6)
    depth = depth_from_array(sorted(str(p) for p in tmp_path.glob("*.png")), torch.rand(3, 2, 2, 3))
    assert float(depth[0, 0, 1]) == pytest.approx(10000 / 3900)


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(MissingFilesError):
        load_depth_array(tmp_path / "nope.npy")
    with pytest.raises(MissingFilesError, match="no PNG"):
        load_depth_array(tmp_path)
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(TrajCrafterError, match="unsupported"):
        load_depth_array(tmp_path / "x.txt")
    np.save(tmp_path / "neg.npy", -np.ones((1, 2, 2), np.float32))
    with pytest.raises(TrajCrafterError, match="<= 0"):
        depth_from_array(tmp_path / "neg.npy", kind="depth")
    with pytest.raises(TrajCrafterError, match="kind"):
        depth_from_array(np.ones((1, 2, 2)), kind="inverse")


def test_colorize():
    depth = torch.tensor([[[1.0, 2.0, 4.0]]])
    img = colorize_depth(depth)
    assert img.shape == (1, 1, 3, 3) and float(img.min()) >= 0 and float(img.max()) <= 1
    brightness = img.sum(-1)[0, 0]
    assert brightness[0] > brightness[1] > brightness[2]  # near = bright
    gray = colorize_disparity(torch.tensor([[[0.0, 0.5, 1.0]]]), colormap="gray")
    torch.testing.assert_close(gray[0, 0, :, 0], torch.tensor([0.0, 0.5, 1.0]))
    ends = colorize_disparity(torch.tensor([[[0.0, 1.0]]]))
    torch.testing.assert_close(ends[0, 0], torch.tensor([[0.0, 0.0, 4 / 255], [252 / 255, 1.0, 164 / 255]]))
    with pytest.raises(TrajCrafterError):
        colorize_depth(torch.zeros(1, 2, 2))
