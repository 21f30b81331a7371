"""Tiny random-init depth models in the official on-disk layouts (tests, benchmarks, demos).

Nothing is downloaded. Each builder writes a folder laid out exactly as the official Hub
repository ships it, with the same config keys and file names, only far smaller:

- :func:`build_tiny_depthcrafter_unet` — like ``tencent/DepthCrafter``: ``config.json`` +
  ``diffusion_pytorch_model.safetensors`` at the folder root.
- :func:`build_tiny_svd` — like ``stabilityai/stable-video-diffusion-img2vid-xt``: ``vae/``,
  ``image_encoder/``, ``feature_extractor/``, ``scheduler/`` and ``model_index.json``.
- :func:`build_tiny_depth_anything` — like ``depth-anything/Depth-Anything-V2-Small-hf``:
  ``config.json`` + ``model.safetensors`` + ``preprocessor_config.json``.

Random init is deterministic (``seed``) and *not degenerate*: outputs depend on the inputs and
stay inside the range the pipelines clip to, so estimates are non-constant.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Union

import torch

__all__ = [
    "SVD_SCHEDULER_CONFIG",
    "CLIP_IMAGE_MEAN",
    "CLIP_IMAGE_STD",
    "build_tiny_depthcrafter_unet",
    "build_tiny_svd",
    "build_tiny_depth_anything",
    "build_tiny_depth_models",
]

PathLike = Union[str, os.PathLike]

# scheduler/scheduler_config.json of stabilityai/stable-video-diffusion-img2vid(-xt)
SVD_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "trained_betas": None,
    "use_karras_sigmas": True,
}
CLIP_IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# Width of the CLIP image embedding = the UNet's cross-attention width (1024 in the real models).
TINY_EMBED_DIM = 32


@contextmanager
def _seeded(seed: int):
    """Deterministic init without touching the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def build_tiny_depthcrafter_unet(folder: PathLike, seed: int = 0) -> Path:
    """Random-init DepthCrafter UNet folder (``config.json`` + ``diffusion_pytorch_model.safetensors``).

    Three blocks (two cross-attention), 32/64/64 channels, embedding width 32, 8 input channels
    (4 noisy latents + 4 video latents) as in the real model.
    """
    from .unet import DepthCrafterUNet

    folder = Path(folder)
    with _seeded(seed):
        unet = DepthCrafterUNet(
            sample_size=8,
            in_channels=8,
            out_channels=4,
            down_block_types=("CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            block_out_channels=(32, 64, 64),
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=24,
            layers_per_block=1,
            cross_attention_dim=TINY_EMBED_DIM,
            transformer_layers_per_block=1,
            num_attention_heads=(2, 4, 4),
            num_frames=25,
        )
        # The v-prediction output should be O(1) like a trained model's; damp the random head.
        with torch.no_grad():
            unet.conv_out.weight.mul_(0.5)
    unet.save_pretrained(folder, safe_serialization=True)
    # tencent/DepthCrafter names its own subclass in the config
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["_class_name"] = "DiffusersUNetSpatioTemporalConditionModelDepthCrafter"
    _write_json(cfg_path, cfg)
    return folder


def build_tiny_svd(folder: PathLike, seed: int = 0) -> Path:
    """Random-init Stable Video Diffusion parts (``vae/``, ``image_encoder/``, ``feature_extractor/``,
    ``scheduler/`` + ``model_index.json``) as ``stable-video-diffusion-img2vid-xt`` lays them out.

    The VAE downsamples by 8 (four encoder blocks) like the real one; the CLIP vision tower takes
    224x224 input with a 32-pixel patch and projects to 32 dims.
    """
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = Path(folder)
    with _seeded(seed):
        vae = AutoencoderKLTemporalDecoder(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            block_out_channels=(32, 32, 32, 32),
            layers_per_block=1,
            latent_channels=4,
            sample_size=64,
            scaling_factor=0.18215,
            force_upcast=True,
        )
        # Keep decoded images inside [-1, 1] (the pipeline clips there) with visible variation.
        with torch.no_grad():
            vae.decoder.conv_out.weight.mul_(0.05)
            vae.decoder.conv_out.bias.zero_()
            vae.decoder.time_conv_out.weight.mul_(0.5)
            vae.decoder.time_conv_out.bias.zero_()
        clip_cfg = CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            projection_dim=TINY_EMBED_DIM,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=224,
            patch_size=32,
        )
        encoder = CLIPVisionModelWithProjection(clip_cfg)
        encoder.eval()
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    encoder.save_pretrained(folder / "image_encoder", safe_serialization=True)
    _write_json(
        folder / "feature_extractor" / "preprocessor_config.json",
        {
            "crop_size": {"height": 224, "width": 224},
            "do_center_crop": True,
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "feature_extractor_type": "CLIPFeatureExtractor",
            "image_mean": CLIP_IMAGE_MEAN,
            "image_processor_type": "CLIPImageProcessor",
            "image_std": CLIP_IMAGE_STD,
            "resample": 3,
            "rescale_factor": 1 / 255,
            "size": {"shortest_edge": 224},
        },
    )
    _write_json(folder / "scheduler" / "scheduler_config.json", dict(SVD_SCHEDULER_CONFIG))
    _write_json(
        folder / "model_index.json",
        {
            "_class_name": "StableVideoDiffusionPipeline",
            "feature_extractor": ["transformers", "CLIPImageProcessor"],
            "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
            "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
        },
    )
    return folder


def build_tiny_depth_anything(folder: PathLike, seed: int = 0, input_size: int = 126) -> Path:
    """Random-init Depth Anything V2 folder (``config.json`` + ``model.safetensors`` +
    ``preprocessor_config.json``) with a 4-layer, 32-wide DINOv2 backbone.

    ``input_size`` (a multiple of 14) replaces the real 518 in the preprocessor config, to keep
    CPU tests fast; the preprocessing rules are the real ones.
    """
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    folder = Path(folder)
    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        mlp_ratio=2,
        image_size=518,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
        apply_layernorm=True,
    )
    cfg = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=32,
        reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=[16, 32, 64, 64],
        fusion_hidden_size=32,
        head_hidden_size=16,
        head_in_index=-1,
        depth_estimation_type="relative",
    )
    with _seeded(seed):
        model = DepthAnythingForDepthEstimation(cfg)
        # transformers initialises with std 0.02, which shrinks activations to ~1e-6 through the
        # neck: re-init the convolutions with PyTorch's fan-in rule so the output depends on the
        # image; a positive bias keeps the final ReLU from flattening it to 0.
        for module in list(model.neck.modules()) + list(model.head.modules()):
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                module.reset_parameters()
        with torch.no_grad():
            model.head.conv3.weight.mul_(10.0)
            model.head.conv3.bias.fill_(1.0)
        model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    _write_json(
        folder / "preprocessor_config.json",
        {
            "do_normalize": True,
            "do_pad": False,
            "do_rescale": True,
            "do_resize": True,
            "ensure_multiple_of": 14,
            "image_mean": IMAGENET_MEAN,
            "image_processor_type": "DPTImageProcessor",
            "image_std": IMAGENET_STD,
            "keep_aspect_ratio": True,
            "resample": 3,
            "rescale_factor": 1 / 255,
            "size": {"height": input_size, "width": input_size},
            "size_divisor": None,
        },
    )
    return folder


def build_tiny_depth_models(root: PathLike, seed: int = 0) -> dict:
    """All three tiny folders under ``root``: ``{"unet": ..., "svd": ..., "depth_anything": ...}``."""
    root = Path(root)
    return {
        "unet": build_tiny_depthcrafter_unet(root / "DepthCrafter", seed=seed),
        "svd": build_tiny_svd(root / "stable-video-diffusion-img2vid-xt", seed=seed + 1),
        "depth_anything": build_tiny_depth_anything(root / "Depth-Anything-V2-Small-hf", seed=seed + 2),
    }
