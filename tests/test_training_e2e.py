"""Tiny end-to-end training run on CPU through the command-line entry points
(``training.smoke``): synthetic scenes → double-reprojection and multi-view triplet shards (two
jobs each) → cached latents → stage 1 (data mix, validation) → stage 2 (from stage 1's export)
→ a rank-4 LoRA → the pipeline loads the export (with and without the LoRA) and generates; the
Load TrajectoryCrafter Model node loads the LoRA and its output changes.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from nodes_harness import run_node

T, H, W = 9, 32, 48


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from training.smoke import run

    return run(tmp_path_factory.mktemp("smoke"), num_frames=T, height=H, width=W, steps=3)


def test_synthetic_data_to_two_stages_to_generation(smoke):
    from safetensors.torch import load_file

    from trajcrafter_core.models import CrossTransformer3DModel
    from trajcrafter_core.video import read_video
    from training.shards import iter_shard

    result = smoke
    dr = sorted((result["raw"] / "dr").glob("*.tar"))
    mv = sorted((result["raw"] / "mv").glob("*.tar"))
    assert [p.name for p in dr] == ["dr-00000-of-00002-00000.tar", "dr-00001-of-00002-00000.tar"]
    assert len(mv) == 2
    samples = [s for p in dr + mv for s in iter_shard(p)]
    assert sorted(s.kind for s in samples) == ["double_reprojection"] * 4 + ["triplet"] * 2
    for s in samples:
        assert s.video["target"].shape == (T, H, W, 3) and s.meta["video_codec"] == "h264"
        assert 0 < s.video["mask"].float().mean() < 0.9  # real holes, real content
    # encoded shards: latents, no second copy of the videos
    encoded = [s for p in sorted((result["encoded"] / "dr").glob("*.tar")) for s in iter_shard(p)]
    assert len(encoded) == 4 and all(s.video is None and s.latents for s in encoded)

    for stage in ("stage1", "stage2"):
        metrics = [json.loads(line) for line in (result[stage] / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1, 2, 3]
        assert all(m["grad_norm"] > 0 and m["samples_per_s"] > 0 and m["peak_memory_gb"] > 0 for m in metrics)
        assert list((result[stage] / "logs").rglob("events.out.tfevents.*"))  # TensorBoard
        validation = [json.loads(line) for line in (result[stage] / "validation.jsonl").read_text().splitlines()]
        assert [v["step"] for v in validation] == [0, 3] and all(v["loss"] > 0 for v in validation)
    # the validation videos: condition | sample | target, one per validation
    assert len(result["validation_videos"]) == 2
    clip = read_video(result["validation_videos"][-1], size_multiple=1)
    assert clip.frames.shape[:2] == (T, H) and clip.frames.shape[2] == 3 * W + 2 * 8
    # stage 2 changed only the reference layers of stage 1's export
    w1 = load_file(str(result["stage1"] / "export" / "diffusion_pytorch_model.safetensors"))
    w2 = load_file(str(result["export"] / "diffusion_pytorch_model.safetensors"))
    changed = {k for k in w1 if not torch.equal(w1[k], w2[k])}
    assert changed and all(k.startswith(("perceiver_cross_attention.", "ref_patch_embed.")) for k in changed)

    _, info = CrossTransformer3DModel.from_pretrained(str(result["export"]), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    video = result["video"]
    assert video.shape == (T, H, W, 3) and torch.isfinite(video).all()


def test_the_lora_is_small_and_equals_its_merged_export(smoke):
    """The adapter alone is a small fraction of the full export, and merging it into stage 2's
    export (the library's loader) gives the weights the LoRA run exported merged."""
    from safetensors.torch import load_file

    from trajcrafter_core.lora import apply_lora, read_lora
    from trajcrafter_core.models import CrossTransformer3DModel

    adapter = read_lora(smoke["lora"])
    assert adapter.rank == 4 and adapter.layers
    assert all(name.startswith("perceiver_cross_attention.") for name in adapter.layers)
    print(f"LoRA adapter / merged export: {smoke['lora_ratio']:.2%}")
    assert smoke["lora_ratio"] < 0.05
    model = CrossTransformer3DModel.from_pretrained(str(smoke["export"]))
    apply_lora(model, adapter, 1.0)
    merged = load_file(str(smoke["lora_run"] / "export" / "diffusion_pytorch_model.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.allclose(value, merged[key], atol=1e-6), key
    assert not torch.equal(smoke["video"], smoke["video_lora"])


def test_a_smoke_lora_loads_in_the_node_and_changes_its_output(smoke, tmp_path, monkeypatch):
    from trajcrafter_core.redirect import conditions_from_images
    from training.shards import iter_shard

    models = tmp_path / "models"
    shutil.copytree(smoke["models"]["base"], models / "trajectorycrafter" / "CogVideoX-Fun-V1.1-5b-InP")
    shutil.copytree(smoke["export"], models / "trajectorycrafter" / "TrajectoryCrafter")
    (models / "loras" / "trajcrafter").mkdir(parents=True)
    shutil.copy(smoke["lora"], models / "loras" / "trajcrafter" / "smoke_lora.safetensors")
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(models))

    from nodes_harness import node_class

    spec = node_class("TrajCrafterLoadModel").INPUT_TYPES()["optional"]
    assert spec["lora"][0] == ["none", "trajcrafter/smoke_lora.safetensors"]

    sample = next(iter_shard(sorted((smoke["raw"] / "mv").glob("*.tar"))[0]))
    conditions = conditions_from_images(sample.video["reference"].float() / 255, sample.video["render"].float() / 255,
                                        sample.video["mask"].float(), num_reference_frames=T)

    def generate(**lora):
        model = run_node("TrajCrafterLoadModel", transformer="TrajectoryCrafter", base_model="CogVideoX-Fun-V1.1-5b-InP",
                         precision="fp32", memory_preset="custom", memory_mode="model_offload", vae_tiling=False,
                         attention="sdpa",
                         download_missing=False, **lora)[0]
        return run_node("TrajCrafterSampler", model=model, conditions=conditions, prompt=sample.prompt, steps=2,
                        guidance=6.0, seed=1, scheduler="DDIM_Origin")[0]

    plain = generate()
    with_lora = generate(lora="trajcrafter/smoke_lora.safetensors", lora_strength=1.0)
    at_zero = generate(lora="trajcrafter/smoke_lora.safetensors", lora_strength=0.0)
    assert torch.equal(at_zero, plain)
    change = (with_lora - plain).abs().max().item()
    print(f"node output change with the smoke LoRA: max |diff| = {change:.4f}")
    assert change > 1e-3
