"""Sampler options on tiny random-init folders: progress callback and cancellation, model and
block offload (same result, one component on the device at a time), fp8 weight storage, VAE
tiling, attention backend choice, bf16."""

from __future__ import annotations

import pytest
import torch

from trajcrafter_core import checkpoints as ck
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

from tiny_models import H, T, W, baseline, inputs, one_thread, pipe, run, tiny  # noqa: F401 (fixtures)


def test_progress_callback_and_cancel(pipe, inputs):
    seen = []
    run(pipe, inputs, prompt="a cat", num_inference_steps=3,
        callback=lambda step, total, latents: seen.append((step, total, tuple(latents.shape))))
    shape = (1, 3, 16, H // 8, W // 8)
    assert seen == [(1, 3, shape), (2, 3, shape), (3, 3, shape)]

    class Cancelled(Exception):
        pass

    def cancel(step, total, latents):
        if step == 1:
            raise Cancelled()

    pipe.set_placement("cpu", offload="model")
    try:
        with pytest.raises(Cancelled):
            run(pipe, inputs, prompt="a cat", num_inference_steps=3, callback=cancel)
        assert all(p.device.type == "cpu" for m in pipe.components().values() for p in m.parameters())
        assert run(pipe, inputs, prompt="a cat").shape == (T, H, W, 3)  # usable afterwards
    finally:
        pipe.set_placement("cpu", offload="none")


# ------------------------------------------------------------------ memory / speed options


def test_offload_modes_give_the_same_result(tiny, pipe, inputs, baseline, monkeypatch):
    moves = []
    for name in ("text_encoder", "transformer", "vae"):
        module = getattr(pipe, name)
        original = module.to
        monkeypatch.setattr(module, "to", lambda *a, _n=name, _o=original, **k: (moves.append((_n, str(a[0]))), _o(*a, **k))[1])
    pipe.set_placement("cpu:0", offload="model")  # "cpu:0" stands for the accelerator here
    try:
        moves.clear()
        out = run(pipe, inputs, prompt="a cat")
    finally:
        monkeypatch.undo()
        pipe.set_placement("cpu", offload="none")
    assert torch.allclose(out, baseline, atol=1e-6)
    onloads = [name for name, device in moves if device == "cpu:0"]
    assert onloads == ["text_encoder", "vae", "vae", "transformer", "vae"]  # one at a time, in run order
    for i, (name, device) in enumerate(moves):  # each one goes back before the next comes
        if device == "cpu:0":
            assert moves[i + 1] == (name, "cpu")

    block = TrajectoryCrafterPipeline.from_pretrained(tiny["base"], tiny["transformer"], dtype="fp32", device="cpu", offload="block")
    assert torch.allclose(run(block, inputs, prompt="a cat"), baseline, atol=1e-5)
    with pytest.raises(TrajCrafterError, match="block offload is already active"):
        block.set_placement("cpu", offload="none")
    with pytest.raises(TrajCrafterError, match="offload must be"):
        pipe.set_placement("cpu", offload="disk")


def test_fp8_weights_and_vae_tiling(tiny, inputs, baseline):
    fp8 = TrajectoryCrafterPipeline.from_pretrained(tiny["base"], tiny["transformer"], dtype="fp32", device="cpu", fp8=True)
    block = fp8.transformer.transformer_blocks[0]
    assert block.attn1.to_q.weight.dtype == torch.float8_e4m3fn and block.ff.net[2].weight.dtype == torch.float8_e4m3fn
    out = run(fp8, inputs, prompt="a cat")
    assert torch.isfinite(out).all() and (out - baseline).abs().mean() < 0.1  # close, not equal
    latents = torch.randn(1, 3, 16, 2, 8)
    whole = fp8.decode_latents(latents)
    fp8.vae.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32,
                          tile_overlap_factor_height=0.25, tile_overlap_factor_width=0.25)
    tiled = fp8.decode_latents(latents)  # three overlapping 32-pixel-wide tiles, blended
    assert tiled.shape == whole.shape == (T, 16, 64, 3) and torch.isfinite(tiled).all()
    assert (tiled - whole).abs().mean() < 0.1


def test_attention_backend_choice(pipe):
    pipe.set_attention_backend("sdpa")
    with pytest.raises(TrajCrafterError, match="attention backend"):
        pipe.set_attention_backend("no-such-kernel")


def test_bf16_pipeline_runs(tiny, inputs):
    bf16 = TrajectoryCrafterPipeline.from_pretrained(tiny["base"], tiny["transformer"], dtype="bf16", device="cpu")
    out = run(bf16, inputs, prompt="a cat", num_inference_steps=1)
    assert out.dtype == torch.float32 and torch.isfinite(out).all() and out.shape == (T, H, W, 3)
