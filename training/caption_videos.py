"""Caption every video of a manifest: the prompts of the training samples.

Captions come from the manifest (a line's ``"prompt"``, e.g. OpenVid-1M's captions) or from a
transformers image-to-text model of your choice (``--captioner DIR``: any folder that
``AutoProcessor`` + ``AutoModelForImageTextToText`` load — BLIP, BLIP-2 as the official demo
uses, ...) run on one frame of each clip (``--frame``: the middle one by default), on a GPU when
present. Lines that have a prompt keep it unless ``--overwrite``; without ``--captioner`` every
line must have one.

    python -m training.caption_videos --manifest videos_depth.jsonl --out-manifest videos_ready.jsonl \\
        --captioner models/blip2-opt-2.7b --shard $I --num-shards $N

Output manifests as :mod:`training.manifests` writes them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import torch

from trajcrafter_core.errors import MissingFilesError, TrajCrafterError
from trajcrafter_core.official import DTYPE_NAMES

from .manifests import ManifestEntry, run_manifest_job

FRAMES = ("first", "middle", "last")


class Captioner:
    """A transformers image-to-text model: ``caption(image [H, W, 3] uint8) -> str``."""

    def __init__(self, folder: str, device: str = "auto", dtype: Optional[str] = None, max_new_tokens: int = 60,
                 prompt: str = ""):
        from pathlib import Path

        from transformers import AutoModelForImageTextToText, AutoProcessor

        if not (Path(folder) / "config.json").is_file():
            raise MissingFilesError(f"--captioner {folder}: no config.json; give a transformers image-to-text "
                                    f"model folder (e.g. Salesforce/blip2-opt-2.7b).")
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        from trajcrafter_core.depth.choice import torch_dtype as auto_dtype

        torch_dtype = auto_dtype(dtype if dtype in DTYPE_NAMES else None, self.device)
        try:
            self.processor = AutoProcessor.from_pretrained(folder)
            self.model = AutoModelForImageTextToText.from_pretrained(folder, torch_dtype=torch_dtype, use_safetensors=True)
        except (OSError, ValueError, KeyError) as exc:
            raise TrajCrafterError(f"--captioner {folder} cannot be loaded as an image-to-text model: {exc}") from None
        self.model.to(self.device).eval()
        self.dtype = torch_dtype
        self.max_new_tokens = max_new_tokens
        self.prompt = prompt

    @torch.no_grad()
    def caption(self, image) -> str:
        from PIL import Image

        kwargs = {"images": Image.fromarray(image.numpy()), "return_tensors": "pt"}
        if self.prompt:
            kwargs["text"] = self.prompt
        inputs = self.processor(**kwargs).to(self.device)
        inputs = {k: v.to(self.dtype) if v.is_floating_point() else v for k, v in inputs.items()}
        ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        if self.prompt and "input_ids" in inputs:  # decoder-only captioners echo the prompt
            ids = ids[:, inputs["input_ids"].shape[1]:] if ids.shape[1] > inputs["input_ids"].shape[1] else ids
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def clip_frame(video: str, which: str) -> torch.Tensor:
    """One frame ``uint8 [H, W, 3]`` of a video file (decoded frames; ``which`` in :data:`FRAMES`)."""
    from trajcrafter_core.video import read_video

    from .builders import decoded_frame_count

    if which == "first":
        index = 0
    else:
        count = decoded_frame_count(video)
        index = count // 2 if which == "middle" else count - 1
    frame = read_video(video, max_frames=1, skip_first=index, size_multiple=1).frames[0]
    return (frame * 255).round().to(torch.uint8)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.caption_videos", description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True)
    p.add_argument("--out-manifest", required=True)
    p.add_argument("--captioner", help="transformers image-to-text model folder; without it, prompts come from the "
                                       "manifest")
    p.add_argument("--frame", default="middle", choices=FRAMES, help="which frame of the clip is captioned")
    p.add_argument("--caption-prompt", default="", help="text prompt for captioners that take one")
    p.add_argument("--max-new-tokens", type=int, default=60)
    p.add_argument("--device", default="auto", help="auto (a GPU when present), cpu, cuda, ...")
    p.add_argument("--dtype", default=None, choices=["fp16", "bf16", "fp32"])
    p.add_argument("--overwrite", action="store_true", help="caption lines that already have a prompt too")
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--on-error", default="raise", choices=["raise", "skip"])
    args = p.parse_args(argv)
    try:
        from tqdm.auto import tqdm

        captioner = None
        if args.captioner:
            captioner = Captioner(args.captioner, args.device, args.dtype, args.max_new_tokens, args.caption_prompt)
        made = []

        def annotate(entry: ManifestEntry):
            values = dict(entry.values)
            if str(values.get("prompt", "")).strip() and not args.overwrite:
                return values
            if captioner is None:
                raise TrajCrafterError("no prompt in the manifest and no --captioner given to write one.")
            values["prompt"] = captioner.caption(clip_frame(values["video"], args.frame))
            made.append(entry.id)
            return values

        report = run_manifest_job(args.manifest, args.out_manifest, annotate, args.shard, args.num_shards,
                                  args.on_error, what="caption", progress=lambda xs: tqdm(xs, desc="caption"))
    except TrajCrafterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"captioned {len(made)} video(s); {report.written} line(s) in {report.out_manifest}; "
          f"skipped {len(report.skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
