"""Video sources: Load Video (a file from ComfyUI's input folder or a typed path) and Synthetic
Scene (the core's procedural clip with its exact depth; needs no file and no weights)."""

from __future__ import annotations

import json
import os

from trajcrafter_core.sizing import DEFAULT_READ_SIDE

from . import bridge
from .common import CATEGORY, DEPTH, DepthMaps, require

# Listed in the upload combo; anything FFmpeg opens is read through the path input.
_VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif")


class LoadVideo:
    """Read a video file into frames (IMAGE), with frame selection and an aspect-keeping size cap."""

    DESCRIPTION = (
        "Loads a video from ComfyUI's input folder (use the upload button) or from a typed path, "
        "as an IMAGE batch [frames, height, width, 3]. Pick which frames with skip first / every "
        "nth / frame cap; frames are resized (aspect kept) so the long side is at most max size "
        "and both sides are multiples of 16, as the diffusion model needs. Any other pack's IMAGE "
        "batch (VideoHelperSuite, core Get Video Components) can replace this node."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("IMAGE", "FLOAT", "INT", "STRING")
    RETURN_NAMES = ("frames", "fps", "frame_count", "video_info")
    OUTPUT_TOOLTIPS = (
        "Selected frames, float 0..1, [frames, height, width, 3].",
        "Frame rate of the selected frames (source fps / every nth).",
        "Number of frames returned.",
        "JSON text: source file, size, fps and frame count, and which frames were taken.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video": (
                    bridge.list_input_files(_VIDEO_EXTENSIONS),
                    {
                        "video_upload": True,
                        "tooltip": "Video in ComfyUI's input folder; the upload button puts a file there.",
                    },
                ),
                "frame_cap": (
                    "INT",
                    {
                        "default": 49,
                        "min": 0,
                        "max": 100000,
                        "tooltip": "Most frames to return (0 = all). The model takes 8m+1 frames (9, 17, 25, 33, 41, 49 native).",
                    },
                ),
                "skip_first": (
                    "INT",
                    {"default": 0, "min": 0, "max": 1000000, "tooltip": "Source frames to skip at the start."},
                ),
                "every_nth": (
                    "INT",
                    {"default": 1, "min": 1, "max": 1000, "tooltip": "Take every n-th source frame (1 = all; official stride)."},
                ),
                "max_size": (
                    "INT",
                    {
                        "default": DEFAULT_READ_SIDE,
                        "min": 0,
                        "max": 8192,
                        "step": 16,
                        "tooltip": "Longest side in pixels after resizing, aspect kept (0 = source size, rounded to 16). "
                        "Depth and renders are made at this size and resized to the model's size afterwards, as the "
                        "official demo does (it reads clips at 1024x576 and samples at 672x384).",
                    },
                ),
            },
            "optional": {
                "path": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "Optional file path; overrides the upload choice. Relative paths are inside "
                        "ComfyUI's input folder; an absolute path may point anywhere you choose.",
                    },
                ),
            },
        }

    @classmethod
    def IS_CHANGED(cls, video, path="", **_):
        try:
            full = bridge.resolve_input_file(video, path, "video")
        except Exception:  # noqa: BLE001 - the run itself reports the problem
            return float("nan")
        return f"{full}:{os.path.getmtime(full)}"

    @classmethod
    def VALIDATE_INPUTS(cls, video, path=""):
        # Accept any combo value (an absolute path or a file uploaded after the list was made);
        # the file itself is checked when the node runs, with a message naming it.
        return True

    def load(self, video, frame_cap, skip_first, every_nth, max_size, path=""):
        require("video files")
        from trajcrafter_core.video import read_video

        full = bridge.resolve_input_file(video, path, "video")
        clip = read_video(
            full,
            max_frames=frame_cap or None,
            skip_first=skip_first,
            every_nth=every_nth,
            max_side=max_size or None,
            size_multiple=16,
        )
        frames = clip.frames.to(bridge.intermediate_device())
        info = {
            "file": os.path.basename(full),
            "source_fps": round(float(clip.source_fps), 4),
            "source_size": list(clip.source_size),
            "source_frame_count": clip.source_frame_count,
            "source_frame_count_exact": bool(clip.source_frame_count_exact),
            "frame_indices": list(clip.frame_indices),
            "fps": round(float(clip.fps), 4),
            "size": [int(frames.shape[2]), int(frames.shape[1])],
            "frame_count": int(frames.shape[0]),
        }
        return (frames, float(clip.fps), int(frames.shape[0]), json.dumps(info))


class SyntheticScene:
    """The core's synthetic test clip: frames plus their exact depth (official intrinsics)."""

    DESCRIPTION = (
        "A procedural 3D room with moving spheres and boxes, seen by a static camera: frames plus "
        "their exact depth, rendered with the official default intrinsics (Lift Point Cloud's "
        "'official' setting). Use it to try camera paths and renders with no video and no model "
        "weights."
    )
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = ("IMAGE", DEPTH, "FLOAT", "INT")
    RETURN_NAMES = ("frames", "depth", "fps", "frame_count")
    OUTPUT_TOOLTIPS = (
        "Rendered frames, float 0..1, [frames, height, width, 3].",
        "Exact z-depth of every pixel (scene units, larger = farther).",
        "Frame rate to play the clip at.",
        "Number of frames.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "scene_seed": (
                    "INT",
                    {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip": "Scene layout, textures and motion (same seed, same scene)."},
                ),
                "num_frames": (
                    "INT",
                    {"default": 25, "min": 1, "max": 201, "tooltip": "Frames to render (8m+1 for the diffusion model: 9, 17, 25, 33, 41, 49)."},
                ),
                "width": (
                    "INT",
                    {"default": 512, "min": 64, "max": 2048, "step": 16, "tooltip": "Frame width in pixels."},
                ),
                "height": (
                    "INT",
                    {"default": 288, "min": 64, "max": 2048, "step": 16, "tooltip": "Frame height in pixels."},
                ),
                "spheres": (
                    "INT",
                    {"default": 3, "min": 0, "max": 12, "tooltip": "Moving spheres in the room."},
                ),
                "boxes": (
                    "INT",
                    {"default": 2, "min": 0, "max": 12, "tooltip": "Moving boxes standing on the ground."},
                ),
            }
        }

    def make(self, scene_seed, num_frames, width, height, spheres, boxes):
        from trajcrafter_core.synthetic import SyntheticScene as Scene
        from trajcrafter_core.synthetic import example_clip

        scene = Scene(seed=scene_seed, num_spheres=spheres, num_boxes=boxes)
        clip = example_clip(num_frames=num_frames, height=height, width=width, scene=scene, device=bridge.torch_device())
        device = bridge.intermediate_device()
        depth = DepthMaps(clip["depths"].cpu(), source="synthetic")
        return (clip["frames"].to(device), depth, float(clip["fps"]), int(clip["frames"].shape[0]))


NODE_CLASS_MAPPINGS = {"TrajCrafterLoadVideo": LoadVideo, "TrajCrafterSyntheticScene": SyntheticScene}
NODE_DISPLAY_NAME_MAPPINGS = {"TrajCrafterLoadVideo": "Load Video", "TrajCrafterSyntheticScene": "Synthetic Scene"}
