"""The whole recipe at toy scale on CPU in about a minute: tiny random models, synthetic data,
cached latents, both stages with validation, a LoRA fine-tune, exports, generation. A smoke
test of an installation and a worked example of the command lines (printed as it goes).

    python -m training.smoke runs/smoke

Steps: tiny base + transformer folders in the official layouts → double-reprojection shards and
multi-view triplet shards from synthetic scenes (two jobs each, ``--shard i --num-shards 2``),
plus one held-out scene of each kind → ``prepare_latents`` (encoded shards: latents only) →
stage 1 (data mix 2:1, validation loss and an mp4 every step) → stage 2 from stage 1's export →
a rank-4 LoRA fine-tune of stage 2's export (adapter exported alone) → the sampler loads the
stage-2 export, with and without the LoRA, and generates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch


def _write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(module, argv) -> None:
    print("$ python -m", module.__name__, " ".join(argv))
    if module.main(argv) != 0:
        raise SystemExit(f"{module.__name__} failed")


def _stage(name: str, common: dict, **sections) -> dict:
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in common.items()}
    for key, value in sections.items():
        cfg[key] = dict(cfg.get(key, {}), **value) if isinstance(value, dict) else value
    cfg["output"] = dict(cfg["output"], dir=str(Path(common["output"]["dir"]) / name))
    return cfg


def run(out_dir: str | Path, num_frames: int = 9, height: int = 32, width: int = 48, steps: int = 3) -> Dict:
    """Run the toy recipe under ``out_dir``; returns the paths it made and the generated videos."""
    from trajcrafter_core.fixtures import save_tiny_checkpoints
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    from . import prepare_double_reprojection, prepare_latents, prepare_triplets, train
    from .shards import iter_shard

    out = Path(out_dir)
    models = save_tiny_checkpoints(out / "models")
    raw, encoded = out / "data" / "raw", out / "data" / "encoded"
    # renders at twice the training size, then resized to it, as inference does (576x1024 -> 384x672)
    geometry = ["--num-frames", str(num_frames), "--height", str(height), "--width", str(width),
                "--render-long-side", str(2 * max(height, width))]
    triplet_args = ["--max-offset", "10", "--min-coverage", "0.2"]
    for job in range(2):
        shard = ["--shard", str(job), "--num-shards", "2"]
        _run(prepare_double_reprojection, ["--synthetic", "4", "--out-dir", str(raw / "dr"), *geometry, *shard])
        _run(prepare_triplets, ["--synthetic", "2", "--out-dir", str(raw / "mv"), *triplet_args, *geometry, *shard])
    # held out: other scenes (seeds) than the training ones
    _run(prepare_double_reprojection, ["--synthetic", "1", "--seed", "100", "--prefix", "val-dr",
                                       "--out-dir", str(raw / "val"), *geometry])
    _run(prepare_triplets, ["--synthetic", "1", "--seed", "100", "--prefix", "val-mv", "--out-dir", str(raw / "val"),
                            *triplet_args, *geometry])
    reference_frames = min(10, num_frames)
    for part in ("dr", "mv", "val"):
        _run(prepare_latents, ["--shards", str(raw / part / "*.tar"), "--out-dir", str(encoded / part),
                               "--base-dir", str(models["base"]), "--transformer-dir", str(models["transformer"]),
                               "--reference-frames", str(reference_frames), "--dtype", "fp32", "--device", "cpu"])

    base = {"base_dir": str(models["base"]), "empty_prompt_embeds": str(encoded / "dr" / "empty_prompt.safetensors")}
    common = {
        "data": {"shards": [str(encoded / "dr" / "*.tar"), str(encoded / "mv" / "*.tar")],
                 "num_frames": num_frames, "height": height, "width": width, "batch_size": 2,
                 "reference_frames": reference_frames},
        "train": {"max_steps": steps, "mixed_precision": "no", "gradient_checkpointing": True, "seed": 0},
        "validation": {"shards": [str(encoded / "val" / "*.tar")], "every": steps, "loss_samples": 2, "videos": 1,
                       "num_inference_steps": 2, "guidance_scale": 6.0},
        "output": {"dir": str(out), "checkpoint_every": steps, "export_dtype": "fp32", "progress_bar": False},
    }
    stage1 = _stage("stage1", common, stage=1, model=dict(base, transformer_dir=str(models["transformer"])),
                    optim={"lr": 1e-4}, data={"mix": {"double_reprojection": 2, "triplet": 1}})
    _run(train, ["--config", str(_write_yaml(out / "stage1.yaml", stage1))])
    triplets_only = {"shards": [str(encoded / "mv" / "*.tar")], "kinds": ["triplet"], "batch_size": 1}
    stage2 = _stage("stage2", common, stage=2, model=dict(base, transformer_dir=str(out / "stage1" / "export")),
                    optim={"lr": 2e-5}, data=triplets_only)
    _run(train, ["--config", str(_write_yaml(out / "stage2.yaml", stage2))])
    lora = _stage("lora", common, stage=2, model=dict(base, transformer_dir=str(out / "stage2" / "export")),
                  optim={"lr": 1e-2, "weight_decay": 0.0}, data=triplets_only,
                  lora={"enabled": True, "rank": 4, "alpha": 4.0}, validation={"every": 0})
    _run(train, ["--config", str(_write_yaml(out / "lora.yaml", lora))])

    adapter = out / "lora" / "lora" / "pytorch_lora_weights.safetensors"
    full = out / "lora" / "export" / "diffusion_pytorch_model.safetensors"
    ratio = adapter.stat().st_size / full.stat().st_size
    print(f"LoRA adapter {adapter.stat().st_size:,} bytes = {ratio:.2%} of the merged export "
          f"({full.stat().st_size:,} bytes; tiny model, rank 4)")

    sample = next(iter_shard(sorted((raw / "mv").glob("*.tar"))[0]))
    conditions = (sample.video["reference"].float() / 255, sample.video["render"].float() / 255,
                  sample.video["mask"].float())
    videos = {}
    for name, extra in (("stage2", {}), ("stage2+lora", {"lora": adapter.parent})):
        pipe = TrajectoryCrafterPipeline.from_pretrained(models["base"], out / "stage2" / "export", dtype="fp32",
                                                         device="cpu", **extra)
        videos[name] = pipe(*conditions, prompt=sample.prompt, num_inference_steps=2,
                            generator=torch.Generator().manual_seed(0), num_reference_frames=reference_frames).frames
        print(f"generated {tuple(videos[name].shape)} with the {name} weights")
    validation_videos = sorted((out / "stage1" / "validation").rglob("*.mp4"))
    print(f"validation videos: {', '.join(str(p) for p in validation_videos)}")
    return {"models": models, "data": out / "data", "raw": raw, "encoded": encoded, "stage1": out / "stage1",
            "stage2": out / "stage2", "lora_run": out / "lora", "export": out / "stage2" / "export",
            "lora": adapter, "lora_ratio": ratio, "validation_videos": validation_videos,
            "video": videos["stage2"], "video_lora": videos["stage2+lora"]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.smoke", description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", help="folder for models, data, runs (created)")
    args = p.parse_args(argv)
    run(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
