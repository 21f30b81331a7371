"""Validation during training: a held-out loss and videos sampled from fixed conditions.

Both read the held-out shards (``validation.shards``) the way training reads its shards: cached
latents when the run trains from them, videos (encoded by the frozen VAE/T5) otherwise.

- **Held-out loss**: the first ``loss_samples`` samples (file order), each with its own fixed
  seed (``validation.seed + i``) for the posterior sample, timestep and noise, no CFG dropout —
  the same numbers at every validation, so the curve moves only with the weights. The draws run
  in a forked RNG: training's random stream (and with it exact resume) is untouched.
- **Videos**: the first ``videos`` samples, sampled by the inference pipeline's own ``denoise`` /
  ``decode_latents`` with the model being trained (``num_inference_steps``, ``guidance_scale``,
  a fixed generator; negative = the empty prompt, as text dropout trains it; stage 1 skips the
  reference stream as stage-1 training does), written as
  ``<output.dir>/validation/step-XXXXXXXX/<key>.mp4``: condition | sample | target side by side.
  From cached latents the condition and target panels are decoded from their latents.

Work is split round-robin over the processes and padded so every process runs the model the
same number of times (FSDP runs collectives in every forward); only the first occurrence of a
sample counts and is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch

from trajcrafter_core.errors import TrajCrafterError

from .data import collate_samples
from .inputs import build_step_inputs, cast_inputs
from .shards import SampleRef, read_sample

VIDEO_FPS = 8


@dataclass
class ValidationResult:
    loss: Optional[float]
    videos: List[Path]


def _fork_rng(device: torch.device):
    cuda = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)


def _my_indices(count: int, rank: int, world: int) -> List[int]:
    """Round-robin share of ``count`` items, padded to the same length on every process; a
    padded slot is ``-1 - i`` (item ``i`` again, not counted)."""
    slots = math.ceil(count / world) * world if count else 0
    return [j if j < count else -1 - (j % count) for j in range(rank, slots, world)]


class Validator:
    """Runs validation for one training run (module docstring).

    ``parts``/``objective``/``rotary_fn``: the training step's; ``cached``: the run trains from
    cached latents; ``pipe_factory(transformer) -> pipeline`` builds a sampler around the model
    being trained (VAE + inference scheduler; the VAE is loaded once, lazily).
    """

    def __init__(self, cfg, refs: List[SampleRef], *, parts, objective, model_config: Dict, rotary_fn,
                 cached: bool, accelerator, input_dtype: torch.dtype, pipe_factory, out_dir: Path):
        self.v = cfg.validation
        self.cfg = cfg
        self.loss_refs = refs[: self.v.loss_samples]
        self.video_refs = refs[: self.v.videos]
        self.parts, self.objective, self.model_config, self.rotary_fn = parts, objective, model_config, rotary_fn
        self.cached = cached
        self.accelerator = accelerator
        self.input_dtype = input_dtype
        self.pipe_factory = pipe_factory
        self.out_dir = Path(out_dir)
        if self.video_refs and self.v.guidance_scale > 1 and parts.empty_prompt is None:
            raise TrajCrafterError("validation videos with guidance_scale > 1 need the empty prompt's embeddings: "
                                   "set model.empty_prompt_embeds (prepare_latents.py writes it).")

    def due(self, step: int, last: bool) -> bool:
        return bool(self.v.every) and (step % self.v.every == 0 or last)

    def _batch(self, ref: SampleRef) -> Dict:
        sample = read_sample(ref, with_latents=self.cached, with_video=not self.cached)
        return collate_samples([sample], *sample.geometry, with_latents=self.cached)

    # ------------------------------------------------------------------ held-out loss

    @torch.no_grad()
    def loss(self, model) -> Optional[float]:
        """Mean loss over the held-out samples (every process returns the same number)."""
        if not self.loss_refs:
            return None
        acc = self.accelerator
        total = torch.zeros(2, device=acc.device)
        cfg = self.cfg
        for j in _my_indices(len(self.loss_refs), acc.process_index, acc.num_processes):
            i = j if j >= 0 else -1 - j
            batch = self._batch(self.loss_refs[i])
            with _fork_rng(acc.device):
                torch.manual_seed(self.v.seed + i)
                inputs, target = build_step_inputs(
                    batch, self.parts, self.model_config, self.objective, uses_reference=cfg.uses_reference,
                    reference_frames=cfg.data.reference_frames,
                    noise_aug=(cfg.train.noise_aug_mean, cfg.train.noise_aug_std), cfg_dropout=(0.0, 0.0, 0.0),
                    device=acc.device, rotary_fn=self.rotary_fn)
            with acc.autocast():
                prediction = model(**cast_inputs(inputs, self.input_dtype), return_dict=False)[0]
            if j >= 0:
                total += torch.stack([self.objective.loss(prediction, target).float(), torch.ones((), device=acc.device)])
        total = acc.reduce(total, "sum")
        return float(total[0] / total[1])

    # ------------------------------------------------------------------ videos

    def _conditions(self, pipe, batch: Dict, generator: torch.Generator):
        """``(prompt_embeds [1,L,D], inpaint [1,F,1+C,h,w], cross or None, condition panel,
        target panel)`` of a one-sample batch."""
        from trajcrafter_core.video import paint_holes

        stage2 = self.cfg.uses_reference
        if self.cached:
            lat = {k: v.to(pipe.device) for k, v in batch["latents"].items()}
            sf = lat["scaling_factor"].float().view(-1, 1, 1, 1, 1)
            prompt = lat["prompt_embeds"]
            inpaint = lat["inpaint_latents"]
            cross = (lat["reference_mean"].float() * sf) if stage2 else None
            condition = pipe.decode_latents(inpaint[:, :, 1:].to(pipe.dtype))
            target = pipe.decode_latents((lat["target_mean"].float() * sf).to(pipe.dtype))
        else:
            enc = self.parts.pipe
            to01 = lambda x: x[0].float() / 255.0  # noqa: E731
            prompt = enc.encode_text(batch["prompt"])
            inpaint = enc.inpaint_latents(to01(batch["render"]).to(enc.device), batch["mask"][0].float().to(enc.device),
                                          generator=generator)
            cross = (enc.encode_reference(to01(batch["reference"]).to(enc.device), self.cfg.data.reference_frames,
                                          generator=generator) if stage2 else None)
            condition = paint_holes(to01(batch["render"]), batch["mask"][0].float())
            target = to01(batch["target"])
        return prompt, inpaint, cross, condition, target

    @torch.no_grad()
    def videos(self, model, step: int) -> List[Path]:
        """Sample the fixed conditions; returns the mp4 files this process wrote."""
        from trajcrafter_core.video import side_by_side, write_video

        if not self.video_refs:
            return []
        acc = self.accelerator
        pipe = self.pipe_factory(model)
        folder = self.out_dir / f"step-{step:08d}"
        written = []
        for j in _my_indices(len(self.video_refs), acc.process_index, acc.num_processes):
            i = j if j >= 0 else -1 - j
            batch = self._batch(self.video_refs[i])
            generator = torch.Generator(pipe.device).manual_seed(self.v.seed + i)
            with acc.autocast():
                prompt, inpaint, cross, condition, target = self._conditions(pipe, batch, generator)
                do_cfg = self.v.guidance_scale > 1
                text = prompt.to(pipe.device, pipe.dtype).reshape(1, *prompt.shape[-2:])
                if do_cfg:
                    empty = self.parts.empty_prompt.to(pipe.device, pipe.dtype)[None]
                    text = torch.cat([empty, text])
                shape = (1, inpaint.shape[1], pipe.latent_channels, *inpaint.shape[-2:])
                start = pipe.initial_latents(shape, generator)
                height, width = (s * pipe.vae_scale_factor_spatial for s in inpaint.shape[-2:])
                final = pipe.denoise(start, text, inpaint, cross, height=height, width=width,
                                     num_inference_steps=self.v.num_inference_steps,
                                     guidance_scale=self.v.guidance_scale, generator=generator)
                frames = pipe.decode_latents(final)
            if j >= 0:
                # the official chunked VAE decodes extra frames unless T = 8m + 1: keep the clip's T
                T = self.cfg.data.num_frames
                path = folder / f"{batch['key'][0]}.mp4"
                write_video(path, side_by_side(condition[:T].cpu(), frames[:T], target[:T].cpu()), fps=VIDEO_FPS)
                written.append(path)
        return written

    def run(self, model, step: int) -> ValidationResult:
        unwrapped = self.accelerator.unwrap_model(model)
        was_training = unwrapped.training
        unwrapped.eval()
        try:
            loss = self.loss(model)
            videos = self.videos(model, step)
        finally:
            unwrapped.train(was_training)
        return ValidationResult(loss, videos)
