"""Preparation drivers over a manifest: depth from the pack's estimators, captions from a
transformers image-to-text model or from the manifest, then the double-reprojection job on the
result. Tiny random-init models built here in their official layouts (Depth Anything V2, BLIP);
expectations come from running those models directly on the same frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_models import one_thread  # noqa: F401 (autouse fixture)

T, H, W = 9, 32, 48


@pytest.fixture
def clip_manifest(tmp_path):
    from trajcrafter_core.synthetic import example_clip
    from trajcrafter_core.video import write_video

    clip = example_clip(num_frames=T, height=H, width=W)
    (tmp_path / "clips").mkdir()
    write_video(tmp_path / "clips" / "room.mp4", clip["frames"], fps=8, crf=10)
    write_video(tmp_path / "clips" / "other.mp4", clip["frames"].flip(2), fps=8, crf=10)
    manifest = tmp_path / "videos.jsonl"
    manifest.write_text(json.dumps({"video": "clips/room.mp4", "prompt": "a room with spheres"}) + "\n"
                        + json.dumps({"video": "clips/other.mp4", "id": "other"}) + "\n")
    return manifest


def test_depth_driver_runs_the_estimator_and_feeds_the_preparation_job(tmp_path, clip_manifest, monkeypatch):
    from trajcrafter_core.depth.choice import depth_for_frames, load_estimator
    from trajcrafter_core.depth.tiny import build_tiny_depth_anything
    from trajcrafter_core.specs import DepthSpec
    from trajcrafter_core.video import read_video
    from training import estimate_depth, prepare_double_reprojection
    from training.shards import iter_shard

    model = build_tiny_depth_anything(tmp_path / "depth_anything")
    out_manifest = tmp_path / "annotated" / "videos_depth.jsonl"
    args = ["--manifest", str(clip_manifest), "--out-dir", str(tmp_path / "depth"), "--out-manifest",
            str(out_manifest), "--depth-anything", str(model), "--device", "cpu", "--max-side", "64"]
    assert estimate_depth.main(args) == 0
    lines = [json.loads(line) for line in out_manifest.read_text().splitlines()]
    assert [line.get("prompt") for line in lines] == ["a room with spheres", None]
    depth_file = (out_manifest.parent / lines[0]["depth"]).resolve()
    assert depth_file == (tmp_path / "depth" / "room.npy").resolve()
    depth = np.load(depth_file)
    frames = read_video(tmp_path / "clips" / "room.mp4", max_side=64, size_multiple=1).frames
    spec = DepthSpec("depth_anything_v2", str(model), device="cpu")
    expected = depth_for_frames(frames, load_estimator(spec), **spec.estimate_options())
    assert depth.dtype == np.float16 and depth.shape == (T, H, W) and (depth > 0).all()
    assert np.allclose(depth.astype(np.float32), expected.numpy(), rtol=2e-3)

    # a re-run keeps what exists and estimates nothing
    from trajcrafter_core.depth import choice

    monkeypatch.setattr(choice, "depth_for_frames", lambda *a, **k: pytest.fail("estimated again"))
    again = tmp_path / "again.jsonl"
    assert estimate_depth.main(["--manifest", str(out_manifest), "--out-dir", str(tmp_path / "depth"),
                                "--out-manifest", str(again), "--depth-anything", str(model), "--device", "cpu"]) == 0
    assert [json.loads(line)["depth"] for line in again.read_text().splitlines()] == [
        str(Path("depth") / "room.npy"), str(Path("depth") / "other.npy")]

    # the annotated manifest is the preparation job's input as it is
    assert prepare_double_reprojection.main(["--manifest", str(out_manifest), "--out-dir", str(tmp_path / "shards"),
                                             "--num-frames", "5", "--height", "32", "--width", "48",
                                             "--render-long-side", "0"]) == 0
    samples = [s for p in sorted((tmp_path / "shards").glob("*.tar")) for s in iter_shard(p)]
    assert [s.prompt for s in samples] == ["a room with spheres", ""]


def _tiny_blip(folder: Path) -> Path:
    """A random-init BLIP captioner (transformers layout: config, safetensors, processor, tokenizer)."""
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor
    from transformers.models.blip import BlipImageProcessorPil

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "room", "with", "red", "blue", "walls", "box",
             "sphere", "dog", "on", "the", "beach", "and", "green", "light"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)})
    processor = BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    config = BlipConfig(text_config=dict(small, vocab_size=len(words), max_position_embeddings=64, bos_token_id=2,
                                         sep_token_id=3, pad_token_id=0),
                        vision_config=dict(small, image_size=32, patch_size=16), projection_dim=32)
    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_caption_driver_uses_the_manifest_or_the_captioner(tmp_path, clip_manifest, capsys):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from trajcrafter_core.video import read_video
    from training import caption_videos

    out = tmp_path / "captioned.jsonl"
    # without a captioner: manifest prompts only; a line without one is named
    assert caption_videos.main(["--manifest", str(clip_manifest), "--out-manifest", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{clip_manifest}:2" in err and "no prompt in the manifest and no --captioner" in err
    assert caption_videos.main(["--manifest", str(clip_manifest), "--out-manifest", str(out), "--on-error",
                                "skip"]) == 0
    assert [json.loads(line)["prompt"] for line in out.read_text().splitlines()] == ["a room with spheres"]

    blip = _tiny_blip(tmp_path / "blip")
    assert caption_videos.main(["--manifest", str(clip_manifest), "--out-manifest", str(out), "--captioner", str(blip),
                                "--device", "cpu", "--max-new-tokens", "6"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["prompt"] == "a room with spheres" and lines[1]["id"] == "other"
    # the caption is what the model says about the clip's middle frame
    frame = read_video(tmp_path / "clips" / "other.mp4", size_multiple=1).frames[T // 2]
    processor, model = AutoProcessor.from_pretrained(blip), AutoModelForImageTextToText.from_pretrained(blip).eval()
    inputs = processor(images=Image.fromarray((frame * 255).round().byte().numpy()), return_tensors="pt")
    with torch.no_grad():
        expected = processor.batch_decode(model.generate(**inputs, max_new_tokens=6), skip_special_tokens=True)[0]
    assert lines[1]["prompt"] == expected.strip() and lines[1]["prompt"]
