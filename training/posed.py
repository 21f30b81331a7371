"""Posed static sequences: per-frame image, depth, intrinsics and camera-to-world pose.

Two readers produce the same :class:`PosedSequence`:

1. **Our on-disk format** (:func:`read_posed_sequence`, written by :func:`write_posed_sequence`)::

       <scene>/cameras.json
       <scene>/images/<name>.png|.jpg       RGB frames
       <scene>/depth/<name>.npy             float32 [H, W] z-depth (0 or non-finite = no depth)

   ``cameras.json``::

       {"format": "trajcrafter-posed-sequence", "version": 1,
        "depth_scale": 1.0,                  # multiply stored depth by this to get scene units
        "frames": [{"image": "images/000000.png", "depth": "depth/000000.npy",
                    "width": 640, "height": 360,
                    "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],     # pixels, centre of pixel
                                                                    # (0,0) at (0,0)
                    "c2w": [[...4 x 4...]]}, ...]}                  # OpenCV camera axes

   ``c2w`` maps camera coordinates (x right, y down, z forward) to world coordinates; depth is
   in the same units as the translations. Frames are listed in temporal order.

2. **A COLMAP text model** (:func:`read_colmap_sequence`): ``cameras.txt`` + ``images.txt``
   (world-to-camera quaternion + translation) and per-image depth maps — COLMAP dense
   ``<name>.geometric.bin`` / ``.photometric.bin`` arrays, or ``<stem>.npy``. Only undistorted
   pinhole models are accepted (run ``colmap image_undistorter`` first). COLMAP puts the centre
   of the top-left pixel at (0.5, 0.5); we shift the principal point by -0.5 to our convention.

Frames load lazily (:meth:`PosedSequence.load`) so long sequences are not held in memory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from trajcrafter_core.camera import rescale_intrinsics
from trajcrafter_core.errors import MissingFilesError, TrajCrafterError

FORMAT_NAME = "trajcrafter-posed-sequence"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class PosedFrame:
    """One frame's files and camera (``K`` at the image's own size ``(height, width)``)."""

    name: str
    image_path: Path
    depth_loader: Callable[[], np.ndarray]
    depth_source: str
    K: torch.Tensor  # float64 [3, 3]
    cam_to_world: torch.Tensor  # float64 [4, 4]
    height: int
    width: int


@dataclass
class PosedClip:
    """Frames loaded at one size: ``frames`` [T,H,W,3] 0..1, ``depths`` [T,H,W] (0 = unknown),
    ``intrinsics`` [T,3,3], ``cam_to_world`` [T,4,4] (float32, OpenCV axes)."""

    frames: torch.Tensor
    depths: torch.Tensor
    intrinsics: torch.Tensor
    cam_to_world: torch.Tensor
    names: List[str]


class PosedSequence:
    """An ordered list of :class:`PosedFrame` read from disk."""

    def __init__(self, name: str, frames: Sequence[PosedFrame]):
        if not frames:
            raise TrajCrafterError(f"posed sequence {name} has no frames.")
        self.name = name
        self.frames = list(frames)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def cam_to_world(self) -> torch.Tensor:
        return torch.stack([f.cam_to_world for f in self.frames]).float()

    def load(self, indices: Sequence[int], height: int, width: int) -> PosedClip:
        """Load frames ``indices`` resized to ``height`` x ``width`` (intrinsics rescaled).

        Depth is resized with nearest neighbour (no blending across depth edges); a depth map
        at a different size than its image is fine (COLMAP may write smaller ones).
        """
        from PIL import Image

        imgs, deps, Ks, poses = [], [], [], []
        for i in indices:
            fr = self.frames[i]
            if not fr.image_path.is_file():
                raise MissingFilesError(f"sequence {self.name}: image {fr.image_path} is missing.")
            with Image.open(fr.image_path) as im:
                rgb = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy())
            if tuple(rgb.shape[:2]) != (fr.height, fr.width):
                raise TrajCrafterError(
                    f"sequence {self.name}: image {fr.image_path} is {rgb.shape[1]}x{rgb.shape[0]} but its "
                    f"camera says {fr.width}x{fr.height}; fix the camera file."
                )
            depth = _checked_depth(fr)
            img = rgb.permute(2, 0, 1)[None].float() / 255.0
            img = F.interpolate(img, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
            imgs.append(img[0].permute(1, 2, 0).clamp(0, 1))
            d = torch.from_numpy(depth)[None, None]
            deps.append(F.interpolate(d, size=(height, width), mode="nearest")[0, 0])
            Ks.append(rescale_intrinsics(fr.K, (fr.height, fr.width), (height, width)))
            poses.append(fr.cam_to_world)
        return PosedClip(
            frames=torch.stack(imgs).float(),
            depths=torch.stack(deps).float(),
            intrinsics=torch.stack(Ks).float(),
            cam_to_world=torch.stack(poses).float(),
            names=[self.frames[i].name for i in indices],
        )


def _checked_depth(fr: PosedFrame) -> np.ndarray:
    try:
        depth = fr.depth_loader()
    except FileNotFoundError:
        raise MissingFilesError(
            f"depth map for frame {fr.name} is missing ({fr.depth_source}); every frame needs a depth map "
            f"(estimate or reconstruct depth first)."
        ) from None
    except (ValueError, OSError) as exc:
        raise TrajCrafterError(f"depth map {fr.depth_source} for frame {fr.name} cannot be read: {exc}") from None
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim == 3 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise TrajCrafterError(f"depth map {fr.depth_source} must be [H, W], got shape {list(depth.shape)}.")
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
    if not (depth > 0).any():
        raise TrajCrafterError(f"depth map {fr.depth_source} for frame {fr.name} has no valid (> 0) value.")
    return depth


def _matrix(value, shape: Tuple[int, int], where: str) -> torch.Tensor:
    try:
        m = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError):
        raise TrajCrafterError(f"{where} must be a {shape[0]}x{shape[1]} list of numbers.") from None
    if tuple(m.shape) != shape or not bool(torch.isfinite(m).all()):
        raise TrajCrafterError(f"{where} must be a finite {shape[0]}x{shape[1]} matrix, got shape {list(m.shape)}.")
    return m


def _check_K(K: torch.Tensor, where: str) -> torch.Tensor:
    if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(K[2, 2] - 1) > 1e-6 or K[2, 0] != 0 or K[2, 1] != 0:
        raise TrajCrafterError(f"{where} must be [[fx,0,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0.")
    return K


def _check_pose(P: torch.Tensor, where: str) -> torch.Tensor:
    R = P[:3, :3]
    if (P[3] - torch.tensor([0, 0, 0, 1.0], dtype=P.dtype)).abs().max() > 1e-6 or \
            (R @ R.T - torch.eye(3, dtype=P.dtype)).abs().max() > 1e-3 or torch.det(R) < 0:
        raise TrajCrafterError(f"{where} must be a rigid 4x4 camera-to-world matrix (rotation + translation).")
    return P


# ---------------------------------------------------------------------------------------
# Our format
# ---------------------------------------------------------------------------------------


def read_posed_sequence(scene_dir: str | Path) -> PosedSequence:
    """Read ``<scene_dir>/cameras.json`` (format in the module docstring)."""
    scene = Path(scene_dir)
    cam_file = scene / "cameras.json"
    if not cam_file.is_file():
        raise MissingFilesError(f"posed sequence {scene}: {cam_file.name} is missing (see training/README.md for the format).")
    try:
        doc = json.loads(cam_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrajCrafterError(f"{cam_file} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise TrajCrafterError(f"{cam_file} must be a JSON object with \"format\": \"{FORMAT_NAME}\".")
    if doc.get("version") != 1:
        raise TrajCrafterError(f"{cam_file}: unsupported version {doc.get('version')!r} (this reader knows 1).")
    allowed = {"format", "version", "depth_scale", "frames"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise TrajCrafterError(f"{cam_file}: unknown key(s) {unknown}; allowed: {sorted(allowed)}.")
    scale = float(doc.get("depth_scale", 1.0))
    if not math.isfinite(scale) or scale <= 0:
        raise TrajCrafterError(f"{cam_file}: depth_scale must be > 0, got {scale}.")
    frames = []
    for i, entry in enumerate(doc.get("frames") or []):
        where = f"{cam_file} frames[{i}]"
        fkeys = {"image", "depth", "width", "height", "K", "c2w"}
        if not isinstance(entry, dict) or set(entry) != fkeys:
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise TrajCrafterError(f"{where} must have exactly the keys {sorted(fkeys)}, got {got}.")
        if "depth" not in entry or not entry["depth"]:
            raise TrajCrafterError(f"{where}: depth path is missing; every frame needs a depth map.")
        depth_path = scene / entry["depth"]
        frames.append(PosedFrame(
            name=Path(entry["image"]).stem,
            image_path=scene / entry["image"],
            depth_loader=(lambda p=depth_path, s=scale: np.load(p, allow_pickle=False) * s),
            depth_source=str(depth_path),
            K=_check_K(_matrix(entry["K"], (3, 3), f"{where}.K"), f"{where}.K"),
            cam_to_world=_check_pose(_matrix(entry["c2w"], (4, 4), f"{where}.c2w"), f"{where}.c2w"),
            height=int(entry["height"]),
            width=int(entry["width"]),
        ))
    return PosedSequence(scene.name, frames)


def write_posed_sequence(scene_dir: str | Path, frames: torch.Tensor, depths: torch.Tensor,
                         intrinsics: torch.Tensor, cam_to_world: torch.Tensor) -> Path:
    """Write a sequence in our format: frames [T,H,W,3] 0..1, depths [T,H,W], K [T,3,3], c2w [T,4,4]."""
    from PIL import Image

    scene = Path(scene_dir)
    (scene / "images").mkdir(parents=True, exist_ok=True)
    (scene / "depth").mkdir(parents=True, exist_ok=True)
    T, H, W, _ = frames.shape
    K = intrinsics.expand(T, 3, 3) if intrinsics.ndim == 3 else intrinsics.expand(T, 3, 3)
    entries = []
    for t in range(T):
        name = f"{t:06d}"
        rgb = (frames[t].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        Image.fromarray(rgb).save(scene / "images" / f"{name}.png")
        np.save(scene / "depth" / f"{name}.npy", depths[t].float().numpy())
        entries.append({"image": f"images/{name}.png", "depth": f"depth/{name}.npy", "width": W, "height": H,
                        "K": K[t].double().tolist(), "c2w": cam_to_world[t].double().tolist()})
    doc = {"format": FORMAT_NAME, "version": 1, "depth_scale": 1.0, "frames": entries}
    (scene / "cameras.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return scene


# ---------------------------------------------------------------------------------------
# COLMAP text model
# ---------------------------------------------------------------------------------------

# model -> (number of params, number of leading focal/principal-point params)
_PINHOLE_MODELS = {"SIMPLE_PINHOLE": (3, 3), "PINHOLE": (4, 4)}
# distortion models accepted only with all distortion coefficients exactly zero
_ZERO_DISTORTION_MODELS = {"SIMPLE_RADIAL": (4, 3), "RADIAL": (5, 3), "OPENCV": (8, 4), "FULL_OPENCV": (12, 4)}
_FISHEYE_MODELS = ("OPENCV_FISHEYE", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE", "FOV", "THIN_PRISM_FISHEYE")

def _data_lines(path: Path) -> List[Tuple[int, str]]:
    if not path.is_file():
        raise MissingFilesError(f"COLMAP model file {path} is missing (need cameras.txt and images.txt).")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip().startswith("#"):
            continue
        out.append((n, line))
    return out


def read_colmap_cameras(path: str | Path) -> dict:
    """``cameras.txt`` -> {camera_id: (K float64 [3,3] in our pixel convention, height, width)}."""
    path = Path(path)
    cams = {}
    for n, line in _data_lines(path):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}:{n}"
        if len(parts) < 5:
            raise TrajCrafterError(f"{where}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...', got {line!r}.")
        cam_id, model = int(parts[0]), parts[1]
        width, height = int(parts[2]), int(parts[3])
        params = [float(p) for p in parts[4:]]
        known = {**_PINHOLE_MODELS, **_ZERO_DISTORTION_MODELS}
        if model in _FISHEYE_MODELS or (model in _ZERO_DISTORTION_MODELS and any(
                p != 0 for p in params[_ZERO_DISTORTION_MODELS[model][1]:])):
            raise TrajCrafterError(
                f"{where}: camera {cam_id} uses the distorted model {model}; undistort the images first "
                f"(colmap image_undistorter) so the model is PINHOLE."
            )
        if model not in known:
            raise TrajCrafterError(f"{where}: unknown camera model {model!r}.")
        if len(params) != known[model][0]:
            raise TrajCrafterError(f"{where}: model {model} takes {known[model][0]} parameters, got {len(params)}.")
        if known[model][1] == 3:
            fx = fy = params[0]
            cx, cy = params[1], params[2]
        else:
            fx, fy, cx, cy = params[:4]
        K = torch.tensor([[fx, 0, cx - 0.5], [0, fy, cy - 0.5], [0, 0, 1]], dtype=torch.float64)
        cams[cam_id] = (_check_K(K, f"{where} intrinsics"), height, width)
    if not cams:
        raise TrajCrafterError(f"{path} lists no camera.")
    return cams


def quaternion_to_matrix(qw: float, qx: float, qy: float, qz: float) -> torch.Tensor:
    """Rotation matrix (float64 [3,3]) of a unit quaternion (Hamilton, w first, as COLMAP)."""
    q = torch.tensor([qw, qx, qy, qz], dtype=torch.float64)
    norm = q.norm()
    if not torch.isfinite(norm) or norm < 1e-12:
        raise TrajCrafterError(f"quaternion {q.tolist()} has zero or invalid norm.")
    w, x, y, z = (q / norm).tolist()
    return torch.tensor([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ], dtype=torch.float64)


def read_colmap_images(path: str | Path) -> List[Tuple[str, int, torch.Tensor]]:
    """``images.txt`` -> [(name, camera_id, cam_to_world float64 [4,4])] sorted by name."""
    path = Path(path)
    lines = _data_lines(path)
    out = []
    i = 0
    while i < len(lines):
        n, line = lines[i]
        if not line.strip():
            i += 1
            continue
        parts = line.split()
        if len(parts) < 10:
            raise TrajCrafterError(f"{path}:{n}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', got {line!r}.")
        qw, qx, qy, qz, tx, ty, tz = (float(p) for p in parts[1:8])
        R = quaternion_to_matrix(qw, qx, qy, qz)
        w2c = torch.eye(4, dtype=torch.float64)
        w2c[:3, :3] = R
        w2c[:3, 3] = torch.tensor([tx, ty, tz], dtype=torch.float64)
        out.append((" ".join(parts[9:]), int(parts[8]), torch.linalg.inv(w2c)))
        i += 2  # every image line is followed by its POINTS2D line (possibly empty)
    if not out:
        raise TrajCrafterError(f"{path} lists no image.")
    return sorted(out, key=lambda item: item[0])


def read_colmap_depth_bin(path: str | Path) -> np.ndarray:
    """A COLMAP dense depth map (``width&height&channels&`` header, float32, column-major)."""
    path = Path(path)
    with open(path, "rb") as fh:
        header = b""
        while header.count(b"&") < 3:
            ch = fh.read(1)
            if not ch:
                raise ValueError("truncated header")
            header += ch
            if len(header) > 64:
                raise ValueError("no 'width&height&channels&' header")
        width, height, channels = (int(v) for v in header.decode("ascii").split("&")[:3])
        data = np.fromfile(fh, dtype=np.float32)
    if data.size != width * height * channels:
        raise ValueError(f"holds {data.size} values, header says {width}x{height}x{channels}")
    arr = data.reshape((width, height, channels), order="F").transpose(1, 0, 2)
    return arr[..., 0] if channels == 1 else arr


def _colmap_depth_loader(depth_dir: Path, name: str) -> Tuple[Callable[[], np.ndarray], str]:
    candidates = [depth_dir / f"{name}.geometric.bin", depth_dir / f"{name}.photometric.bin",
                  depth_dir / f"{Path(name).stem}.npy", depth_dir / (Path(name).with_suffix(".npy").name)]
    for c in candidates:
        if c.is_file():
            if c.suffix == ".npy":
                return (lambda p=c: np.load(p, allow_pickle=False)), str(c)
            return (lambda p=c: read_colmap_depth_bin(p)), str(c)

    def missing():
        raise FileNotFoundError(candidates[0])

    return missing, f"{depth_dir}/{name}.geometric.bin (or .photometric.bin / .npy)"


def read_colmap_sequence(model_dir: str | Path, images_dir: str | Path, depth_dir: str | Path,
                         name: Optional[str] = None) -> PosedSequence:
    """A :class:`PosedSequence` from a COLMAP text model, its images and per-image depth maps.

    Frames are ordered by image name (video frame names sort in time order).
    """
    model_dir, images_dir, depth_dir = Path(model_dir), Path(images_dir), Path(depth_dir)
    cams = read_colmap_cameras(model_dir / "cameras.txt")
    frames = []
    for img_name, cam_id, c2w in read_colmap_images(model_dir / "images.txt"):
        if cam_id not in cams:
            raise TrajCrafterError(f"{model_dir / 'images.txt'}: image {img_name} names unknown camera {cam_id}.")
        K, height, width = cams[cam_id]
        loader, source = _colmap_depth_loader(depth_dir, img_name)
        frames.append(PosedFrame(Path(img_name).stem, images_dir / img_name, loader, source, K, c2w, height, width))
    return PosedSequence(name or model_dir.parent.name, frames)


def write_colmap_text_model(model_dir: str | Path, intrinsics: torch.Tensor, cam_to_world: torch.Tensor,
                            names: Sequence[str], height: int, width: int) -> Path:
    """Write ``cameras.txt`` (one PINHOLE per image) + ``images.txt`` for K [T,3,3] (our pixel
    convention) and c2w [T,4,4]; used to test the reader and to export our sequences."""
    model = Path(model_dir)
    model.mkdir(parents=True, exist_ok=True)
    cam_lines = ["# Camera list: CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]"]
    img_lines = ["# Image list: IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)"]
    for i, (K, c2w, nm) in enumerate(zip(intrinsics.double(), cam_to_world.double(), names), 1):
        fx, fy, cx, cy = K[0, 0].item(), K[1, 1].item(), K[0, 2].item() + 0.5, K[1, 2].item() + 0.5
        cam_lines.append(f"{i} PINHOLE {width} {height} {fx!r} {fy!r} {cx!r} {cy!r}")
        w2c = torch.linalg.inv(c2w)
        q = _matrix_to_quaternion(w2c[:3, :3])
        t = w2c[:3, 3].tolist()
        img_lines.append(f"{i} {q[0]!r} {q[1]!r} {q[2]!r} {q[3]!r} {t[0]!r} {t[1]!r} {t[2]!r} {i} {nm}")
        img_lines.append("")
    (model / "cameras.txt").write_text("\n".join(cam_lines) + "\n", encoding="utf-8")
    (model / "images.txt").write_text("\n".join(img_lines) + "\n", encoding="utf-8")
    return model


def write_colmap_depth_bin(path: str | Path, depth: np.ndarray) -> None:
    """Write a [H, W] float32 map in COLMAP's dense ``.bin`` layout."""
    depth = np.asarray(depth, dtype=np.float32)
    h, w = depth.shape
    with open(path, "wb") as fh:
        fh.write(f"{w}&{h}&1&".encode("ascii"))
        # COLMAP writes the [W, H] transpose in column-major order, i.e. x varies fastest
        depth.T.reshape(-1, order="F").astype(np.float32).tofile(fh)


def _matrix_to_quaternion(R: torch.Tensor) -> List[float]:
    """Unit quaternion (w, x, y, z) of a rotation matrix (Shepperd's method)."""
    m = R.tolist()
    tr = m[0][0] + m[1][1] + m[2][2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = [0.25 * s, (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s]
    elif m[0][0] > m[1][1] and m[0][0] > m[2][2]:
        s = math.sqrt(1.0 + m[0][0] - m[1][1] - m[2][2]) * 2
        q = [(m[2][1] - m[1][2]) / s, 0.25 * s, (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s]
    elif m[1][1] > m[2][2]:
        s = math.sqrt(1.0 + m[1][1] - m[0][0] - m[2][2]) * 2
        q = [(m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, 0.25 * s, (m[1][2] + m[2][1]) / s]
    else:
        s = math.sqrt(1.0 + m[2][2] - m[0][0] - m[1][1]) * 2
        q = [(m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s, (m[1][2] + m[2][1]) / s, 0.25 * s]
    return q
