"""The full workflow with tiny random-init checkpoints (temporary models folder) through /prompt,
Cancel during sampling, and model-folder errors that must reach the user as our message."""

from __future__ import annotations

import json
import time

import pytest

from comfy_server import ProgressWatcher, messages
from prompts import assert_our_error, small_working_prompt
from workflow_tools import load_workflows, to_api_prompt


def _node_id(prompt, class_type):
    return next(k for k, v in prompt.items() if v["class_type"] == class_type)


def full_prompt(comfy, name="full_redirect_target_pose", sampler_steps=2, seed=1, **model_inputs):
    """A shipped workflow as ComfyUI's frontend would send it, scaled down for tiny models on CPU."""
    prompt = to_api_prompt(load_workflows()[name], comfy.object_info())
    patches = {
        "TrajCrafterLoadVideo": dict(video="clip.mp4", frame_cap=9, max_size=160),
        "TrajCrafterLoadDepthModel": dict(precision="fp32"),
        "TrajCrafterEstimateDepth": dict(steps=1, max_res=64),
        "TrajCrafterLoadModel": dict(precision="fp32", **model_inputs),
        "TrajCrafterRenderViews": dict(reference_frames=4),
        "TrajCrafterSampler": dict(steps=sampler_steps, seed=seed),
        "SaveVideo": dict(filename_prefix=f"trajcrafter/{name}_test"),
    }
    for node in prompt.values():
        node["inputs"].update(patches.get(node["class_type"], {}))
    return prompt


@pytest.mark.parametrize("name", ["full_redirect_target_pose", "bullet_time"])
def test_full_workflow_runs_with_tiny_models(comfy, name):
    t0 = time.time()
    entry = comfy.run(full_prompt(comfy, name), timeout=900)
    elapsed = time.time() - t0
    assert entry["status"]["status_str"] == "success", entry["status"]
    videos = list((comfy.base / "output" / "trajcrafter").glob(f"{name}_test*.mp4"))
    assert videos and videos[0].stat().st_size > 1000
    previews = [img for out in entry["outputs"].values() for img in out.get("images", [])]
    assert len(previews) >= 3  # depth, camera path, renders
    print(f"{name} with tiny models ran in {elapsed:.1f} s")


def test_cancel_during_sampling_stops_cleanly_and_the_next_run_works(comfy):
    prompt = full_prompt(comfy, sampler_steps=400, seed=2)
    sampler = _node_id(prompt, "TrajCrafterSampler")
    with ProgressWatcher(comfy) as watch:
        status, body = comfy.queue(prompt)
        assert status == 200, body
        watch.wait_for_step(sampler, 2, timeout=600)
        t0 = time.time()
        comfy.post("/interrupt")
        entry = comfy.wait(body["prompt_id"], timeout=300)
        stop_s = time.time() - t0
        last_step = watch.steps[sampler]
    assert messages(entry, "execution_interrupted"), entry["status"]
    assert not messages(entry, "execution_error"), entry["status"]
    assert last_step < 400
    assert comfy.alive()
    print(f"Cancel stopped sampling at step {last_step}/400, {stop_s:.2f} s after /interrupt")
    ok = comfy.run(full_prompt(comfy, seed=3), timeout=900)
    assert ok["status"]["status_str"] == "success", ok["status"]


@pytest.mark.parametrize("case", ["missing_files", "wrong_checkpoint", "direct_cut_too_long"])
def test_model_problems_reach_the_user_as_our_message(comfy, case):
    if case == "missing_files":  # found before the queue runs: /prompt refuses it with our message
        status, body = comfy.queue(full_prompt(comfy, base_model="CogVideoX-Fun-incomplete"))
        details = json.dumps(body.get("node_errors", {}))
        assert status == 400 and "custom_validation_failed" in details, body
        for fragment in ("CogVideoX-Fun-incomplete", "vae/diffusion_pytorch_model", "missing", "download_missing"):
            assert fragment in details
        assert comfy.alive()
        return
    elif case == "wrong_checkpoint":
        prompt = full_prompt(comfy, transformer="TrajectoryCrafter-wrong")
        fragments = ("TrajectoryCrafter-wrong",)
    else:  # direct mode's official cut of 20 frames on a 9-frame clip
        prompt = full_prompt(comfy)
        prompt[_node_id(prompt, "TrajCrafterCameraTrajectory")]["inputs"].update(mode="direct", direct_cut=20)
        fragments = ("direct cut 20 is longer than the clip (9 frames)",)
    entry = comfy.run(prompt, timeout=900)
    err = assert_our_error(entry, *fragments)
    assert "Traceback" not in err["exception_message"]
    assert comfy.alive()
    ok = comfy.run(small_working_prompt(11), timeout=300)
    assert ok["status"]["status_str"] == "success", ok["status"]
