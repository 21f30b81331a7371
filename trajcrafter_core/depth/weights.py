"""Find depth-model weights: a local folder first, else the Hugging Face Hub (only needed files).

A *source* is a local folder or a Hub repo id (``owner/name``). A local folder must hold the
official layout; missing files come from the Hub through :func:`trajcrafter_core.hub.download`
(only the files listed, all or nothing). Anything missing — including being offline — raises
:class:`~trajcrafter_core.errors.MissingFilesError` naming the files and folders expected,
within seconds (short Hub timeouts, no retries of our own).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from ..errors import MissingFilesError

__all__ = ["Needed", "Layout", "resolve_weights", "missing_files", "hub_folder", "looks_like_hub_id", "pick_file"]

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


def missing_files(folder: Path, layout: Layout) -> Sequence[Needed]:
    """The files of ``layout`` that ``folder`` lacks (all of them when it is not a folder)."""
    folder = Path(folder)
    return [n for n in layout.needed if not folder.is_dir() or pick_file(folder, n) is None]


def _raise_missing(folder: Path, layout: Layout, missing: Sequence[Needed], reason: str = "") -> None:
    listed = ", ".join(" or ".join(n.names) for n in missing)
    folders = sorted({str(Path(n.preferred).parent) for n in missing if str(Path(n.preferred).parent) != "."})
    msg = (
        f"{layout.what} weights are incomplete in {folder}: missing {listed}."
        + (f" Sub-folders expected: {', '.join(f + '/' for f in folders)}." if folders else "")
        + f"\nExpected layout (as {layout.hub_id} ships it):\n{layout.describe(str(folder))}\n"
        f"Download them from https://huggingface.co/{layout.hub_id} into that folder, or turn on "
        f"downloading (download_missing on the loader node, --download in the CLI)."
    )
    if reason:
        msg += f"\n{reason}"
    raise MissingFilesError(msg)


def hub_folder(repo_id: str, cache_dir: Optional[Source] = None) -> Path:
    """Local folder a Hub id's files are downloaded into: ``cache_dir/<owner>--<name>``
    (default ``cache_dir``: ``trajcrafter/`` in huggingface_hub's cache)."""
    if cache_dir is None:
        from huggingface_hub import constants

        cache_dir = os.path.join(constants.HF_HUB_CACHE, "trajcrafter")
    return Path(os.fspath(cache_dir)) / repo_id.replace("/", "--")


def resolve_weights(
    source: Source,
    layout: Layout,
    *,
    cache_dir: Optional[Source] = None,
    local_files_only: bool = False,
    timeout_s: float = 5.0,
    download: bool = False,
    progress=None,
    cancel=None,
) -> Path:
    """Local folder holding every file of ``layout``.

    ``source`` is a folder, or a Hub id (``owner/name``, not an existing path) whose files are
    fetched into :func:`hub_folder` unless ``local_files_only``. With ``download`` a folder's
    missing files are fetched from ``layout.hub_id`` into it. Downloads follow the one policy of
    :func:`trajcrafter_core.hub.download` (listed files only, all or nothing, fast offline
    failure, ``progress``/``cancel``). Raises :class:`MissingFilesError` listing the expected
    files and folders if the folder is incomplete, does not exist or the Hub cannot be reached.
    """
    from .. import hub

    s = os.fspath(source)
    if looks_like_hub_id(s):
        repo_id, folder, fetch = s, hub_folder(s, cache_dir), not local_files_only
    else:
        repo_id, folder, fetch = layout.hub_id, Path(s).expanduser(), download
    missing = missing_files(folder, layout) if folder.is_dir() else list(layout.needed)
    if not missing:
        return folder
    if not fetch:
        if folder.is_dir():
            _raise_missing(folder, layout, missing)
        raise MissingFilesError(
            f"{layout.what} weights: folder {folder} does not exist. Expected layout:\n"
            f"{layout.describe(str(folder))}\nDownload them from https://huggingface.co/{layout.hub_id} into "
            f"that folder, or turn on downloading (download_missing on the loader node, --download in the CLI)."
        )
    hub.download(repo_id, folder, files=[n.preferred for n in missing], progress=progress, cancel=cancel,
                 timeout=timeout_s, instructions=f"Needed files ({layout.what}):\n{layout.describe(str(folder))}")
    missing = missing_files(folder, layout)
    if missing:
        _raise_missing(folder, layout, missing, reason=f"(downloaded from the Hub repo '{repo_id}')")
    return folder
