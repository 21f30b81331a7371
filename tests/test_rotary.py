"""3D RoPE tables: crop boxes, channel layout and positions, against hand-derived formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.models.rotary import crop_box_in_canvas, rotary_embedding


@pytest.mark.parametrize(
    "pixels, box",
    [
        # 24x42 tokens fill the 45-wide canvas, 45/42*24 = 25.7 -> 26 rows, centred: rows 2..28
        ((384, 672), ((2, 0), (28, 45))),
        ((480, 720), ((0, 0), (30, 45))),  # the training size: the whole canvas
        # 30x40 tokens: full height, 40 columns centred in 45: round(2.5) = 2
        ((480, 640), ((0, 2), (30, 42))),
        ((768, 768), ((0, 8), (30, 38))),  # square: 30x30 centred, round(7.5) = 8
    ],
)
def test_crop_box_places_the_token_grid_in_the_480x720_canvas(pixels, box):
    height, width = pixels
    assert crop_box_in_canvas(height // 16, width // 16, 30, 45) == box


def _expected_tables(height, width, frames, head_dim, newer):
    """cos/sin from the RoPE definition: channel pairs (2k, 2k+1) of an axis block of width d
    rotate by position · 10000^(-2k/d); blocks are [time d/4 | rows 3d/8 | columns 3d/8]."""
    rows, cols = height // 16, width // 16
    (top, left), (bottom, right) = crop_box_in_canvas(rows, cols, 30, 45)

    def positions(start, stop, n):
        i = np.arange(n, dtype=np.float64)
        if newer:  # diffusers >= 0.32: linspace(start, stop·(n-1)/n, n)
            return start + i * ((stop * (n - 1) / n - start) / (n - 1) if n > 1 else 0.0)
        return start + i * (stop - start) / n  # diffusers <= 0.31: linspace(..., endpoint=False)

    t_pos = positions(0, frames, frames)
    r_pos = positions(top, bottom, rows)
    c_pos = positions(left, right, cols)
    d_t, d_s = head_dim // 4, head_dim // 8 * 3
    angles = np.zeros((frames, rows, cols, head_dim))
    for offset, width_block, pos, axis in ((0, d_t, t_pos, 0), (d_t, d_s, r_pos, 1), (d_t + d_s, d_s, c_pos, 2)):
        for channel in range(width_block):
            k = channel // 2
            freq = 10000.0 ** (-2.0 * k / width_block)
            shape = [1, 1, 1]
            shape[axis] = -1
            angles[..., offset + channel] = (pos * freq).reshape(shape)
    angles = angles.reshape(-1, head_dim)
    return np.cos(angles), np.sin(angles)


@pytest.mark.parametrize("newer", [False, True])
@pytest.mark.parametrize("size", [(384, 672), (480, 640), (64, 96)])
def test_tables_follow_the_rope_definition(size, newer):
    height, width = size
    frames, head_dim = 3, 64
    mode = "diffusers>=0.32" if newer else "diffusers<=0.31"
    cos, sin = rotary_embedding(height, width, frames, head_dim, grid_positions=mode)
    tokens = frames * (height // 16) * (width // 16)
    assert cos.shape == sin.shape == (tokens, head_dim)
    assert cos.dtype == sin.dtype == torch.float32
    exp_cos, exp_sin = _expected_tables(height, width, frames, head_dim, newer)
    np.testing.assert_allclose(cos.numpy(), exp_cos, atol=2e-5)
    np.testing.assert_allclose(sin.numpy(), exp_sin, atol=2e-5)


def test_token_order_is_frames_then_rows_then_columns():
    cos, _ = rotary_embedding(64, 96, 2, 16)  # 4x6 tokens per frame
    table = cos.reshape(2, 4, 6, 16)
    # time channels (0..3) change only with the frame, row channels (4..9) only with the row, ...
    assert torch.equal(table[:, :1, :1, :4].expand(2, 4, 6, 4), table[..., :4])
    assert torch.equal(table[:1, :, :1, 4:10].expand(2, 4, 6, 6), table[..., 4:10])
    assert torch.equal(table[:1, :1, :, 10:].expand(2, 4, 6, 6), table[..., 10:])
    assert not torch.equal(table[0, 0, 0], table[1, 0, 0])


def test_versions_differ_only_where_the_crop_box_does_not_start_at_zero():
    old = rotary_embedding(384, 672, 2, 64)
    new = rotary_embedding(384, 672, 2, 64, grid_positions="diffusers>=0.32")
    table_old, table_new = old[0].reshape(2, 24, 42, 64), new[0].reshape(2, 24, 42, 64)
    # rows (channels 16..39) start at 2 -> positions differ; columns start at 0 -> same up to rounding
    assert (table_old[..., 16:40] - table_new[..., 16:40]).abs().max() > 1e-2
    assert torch.allclose(table_old[..., 40:], table_new[..., 40:], atol=1e-5)
    # whole canvas: both conventions agree
    for a, b in zip(rotary_embedding(480, 720, 2, 64), rotary_embedding(480, 720, 2, 64, grid_positions="diffusers>=0.32")):
        assert torch.allclose(a, b, atol=1e-5)


def test_default_is_the_diffusers_031_behaviour():
    default = rotary_embedding(384, 672, 1, 64)
    explicit = rotary_embedding(384, 672, 1, 64, grid_positions="diffusers<=0.31")
    assert all(torch.equal(a, b) for a, b in zip(default, explicit))
    # the second token row sits at 2 + 26/24 in the <=0.31 convention; channel 16 is the first
    # row channel (frequency 1)
    row_channel = default[0].reshape(1, 24, 42, 64)[0, 1, 0, 16]
    assert float(row_channel) == pytest.approx(np.cos(2 + 26 / 24), abs=1e-6)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(height=380, width=672, num_latent_frames=13, head_dim=64), "height"),
        (dict(height=384, width=670, num_latent_frames=13, head_dim=64), "width"),
        (dict(height=384, width=672, num_latent_frames=0, head_dim=64), "num_latent_frames"),
        (dict(height=384, width=672, num_latent_frames=13, head_dim=40), "head_dim"),
        (dict(height=384, width=672, num_latent_frames=13, head_dim=64, grid_positions="0.30"), "grid_positions"),
    ],
)
def test_bad_arguments_are_named(kwargs, word):
    with pytest.raises(TrajCrafterError, match=word):
        rotary_embedding(**kwargs)
