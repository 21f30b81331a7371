"""The long-clip, several-camera-paths and pick-the-camera workflows run on tiny random-init models
in a real ComfyUI (through /prompt, as the frontend sends them), and the scene's .glb opens in
the real Preview 3D and Load 3D of the editor (headless Chromium, screenshot saved): the viewer
shows the file as written (its normalisation is the identity) and Load 3D's camera reaches
Camera From Load 3D."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from comfy_server import messages
from workflow_tools import load_workflows, to_api_prompt

TINY = {
    "TrajCrafterLoadVideo": dict(video="clip.mp4", frame_cap=9, max_size=160),
    "TrajCrafterLoadDepthModel": dict(precision="fp32"),
    "TrajCrafterEstimateDepth": dict(steps=1, max_res=64),
    "TrajCrafterLoadModel": dict(precision="fp32"),
    "TrajCrafterRenderViews": dict(reference_frames=4, sample_height=48, sample_width=80),
    "TrajCrafterRenderManyViews": dict(reference_frames=4, sample_height=48, sample_width=80),
    "TrajCrafterSampler": dict(steps=1, seed=1),
    "TrajCrafterSamplerMany": dict(steps=1, seed=1),
    "TrajCrafterExportScene3D": dict(max_points=5000),
}


def tiny_prompt(comfy, name, **more):
    """A shipped workflow as the frontend sends it, scaled down for tiny models on CPU."""
    prompt = to_api_prompt(load_workflows()[name], comfy.object_info())
    for node in prompt.values():
        node["inputs"].update(TINY.get(node["class_type"], {}))
        node["inputs"].update(more.get(node["class_type"], {}))
        if node["class_type"] == "SaveVideo":
            node["inputs"]["filename_prefix"] = f"{node['inputs']['filename_prefix']}_{name}_test"
    return prompt


def node_id(prompt, class_type):
    return next(k for k, v in prompt.items() if v["class_type"] == class_type)


def saved_videos(comfy, prefix):
    return sorted((comfy.base / "output" / "trajcrafter").glob(f"{prefix}*.mp4"))


def frame_count(path):
    from trajcrafter_core.video import probe_video

    return probe_video(path).frame_count


@pytest.fixture(scope="module")
def long_input(comfy):
    """A 21-frame clip in the input folder (longer than a 9-frame window)."""
    from trajcrafter_core.synthetic import example_clip
    from trajcrafter_core.video import write_video

    clip = example_clip(num_frames=21, height=90, width=160, seed=5)
    write_video(comfy.base / "input" / "long_clip.mp4", clip["frames"], fps=8)
    return "long_clip.mp4"


def test_long_clip_workflow_gives_every_frame(comfy, long_input):
    prompt = tiny_prompt(comfy, "long_clip", TrajCrafterLoadVideo=dict(video=long_input, frame_cap=0),
                         TrajCrafterSamplingOptions=dict(window_frames=9, overlap_frames=3))
    entry = comfy.run(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (video,) = saved_videos(comfy, "redirected_long_clip_test")
    assert frame_count(video) == 21  # 4 windows of 9 frames, 3 apart: exactly the clip's 21 frames


def test_several_camera_paths_workflow_gives_one_video_per_path(comfy):
    entry = comfy.run(tiny_prompt(comfy, "several_camera_paths"), timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]
    paths = saved_videos(comfy, "paths_several_camera_paths_test")
    comparison = saved_videos(comfy, "paths_side_by_side_several_camera_paths_test")
    assert len(paths) == 3 and len(comparison) == 1
    assert all(frame_count(p) == 9 for p in paths)
    previews = [img for out in entry["outputs"].values() for img in out.get("images", [])]
    assert len(previews) >= 2  # depth + the renders of every path


def _viewer_capture(comfy, camera_info):
    """What Load 3D sends when queued: its view's image, mask and normal (here plain PNGs) and camera."""
    from PIL import Image

    for name in ("view.png", "view_mask.png", "view_normal.png"):
        Image.new("RGB", (8, 8), (40, 40, 40)).save(comfy.base / "input" / name)
    return {"image": "view.png", "mask": "view_mask.png", "normal": "view_normal.png", "camera_info": camera_info,
            "recording": ""}


def test_pick_camera_3d_workflow_exports_then_generates_the_picked_view(comfy):
    from trajcrafter_core.load3d_camera import transform_to_camera_info
    from trajcrafter_core.scene3d import read_viewer_frame

    glb = comfy.base / "input" / "3d" / "trajcrafter" / "scene.glb"
    if glb.exists():
        glb.unlink()
    # first run: Load 3D has no file yet, so its branch fails validation; the scene export runs
    first = tiny_prompt(comfy, "pick_camera_3d")
    status, body = comfy.queue(first)
    assert status == 200, body
    assert node_id(first, "Load3D") in body["node_errors"]
    entry = comfy.wait(body["prompt_id"], timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]
    preview = entry["outputs"][node_id(first, "Preview3D")]
    model_file = preview["result"][0]
    assert model_file.startswith("trajcrafter/scene_") and (comfy.base / "output" / model_file).is_file()
    assert glb.is_file()
    # second run: the user framed a view in Load 3D (here: an orbit of -20 degrees about the centre)
    frame = read_viewer_frame(glb)
    turn = np.radians(-20.0)
    T = np.eye(4)
    T[:3, :3] = [[np.cos(turn), 0, np.sin(turn)], [0, 1, 0], [-np.sin(turn), 0, np.cos(turn)]]
    camera_info = transform_to_camera_info(T, frame, target_distance=2.0)
    second = tiny_prompt(comfy, "pick_camera_3d", Load3D=dict(model_file="3d/trajcrafter/scene.glb",
                                                              image=_viewer_capture(comfy, camera_info)))
    entry = comfy.run(second, timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (video,) = saved_videos(comfy, "picked_view_pick_camera_3d_test")
    assert frame_count(video) == 9


GRAPH_3D = {"nodes": [
    {"key": "scene", "type": "TrajCrafterSyntheticScene", "pos": [0, 0], "widgets": {"num_frames": 5, "width": 512, "height": 288, "scene_seed": 3}},
    {"key": "lift", "type": "TrajCrafterLiftPointCloud", "pos": [0, 420], "widgets": {}},
    {"key": "pose", "type": "TrajCrafterCameraTargetPose", "pos": [360, -300], "widgets": {"phi": -30.0, "r": 0.2}},
    {"key": "traj", "type": "TrajCrafterCameraTrajectory", "pos": [360, 0], "widgets": {"preview_size": 128}},
    {"key": "export", "type": "TrajCrafterExportScene3D", "pos": [720, 0], "widgets": {"filename_prefix": "trajcrafter/browser_scene"}},
    {"key": "p3d", "type": "Preview3D", "pos": [1080, 0], "widgets": {}, "size": [760, 760]},
], "links": [("scene", "frames", "lift", "frames"), ("scene", "depth", "lift", "depth"),
             ("lift", "point_cloud", "traj", "point_cloud"), ("pose", "camera_path", "traj", "camera_path"),
             ("lift", "point_cloud", "export", "point_cloud"),
             ("traj", "trajectory", "export", "trajectory"), ("export", "model_file", "p3d", "model_file")]}

_RECORD_SETUPS = """() => {
  const proto = window.comfyAPI.SceneModelManager.SceneModelManager.prototype;
  if (!proto.__recorded) {
    const setup = proto.setupModel;
    window.__setups = [];
    proto.setupModel = function (model) {
      const out = setup.call(this, model);
      window.__setups.push({scale: model.scale.toArray(), position: model.position.toArray()});
      return out;
    };
    proto.__recorded = true;
  }
  window.__setups = [];
}"""


def _queue_and_wait(fe, comfy):
    before = set((comfy.get("/history") or {}).keys())
    fe.page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    t0 = time.time()
    while time.time() - t0 < 600:
        new = set((comfy.get("/history") or {}).keys()) - before
        if new:
            entry = comfy.history(new.pop())
            if entry and entry["status"].get("status_str") in ("success", "error"):
                return entry
        time.sleep(0.5)
    raise TimeoutError("the prompt did not finish")


def test_the_scene_opens_in_preview_3d_as_written(fe, comfy, shots):
    fe.build(GRAPH_3D)
    fe.page.evaluate(_RECORD_SETUPS)
    entry = _queue_and_wait(fe, comfy)
    assert entry["status"]["status_str"] == "success", entry["status"]
    t0 = time.time()
    while time.time() - t0 < 60 and not fe.page.evaluate("() => window.__setups.length"):
        time.sleep(0.5)
    fe.page.wait_for_timeout(1500)
    setups = fe.page.evaluate("() => window.__setups")
    # ComfyUI's viewer scales a model to 5 units and sets it on the floor: for our file, a no-op
    assert setups and np.allclose(setups[-1]["scale"], 1.0, atol=1e-5) and np.allclose(setups[-1]["position"], 0.0, atol=1e-5)
    alerts = fe.page.evaluate("() => Array.from(document.querySelectorAll('.p-toast-message-error')).map(t => t.innerText)")
    assert alerts == [] and not fe.page_errors, (alerts, fe.page_errors)
    fe.close_dialogs()
    fe.fit_in_editor()
    fe.screenshot(shots / "preview3d_scene.png")
    fe.keep("preview3d_scene")
    print(f"Preview 3D screenshot: {shots / 'preview3d_scene.png'}")


def test_load_3d_shows_the_scene_and_its_camera_reaches_camera_from_load_3d(fe, comfy, shots):
    from trajcrafter_core.load3d_camera import camera_info_to_transform
    from trajcrafter_core.scene3d import read_viewer_frame

    graph = json.loads(json.dumps(GRAPH_3D))
    graph["nodes"] = [n for n in graph["nodes"] if n["key"] != "p3d"]
    graph["links"] = [l for l in graph["links"] if l[2] != "p3d"]
    graph["nodes"] += [
        {"key": "l3d", "type": "Load3D", "pos": [1080, 0], "widgets": {"model_file": "3d/trajcrafter/browser_scene.glb"}, "size": [560, 680]},
        {"key": "pick", "type": "TrajCrafterCameraFromLoad3D", "pos": [1680, 0], "widgets": {}},
        {"key": "pick_traj", "type": "TrajCrafterCameraTrajectory", "pos": [1680, 300], "widgets": {"preview_size": 128}},
        {"key": "show", "type": "PreviewImage", "pos": [1680, 720], "widgets": {}, "size": [320, 260]},
    ]
    graph["links"] += [("l3d", "camera_info", "pick", "camera_info"), ("l3d", "mesh_path", "pick", "mesh_path"),
                       ("lift", "point_cloud", "pick_traj", "point_cloud"), ("pick", "camera_path", "pick_traj", "camera_path"),
                       ("pick_traj", "preview", "show", "images")]
    assert (comfy.base / "input" / "3d" / "trajcrafter" / "browser_scene.glb").is_file()  # from the test above
    fe.build(graph)
    fe.page.evaluate(_RECORD_SETUPS)
    fe.page.wait_for_timeout(3000)  # Load 3D loads its file
    entry = _queue_and_wait(fe, comfy)
    assert entry["status"]["status_str"] == "success", (entry["status"], messages(entry, "execution_error"))
    sent = next(n for n in entry["prompt"][2].values() if n["class_type"] == "Load3D")["inputs"]["image"]["camera_info"]
    assert set(sent) >= {"position", "target", "zoom", "cameraType"}
    T, zoom = camera_info_to_transform(sent, read_viewer_frame(comfy.base / "input" / "3d" / "trajcrafter" / "browser_scene.glb"))
    assert np.isfinite(T).all() and zoom > 0
    setups = fe.page.evaluate("() => window.__setups")
    assert setups and np.allclose(setups[-1]["scale"], 1.0, atol=1e-5)
    fe.fit_in_editor()
    fe.screenshot(shots / "load3d_pick.png")
    print(f"Load 3D screenshot: {shots / 'load3d_pick.png'}; camera sent: {sent}")
