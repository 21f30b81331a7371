"""Many clips: a JSON-lines manifest of clips × camera paths, resumable, spread over processes.

Manifest (``.jsonl``; blank lines and lines starting with ``#`` are skipped), one clip per line::

    {"video": "clips/dojo.mp4", "prompt": "a dojo ...", "cameras": [{"preset": "orbit_left"},
     {"target_pose": [0, -30, 0.3, 0, 0], "mode": "bullet", "name": "bullet"}],
     "depth": "clips/dojo_depth.npy", "frames": 49, "every_nth": 2}

- ``video`` (required) and ``cameras`` (required, a list of camera options: the keyword arguments
  of :func:`trajcrafter_core.redirect.camera_spec`, plus an optional ``name``);
- depth: ``depth`` (a depth file or folder, or a Depth Anything V2 folder), ``depth_anything``
  (folder) or ``depthcrafter`` (``[unet, svd]``), else the command's default depth;
- optional: ``name`` (output folder; default the video's file name), ``prompt``,
  ``negative_prompt``, ``frames`` (0 = all), ``skip_first``, ``every_nth``, ``max_side``, ``seed``,
  ``steps``, ``guidance``, ``size_policy``, ``sample_size`` (``[h, w]``), ``renderer``, ``clean_holes``, ``fov``,
  ``reference_frames``, ``window_frames``, ``overlap_frames``, ``depth_polarity``.

Relative paths are relative to the manifest's folder. Every line is checked before any work,
and a bad one is reported with its line number.

Outputs: ``OUT/<clip name>/<path name>/`` with ``source.mp4``, ``render.mp4``, ``mask.mp4``,
``generated.mp4`` (when a model is given; render-only otherwise), ``preview.png`` and
``summary.json``. A path's folder is written under a hidden name and renamed into place when
complete, so it exists only whole: a run that is killed leaves no partial output (its hidden
leftovers are removed when the clip is taken up again), and a run started again skips every
finished path — the manifest can be resumed any number of times, with any number of processes.

Processes: under ``accelerate launch --multi_gpu`` (or ``torchrun``), process ``r`` of ``n`` takes the
clips ``r, r + n, r + 2n, ...`` of the manifest and runs on its own device (one process per GPU;
across machines the same with ``--num_machines``/``--machine_rank`` and a shared output folder).
Each writes ``OUT/.batch/rank<r>-of-<n>.json``: the clips it took, the paths it wrote, skipped and
failed. A clip that fails is reported and the others go on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .errors import TrajCrafterError
from .specs import CameraSpec, DepthSpec

logger = logging.getLogger(__name__)

__all__ = ["ManifestItem", "read_manifest", "shard", "process_rank", "path_done", "run_batch"]

#: Manifest keys of a clip (besides ``video`` and ``cameras``) and their defaults.
ITEM_DEFAULTS = dict(
    name=None, prompt="", negative_prompt=None, frames=49, skip_first=0, every_nth=1, max_side=1024, seed=43,
    steps=50, guidance=6.0, size_policy="keep_aspect", sample_size=None, renderer="official", clean_holes=True, fov=None,
    reference_frames=10, window_frames=49, overlap_frames=None, depth=None, depth_anything=None,
    depthcrafter=None, depth_polarity="near_bright",
)
_PATH_KEYS = ("video", "depth", "depth_anything", "traj_txt", "trajectory_file")
PARTIAL_PREFIX = ".partial-"
REPORT_DIR = ".batch"


@dataclass
class ManifestItem:
    """One clip of a manifest: where it is (``line``), its output ``name``, the ``video``, the
    camera paths (``(path name, CameraSpec)``) and every other option."""

    line: int
    name: str
    video: str
    cameras: List[Tuple[str, CameraSpec]]
    options: Dict[str, object] = field(default_factory=dict)


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(text)).strip("._")
    return keep[:80] or "path"


def _path_name(index: int, camera: CameraSpec) -> str:
    if camera.preset:
        what = camera.preset
    elif camera.target_pose is not None:
        what = "pose_" + "_".join(f"{v:g}" for v in camera.target_pose)
    elif camera.file is not None and "\n" not in camera.file:
        what = Path(camera.file).stem
    else:
        what = camera.source
    return _slug(f"{index:02d}_{what}_{camera.mode}")


def _item(line_no: int, raw: dict, base: Path) -> ManifestItem:
    if not isinstance(raw, dict):
        raise TrajCrafterError(f"must be a JSON object, got {type(raw).__name__}.")
    unknown = set(raw) - set(ITEM_DEFAULTS) - {"video", "cameras"}
    if unknown:
        raise TrajCrafterError(f"unknown key(s) {', '.join(sorted(unknown))}; known: video, cameras, "
                               f"{', '.join(ITEM_DEFAULTS)}.")
    if not raw.get("video"):
        raise TrajCrafterError("needs \"video\": the clip's path.")
    resolve = lambda p: str(p if Path(p).expanduser().is_absolute() else base / p)  # noqa: E731
    options = {**ITEM_DEFAULTS, **{k: v for k, v in raw.items() if k not in ("video", "cameras")}}
    for key in ("depth", "depth_anything"):
        if options[key]:
            options[key] = resolve(options[key])
    if options["depthcrafter"]:
        if not (isinstance(options["depthcrafter"], list) and len(options["depthcrafter"]) == 2):
            raise TrajCrafterError("\"depthcrafter\" must be [unet folder, svd folder].")
        options["depthcrafter"] = [resolve(p) for p in options["depthcrafter"]]
    video = resolve(raw["video"])
    if not Path(video).is_file():
        raise TrajCrafterError(f"video {raw['video']}: no such file (looked at {video}).")
    cameras = raw.get("cameras")
    if not isinstance(cameras, list) or not cameras:
        raise TrajCrafterError("needs \"cameras\": a non-empty list of camera options, e.g. [{\"preset\": \"orbit_left\"}].")
    from .redirect import camera_spec

    specs, names = [], []
    for k, cam in enumerate(cameras):
        if not isinstance(cam, dict):
            raise TrajCrafterError(f"camera {k + 1} must be an object of camera options, got {cam!r}.")
        cam = dict(cam)
        name = cam.pop("name", None)
        for key in ("traj_txt", "trajectory_file"):
            if cam.get(key) and "\n" not in str(cam[key]):
                cam[key] = resolve(cam[key])
        if "target_pose" in cam and isinstance(cam["target_pose"], list):
            cam["target_pose"] = tuple(cam["target_pose"])
        try:
            spec = camera_spec(**cam)
        except TypeError as exc:
            raise TrajCrafterError(f"camera {k + 1}: {exc}") from None
        except TrajCrafterError as exc:
            raise TrajCrafterError(f"camera {k + 1}: {exc}") from None
        names.append(_slug(name) if name else _path_name(k + 1, spec))
        specs.append(spec)
    if len(set(names)) != len(names):
        raise TrajCrafterError(f"camera names repeat ({', '.join(names)}); give each camera a distinct \"name\".")
    item_name = _slug(options.pop("name") or Path(video).stem)
    return ManifestItem(line_no, item_name, video, list(zip(names, specs)), options)


def read_manifest(path) -> List[ManifestItem]:
    """Every clip of a manifest, checked (files exist, camera options valid, names distinct);
    a problem raises :class:`TrajCrafterError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise TrajCrafterError(f"manifest {path}: no such file.")
    items, seen = [], {}
    for no, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrajCrafterError(f"manifest {path.name} line {no}: not JSON ({exc.msg}).") from None
        try:
            item = _item(no, raw, path.parent)
        except TrajCrafterError as exc:
            raise TrajCrafterError(f"manifest {path.name} line {no}: {exc}") from None
        if item.name in seen:
            raise TrajCrafterError(f"manifest {path.name} line {no}: the name {item.name!r} is also line "
                                   f"{seen[item.name]}'s; give each clip a distinct \"name\".")
        seen[item.name] = no
        items.append(item)
    if not items:
        raise TrajCrafterError(f"manifest {path.name} has no clips.")
    return items


def shard(items: Sequence[ManifestItem], rank: int, world: int) -> List[ManifestItem]:
    """Process ``rank`` of ``world``'s share: clips ``rank, rank + world, ...``."""
    return list(items[rank::world])


def process_rank() -> Tuple[int, int, object]:
    """``(rank, world size, device or None)`` of this process: from accelerate's state when
    launched with several processes (``accelerate launch --multi_gpu`` / ``torchrun``; on a
    machine without GPUs the processes run on the CPU), else ``(0, 1, None)``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, None
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes, state.device


def path_done(out: Path, item: ManifestItem, path_name: str) -> bool:
    """True when the path's output folder exists (it only ever appears whole)."""
    return (out / item.name / path_name).is_dir()


def _clean_partials(folder: Path) -> None:
    if folder.is_dir():
        for leftover in folder.glob(PARTIAL_PREFIX + "*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _depth_spec(item: ManifestItem, defaults: dict) -> DepthSpec:
    from .model_folders import kind_of

    from dataclasses import replace

    o = item.options
    common = dict(polarity=o["depth_polarity"], device=defaults.get("device"))
    if o["depth_anything"]:
        return DepthSpec("depth_anything_v2", o["depth_anything"], **common)
    if o["depthcrafter"]:
        return DepthSpec("depthcrafter", o["depthcrafter"][0], svd_path=o["depthcrafter"][1], **common)
    if o["depth"]:
        kind = kind_of(o["depth"])
        return DepthSpec("depth_anything_v2" if kind == "depth_anything" else "file", o["depth"], **common)
    if defaults.get("depth") is not None:
        spec = defaults["depth"]
        return replace(spec, device=defaults["device"]) if defaults.get("device") else spec
    raise TrajCrafterError("no depth: give \"depth\", \"depth_anything\" or \"depthcrafter\" in the line, or a "
                           "default depth estimator to the command (--depth-anything / --depthcrafter).")


def _write_atomic_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    partial.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(partial, path)


class BatchRunner:
    """Runs one process's share of a manifest (see the module docstring). ``load_pipe()``
    returns the TrajectoryCrafter pipeline (None = render only); it is called once, when the
    first path that needs it comes."""

    def __init__(self, out: Path, *, load_pipe: Optional[Callable[[], object]] = None,
                 default_depth: Optional[DepthSpec] = None, device=None, batch_size: Optional[int] = None,
                 status: Callable[[str], None] = lambda text: None):
        self.out = Path(out)
        self.load_pipe = load_pipe
        self.defaults = dict(depth=default_depth, device=None if device is None else str(device))
        self.batch_size = batch_size
        self.status = status
        self._pipe = None
        self._estimators: dict = {}

    def pipe(self):
        if self._pipe is None and self.load_pipe is not None:
            self.status("loading the TrajectoryCrafter model")
            self._pipe = self.load_pipe()
        return self._pipe

    def _depths(self, item: ManifestItem, clip):
        from .depth.choice import depth_for_frames, load_estimator

        spec = _depth_spec(item, self.defaults)
        if spec.estimator == "file":
            return depth_for_frames(clip.frames, spec, frame_indices=clip.frame_indices, label="depth")
        if spec not in self._estimators:
            self.status(f"loading the depth estimator ({spec.estimator})")
            self._estimators[spec] = load_estimator(spec)
        return depth_for_frames(clip.frames, self._estimators[spec], **spec.estimate_options())

    def run_item(self, item: ManifestItem) -> Tuple[List[str], List[str]]:
        """Write the clip's unfinished paths; returns ``(written, skipped)`` path names."""
        from . import redirect, video
        from .cli import write_outputs

        todo = [(name, spec) for name, spec in item.cameras if not path_done(self.out, item, name)]
        skipped = [name for name, _ in item.cameras if path_done(self.out, item, name)]
        if not todo:
            return [], skipped
        folder = self.out / item.name
        _clean_partials(folder)
        folder.mkdir(parents=True, exist_ok=True)
        staging = {name: folder / f"{PARTIAL_PREFIX}{name}-{uuid.uuid4().hex[:8]}" for name, _ in todo}
        for path in staging.values():
            path.mkdir()
        o = item.options
        started = time.perf_counter()
        clip = video.read_video(item.video, max_frames=o["frames"] or None, skip_first=o["skip_first"],
                                every_nth=o["every_nth"], max_side=o["max_side"] or None)
        depths = self._depths(item, clip)
        conditions = redirect.prepare_conditions_many(
            clip.frames, depths, [spec for _, spec in todo], render_mode=o["renderer"],
            clean_holes=bool(o["clean_holes"]), size_policy=o["size_policy"], fov=o["fov"], sample_size=o["sample_size"],
            num_reference_frames=int(o["reference_frames"]))
        pipe = self.pipe()
        videos = [None] * len(todo)
        notes: List[str] = []
        if pipe is not None:
            videos = redirect.generate(pipe, conditions, prompt=o["prompt"] or "", negative_prompt=o["negative_prompt"],
                                       num_inference_steps=int(o["steps"]), guidance_scale=float(o["guidance"]),
                                       seed=int(o["seed"]), window_frames=o["window_frames"] or None,
                                       overlap_frames=o["overlap_frames"], batch_size=self.batch_size, notes=notes)
        written = []
        for (name, spec), cond, generated in zip(todo, conditions, videos):
            extra = {"generated": cond.kept(generated)} if generated is not None else None
            files = write_outputs(staging[name], cond, clip.fps, extra=extra)
            _write_atomic_json(staging[name] / "summary.json", dict(
                clip=item.name, path=name, video=item.video, line=item.line, camera=spec.describe(),
                frames=int(cond.kept(cond.render).shape[0]), size=list(cond.size), mode=cond.mode,
                generated=generated is not None, notes=cond.notes + notes,
                files=sorted(Path(f).name for f in files.values()) + ["summary.json"],
                seconds=round(time.perf_counter() - started, 2)))
            os.rename(staging[name], folder / name)  # the folder appears whole, or not at all
            written.append(name)
        return written, skipped

    def run(self, items: Sequence[ManifestItem], rank: int = 0, world: int = 1) -> dict:
        """Run ``rank``'s share of ``items``; returns (and writes) this process's report."""
        mine = shard(items, rank, world)
        report = dict(rank=rank, world=world, clips=[i.name for i in mine], written=[], skipped=[], failed=[])
        for item in mine:
            self.status(f"[{rank}/{world}] clip {item.name} (line {item.line}): {len(item.cameras)} camera path(s)")
            try:
                written, skipped = self.run_item(item)
            except TrajCrafterError as exc:
                report["failed"].append(dict(clip=item.name, line=item.line, error=str(exc)))
                self.status(f"[{rank}/{world}] clip {item.name} failed: {exc}")
                _clean_partials(self.out / item.name)
                continue
            report["written"] += [f"{item.name}/{n}" for n in written]
            report["skipped"] += [f"{item.name}/{n}" for n in skipped]
        _write_atomic_json(self.out / REPORT_DIR / f"rank{rank}-of-{world}.json", report)
        return report


def run_batch(manifest, out, *, load_pipe=None, default_depth: Optional[DepthSpec] = None,
              batch_size: Optional[int] = None, status: Callable[[str], None] = lambda text: None) -> dict:
    """Read and check ``manifest``, then run this process's share (see the module docstring)."""
    items = read_manifest(manifest)
    rank, world, device = process_rank()
    runner = BatchRunner(Path(out), load_pipe=(lambda: load_pipe(device)) if load_pipe else None,
                         default_depth=default_depth, device=device, batch_size=batch_size, status=status)
    return runner.run(items, rank, world)
