"""Prompts executed by a real ComfyUI through /prompt: the render-only workflow end to end, and bad
inputs that must come back as a ComfyUI error carrying our message while the server keeps working."""

from __future__ import annotations

import time

import pytest

from comfy_server import messages
from workflow_tools import load_workflows, to_api_prompt


def _load_video(**overrides):
    inputs = {"video": "clip.mp4", "frame_cap": 9, "skip_first": 0, "every_nth": 1, "max_size": 160, "path": ""}
    inputs.update(overrides)
    return {"class_type": "TrajCrafterLoadVideo", "inputs": inputs}


def _synthetic(num_frames=5, width=160, height=96):
    return {"class_type": "TrajCrafterSyntheticScene", "inputs": {
        "scene_seed": 1, "num_frames": num_frames, "width": width, "height": height, "spheres": 2, "boxes": 1}}


def _preview(src, slot=0):
    return {"class_type": "PreviewImage", "inputs": {"images": [src, slot]}}


def assert_our_error(entry, *fragments):
    """The prompt failed with a TrajCrafterError whose message holds every fragment."""
    assert entry["status"]["status_str"] == "error", entry["status"]
    errors = messages(entry, "execution_error")
    assert errors, entry["status"]
    err = errors[0]
    assert err["exception_type"].rsplit(".", 1)[-1] in ("TrajCrafterError", "MissingFilesError"), err["exception_type"]
    for fragment in fragments:
        assert fragment in err["exception_message"], err["exception_message"]
    return err


def small_working_prompt(tag: int):
    """Synthetic → lift → path → render → preview; ``tag`` changes the scene so nothing is cached."""
    return {
        "1": _synthetic(num_frames=3, width=96, height=64),
        "2": {"class_type": "TrajCrafterLiftPointCloud", "inputs": {"frames": ["1", 0], "depth": ["1", 1], "intrinsics": "official", "fov_degrees": 60.0}},
        "3": {"class_type": "TrajCrafterCameraTrajectory", "inputs": {
            "point_cloud": ["2", 0], "mode": "gradual", "camera": "target_pose", "theta": float(tag % 10), "phi": -20.0, "r": 0.2,
            "x": 0.0, "y": 0.0, "preset": "orbit_left", "preset_amount": 1.0, "trajectory_file": "none", "radius_scale": 1.0,
            "direct_cut": 20, "trajectory_path": "", "translation_scale": 1.0, "preview_size": 128}},
        "4": {"class_type": "TrajCrafterRenderViews", "inputs": {"point_cloud": ["2", 0], "trajectory": ["3", 0], "render_mode": "official", "clean_holes": True}},
        "5": _preview("4", 2),
    }


def test_render_only_workflow_runs_end_to_end(comfy):
    workflow = load_workflows()["render_only_synthetic"]
    prompt = to_api_prompt(workflow, comfy.object_info())
    t0 = time.time()
    entry = comfy.run(prompt, timeout=600)
    elapsed = time.time() - t0
    assert entry["status"]["status_str"] == "success", entry["status"]
    outputs = entry["outputs"]
    images = [img for out in outputs.values() for img in out.get("images", [])]
    assert len(images) >= 2  # camera-path preview + render previews
    videos = list((comfy.base / "output" / "trajcrafter").glob("render_only*.mp4"))
    assert videos and videos[0].stat().st_size > 1000
    print(f"render-only workflow ran in {elapsed:.1f} s")


@pytest.mark.parametrize(
    "case",
    ["wrong_file_type", "missing_file", "path_outside_input", "depth_frame_mismatch", "bad_trajectory_file"],
)
def test_bad_input_is_reported_with_our_message_and_the_next_prompt_works(comfy, case):
    if case == "wrong_file_type":
        prompt = {"1": _load_video(video="not_a_video.mp4"), "2": _preview("1")}
        fragments = ("not_a_video.mp4",)
    elif case == "missing_file":
        prompt = {"1": _load_video(video="clip.mp4", path="nowhere/missing.mp4"), "2": _preview("1")}
        fragments = ("missing.mp4", "does not exist")
    elif case == "path_outside_input":
        prompt = {"1": _load_video(path="../comfyui.log"), "2": _preview("1")}
        fragments = ("outside ComfyUI's folder",)
    elif case == "depth_frame_mismatch":
        prompt = small_working_prompt(0)
        prompt["0"] = _load_video(frame_cap=4)
        prompt["2"]["inputs"]["frames"] = ["0", 0]
        fragments = ("depth has 3 frame(s) but frames has 4",)
    else:
        prompt = small_working_prompt(0)
        prompt["3"]["inputs"].update(camera="trajectory_file", trajectory_path="not_a_video.mp4")
        fragments = ("trajectory file", "not_a_video.mp4")
    entry = comfy.run(prompt, timeout=300)
    err = assert_our_error(entry, *fragments)
    assert "Traceback" not in err["exception_message"]
    assert comfy.alive()
    ok = comfy.run(small_working_prompt(hash(case)), timeout=300)
    assert ok["status"]["status_str"] == "success", ok["status"]
