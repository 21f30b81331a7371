"""The example workflows, as specs the live frontend turns into ``workflows/<name>.json``.

A spec is ``{"nodes": [...], "links": [...]}``: each node has a ``key``, a node ``type``, a
``pos`` and the widget values that differ from the defaults; each link is
``(source key, output name, target key, input name)``. ``make_workflows.py`` builds them in the
real frontend (so the JSON is exactly what ComfyUI saves) and writes a thumbnail of each.
"""

from __future__ import annotations

SAMPLE_VIDEO = "example.mp4 [example]"  # bundled with the pack: runs on a fresh install
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
        _node("pose", "TrajCrafterCameraTargetPose", (400, -120), theta=10.0, phi=-30.0, r=0.3, x=0.0, y=0.0),
        _node("traj", "TrajCrafterCameraTrajectory", (400, 60), mode="gradual"),
        _node("render", "TrajCrafterRenderViews", (760, 60), render_mode="official", clean_holes=True,
              size_policy="keep_aspect"),
        _node("video", "CreateVideo", (1220, 420)),
        _node("save", "SaveVideo", (1220, 560), filename_prefix="trajcrafter/render_only", size=(420, 130)),
    ]
    links = [
        ("scene", "frames", "lift", "frames"),
        ("scene", "depth", "lift", "depth"),
        ("lift", "point_cloud", "traj", "point_cloud"),
        ("pose", "camera_path", "traj", "camera_path"),
        ("lift", "point_cloud", "render", "point_cloud"),
        ("traj", "trajectory", "render", "trajectory"),
        ("render", "renders", "video", "images"),
        ("scene", "fps", "video", "fps"),
        ("video", "VIDEO", "save", "video"),
    ]
    return {"nodes": nodes, "links": links}


NOTE_FULL = (
    "## TrajectoryCrafter: redirect the camera of a video\n"
    "1. **Load Video**: upload your clip (the bundled `example.mp4` runs as is; 49 frames, read at a 1024-px "
    "long side like the official demo; Render Views resizes to the model's 384x672 for 16:9 clips).\n"
    "2. Weights go in `ComfyUI/models/trajectorycrafter/` with their Hub names: "
    "`TrajectoryCrafter`, `CogVideoX-Fun-V1.1-5b-InP`, `DepthCrafter`, "
    "`stable-video-diffusion-img2vid-xt` (or turn on *download_missing* in the loaders).\n"
    "3. The depth, camera path and render nodes show their previews (holes magenta) before the sampler runs.\n"
    "4. Describe the video in the sampler's prompt."
)


def _full(camera, note=NOTE_FULL, video_widgets=None, depth="estimate"):
    """Video → depth → point cloud → camera path → renders → sampler → mp4, with previews.

    ``camera``: ``(camera node type, its widgets, Camera Trajectory's widgets)``."""
    source_type, source_widgets, schedule_widgets = camera
    video_widgets = {**dict(video=SAMPLE_VIDEO, frame_cap=49, skip_first=0, every_nth=1, max_size=1024),
                     **(video_widgets or {})}
    nodes = [
        _node("note", "MarkdownNote", (40, -300), size=(700, 200), text=note),
        _node("video", "TrajCrafterLoadVideo", (40, 60), size=(320, 470), **video_widgets),
        _node("lift", "TrajCrafterLiftPointCloud", (780, 60), intrinsics="official"),
        _node("source", source_type, (1140, -200), **source_widgets),
        _node("traj", "TrajCrafterCameraTrajectory", (1140, 60), **schedule_widgets),
        _node("render", "TrajCrafterRenderViews", (1520, 60), render_mode="official", clean_holes=True,
              size_policy="keep_aspect"),
        _node("model", "TrajCrafterLoadModel", (1520, 420), precision="bf16", memory_preset="24 GB"),
        _node("sampler", "TrajCrafterSampler", (1900, 60), size=(360, 460), prompt=PROMPT, steps=50, guidance=6.0,
              seed=43, control_after_generate="fixed", scheduler="DDIM_Origin"),
        _node("out", "CreateVideo", (2300, 60)),
        _node("save", "SaveVideo", (2300, 200), filename_prefix="trajcrafter/redirected", size=(360, 130)),
    ]
    links = [
        ("video", "frames", "lift", "frames"),
        ("source", "camera_path", "traj", "camera_path"),
        ("depthnode", "depth", "lift", "depth"),
        ("lift", "point_cloud", "traj", "point_cloud"),
        ("lift", "point_cloud", "render", "point_cloud"),
        ("traj", "trajectory", "render", "trajectory"),
        ("model", "model", "sampler", "model"),
        ("render", "conditions", "sampler", "conditions"),
        ("sampler", "frames", "out", "images"),
        ("video", "fps", "out", "fps"),
        ("out", "VIDEO", "save", "video"),
    ]
    if depth == "estimate":
        nodes += [
            _node("depthmodel", "TrajCrafterLoadDepthModel", (400, 60), estimator="depthcrafter", precision="auto"),
            _node("depthnode", "TrajCrafterEstimateDepth", (400, 340)),
        ]
        links += [("depthmodel", "depth_model", "depthnode", "depth_model"), ("video", "frames", "depthnode", "frames")]
    else:  # another pack's depth IMAGE; here a depth video loaded by core nodes
        nodes += [
            _node("depthvideo", "TrajCrafterLoadVideo", (400, -40), title="Load depth video (any depth pack's output)",
                  size=(340, 470), video="example_depth.mp4 [example]", frame_cap=49, skip_first=0, every_nth=1,
                  max_size=1024),
            _node("depthnode", "TrajCrafterDepthFromImage", (400, 460), polarity="near_bright"),
        ]
        links += [
            ("depthvideo", "frames", "depthnode", "depth_image"),
            ("video", "frames", "depthnode", "frames"),
        ]
    return {"nodes": nodes, "links": links}


def _pose(mode, theta, phi, r, x=0.0, y=0.0):
    return ("TrajCrafterCameraTargetPose", dict(theta=theta, phi=phi, r=r, x=x, y=y), dict(mode=mode))


def full_redirect_target_pose():
    """The official run.sh example: gradual, target pose (0, -30, 0.3, 0, 0)."""
    return _full(_pose("gradual", 0.0, -30.0, 0.3))


def bullet_time():
    """Freeze the last frame while the camera orbits; reference frames come from the end."""
    return _full(_pose("bullet", 0.0, -40.0, 0.2), note=NOTE_FULL + "\n\n**Bullet time**: the last frame is frozen while the camera orbits around it.")


def dolly_zoom():
    """Dolly in by half the radius while zooming out: the centre keeps its size (official zoom)."""
    return _full(_pose("dolly_zoom", 0.0, 0.0, 0.5), note=NOTE_FULL + "\n\n**Dolly zoom**: the camera moves in while the focal length halves.")


def trajectory_file():
    """A camera path from a file: here the bundled example (official theta / phi / r txt format)."""
    return _full(
        ("TrajCrafterCameraTrajectoryFile", dict(trajectory_file="swing.txt [example]"), dict(mode="gradual")),
        note=NOTE_FULL + "\n\n**Trajectory file**: pick an official .txt (theta, phi, r lines) from the input "
        "folder or the bundled examples, or type its path; RealEstate10K / nerfstudio paths go through "
        "Import Camera Path.",
    )


def external_depth():
    """Depth from another pack's IMAGE batch (here a depth video loaded with core nodes)."""
    return _full(
        _pose("gradual", 0.0, -30.0, 0.3),
        depth="image",
        note=NOTE_FULL.replace("`DepthCrafter`, `stable-video-diffusion-img2vid-xt` ", "")
        + "\n\n**External depth**: load the depth video of the *same frames* (any depth pack's output, "
        "near = bright) and connect it to Depth From Image; no depth model is needed.",
    )


NOTE_LONG = NOTE_FULL.replace("(49 frames, read", "(**frame cap 0: every frame** of a clip of any length, read") + (
    "\n\n**Long clip**: the sampler generates 49-frame windows that overlap by 13 frames (Sampling Options); each "
    "window continues the last (it sees the previous window's generated frames as known content) and the seams "
    "are cross-faded, so the video has every frame of the clip. Memory is that of one window; time grows with the length."
)


def long_clip():
    """Every frame of a clip, generated in overlapping windows that continue each other."""
    wf = _full(_pose("gradual", 0.0, -30.0, 0.3), note=NOTE_LONG, video_widgets=dict(frame_cap=0))
    wf["nodes"].append(_node("options", "TrajCrafterSamplingOptions", (1900, 560), window_frames=49, overlap_frames=13,
                             batch_size=0))
    wf["links"].append(("options", "options", "sampler", "options"))
    return wf


NOTE_PATHS = (
    "## Several camera paths of one clip\n"
    "Depth, point cloud, prompt encoding and reference frames are computed once; the three paths are rendered "
    "together and sampled in one transformer batch (Sampling Options' batch_size: 0 = all, halved when GPU memory runs "
    "out). Each video equals what the single-path sampler gives for that path with the same seed.\n"
    "1. Upload your clip in **Load Video**; weights in `ComfyUI/models/trajectorycrafter/` (or *download_missing*).\n"
    "2. Add paths: chain another **Camera Paths** into `paths` for more than six.\n"
    "3. `videos` is a list: the Save Video after it writes one file per path; `comparison` shows them side by side."
)


def several_camera_paths():
    """One clip, three camera paths (an orbit, ReCamMaster's eased arc, bullet time): one video each + a comparison."""
    nodes = [
        _node("note", "MarkdownNote", (40, -320), size=(760, 220), text=NOTE_PATHS),
        _node("video", "TrajCrafterLoadVideo", (40, 60), size=(320, 470), video=SAMPLE_VIDEO, frame_cap=49,
              skip_first=0, every_nth=1, max_size=1024),
        _node("depthmodel", "TrajCrafterLoadDepthModel", (400, 60), estimator="depthcrafter", precision="auto"),
        _node("depthnode", "TrajCrafterEstimateDepth", (400, 340)),
        _node("lift", "TrajCrafterLiftPointCloud", (780, 60), intrinsics="official"),
        _node("orbit_cam", "TrajCrafterCameraPreset", (780, 340), title="Path 1: orbit left", preset="orbit_left"),
        _node("arc_cam", "TrajCrafterCameraPreset", (780, 560), title="Path 2: ReCamMaster arc right, eased",
              preset="recam_arc_right", easing="ease_in_out"),
        _node("bullet_cam", "TrajCrafterCameraTargetPose", (780, 820), title="Path 3: bullet time", theta=0.0,
              phi=-40.0, r=0.2, x=0.0, y=0.0),
        _node("orbit", "TrajCrafterCameraTrajectory", (1140, -200), title="Path 1", mode="gradual"),
        _node("arc", "TrajCrafterCameraTrajectory", (1140, 420), title="Path 2", mode="gradual"),
        _node("bullet", "TrajCrafterCameraTrajectory", (1140, 1040), title="Path 3", mode="bullet"),
        _node("paths", "TrajCrafterCameraPaths", (1520, 60)),
        _node("render", "TrajCrafterRenderManyViews", (1520, 300), render_mode="official", clean_holes=True,
              size_policy="keep_aspect"),
        _node("model", "TrajCrafterLoadModel", (1520, 760), precision="bf16", memory_preset="24 GB"),
        _node("options", "TrajCrafterSamplingOptions", (1520, 1100), window_frames=49, overlap_frames=13, batch_size=0),
        _node("sampler", "TrajCrafterSamplerMany", (1900, 60), size=(360, 480), prompt=PROMPT, steps=50, guidance=6.0,
              seed=43, control_after_generate="fixed", scheduler="DDIM_Origin"),
        _node("out", "CreateVideo", (2320, 60)),
        _node("save", "SaveVideo", (2320, 200), title="Save one video per path", filename_prefix="trajcrafter/paths",
              size=(360, 130)),
        _node("out_cmp", "CreateVideo", (2320, 420)),
        _node("save_cmp", "SaveVideo", (2320, 560), title="Save the side-by-side comparison",
              filename_prefix="trajcrafter/paths_side_by_side", size=(360, 130)),
    ]
    links = [
        ("depthmodel", "depth_model", "depthnode", "depth_model"), ("video", "frames", "depthnode", "frames"),
        ("video", "frames", "lift", "frames"), ("depthnode", "depth", "lift", "depth"),
        ("lift", "point_cloud", "orbit", "point_cloud"), ("lift", "point_cloud", "arc", "point_cloud"),
        ("lift", "point_cloud", "bullet", "point_cloud"),
        ("orbit_cam", "camera_path", "orbit", "camera_path"), ("arc_cam", "camera_path", "arc", "camera_path"),
        ("bullet_cam", "camera_path", "bullet", "camera_path"),
        ("orbit", "trajectory", "paths", "trajectory_1"), ("arc", "trajectory", "paths", "trajectory_2"),
        ("bullet", "trajectory", "paths", "trajectory_3"),
        ("lift", "point_cloud", "render", "point_cloud"), ("paths", "paths", "render", "paths"),
        ("model", "model", "sampler", "model"), ("render", "conditions", "sampler", "conditions"),
        ("options", "options", "sampler", "options"),
        ("sampler", "videos", "out", "images"), ("video", "fps", "out", "fps"), ("out", "VIDEO", "save", "video"),
        ("sampler", "comparison", "out_cmp", "images"), ("video", "fps", "out_cmp", "fps"),
        ("out_cmp", "VIDEO", "save_cmp", "video"),
    ]
    return {"nodes": nodes, "links": links}


NOTE_PICK = (
    "## Pick the new camera in 3-D\n"
    "1. Upload your clip in **Load Video** and run once: **Export Scene 3D** writes the point cloud with the source "
    "camera (white) and the preview path's cameras (cyan → orange) and shows it in **Preview 3D**; it also saves "
    "`input/3d/trajcrafter/scene.glb` (the Load 3D branch reports a missing file on this first run).\n"
    "2. Press **R** (refresh), choose `3d/trajcrafter/scene.glb` in **Load 3D**, orbit / pan / zoom to the view "
    "you want.\n"
    "3. Run again: **Camera From Load 3D** turns that view into a camera path from the source view (eased), "
    "**Camera Trajectory** schedules it over the clip (turning about the orbit centre) and the sampler generates it."
)


def pick_camera_3d():
    """See the scene and the camera path in Preview 3D, frame the new view in Load 3D, generate that view."""
    nodes = [
        _node("note", "MarkdownNote", (40, -320), size=(760, 220), text=NOTE_PICK),
        _node("video", "TrajCrafterLoadVideo", (40, 60), size=(320, 470), video=SAMPLE_VIDEO, frame_cap=49,
              skip_first=0, every_nth=1, max_size=1024),
        _node("depthmodel", "TrajCrafterLoadDepthModel", (400, 60), estimator="depthcrafter", precision="auto"),
        _node("depthnode", "TrajCrafterEstimateDepth", (400, 340)),
        _node("lift", "TrajCrafterLiftPointCloud", (780, 60), intrinsics="official"),
        _node("pose", "TrajCrafterCameraTargetPose", (780, 340), title="Preview path (drawn in the 3-D scene)",
              theta=0.0, phi=-30.0, r=0.3, x=0.0, y=0.0),
        _node("traj", "TrajCrafterCameraTrajectory", (1140, 60), title="Preview path schedule", mode="gradual"),
        _node("export", "TrajCrafterExportScene3D", (1520, 60), max_points=100000, filename_prefix="trajcrafter/scene",
              for_load_3d=True),
        _node("preview3d", "Preview3D", (1900, -260), title="Preview 3D: the scene and the camera path", size=(480, 560)),
        _node("load3d", "Load3D", (1520, 360), title="Load 3D: frame the new view", size=(420, 600), model_file=""),
        _node("pick", "TrajCrafterCameraFromLoad3D", (1980, 360), easing="ease_in_out"),
        _node("pick_traj", "TrajCrafterCameraTrajectory", (1980, 600), title="Picked path schedule", mode="gradual",
              radius_scale=1.0),
        _node("render", "TrajCrafterRenderViews", (2360, 360), render_mode="official", clean_holes=True,
              size_policy="keep_aspect"),
        _node("model", "TrajCrafterLoadModel", (2360, 760), precision="bf16", memory_preset="24 GB"),
        _node("sampler", "TrajCrafterSampler", (2740, 360), size=(360, 460), prompt=PROMPT, steps=50, guidance=6.0,
              seed=43, control_after_generate="fixed", scheduler="DDIM_Origin"),
        _node("out", "CreateVideo", (3140, 360)),
        _node("save", "SaveVideo", (3140, 500), filename_prefix="trajcrafter/picked_view", size=(360, 130)),
    ]
    links = [
        ("depthmodel", "depth_model", "depthnode", "depth_model"), ("video", "frames", "depthnode", "frames"),
        ("video", "frames", "lift", "frames"), ("depthnode", "depth", "lift", "depth"),
        ("lift", "point_cloud", "traj", "point_cloud"), ("pose", "camera_path", "traj", "camera_path"),
        ("lift", "point_cloud", "export", "point_cloud"),
        ("traj", "trajectory", "export", "trajectory"), ("export", "model_file", "preview3d", "model_file"),
        ("load3d", "camera_info", "pick", "camera_info"), ("load3d", "mesh_path", "pick", "mesh_path"),
        ("lift", "point_cloud", "pick_traj", "point_cloud"), ("pick", "camera_path", "pick_traj", "camera_path"),
        ("lift", "point_cloud", "render", "point_cloud"), ("pick_traj", "trajectory", "render", "trajectory"),
        ("model", "model", "sampler", "model"), ("render", "conditions", "sampler", "conditions"),
        ("sampler", "frames", "out", "images"), ("video", "fps", "out", "fps"), ("out", "VIDEO", "save", "video"),
    ]
    return {"nodes": nodes, "links": links}


WORKFLOWS = {
    "full_redirect_target_pose": full_redirect_target_pose,
    "bullet_time": bullet_time,
    "dolly_zoom": dolly_zoom,
    "trajectory_file": trajectory_file,
    "external_depth": external_depth,
    "render_only_synthetic": render_only_synthetic,
    "long_clip": long_clip,
    "several_camera_paths": several_camera_paths,
    "pick_camera_3d": pick_camera_3d,
}
