"""Two-stage training on tiny random models (CPU): what each stage trains, that a model can fit,
the official-layout export, LoRA/EMA, pre-encoded data, bad inputs (resume: test_training_resume.py).

Expectations are independent of the training code: parameters are compared to the weights on
disk before training, the reference-skip is compared to a model built *without* reference
layers, the LoRA merge to ``W + (alpha/r)·B·A`` computed here, and the condition latents to
a hand-written encoding.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from trajcrafter_core.errors import TrajCrafterError
from training.config import config_from_dict
from training.shards import Sample, ShardWriter

from tiny_models import one_thread  # noqa: F401 (autouse fixture)

REPO = Path(__file__).resolve().parents[1]
T, H, W = 5, 32, 32


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    root = tmp_path_factory.mktemp("tiny")
    ckpt = save_tiny_checkpoints(root / "models")
    shards = root / "data"
    g = torch.Generator().manual_seed(0)
    with ShardWriter(shards / "mixed-0.tar") as w:
        for i in range(6):
            kind = "triplet" if i % 2 else "double_reprojection"
            video = {"target": torch.randint(0, 256, (T, H, W, 3), generator=g, dtype=torch.uint8),
                     "render": torch.randint(0, 256, (T, H, W, 3), generator=g, dtype=torch.uint8),
                     "mask": (torch.rand(T, H, W, generator=g) < 0.3).to(torch.uint8)}
            if kind == "triplet":
                video["reference"] = torch.randint(0, 256, (T, H, W, 3), generator=g, dtype=torch.uint8)
            w.write(Sample(f"k{i}", {"kind": kind, "prompt": f"scene {i}"}, video))
    return {"base": ckpt["base"], "transformer": ckpt["transformer"], "shards": shards, "root": root}


def _cfg(tiny, out, **over):
    data = {
        "stage": 1,
        "model": {"base_dir": str(tiny["base"]), "transformer_dir": str(tiny["transformer"])},
        "data": {"shards": [str(tiny["shards"] / "*.tar")], "num_frames": T, "height": H, "width": W,
                 "batch_size": 1, "reference_frames": 5, "use_latents": False},
        "optim": {"lr": 1e-3, "weight_decay": 0.0},
        "train": {"max_steps": 2, "mixed_precision": "no", "gradient_checkpointing": False, "seed": 7},
        "output": {"dir": str(out), "checkpoint_every": 2, "export_dtype": "fp32", "progress_bar": False},
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            data.setdefault(section, {})[name] = value
        else:
            data[section] = value
    return data


def _write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


def _weights(folder: Path):
    return load_file(str(next(Path(folder).glob("*.safetensors"))))


def _changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


# ---------------------------------------------------------------------------------------
# What each stage trains
# ---------------------------------------------------------------------------------------


def test_stage1_and_stage2_train_exactly_their_parameters(tiny, tmp_path):
    from training.train import run_training

    from trajcrafter_core.models.reference_attention import PerceiverCrossAttention, ReferencePatchEmbed

    def not_in_stage_1(*args, **kwargs):
        raise AssertionError("a reference layer ran in stage 1")

    start = _weights(tiny["transformer"])
    with pytest.MonkeyPatch.context() as patch:  # stage 1 never runs the reference stream
        patch.setattr(PerceiverCrossAttention, "forward", not_in_stage_1)
        patch.setattr(ReferencePatchEmbed, "forward", not_in_stage_1)
        r1 = run_training(config_from_dict(_cfg(tiny, tmp_path / "s1")))
    after1 = _weights(r1.export_dir)
    assert set(after1) == set(start)
    changed = _changed(start, after1)
    stage1 = {k for k in start if k.startswith(("patch_embed.", "transformer_blocks."))}
    assert changed == stage1, sorted(changed ^ stage1)[:5]
    assert not any(k.startswith(("perceiver_cross_attention.", "ref_patch_embed.", "time_embedding.",
                                 "norm_out.", "proj_out.")) for k in changed)

    cfg2 = _cfg(tiny, tmp_path / "s2", stage=2, data__kinds=["triplet"],
                model={"base_dir": str(tiny["base"]), "transformer_dir": str(r1.export_dir)})
    r2 = run_training(config_from_dict(cfg2))
    after2 = _weights(r2.export_dir)
    changed2 = _changed(after1, after2)
    stage2 = {k for k in start if k.startswith(("perceiver_cross_attention.", "ref_patch_embed."))}
    assert changed2 == stage2, sorted(changed2 ^ stage2)[:5]
    # the export loads with our class: no missing or unexpected keys
    from trajcrafter_core.models import CrossTransformer3DModel

    model, info = CrossTransformer3DModel.from_pretrained(str(r2.export_dir), output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    for k, v in model.state_dict().items():
        assert torch.equal(v, after2[k])


def test_skipped_reference_equals_a_model_without_reference_layers(tiny):
    """Stage 1's ``cross_latents=None`` gives the output of a model built without reference layers."""
    from trajcrafter_core.models import CrossTransformer3DModel

    with_ref = CrossTransformer3DModel.from_pretrained(str(tiny["transformer"])).eval()
    config = dict(with_ref.config)
    config["is_train_cross"] = False
    without = CrossTransformer3DModel.from_config(config).eval()
    missing, unexpected = without.load_state_dict(with_ref.state_dict(), strict=False)
    assert not missing and all(k.startswith(("perceiver", "ref_patch")) for k in unexpected)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 16, 4, 4, generator=g)
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32, generator=g), timestep=torch.tensor([500]),
              inpaint_latents=torch.randn(1, 2, 17, 4, 4, generator=g), return_dict=False)
    ref_a, ref_b = torch.randn(1, 1, 16, 4, 4, generator=g), torch.randn(1, 1, 16, 4, 4, generator=g)
    with torch.no_grad():
        normal = with_ref(x, cross_latents=ref_a, **kw)[0]
        assert not torch.allclose(normal, with_ref(x, cross_latents=ref_b, **kw)[0])  # the reference matters
        expected = without(x, **kw)[0]
        skipped = with_ref(x, cross_latents=None, **kw)[0]
        assert torch.allclose(skipped, expected, atol=1e-6)
        assert not torch.allclose(skipped, normal, atol=1e-4)


def test_tiny_model_overfits_a_fixed_batch(tiny, tmp_path):
    """Same batch, noise and timesteps every step, built by the training input path: the tiny
    model fits it (loss down by far more than an order of magnitude). With only the stage-1
    parameters a tiny model plateaus near 13x: its frozen random output head (32 channels) cannot
    express the 64 target values per token, which a real model's trained head can."""
    from training.data import ShardBatchStream
    from training.inputs import build_step_inputs, load_frozen_parts, make_rotary_fn
    from training.model_setup import load_transformer_for_training, select_trainable
    from training.objective import DiffusionObjective, load_training_scheduler

    torch.manual_seed(0)
    model = load_transformer_for_training(tiny["transformer"], stage=1)
    select_trainable(model, [""])
    scheduler = load_training_scheduler(Path(tiny["base"]) / "scheduler")
    assert scheduler.config.prediction_type == "v_prediction"
    parts = load_frozen_parts(tiny["base"], model, True, torch.float32, "cpu", scheduler)
    batch = next(iter(ShardBatchStream([str(tiny["shards"] / "*.tar")], ["double_reprojection", "triplet"], 2,
                                       T, H, W, shuffle=False)))
    inputs, target = build_step_inputs(batch, parts, dict(model.config), DiffusionObjective(scheduler),
                                       uses_reference=False, reference_frames=5, noise_aug=(-3.0, 0.5),
                                       cfg_dropout=(0.0, 0.0, 0.0), device="cpu",
                                       rotary_fn=make_rotary_fn(dict(model.config), "cpu"))
    assert inputs["cross_latents"] is None  # stage 1: the transformer skips the reference stream
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.0)
    losses = []
    model.train()
    for _ in range(150):
        loss = F.mse_loss(model(**inputs, return_dict=False)[0], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"overfit: loss {losses[0]:.4f} -> {losses[-1]:.5f} ({losses[0] / losses[-1]:.0f}x)")
    assert losses[-1] < losses[0] / 100


# ---------------------------------------------------------------------------------------
# LoRA, EMA, pre-encoded data
# ---------------------------------------------------------------------------------------


def test_lora_export_is_the_merged_weight(tiny, tmp_path):
    from trajcrafter_core.models import CrossTransformer3DModel
    from training.checkpointing import export_transformer
    from training.model_setup import add_lora

    model = CrossTransformer3DModel.from_pretrained(str(tiny["transformer"]))
    names = add_lora(model, ["transformer_blocks."], ["to_q", "to_v"], rank=2, alpha=4.0, dropout=0.0)
    assert names and all(n.endswith(("to_q", "to_v")) for n in names)
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())
    with torch.no_grad():  # give the adapters non-zero weights, as after training
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    sd = model.state_dict()
    out = export_transformer(model, tmp_path / "lora_export", torch.float32)
    loaded, info = CrossTransformer3DModel.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    name = names[0]
    A, B = sd[f"{name}.lora_A.default.weight"], sd[f"{name}.lora_B.default.weight"]
    expected = sd[f"{name}.base_layer.weight"] + (4.0 / 2) * B @ A
    assert torch.allclose(loaded.state_dict()[f"{name}.weight"], expected, atol=1e-6)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 16, 4, 4, generator=g)
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32, generator=g), timestep=torch.tensor([300]),
              inpaint_latents=torch.randn(1, 2, 17, 4, 4, generator=g),
              cross_latents=torch.randn(1, 1, 16, 4, 4, generator=g), return_dict=False)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x, **kw)[0], loaded.eval()(x, **kw)[0], atol=1e-5)


def test_lora_and_ema_training_runs_and_exports_ema(tiny, tmp_path):
    from training.train import run_training

    cfg = _cfg(tiny, tmp_path / "lora", lora={"enabled": True, "rank": 2, "alpha": 2.0},
               ema={"enabled": True, "decay": 0.5},
               train={"max_steps": 2, "mixed_precision": "bf16", "gradient_checkpointing": True, "seed": 1})
    result = run_training(config_from_dict(cfg))
    start, out = _weights(tiny["transformer"]), _weights(result.export_dir)
    assert set(out) == set(start)
    changed = _changed(start, out)
    assert changed and all(k.startswith("transformer_blocks.") and k.endswith(("to_q.weight", "to_k.weight",
                                                                               "to_v.weight", "to_out.0.weight"))
                           for k in changed)


def test_condition_latents_match_a_hand_built_encoding(tiny):
    from trajcrafter_core import checkpoints
    from trajcrafter_core.models import CrossTransformer3DModel
    from training.conditioning import batch_inpaint_latents, make_condition_pipeline

    vae = checkpoints.load_vae(Path(tiny["base"]) / "vae", dtype="fp32")
    model = CrossTransformer3DModel.from_pretrained(str(tiny["transformer"]))
    scheduler = checkpoints.load_scheduler(Path(tiny["base"]) / "scheduler")
    pipe = make_condition_pipeline(model, vae, None, None, scheduler, "cpu")
    g = torch.Generator().manual_seed(5)
    render = torch.randint(0, 256, (1, T, H, W, 3), generator=g, dtype=torch.uint8)
    mask = (torch.rand(1, T, H, W, generator=g) < 0.4).to(torch.uint8)
    torch.manual_seed(11)
    got = batch_inpaint_latents(pipe, render, mask, [0.2])
    # by hand: holes at -1, N(0, 0.2^2) noise outside holes (same draw), posterior mode x scale
    torch.manual_seed(11)
    noise = torch.randn(1, 3, T, H, W)
    x = render[0].float().permute(3, 0, 1, 2)[None] / 255 * 2 - 1
    hole = mask[0].bool()[None, None]
    x = torch.where(hole, torch.full_like(x, -1.0), x + 0.2 * noise)
    sf = vae.config.scaling_factor
    masked = vae.encode(x).latent_dist.mode() * sf
    valid = 1.0 - mask[0].float()[None, None]
    m0 = F.interpolate(valid[:, :, :1], size=(1, H // 8, W // 8), mode="trilinear")
    m1 = F.interpolate(valid[:, :, 1:], size=(1, H // 8, W // 8), mode="trilinear")
    expected = torch.cat([torch.cat([m0, m1], 2) * sf, masked], 1).permute(0, 2, 1, 3, 4)
    assert got.shape == (1, 2, 17, H // 8, W // 8)
    assert torch.allclose(got, expected, atol=1e-5)
    all_hole = batch_inpaint_latents(pipe, render, torch.ones_like(mask), [0.2])
    assert torch.equal(all_hole, torch.zeros_like(all_hole))


def test_pre_encoded_shards_train_without_vae_or_t5(tiny, tmp_path, monkeypatch):
    from training import prepare_latents
    from training.shards import iter_shard
    from training.train import run_training

    out = tmp_path / "encoded"
    assert prepare_latents.main(["--shards", str(tiny["shards"] / "*.tar"), "--out-dir", str(out),
                                 "--base-dir", str(tiny["base"]), "--transformer-dir", str(tiny["transformer"]),
                                 "--reference-frames", "5", "--dtype", "fp32", "--device", "cpu"]) == 0
    samples = list(iter_shard(next(out.glob("*.tar"))))
    lat = samples[1].latents
    assert samples[1].kind == "triplet" and lat["reference_mean"].shape == (2, 16, 4, 4)
    assert lat["inpaint_latents"].shape == (2, 17, 4, 4) and lat["prompt_embeds"].shape[0] == 226
    assert "reference_mean" not in samples[0].latents  # double reprojection: reference = target

    from trajcrafter_core import checkpoints

    def no_encoders(*a, **k):
        raise AssertionError("VAE/T5 must not be loaded when the shards carry latents")

    monkeypatch.setattr(checkpoints, "load_vae", no_encoders)
    monkeypatch.setattr(checkpoints, "load_text_encoder", no_encoders)
    for stage in (1, 2):
        cfg = _cfg(tiny, tmp_path / f"pre{stage}", stage=stage,
                   data={"shards": [str(out / "*.tar")], "num_frames": T, "height": H, "width": W,
                         "kinds": ["triplet"] if stage == 2 else [], "reference_frames": 5},
                   model={"base_dir": str(tiny["base"]), "transformer_dir": str(tiny["transformer"]),
                          "empty_prompt_embeds": str(out / "empty_prompt.safetensors")})
        result = run_training(config_from_dict(cfg))
        assert result.step == 2 and all(torch.isfinite(torch.tensor(list(result.losses.values()))))


# ---------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------


def test_corrupt_shard_mid_run_is_a_clear_error_and_leaves_only_complete_checkpoints(tiny, tmp_path):
    import tarfile

    from training.train import run_training

    data = tmp_path / "bad"
    g = torch.Generator().manual_seed(2)
    with ShardWriter(data / "b.tar") as w:
        for i in range(4):
            w.write(Sample(f"b{i}", {"kind": "double_reprojection", "prompt": ""}, {
                "target": torch.randint(0, 256, (T, H, W, 3), generator=g, dtype=torch.uint8),
                "render": torch.randint(0, 256, (T, H, W, 3), generator=g, dtype=torch.uint8),
                "mask": torch.zeros(T, H, W, dtype=torch.uint8)}))
    raw = bytearray((data / "b.tar").read_bytes())
    with tarfile.open(data / "b.tar") as tar:
        info = tar.getmember("b3.target.mkv")
    raw[info.offset_data + info.size - 5] ^= 0x55
    (data / "b.tar").write_bytes(bytes(raw))
    out = tmp_path / "run"
    cfg = _cfg(tiny, out, data={"shards": [str(data / "*.tar")], "num_frames": T, "height": H, "width": W,
                                "shuffle": False, "use_latents": False},
               train={"max_steps": 6, "mixed_precision": "no", "gradient_checkpointing": False, "seed": 0})
    with pytest.raises(TrajCrafterError, match=r"b\.tar is corrupt.*b3"):
        run_training(config_from_dict(cfg))
    found = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert found == ["latest", "step-00000002"]
    assert (out / "checkpoints" / "step-00000002" / "training_state.json").is_file()
    assert not (out / "export").exists()


def test_config_typo_fails_before_anything_is_written(tiny, tmp_path):
    from training.train import main

    cfg = _cfg(tiny, tmp_path / "never")
    cfg["optim"]["learnig_rate"] = 1e-4
    path = _write_yaml(tmp_path / "typo.yaml", cfg)
    assert main(["--config", str(path)]) == 2
    assert not (tmp_path / "never").exists()
    with pytest.raises(TrajCrafterError, match="Did you mean 'lr'"):
        from training.config import load_config

        load_config(path)


def test_resume_refuses_changed_data_settings(tiny, tmp_path):
    from training.train import run_training

    cfg = _cfg(tiny, tmp_path / "r")
    run_training(config_from_dict(cfg))
    cfg["data"]["batch_size"] = 2
    cfg["train"]["max_steps"] = 4
    with pytest.raises(TrajCrafterError, match="data.batch_size changed"):
        run_training(config_from_dict(cfg))


def test_stage1_can_start_from_a_base_transformer_without_reference_layers(tmp_path):
    """A CogVideoX-Fun-InP style folder (no is_train_cross) gets fresh reference layers that do
    not change its output; stage 2 refuses it."""
    from trajcrafter_core.models import CrossTransformer3DModel
    from trajcrafter_core.models.tiny import save_tiny_transformer
    from training.model_setup import load_transformer_for_training

    base_dir = save_tiny_transformer(tmp_path / "base", is_train_cross=False)
    config = json.loads((base_dir / "config.json").read_text())
    config.pop("is_train_cross")
    (base_dir / "config.json").write_text(json.dumps(config))
    base = CrossTransformer3DModel.from_pretrained(str(base_dir)).eval()
    model = load_transformer_for_training(base_dir, stage=1).eval()
    assert model.config.is_train_cross and len(model.perceiver_cross_attention) == 2
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 16, 4, 4, generator=g)
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32, generator=g), timestep=torch.tensor([10]),
              inpaint_latents=torch.randn(1, 2, 17, 4, 4, generator=g), return_dict=False)
    with torch.no_grad():
        assert torch.allclose(model(x, cross_latents=torch.randn(1, 1, 16, 4, 4, generator=g), **kw)[0],
                              base(x, **kw)[0], atol=1e-6)
    with pytest.raises(TrajCrafterError, match="stage-1 export"):
        load_transformer_for_training(base_dir, stage=2)


# ---------------------------------------------------------------------------------------
# Which data path runs, validation, metrics
# ---------------------------------------------------------------------------------------


def test_latents_setting_refuses_shards_that_cannot_serve_it(tiny, tmp_path, capsys, monkeypatch):
    """data.use_latents: true on shards without cached latents stops before any model loads
    (instead of silently loading the VAE and T5 on every process); false says loudly that it
    encodes every batch; encoded shards cannot serve per-step encoding."""
    from trajcrafter_core import checkpoints
    from training import prepare_latents
    from training.train import run_training

    def no_models(*args, **kwargs):
        raise AssertionError("a model was loaded")

    with monkeypatch.context() as m:
        m.setattr(checkpoints, "load_vae", no_models)
        m.setattr(checkpoints, "load_text_encoder", no_models)
        cfg = _cfg(tiny, tmp_path / "refused")
        cfg["data"]["use_latents"] = True
        with pytest.raises(TrajCrafterError, match="carry no cached latents.*python -m training.prepare_latents"):
            run_training(config_from_dict(cfg))
    assert not (tmp_path / "refused").exists()

    run_training(config_from_dict(_cfg(tiny, tmp_path / "per_step", train__max_steps=1)))
    assert "WARNING data: per-step encoding: the VAE and T5 are loaded" in capsys.readouterr().err

    out = tmp_path / "encoded"
    assert prepare_latents.main(["--shards", str(tiny["shards"] / "*.tar"), "--out-dir", str(out),
                                 "--base-dir", str(tiny["base"]), "--transformer-dir", str(tiny["transformer"]),
                                 "--reference-frames", "5", "--dtype", "fp32", "--device", "cpu"]) == 0
    cfg = _cfg(tiny, tmp_path / "no_videos")
    cfg["data"]["shards"] = [str(out / "*.tar")]
    with pytest.raises(TrajCrafterError, match="carry no videos"):
        run_training(config_from_dict(cfg))


def test_validation_is_repeatable_and_leaves_training_untouched(tiny, tmp_path):
    """Per-step-encoding mode: validation at steps 0, 1, 2 writes the held-out loss and one mp4
    each; two runs give the same validation losses, and the training losses equal a run without
    validation (validation draws from a forked RNG)."""
    from trajcrafter_core.video import read_video
    from training.train import run_training

    validation = {"shards": [str(tiny["shards"] / "*.tar")], "every": 1, "loss_samples": 3, "videos": 1,
                  "num_inference_steps": 1, "guidance_scale": 6.0}
    runs = [run_training(config_from_dict(_cfg(tiny, tmp_path / f"v{i}", validation=validation,
                                               output={"dir": str(tmp_path / f"v{i}"), "checkpoint_every": 2,
                                                       "export_dtype": "fp32", "progress_bar": False})))
            for i in range(2)]
    plain = run_training(config_from_dict(_cfg(tiny, tmp_path / "plain")))
    assert sorted(runs[0].validation) == [0, 1, 2]
    assert [v["loss"] for v in runs[0].validation.values()] == [v["loss"] for v in runs[1].validation.values()]
    assert runs[0].losses == runs[1].losses == plain.losses
    lines = [json.loads(line) for line in (tmp_path / "v0" / "validation.jsonl").read_text().splitlines()]
    assert [v["step"] for v in lines] == [0, 1, 2] and all(v["loss"] > 0 for v in lines)
    clip = read_video(lines[-1]["videos"][0], size_multiple=1)
    assert clip.frames.shape == (T, H, 3 * W + 16, 3)
    # the condition panel shows the render's holes in magenta, as previews do
    assert float((clip.frames[:, :, :W, 0] - clip.frames[:, :, :W, 1]).max()) > 0.5
