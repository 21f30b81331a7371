"""DepthCrafter's UNet: official folder layout loads, and each frame is conditioned on its own
embedding (SVD repeats one embedding for all frames)."""

import json

import pytest
import torch
from diffusers import UNetSpatioTemporalConditionModel

from trajcrafter_core.depth.tiny import build_tiny_depthcrafter_unet
from trajcrafter_core.depth.unet import DepthCrafterUNet


@pytest.fixture(scope="module")
def unet_dir(tmp_path_factory):
    return build_tiny_depthcrafter_unet(tmp_path_factory.mktemp("dc_unet"))


def _inputs(frames=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(1, frames, 8, 8, 8, generator=g)
    emb = torch.randn(1, frames, 32, generator=g)
    ids = torch.tensor([[7.0, 127.0, 0.02]])
    return sample, emb, ids


def test_folder_is_the_official_layout(unet_dir):
    names = sorted(p.name for p in unet_dir.iterdir())
    assert names == ["config.json", "diffusion_pytorch_model.safetensors"]
    cfg = json.loads((unet_dir / "config.json").read_text())
    assert cfg["_class_name"] == "DiffusersUNetSpatioTemporalConditionModelDepthCrafter"
    assert cfg["in_channels"] == 8 and cfg["out_channels"] == 4


def test_same_embedding_everywhere_equals_svd_unet(unet_dir):
    ours = DepthCrafterUNet.from_pretrained(unet_dir).eval()
    svd = UNetSpatioTemporalConditionModel.from_pretrained(unet_dir).eval()
    sample, emb, ids = _inputs()
    one = emb[:, :1]
    with torch.no_grad():
        a = ours(sample, torch.tensor(0.7), one.expand(1, 3, 32), ids).sample
        b = svd(sample, torch.tensor(0.7), one, ids).sample
    assert a.shape == sample[:, :, :4].shape
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_each_frame_sees_its_own_embedding(unet_dir):
    unet = DepthCrafterUNet.from_pretrained(unet_dir).eval()
    sample, emb, ids = _inputs(frames=4)
    seen, seen_temporal = [], []

    def hook(store):
        return lambda mod, args, kwargs: store.append(kwargs["encoder_hidden_states"])

    hooks = [
        m.register_forward_pre_hook(hook(seen_temporal if "temporal" in name else seen), with_kwargs=True)
        for name, m in unet.named_modules() if name.endswith("attn2")
    ]
    with torch.no_grad():
        out = unet(sample, 10, emb, ids).sample
    for h in hooks:
        h.remove()
    assert seen, "no cross-attention was called"
    for ctx in seen:  # [B*T, 1, C] with row t = embedding of frame t
        assert ctx.shape == (4, 1, 32)
        torch.testing.assert_close(ctx[:, 0], emb[0])
    # SVD's temporal blocks attend to the first frame's embedding at every pixel (unchanged)
    assert seen_temporal
    for ctx in seen_temporal:
        torch.testing.assert_close(ctx[:, 0], emb[0, :1].expand(ctx.shape[0], 32))
    # and the embeddings matter: changing frame 2's embedding changes the output
    emb2 = emb.clone()
    emb2[0, 2] += 1.0
    with torch.no_grad():
        out2 = unet(sample, 10, emb2, ids).sample
    assert (out2 - out).abs().max() > 1e-4


def test_float16_weights_take_float32_latents(unet_dir):
    unet = DepthCrafterUNet.from_pretrained(unet_dir, torch_dtype=torch.bfloat16).eval()
    sample, emb, ids = _inputs(frames=2)
    with torch.no_grad():
        out = unet(sample, torch.tensor(1.5), emb.bfloat16(), ids).sample
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_wrong_embedding_shape_is_explained(unet_dir):
    unet = DepthCrafterUNet.from_pretrained(unet_dir).eval()
    sample, emb, ids = _inputs(frames=3)
    with pytest.raises(ValueError, match="one embedding per frame"):
        unet(sample, 1, emb[:, :1], ids)
