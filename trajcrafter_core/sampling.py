"""Several camera paths (or windows) of one clip in one run of the sampler's stages.

:class:`~trajcrafter_core.pipeline.TrajectoryCrafterPipeline` samples one video per call. Here
the same public stages run for many at once, each giving what its own call would give:

- the text is encoded once (:meth:`SharedSampler.text`, the call's ``[negative; positive]``);
- each video draws its noise from a generator seeded like its own call, in the call's order
  (initial latents, the render's noise augmentation, the reference latents' posterior sample);
  the reference encoding is reused whenever the reference frames and the generator state before
  it are the same — for several camera paths of one clip that is once;
- the transformer denoises up to ``batch_size`` videos as one batch (``None``: all of them, and
  on a CUDA out-of-memory error the batch is halved); the classifier-free-guidance batch is
  ``[negative × B; positive × B]``. Batching needs a sampler whose steps draw no noise (all
  official ones but ``Euler A``); with one that does, videos run one at a time.

So each video equals its own pipeline call with the same seed, up to the last bits of batched
matrix products (checked to 1e-3 in ``tests/test_multi_path.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch

from .errors import TrajCrafterError
from .pipeline import pad_video, supported_video_geometry

logger = logging.getLogger(__name__)

__all__ = ["SampleJob", "SharedSampler", "steps_draw_noise"]

ProgressCallback = Callable[[int, int, torch.Tensor], None]


@dataclass
class SampleJob:
    """One video: ``render`` ``[T, H, W, 3]`` 0..1, ``hole`` ``[T, H, W]`` (1 = hole),
    ``reference`` ``[R, H, W, 3]`` (same ``H, W``)."""

    render: torch.Tensor
    hole: torch.Tensor
    reference: torch.Tensor


def steps_draw_noise(scheduler) -> bool:
    """True for samplers whose steps add fresh noise (ancestral / SDE), which a batch would draw
    differently from single runs."""
    name = type(scheduler).__name__
    algorithm = str(getattr(scheduler.config, "algorithm_type", ""))
    return "Ancestral" in name or "sde" in algorithm


class SharedSampler:
    """Sample many :class:`SampleJob` with one text encoding and shared reference encodings.

    ``pipe``: a loaded pipeline; ``prompt`` / ``negative_prompt`` as its call; the other
    arguments as :meth:`~trajcrafter_core.pipeline.TrajectoryCrafterPipeline.__call__`.
    ``callback(done, total, latents)`` counts denoising steps over every batch :meth:`sample`
    runs (``total`` from :meth:`expect`).
    """

    def __init__(self, pipe, *, prompt: str, negative_prompt: Optional[str], num_inference_steps: int,
                 guidance_scale: float, noise_aug_strength: float, batch_size: Optional[int] = None,
                 callback: Optional[ProgressCallback] = None):
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise TrajCrafterError(f"batch_size must be a whole number >= 1 (or None for all at once), got {batch_size!r}.")
        self.pipe = pipe
        self.steps = int(num_inference_steps)
        self.guidance = float(guidance_scale)
        self.noise_aug = float(noise_aug_strength)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.callback = callback
        self.notes: List[str] = []
        if self.batch_size != 1 and steps_draw_noise(pipe.scheduler):
            self.batch_size = 1
            self.note(f"{type(pipe.scheduler).__name__} adds noise at every step: videos are sampled one at a time "
                      f"so that each equals its own run.")
        self._done = 0
        self._total = 0
        self._references: list = []  # (frames, generator state before, latents, state after)
        self._text = self.text(prompt, negative_prompt)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            logger.info(text)

    # ------------------------------------------------------------------ shared encodings

    def text(self, prompt: str, negative_prompt: Optional[str]) -> torch.Tensor:
        """``[negative; positive]`` embeddings (the positive alone without guidance), encoded in
        one T5 batch ``[positive, negative]`` as the pipeline's call encodes them."""
        positive, negative = self.pipe.build_prompts(prompt, negative_prompt)
        if self.guidance > 1.0:
            encoded = self.pipe.encode_text([positive, negative])
            return torch.cat([encoded[1:2], encoded[0:1]])
        return self.pipe.encode_text([positive])

    def _reference_latents(self, reference: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        state = generator.get_state()
        for frames, before, latents, after in self._references:
            if torch.equal(before, state) and frames.shape == reference.shape and torch.equal(frames, reference):
                generator.set_state(after)
                return latents
        latents = self.pipe.encode_reference_frames(reference, generator)
        self._references.append((reference, state, latents, generator.get_state()))
        return latents

    # ------------------------------------------------------------------ sampling

    def batches(self, count: int) -> int:
        """How many denoising runs ``count`` videos of one shape take."""
        size = count if self.batch_size is None else min(self.batch_size, count)
        return -(-count // max(size, 1))

    def expect(self, runs: int) -> None:
        """Announce ``runs`` more denoising runs (for the progress total)."""
        self._total += runs * self.steps

    def sample(self, jobs: Sequence[SampleJob], seed: int) -> List[torch.Tensor]:
        """One video ``[T, H, W, 3]`` float32 0..1 (CPU) per job; all jobs have one geometry."""
        if not jobs:
            return []
        pipe = self.pipe
        frames, rows, cols = jobs[0].render.shape[:3]
        geometry = supported_video_geometry(frames, rows, cols)
        if geometry != (frames, rows, cols):
            self.note(f"windows of {frames} frames of {rows}x{cols} are padded to {geometry[0]} frames of "
                      f"{geometry[1]}x{geometry[2]} for the model (last frame / edges repeated) and trimmed back.")
        latent_shape = (1, *pipe.latent_size(*geometry))
        latent_shape = (1, latent_shape[1], pipe.latent_channels, latent_shape[2], latent_shape[3])
        prepared = []
        try:
            for job in jobs:
                if tuple(job.render.shape[:3]) != (frames, rows, cols):
                    raise TrajCrafterError("jobs sampled together must have one geometry.")
                render, hole = pad_video(job.render, *geometry), pad_video(job.hole, *geometry)
                reference = pad_video(job.reference, job.reference.shape[0], geometry[1], geometry[2])
                generator = torch.Generator("cpu").manual_seed(int(seed))
                start = pipe.initial_latents(latent_shape, generator)
                inpaint = pipe.inpaint_latents(render, hole, self.noise_aug, generator)
                cross = self._reference_latents(reference, generator)
                prepared.append((start, inpaint, cross, generator))
            out: List[torch.Tensor] = []
            self._denoise(prepared, geometry, out)
            return [video[:frames, :rows, :cols].contiguous() for video in out]
        finally:
            pipe._free_memory()

    def _denoise(self, prepared, geometry, out: List[torch.Tensor]) -> None:
        size = len(prepared) if self.batch_size is None else self.batch_size
        for first in range(0, len(prepared), size):
            part = prepared[first: first + size]
            try:
                final = self._denoise_batch(part, geometry)
            except torch.OutOfMemoryError:
                if len(part) == 1:
                    raise
                self.pipe._free_memory()
                half = (len(part) + 1) // 2
                self.batch_size = half
                self.note(f"out of memory with {len(part)} videos in one batch: continuing with {half}.")
                self._total += self.steps * (self.batches(len(part)) - 1)
                self._denoise(part, geometry, out)
                continue
            for i in range(final.shape[0]):
                out.append(self.pipe.decode_latents(final[i: i + 1]))

    def _denoise_batch(self, part, geometry) -> torch.Tensor:
        count = len(part)
        text = self._text
        if self.guidance > 1.0:
            text = torch.cat([text[:1].expand(count, -1, -1), text[1:].expand(count, -1, -1)])
        else:
            text = text.expand(count, -1, -1)
        done0 = self._done

        def progress(done: int, total: int, latents: torch.Tensor) -> None:
            self._done = done0 + done
            if self.callback is not None:
                self.callback(self._done, max(self._total, self._done), latents)

        return self.pipe.denoise(
            torch.cat([p[0] for p in part]), text, torch.cat([p[1] for p in part]), torch.cat([p[2] for p in part]),
            height=geometry[1], width=geometry[2], num_inference_steps=self.steps, guidance_scale=self.guidance,
            generator=part[0][3], callback=progress)
