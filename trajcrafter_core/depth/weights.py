"""Find depth-model weights: a local folder first, else the Hugging Face Hub (only needed files).

A *source* is a local folder or a Hub repo id (``owner/name``). A local folder must hold the
official layout; a Hub id is fetched with ``huggingface_hub.snapshot_download`` restricted to the
files listed (``allow_patterns``) into the ``cache_dir`` the caller passes. Anything missing —
including being offline — raises :class:`~trajcrafter_core.errors.MissingFilesError` naming the
files and folders expected, within seconds (short Hub timeouts, no retries of our own).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from ..errors import MissingFilesError

__all__ = ["Needed", "Layout", "resolve_weights", "looks_like_hub_id", "pick_file"]

Source = Union[str, os.PathLike]
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Needed:
    """One required file, by its accepted names relative to the folder (first = preferred)."""

    names: Tuple[str, ...]

    @property
    def preferred(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class Layout:
    """The files a model folder must hold, and where users get them."""

    what: str  # e.g. "DepthCrafter UNet"
    hub_id: str  # official repository, for the message
    needed: Tuple[Needed, ...]

    def describe(self, folder: str) -> str:
        lines = []
        for need in self.needed:
            alts = " or ".join(need.names)
            lines.append(f"  {folder}/{alts}")
        return "\n".join(lines)


def looks_like_hub_id(source: Source) -> bool:
    """``owner/name`` that is not an existing path."""
    s = os.fspath(source)
    return bool(_HUB_ID.match(s)) and not os.path.exists(s)


def pick_file(folder: Path, need: Needed) -> Optional[Path]:
    """The first of ``need.names`` present in ``folder``, else None."""
    for name in need.names:
        p = folder / name
        if p.is_file():
            return p
    return None


def _missing(folder: Path, layout: Layout) -> Sequence[Needed]:
    return [n for n in layout.needed if pick_file(folder, n) is None]


def _raise_missing(folder: Path, layout: Layout, missing: Sequence[Needed], reason: str = "") -> None:
    listed = ", ".join(" or ".join(n.names) for n in missing)
    folders = sorted({str(Path(n.preferred).parent) for n in missing if str(Path(n.preferred).parent) != "."})
    msg = (
        f"{layout.what} weights are incomplete in {folder}: missing {listed}."
        + (f" Sub-folders expected: {', '.join(f + '/' for f in folders)}." if folders else "")
        + f"\nExpected layout (as {layout.hub_id} ships it):\n{layout.describe(str(folder))}\n"
        f"Download them from https://huggingface.co/{layout.hub_id} into that folder, or pass the "
        f"Hub id '{layout.hub_id}' with network access."
    )
    if reason:
        msg += f"\n{reason}"
    raise MissingFilesError(msg)


def resolve_weights(
    source: Source,
    layout: Layout,
    *,
    cache_dir: Optional[Source] = None,
    local_files_only: bool = False,
    timeout_s: float = 5.0,
) -> Path:
    """Local folder holding every file of ``layout``; downloads from the Hub if ``source`` is an id.

    Raises :class:`MissingFilesError` listing the expected files and folders if the folder is
    incomplete, does not exist, or the Hub cannot be reached (offline, unknown repo, no access).
    """
    s = os.fspath(source)
    folder = Path(s).expanduser()
    if folder.is_dir():
        missing = _missing(folder, layout)
        if missing:
            _raise_missing(folder, layout, missing)
        return folder
    if not looks_like_hub_id(s):
        raise MissingFilesError(
            f"{layout.what} weights: folder {folder} does not exist (and '{s}' is not a Hub id "
            f"like '{layout.hub_id}'). Expected layout:\n{layout.describe(str(folder))}"
        )
    try:
        from huggingface_hub import snapshot_download

        downloaded = snapshot_download(
            repo_id=s,
            allow_patterns=[n.preferred for n in layout.needed],
            cache_dir=os.fspath(cache_dir) if cache_dir is not None else None,
            local_files_only=local_files_only,
            etag_timeout=timeout_s,
        )
    except Exception as exc:  # offline, unknown repo, gated, network error: all the same to a user
        target = Path(os.fspath(cache_dir)) if cache_dir is not None else Path("<huggingface cache>")
        raise MissingFilesError(
            f"{layout.what} weights: could not get '{s}' from the Hugging Face Hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no details'}).\n"
            f"Needed files:\n{layout.describe(s)}\n"
            f"Put them in a local folder and pass that folder instead, or connect to the Hub "
            f"(download cache: {target})."
        ) from None
    folder = Path(downloaded)
    missing = _missing(folder, layout)
    if missing:
        _raise_missing(folder, layout, missing, reason=f"(downloaded from the Hub repo '{s}')")
    return folder
