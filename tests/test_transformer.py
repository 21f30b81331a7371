"""Ref-DiT transformer: official config/key layout, maths of the reference cross-attention,
no [N_video x N_ref] buffer, every input matters, loading checks, memory options.

All on tiny random-init models (CPU, seconds). Expectations are independent of the official
code: an explicit softmax attention written here, diffusers' own CogVideoX transformer, and the
key/shape list derived from the official architecture description.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.utils._python_dispatch import TorchDispatchMode

from bench.profiling import cpu_peak_bytes
from trajcrafter_core.errors import MissingFilesError, TrajCrafterError
from trajcrafter_core.models import (
    CrossTransformer3DModel,
    PerceiverCrossAttention,
    build_tiny_transformer,
    rotary_embedding,
    save_tiny_transformer,
    tiny_transformer_config,
)
from trajcrafter_core.models.reference_attention import naive_reference_attention

# --------------------------------------------------------------------------- official layout

#: config.json of the official TrajectoryCrafter ``crosstransformer`` (CogVideoX-Fun-V1.1-5b-InP
#: plus the reference cross-attention keys), as the official class defines and saves it.
OFFICIAL_CONFIG = {
    "_class_name": "CrossTransformer3DModel",
    "_diffusers_version": "0.31.0",
    "activation_fn": "gelu-approximate",
    "add_noise_in_inpaint_model": True,
    "attention_bias": True,
    "attention_head_dim": 64,
    "cross_attn_dim_head": 128,
    "cross_attn_in_channels": 16,
    "cross_attn_interval": 2,
    "cross_attn_num_heads": 16,
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 33,
    "is_train_cross": True,
    "max_text_seq_length": 226,
    "norm_elementwise_affine": True,
    "norm_eps": 1e-05,
    "num_attention_heads": 48,
    "num_layers": 42,
    "out_channels": 16,
    "patch_size": 2,
    "sample_frames": 49,
    "sample_height": 60,
    "sample_width": 90,
    "spatial_interpolation_scale": 1.875,
    "temporal_compression_ratio": 4,
    "temporal_interpolation_scale": 1.0,
    "text_embed_dim": 4096,
    "time_embed_dim": 512,
    "timestep_activation_fn": "silu",
    "use_rotary_positional_embeddings": True,
}

#: Official state-dict key patterns ({i}: block 0..41, {j}: cross-attention layer 0..20).
BLOCK_KEYS = [
    "norm1.linear", "norm1.norm", "attn1.norm_q", "attn1.norm_k", "attn1.to_q", "attn1.to_k",
    "attn1.to_v", "attn1.to_out.0", "norm2.linear", "norm2.norm", "ff.net.0.proj", "ff.net.2",
]
TOP_KEYS = [
    "patch_embed.proj", "patch_embed.text_proj", "time_embedding.linear_1", "time_embedding.linear_2",
    "norm_final", "norm_out.linear", "norm_out.norm", "proj_out", "ref_patch_embed.proj",
]
PERCEIVER_KEYS = ["norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "to_q.weight", "to_kv.weight", "to_out.weight"]


def official_key_set(num_layers: int, num_cross: int) -> set:
    keys = {f"{name}.{p}" for name in TOP_KEYS for p in ("weight", "bias")}
    keys |= {f"transformer_blocks.{i}.{name}.{p}" for i in range(num_layers) for name in BLOCK_KEYS for p in ("weight", "bias")}
    keys |= {f"perceiver_cross_attention.{j}.{name}" for j in range(num_cross) for name in PERCEIVER_KEYS}
    return keys


def test_official_5b_config_gives_the_official_state_dict_keys_and_shapes():
    with torch.device("meta"):
        model = CrossTransformer3DModel.from_config(OFFICIAL_CONFIG)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert set(shapes) == official_key_set(42, 21)
    assert shapes["patch_embed.proj.weight"] == (3072, 33, 2, 2)
    assert shapes["patch_embed.text_proj.weight"] == (3072, 4096)
    assert shapes["ref_patch_embed.proj.weight"] == (3072, 16, 2, 2)
    assert shapes["time_embedding.linear_1.weight"] == (512, 3072)
    assert shapes["transformer_blocks.41.norm1.linear.weight"] == (6 * 3072, 512)
    assert shapes["transformer_blocks.0.attn1.norm_q.weight"] == (64,)
    assert shapes["transformer_blocks.0.ff.net.0.proj.weight"] == (4 * 3072, 3072)
    assert shapes["perceiver_cross_attention.20.to_q.weight"] == (2048, 3072)
    assert shapes["perceiver_cross_attention.20.to_kv.weight"] == (4096, 3072)
    assert shapes["perceiver_cross_attention.20.to_out.weight"] == (3072, 2048)
    assert shapes["norm_out.linear.weight"] == (6144, 512)
    assert shapes["proj_out.weight"] == (64, 3072)
    # 5.57 B backbone + 21 x 25.2 M reference cross-attention + 0.1 M reference patch embedding
    assert 6.05e9 < sum(v.numel() for v in model.state_dict().values()) < 6.15e9


def test_tiny_config_has_every_official_key_and_the_same_key_layout(tmp_path):
    assert set(OFFICIAL_CONFIG) - {"_class_name", "_diffusers_version"} <= set(tiny_transformer_config())
    folder = save_tiny_transformer(tmp_path / "t")
    written = json.loads((folder / "config.json").read_text())
    assert written["_class_name"] == "CrossTransformer3DModel"
    assert set(OFFICIAL_CONFIG) <= set(written)
    keys = set(load_file(folder / "diffusion_pytorch_model.safetensors"))
    assert keys == official_key_set(4, 2)


def test_official_style_config_json_loads(tmp_path):
    """A config.json with the official key set and values (scaled down) loads unchanged."""
    config = dict(OFFICIAL_CONFIG, **{k: tiny_transformer_config()[k] for k in (
        "num_attention_heads", "attention_head_dim", "text_embed_dim", "time_embed_dim", "num_layers",
        "cross_attn_dim_head", "cross_attn_num_heads")})
    model = build_tiny_transformer(**{k: v for k, v in config.items() if not k.startswith("_")})
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = CrossTransformer3DModel.from_pretrained(tmp_path)
    assert loaded.config.cross_attn_interval == 2 and loaded.config.add_noise_in_inpaint_model is True
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


# --------------------------------------------------------------------------- inputs

def make_inputs(batch=2, frames=3, height=4, width=6, ref_frames=None, text_length=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    ref_frames = frames if ref_frames is None else ref_frames
    return dict(
        hidden_states=torch.randn(batch, frames, 16, height, width, generator=g),
        encoder_hidden_states=torch.randn(batch, text_length, 32, generator=g),
        timestep=torch.tensor([501, 17][:batch]),
        inpaint_latents=torch.randn(batch, frames, 17, height, width, generator=g),
        cross_latents=torch.randn(batch, ref_frames, 16, height, width, generator=g),
        image_rotary_emb=rotary_embedding(height * 8, width * 8, frames, 16),
    )


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_transformer(seed=0)


def run(model, **inputs):
    with torch.no_grad():
        return model(**inputs, return_dict=False)[0]


def test_output_shape_and_return_types(tiny):
    inputs = make_inputs()
    out = run(tiny, **inputs)
    assert out.shape == (2, 3, 16, 4, 6) and torch.isfinite(out).all()
    with torch.no_grad():
        assert torch.equal(tiny(**inputs).sample, out)


@pytest.mark.parametrize(
    "name", ["hidden_states", "inpaint_latents", "cross_latents", "encoder_hidden_states", "timestep", "image_rotary_emb"]
)
def test_every_input_changes_the_output(tiny, name):
    inputs = make_inputs()
    base = run(tiny, **inputs)
    changed = dict(inputs)
    if name == "timestep":
        changed[name] = inputs[name] + 100
    elif name == "image_rotary_emb":
        # same token count, positions of a transposed (3x2 instead of 2x3) token grid
        changed[name] = rotary_embedding(48, 32, 3, 16)
    else:
        g = torch.Generator().manual_seed(9)
        changed[name] = inputs[name] + 0.5 * torch.randn(inputs[name].shape, generator=g)
    difference = (run(tiny, **changed) - base).abs().max()
    assert difference > 1e-3, f"{name} does not influence the output"


def test_each_sample_is_independent_of_the_rest_of_the_batch(tiny):
    inputs = make_inputs()
    both = run(tiny, **inputs)
    first = {k: (v[:1] if k != "image_rotary_emb" else v) for k, v in inputs.items()}
    assert torch.allclose(run(tiny, **first), both[:1], atol=1e-5)


def test_scalar_timestep_is_broadcast(tiny):
    inputs = make_inputs()
    inputs["timestep"] = torch.tensor([250, 250])
    expected = run(tiny, **inputs)
    inputs["timestep"] = 250
    assert torch.allclose(run(tiny, **inputs), expected)


def test_reference_enters_only_through_the_cross_attention(tiny):
    model = build_tiny_transformer(seed=0)
    with torch.no_grad():
        for layer in model.perceiver_cross_attention:
            layer.to_out.weight.zero_()
    inputs = make_inputs()
    other = dict(inputs, cross_latents=torch.randn_like(inputs["cross_latents"]))
    assert torch.equal(run(model, **inputs), run(model, **other))


def test_no_cross_latents_skips_the_reference_stream():
    """cross_latents=None: the output equals the model built with is_train_cross=False from the
    same remaining weights, and no reference layer runs."""
    model = build_tiny_transformer(seed=5)
    config = {k: v for k, v in model.config.items() if not k.startswith("_")}
    config["is_train_cross"] = False
    without = CrossTransformer3DModel.from_config(config).eval()
    missing, unexpected = without.load_state_dict(model.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith(("perceiver_cross_attention.", "ref_patch_embed."))
                                              for k in unexpected)
    inputs = make_inputs()
    with_reference = run(model, **inputs)
    inputs["cross_latents"] = None
    called = []
    for module in [model.ref_patch_embed, *model.perceiver_cross_attention]:
        module.register_forward_hook(lambda *args: called.append(args[0]))
    skipped = run(model, **inputs)
    assert not called
    assert not torch.allclose(skipped, with_reference, atol=1e-4)  # the reference did matter
    inputs.pop("cross_latents")
    assert torch.equal(skipped, run(without, **inputs))


def test_without_reference_it_is_diffusers_cogvideox():
    """is_train_cross=False: the same weights in diffusers' own CogVideoXTransformer3DModel
    (inpaint channels concatenated by hand) give the same prediction."""
    from diffusers import CogVideoXTransformer3DModel

    ours = build_tiny_transformer(seed=3, is_train_cross=False)
    cfg = {k: v for k, v in ours.config.items() if not k.startswith("_")}
    for key in ("add_noise_in_inpaint_model", "is_train_cross", "cross_attn_in_channels", "cross_attn_interval",
                "cross_attn_dim_head", "cross_attn_num_heads"):
        cfg.pop(key)
    reference = CogVideoXTransformer3DModel(**cfg).eval()
    missing, unexpected = reference.load_state_dict(ours.state_dict(), strict=True)
    inputs = make_inputs()
    inputs.pop("cross_latents")
    expected = run(
        reference,
        hidden_states=torch.cat([inputs["hidden_states"], inputs["inpaint_latents"]], 2),
        encoder_hidden_states=inputs["encoder_hidden_states"],
        timestep=inputs["timestep"],
        image_rotary_emb=inputs["image_rotary_emb"],
    )
    assert torch.allclose(run(ours, **inputs), expected, atol=1e-5)


def test_cross_attention_follows_blocks_0_k_2k(tiny):
    order = []
    hooks = [b.register_forward_hook(lambda m, i, o, n=f"block{k}": order.append(n)) for k, b in enumerate(tiny.transformer_blocks)]
    hooks += [c.register_forward_hook(lambda m, i, o, n=f"cross{k}": order.append(n)) for k, c in enumerate(tiny.perceiver_cross_attention)]
    try:
        run(tiny, **make_inputs())
    finally:
        for h in hooks:
            h.remove()
    assert order == ["block0", "cross0", "block1", "block2", "cross1", "block3"]


def test_sincos_position_config_runs_and_limits_frames():
    model = build_tiny_transformer(seed=1, use_rotary_positional_embeddings=False)
    inputs = make_inputs(height=8, width=12)
    inputs.pop("image_rotary_emb")
    out = run(model, **inputs)
    assert out.shape == (2, 3, 16, 8, 12) and torch.isfinite(out).all()
    # positions make tokens distinguishable: shifting the video by one column changes the result
    shifted = dict(inputs, **{k: inputs[k].roll(1, dims=-1) for k in ("hidden_states", "inpaint_latents")})
    assert not torch.allclose(run(model, **shifted).roll(-1, dims=-1), out, atol=1e-4)
    too_long = make_inputs(frames=14, height=4, width=4)
    too_long.pop("image_rotary_emb")
    with pytest.raises(TrajCrafterError, match="at most 13"):
        run(model, **too_long)


# --------------------------------------------------------------------------- cross-attention maths

@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_cross_attention_equals_explicit_softmax_attention(dtype, atol):
    torch.manual_seed(0)
    layer = PerceiverCrossAttention(dim=32, dim_head=8, heads=4).to(dtype)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 0.3)
        reference, video = torch.randn(2, 21, 32, dtype=dtype) * 2, torch.randn(2, 35, 32, dtype=dtype) * 2
        ours, expected = layer(reference, video), naive_reference_attention(layer, reference, video)
    assert ours.shape == (2, 35, 32)
    assert (ours - expected).abs().max() < atol


class ShapeRecorder(TorchDispatchMode):
    """Records the shape of every tensor any aten op returns (all ops below autograd)."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append((str(func), tuple(t.shape)))
        return out


def attention_sized(shapes, n_video, n_ref):
    return [(op, s) for op, s in shapes if len(s) >= 2 and {s[-1], s[-2]} == {n_video, n_ref}]


def test_no_video_by_reference_tensor_is_ever_created():
    """No op in the whole forward (blocks + cross-attention) returns an [..., N_video, N_ref]
    tensor; the same recorder does catch the explicit implementation."""
    model = build_tiny_transformer(seed=0)
    inputs = make_inputs(frames=3, ref_frames=2)  # N_video = 3·2·3 = 18, N_ref = 2·2·3 = 12
    n_video, n_ref = 18, 12
    for grad in (False, True):
        with torch.set_grad_enabled(grad), ShapeRecorder() as recorder:
            out = model(**inputs).sample
            if grad:
                out.square().mean().backward()
        assert recorder.shapes, "recorder saw nothing"
        assert not attention_sized(recorder.shapes, n_video, n_ref), attention_sized(recorder.shapes, n_video, n_ref)[:3]
    layer = model.perceiver_cross_attention[0]
    reference = model.ref_patch_embed(inputs["cross_latents"])
    with torch.no_grad(), ShapeRecorder() as recorder:
        naive_reference_attention(layer, reference, torch.randn(2, n_video, 32))
    assert attention_sized(recorder.shapes, n_video, n_ref)


def test_cross_attention_peak_memory_is_far_below_the_attention_matrix():
    torch.manual_seed(0)
    layer = PerceiverCrossAttention(dim=16, dim_head=8, heads=2).eval()
    reference, video = torch.randn(1, 1200, 16), torch.randn(1, 1500, 16)
    matrix_bytes = 2 * 1500 * 1200 * 4  # heads x N_video x N_ref float32
    with torch.no_grad():
        ours = cpu_peak_bytes(lambda: layer(reference, video))
        naive = cpu_peak_bytes(lambda: naive_reference_attention(layer, reference, video))
    assert naive >= matrix_bytes  # the measurement sees a materialised matrix
    assert ours < matrix_bytes / 4, (ours, matrix_bytes)


# --------------------------------------------------------------------------- loading

def test_single_file_and_sharded_folders_load_to_the_same_model(tmp_path):
    single = save_tiny_transformer(tmp_path / "single", seed=5)
    sharded = save_tiny_transformer(tmp_path / "sharded", seed=5, sharded=True)
    assert (sharded / "diffusion_pytorch_model.safetensors.index.json").is_file()
    assert len(list(sharded.glob("diffusion_pytorch_model-*-of-*.safetensors"))) > 1
    a = CrossTransformer3DModel.from_pretrained(single).eval()
    b = CrossTransformer3DModel.from_pretrained(sharded).eval()
    expected = build_tiny_transformer(seed=5)
    inputs = make_inputs()
    assert torch.equal(run(a, **inputs), run(expected, **inputs))
    assert torch.equal(run(b, **inputs), run(expected, **inputs))


def test_load_with_torch_dtype(tmp_path):
    folder = save_tiny_transformer(tmp_path / "t")
    model = CrossTransformer3DModel.from_pretrained(folder, torch_dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path):
    folder = save_tiny_transformer(tmp_path / "t")
    path = folder / "diffusion_pytorch_model.safetensors"
    weights = load_file(path)
    weights["perceiver_cross_attention.1.to_kv.weight"] = torch.zeros(30, 32)
    save_file(weights, path)
    with pytest.raises(TrajCrafterError, match=re.escape("'perceiver_cross_attention.1.to_kv.weight' has shape [30, 32]")) as info:
        CrossTransformer3DModel.from_pretrained(folder)
    assert "[32, 32]" in str(info.value)


@pytest.mark.parametrize("key", ["use_rotary_positional_embeddings", "num_layers", "cross_attn_interval"])
def test_missing_config_key_is_named(tmp_path, key):
    folder = save_tiny_transformer(tmp_path / "t")
    config = json.loads((folder / "config.json").read_text())
    del config[key]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TrajCrafterError, match=key):
        CrossTransformer3DModel.from_pretrained(folder)


@pytest.mark.parametrize("edit", ["false", "absent"])
def test_config_that_does_not_match_the_weights(tmp_path, edit):
    folder = save_tiny_transformer(tmp_path / "t")
    config = json.loads((folder / "config.json").read_text())
    if edit == "false":
        config["is_train_cross"] = False
    else:
        del config["is_train_cross"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TrajCrafterError, match="perceiver_cross_attention.*is_train_cross"):
        CrossTransformer3DModel.from_pretrained(folder)


def test_base_cogvideox_fun_folder_loads_without_reference_layers(tmp_path):
    """A CogVideoX-Fun-InP transformer folder (no cross-attention keys in config.json, other
    class name) loads as the model without reference injection."""
    model = build_tiny_transformer(seed=4, is_train_cross=False)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("is_train_cross", "cross_attn_in_channels", "cross_attn_interval", "cross_attn_dim_head",
                "cross_attn_num_heads", "add_noise_in_inpaint_model"):
        del config[key]
    config["_class_name"] = "CogVideoXTransformer3DModel"
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = CrossTransformer3DModel.from_pretrained(tmp_path).eval()
    assert loaded.config.is_train_cross is False
    inputs = make_inputs()
    inputs.pop("cross_latents")
    assert torch.equal(run(loaded, **inputs), run(model, **inputs))


def test_missing_files(tmp_path):
    with pytest.raises(MissingFilesError, match="does not exist"):
        CrossTransformer3DModel.from_pretrained(tmp_path / "nowhere")
    folder = save_tiny_transformer(tmp_path / "t")
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(MissingFilesError, match="diffusion_pytorch_model.safetensors"):
        CrossTransformer3DModel.from_pretrained(folder)
    sharded = save_tiny_transformer(tmp_path / "s", sharded=True)
    shard = sorted(sharded.glob("diffusion_pytorch_model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(MissingFilesError, match=shard.name):
        CrossTransformer3DModel.from_pretrained(sharded)
    (folder / "config.json").unlink()
    with pytest.raises(MissingFilesError, match="config.json"):
        CrossTransformer3DModel.from_pretrained(folder)


def test_layers_must_divide_into_intervals():
    with pytest.raises(TrajCrafterError, match="cross_attn_interval"):
        build_tiny_transformer(num_layers=5, cross_attn_interval=2)


# --------------------------------------------------------------------------- bad forward inputs

@pytest.mark.parametrize("name", ["hidden_states", "inpaint_latents", "cross_latents", "encoder_hidden_states"])
def test_nan_inputs_are_named(tiny, name):
    inputs = make_inputs()
    inputs[name] = inputs[name].clone()
    inputs[name].view(-1)[3] = float("nan")
    with pytest.raises(TrajCrafterError, match=name):
        run(tiny, **inputs)


@pytest.mark.parametrize(
    "name, value, word",
    [
        ("hidden_states", torch.zeros(2, 16, 4, 6), "hidden_states"),
        ("hidden_states", torch.zeros(2, 3, 16, 5, 6), "divisible"),
        ("inpaint_latents", torch.zeros(2, 3, 16, 4, 6), "inpaint_latents"),
        ("inpaint_latents", None, "inpaint_latents"),
        ("cross_latents", torch.zeros(2, 3, 8, 4, 6), "cross_latents"),
        ("encoder_hidden_states", torch.zeros(2, 7, 31), "encoder_hidden_states"),
        ("timestep", torch.tensor([1, 2, 3]), "timestep"),
        ("image_rotary_emb", rotary_embedding(64, 64, 3, 16), "image_rotary_emb"),
    ],
)
def test_wrong_shapes_are_named(tiny, name, value, word):
    inputs = make_inputs()
    inputs[name] = value
    with pytest.raises(TrajCrafterError, match=word):
        run(tiny, **inputs)


# --------------------------------------------------------------------------- memory / speed options

def test_gradient_checkpointing_gives_the_same_gradients():
    inputs = make_inputs()
    grads = []
    for checkpointing in (False, True):
        model = build_tiny_transformer(seed=2).train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(**inputs).sample.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name
    assert grads[0]["perceiver_cross_attention.1.to_kv.weight"].abs().sum() > 0


def test_fp8_weight_storage_shrinks_weights_and_stays_close():
    model = build_tiny_transformer(seed=0)
    inputs = make_inputs()
    expected = run(model, **inputs)
    before = sum(p.numel() * p.element_size() for p in model.parameters())
    model.enable_fp8_weight_storage(compute_dtype=torch.float32)
    assert model.transformer_blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert model.perceiver_cross_attention[0].to_kv.weight.dtype == torch.float8_e4m3fn
    assert model.patch_embed.proj.weight.dtype == torch.float32  # kept, as diffusers' CogVideoX
    after = sum(p.numel() * p.element_size() for p in model.parameters())
    assert after < 0.6 * before  # tiny model: the kept AdaLN/norm layers are a large share
    out = run(model, **inputs)
    relative = (out - expected).norm() / expected.norm()
    assert 0 < relative < 0.15


def test_attention_backend_choice(tiny):
    inputs = make_inputs()
    expected = run(tiny, **inputs)
    try:
        tiny.set_attention_backend("_native_math")
        assert torch.allclose(run(tiny, **inputs), expected, atol=1e-5)
    finally:
        tiny.set_attention_backend(None)
    assert torch.equal(run(tiny, **inputs), expected)
    with pytest.raises(TrajCrafterError, match="unknown"):
        tiny.set_attention_backend("warp-drive")


def test_block_level_group_offload_hooks_keep_the_output():
    model = build_tiny_transformer(seed=6)
    assert isinstance(model.transformer_blocks, torch.nn.ModuleList)
    assert isinstance(model.perceiver_cross_attention, torch.nn.ModuleList)
    inputs = make_inputs()
    expected = run(model, **inputs)
    cpu = torch.device("cpu")
    model.enable_group_offload(cpu, offload_device=cpu, offload_type="block_level", num_blocks_per_group=1)
    assert torch.equal(run(model, **inputs), expected)
