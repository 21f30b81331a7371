"""DepthCrafter estimator end to end on tiny random-init weights in the official layouts."""

import pytest
import torch

from trajcrafter_core import depth
from trajcrafter_core.depth import depthcrafter as dc_module
from trajcrafter_core.depth.depthcrafter import DepthCrafterEstimator
from trajcrafter_core.depth.interface import EstimationCancelled
from trajcrafter_core.depth.resize import multiple_of_64_size
from trajcrafter_core.depth.tiny import build_tiny_depthcrafter_unet, build_tiny_svd
from trajcrafter_core.depth.windows import Window
from trajcrafter_core.errors import TrajCrafterError

FAST = dict(num_inference_steps=2)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("depthcrafter")
    return build_tiny_depthcrafter_unet(root / "DepthCrafter"), build_tiny_svd(root / "svd")


@pytest.fixture(scope="module")
def estimator(folders):
    return DepthCrafterEstimator.from_pretrained(*folders, dtype=torch.float32, device="cpu")


def _clip(t, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, h, w, 3, generator=g)
    drift = torch.linspace(0, 0.2, t).view(t, 1, 1, 1)
    return (base + drift).clamp(0, 1)


def test_svd_folder_layout(folders):
    _, svd = folders
    for rel in ["vae/config.json", "vae/diffusion_pytorch_model.safetensors", "image_encoder/config.json",
                "image_encoder/model.safetensors", "feature_extractor/preprocessor_config.json",
                "scheduler/scheduler_config.json", "model_index.json"]:
        assert (svd / rel).is_file(), rel


def test_processing_size_rule():
    assert multiple_of_64_size(576, 1024) == (576, 1024)
    assert multiple_of_64_size(480, 854) == (512, 832)
    assert multiple_of_64_size(1080, 1920) == (576, 1024)  # longer side capped at max_res
    assert multiple_of_64_size(20, 30) == (64, 64)


def test_estimate_long_clip_windows_conditioning_and_range(estimator, monkeypatch):
    """7 frames, window 4, overlap 2: three windows; each UNet call sees the embeddings of
    exactly its window's frames; output is [T,H,W] in [0,1] with both ends reached."""
    frames = _clip(7)
    calls = []
    original = estimator.unet.forward

    def spy(sample, timestep, encoder_hidden_states, added_time_ids, return_dict=True):
        calls.append(encoder_hidden_states.clone())
        return original(sample, timestep, encoder_hidden_states, added_time_ids, return_dict=return_dict)

    monkeypatch.setattr(estimator.unet, "forward", spy)
    windows = []
    real_run = dc_module.run_windows

    def run_spy(num_frames, window_size, overlap, noise, denoise, finished_device=None):
        def wrapped(window, n, prev):
            windows.append(window)
            return denoise(window, n, prev)
        return real_run(num_frames, window_size, overlap, noise, wrapped, finished_device)

    monkeypatch.setattr(dc_module, "run_windows", run_spy)
    disp = estimator.estimate(frames, window_size=4, overlap=2, **FAST)
    assert disp.shape == (7, 64, 64) and disp.dtype == torch.float32
    assert float(disp.min()) == 0.0 and float(disp.max()) == 1.0
    assert windows == [Window(0, 4, 0), Window(2, 6, 2), Window(4, 7, 2)]
    assert len(calls) == 3 * 2
    with torch.inference_mode():
        expected = estimator._embed(estimator._pixels(frames, (64, 64)))
    for k, w in enumerate(windows):
        for step in range(2):
            torch.testing.assert_close(calls[2 * k + step][0], expected[w.start:w.end])


def test_seed_and_injected_latents_reproduce(estimator):
    frames = _clip(3)
    a = estimator.estimate(frames, seed=1, **FAST)
    b = estimator.estimate(frames, seed=1, **FAST)
    c = estimator.estimate(frames, seed=2, **FAST)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the initial noise of seed 1 is the draw after the noise augmentation of all frames
    g = torch.Generator().manual_seed(1)
    torch.randn(3, 3, 64, 64, generator=g)
    noise = torch.randn(3, 4, 8, 8, generator=g)
    d = estimator.estimate(frames, seed=1, latents=noise, **FAST)
    torch.testing.assert_close(d, a, rtol=0, atol=0)
    e = estimator.estimate(frames, seed=1, latents=noise.unsqueeze(0) * 0.5, **FAST)
    assert not torch.equal(e, a)
    with pytest.raises(TrajCrafterError, match="latents must have shape"):
        estimator.estimate(frames, latents=torch.zeros(2, 4, 8, 8), **FAST)


def test_odd_size_is_processed_at_64_multiples_and_resized_back(estimator):
    frames = _clip(2, h=70, w=100)
    d = estimator.estimate(frames, **FAST)
    assert d.shape == (2, 70, 100)
    assert float(d.min()) == 0.0 and float(d.max()) == 1.0


def test_one_interface_progress_and_cancel(estimator):
    frames = _clip(3)
    seen = []
    dep = depth.estimate(frames, estimator, progress=lambda done, total: seen.append((done, total)), **FAST)
    assert dep.shape == (3, 64, 64) and float(dep.min()) == pytest.approx(10000 / 3900)
    assert float(dep.max()) == 1e4 and bool((dep > 0).all())
    total = seen[-1][1]
    assert total == 2 * 1 + 1 * 2  # encode chunk + 2 steps + decode chunk
    assert [s[0] for s in seen] == list(range(1, total + 1))

    count = []

    def cancel():
        count.append(1)
        return len(count) > 2

    with pytest.raises(EstimationCancelled):
        estimator.estimate(frames, cancel=cancel, **FAST)


def test_bad_inputs(estimator):
    with pytest.raises(TrajCrafterError, match="zero frames"):
        estimator.estimate(torch.zeros(0, 64, 64, 3))
    with pytest.raises(TrajCrafterError, match=r"frames\[1\] is 32x64"):
        estimator.estimate([torch.zeros(64, 64, 3), torch.zeros(32, 64, 3)])
    with pytest.raises(TrajCrafterError, match="overlap"):
        estimator.estimate(_clip(5), window_size=3, overlap=3)
    with pytest.raises(TrajCrafterError, match="num_inference_steps"):
        estimator.estimate(_clip(1), num_inference_steps=0)


def test_mismatched_folders_are_refused(folders, tmp_path):
    import json

    unet_dir, svd_dir = folders
    other = tmp_path / "svd_other"
    build_tiny_svd(other)
    cfg = json.loads((other / "image_encoder" / "config.json").read_text())
    cfg["projection_dim"] = 16
    (other / "image_encoder" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TrajCrafterError):
        DepthCrafterEstimator.from_pretrained(unet_dir, other, dtype=torch.float32, device="cpu")


def test_clip_resize_matches_diffusers_svd_resize():
    svd = pytest.importorskip("diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion")
    if not hasattr(svd, "_resize_with_antialiasing"):
        pytest.skip("diffusers no longer exposes SVD's resize")
    from trajcrafter_core.depth.resize import gaussian_antialiased_resize

    x = torch.rand(2, 3, 150, 260, generator=torch.Generator().manual_seed(3)) * 2 - 1
    torch.testing.assert_close(gaussian_antialiased_resize(x, (224, 224)), svd._resize_with_antialiasing(x, (224, 224)),
                               rtol=0, atol=1e-6)
