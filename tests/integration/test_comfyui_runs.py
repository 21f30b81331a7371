"""Prompts executed by a real ComfyUI through /prompt: the render-only workflow end to end, and bad
inputs that must come back as a ComfyUI error carrying our message while the server keeps working."""

from __future__ import annotations

import time

import pytest

from prompts import load_video_node, preview_node, assert_our_error, small_working_prompt
from workflow_tools import load_workflows, to_api_prompt


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
        prompt = {"1": load_video_node(video="not_a_video.mp4"), "2": preview_node("1")}
        fragments = ("not_a_video.mp4",)
    elif case == "missing_file":
        prompt = {"1": load_video_node(video="clip.mp4", path="nowhere/missing.mp4"), "2": preview_node("1")}
        fragments = ("missing.mp4", "does not exist")
    elif case == "path_outside_input":
        prompt = {"1": load_video_node(path="../comfyui.log"), "2": preview_node("1")}
        fragments = ("outside ComfyUI's folder",)
    elif case == "depth_frame_mismatch":
        prompt = small_working_prompt(0)
        prompt["0"] = load_video_node(frame_cap=4)
        prompt["2"]["inputs"]["frames"] = ["0", 0]
        fragments = ("depth has 3 depth map(s) but the clip has 4 frames",)
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
