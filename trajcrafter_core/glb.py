"""A small glTF 2.0 binary (``.glb``) writer for coloured points and lines, and its reader.

Only what a scene preview needs: one mesh per :class:`Primitive`, each ``POINTS`` or ``LINES``
(vertex pairs) with ``POSITION`` (float32 ``VEC3``, with the ``min``/``max`` glTF requires) and
``COLOR_0`` (float32 ``VEC3``, **linear** RGB as glTF specifies; :func:`srgb_to_linear` converts
frame colours). No materials: viewers draw points and lines unlit in their vertex colours.
Layout (glTF 2.0 spec, "GLB File Format"): a 12-byte header (``glTF``, version 2, total length),
a JSON chunk padded with spaces and a BIN chunk padded with zeros, both to 4 bytes. Files are
written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import json
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .errors import TrajCrafterError

__all__ = ["Primitive", "write_glb", "read_glb", "srgb_to_linear", "linear_to_srgb"]

_MAGIC, _VERSION = 0x46546C67, 2  # b"glTF"
_JSON, _BIN = 0x4E4F534A, 0x004E4942  # b"JSON", b"BIN\0"
_FLOAT, _ARRAY_BUFFER = 5126, 34962
MODES = {"POINTS": 0, "LINES": 1}


@dataclass
class Primitive:
    """Vertices ``positions`` float32 ``[N, 3]`` with ``colors`` ``[N, 3]`` (linear RGB 0..1), drawn
    as ``mode`` ``"POINTS"`` or ``"LINES"`` (consecutive pairs); ``name`` labels the mesh."""

    mode: str
    positions: np.ndarray
    colors: np.ndarray
    name: str = ""


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB 0..1 → linear 0..1 (IEC 61966-2-1)."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear 0..1 → sRGB 0..1 (inverse of :func:`srgb_to_linear`)."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def write_glb(path: Union[str, Path], primitives: Sequence[Primitive], extras: Optional[dict] = None) -> Path:
    """Write ``primitives`` as one scene to ``path`` (atomically); ``extras`` goes into
    ``asset.extras`` (JSON values only). Returns the path."""
    path = Path(path)
    blob = bytearray()
    accessors, views, meshes = [], [], []
    for prim in primitives:
        if prim.mode not in MODES:
            raise TrajCrafterError(f"glTF primitive mode must be one of {', '.join(MODES)}, got {prim.mode!r}.")
        pos = np.ascontiguousarray(prim.positions, dtype="<f4")
        col = np.ascontiguousarray(prim.colors, dtype="<f4")
        if pos.ndim != 2 or pos.shape[1] != 3 or col.shape != pos.shape or not len(pos):
            raise TrajCrafterError(f"glTF primitive {prim.name!r}: positions and colours must be [N, 3] with N > 0, "
                                   f"got {list(pos.shape)} and {list(col.shape)}.")
        if prim.mode == "LINES" and len(pos) % 2:
            raise TrajCrafterError(f"glTF primitive {prim.name!r}: LINES need vertex pairs, got {len(pos)} vertices.")
        if not (np.isfinite(pos).all() and np.isfinite(col).all()):
            raise TrajCrafterError(f"glTF primitive {prim.name!r} has NaN/inf vertices.")
        attributes = {}
        for key, array in (("POSITION", pos), ("COLOR_0", col)):
            views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": array.nbytes, "target": _ARRAY_BUFFER})
            blob += array.tobytes()
            accessor = {"bufferView": len(views) - 1, "componentType": _FLOAT, "count": len(array), "type": "VEC3"}
            if key == "POSITION":
                accessor.update(min=[float(v) for v in pos.min(0)], max=[float(v) for v in pos.max(0)])
            accessors.append(accessor)
            attributes[key] = len(accessors) - 1
        meshes.append({"name": prim.name, "primitives": [{"attributes": attributes, "mode": MODES[prim.mode]}]})
    doc = {
        "asset": {"version": "2.0", "generator": "trajcrafter_core.glb", **({"extras": extras} if extras else {})},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(meshes)))}],
        "nodes": [{"mesh": i, "name": m["name"]} for i, m in enumerate(meshes)],
        "meshes": meshes,
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    json_chunk = _pad(json.dumps(doc, separators=(",", ":")).encode("utf-8"), b" ")
    bin_chunk = _pad(bytes(blob), b"\0")
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    data = (struct.pack("<III", _MAGIC, _VERSION, total) + struct.pack("<II", len(json_chunk), _JSON) + json_chunk
            + struct.pack("<II", len(bin_chunk), _BIN) + bin_chunk)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return path


def read_glb(path: Union[str, Path]) -> Tuple[dict, bytes]:
    """``(json document, binary chunk)`` of a ``.glb`` file (checked header and chunk types)."""
    data = Path(path).read_bytes()
    if len(data) < 20:
        raise TrajCrafterError(f"{path} is not a glTF binary (.glb): too short.")
    magic, version, total = struct.unpack_from("<III", data, 0)
    if magic != _MAGIC or version != _VERSION or total != len(data):
        raise TrajCrafterError(f"{path} is not a glTF 2.0 binary (.glb) file.")
    length, kind = struct.unpack_from("<II", data, 12)
    if kind != _JSON:
        raise TrajCrafterError(f"{path}: the first glb chunk is not JSON.")
    doc = json.loads(data[20: 20 + length].decode("utf-8"))
    offset = 20 + length
    blob = b""
    if offset < len(data):
        length, kind = struct.unpack_from("<II", data, offset)
        if kind == _BIN:
            blob = data[offset + 8: offset + 8 + length]
    return doc, blob
