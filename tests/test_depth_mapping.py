"""Official disparity -> depth mapping, clip normalisation and metric pass-through.

Expected numbers are computed by hand from the official formula (models/infer.py):
depth = clip(10000 / max(3900 * d, 1e-5), 1e-4, 1e4).
"""

import numpy as np
import pytest
import torch

from trajcrafter_core.depth import (
    OFFICIAL_FAR,
    OFFICIAL_NEAR,
    metric_depth_passthrough,
    normalize_disparity,
    official_depth_from_disparity,
)
from trajcrafter_core.errors import TrajCrafterError


def test_official_constants():
    assert OFFICIAL_NEAR == 1e-4 and OFFICIAL_FAR == 1e4


@pytest.mark.parametrize(
    "d, expected",
    [
        (1.0, 10000 / 3900),  # nearest point of the clip: 2.5641
        (0.5, 10000 / 1950),  # 5.1282
        (0.25, 10000 / 975),  # 10.256
        (0.1, 10000 / 390),  # 25.641
        (2.564102564e-4, 10000.0),  # exactly at far
        (1e-3, 10000 / 3.9),  # 2564.1, inside [near, far]
        (0.0, 1e4),  # farthest point: floored then clipped to far
    ],
)
def test_official_mapping_known_values(d, expected):
    out = official_depth_from_disparity(torch.tensor([[[d]]]))
    assert out.dtype == torch.float32 and out.shape == (1, 1, 1)
    assert float(out) == pytest.approx(expected, rel=1e-6)


def test_disparity_one_is_2_564():
    assert round(float(official_depth_from_disparity(torch.ones(1, 2, 2))[0, 0, 0]), 3) == 2.564


def test_official_mapping_matches_formula_elementwise_float32():
    d = torch.rand(3, 17, 19, generator=torch.Generator().manual_seed(0))
    d[0, 0, :5] = torch.tensor([0.0, 1e-12, 1e-9, 2e-9, 1.0])
    expected = np.clip(10000.0 / np.maximum(d.double().numpy() * 3900, 1e-5), 1e-4, 1e4)
    out = official_depth_from_disparity(d).numpy()
    np.testing.assert_allclose(out, expected, rtol=3e-7)  # float32 rounding only
    assert (out > 0).all()


def test_centre_value_cases_and_monotonic():
    # larger disparity = nearer = smaller depth; the centre pixel of a [0,1] ramp is 0.5
    ramp = torch.linspace(0, 1, 101).view(1, 1, 101)
    depth = official_depth_from_disparity(ramp)[0, 0]
    assert float(depth[50]) == pytest.approx(10000 / 1950, rel=1e-6)
    assert bool((depth[1:] <= depth[:-1]).all())
    assert float(depth[0]) == 1e4 and float(depth[-1]) == pytest.approx(2.5641, abs=1e-4)


def test_custom_near_far_and_bad_values():
    d = torch.tensor([[[1.0, 0.0]]])
    out = official_depth_from_disparity(d, near=3.0, far=100.0)
    assert out.tolist() == [[[3.0, 100.0]]]
    for near, far in [(0.0, 1.0), (5.0, 5.0), (2.0, 1.0), (-1.0, 1.0)]:
        with pytest.raises(TrajCrafterError, match="near"):
            official_depth_from_disparity(d, near=near, far=far)
    with pytest.raises(TrajCrafterError, match="NaN"):
        official_depth_from_disparity(torch.tensor([[[float("nan")]]]))


def test_normalize_over_whole_clip():
    d = torch.stack([torch.full((2, 2), 2.0), torch.full((2, 2), 4.0), torch.tensor([[3.0, 6.0], [2.0, 4.0]])])
    n = normalize_disparity(d)
    assert float(n.min()) == 0.0 and float(n.max()) == 1.0
    # one min/max for the clip, not per frame: frame 0 stays all-zero, frame 1 stays 0.5
    assert n[0].eq(0).all() and torch.allclose(n[1], torch.full((2, 2), 0.5))
    assert torch.allclose(n[2], torch.tensor([[0.25, 1.0], [0.0, 0.5]]))


def test_normalize_constant_clip_is_a_clear_error():
    with pytest.raises(TrajCrafterError, match="constant over the whole clip"):
        normalize_disparity(torch.full((4, 8, 8), 0.3))
    with pytest.raises(TrajCrafterError, match="zero frames"):
        normalize_disparity(torch.zeros(0, 8, 8))


def test_metric_passthrough():
    d = torch.rand(2, 4, 4) + 0.5
    assert torch.equal(metric_depth_passthrough(d), d)
    clipped = metric_depth_passthrough(d, near=0.8, far=1.2)
    assert torch.equal(clipped, d.clamp(0.8, 1.2)) and not torch.equal(clipped, d)
    bad = d.clone()
    bad[0, 0, 0] = 0
    with pytest.raises(TrajCrafterError, match="<= 0"):
        metric_depth_passthrough(bad)
