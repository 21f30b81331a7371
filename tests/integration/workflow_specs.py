"""The example workflows, as specs the live frontend turns into ``workflows/<name>.json``.

A spec is ``{"nodes": [...], "links": [...]}``: each node has a ``key``, a node ``type``, a
``pos`` and the widget values that differ from the defaults; each link is
``(source key, output name, target key, input name)``. ``make_workflows.py`` builds them in the
real frontend (so the JSON is exactly what ComfyUI saves) and writes a thumbnail of each.
"""

from __future__ import annotations

SAMPLE_VIDEO = "example.mp4"
PROMPT = (
    "A scenic view filmed with a smooth, steady camera; natural light, rich detail, sharp focus."
)


def _node(key, type_, pos, title=None, size=None, **widgets):
    n = {"key": key, "type": type_, "pos": list(pos), "widgets": widgets}
    if title:
        n["title"] = title
    if size:
        n["size"] = list(size)
    return n


def render_only_synthetic():
    """No file, no weights: synthetic clip → point cloud → camera path → renders + previews + mp4."""
    nodes = [
        _node("scene", "TrajCrafterSyntheticScene", (40, 60), num_frames=25, width=512, height=288),
        _node("lift", "TrajCrafterLiftPointCloud", (40, 360), intrinsics="official"),
        _node("traj", "TrajCrafterCameraTrajectory", (400, 60), mode="gradual", camera="target_pose",
              theta=10.0, phi=-30.0, r=0.3, x=0.0, y=0.0),
        _node("render", "TrajCrafterRenderViews", (760, 60), render_mode="official", clean_holes=True),
        _node("show_path", "PreviewImage", (760, 240), title="Camera path (top | side)", size=(420, 280)),
        _node("show_render", "PreviewImage", (1220, 60), title="Renders (holes magenta)", size=(420, 300)),
        _node("video", "CreateVideo", (1220, 420)),
        _node("save", "SaveVideo", (1220, 560), filename_prefix="trajcrafter/render_only", size=(420, 130)),
    ]
    links = [
        ("scene", "frames", "lift", "frames"),
        ("scene", "depth", "lift", "depth"),
        ("lift", "point_cloud", "traj", "point_cloud"),
        ("lift", "point_cloud", "render", "point_cloud"),
        ("traj", "trajectory", "render", "trajectory"),
        ("traj", "preview", "show_path", "images"),
        ("render", "preview", "show_render", "images"),
        ("render", "renders", "video", "images"),
        ("scene", "fps", "video", "fps"),
        ("video", "VIDEO", "save", "video"),
    ]
    return {"nodes": nodes, "links": links}


WORKFLOWS = {
    "render_only_synthetic": render_only_synthetic,
}
