"""Depth Anything V2 estimator: official folder layout, preprocessing size rule, and the
scale/shift alignment measured on a synthetic clip with exact depth."""

import json

import pytest
import torch

from trajcrafter_core.depth.alignment import align_to_reference, fit_scale_shift, flicker
from trajcrafter_core.depth.depth_anything import DepthAnythingEstimator, dpt_input_size
from trajcrafter_core.depth.tiny import build_tiny_depth_anything
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.synthetic import SyntheticScene, example_clip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_depth_anything(tmp_path_factory.mktemp("da") / "Depth-Anything-V2-Small-hf")


@pytest.fixture(scope="module")
def estimator(model_dir):
    return DepthAnythingEstimator.from_pretrained(model_dir, dtype=torch.float32, device="cpu")


def test_folder_layout(model_dir):
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    pre = json.loads((model_dir / "preprocessor_config.json").read_text())
    assert pre["image_processor_type"] == "DPTImageProcessor" and pre["ensure_multiple_of"] == 14


def test_dpt_input_size_rule():
    # 1024x576 towards 518: height scale 0.899 is closer to 1 -> 518 x round(920.9/14)*14 = 924
    assert dpt_input_size(576, 1024, (518, 518)) == (518, 924)
    assert dpt_input_size(1024, 576, (518, 518)) == (924, 518)
    assert dpt_input_size(518, 518, (518, 518)) == (518, 518)
    assert dpt_input_size(100, 200, (518, 518), keep_aspect_ratio=False) == (518, 518)


def test_estimate_random_init_is_not_degenerate(estimator):
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 50, 70, 3, generator=g)
    raw = estimator.predict_raw(frames)
    assert raw.shape[0] == 3 and float(raw.std()) > 1e-3
    d = estimator.estimate(frames, batch_size=2)
    assert d.shape == (3, 50, 70) and float(d.min()) == 0.0 and float(d.max()) == 1.0


def test_fit_scale_shift_recovers_affine_exactly():
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(2, 9, 11, generator=g) + 0.1
    pred = (ref - torch.tensor([0.3, -0.2]).view(2, 1, 1)) / torch.tensor([2.0, 0.5]).view(2, 1, 1)
    s, b = fit_scale_shift(pred, ref)
    torch.testing.assert_close(s, torch.tensor([2.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([0.3, -0.2], dtype=torch.float64))
    torch.testing.assert_close(align_to_reference(pred, ref), ref)
    # a flat map cannot be fitted: falls back without NaN
    out = align_to_reference(torch.full((1, 9, 11), 2.0), ref[:1])
    assert torch.isfinite(out).all()


def _jittered(disparity, seed=0, noise=0.01):
    """What a per-frame affine-invariant estimator returns: each frame's exact disparity under
    its own random scale and shift, plus a little pixel noise."""
    g = torch.Generator().manual_seed(seed)
    t = disparity.shape[0]
    scale = 0.5 + 1.5 * torch.rand(t, 1, 1, generator=g)
    shift = (torch.rand(t, 1, 1, generator=g) - 0.5) * 0.6 * float(disparity.mean())
    return scale * disparity + shift + noise * float(disparity.std()) * torch.randn(disparity.shape, generator=g)


def _clip_error(estimate, truth):
    """Relative error after ONE scale/shift for the whole clip (what clip normalisation can undo)."""
    s, b = fit_scale_shift(estimate.reshape(1, -1, 1), truth.reshape(1, -1, 1))
    fitted = estimate.double() * s + b
    return float((fitted - truth.double()).abs().mean() / truth.double().abs().mean())


def _run_with_fake_network(estimator, frames, predictions, monkeypatch, **options):
    queue = list(predictions)

    def fake(batch):
        out = torch.stack(queue[: batch.shape[0]])
        del queue[: batch.shape[0]]
        return out

    monkeypatch.setattr(estimator, "predict_raw", fake)
    return estimator.estimate(frames, **options)


@pytest.mark.parametrize("moving_camera", [False, True])
def test_alignment_reduces_flicker_on_exact_synthetic_clip(estimator, monkeypatch, moving_camera):
    if moving_camera:
        scene = SyntheticScene(seed=3)
        t = 12
        w2c = torch.eye(4).repeat(t, 1, 1)
        w2c[:, 0, 3] = torch.linspace(0.0, -0.6, t)  # camera slides right
        from trajcrafter_core.camera import official_intrinsics

        frames, depth = scene.render(w2c, official_intrinsics(64, 48), 48, 64, torch.linspace(0, 1, t))
    else:
        clip = example_clip(num_frames=12, height=48, width=64)
        frames, depth = clip["frames"], clip["depths"]
    truth = 1.0 / depth
    preds = _jittered(truth)

    raw = _run_with_fake_network(estimator, frames, preds, monkeypatch, align=False, batch_size=5)
    aligned = _run_with_fake_network(estimator, frames, preds, monkeypatch, align=True, batch_size=5)
    first = _run_with_fake_network(estimator, frames, preds, monkeypatch, align=True, reference="first")

    truth_n = (truth - truth.min()) / (truth.max() - truth.min())
    err_raw, err_aligned, err_first = (_clip_error(x, truth) for x in (raw, aligned, first))
    fl_truth, fl_raw, fl_aligned = flicker(truth_n), flicker(raw), flicker(aligned)
    print(f"\n[flicker, moving_camera={moving_camera}] clip-affine rel. error: unaligned {err_raw:.4f}, "
          f"aligned(previous) {err_aligned:.4f}, aligned(first) {err_first:.4f}; frame-to-frame flicker: "
          f"truth {fl_truth:.4f}, unaligned {fl_raw:.4f}, aligned {fl_aligned:.4f}")
    assert err_aligned < err_raw / 4
    assert err_aligned < 0.03
    assert abs(fl_aligned - fl_truth) < abs(fl_raw - fl_truth) / 4


def test_constant_prediction_and_bad_options(estimator, monkeypatch):
    frames = torch.rand(2, 20, 20, 3)
    with pytest.raises(TrajCrafterError, match="constant over the whole clip"):
        _run_with_fake_network(estimator, frames, [torch.full((20, 20), 3.0)] * 2, monkeypatch)
    with pytest.raises(TrajCrafterError, match="reference"):
        estimator.estimate(frames, reference="median")
    with pytest.raises(TrajCrafterError, match="zero frames"):
        estimator.estimate(torch.zeros(0, 20, 20, 3))
