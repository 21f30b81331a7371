"""DepthCrafter video depth (Hu et al. 2024) with diffusers building blocks.

Official inference as the paper (and TrajectoryCrafter) runs it:

1. frames are resized to multiples of 64 (longer side <= ``max_res``), mapped to ``[-1, 1]``;
2. every frame is embedded by the CLIP image encoder (224x224, antialiased resize, CLIP
   normalisation) and encoded by the SVD VAE after noise augmentation (``0.02``, latent mode,
   no scaling factor);
3. the DepthCrafter UNet (SVD's, conditioned per frame) denoises with SVD's Euler scheduler,
   5 steps, guidance 1.0 (no CFG), added time ids ``(7, 127, 0.02)``, over windows of 110
   frames overlapping by 25 (:mod:`.windows`);
4. latents are decoded by the temporal VAE decoder in chunks of 8 frames, clipped to ``[0, 1]``,
   averaged over the three channels, resized back to the video's size and normalised to
   ``[0, 1]`` over the whole clip. The result is *disparity-like*: 1 = nearest.

Random numbers come from a CPU ``torch.Generator`` seeded with ``seed``, drawn in the official
order (noise augmentation for all frames, then the first window's initial noise), so the output
does not depend on the device's RNG; with float32 on CPU the draws are the official ones.
Memory: frames are encoded and decoded in chunks and latents of finished frames leave the
device, so memory is bounded by one window, not by the clip length.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import torch

from ..errors import TrajCrafterError
from ..lifecycle import ModelPlacement
from .interface import CancelCallback, ProgressCallback, WorkTracker, as_video
from .mapping import normalize_disparity
from .resize import gaussian_antialiased_resize, multiple_of_64_size, resize_bchw
from .weights import Layout, Needed, pick_file, resolve_weights
from .windows import plan_windows, run_windows

__all__ = ["DepthCrafterEstimator", "UNET_LAYOUT", "svd_layout"]

UNET_LAYOUT = Layout(
    what="DepthCrafter UNet",
    hub_id="tencent/DepthCrafter",
    needed=(Needed(("config.json",)), Needed(("diffusion_pytorch_model.safetensors",))),
)

# SVD's added time ids as DepthCrafter fixes them: fps 7, motion bucket 127, noise aug strength.
FPS_ID = 7
MOTION_BUCKET_ID = 127
NOISE_AUG_STRENGTH = 0.02
CLIP_INPUT_SIZE = (224, 224)


def svd_layout(prefer_fp16: bool) -> Layout:
    """Files DepthCrafter needs from a Stable Video Diffusion img2vid(-xt) folder.

    ``prefer_fp16`` puts the ``.fp16`` weight variants first (what a Hub download fetches); a
    local folder may hold either variant.
    """

    def weights(sub: str, stem: str) -> Needed:
        full, half = f"{sub}/{stem}.safetensors", f"{sub}/{stem}.fp16.safetensors"
        return Needed((half, full) if prefer_fp16 else (full, half))

    return Layout(
        what="Stable Video Diffusion (VAE, image encoder)",
        hub_id="stabilityai/stable-video-diffusion-img2vid-xt",
        needed=(
            Needed(("vae/config.json",)),
            weights("vae", "diffusion_pytorch_model"),
            Needed(("image_encoder/config.json",)),
            weights("image_encoder", "model"),
            Needed(("feature_extractor/preprocessor_config.json",)),
            Needed(("scheduler/scheduler_config.json",)),
        ),
    )


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _placed(module, device: torch.device, dtype: torch.dtype):
    """``module`` on ``device`` in ``dtype``, in eval mode (casts only when needed)."""
    module = module.to(device)
    if next(module.parameters()).dtype != dtype:
        module = module.to(dtype)
    return module.eval()


def _cast_quietly(module, dtype: torch.dtype) -> None:
    """``module.to(dtype)`` without diffusers' warning about casting after loading (the official
    pipeline upcasts the VAE this way for encoding)."""
    log = logging.getLogger("diffusers.models.modeling_utils")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        module.to(dtype)
    finally:
        log.setLevel(level)


def _variant_of(path: Path) -> Optional[str]:
    return "fp16" if path.name.endswith(".fp16.safetensors") else None


class DepthCrafterEstimator(ModelPlacement):
    """DepthCrafter: ``estimate(frames) -> disparity [T, H, W]`` in ``[0, 1]`` (1 = nearest)."""

    def __init__(self, unet, vae, image_encoder, scheduler, image_mean, image_std, device=None, dtype=None):
        self.device = torch.device(device) if device is not None else _default_device()
        self.dtype = dtype if dtype is not None else (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.unet = _placed(unet, self.device, self.dtype)
        self.vae = _placed(vae, self.device, self.dtype)
        self.image_encoder = _placed(image_encoder, self.device, self.dtype)
        self.scheduler = scheduler
        self.image_mean = torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.image_std = torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self._check_parts()

    def components(self):
        return {"unet": self.unet, "vae": self.vae, "image_encoder": self.image_encoder}

    def _check_parts(self) -> None:
        embed = self.image_encoder.config.projection_dim
        if self.unet.config.cross_attention_dim != embed:
            raise TrajCrafterError(
                f"DepthCrafter UNet expects {self.unet.config.cross_attention_dim}-dim image "
                f"embeddings but the image encoder gives {embed}; the UNet and SVD folders do not "
                f"belong together (use tencent/DepthCrafter with stable-video-diffusion-img2vid(-xt))."
            )
        if self.unet.config.in_channels != 2 * self.vae.config.latent_channels:
            raise TrajCrafterError(
                f"DepthCrafter UNet takes {self.unet.config.in_channels} input channels but the VAE "
                f"has {self.vae.config.latent_channels} latent channels (need twice as many)."
            )
        time_dim = self.unet.config.addition_time_embed_dim * 3
        if self.unet.add_embedding.linear_1.in_features != time_dim:
            raise TrajCrafterError("DepthCrafter UNet config: added time embedding does not take 3 ids.")

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        unet_dir,
        svd_dir,
        dtype: Optional[torch.dtype] = None,
        device=None,
        *,
        cache_dir=None,
        local_files_only: bool = False,
        timeout_s: float = 5.0,
        download: bool = False,
        progress=None,
        cancel=None,
    ) -> "DepthCrafterEstimator":
        """Load from the official layouts: a ``tencent/DepthCrafter`` UNet folder and a
        ``stabilityai/stable-video-diffusion-img2vid(-xt)`` folder (local paths or Hub ids).

        Default device: CUDA if available, else CPU; default dtype: float16 on CUDA, float32 on
        CPU. ``download`` fetches missing official files into the folders (see
        :func:`~trajcrafter_core.depth.weights.resolve_weights`, ``progress``/``cancel`` as
        :func:`trajcrafter_core.hub.download`). Raises
        :class:`~trajcrafter_core.errors.MissingFilesError` naming missing files.
        """
        from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
        from transformers import CLIPVisionModelWithProjection

        from ..models.checkpoint_check import strictly_loaded
        from .unet import DepthCrafterUNet

        device = torch.device(device) if device is not None else _default_device()
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        half = dtype in (torch.float16, torch.bfloat16)
        fetch = dict(cache_dir=cache_dir, local_files_only=local_files_only, timeout_s=timeout_s,
                     download=download, progress=progress, cancel=cancel)
        unet_folder = resolve_weights(unet_dir, UNET_LAYOUT, **fetch)
        layout = svd_layout(prefer_fp16=half)
        svd_folder = resolve_weights(svd_dir, layout, **fetch)
        vae_file = pick_file(svd_folder, layout.needed[1])
        enc_file = pick_file(svd_folder, layout.needed[3])
        try:
            loaded = (
                DepthCrafterUNet.from_pretrained(unet_folder, torch_dtype=dtype, output_loading_info=True),
                AutoencoderKLTemporalDecoder.from_pretrained(svd_folder / "vae", torch_dtype=dtype,
                                                             variant=_variant_of(vae_file), output_loading_info=True),
                CLIPVisionModelWithProjection.from_pretrained(svd_folder / "image_encoder", dtype=dtype,
                                                              variant=_variant_of(enc_file), output_loading_info=True),
            )
            scheduler = EulerDiscreteScheduler.from_pretrained(svd_folder / "scheduler")
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise TrajCrafterError(
                f"could not load DepthCrafter from {unet_folder} and {svd_folder}: {exc}. The files "
                f"are there but do not load; re-download them (tencent/DepthCrafter, "
                f"stabilityai/stable-video-diffusion-img2vid-xt)."
            ) from None
        unet, vae, encoder = (
            strictly_loaded(item, what, folder) for item, what, folder in zip(
                loaded, ("DepthCrafter UNet", "Stable Video Diffusion VAE", "Stable Video Diffusion image encoder"),
                (unet_folder, svd_folder / "vae", svd_folder / "image_encoder")))
        fe = json.loads((svd_folder / "feature_extractor" / "preprocessor_config.json").read_text())
        return cls(unet, vae, encoder, scheduler, fe["image_mean"], fe["image_std"], device=device, dtype=dtype)

    # ------------------------------------------------------------------ stages
    def _pixels(self, frames: torch.Tensor, size) -> torch.Tensor:
        """``[n, H, W, 3]`` 0..1 (CPU) -> ``[n, 3, h, w]`` in ``[-1, 1]`` on the device, model dtype."""
        x = frames.permute(0, 3, 1, 2).to(self.device)
        x = resize_bchw(x, size)
        return x.to(self.dtype) * 2.0 - 1.0

    def _embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """CLIP image embeddings ``[n, D]`` of ``[-1, 1]`` frames (SVD's antialiased 224 resize)."""
        x = gaussian_antialiased_resize(pixels.float(), CLIP_INPUT_SIZE)
        x = (x + 1.0) / 2.0
        x = (x - self.image_mean.to(x.device)) / self.image_std.to(x.device)
        return self.image_encoder(x.to(self.dtype)).image_embeds

    def _encode(self, pixels: torch.Tensor, noise: torch.Tensor, strength: float) -> torch.Tensor:
        """VAE latents (mode, unscaled) of noise-augmented frames."""
        x = pixels + strength * noise
        return self.vae.encode(x.to(self.vae.dtype)).latent_dist.mode()

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``[n, 4, h, w]`` latents -> disparity ``[n, H, W]`` (clipped RGB, channel mean), float32."""
        z = 1 / self.vae.config.scaling_factor * latents.to(self.device, self.dtype)
        rgb = self.vae.decode(z.to(self.vae.dtype), num_frames=z.shape[0]).sample.float()
        rgb = (rgb * 0.5 + 0.5).clamp(0, 1)
        return rgb.sum(dim=1) / rgb.shape[1]

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def estimate(
        self,
        frames,
        num_inference_steps: int = 5,
        guidance_scale: float = 1.0,
        window_size: int = 110,
        overlap: int = 25,
        seed: int = 42,
        latents: Optional[torch.Tensor] = None,
        *,
        noise_aug_strength: float = NOISE_AUG_STRENGTH,
        decode_chunk_size: int = 8,
        max_res: int = 1024,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelCallback] = None,
    ) -> torch.Tensor:
        """Disparity ``float32 [T, H, W]`` on CPU, normalised to ``[0, 1]`` over the clip (1 = nearest).

        ``frames``: ``[T, H, W, 3]`` in 0..1 (any size; processed at multiples of 64, longer side
        at most ``max_res``, and resized back). ``latents``: optional initial unit noise of the
        first window, ``[min(window_size, T), 4, h/8, w/8]`` (a leading batch axis of 1 is
        accepted) at the processing size, replacing the seeded draw.
        """
        frames = as_video(frames)
        num_frames, height, width = (int(s) for s in frames.shape[:3])
        if num_inference_steps < 1:
            raise TrajCrafterError(f"num_inference_steps must be >= 1, got {num_inference_steps}.")
        if decode_chunk_size < 1:
            raise TrajCrafterError(f"decode_chunk_size must be >= 1, got {decode_chunk_size}.")
        windows = plan_windows(num_frames, window_size, overlap)
        size = multiple_of_64_size(height, width, max_res)
        latent_shape = (windows[0].length, self.vae.config.latent_channels,
                        size[0] // self.vae_scale_factor, size[1] // self.vae_scale_factor)
        if latents is not None:
            latents = torch.as_tensor(latents)
            if latents.ndim == 5 and latents.shape[0] == 1:
                latents = latents[0]
            if tuple(latents.shape) != latent_shape:
                raise TrajCrafterError(
                    f"latents must have shape {list(latent_shape)} (first window's frames, latent "
                    f"channels, height/8, width/8 at the processing size {size[0]}x{size[1]}), got "
                    f"{list(latents.shape)}."
                )
        chunks = range(0, num_frames, decode_chunk_size)
        tracker = WorkTracker(2 * len(chunks) + len(windows) * num_inference_steps, progress, cancel)
        tracker.check()
        generator = torch.Generator("cpu").manual_seed(int(seed))

        # 1-2. CLIP embeddings and VAE latents, chunk by chunk (VAE encodes in float32 if it must)
        upcast = self.vae.dtype == torch.float16 and bool(self.vae.config.force_upcast)
        if upcast:
            _cast_quietly(self.vae, torch.float32)
        try:
            embeddings, video_latents = [], []
            for start in chunks:
                pixels = self._pixels(frames[start:start + decode_chunk_size], size)
                embeddings.append(self._embed(pixels))
                noise = torch.randn(pixels.shape, generator=generator, dtype=torch.float32)
                video_latents.append(self._encode(pixels, noise.to(self.device, self.dtype), noise_aug_strength))
                tracker.advance()
        finally:
            if upcast:
                _cast_quietly(self.vae, self.dtype)
        embeddings = torch.cat(embeddings)
        video_latents = torch.cat(video_latents)

        # 3. denoise window by window
        if latents is None:
            latents = torch.randn(latent_shape, generator=generator, dtype=torch.float32)
        initial_noise = latents.to(self.device, self.dtype)
        time_ids = torch.tensor([[FPS_ID, MOTION_BUCKET_ID, noise_aug_strength]], dtype=embeddings.dtype, device=self.device)
        use_cfg = guidance_scale > 1.0

        def denoise(window, noise, previous):
            self.scheduler.set_timesteps(num_inference_steps, device=self.device)
            init_sigma = self.scheduler.init_noise_sigma
            x = (noise * init_sigma).unsqueeze(0)
            cond = video_latents[window.start:window.end].unsqueeze(0)
            emb = embeddings[window.start:window.end].unsqueeze(0)
            for i, t in enumerate(self.scheduler.timesteps):
                if previous is not None and i == 0:
                    n = window.overlap
                    x[:, :n] = previous.unsqueeze(0) + x[:, :n] / init_sigma * self.scheduler.sigmas[i]
                x_in = self.scheduler.scale_model_input(x, t)
                pred = self.unet(torch.cat([x_in, cond], dim=2), t, encoder_hidden_states=emb,
                                 added_time_ids=time_ids, return_dict=False)[0]
                if use_cfg:
                    x_in = self.scheduler.scale_model_input(x, t)
                    uncond = self.unet(torch.cat([x_in, torch.zeros_like(x_in)], dim=2), t,
                                       encoder_hidden_states=torch.zeros_like(emb),
                                       added_time_ids=time_ids, return_dict=False)[0]
                    pred = uncond + guidance_scale * (pred - uncond)
                x = self.scheduler.step(pred, t, x).prev_sample
                tracker.advance()
            return x[0]

        all_latents = run_windows(num_frames, window_size, overlap, initial_noise, denoise, finished_device=torch.device("cpu"))
        del video_latents, embeddings

        # 4. decode in chunks, back to the video's size, normalise over the clip
        disparity = torch.empty(num_frames, height, width, dtype=torch.float32)
        for start in chunks:
            d = self._decode(all_latents[start:start + decode_chunk_size])
            disparity[start:start + d.shape[0]] = resize_bchw(d.unsqueeze(1), (height, width))[:, 0].cpu()
            tracker.advance()
        tracker.finish()
        return normalize_disparity(disparity, name="DepthCrafter disparity")
