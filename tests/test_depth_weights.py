"""Finding depth weights: local folders first, the Hub with only the needed files, and clear
MissingFilesError messages (within seconds when offline)."""

import fnmatch
import shutil
import time

import pytest
import torch

from trajcrafter_core.depth.depth_anything import DEPTH_ANYTHING_LAYOUT, DepthAnythingEstimator
from trajcrafter_core.depth.depthcrafter import UNET_LAYOUT, DepthCrafterEstimator, svd_layout
from trajcrafter_core.depth.tiny import build_tiny_depth_models
from trajcrafter_core.depth.weights import looks_like_hub_id, resolve_weights
from trajcrafter_core.errors import MissingFilesError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_depth_models(tmp_path_factory.mktemp("depth_models"))


def test_hub_id_detection(tmp_path):
    assert looks_like_hub_id("tencent/DepthCrafter")
    assert not looks_like_hub_id(str(tmp_path))
    assert not looks_like_hub_id("/abs/path") and not looks_like_hub_id("a/b/c")


def test_incomplete_local_folder_names_files_and_folders(tiny, tmp_path):
    svd = tmp_path / "svd"
    shutil.copytree(tiny["svd"], svd)
    (svd / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.rmtree(svd / "image_encoder")
    with pytest.raises(MissingFilesError) as err:
        DepthCrafterEstimator.from_pretrained(tiny["unet"], svd, dtype=torch.float32, device="cpu")
    msg = str(err.value)
    assert "vae/diffusion_pytorch_model.safetensors" in msg and "image_encoder/model.safetensors" in msg
    assert "image_encoder/config.json" in msg and "image_encoder/" in msg and "vae/" in msg
    assert "stabilityai/stable-video-diffusion-img2vid-xt" in msg
    assert "feature_extractor/preprocessor_config.json" in msg  # the full expected layout is listed


def test_missing_folder(tmp_path):
    with pytest.raises(MissingFilesError, match="does not exist") as err:
        DepthAnythingEstimator.from_pretrained(tmp_path / "nothing", device="cpu")
    assert "model.safetensors" in str(err.value) and "preprocessor_config.json" in str(err.value)


@pytest.mark.parametrize("how", ["local_files_only", "HF_HUB_OFFLINE"])
def test_offline_hub_fails_fast_with_file_list(tmp_path, monkeypatch, how):
    kwargs = {}
    if how == "local_files_only":
        kwargs["local_files_only"] = True
    else:
        import huggingface_hub.constants as constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(MissingFilesError) as err:
        DepthCrafterEstimator.from_pretrained("tencent/DepthCrafter", "stabilityai/stable-video-diffusion-img2vid-xt",
                                              device="cpu", cache_dir=tmp_path, **kwargs)
    assert time.monotonic() - start < 5.0
    msg = str(err.value)
    assert "tencent/DepthCrafter" in msg and "config.json" in msg and "diffusion_pytorch_model.safetensors" in msg
    assert str(tmp_path) in msg


def _fake_hub(sources, calls):
    """snapshot_download stand-in: copies only the files matching allow_patterns."""

    def fake(repo_id, allow_patterns, cache_dir, local_files_only, etag_timeout):
        calls.append((repo_id, list(allow_patterns), cache_dir))
        dst = tmp_root = sources["_cache"] / repo_id.replace("/", "--")
        for path in sources[repo_id].rglob("*"):
            rel = path.relative_to(sources[repo_id]).as_posix()
            if path.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dst / rel)
        return str(tmp_root)

    return fake


def test_hub_download_fetches_only_needed_files_and_loads(tiny, tmp_path, monkeypatch):
    import huggingface_hub

    sources = {"tencent/DepthCrafter": tiny["unet"], "stabilityai/stable-video-diffusion-img2vid-xt": tiny["svd"],
               "depth-anything/Depth-Anything-V2-Small-hf": tiny["depth_anything"], "_cache": tmp_path}
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _fake_hub(sources, calls))
    est = DepthCrafterEstimator.from_pretrained("tencent/DepthCrafter", "stabilityai/stable-video-diffusion-img2vid-xt",
                                                dtype=torch.float32, device="cpu", cache_dir=tmp_path / "cache")
    assert est.unet.config.in_channels == 8
    assert calls[0] == ("tencent/DepthCrafter", ["config.json", "diffusion_pytorch_model.safetensors"], str(tmp_path / "cache"))
    assert calls[1][1] == ["vae/config.json", "vae/diffusion_pytorch_model.safetensors", "image_encoder/config.json",
                           "image_encoder/model.safetensors", "feature_extractor/preprocessor_config.json",
                           "scheduler/scheduler_config.json"]
    downloaded = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert not any("model_index" in p or "unet/" in p for p in downloaded)

    DepthAnythingEstimator.from_pretrained("depth-anything/Depth-Anything-V2-Small-hf", device="cpu", cache_dir=tmp_path)
    assert calls[2][1] == ["config.json", "model.safetensors", "preprocessor_config.json"]


def test_half_precision_asks_for_fp16_variants():
    names = [n.preferred for n in svd_layout(prefer_fp16=True).needed]
    assert "vae/diffusion_pytorch_model.fp16.safetensors" in names and "image_encoder/model.fp16.safetensors" in names


def test_local_fp16_variant_is_accepted(tiny, tmp_path):
    svd = tmp_path / "svd16"
    shutil.copytree(tiny["svd"], svd)
    for sub, stem in [("vae", "diffusion_pytorch_model"), ("image_encoder", "model")]:
        (svd / sub / f"{stem}.safetensors").rename(svd / sub / f"{stem}.fp16.safetensors")
    assert resolve_weights(svd, svd_layout(prefer_fp16=False)) == svd
    est = DepthCrafterEstimator.from_pretrained(tiny["unet"], svd, dtype=torch.float32, device="cpu")
    assert est.vae.dtype == torch.float32


def test_layouts_name_the_official_repositories():
    assert UNET_LAYOUT.hub_id == "tencent/DepthCrafter"
    assert DEPTH_ANYTHING_LAYOUT.hub_id == "depth-anything/Depth-Anything-V2-Small-hf"
