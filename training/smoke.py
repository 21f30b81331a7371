"""The whole recipe at toy scale on CPU in seconds: tiny random models, synthetic data, both
stages, export, generation. A smoke test of an installation and a worked example of the
command lines (printed as it goes).

    python -m training.smoke runs/smoke

Steps: tiny base + transformer folders in the official layouts → double-reprojection shards and
multi-view triplet shards from synthetic scenes (two jobs each, ``--shard i --num-shards 2``) →
stage 1 → stage 2 from stage 1's export → the sampler loads the export and generates.
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


def run(out_dir: str | Path, num_frames: int = 9, height: int = 32, width: int = 48, steps: int = 3) -> Dict:
    """Run the toy recipe under ``out_dir``; returns the paths it made and the generated video."""
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    from . import prepare_double_reprojection, prepare_triplets, train
    from .shards import iter_shard

    out = Path(out_dir)
    models = save_tiny_checkpoints(out / "models")
    # renders at twice the training size, then resized to it, as inference does (576x1024 -> 384x672)
    geometry = ["--num-frames", str(num_frames), "--height", str(height), "--width", str(width),
                "--render-long-side", str(2 * max(height, width))]
    for job in range(2):
        shard = ["--shard", str(job), "--num-shards", "2"]
        _run(prepare_double_reprojection, ["--synthetic", "4", "--out-dir", str(out / "data" / "dr"), *geometry, *shard])
        _run(prepare_triplets, ["--synthetic", "2", "--out-dir", str(out / "data" / "mv"), "--max-offset", "10",
                                "--min-coverage", "0.2", *geometry, *shard])
    common = {
        "data": {"shards": [str(out / "data" / "dr" / "*.tar"), str(out / "data" / "mv" / "*.tar")],
                 "num_frames": num_frames, "height": height, "width": width, "batch_size": 2,
                 "reference_frames": min(10, num_frames)},
        "train": {"max_steps": steps, "mixed_precision": "no", "gradient_checkpointing": True, "seed": 0},
        "output": {"checkpoint_every": steps, "export_dtype": "fp32", "progress_bar": False},
    }
    stage1 = {"stage": 1, "model": {"base_dir": str(models["base"]), "transformer_dir": str(models["transformer"])},
              "optim": {"lr": 1e-4}, **common}
    stage1["output"] = dict(common["output"], dir=str(out / "stage1"))
    _run(train, ["--config", str(_write_yaml(out / "stage1.yaml", stage1))])
    stage2 = {"stage": 2, "model": {"base_dir": str(models["base"]), "transformer_dir": str(out / "stage1" / "export")},
              "optim": {"lr": 2e-5}, **common}
    stage2["data"] = dict(common["data"], kinds=["triplet"], batch_size=1)
    stage2["output"] = dict(common["output"], dir=str(out / "stage2"))
    _run(train, ["--config", str(_write_yaml(out / "stage2.yaml", stage2))])

    pipe = TrajectoryCrafterPipeline.from_pretrained(models["base"], out / "stage2" / "export", dtype="fp32", device="cpu")
    sample = next(iter_shard(sorted((out / "data" / "mv").glob("*.tar"))[0]))
    video = pipe(sample.video["reference"].float() / 255, sample.video["render"].float() / 255,
                 sample.video["mask"].float(), prompt=sample.prompt, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0), num_reference_frames=min(10, num_frames)).frames
    print(f"generated {tuple(video.shape)} from the stage-2 export")
    return {"models": models, "data": out / "data", "stage1": out / "stage1", "stage2": out / "stage2",
            "export": out / "stage2" / "export", "video": video}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.smoke", description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", help="folder for models, data, runs (created)")
    args = p.parse_args(argv)
    run(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
