"""The sampler on tiny random-init folders: conditioning built as the official pipeline builds it
(checked against hand-computed expectations, never against the official code), every input
matters, clear errors, progress/cancel, offload modes."""

from __future__ import annotations

import pytest
import torch

from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.pipeline import (
    DEFAULT_NEGATIVE_PROMPT,
    QUALITY_SUFFIX,
    reference_frame_indices,
    resize_mask_to_latents,
    supported_video_geometry,
)

from tiny_models import H, T, W, baseline, inputs, one_thread, pipe, run, run_output, tiny  # noqa: F401 (fixtures)


def record_transformer_calls(pipe, monkeypatch):
    calls = []
    forward = pipe.transformer.forward

    def spy(*args, **kwargs):
        calls.append({k: (v.clone() if torch.is_tensor(v) else v) for k, v in kwargs.items()})
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    return calls


# ------------------------------------------------------------------ conditioning, stage by stage


def test_mask_resize_matches_hand_computation():
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(9, 16, 24, generator=g) > 0.5).float()
    out = resize_mask_to_latents(mask, 3, 2, 3)
    # trilinear, align_corners=False, factor 8 in space: sample point 8i + 3.5 → mean of pixels 8i+3, 8i+4.
    # frame 0 alone; frames 1..8 → 2 latent frames, factor 4: point 4j + 1.5 → frames 1+4j+1, 1+4j+2.
    expected = torch.zeros(3, 2, 3)
    for i in range(2):
        for j in range(3):
            rows, cols = slice(8 * i + 3, 8 * i + 5), slice(8 * j + 3, 8 * j + 5)
            expected[0, i, j] = mask[0, rows, cols].mean()
            for k in (1, 2):
                frames = [1 + 4 * (k - 1) + 1, 1 + 4 * (k - 1) + 2]
                expected[k, i, j] = mask[frames, rows, cols].mean()
    assert torch.allclose(out, expected, atol=1e-6)
    assert resize_mask_to_latents(mask[:1], 1, 2, 3).shape == (1, 2, 3)


def test_mask_latents_are_scaled_valid_region(pipe, inputs):
    _, _, hole = inputs
    latents = pipe.mask_latents(hole, 3, H // 8, W // 8)
    assert latents.shape == (1, 3, 1, H // 8, W // 8)
    sf = pipe.vae.config.scaling_factor
    assert torch.allclose(latents[0, :, 0], resize_mask_to_latents(1 - hole, 3, H // 8, W // 8) * sf)
    assert float(latents[0, 0, 0, :, 0].max()) == 0.0  # the leftmost columns are all hole


def test_masked_video_sets_holes_to_minus_one_and_noises_only_covered_pixels(pipe, inputs):
    _, render, hole = inputs
    video = pipe.masked_video(render, hole)
    assert torch.all(video[0][:, hole > 0.5] == -1)
    assert torch.allclose(video[0][:, hole <= 0.5], (render * 2 - 1).permute(3, 0, 1, 2)[:, hole <= 0.5])
    seen = []
    encode = pipe._vae_encode
    pipe._vae_encode = lambda x: (seen.append(x.clone()), encode(x))[1]
    try:
        noise = torch.randn(1, 3, T, H, W, generator=torch.Generator().manual_seed(3))
        latents = pipe.encode_masked_video(render, hole, 0.5, noise=noise)
    finally:
        del pipe._vae_encode
    assert torch.allclose(seen[0], video + 0.5 * noise * (hole <= 0.5))
    posterior = encode(seen[0])
    expected = posterior.mean * pipe.vae.config.scaling_factor  # the posterior mean, not a sample
    assert torch.allclose(latents, expected.permute(0, 2, 1, 3, 4), atol=1e-6)
    assert latents.shape == (1, 3, 16, H // 8, W // 8)


def test_vae_chunking_matches_official_groups(pipe, monkeypatch):
    sizes = {"encode": [], "decode": []}
    encoder, decoder = pipe.vae.encoder.forward, pipe.vae.decoder.forward

    def enc(x, *a, **k):
        sizes["encode"].append(x.shape[2])
        return encoder(x, *a, **k)

    def dec(x, *a, **k):
        sizes["decode"].append(x.shape[2])
        return decoder(x, *a, **k)

    monkeypatch.setattr(pipe.vae.encoder, "forward", enc)
    monkeypatch.setattr(pipe.vae.decoder, "forward", dec)
    latents = pipe._vae_encode(torch.zeros(1, 3, 17, 16, 16)).mode()
    assert sizes["encode"] == [5, 4, 4, 4] and latents.shape[2] == 5  # 4 + 17 % 4, then fours
    pipe._vae_encode(torch.zeros(1, 3, 10, 16, 16))
    assert sizes["encode"][4:] == [6, 4]  # 10 reference frames: 4 + 2, then 4
    frames = pipe.decode_latents(torch.zeros(1, 5, 16, 2, 2))
    assert sizes["decode"] == [3, 2] and frames.shape == (17, 16, 16, 3)  # 2 + 5 % 2, then pairs


def test_channel_order_cfg_batch_and_reference(pipe, inputs, monkeypatch):
    source, render, hole = inputs
    calls = record_transformer_calls(pipe, monkeypatch)
    reference = torch.randn(1, 2, 16, H // 8, W // 8)
    run(pipe, inputs, prompt="a dog", reference_latents=reference, noise_aug_strength=0.0,
        num_inference_steps=1)
    call = calls[0]
    inpaint = call["inpaint_latents"]
    assert inpaint.shape == (2, 3, 17, H // 8, W // 8) and call["hidden_states"].shape == (2, 3, 16, H // 8, W // 8)
    assert torch.equal(inpaint[0], inpaint[1])
    assert torch.allclose(inpaint[:1, :, :1], pipe.mask_latents(hole, 3, H // 8, W // 8))
    assert torch.allclose(inpaint[:1, :, 1:], pipe.encode_masked_video(render, hole, 0.0), atol=1e-6)
    assert torch.equal(call["cross_latents"], torch.cat([reference, reference]))
    text, negative = pipe.build_prompts("a dog", None)
    assert text == "a dog" + QUALITY_SUFFIX and negative == DEFAULT_NEGATIVE_PROMPT
    expected = pipe.encode_text([negative, text])
    assert torch.allclose(call["encoder_hidden_states"], expected, atol=1e-6)  # [negative, positive]
    assert call["encoder_hidden_states"].shape[1] == 226
    cos, sin = call["image_rotary_emb"]
    assert cos.shape == (3 * (H // 16) * (W // 16), pipe.transformer.config.attention_head_dim)


def test_no_cfg_when_guidance_is_one(pipe, inputs, monkeypatch):
    calls = record_transformer_calls(pipe, monkeypatch)
    run(pipe, inputs, prompt="a dog", guidance_scale=1.0, num_inference_steps=1)
    assert calls[0]["hidden_states"].shape[0] == 1 and calls[0]["encoder_hidden_states"].shape[0] == 1


def test_reference_frames_start_and_end(pipe, inputs, monkeypatch):
    source = inputs[0]
    assert reference_frame_indices(9, 4, "start") == [0, 1, 2, 3]
    assert reference_frame_indices(9, 4, "end") == [5, 6, 7, 8]
    assert reference_frame_indices(9, 20, "end") == list(range(9))
    seen = []
    encode = pipe._vae_encode
    monkeypatch.setattr(pipe, "_vae_encode", lambda x: (seen.append(x.clone()), encode(x))[1])
    g = torch.Generator().manual_seed(0)
    end = pipe.encode_reference(source, 5, "end", g)
    pipe.encode_reference(source, 5, "start", g)
    assert torch.equal(seen[0], source[4:].permute(3, 0, 1, 2)[None] * 2 - 1)
    assert torch.equal(seen[1], source[:5].permute(3, 0, 1, 2)[None] * 2 - 1)
    assert end.shape == (1, 2, 16, H // 8, W // 8)
    pipe.encode_reference(source, 10, "start", g)
    assert seen[2].shape[2] == 9
    # a call reports the clamped count in its notes
    assert any("used all 9" in n for n in run_output(pipe, inputs, prompt="a dog", num_reference_frames=10).notes)


def test_all_hole_render_gives_zero_inpaint_latents(pipe, inputs):
    _, render, hole = inputs
    zeros = pipe.inpaint_latents(render, torch.ones_like(hole))
    assert zeros.shape == (1, 3, 17, H // 8, W // 8) and not zeros.any()


# ------------------------------------------------------------------ end to end


def test_output_contract_and_determinism(pipe, inputs, baseline):
    assert baseline.shape == (T, H, W, 3) and baseline.dtype == torch.float32
    assert baseline.min() >= 0 and baseline.max() <= 1 and baseline.std() > 1e-3
    assert torch.equal(run(pipe, inputs, prompt="a cat"), baseline)


def test_every_conditioning_input_changes_the_output(pipe, inputs, baseline):
    source, render, hole = inputs
    first_source = source.clone()
    first_source[:5] = 1 - first_source[:5]
    covered_render = render.clone()
    covered_render[hole < 0.5] = 1 - covered_render[hole < 0.5]
    other_hole = hole.clone()
    other_hole[:, 8:, 20:] = 1.0
    shape = (1, 2, 16, H // 8, W // 8)
    variants = {
        "source (reference frames)": dict(source=first_source),
        "render (covered pixels)": dict(render=covered_render),
        "hole_mask": dict(hole_mask=other_hole),
        "prompt": dict(prompt="a red car at night"),
        "negative_prompt": dict(negative_prompt="blurry"),
        "seed": dict(seed=1),
        "latents": dict(latents=torch.randn(1, 3, 16, H // 8, W // 8)),
        "reference_latents": dict(reference_latents=torch.randn(shape)),
        "guidance_scale": dict(guidance_scale=3.0),
        "noise_aug_strength": dict(noise_aug_strength=0.5),
        "reference_from": dict(reference_from="end"),
    }
    for name, change in variants.items():
        change = dict(change)
        change.setdefault("prompt", "a cat")
        out = run(pipe, inputs, seed=change.pop("seed", 0), **change)
        assert (out - baseline).abs().max() > 1e-4, name


def test_frames_outside_the_reference_window_do_not_matter(pipe, inputs, baseline):
    source = inputs[0].clone()
    source[5:] = 0.0  # only the first 5 are reference frames
    assert torch.equal(run(pipe, inputs, prompt="a cat", source=source), baseline)


def test_given_latents_are_the_initial_noise(pipe, inputs):
    shape = (1, 3, 16, H // 8, W // 8)
    generator = torch.Generator().manual_seed(4)
    noise = torch.randn(shape, generator=generator)  # the first draw, as in the official pipeline
    reference = pipe.encode_reference(inputs[0], 5, "start", generator)  # then the reference sample
    drawn = run(pipe, inputs, seed=4, prompt="a cat", noise_aug_strength=0.0)
    given = run(pipe, inputs, seed=99, prompt="a cat", noise_aug_strength=0.0, latents=noise,
                reference_latents=reference)
    assert torch.allclose(drawn, given, atol=1e-6)


def test_prompt_embeds_replace_the_text_encoder(pipe, inputs, baseline):
    text, negative = pipe.build_prompts("a cat", None)
    positive, negative_embeds = pipe.encode_text([text]), pipe.encode_text([negative])
    out = run(pipe, inputs, prompt_embeds=positive[0], negative_prompt_embeds=negative_embeds)
    assert torch.allclose(out, baseline, atol=1e-6)
    with pytest.raises(TrajCrafterError, match="prompt_embeds"):
        run(pipe, inputs, prompt="a cat", prompt_embeds=positive)
    with pytest.raises(TrajCrafterError, match="width"):
        run(pipe, inputs, prompt_embeds=torch.zeros(1, 226, 7))


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("frames, height, width, match", [
    (13, 32, 32, "8m\\+1"), (10, 32, 32, "8m\\+1"), (9, 40, 32, "height is 40.*multiple of 16"),
    (9, 32, 24, "width is 24"),
])
def test_frame_count_and_size_errors(pipe, frames, height, width, match):
    video = torch.rand(frames, height, width, 3)
    with pytest.raises(TrajCrafterError, match=match) as info:
        pipe(video, video, torch.zeros(frames, height, width))
    assert "shape_policy='pad'" in str(info.value)  # the message names the way out
    with pytest.raises(TrajCrafterError, match="shape_policy must be one of error, pad"):
        pipe(video, video, torch.zeros(frames, height, width), shape_policy="crop")


# ------------------------------------------------------------------ shape_policy="pad"


def test_supported_geometry_rounds_up_to_8m_plus_1_and_multiples_of_16():
    assert supported_video_geometry(49, 384, 672) == (49, 384, 672)  # the official geometry is kept
    assert supported_video_geometry(45, 384, 672) == (49, 384, 672)  # 4k+1 with 12 (even) latents
    assert supported_video_geometry(1, 16, 16) == (1, 16, 16)
    assert supported_video_geometry(2, 8, 17) == (9, 16, 32)
    assert supported_video_geometry(50, 400, 660) == (57, 400, 672)


def _hand_padded(x: torch.Tensor, frames: int, width: int) -> torch.Tensor:
    """Pad by hand: repeat the last frame, then the rightmost column (height is already fine)."""
    x = torch.cat([x] + [x[-1:]] * (frames - x.shape[0]))
    right = x[:, :, -1:]
    return torch.cat([x] + [right] * (width - x.shape[2]), dim=2)


def test_pad_policy_pads_with_copies_samples_and_trims_back(pipe, inputs, monkeypatch):
    # 6 frames (not 8m+1) of 16x24 (width not a multiple of 16) -> the model runs on 9 x 16x32
    source, render, hole = (x[:6, :, :24].clone() for x in inputs)
    seen = {}
    inpaint, reference = pipe.inpaint_latents, pipe.encode_reference_frames
    monkeypatch.setattr(pipe, "inpaint_latents", lambda r, h, *a, **k: (seen.update(render=r, hole=h), inpaint(r, h, *a, **k))[1])
    monkeypatch.setattr(pipe, "encode_reference_frames", lambda s, *a, **k: (seen.update(reference=s), reference(s, *a, **k))[1])
    result = run_output(pipe, (source, render, hole), prompt="a cat", shape_policy="pad")
    monkeypatch.undo()
    out = result.frames
    assert out.shape == (6, 16, 24, 3) and out.dtype == torch.float32
    notes = " ".join(result.notes)
    assert "6 frames padded to 9" in notes and "16x24 pixels padded to 16x32" in notes and "trimmed back to 6" in notes
    expected_render, expected_hole = _hand_padded(render, 9, 32), _hand_padded(hole, 9, 32)
    assert torch.equal(seen["render"], expected_render) and torch.equal(seen["hole"], expected_hole)
    assert torch.equal(seen["reference"], _hand_padded(source[:5], 5, 32))  # reference frames stay real frames
    # the same as sampling the hand-padded 9-frame video (same seed) and cutting the result
    explicit = run(pipe, (_hand_padded(source, 9, 32), expected_render, expected_hole), prompt="a cat")
    assert explicit.shape == (9, 16, 32, 3)
    assert torch.allclose(out, explicit[:6, :, :24], atol=1e-6)


def test_pad_policy_leaves_supported_geometry_alone(pipe, inputs, baseline):
    out = run_output(pipe, inputs, prompt="a cat", shape_policy="pad")
    assert torch.equal(out.frames, baseline) and not any("shape_policy" in n for n in out.notes)


def test_input_errors_name_the_input(pipe, inputs):
    source, render, hole = inputs
    bad = render.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(TrajCrafterError, match="render contains 1 NaN"):
        run(pipe, inputs, render=bad)
    with pytest.raises(TrajCrafterError, match="hole_mask contains"):
        run(pipe, inputs, hole_mask=hole.masked_fill(hole > 0, float("inf")))
    with pytest.raises(TrajCrafterError, match="render is .* but source is"):
        run(pipe, inputs, source=torch.rand(17, H, W, 3))
    with pytest.raises(TrajCrafterError, match="hole_mask is"):
        run(pipe, inputs, hole_mask=hole[:5])
    with pytest.raises(TrajCrafterError, match="latents is \\[1, 2, 16, 4, 4\\]"):
        run(pipe, inputs, latents=torch.zeros(1, 2, 16, 4, 4))
    with pytest.raises(TrajCrafterError, match="reference_latents"):
        run(pipe, inputs, reference_latents=torch.zeros(1, 2, 8, 4, 4))
    with pytest.raises(TrajCrafterError, match="reference_latents contains"):
        run(pipe, inputs, reference_latents=torch.full((1, 2, 16, 4, 4), float("nan")))
    with pytest.raises(TrajCrafterError, match="reference_from"):
        run(pipe, inputs, reference_from="middle")
    with pytest.raises(TrajCrafterError, match="num_inference_steps"):
        run(pipe, inputs, num_inference_steps=0)
    with pytest.raises(TrajCrafterError, match="source must have shape"):
        run(pipe, inputs, source=source[..., 0])
