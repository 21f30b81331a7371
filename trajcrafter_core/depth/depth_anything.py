"""Depth Anything V2 through transformers, frame by frame, aligned so the clip does not flicker.

Each frame goes through ``DepthAnythingForDepthEstimation`` with the checkpoint's own
preprocessing (``preprocessor_config.json``: resize keeping the aspect ratio to the side closest
to the configured size, multiples of 14, bicubic; ImageNet normalisation), the relative
disparity is resized back to the frame, aligned by a least-squares scale/shift to a reference
(:mod:`.alignment`) and the clip is normalised to ``[0, 1]`` (1 = nearest).

Licences (Depth Anything V2 checkpoints on the Hub, ``depth-anything/Depth-Anything-V2-*-hf``):

=========  ==========================================  ==============
size       repository                                  licence
=========  ==========================================  ==============
Small      depth-anything/Depth-Anything-V2-Small-hf   Apache-2.0
Base       depth-anything/Depth-Anything-V2-Base-hf    CC-BY-NC-4.0
Large      depth-anything/Depth-Anything-V2-Large-hf   CC-BY-NC-4.0
Giant      (not released as of writing)                CC-BY-NC-4.0
=========  ==========================================  ==============

Only Small may be used commercially; Base and Large are non-commercial. Metric checkpoints
(``depth_estimation_type = "metric"``) predict depth, which is inverted to disparity first.
"""

from __future__ import annotations

import json
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..errors import TrajCrafterError
from ..lifecycle import ModelPlacement
from .alignment import align_to_reference
from .interface import CancelCallback, ProgressCallback, WorkTracker, as_video
from .mapping import normalize_disparity
from .resize import resize_bchw
from .weights import Layout, Needed, resolve_weights

__all__ = ["DepthAnythingEstimator", "DEPTH_ANYTHING_LAYOUT", "DEPTH_ANYTHING_V2_LICENCES", "dpt_input_size"]

DEPTH_ANYTHING_LAYOUT = Layout(
    what="Depth Anything V2",
    hub_id="depth-anything/Depth-Anything-V2-Small-hf",
    needed=(Needed(("config.json",)), Needed(("model.safetensors",)), Needed(("preprocessor_config.json",))),
)

DEPTH_ANYTHING_V2_LICENCES = {
    "depth-anything/Depth-Anything-V2-Small-hf": "Apache-2.0",
    "depth-anything/Depth-Anything-V2-Base-hf": "CC-BY-NC-4.0",
    "depth-anything/Depth-Anything-V2-Large-hf": "CC-BY-NC-4.0",
}

REFERENCES = ("previous", "first")


def _round_to_multiple(value: float, multiple: int) -> int:
    x = round(value / multiple) * multiple
    return max(int(x), multiple)


def dpt_input_size(height: int, width: int, target: Tuple[int, int], multiple: int = 14,
                   keep_aspect_ratio: bool = True) -> Tuple[int, int]:
    """Network input size for a frame (DPT's rule): scale each side towards ``target``; keeping the
    aspect ratio, use the one scale closer to 1; round to multiples of ``multiple``."""
    sh, sw = target[0] / height, target[1] / width
    if keep_aspect_ratio:
        if abs(1 - sw) < abs(1 - sh):
            sh = sw
        else:
            sw = sh
    return _round_to_multiple(sh * height, multiple), _round_to_multiple(sw * width, multiple)


class DepthAnythingEstimator(ModelPlacement):
    """Depth Anything V2: ``estimate(frames) -> disparity [T, H, W]`` in ``[0, 1]`` (1 = nearest)."""

    def __init__(self, model, preprocess: dict, device=None, dtype=None):
        self.device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype if dtype is not None else (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.model = model.to(self.device)
        if next(self.model.parameters()).dtype != self.dtype:
            self.model = self.model.to(self.dtype)
        self.model.eval()
        size = preprocess.get("size", {"height": 518, "width": 518})
        if isinstance(size, int):
            size = {"height": size, "width": size}
        self.target = (int(size["height"]), int(size["width"]))
        self.multiple = int(preprocess.get("ensure_multiple_of", 14) or 1)
        self.keep_aspect_ratio = bool(preprocess.get("keep_aspect_ratio", True))
        self.mean = torch.tensor(preprocess.get("image_mean", [0.485, 0.456, 0.406]), dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(preprocess.get("image_std", [0.229, 0.224, 0.225]), dtype=torch.float32).view(1, 3, 1, 1)
        self.metric = getattr(model.config, "depth_estimation_type", "relative") == "metric"

    def components(self):
        return {"model": self.model}

    @classmethod
    def from_pretrained(cls, model_dir, dtype: Optional[torch.dtype] = None, device=None, *,
                        cache_dir=None, local_files_only: bool = False, timeout_s: float = 5.0,
                        download: bool = False, progress=None, cancel=None) -> "DepthAnythingEstimator":
        """Load a Depth Anything V2 folder (``config.json``, ``model.safetensors``,
        ``preprocessor_config.json``) or Hub id (e.g. ``depth-anything/Depth-Anything-V2-Small-hf``,
        Apache-2.0; Base/Large are CC-BY-NC-4.0)."""
        from transformers import DepthAnythingForDepthEstimation

        folder = resolve_weights(model_dir, DEPTH_ANYTHING_LAYOUT, cache_dir=cache_dir,
                                 local_files_only=local_files_only, timeout_s=timeout_s,
                                 download=download, progress=progress, cancel=cancel)
        device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        from ..models.checkpoint_check import strictly_loaded

        try:
            loaded = DepthAnythingForDepthEstimation.from_pretrained(folder, dtype=dtype, output_loading_info=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise TrajCrafterError(
                f"could not load Depth Anything V2 from {folder}: {exc}. Re-download the folder "
                f"(e.g. depth-anything/Depth-Anything-V2-Small-hf)."
            ) from None
        model = strictly_loaded(loaded, "Depth Anything V2", folder)
        preprocess = json.loads((folder / "preprocessor_config.json").read_text())
        return cls(model, preprocess, device=device, dtype=dtype)

    @torch.inference_mode()
    def predict_raw(self, frames: torch.Tensor) -> torch.Tensor:
        """Raw relative disparity ``[n, h, w]`` (float32, network resolution) for ``[n, H, W, 3]`` frames."""
        x = frames.permute(0, 3, 1, 2).to(self.device, torch.float32)
        size = dpt_input_size(x.shape[-2], x.shape[-1], self.target, self.multiple, self.keep_aspect_ratio)
        shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=shrink).clamp(0, 1)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        out = self.model(pixel_values=x.to(self.dtype)).predicted_depth.float()
        if self.metric:
            out = 1.0 / out.clamp_min(1e-6)
        return out

    @torch.inference_mode()
    def estimate(
        self,
        frames,
        *,
        align: bool = True,
        reference: str = "previous",
        batch_size: int = 4,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelCallback] = None,
    ) -> torch.Tensor:
        """Disparity ``float32 [T, H, W]`` on CPU, normalised to ``[0, 1]`` over the clip (1 = nearest).

        ``align``: fit each frame's scale/shift to the reference (``"previous"``: the previous
        aligned frame, follows a moving camera; ``"first"``: the first frame). ``batch_size``
        frames go through the network at once; memory does not grow with the clip.
        """
        frames = as_video(frames)
        if reference not in REFERENCES:
            raise TrajCrafterError(f"reference must be one of {REFERENCES}, got {reference!r}.")
        if batch_size < 1:
            raise TrajCrafterError(f"batch_size must be >= 1, got {batch_size}.")
        num_frames, height, width = (int(s) for s in frames.shape[:3])
        starts = range(0, num_frames, batch_size)
        tracker = WorkTracker(len(starts), progress, cancel)
        tracker.check()
        out = torch.empty(num_frames, height, width, dtype=torch.float32)
        ref: Optional[torch.Tensor] = None
        for start in starts:
            raw = self.predict_raw(frames[start:start + batch_size])
            if align:
                aligned = []
                for d in raw:
                    d = d[None]
                    if ref is not None:
                        d = align_to_reference(d, ref)
                    if ref is None or reference == "previous":
                        ref = d
                    aligned.append(d)
                raw = torch.cat(aligned)
            out[start:start + raw.shape[0]] = resize_bchw(raw[:, None], (height, width))[:, 0].cpu()
            tracker.advance()
        tracker.finish()
        return normalize_disparity(out, name="Depth Anything disparity")
