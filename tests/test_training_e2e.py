"""Tiny end-to-end training run on CPU through the command-line entry points
(``training.smoke``): synthetic scenes → double-reprojection and multi-view triplet shards (two
jobs each) → stage 1 → stage 2 (from stage 1's export) → the pipeline loads the exported
transformer with the tiny base model and generates a video.
"""

from __future__ import annotations

import json

import pytest
import torch

T, H, W = 9, 32, 48


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_synthetic_data_to_two_stages_to_generation(tmp_path):
    from trajcrafter_core.models import CrossTransformer3DModel
    from training.shards import iter_shard
    from training.smoke import run

    result = run(tmp_path, num_frames=T, height=H, width=W, steps=3)
    dr = sorted((result["data"] / "dr").glob("*.tar"))
    mv = sorted((result["data"] / "mv").glob("*.tar"))
    assert [p.name for p in dr] == ["dr-00000-of-00002-00000.tar", "dr-00001-of-00002-00000.tar"]
    assert len(mv) == 2
    samples = [s for p in dr + mv for s in iter_shard(p)]
    assert sorted(s.kind for s in samples) == ["double_reprojection"] * 4 + ["triplet"] * 2
    for s in samples:
        assert s.video["target"].shape == (T, H, W, 3)
        assert 0 < s.video["mask"].float().mean() < 0.9  # real holes, real content

    for stage in ("stage1", "stage2"):
        metrics = [json.loads(line) for line in (result[stage] / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1, 2, 3]
        assert list((result[stage] / "logs").rglob("events.out.tfevents.*"))  # TensorBoard
    # stage 2 changed only the reference layers of stage 1's export
    from safetensors.torch import load_file

    w1 = load_file(str(result["stage1"] / "export" / "diffusion_pytorch_model.safetensors"))
    w2 = load_file(str(result["export"] / "diffusion_pytorch_model.safetensors"))
    changed = {k for k in w1 if not torch.equal(w1[k], w2[k])}
    assert changed and all(k.startswith(("perceiver_cross_attention.", "ref_patch_embed.")) for k in changed)

    _, info = CrossTransformer3DModel.from_pretrained(str(result["export"]), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    video = result["video"]
    assert video.shape == (T, H, W, 3) and torch.isfinite(video).all()
