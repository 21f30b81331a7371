"""Training samples stored as tar shards, written atomically and read back with checks.

Shard layout (a plain, uncompressed POSIX tar; streamable, also readable by ``webdataset``)::

    <key>.json                 meta: kind, prompt, sizes, provenance, sha256 of the members below
    <key>.video.safetensors    uint8 tensors: target [T,H,W,3], render [T,H,W,3], mask [T,H,W]
                               (1 = hole), and reference [T,H,W,3] for triplets (double
                               reprojection samples have none: their reference *is* the target)
    <key>.latents.safetensors  optional pre-encoded tensors (see ``training.encoding``)

Keys contain no dot. ``kind`` is ``"double_reprojection"`` or ``"triplet"``. Every member's
sha256 is in the meta, so a flipped byte is reported as a corrupt shard, never trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from trajcrafter_core.errors import TrajCrafterError

VIDEO_MEMBER = "video.safetensors"
LATENTS_MEMBER = "latents.safetensors"
KINDS = ("double_reprojection", "triplet")
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
FORMAT_VERSION = 1


@dataclass
class Sample:
    """One training example: meta (JSON-able) and named tensor groups (member -> tensors)."""

    key: str
    meta: Dict
    video: Dict[str, torch.Tensor]
    latents: Optional[Dict[str, torch.Tensor]] = None

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def prompt(self) -> str:
        return self.meta.get("prompt", "")


def check_video_sample(video: Dict[str, torch.Tensor], kind: str, where: str) -> None:
    """Validate the video tensors of a sample (layouts in the module docstring)."""
    if kind not in KINDS:
        raise TrajCrafterError(f"{where}: kind must be one of {KINDS}, got {kind!r}.")
    needed = ["target", "render", "mask"] + (["reference"] if kind == "triplet" else [])
    missing = [n for n in needed if n not in video]
    if missing:
        raise TrajCrafterError(f"{where}: missing tensor(s) {missing}; a {kind} sample needs {needed}.")
    t = video["target"]
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise TrajCrafterError(f"{where}: target must be uint8 [T,H,W,3], got {t.dtype} {list(t.shape)}.")
    for name in ("render", "reference"):
        if name in video and (video[name].dtype != torch.uint8 or tuple(video[name].shape) != tuple(t.shape)):
            raise TrajCrafterError(
                f"{where}: {name} must be uint8 {list(t.shape)} like the target, got "
                f"{video[name].dtype} {list(video[name].shape)}."
            )
    m = video["mask"]
    if m.dtype != torch.uint8 or tuple(m.shape) != tuple(t.shape[:3]):
        raise TrajCrafterError(f"{where}: mask must be uint8 {list(t.shape[:3])} (1 = hole), got {m.dtype} {list(m.shape)}.")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # reproducible shards
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


class _PublishOrDiscard:
    """``with`` protocol of the shard writers: :meth:`close` (publish the shards) when the block
    ends normally, :meth:`abort` (remove the partial files) when it raises; subclasses define
    both."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ShardWriter(_PublishOrDiscard):
    """Write samples into one tar shard atomically.

    The shard is written to ``<path>.partial`` and renamed to ``path`` only by a successful
    :meth:`close` (or leaving the ``with`` block without an exception); on error the partial
    file is removed, so a crashed preparation job never leaves a truncated shard behind.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._tar = tarfile.open(self._partial, "w", format=tarfile.PAX_FORMAT)
        self._keys: set = set()
        self.count = 0

    def write(self, sample: Sample) -> None:
        key = sample.key
        if not _KEY_RE.match(key):
            raise TrajCrafterError(f"sample key {key!r} must use only letters, digits, '_' and '-'.")
        if key in self._keys:
            raise TrajCrafterError(f"sample key {key!r} appears twice in shard {self.path}.")
        check_video_sample(sample.video, sample.meta.get("kind"), f"sample {key}")
        members = {VIDEO_MEMBER: st_save({k: v.contiguous() for k, v in sample.video.items()})}
        if sample.latents:
            members[LATENTS_MEMBER] = st_save({k: v.contiguous() for k, v in sample.latents.items()})
        meta = dict(sample.meta)
        t = sample.video["target"]
        meta.update(
            format_version=FORMAT_VERSION,
            num_frames=int(t.shape[0]),
            height=int(t.shape[1]),
            width=int(t.shape[2]),
            sha256={name: _sha256(data) for name, data in members.items()},
        )
        _add_bytes(self._tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode("utf-8"))
        for name, data in members.items():
            _add_bytes(self._tar, f"{key}.{name}", data)
        self._keys.add(key)
        self.count += 1

    def close(self) -> Path:
        self._tar.close()
        with open(self._partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._tar.close()
        finally:
            if self._partial.exists():
                self._partial.unlink()


class ShardSeriesWriter(_PublishOrDiscard):
    """Roll samples over numbered shards ``<prefix>-<part:05d>.tar`` of at most ``max_count``."""

    def __init__(self, prefix: str | Path, max_count: int = 256):
        if max_count < 1:
            raise TrajCrafterError(f"samples per shard must be >= 1, got {max_count}.")
        self.prefix = str(prefix)
        self.max_count = max_count
        self.paths: List[Path] = []
        self._writer: Optional[ShardWriter] = None

    def write(self, sample: Sample) -> None:
        if self._writer is None:
            self._writer = ShardWriter(f"{self.prefix}-{len(self.paths):05d}.tar")
        self._writer.write(sample)
        if self._writer.count >= self.max_count:
            self.paths.append(self._writer.close())
            self._writer = None

    def close(self) -> List[Path]:
        if self._writer is not None and self._writer.count:
            self.paths.append(self._writer.close())
        elif self._writer is not None:
            self._writer.abort()
        self._writer = None
        return self.paths

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


@dataclass
class SampleRef:
    """Where one sample's members lie in a shard: member name -> (byte offset, size)."""

    shard: Path
    key: str
    kind: str
    members: Dict[str, tuple] = field(default_factory=dict)


def _corrupt(shard: Path, detail: str) -> TrajCrafterError:
    return TrajCrafterError(
        f"shard {shard} is corrupt or truncated ({detail}); re-run the preparation job that wrote "
        f"it (or remove it from data.shards)."
    )


def index_shard(shard: str | Path) -> List[SampleRef]:
    """Scan a shard's tar headers and meta members; return its samples in file order."""
    shard = Path(shard)
    if not shard.is_file():
        raise TrajCrafterError(f"shard {shard} does not exist.")
    refs: Dict[str, SampleRef] = {}
    try:
        with tarfile.open(shard, "r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, _, member = info.name.partition(".")
                ref = refs.setdefault(key, SampleRef(shard, key, ""))
                ref.members[member] = (info.offset_data, info.size)
                if member == "json":
                    try:
                        meta = json.loads(tar.extractfile(info).read())
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        raise _corrupt(shard, f"meta of sample {key!r} is not JSON: {exc}") from None
                    ref.kind = meta.get("kind", "")
    except tarfile.TarError as exc:
        raise _corrupt(shard, f"tar error: {exc}") from None
    except (OSError, EOFError) as exc:
        raise _corrupt(shard, f"{type(exc).__name__}: {exc}") from None
    if not refs:
        raise _corrupt(shard, "no samples")
    for ref in refs.values():
        if "json" not in ref.members or VIDEO_MEMBER not in ref.members:
            raise _corrupt(shard, f"sample {ref.key!r} lacks its .json or .{VIDEO_MEMBER} member")
        if ref.kind not in KINDS:
            raise _corrupt(shard, f"sample {ref.key!r} has unknown kind {ref.kind!r}")
    return list(refs.values())


def _read_member(fh, ref: SampleRef, member: str) -> bytes:
    offset, size = ref.members[member]
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise _corrupt(ref.shard, f"member {ref.key}.{member} is truncated")
    return data


def read_sample(ref: SampleRef, with_latents: bool = True, fh=None) -> Sample:
    """Read and verify one sample (sha256 of every member against its meta)."""
    own = fh is None
    if own:
        fh = open(ref.shard, "rb")
    try:
        try:
            meta = json.loads(_read_member(fh, ref, "json"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _corrupt(ref.shard, f"meta of {ref.key!r}: {exc}") from None
        sums = meta.get("sha256", {})
        groups: Dict[str, Dict[str, torch.Tensor]] = {}
        wanted = [VIDEO_MEMBER] + ([LATENTS_MEMBER] if with_latents and LATENTS_MEMBER in ref.members else [])
        for member in wanted:
            data = _read_member(fh, ref, member)
            if sums.get(member) != _sha256(data):
                raise _corrupt(ref.shard, f"checksum mismatch in {ref.key}.{member}")
            try:
                groups[member] = st_load(data)
            except Exception as exc:  # safetensors raises its own error types
                raise _corrupt(ref.shard, f"{ref.key}.{member} is not a safetensors blob: {exc}") from None
    finally:
        if own:
            fh.close()
    check_video_sample(groups[VIDEO_MEMBER], meta.get("kind"), f"shard {ref.shard} sample {ref.key}")
    return Sample(ref.key, meta, groups[VIDEO_MEMBER], groups.get(LATENTS_MEMBER))


def iter_shard(shard: str | Path, with_latents: bool = True) -> Iterator[Sample]:
    """All samples of one shard in file order, verified."""
    refs = index_shard(shard)
    with open(shard, "rb") as fh:
        for ref in refs:
            yield read_sample(ref, with_latents, fh)


def expand_shard_patterns(patterns: Sequence[str]) -> List[Path]:
    """Files named by ``patterns`` (paths or globs), sorted, without duplicates.

    A pattern that matches nothing is an error (a typo must not silently shrink the data).
    """
    import glob

    paths: List[Path] = []
    for pattern in patterns:
        hits = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        hits = [h for h in hits if not h.endswith(".partial")]
        if not hits:
            raise TrajCrafterError(f"data.shards pattern {pattern!r} matches no file; check the path.")
        paths.extend(Path(h) for h in hits)
    seen, unique = set(), []
    for p in paths:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique

