"""Annotating a JSON-lines video manifest in sharded jobs (the depth and caption drivers).

A job reads ``--manifest``, takes lines ``shard, shard + num_shards, ...``, lets a function fill
in each line (``"depth"``, ``"prompt"``) and writes the annotated lines to its own output
manifest — ``--out-manifest`` itself for one job, ``<stem>-<i>-of-<N>.jsonl`` beside it for
``--num-shards N`` (concatenate them afterwards). Paths in the output are relative to the
output manifest's folder, so it can be fed to ``prepare_double_reprojection --manifest`` as is.
The output is written atomically at the end; a line that fails is an error naming it
(``--on-error raise``) or is reported and left out (``skip``).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from trajcrafter_core.errors import TrajCrafterError

from .builders import check_shard_args, iter_json_lines
from .checkpointing import write_text_atomic

PATH_KEYS = ("video", "depth")


@dataclass
class ManifestEntry:
    """One manifest line: its values with ``video``/``depth`` as absolute paths, and its line number."""

    line: int
    values: Dict
    path: Path

    @property
    def id(self) -> str:
        return str(self.values.get("id") or Path(self.values["video"]).stem)


@dataclass
class ManifestReport:
    out_manifest: Path
    written: int = 0
    skipped: List[Dict] = field(default_factory=list)


def read_entries(manifest: str | Path) -> List[ManifestEntry]:
    """Every line of a video manifest, each needing ``"video"``; relative paths resolved
    against the manifest's folder."""
    path = Path(manifest)
    entries = []
    for n, value in iter_json_lines(path):
        if not isinstance(value, dict) or "video" not in value:
            raise TrajCrafterError(f"{path}:{n}: each line needs a 'video' path.")
        value = dict(value)
        for key in PATH_KEYS:
            if value.get(key):
                value[key] = str((path.parent / value[key]).resolve())
        entries.append(ManifestEntry(n, value, path))
    return entries


def job_manifest_path(out_manifest: str | Path, shard: int, num_shards: int) -> Path:
    out = Path(out_manifest)
    if num_shards == 1:
        return out
    return out.with_name(f"{out.stem}-{shard:05d}-of-{num_shards:05d}{out.suffix or '.jsonl'}")


def run_manifest_job(manifest: str | Path, out_manifest: str | Path, annotate: Callable[[ManifestEntry], Dict],
                     shard: int = 0, num_shards: int = 1, on_error: str = "raise", what: str = "annotate",
                     progress: Optional[Callable] = None) -> ManifestReport:
    """Annotate this job's lines (module docstring); ``annotate(entry)`` returns the new values."""
    check_shard_args(shard, num_shards)
    if on_error not in ("raise", "skip"):
        raise TrajCrafterError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    entries = read_entries(manifest)[shard::num_shards]
    out = job_manifest_path(out_manifest, shard, num_shards)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = ManifestReport(out)
    lines = []
    for entry in (progress(entries) if progress else entries):
        try:
            values = annotate(entry)
        except TrajCrafterError as exc:
            where = f"{entry.path}:{entry.line} ({entry.values['video']})"
            if on_error == "raise":
                raise TrajCrafterError(f"{where}: {exc}") from None
            report.skipped.append({"line": entry.line, "video": entry.values["video"], "error": str(exc)})
            print(f"[{what}] skipped {where}: {exc}", file=sys.stderr)
            continue
        for key in PATH_KEYS:
            if values.get(key):
                values[key] = os.path.relpath(values[key], out.parent.resolve())
        lines.append(json.dumps(values, ensure_ascii=False))
        report.written += 1
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    return report
