"""The TrajectoryCrafter sampler: encode the conditions, denoise with CFG, decode.

Official semantics (the official ``models/pipeline_trajectorycrafter.py`` + ``demo.py``), restated:

- **Text**: T5, 226 tokens, padded, *no* attention mask. The positive prompt gets the official
  quality suffix; the default negative prompt is the official one. CFG batch = ``[negative, positive]``.
- **Masked render** → ``[B, F, 16, h, w]``: the render in ``[-1, 1]`` with holes set to ``-1``,
  noise-augmented (σ = 0.0563) outside the holes, VAE posterior **mean** × scaling factor.
- **Mask latent** → ``[B, F, 1, h, w]``: ``1 − hole`` resized to the latent grid with trilinear
  interpolation, frame 0 alone and the other frames together, × scaling factor.
- **Transformer input channels**: ``noise (16) | mask (1) | masked video (16)``.
- **Reference** (``cross_latents``): the first 10 source frames (last 10 for bullet time),
  VAE posterior **sample** × scaling factor.
- **VAE chunking** as the official ``autoencoder_magvit``: encode ``4 + T mod 4`` frames then
  groups of 4, decode ``2 + F mod 2`` latents then groups of 2.

All latents are frames-first ``[B, F, C, h, w]`` as in the official code. Every stage is a public
method so that it can be run, inspected or replaced on its own. Build the pipeline with
:meth:`TrajectoryCrafterPipeline.from_pretrained` (or :meth:`~TrajectoryCrafterPipeline.from_spec`);
a call returns a :class:`TrajectoryCrafterOutput` (frames and notes).
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from . import checkpoints
from .conventions import as_frames, as_mask, check_finite
from .errors import TrajCrafterError
from .lifecycle import ModelPlacement
from .memory import resolve_memory_options
from .official import NOISE_AUG_STRENGTH, OFFLOAD_MODES, REFERENCE_FRAMES, covered, is_hole
from .specs import ModelSpec

logger = logging.getLogger(__name__)

__all__ = [
    "TrajectoryCrafterPipeline",
    "TrajectoryCrafterOutput",
    "DEFAULT_NEGATIVE_PROMPT",
    "QUALITY_SUFFIX",
    "MAX_SEQUENCE_LENGTH",
    "resize_mask_to_latents",
    "reference_frame_indices",
    "check_video_geometry",
    "SHAPE_POLICIES",
    "supported_video_geometry",
    "pad_video",
]

#: ``--negative_prompt`` default of the official ``inference.py``.
DEFAULT_NEGATIVE_PROMPT = (
    "The video is not of a high quality, it has a low resolution. Watermark present in each frame. "
    "The background is solid. Strange body and strange trajectory. Distortion."
)
#: ``--refine_prompt`` of the official ``inference.py``, appended to every (captioned) prompt.
QUALITY_SUFFIX = (
    ". The video is of high quality, and the view is very clear. High quality, masterpiece, best "
    "quality, highres, ultra-detailed, fantastic."
)
MAX_SEQUENCE_LENGTH = 226
#: What the sampler does with a frame count that is not ``8m + 1`` or a side that is not a multiple
#: of 16: ``"error"`` raises (naming the counts that work); ``"pad"`` pads up to the next supported
#: geometry, samples, and trims the result back (reported in the output's ``notes``).
SHAPE_POLICIES = ("error", "pad")

ProgressCallback = Callable[[int, int, torch.Tensor], None]


@dataclass
class TrajectoryCrafterOutput:
    """What a pipeline call returns.

    - ``frames``: float32 ``[T, H, W, 3]`` in 0..1 on the CPU (the input's ``T, H, W``).
    - ``notes``: what the call changed on the way (padding, clamped reference count), one
      sentence each; also logged.
    """

    frames: torch.Tensor
    notes: List[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------------------------


def check_video_geometry(num_frames: int, height: int, width: int, name: str = "video") -> None:
    """Raise unless ``num_frames = 8m + 1`` and ``height``/``width`` are multiples of 16.

    The VAE maps ``4k + 1`` frames to ``k + 1`` latents, but its decoder (official chunking:
    first ``2 + F mod 2`` latents, then pairs) only gives back ``4k + 1`` frames when ``k + 1``
    is odd; with an even latent count it returns ``4k + 4`` frames (the official pipeline too).
    So the usable counts are 1, 9, 17, 25, 33, 41, 49 (native), ...
    """
    if num_frames < 1 or (num_frames - 1) % 8:
        lower = max(1, num_frames - (num_frames - 1) % 8)
        raise TrajCrafterError(
            f"{name} has {num_frames} frames; the model needs 8m+1 frames (1, 9, 17, 25, 33, 41, 49 "
            f"— 4k+1 with an odd latent count, or the VAE returns extra frames). Trim to {lower} or "
            f"pad to {lower + 8} frames before sampling, or pass shape_policy='pad' to have the last "
            f"frame repeated and the result trimmed back.")
    for label, size in (("height", height), ("width", width)):
        if size % 16 or size < 16:
            down, up = max(16, size - size % 16), size - size % 16 + 16
            raise TrajCrafterError(
                f"{name} {label} is {size} pixels; it must be a multiple of 16 (e.g. {down} or {up}). "
                f"Resize or crop the video first (the official size is 384x672), or pass "
                f"shape_policy='pad' to pad the edges and crop the result back.")


def supported_video_geometry(num_frames: int, height: int, width: int) -> Tuple[int, int, int]:
    """The smallest ``(frames, height, width)`` the model takes that is at least the given one:
    frames rounded up to ``8m + 1``, sides up to multiples of 16 (at least 16)."""
    def up16(size: int) -> int:
        return max(16, -(-size // 16) * 16)

    return num_frames + (-(num_frames - 1)) % 8, up16(height), up16(width)


def pad_video(x: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
    """Pad frames ``[T, H, W, C]`` or a mask ``[T, H, W]`` at the end of each axis.

    Time: the last frame is repeated up to ``num_frames``. Space: the bottom rows and right
    columns repeat the edge pixels (replicate padding) up to ``height`` x ``width``. Values are
    copied as they are (a mask stays a mask). Sizes below the input's are not allowed.
    """
    frames, rows, cols = x.shape[:3]
    if num_frames < frames or height < rows or width < cols:
        raise ValueError(f"pad_video cannot shrink {list(x.shape[:3])} to {[num_frames, height, width]}")
    if num_frames > frames:
        x = torch.cat([x, x[-1:].expand(num_frames - frames, *x.shape[1:])])
    if height > rows or width > cols:
        channels_first = x.permute(0, 3, 1, 2) if x.ndim == 4 else x[:, None]
        padded = F.pad(channels_first, (0, width - cols, 0, height - rows), mode="replicate")
        x = padded.permute(0, 2, 3, 1) if x.ndim == 4 else padded[:, 0]
    return x.contiguous()


def reference_frame_indices(num_frames: int, count: int, reference_from: str) -> List[int]:
    """Source frames used as reference: the first ``count`` (``"start"``) or last (``"end"``)."""
    if reference_from not in ("start", "end"):
        raise TrajCrafterError(
            f"reference_from must be 'start' (gradual/direct modes) or 'end' (bullet time), "
            f"got {reference_from!r}.")
    if int(count) != count or count < 1:
        raise TrajCrafterError(f"num_reference_frames must be a positive integer, got {count!r}.")
    count = min(int(count), num_frames)
    return list(range(count)) if reference_from == "start" else list(range(num_frames - count, num_frames))


def resize_mask_to_latents(mask: torch.Tensor, num_latent_frames: int, height: int, width: int) -> torch.Tensor:
    """Resize a ``[T, H, W]`` mask to ``[num_latent_frames, height, width]`` the official way.

    Trilinear, ``align_corners=False``; frame 0 is resized alone to latent frame 0 and frames
    ``1..T-1`` together to latent frames ``1..F-1`` (the causal VAE keeps frame 0 on its own).
    """
    volume = mask[None, None].float()  # [1, 1, T, H, W]
    first = F.interpolate(volume[:, :, :1], size=(1, height, width), mode="trilinear", align_corners=False)
    if num_latent_frames == 1:
        return first[0, 0]
    rest = F.interpolate(volume[:, :, 1:], size=(num_latent_frames - 1, height, width),
                         mode="trilinear", align_corners=False)
    return torch.cat([first, rest], dim=2)[0, 0]


def _reference_note(count: int, num_frames: int) -> str:
    return f"num_reference_frames={count} > {num_frames} source frames: used all {num_frames}."


def _frames_to_video(frames: torch.Tensor) -> torch.Tensor:
    """``[T, H, W, 3]`` in 0..1 → ``[1, 3, T, H, W]`` in -1..1 (the VAE's input)."""
    return (frames.permute(3, 0, 1, 2).unsqueeze(0) * 2.0 - 1.0)


def _as_batch(x: torch.Tensor, ndim: int, name: str) -> torch.Tensor:
    if not torch.is_tensor(x):
        raise TrajCrafterError(f"{name} must be a torch tensor, got {type(x).__name__}.")
    if x.ndim == ndim - 1:
        x = x.unsqueeze(0)
    if x.ndim != ndim or x.shape[0] != 1:
        raise TrajCrafterError(f"{name} must have {ndim - 1} dims (or {ndim} with batch 1), got {list(x.shape)}.")
    check_finite(x, name)
    return x


# --------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------


class TrajectoryCrafterPipeline(ModelPlacement):
    """Ref-DiT video diffusion conditioned on a render with holes and the source video.

    Components: ``transformer`` (:class:`~trajcrafter_core.models.CrossTransformer3DModel`),
    ``vae`` (diffusers ``AutoencoderKLCogVideoX``), ``text_encoder`` (``T5EncoderModel``),
    ``tokenizer`` (T5), ``scheduler`` (diffusers). Build with :meth:`from_pretrained`. Call it
    (see :meth:`__call__`); place it with :meth:`place` / :meth:`set_placement`.
    """

    def __init__(self, transformer, vae, text_encoder, tokenizer, scheduler,
                 scheduler_config: Optional[dict] = None):
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        #: the raw ``scheduler_config.json`` (keys other classes need, e.g. ``snr_shift_scale``)
        self.scheduler_config = dict(scheduler_config or scheduler.config)
        #: compute dtype (kept when weights are stored in fp8)
        self.dtype = next(transformer.parameters()).dtype
        self.device = torch.device("cpu")
        self.offload = "none"
        checkpoints.set_official_vae_chunking(self.vae)
        cfg = transformer.config
        self.latent_channels = int(vae.config.latent_channels)
        if int(cfg.in_channels) != 2 * self.latent_channels + 1:
            raise TrajCrafterError(
                f"transformer in_channels is {cfg.in_channels}; an inpainting transformer with "
                f"{2 * self.latent_channels + 1} (noise | mask | masked video) is needed.")
        self.vae_scale_factor_spatial = 2 ** (len(vae.config.block_out_channels) - 1)
        self.vae_scale_factor_temporal = int(vae.config.temporal_compression_ratio)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, base_dir, transformer_dir, *, dtype: Union[str, torch.dtype] = "bf16",
                        device: Optional[Union[str, torch.device]] = None, offload: str = "none",
                        scheduler: str = "DDIM_Origin", attention: str = "sdpa", fp8: bool = False,
                        vae_tiling: bool = False, vae_slicing: bool = False, blocks_per_group: int = 1,
                        memory: Optional[str] = None, download: bool = False,
                        progress=None, cancel=None, lora: Optional[Union[str, Path]] = None,
                        lora_strength: float = 1.0) -> "TrajectoryCrafterPipeline":
        """Load from the two official folders (see :class:`~trajcrafter_core.specs.ModelSpec`).

        ``base_dir``: CogVideoX-Fun-V1.1-5b-InP (vae/, text_encoder/, tokenizer/, scheduler/);
        ``transformer_dir``: TrajectoryCrafter (or its ``crosstransformer/``). Both are checked
        before anything loads; ``download=True`` fetches what is missing from the Hub first
        (:func:`trajcrafter_core.checkpoints.ensure_models`, never the CogVideoX-Fun transformer;
        ``progress``/``cancel`` as :func:`trajcrafter_core.hub.download`). ``device``: where the
        models run (default CUDA when available); ``offload`` / ``blocks_per_group``: see
        :meth:`set_placement`; ``fp8``, ``vae_tiling``, ``vae_slicing``: see
        :meth:`apply_memory_options`; ``memory``: a preset of :mod:`trajcrafter_core.memory`
        (``"fastest"``, ``"24 GB"``, ``"16 GB"``) that sets those five options at once;
        ``attention``: see :meth:`set_attention_backend`. ``lora``: a LoRA adapter file or folder
        merged into the transformer at ``lora_strength`` (:mod:`trajcrafter_core.lora`; read before
        any model loads).
        """
        torch_dtype = checkpoints.parse_dtype(dtype)
        options = resolve_memory_options(memory, offload=offload, fp8=fp8, vae_tiling=vae_tiling,
                                         vae_slicing=vae_slicing, blocks_per_group=blocks_per_group)
        offload = options["offload"]
        if offload not in OFFLOAD_MODES:
            raise TrajCrafterError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {offload!r}.")
        adapter = None
        if lora:
            from .lora import read_lora

            adapter = read_lora(lora)
        checkpoints.ensure_models(base_dir, transformer_dir, download=download, progress=progress, cancel=cancel)
        base = Path(base_dir)
        transformer = checkpoints.load_transformer(transformer_dir, dtype=torch_dtype)
        if adapter is not None:
            from .lora import apply_lora

            apply_lora(transformer, adapter, lora_strength)
        pipe = cls(
            transformer=transformer,
            vae=checkpoints.load_vae(base / "vae", dtype=torch_dtype),
            text_encoder=checkpoints.load_text_encoder(base / "text_encoder", dtype=torch_dtype),
            tokenizer=checkpoints.load_tokenizer(base / "tokenizer"),
            scheduler=checkpoints.load_scheduler(base / "scheduler", scheduler),
            scheduler_config=checkpoints.read_scheduler_config(base / "scheduler"),
        )
        pipe.apply_memory_options(fp8=options["fp8"], vae_tiling=options["vae_tiling"],
                                  vae_slicing=options["vae_slicing"])
        pipe.set_attention_backend(attention)
        pipe.set_placement(device=device, offload=offload, blocks_per_group=options["blocks_per_group"])
        return pipe

    @classmethod
    def from_spec(cls, spec: ModelSpec, progress=None, cancel=None) -> "TrajectoryCrafterPipeline":
        """:meth:`from_pretrained` with the folders and options of a :class:`ModelSpec`."""
        if not isinstance(spec, ModelSpec):
            raise TrajCrafterError(f"from_spec needs a ModelSpec, got {type(spec).__name__}.")
        return cls.from_pretrained(spec.base_dir, spec.transformer_dir, progress=progress, cancel=cancel,
                                   **spec.options())

    # ------------------------------------------------------------------ options

    def set_scheduler(self, name: str) -> None:
        """Switch sampler by its official name (``DDIM_Origin``, ``DDIM_Cog``, ``Euler``, ...)."""
        self.scheduler = checkpoints.scheduler_from_config(name, self.scheduler_config)

    def set_attention_backend(self, backend: Optional[str] = "sdpa") -> None:
        """``"sdpa"`` (default, PyTorch SDPA as the official) or an installed diffusers backend
        (``"flash"``, ``"sage"``, ``"xformers"``, ``"_native_flash"``, ...); an unusable one raises."""
        self.transformer.set_attention_backend(backend)

    def apply_memory_options(self, fp8: bool = False, vae_tiling: bool = False, vae_slicing: bool = False) -> None:
        """Switch on the memory options that change how models compute (before placement):
        ``fp8`` (:meth:`enable_fp8_weights`), VAE ``vae_tiling`` (encode/decode in overlapping
        spatial tiles) and ``vae_slicing`` (one batch entry at a time)."""
        if fp8:
            self.enable_fp8_weights()
        if vae_tiling:
            self.vae.enable_tiling()
        if vae_slicing:
            self.vae.enable_slicing()

    def enable_fp8_weights(self, storage_dtype: torch.dtype = torch.float8_e4m3fn) -> None:
        """Store transformer weights in fp8 and upcast each layer to the compute dtype while it runs."""
        if self.offload == "block":
            raise TrajCrafterError("enable fp8 weights before block offload (load the pipeline again).")
        self.transformer.enable_fp8_weight_storage(compute_dtype=self.dtype, storage_dtype=storage_dtype)

    def set_placement(self, device: Optional[Union[str, torch.device]] = None, offload: str = "none",
                      blocks_per_group: int = 1) -> None:
        """Choose where components live and run.

        ``device``: where models run (default CUDA when available, else CPU). ``offload``:

        - ``"none"`` — every component on ``device``;
        - ``"model"`` — components wait on the CPU and each moves to ``device`` only while it runs;
        - ``"block"`` — for small cards: transformer and T5 blocks are streamed to ``device``
          ``blocks_per_group`` at a time (diffusers group offloading); the VAE as in ``"model"``.
          With one block per group on CUDA, a side stream loads the next block while the
          current one computes (diffusers supports streams for single-block groups only).
        """
        if int(blocks_per_group) != blocks_per_group or blocks_per_group < 1:
            raise TrajCrafterError(f"blocks_per_group must be a whole number >= 1, got {blocks_per_group!r}.")
        if offload not in OFFLOAD_MODES:
            raise TrajCrafterError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {offload!r}.")
        if self.offload == "block":
            raise TrajCrafterError("block offload is already active; load the pipeline again to change placement.")
        device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.device, self.offload = device, offload
        cpu = torch.device("cpu")
        if offload == "none":
            for module in self.components().values():
                module.to(device)
        elif offload == "model":
            for module in self.components().values():
                module.to(cpu)
        else:
            from diffusers.hooks import apply_group_offloading

            self.vae.to(cpu)
            use_stream = device.type == "cuda" and blocks_per_group == 1
            for module in (self.transformer, self.text_encoder.encoder):
                module.to(cpu)
                apply_group_offloading(module, onload_device=device, offload_device=cpu,
                                       offload_type="block_level", num_blocks_per_group=blocks_per_group,
                                       use_stream=use_stream)
        self._free_memory()

    def components(self) -> Dict[str, torch.nn.Module]:
        return {"text_encoder": self.text_encoder, "transformer": self.transformer, "vae": self.vae}

    def place(self, device: Union[str, torch.device]) -> None:
        """Run on ``device`` from now on, keeping the offload mode: with ``"none"`` every component
        moves there; with ``"model"`` they wait on the CPU and visit ``device`` while they run."""
        if self.offload == "block":
            if torch.device(device) != self.device:
                raise TrajCrafterError("block offload streams to one device; load the pipeline again to change it.")
            return
        self.set_placement(device=device, offload=self.offload)

    @contextlib.contextmanager
    def _running(self, module: torch.nn.Module) -> Iterator[None]:
        """Have ``module`` on the execution device for the duration of the block."""
        moved = self.offload == "model" or (self.offload == "block" and module is self.vae)
        if moved:
            module.to(self.device)
        try:
            yield
        finally:
            if moved:
                module.to("cpu")

    def _free_memory(self) -> None:
        """Return cached accelerator memory (what a run used) to the driver."""
        if self.device.type == "cuda" and torch.cuda.is_available():
            gc.collect()
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ stage 1: text

    def build_prompts(self, prompt: Optional[str], negative_prompt: Optional[str],
                      quality_suffix: Optional[str] = QUALITY_SUFFIX) -> Tuple[str, str]:
        """The exact texts encoded: ``prompt + quality_suffix`` and the (default) negative prompt."""
        prompt = (prompt or "").strip()
        suffix = quality_suffix or ""
        if prompt and not prompt.endswith(suffix.strip()):
            text = prompt + suffix
        elif prompt:
            text = prompt
        else:
            text = suffix.lstrip(". ").strip()
        negative = DEFAULT_NEGATIVE_PROMPT if negative_prompt is None else negative_prompt
        return text, negative

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """T5 embeddings ``[N, 226, D]`` (padded to 226 tokens, truncated, no attention mask)."""
        ids = self.tokenizer(list(texts), padding="max_length", max_length=MAX_SEQUENCE_LENGTH,
                             truncation=True, add_special_tokens=True, return_tensors="pt").input_ids
        with self._running(self.text_encoder):
            embeds = self.text_encoder(ids.to(self.device))[0]
        return embeds.to(device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ stage 2: conditions

    def latent_size(self, num_frames: int, height: int, width: int) -> Tuple[int, int, int]:
        """``(F, h, w)`` of the latents of a ``num_frames × height × width`` video."""
        return ((num_frames - 1) // self.vae_scale_factor_temporal + 1,
                height // self.vae_scale_factor_spatial, width // self.vae_scale_factor_spatial)

    @torch.no_grad()
    def _vae_encode(self, video: torch.Tensor):
        """``[1, 3, T, H, W]`` in -1..1 → the VAE posterior (official frame grouping)."""
        with self._running(self.vae):
            return self.vae.encode(video.to(self.device, self.vae.dtype)).latent_dist

    def masked_video(self, render: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """``[1, 3, T, H, W]``: the render in -1..1 with hole pixels set to -1 (``hole`` binarised)."""
        video = _frames_to_video(render)
        return torch.where(is_hole(hole[None, None]), torch.full_like(video, -1.0), video)

    @torch.no_grad()
    def encode_masked_video(self, render: torch.Tensor, hole: torch.Tensor,
                            noise_aug_strength: float = NOISE_AUG_STRENGTH,
                            generator: Optional[torch.Generator] = None,
                            noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Masked-render latents ``[1, F, C, h, w]``: posterior mean × scaling factor.

        Before encoding, Gaussian noise × ``noise_aug_strength`` is added outside the holes
        (when the transformer config has ``add_noise_in_inpaint_model``, as the official one).
        ``noise`` (``[1, 3, T, H, W]``) replaces the draw from ``generator``.
        """
        render, hole = render.to(self.device), hole.to(self.device)
        video = self.masked_video(render, hole)
        if noise_aug_strength and getattr(self.transformer.config, "add_noise_in_inpaint_model", True):
            if noise is None:
                from diffusers.utils.torch_utils import randn_tensor

                noise = randn_tensor(video.shape, generator=generator, device=self.device, dtype=torch.float32)
            kept = covered(hole[None, None]).to(video.dtype)
            video = video + noise.to(video) * float(noise_aug_strength) * kept
        latents = self._vae_encode(video).mode() * self.vae.config.scaling_factor
        return latents.permute(0, 2, 1, 3, 4).to(self.dtype)

    def mask_latents(self, hole: torch.Tensor, num_latent_frames: int, height: int, width: int) -> torch.Tensor:
        """Mask latent channel ``[1, F, 1, h, w]``: resized ``1 − hole`` × scaling factor."""
        valid = covered(hole).float()
        resized = resize_mask_to_latents(valid, num_latent_frames, height, width)
        return (resized * self.vae.config.scaling_factor)[None, :, None].to(self.device, self.dtype)

    @torch.no_grad()
    def inpaint_latents(self, render: torch.Tensor, hole: torch.Tensor, noise_aug_strength: float = NOISE_AUG_STRENGTH,
                        generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``mask (1) | masked video (C)`` along channels, ``[1, F, 1 + C, h, w]``.

        A render that is hole everywhere gives zeros, as the official pipeline does.
        """
        num_latent, h, w = self.latent_size(*render.shape[:3])
        if bool(is_hole(hole).all()):
            return torch.zeros(1, num_latent, 1 + self.latent_channels, h, w, device=self.device, dtype=self.dtype)
        video_latents = self.encode_masked_video(render, hole, noise_aug_strength, generator)
        return torch.cat([self.mask_latents(hole, num_latent, h, w), video_latents.to(self.device)], dim=2)

    @torch.no_grad()
    def encode_reference(self, source: torch.Tensor, num_reference_frames: int = REFERENCE_FRAMES,
                         reference_from: str = "start",
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Reference latents (``cross_latents`` of one CFG half) ``[1, F_ref, C, h, w]``.

        The first (``"start"``) or last (``"end"``, bullet time) ``num_reference_frames`` source
        frames, VAE posterior sample × scaling factor. Reusable across trajectories of one clip.
        """
        indices = reference_frame_indices(source.shape[0], num_reference_frames, reference_from)
        if len(indices) < num_reference_frames:
            logger.warning(_reference_note(num_reference_frames, source.shape[0]))
        return self.encode_reference_frames(source[indices], generator)

    @torch.no_grad()
    def encode_reference_frames(self, reference: torch.Tensor,
                                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Reference latents ``[1, F_ref, C, h, w]`` of the frames ``[R, H, W, 3]`` (0..1) the model
        cross-attends to: VAE posterior sample × scaling factor."""
        posterior = self._vae_encode(_frames_to_video(reference))
        latents = posterior.sample(generator=generator) * self.vae.config.scaling_factor
        return latents.permute(0, 2, 1, 3, 4).to(self.device, self.dtype)

    # ------------------------------------------------------------------ stage 3: denoising

    def initial_latents(self, shape: Tuple[int, ...], generator: Optional[torch.Generator] = None,
                        latents: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Starting point ``[1, F, C, h, w]``: ``latents`` (or N(0, 1) noise) × ``init_noise_sigma``."""
        if latents is None:
            from diffusers.utils.torch_utils import randn_tensor

            latents = randn_tensor(shape, generator=generator, device=self.device, dtype=self.dtype)
        return latents.to(self.device, self.dtype) * self.scheduler.init_noise_sigma

    def rotary_embedding(self, height: int, width: int, num_latent_frames: int):
        """The transformer's RoPE tables for this size, or ``None`` if it does not use RoPE."""
        cfg = self.transformer.config
        if not getattr(cfg, "use_rotary_positional_embeddings", False):
            return None
        from .models import rotary_embedding

        return rotary_embedding(height, width, num_latent_frames, cfg.attention_head_dim,
                                patch_size=cfg.patch_size, vae_scale_factor=self.vae_scale_factor_spatial,
                                device=self.device)

    def _step_kwargs(self, generator: Optional[torch.Generator]) -> Dict[str, object]:
        accepted = set(inspect.signature(self.scheduler.step).parameters)
        kwargs: Dict[str, object] = {}
        if "eta" in accepted:
            kwargs["eta"] = 0.0
        if "generator" in accepted:
            kwargs["generator"] = generator
        return kwargs

    @torch.no_grad()
    def denoise(self, latents: torch.Tensor, prompt_embeds: torch.Tensor, inpaint_latents: torch.Tensor,
                cross_latents: torch.Tensor, *, height: int, width: int, num_inference_steps: int = 50,
                guidance_scale: float = 6.0, generator: Optional[torch.Generator] = None,
                callback: Optional[ProgressCallback] = None,
                step_hook: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
        """Run the sampler from ``latents`` (already × ``init_noise_sigma``) and return the result.

        ``prompt_embeds`` is ``[negative; positive]`` with CFG (``guidance_scale > 1``) or the
        positive alone; ``inpaint_latents`` and ``cross_latents`` are for one CFG half and are
        duplicated here; ``cross_latents=None`` skips the reference stream (what stage-1 training
        trains). ``callback(steps_done, total, latents)`` runs after each step; raising from it
        stops the run.
        """
        do_cfg = guidance_scale > 1.0
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        timesteps = self.scheduler.timesteps
        total = len(timesteps)
        step_kwargs = self._step_kwargs(generator)
        rotary = self.rotary_embedding(height, width, latents.shape[1])
        doubled = (lambda x: torch.cat([x, x])) if do_cfg else (lambda x: x)
        inpaint = doubled(inpaint_latents.to(self.device, self.dtype))
        cross = doubled(cross_latents.to(self.device, self.dtype)) if cross_latents is not None else None
        text = prompt_embeds.to(self.device, self.dtype)
        with self._running(self.transformer):
            for i, t in enumerate(timesteps):
                model_input = self.scheduler.scale_model_input(doubled(latents), t)
                prediction = self.transformer(
                    hidden_states=model_input, encoder_hidden_states=text,
                    timestep=t.expand(model_input.shape[0]), image_rotary_emb=rotary,
                    inpaint_latents=inpaint, cross_latents=cross, return_dict=False,
                )[0].float()
                if do_cfg:
                    uncond, cond = prediction.chunk(2)
                    prediction = uncond + guidance_scale * (cond - uncond)
                latents = self.scheduler.step(prediction, t, latents, **step_kwargs, return_dict=False)[0]
                latents = latents.to(self.dtype)
                if step_hook is not None:
                    step_hook(i, latents)
                if callback is not None:
                    callback(i + 1, total, latents)
        return latents

    # ------------------------------------------------------------------ stage 4: decoding

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """``[1, F, C, h, w]`` → frames ``[T, H, W, 3]`` float32 0..1 on the CPU."""
        z = latents.permute(0, 2, 1, 3, 4).to(self.device, self.vae.dtype) / self.vae.config.scaling_factor
        with self._running(self.vae):
            video = self.vae.decode(z).sample
        video = (video.float() / 2 + 0.5).clamp(0, 1)
        return video[0].permute(1, 2, 3, 0).cpu().contiguous()

    # ------------------------------------------------------------------ the call

    def check_inputs(self, source, render, hole_mask,
                     shape_policy: str = "error") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validate and return ``source``, ``render`` ``[T, H, W, 3]`` and ``hole_mask`` ``[T, H, W]``.

        With ``shape_policy="error"`` the geometry must be one the model takes
        (:func:`check_video_geometry`); with ``"pad"`` any count and size is accepted.
        """
        if shape_policy not in SHAPE_POLICIES:
            raise TrajCrafterError(
                f"shape_policy must be one of {', '.join(SHAPE_POLICIES)} ('error' refuses frame counts "
                f"other than 8m+1 and sides that are not multiples of 16; 'pad' pads and trims back), "
                f"got {shape_policy!r}.")
        source = as_frames(source, "source")
        render = as_frames(render, "render")
        hole = as_mask(hole_mask, "hole_mask")
        if tuple(render.shape) != tuple(source.shape):
            raise TrajCrafterError(
                f"render is {list(render.shape)} but source is {list(source.shape)} [T, H, W, 3]; "
                f"give one render per source frame at the source's size.")
        if tuple(hole.shape) != tuple(render.shape[:3]):
            raise TrajCrafterError(
                f"hole_mask is {list(hole.shape)} but render is {list(render.shape[:3])} [T, H, W]; "
                f"give one mask per render frame at the render's size (1 = hole).")
        if shape_policy == "error":
            check_video_geometry(*render.shape[:3], name="render")
        return source, render, hole

    @staticmethod
    def _pad_to_supported_geometry(source: torch.Tensor, render: torch.Tensor, hole: torch.Tensor,
                                   reference: Optional[torch.Tensor], notes: List[str]):
        """``shape_policy="pad"``: pad ``render``/``hole`` to :func:`supported_video_geometry`
        (last frame repeated, edges replicated) and ``source``/``reference`` in space only (the
        reference frames stay real frames); the padding is recorded in ``notes``."""
        frames, rows, cols = render.shape[:3]
        target = supported_video_geometry(frames, rows, cols)
        if target == (frames, rows, cols):
            return source, render, hole, reference
        done = []
        if target[0] != frames:
            done.append(f"{frames} frames padded to {target[0]} by repeating the last frame "
                        f"(render and hole mask as they are)")
        if target[1:] != (rows, cols):
            done.append(f"{rows}x{cols} pixels padded to {target[1]}x{target[2]} by repeating the bottom "
                        f"row and right column")
        notes.append(f"shape_policy='pad': {'; '.join(done)}; the model needs 8m+1 frames and sides that "
                     f"are multiples of 16. The output is trimmed back to {frames} frames of {rows}x{cols}.")
        logger.info(notes[-1])
        space = lambda x: None if x is None else pad_video(x, x.shape[0], target[1], target[2])  # noqa: E731
        return space(source), pad_video(render, *target), pad_video(hole, *target), space(reference)

    def _prompt_embeddings(self, prompt, negative_prompt, prompt_embeds, negative_prompt_embeds,
                           do_cfg: bool) -> torch.Tensor:
        if prompt is not None and prompt_embeds is not None:
            raise TrajCrafterError("give prompt or prompt_embeds, not both.")
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise TrajCrafterError("give negative_prompt or negative_prompt_embeds, not both.")
        text, negative = self.build_prompts(prompt, negative_prompt)
        texts = []
        if prompt_embeds is None:
            texts.append(text)
        if do_cfg and negative_prompt_embeds is None:
            texts.append(negative)
        encoded = list(self.encode_text(texts)) if texts else []
        dim = int(self.transformer.config.text_embed_dim)

        def given(x, name):
            x = _as_batch(x, 3, name)
            if x.shape[-1] != dim:
                raise TrajCrafterError(f"{name} has width {x.shape[-1]}; this transformer takes {dim}.")
            return x.to(self.device, self.dtype)

        positive = given(prompt_embeds, "prompt_embeds") if prompt_embeds is not None else encoded.pop(0)[None]
        if not do_cfg:
            return positive
        negative_embeds = (given(negative_prompt_embeds, "negative_prompt_embeds")
                           if negative_prompt_embeds is not None else encoded.pop(0)[None])
        if negative_embeds.shape != positive.shape:
            raise TrajCrafterError(
                f"negative prompt embeddings {list(negative_embeds.shape)} and prompt embeddings "
                f"{list(positive.shape)} must have the same shape.")
        return torch.cat([negative_embeds, positive])

    def _check_latents(self, x: torch.Tensor, name: str, frames: Optional[int], h: int, w: int) -> torch.Tensor:
        x = _as_batch(x, 5, name)
        ok = x.shape[2] == self.latent_channels and x.shape[3:] == (h, w) and (frames is None or x.shape[1] == frames)
        if not ok:
            want = [1, frames if frames is not None else "F_ref", self.latent_channels, h, w]
            raise TrajCrafterError(
                f"{name} is {list(x.shape)}; expected {want} (frames-first [B, F, C, h, w] latents "
                f"of this video size).")
        return x

    @torch.no_grad()
    def __call__(self, source, render, hole_mask, prompt: Optional[str] = None,
                 negative_prompt: Optional[str] = None, prompt_embeds: Optional[torch.Tensor] = None,
                 negative_prompt_embeds: Optional[torch.Tensor] = None, num_inference_steps: int = 50,
                 guidance_scale: float = 6.0, generator: Optional[torch.Generator] = None,
                 latents: Optional[torch.Tensor] = None, reference_latents: Optional[torch.Tensor] = None,
                 noise_aug_strength: float = NOISE_AUG_STRENGTH, num_reference_frames: int = REFERENCE_FRAMES,
                 reference_from: str = "start", reference: Optional[torch.Tensor] = None,
                 callback: Optional[ProgressCallback] = None,
                 shape_policy: str = "error") -> TrajectoryCrafterOutput:
        """Generate the redirected video.

        ``source``, ``render``: ``[T, H, W, 3]`` in 0..1; ``hole_mask``: ``[T, H, W]``, 1 = hole
        (binarised at ``HOLE_THRESHOLD``). ``T = 8m + 1`` (49 native, see :func:`check_video_geometry`);
        ``H``/``W`` multiples of 16 — other geometries raise with ``shape_policy="error"``
        (default); with ``"pad"`` the render and mask are padded to
        :func:`supported_video_geometry` (:func:`pad_video`: last frame repeated, edges replicated;
        the source in space only, so reference frames are real frames), sampled, and the output is
        trimmed back to ``[T, H, W]``; the padding is recorded in the output's ``notes`` and
        logged. ``prompt`` gets the official quality suffix; ``negative_prompt`` defaults to the
        official one. ``latents``: initial noise ``[1, F, 16, h, w]`` of the (padded) model
        geometry (frames-first; default drawn from ``generator`` exactly as the official pipeline
        draws it).

        Reference (what the model cross-attends to): ``reference`` frames ``[R, H, W, 3]`` when
        given (e.g. :attr:`trajcrafter_core.redirect.Conditions.reference`), else the first
        (``reference_from="start"``) or last (``"end"``, bullet time) ``num_reference_frames``
        frames of ``source``, or precomputed ``reference_latents`` for one CFG half (see
        :meth:`encode_reference`). ``callback(steps_done, total, latents)`` after each step; an
        exception raised in it stops the run (memory is still freed).

        Returns a :class:`TrajectoryCrafterOutput`: ``frames`` ``[T, H, W, 3]`` float32 in 0..1 on
        the CPU (the input's ``T, H, W``) and ``notes``.
        """
        source, render, hole = self.check_inputs(source, render, hole_mask, shape_policy)
        if not (isinstance(num_inference_steps, int) and num_inference_steps >= 1):
            raise TrajCrafterError(f"num_inference_steps must be an integer >= 1, got {num_inference_steps!r}.")
        if not math.isfinite(float(guidance_scale)):
            raise TrajCrafterError(f"guidance_scale must be finite, got {guidance_scale!r}.")
        if not (math.isfinite(float(noise_aug_strength)) and noise_aug_strength >= 0):
            raise TrajCrafterError(f"noise_aug_strength must be >= 0, got {noise_aug_strength!r}.")
        notes: List[str] = []
        if reference is not None:
            reference = as_frames(reference, "reference")
            if tuple(reference.shape[1:3]) != tuple(source.shape[1:3]):
                raise TrajCrafterError(
                    f"reference frames are {reference.shape[1]}x{reference.shape[2]} but the source is "
                    f"{source.shape[1]}x{source.shape[2]}; give reference frames at the video's size.")
        else:
            indices = reference_frame_indices(source.shape[0], num_reference_frames, reference_from)
            if len(indices) < num_reference_frames:
                notes.append(_reference_note(num_reference_frames, source.shape[0]))
                logger.warning(notes[-1])
            reference = source[indices]
        out_frames, out_height, out_width = render.shape[:3]
        source, render, hole, reference = self._pad_to_supported_geometry(source, render, hole, reference, notes)
        num_frames, height, width = render.shape[:3]
        num_latent, h, w = self.latent_size(num_frames, height, width)
        if latents is not None:
            latents = self._check_latents(latents, "latents", num_latent, h, w)
        if reference_latents is not None:
            reference_latents = self._check_latents(reference_latents, "reference_latents", None, h, w)
        do_cfg = guidance_scale > 1.0
        try:
            text = self._prompt_embeddings(prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, do_cfg)
            start = self.initial_latents((1, num_latent, self.latent_channels, h, w), generator, latents)
            inpaint = self.inpaint_latents(render, hole, noise_aug_strength, generator)
            cross = (reference_latents.to(self.device, self.dtype) if reference_latents is not None
                     else self.encode_reference_frames(reference, generator))
            final = self.denoise(start, text, inpaint, cross, height=height, width=width,
                                 num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                                 generator=generator, callback=callback)
            del text, start, inpaint, cross
            frames = self.decode_latents(final)
            return TrajectoryCrafterOutput(frames[:out_frames, :out_height, :out_width].contiguous(), notes)
        finally:
            if self.offload in ("model", "block"):
                for module in (self.vae,) if self.offload == "block" else self.components().values():
                    module.to("cpu")
            self._free_memory()
