"""Training samples stored as tar shards, written atomically and read back with checks.

Shard layout (a plain, uncompressed POSIX tar; streamable, also readable by ``webdataset``)::

    <key>.json                 meta: kind, prompt, sizes, provenance, video codec, sha256 of the
                               members below
    <key>.target.mkv           the videos, uint8 [T,H,W,3] compressed (:mod:`training.video_codec`):
    <key>.render.mkv           target, render and, for triplets, reference (double reprojection
    <key>.reference.mkv        samples have none: their reference *is* the target)
    <key>.mask.bin             hole mask [T,H,W] (1 = hole), bit-packed + zlib
    <key>.latents.safetensors  optional cached latents and prompt embeddings (``prepare_latents.py``)

With ``video_codec="raw"`` (and in format-1 shards) the videos and mask are one member,
``<key>.video.safetensors`` holding uncompressed uint8 tensors. Encoded shards written by
``prepare_latents.py`` carry only ``.json`` + ``.latents.safetensors``: training from cached
latents never needs the videos, and a second copy of them would double the disk.

Keys contain no dot. ``kind`` is ``"double_reprojection"`` or ``"triplet"``. Every member's
sha256 is in the meta and is checked for each member that is read, so a flipped byte is reported
as a corrupt shard, never trained on; members that are not read (the videos when training from
cached latents) are neither read nor checked.
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
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from trajcrafter_core.errors import TrajCrafterError

from .video_codec import (
    CODEC_NAMES,
    DEFAULT_CODEC,
    MASK_SUFFIX,
    VIDEO_SUFFIX,
    decode_mask,
    decode_video,
    encode_mask,
    encode_video,
)

RAW_VIDEO_MEMBER = "video.safetensors"
LATENTS_MEMBER = "latents.safetensors"
KINDS = ("double_reprojection", "triplet")
VIDEO_STREAMS = ("target", "render", "reference")
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
FORMAT_VERSION = 2


@dataclass
class Sample:
    """One training example: meta (JSON-able), its videos and its cached latents.

    ``video`` (``target``/``render``/``reference`` uint8 ``[T,H,W,3]``, ``mask`` uint8
    ``[T,H,W]``) is ``None`` when it was not read or the shard does not carry it; ``latents``
    likewise.
    """

    key: str
    meta: Dict
    video: Optional[Dict[str, torch.Tensor]] = None
    latents: Optional[Dict[str, torch.Tensor]] = None

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def prompt(self) -> str:
        return self.meta.get("prompt", "")

    @property
    def geometry(self) -> Tuple[int, int, int]:
        """``(T, H, W)`` of the sample's videos (from the meta when the videos were not read)."""
        if self.video is not None:
            return tuple(int(s) for s in self.video["target"].shape[:3])
        return int(self.meta["num_frames"]), int(self.meta["height"]), int(self.meta["width"])


def video_names(kind: str) -> List[str]:
    """The video tensors a sample of ``kind`` has (besides the mask)."""
    return ["target", "render"] + (["reference"] if kind == "triplet" else [])


def check_video_sample(video: Dict[str, torch.Tensor], kind: str, where: str) -> None:
    """Validate the video tensors of a sample (layouts in the module docstring)."""
    if kind not in KINDS:
        raise TrajCrafterError(f"{where}: kind must be one of {KINDS}, got {kind!r}.")
    needed = video_names(kind) + ["mask"]
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


def video_members(video: Dict[str, torch.Tensor], codec: str) -> Dict[str, bytes]:
    """Member name -> bytes of a sample's videos and mask in ``codec`` (module docstring)."""
    if codec == "raw":
        return {RAW_VIDEO_MEMBER: st_save({k: v.contiguous() for k, v in video.items()})}
    members = {f"{name}.{VIDEO_SUFFIX}": encode_video(video[name], codec) for name in VIDEO_STREAMS if name in video}
    members[MASK_SUFFIX] = encode_mask(video["mask"])
    return members


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
    ``video_codec``: how videos are stored (:data:`training.video_codec.CODEC_NAMES`). A sample
    without videos (``video=None``) must carry latents and the ``num_frames``/``height``/``width``
    of its videos in its meta (encoded shards).
    """

    def __init__(self, path: str | Path, video_codec: str = DEFAULT_CODEC):
        if video_codec not in CODEC_NAMES:
            raise TrajCrafterError(f"video codec must be one of {list(CODEC_NAMES)}, got {video_codec!r}.")
        self.path = Path(path)
        self.video_codec = video_codec
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
        meta = {k: v for k, v in sample.meta.items() if k != "sha256"}
        if sample.video is not None:
            check_video_sample(sample.video, meta.get("kind"), f"sample {key}")
            members = video_members(sample.video, self.video_codec)
            T, H, W = sample.geometry
            meta.update(num_frames=T, height=H, width=W, video_codec=self.video_codec)
        else:
            if not sample.latents or not all(k in meta for k in ("num_frames", "height", "width")):
                raise TrajCrafterError(f"sample {key}: a sample without videos needs latents and its "
                                       f"num_frames/height/width in the meta.")
            if meta.get("kind") not in KINDS:
                raise TrajCrafterError(f"sample {key}: kind must be one of {KINDS}, got {meta.get('kind')!r}.")
            members = {}
            meta["video_codec"] = None
        if sample.latents:
            members[LATENTS_MEMBER] = st_save({k: v.contiguous() for k, v in sample.latents.items()})
        meta.update(format_version=FORMAT_VERSION, sha256={name: _sha256(data) for name, data in members.items()})
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

    def __init__(self, prefix: str | Path, max_count: int = 256, video_codec: str = DEFAULT_CODEC):
        if max_count < 1:
            raise TrajCrafterError(f"samples per shard must be >= 1, got {max_count}.")
        self.prefix = str(prefix)
        self.max_count = max_count
        self.video_codec = video_codec
        self.paths: List[Path] = []
        self._writer: Optional[ShardWriter] = None

    def write(self, sample: Sample) -> None:
        if self._writer is None:
            self._writer = ShardWriter(f"{self.prefix}-{len(self.paths):05d}.tar", self.video_codec)
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

    @property
    def has_video(self) -> bool:
        return RAW_VIDEO_MEMBER in self.members or MASK_SUFFIX in self.members

    @property
    def has_latents(self) -> bool:
        return LATENTS_MEMBER in self.members


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
        if "json" not in ref.members or not (ref.has_video or ref.has_latents):
            raise _corrupt(shard, f"sample {ref.key!r} lacks its .json member or has neither videos nor latents")
        if ref.kind not in KINDS:
            raise _corrupt(shard, f"sample {ref.key!r} has unknown kind {ref.kind!r}")
        if MASK_SUFFIX in ref.members:
            streams = [f"{name}.{VIDEO_SUFFIX}" for name in video_names(ref.kind)]
            if any(s not in ref.members for s in streams):
                raise _corrupt(shard, f"sample {ref.key!r} lacks one of its video members {streams}")
    return list(refs.values())


def index_shards(patterns: Sequence[str], kinds: Optional[Sequence[str]] = None) -> List[SampleRef]:
    """The samples of every shard named by ``patterns`` (:func:`expand_shard_patterns`), in
    file order, optionally only those of ``kinds``: one header scan per shard."""
    refs: List[SampleRef] = []
    for path in expand_shard_patterns(patterns):
        refs.extend(r for r in index_shard(path) if kinds is None or r.kind in kinds)
    return refs


def _read_member(fh, ref: SampleRef, member: str) -> bytes:
    offset, size = ref.members[member]
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise _corrupt(ref.shard, f"member {ref.key}.{member} is truncated")
    return data


def _safetensors(data: bytes, ref: SampleRef, member: str) -> Dict[str, torch.Tensor]:
    try:
        return st_load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise _corrupt(ref.shard, f"{ref.key}.{member} is not a safetensors blob: {exc}") from None


def read_sample(ref: SampleRef, with_latents: bool = True, fh=None, with_video: bool = True) -> Sample:
    """Read and verify one sample: its meta and the requested members (sha256 of each read
    member against the meta). ``with_video``/``with_latents`` choose the members; one the
    sample does not carry is ``None`` in the result."""
    own = fh is None
    if own:
        fh = open(ref.shard, "rb")
    try:
        try:
            meta = json.loads(_read_member(fh, ref, "json"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _corrupt(ref.shard, f"meta of {ref.key!r}: {exc}") from None
        sums = meta.get("sha256", {})

        def member(name: str) -> bytes:
            data = _read_member(fh, ref, name)
            if sums.get(name) != _sha256(data):
                raise _corrupt(ref.shard, f"checksum mismatch in {ref.key}.{name}")
            return data

        video = None
        where = f"shard {ref.shard} sample {ref.key}"
        if with_video and RAW_VIDEO_MEMBER in ref.members:
            video = _safetensors(member(RAW_VIDEO_MEMBER), ref, RAW_VIDEO_MEMBER)
        elif with_video and MASK_SUFFIX in ref.members:
            shape = (int(meta["num_frames"]), int(meta["height"]), int(meta["width"]))
            try:
                video = {name: decode_video(member(f"{name}.{VIDEO_SUFFIX}"), shape, where)
                         for name in video_names(meta.get("kind"))}
                video["mask"] = decode_mask(member(MASK_SUFFIX), shape, where)
            except TrajCrafterError as exc:
                raise _corrupt(ref.shard, str(exc)) from None
        latents = None
        if with_latents and LATENTS_MEMBER in ref.members:
            latents = _safetensors(member(LATENTS_MEMBER), ref, LATENTS_MEMBER)
    finally:
        if own:
            fh.close()
    if video is not None:
        check_video_sample(video, meta.get("kind"), where)
    return Sample(ref.key, meta, video, latents)


def iter_shard(shard: str | Path, with_latents: bool = True, with_video: bool = True) -> Iterator[Sample]:
    """All samples of one shard in file order, verified."""
    refs = index_shard(shard)
    with open(shard, "rb") as fh:
        for ref in refs:
            yield read_sample(ref, with_latents, fh, with_video)


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
