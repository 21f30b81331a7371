"""Load Depth Model / Estimate Depth / Depth From Image on tiny random-init models in the official
layouts (built here, nothing downloaded) and on the synthetic scene's exact depth."""

from __future__ import annotations

import pytest
import torch

from nodes_harness import node_class, node_module, run_node
from tiny_models import models_env  # noqa: F401 (fixture)

errors = pytest.importorskip("trajcrafter_core.errors")
TrajCrafterError, MissingFilesError = errors.TrajCrafterError, errors.MissingFilesError


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    from trajcrafter_core.depth.tiny import build_tiny_depth_models

    root = tmp_path_factory.mktemp("models")
    build_tiny_depth_models(root / "trajectorycrafter", seed=0)
    return root


@pytest.fixture(scope="module")
def frames():
    from trajcrafter_core.synthetic import example_clip

    clip = example_clip(num_frames=3, height=48, width=64, seed=2)
    return clip["frames"], clip["depths"]


def load(estimator, **kw):
    args = dict(estimator=estimator, depthcrafter_unet="DepthCrafter", svd="stable-video-diffusion-img2vid-xt",
                depth_anything="Depth-Anything-V2-Small-hf", precision="fp32", download_missing=False)
    args.update(kw)
    return run_node("TrajCrafterLoadDepthModel", **args)[0]


def estimate(frames, model, **kw):
    args = dict(frames=frames, depth_model=model, steps=1, window=110, overlap=25, depth_seed=42, max_res=64)
    args.update(kw)
    return run_node("TrajCrafterEstimateDepth", **args)


def test_folder_lists_show_official_names_first_and_found_folders(models_env):
    spec = node_class("TrajCrafterLoadDepthModel").INPUT_TYPES()["required"]
    assert spec["depthcrafter_unet"][0][0] == "DepthCrafter"
    assert spec["svd"][0][0] == "stable-video-diffusion-img2vid-xt"
    assert "Depth-Anything-V2-Small-hf" in spec["depth_anything"][0]


def test_depth_anything_node_equals_the_core_estimate(models_env, frames):
    from trajcrafter_core.depth import DepthAnythingEstimator, estimate as core_estimate

    model = load("depth_anything_v2")
    depth, preview = estimate(frames[0], model)
    assert depth.depth.shape == (3, 48, 64) and float(depth.depth.min()) > 0 and depth.source == "depth_anything_v2"
    assert preview.shape == (3, 48, 64, 3) and 0 <= float(preview.min()) and float(preview.max()) <= 1
    ref = core_estimate(frames[0], DepthAnythingEstimator.from_pretrained(models_env / "Depth-Anything-V2-Small-hf", device="cpu"))
    assert torch.allclose(depth.depth, ref, rtol=1e-5)


def test_depthcrafter_node_passes_its_options_and_reports_progress(models_env, frames):
    from trajcrafter_core.depth import DepthCrafterEstimator, estimate as core_estimate

    bridge = node_module("bridge")
    seen = []
    bridge.Progress.listeners.append(lambda done, total: seen.append((done, total)))
    try:
        model = load("depthcrafter")
        depth, _ = estimate(frames[0], model, steps=1, depth_seed=7)
    finally:
        bridge.Progress.listeners.clear()
    assert seen and seen[-1][0] == seen[-1][1] > 1
    core = DepthCrafterEstimator.from_pretrained(models_env / "DepthCrafter", models_env / "stable-video-diffusion-img2vid-xt", device="cpu")
    ref = core_estimate(frames[0], core, num_inference_steps=1, seed=7, max_res=64)
    assert torch.allclose(depth.depth, ref, rtol=1e-4)
    other, _ = estimate(frames[0], model, steps=1, depth_seed=8)
    assert not torch.allclose(other.depth, depth.depth)


def test_cancel_stops_estimation_and_the_model_still_works(models_env, frames):
    bridge = node_module("bridge")
    model = load("depth_anything_v2")
    bridge.request_interrupt()
    with pytest.raises(bridge.Interrupted):
        estimate(frames[0], model)
    depth, _ = estimate(frames[0], model)
    assert depth.depth.shape[0] == 3


def test_missing_folder_names_the_files_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(tmp_path))
    with pytest.raises(MissingFilesError) as err:
        load("depthcrafter")
    msg = str(err.value)
    assert str(tmp_path / "trajectorycrafter" / "DepthCrafter") in msg
    assert "diffusion_pytorch_model.safetensors" in msg and "download_missing" in msg


def test_download_offline_fails_fast_with_the_file_list(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    with pytest.raises(MissingFilesError, match="Could not download depth-anything/Depth-Anything-V2-Small-hf") as err:
        load("depth_anything_v2", download_missing=True)
    assert "model.safetensors" in str(err.value) and "Depth-Anything-V2-Small-hf" in str(err.value)


def test_depth_from_image_follows_the_polarity(frames):
    _, exact = frames
    disparity = 1.0 / exact
    grey = ((disparity - disparity.min()) / (disparity.max() - disparity.min())).unsqueeze(-1).expand(-1, -1, -1, 3)
    near_bright, preview = run_node("TrajCrafterDepthFromImage", depth_image=grey, polarity="near_bright")
    far_bright, _ = run_node("TrajCrafterDepthFromImage", depth_image=1 - grey, polarity="far_bright")
    assert torch.allclose(near_bright.depth, far_bright.depth, rtol=1e-4)
    # ordering of pixels by depth is the exact ordering
    d, e = near_bright.depth.flatten(), exact.flatten()
    i, j = int(e.argmin()), int(e.argmax())
    assert float(d[i]) < float(d[j])
    wrong, _ = run_node("TrajCrafterDepthFromImage", depth_image=grey, polarity="far_bright")
    assert float(wrong.depth.flatten()[i]) > float(wrong.depth.flatten()[j])
    assert preview.shape == (3, 48, 64, 3)


def test_depth_from_image_checks_frames_and_resizes(frames):
    video, exact = frames
    grey = (1.0 / exact).unsqueeze(-1).expand(-1, -1, -1, 3)
    grey = grey / grey.max()
    small = grey[:, ::2, ::2]
    depth, _ = run_node("TrajCrafterDepthFromImage", depth_image=small, polarity="near_bright", frames=video)
    assert depth.depth.shape == (3, 48, 64)
    with pytest.raises(TrajCrafterError, match="frame"):
        run_node("TrajCrafterDepthFromImage", depth_image=grey[:2], polarity="near_bright", frames=video)
