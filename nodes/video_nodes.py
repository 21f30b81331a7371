"""Input: Load Video (a file from ComfyUI's input folder, a bundled example or a typed path) and
Synthetic Scene (the core's procedural clip with its exact depth; needs no file and no weights)."""

from __future__ import annotations

import json
import os

from trajcrafter_core.sizing import DEFAULT_READ_SIDE

from . import bridge
from .common import DEPTH, DepthMaps, require
from .declare import Choice, Int, NodeDef, Out, Text

#: Clips bundled with the pack (made by the synthetic scene): ``"example.mp4 [example]"``.
EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "example_media")
# Listed in the upload combo; anything FFmpeg opens is read through the path input.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif")


def video_choices():
    return bridge.list_example_files(EXAMPLES_DIR, VIDEO_EXTENSIONS) + bridge.list_input_files(VIDEO_EXTENSIONS)


def _resolve(video: str, path: str) -> str:
    return bridge.resolve_input_file(video, path, "video", examples_dir=EXAMPLES_DIR)


def check_video(video, path=""):
    """Before the queue runs: the file must be there (any combo value: an upload made after the
    list was built, an absolute path)."""
    return bridge.check_input_file(video, path, "video", examples_dir=EXAMPLES_DIR)


def video_fingerprint(video, path=""):
    return bridge.file_fingerprint(lambda: _resolve(video, path))


def _comfy_audio(sound):
    """An :class:`~trajcrafter_core.audio.Audio` as ComfyUI's AUDIO (``waveform [1, C, N]``)."""
    import torch

    if sound is None:
        return None
    return {"waveform": torch.from_numpy(sound.samples).unsqueeze(0), "sample_rate": int(sound.sample_rate)}


def load_video(video, frame_cap, skip_first, every_nth, max_size, path=""):
    require("video files")
    from trajcrafter_core.audio import clip_audio
    from trajcrafter_core.errors import TrajCrafterError
    from trajcrafter_core.video import read_video

    full = _resolve(video, path)
    try:
        clip = read_video(full, max_frames=frame_cap or None, skip_first=skip_first, every_nth=every_nth,
                          max_side=max_size or None, size_multiple=16)
        sound = clip_audio(clip)
    except TrajCrafterError:
        if bridge.is_private_path(full):  # say nothing about a file outside ComfyUI's folders
            raise TrajCrafterError(bridge.private_path_message(path, "video")) from None
        raise
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
        "audio": sound is not None,
    }
    return (frames, float(clip.fps), int(frames.shape[0]), json.dumps(info), _comfy_audio(sound))


LOAD_VIDEO = NodeDef(
    id="TrajCrafterLoadVideo",
    display_name="Load Video (TrajectoryCrafter)",
    category="input",
    description=(
        "Loads a video from ComfyUI's input folder (use the upload button), a bundled example or a typed "
        "path, as an IMAGE batch [frames, height, width, 3] plus its sound (AUDIO, trimmed to the selected "
        "frames). Pick which frames with skip first / every nth / frame cap; frames are resized (aspect "
        "kept) so the long side is at most max size and both sides are multiples of 16. Depth and renders "
        "are made at this size and resized to the model's size later, as the official demo does (it reads "
        "clips at 1024x576). Any other pack's IMAGE batch can replace this node."
    ),
    inputs=(
        Choice("video", video_choices, None, "Video in ComfyUI's input folder (the upload button puts it there), "
               "or a bundled [example].", upload="video"),
        Int("frame_cap", 49, 0, 100000, "Most frames to return (0 = all). The model takes 8m+1 frames "
            "(9, 17, 25, 33, 41, 49 native); others are padded and trimmed back."),
        Int("skip_first", 0, 0, 1000000, "Source frames to skip at the start."),
        Int("every_nth", 1, 1, 1000, "Take every n-th source frame (1 = all; official stride)."),
        Int("max_size", DEFAULT_READ_SIDE, 0, 8192, "Longest side in pixels after resizing, aspect kept (0 = source "
            "size, rounded to 16). The official demo reads clips at 1024x576 and samples at 672x384.", step=16),
        Text("path", "", "Optional file path; overrides the list. Relative paths are inside ComfyUI's input folder; "
             "an absolute path may point anywhere you choose.", optional=True),
    ),
    outputs=(
        Out("frames", "IMAGE", "Selected frames, float 0..1, [frames, height, width, 3]."),
        Out("fps", "FLOAT", "Frame rate of the selected frames (source fps / every nth)."),
        Out("frame_count", "INT", "Number of frames returned."),
        Out("video_info", "STRING", "JSON text: source file, size, fps and frame count, and which frames were taken."),
        Out("audio", "AUDIO", "The clip's sound for the selected frames (empty when the file has none)."),
    ),
    run=load_video,
    aliases=("trajectorycrafter", "video", "clip", "movie", "mp4"),
    validate=check_video,
    fingerprint=video_fingerprint,
)


def synthetic_scene(scene_seed, num_frames, width, height, spheres, boxes):
    from trajcrafter_core.synthetic import SyntheticScene as Scene
    from trajcrafter_core.synthetic import example_clip

    scene = Scene(seed=scene_seed, num_spheres=spheres, num_boxes=boxes)
    bar = bridge.Progress(num_frames)
    clip = example_clip(num_frames=num_frames, height=height, width=width, scene=scene, device=bridge.torch_device(),
                        progress=bar.callback)
    device = bridge.intermediate_device()
    depth = DepthMaps(clip["depths"].cpu(), source="synthetic")
    return (clip["frames"].to(device), depth, float(clip["fps"]), int(clip["frames"].shape[0]))


SYNTHETIC_SCENE = NodeDef(
    id="TrajCrafterSyntheticScene",
    display_name="Synthetic Scene (TrajectoryCrafter)",
    category="input",
    description=(
        "A procedural 3D room with moving spheres and boxes, seen by a static camera: frames plus their exact "
        "depth, rendered with the official default intrinsics (Lift Point Cloud's 'official' setting). Use it "
        "to try camera paths and renders with no video and no model weights."
    ),
    inputs=(
        Int("scene_seed", 0, 0, 2**31 - 1, "Scene layout, textures and motion (same seed, same scene)."),
        Int("num_frames", 25, 1, 201, "Frames to render (8m+1 for the diffusion model: 9, 17, 25, 33, 41, 49)."),
        Int("width", 512, 64, 2048, "Frame width in pixels.", step=16),
        Int("height", 288, 64, 2048, "Frame height in pixels.", step=16),
        Int("spheres", 3, 0, 12, "Moving spheres in the room."),
        Int("boxes", 2, 0, 12, "Moving boxes standing on the ground."),
    ),
    outputs=(
        Out("frames", "IMAGE", "Rendered frames, float 0..1, [frames, height, width, 3]."),
        Out("depth", DEPTH, "Exact z-depth of every pixel (scene units, larger = farther)."),
        Out("fps", "FLOAT", "Frame rate to play the clip at."),
        Out("frame_count", "INT", "Number of frames."),
    ),
    run=synthetic_scene,
    aliases=("trajectorycrafter", "test scene", "synthetic", "demo"),
)

NODES = (LOAD_VIDEO, SYNTHETIC_SCENE)
