"""Finding depth weights: local folders first, the Hub with only the needed files, and clear
MissingFilesError messages (within seconds when offline)."""

import shutil
import time

import pytest
import torch

from trajcrafter_core.depth.depth_anything import DEPTH_ANYTHING_LAYOUT, DepthAnythingEstimator
from trajcrafter_core.depth.depthcrafter import UNET_LAYOUT, DepthCrafterEstimator, svd_layout
from trajcrafter_core.depth.tiny import build_tiny_depth_models
from trajcrafter_core.depth.weights import looks_like_hub_id, resolve_weights
from trajcrafter_core.errors import MissingFilesError, TrajCrafterError

from fake_hub import FakeHub


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


def test_hub_download_fetches_only_needed_files_and_loads(tiny, tmp_path, monkeypatch):
    hub = FakeHub(monkeypatch, {"tencent/DepthCrafter": tiny["unet"],
                                "stabilityai/stable-video-diffusion-img2vid-xt": tiny["svd"],
                                "depth-anything/Depth-Anything-V2-Small-hf": tiny["depth_anything"]})
    est = DepthCrafterEstimator.from_pretrained("tencent/DepthCrafter", "stabilityai/stable-video-diffusion-img2vid-xt",
                                                dtype=torch.float32, device="cpu", cache_dir=tmp_path / "cache")
    assert est.unet.config.in_channels == 8
    assert [f for r, f in hub.calls if r == "tencent/DepthCrafter"] == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert [f for r, f in hub.calls if r.startswith("stabilityai")] == [
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "image_encoder/config.json",
        "image_encoder/model.safetensors", "feature_extractor/preprocessor_config.json", "scheduler/scheduler_config.json"]
    downloaded = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert not any("model_index" in p or "unet/" in p or ".cache" in p or ".partial" in p for p in downloaded)
    assert (tmp_path / "cache" / "tencent--DepthCrafter" / "config.json").is_file()

    DepthAnythingEstimator.from_pretrained("depth-anything/Depth-Anything-V2-Small-hf", device="cpu", cache_dir=tmp_path)
    assert [f for r, f in hub.calls if r.startswith("depth-anything")] == [
        "config.json", "model.safetensors", "preprocessor_config.json"]


def test_local_folder_with_download_gets_only_its_missing_files(tiny, tmp_path, monkeypatch):
    folder = tmp_path / "Depth-Anything-V2-Small-hf"
    folder.mkdir()
    shutil.copy(tiny["depth_anything"] / "config.json", folder / "config.json")
    hub = FakeHub(monkeypatch, {"depth-anything/Depth-Anything-V2-Small-hf": tiny["depth_anything"]})
    DepthAnythingEstimator.from_pretrained(folder, device="cpu", download=True)
    assert [f for _, f in hub.calls] == ["model.safetensors", "preprocessor_config.json"]


def test_a_failed_download_leaves_no_folder_behind(tiny, tmp_path, monkeypatch):
    models = tmp_path / "models"
    FakeHub(monkeypatch, {"tencent/DepthCrafter": tiny["unet"]}, fail_after=1)
    with pytest.raises(MissingFilesError, match="Could not download tencent/DepthCrafter") as err:
        resolve_weights(models / "DepthCrafter", UNET_LAYOUT, download=True)
    assert "ConnectionError" in str(err.value) and "diffusion_pytorch_model.safetensors" in str(err.value)
    assert not models.exists()  # neither the folder, nor its parent made for the download, nor a staging folder


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


def _drop_a_tensor(file):
    from safetensors.torch import load_file, save_file

    state = load_file(str(file))
    dropped = sorted(state)[len(state) // 2]
    del state[dropped]
    save_file(state, str(file))
    return dropped


def test_weights_that_do_not_match_the_config_are_refused_not_randomly_initialised(tiny, tmp_path):
    """diffusers and transformers only warn about missing keys and initialise them at random."""
    da = tmp_path / "da"
    shutil.copytree(tiny["depth_anything"], da)
    _drop_a_tensor(da / "model.safetensors")
    with pytest.raises(TrajCrafterError, match="Depth Anything V2 in .*do not match its config.json.*missing keys"):
        DepthAnythingEstimator.from_pretrained(da, device="cpu")
    unet, svd = tmp_path / "unet", tmp_path / "svd"
    shutil.copytree(tiny["unet"], unet)
    shutil.copytree(tiny["svd"], svd)
    _drop_a_tensor(unet / "diffusion_pytorch_model.safetensors")
    with pytest.raises(TrajCrafterError, match="DepthCrafter UNet in .*missing keys"):
        DepthCrafterEstimator.from_pretrained(unet, svd, device="cpu")
    shutil.rmtree(unet)
    shutil.copytree(tiny["unet"], unet)
    encoder = next((svd / "image_encoder").glob("*.safetensors"))
    _drop_a_tensor(encoder)
    with pytest.raises(TrajCrafterError, match="image encoder in .*missing keys"):
        DepthCrafterEstimator.from_pretrained(unet, svd, device="cpu")
