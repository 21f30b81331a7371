"""Small API prompts and result checks shared by the integration tests."""

from __future__ import annotations

from comfy_server import messages


def load_video_node(**overrides):
    inputs = {"video": "clip.mp4", "frame_cap": 9, "skip_first": 0, "every_nth": 1, "max_size": 160, "path": ""}
    inputs.update(overrides)
    return {"class_type": "TrajCrafterLoadVideo", "inputs": inputs}


def synthetic_node(num_frames=5, width=160, height=96):
    return {"class_type": "TrajCrafterSyntheticScene", "inputs": {
        "scene_seed": 1, "num_frames": num_frames, "width": width, "height": height, "spheres": 2, "boxes": 1}}


def preview_node(src, slot=0):
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
        "1": synthetic_node(num_frames=3, width=96, height=64),
        "2": {"class_type": "TrajCrafterLiftPointCloud", "inputs": {"frames": ["1", 0], "depth": ["1", 1], "intrinsics": "official", "fov_degrees": 60.0}},
        "6": {"class_type": "TrajCrafterCameraTargetPose", "inputs": {
            "theta": float(tag % 10), "phi": -20.0, "r": 0.2, "x": 0.0, "y": 0.0}},
        "3": {"class_type": "TrajCrafterCameraTrajectory", "inputs": {
            "point_cloud": ["2", 0], "camera_path": ["6", 0], "mode": "gradual", "direct_cut": 20, "anchor": 0,
            "radius_scale": 1.0, "preview_size": 128}},
        "4": {"class_type": "TrajCrafterRenderViews", "inputs": {"point_cloud": ["2", 0], "trajectory": ["3", 0], "render_mode": "official", "clean_holes": True, "size_policy": "keep_aspect"}},
        "5": preview_node("4", 3),
    }
