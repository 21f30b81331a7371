"""Picture of a camera path: top and side views of the camera frusta over the point cloud.

Pure numpy + PIL, CPU, no torch ops beyond reading tensors. Coordinates are the source camera's
(OpenCV axes: x right, y down, z forward):

- **top view** (left panel): looking down from above; x to the right, z (forward) up the image;
- **side view** (right panel): looking from the camera's right; z (forward) to the right, y down.

Points are drawn far-to-near along the viewing direction so nearer points cover farther ones.
The source camera is white; path cameras go from cyan (first output frame) to orange (last),
with the path of their centres as a line.
"""

from __future__ import annotations

import numpy as np

from trajcrafter_core.scene3d import END_COLOUR as _END, SOURCE_COLOUR as _SOURCE, START_COLOUR as _START
from trajcrafter_core.scene3d import camera_frusta, pick_cameras

BACKGROUND = (30, 30, 34)
SOURCE_COLOUR = tuple(int(round(255 * c)) for c in _SOURCE)
START_COLOUR = np.array(_START, dtype=np.float64) * 255
END_COLOUR = np.array(_END, dtype=np.float64) * 255


def _project(xyz: np.ndarray, view: str) -> np.ndarray:
    """2D plot coordinates (right, up) of points for a view."""
    if view == "top":
        return np.stack([xyz[..., 0], xyz[..., 2]], axis=-1)
    return np.stack([xyz[..., 2], -xyz[..., 1]], axis=-1)


def _depth_order(xyz: np.ndarray, view: str) -> np.ndarray:
    """Draw order (far first): top view sees from -y (small y is near); side view from +x."""
    key = -xyz[:, 1] if view == "top" else xyz[:, 0]
    return np.argsort(key, kind="stable")


def _panel(points, colours, frusta, size: int, view: str, title: str):
    from PIL import Image, ImageDraw, ImageFont

    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    cams2d = _project(frusta.reshape(-1, 3), view)
    if len(points):
        pts2d = _project(points, view)
        lo = np.percentile(pts2d, 2, axis=0)
        hi = np.percentile(pts2d, 98, axis=0)
        lo, hi = np.minimum(lo, cams2d.min(0)), np.maximum(hi, cams2d.max(0))
    else:
        pts2d = np.zeros((0, 2))
        lo, hi = cams2d.min(0), cams2d.max(0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-6)) * 1.1
    centre = (lo + hi) / 2.0
    margin = 18

    def to_px(p):
        u = (p[..., 0] - centre[0]) / span * (size - 2 * margin) + size / 2.0
        v = -(p[..., 1] - centre[1]) / span * (size - 2 * margin) + size / 2.0
        return np.stack([u, v], axis=-1)

    if len(points):
        order = _depth_order(points, view)
        px = np.round(to_px(pts2d[order])).astype(np.int64)
        col = (np.clip(colours[order], 0, 1) * 255).astype(np.uint8)
        ok = (px[:, 0] >= 0) & (px[:, 0] < size) & (px[:, 1] >= 0) & (px[:, 1] < size)
        img[px[ok, 1], px[ok, 0]] = col[ok]
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    fr = to_px(_project(frusta, view))  # [N, 5, 2]
    n = len(fr) - 1
    centres = [tuple(map(float, c)) for c in fr[1:, 0]]
    if len(centres) > 1:
        draw.line(centres, fill=(200, 200, 200), width=1)
    for i in range(1, len(fr)):
        t = (i - 1) / max(n - 1, 1)
        colour = tuple(int(c) for c in START_COLOUR * (1 - t) + END_COLOUR * t)
        _draw_frustum(draw, fr[i], colour, 1)
    _draw_frustum(draw, fr[0], SOURCE_COLOUR, 2)
    font = ImageFont.load_default(size=max(12, size // 24))  # readable at every preview size
    for k, line in enumerate(title.split("\n")):
        draw.text((8, 6 + k * (font.size + 4)), line, fill=(235, 235, 235), font=font, stroke_width=1,
                  stroke_fill=(0, 0, 0))
    return np.asarray(pil)


def _draw_frustum(draw, f, colour, width):
    c = tuple(map(float, f[0]))
    corners = [tuple(map(float, p)) for p in f[1:]]
    for p in corners:
        draw.line([c, p], fill=colour, width=width)
    draw.line(corners + corners[:1], fill=colour, width=width)


def draw_camera_path(
    points: np.ndarray,
    colours: np.ndarray,
    transforms: np.ndarray,
    K: np.ndarray,
    height: int,
    width: int,
    size: int = 384,
    frustum_depth: float = None,
    max_cameras: int = 25,
    caption: str = "",
) -> np.ndarray:
    """RGB uint8 ``[size, 2 * size, 3]``: top view | side view of cameras over points.

    ``points`` ``[P, 3]`` and ``colours`` ``[P, 3]`` (0..1) in source-camera coordinates;
    ``transforms`` ``[N, 4, 4]`` source→target; ``K`` ``[N, 3, 3]`` at ``height`` x ``width``.
    At most ``max_cameras`` frusta are drawn (evenly picked, always the first and last); the
    source camera (identity) is drawn first, in white.
    """
    transforms = np.asarray(transforms, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    pick = pick_cameras(len(transforms), max_cameras)
    if frustum_depth is None:
        frustum_depth = 0.15 * float(np.median(points[:, 2])) if len(points) else 0.3
    all_T = np.concatenate([np.eye(4)[None], transforms[pick]], axis=0)
    all_K = np.concatenate([K[:1], K[pick]], axis=0)
    frusta = camera_frusta(all_T, all_K, height, width, frustum_depth)
    top = _panel(points, colours, frusta, size, "top", f"top (x right, z up)\n{caption}".strip())
    side = _panel(points, colours, frusta, size, "side", "side (z right, y down)")
    gap = np.full((size, 4, 3), 90, dtype=np.uint8)
    return np.concatenate([top, gap, side], axis=1)
