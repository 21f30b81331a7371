"""LoRA adapters in the library (:mod:`trajcrafter_core.lora`, ``from_pretrained(lora=...)``,
``ModelSpec``): the formats it reads merge to ``W + strength·(alpha/r)·B·A`` computed here by
hand, and adapters for another model, broken files and pickles are clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from tiny_models import one_thread  # noqa: F401 (autouse fixture)
from trajcrafter_core.errors import TrajCrafterError

LAYER = "transformer_blocks.0.attn1.to_q"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    return save_tiny_checkpoints(tmp_path_factory.mktemp("models"))


def _model(tiny):
    from trajcrafter_core.models import CrossTransformer3DModel

    return CrossTransformer3DModel.from_pretrained(str(tiny["transformer"]))


def _ab(model, rank=2, seed=0):
    weight = dict(model.named_modules())[LAYER].weight
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rank, weight.shape[1], generator=g), torch.randn(weight.shape[0], rank, generator=g)


@pytest.mark.parametrize("layout", ["diffusers", "peft_folder", "old_diffusers"])
def test_each_format_merges_to_the_hand_computed_update(tiny, tmp_path, layout):
    from trajcrafter_core.lora import apply_lora, read_lora

    model = _model(tiny)
    a, b = _ab(model)
    before = dict(model.named_modules())[LAYER].weight.detach().clone()
    if layout == "diffusers":  # what training exports: alpha in the metadata
        path = tmp_path / "pytorch_lora_weights.safetensors"
        save_file({f"transformer.{LAYER}.lora_A.weight": a, f"transformer.{LAYER}.lora_B.weight": b}, str(path),
                  metadata={"format": "pt", "lora_adapter_metadata": json.dumps(
                      {"transformer.r": 2, "transformer.lora_alpha": 6.0})})
        scale = 6.0 / 2
    elif layout == "peft_folder":  # PEFT: alpha in adapter_config.json, rsLoRA scaling
        path = tmp_path / "adapter"
        path.mkdir()
        save_file({f"base_model.model.{LAYER}.lora_A.weight": a, f"base_model.model.{LAYER}.lora_B.weight": b},
                  str(path / "adapter_model.safetensors"))
        (path / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 4, "use_rslora": True}))
        scale = 4 / 2**0.5
    else:  # lora.down/lora.up with an alpha entry
        path = tmp_path / "old.safetensors"
        save_file({f"{LAYER}.lora.down.weight": a, f"{LAYER}.lora.up.weight": b, f"{LAYER}.alpha": torch.tensor(1.0)},
                  str(path))
        scale = 1.0 / 2
    adapter = read_lora(path)
    assert list(adapter.layers) == [LAYER] and adapter.rank == 2 and adapter.num_parameters() == a.numel() + b.numel()
    assert apply_lora(model, adapter, 0.5) == 1
    after = dict(model.named_modules())[LAYER].weight
    assert torch.allclose(after, before + 0.5 * scale * (b @ a), atol=1e-5)


def test_pipeline_and_spec_take_a_lora_and_strength_zero_changes_nothing(tiny, tmp_path):
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline
    from trajcrafter_core.specs import ModelSpec

    model = _model(tiny)
    a, b = _ab(model, seed=3)
    save_file({f"transformer.{LAYER}.lora_A.weight": a, f"transformer.{LAYER}.lora_B.weight": b},
              str(tmp_path / "l.safetensors"))
    load = lambda **kw: TrajectoryCrafterPipeline.from_spec(  # noqa: E731
        ModelSpec(tiny["base"], tiny["transformer"], dtype="fp32", device="cpu", **kw))
    plain = dict(load().transformer.named_parameters())
    zero = dict(load(lora=str(tmp_path / "l.safetensors"), lora_strength=0.0).transformer.named_parameters())
    two = dict(load(lora=tmp_path / "l.safetensors", lora_strength=2).transformer.named_parameters())
    assert all(torch.equal(plain[k], zero[k]) for k in plain)
    changed = [k for k in plain if not torch.equal(plain[k], two[k])]
    assert changed == [f"{LAYER}.weight"]
    assert torch.allclose(two[changed[0]], plain[changed[0]] + 2 * (b @ a), atol=1e-5)  # alpha = r: scale 1
    with pytest.raises(TrajCrafterError, match="LoRA strength must be a finite number"):
        ModelSpec(tiny["base"], tiny["transformer"], lora="x.safetensors", lora_strength=float("nan"))


def test_adapters_that_do_not_fit_are_clear_errors_before_anything_changes(tiny, tmp_path):
    from trajcrafter_core.lora import apply_lora, read_lora
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    model = _model(tiny)
    a, b = _ab(model)
    save_file({"transformer.blocks.9.attn.q.lora_A.weight": a, "transformer.blocks.9.attn.q.lora_B.weight": b},
              str(tmp_path / "other_model.safetensors"))
    with pytest.raises(TrajCrafterError, match="not Linear layers of this transformer.*another model"):
        apply_lora(model, read_lora(tmp_path / "other_model.safetensors"))
    save_file({f"{LAYER}.lora_A.weight": torch.randn(2, 7), f"{LAYER}.lora_B.weight": torch.randn(5, 2)},
              str(tmp_path / "other_size.safetensors"))
    with pytest.raises(TrajCrafterError, match="another model size"):
        apply_lora(model, read_lora(tmp_path / "other_size.safetensors"))
    save_file({"lora_unet_down_blocks_0_attn.lora_down.weight": a}, str(tmp_path / "kohya.safetensors"))
    with pytest.raises(TrajCrafterError, match="diffusers/PEFT naming"):
        read_lora(tmp_path / "kohya.safetensors")
    (tmp_path / "pickle.bin").write_bytes(b"not loaded")
    with pytest.raises(TrajCrafterError, match="pickled weights are never loaded"):
        read_lora(tmp_path / "pickle.bin")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(TrajCrafterError, match="broken.safetensors cannot be read"):
        read_lora(tmp_path / "broken.safetensors")
    with pytest.raises(TrajCrafterError, match="no such file"):  # checked before any model loads
        TrajectoryCrafterPipeline.from_pretrained(tmp_path / "no_base", tmp_path / "no_transformer",
                                                  lora=tmp_path / "missing.safetensors")
