"""Hugging Face Hub downloads: one policy for every loader of the pack.

- **Only what is used**: the caller names the files (or allow-patterns); pickled weights
  (``.bin``, ``.pt``, ``.ckpt``, ...) are never fetched, whatever the patterns say.
- **All or nothing**: files are fetched into a hidden staging folder beside the destination and
  moved in only when every file arrived. A failed or cancelled download leaves the destination
  as it was (not created if it did not exist) and no staging folder, lock or ``.cache`` behind.
- **Fails fast offline**: the file listing is a dry-run snapshot with a short timeout, so with
  ``HF_HUB_OFFLINE`` set, no network or an unreachable endpoint the call fails within seconds,
  with a :class:`~trajcrafter_core.errors.MissingFilesError` that says what to put where.
- **Progress and cancel**: ``progress(done, total)`` advances per file (and per byte within a
  file where ``huggingface_hub`` reports it); ``cancel()`` is called between files — it may
  raise (a host's interrupt, passed through) or return True (:class:`DownloadCancelled`).
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Union

from .errors import MissingFilesError, TrajCrafterError
from .progress import CancelFn, Cancelled, ProgressFn

__all__ = ["PICKLE_SUFFIXES", "DownloadCancelled", "select_files", "list_repo_files", "fetch_file", "download"]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".msgpack", ".h5", ".onnx")
#: Progress units per file (bytes within a file are mapped onto them).
UNITS_PER_FILE = 1000
DEFAULT_TIMEOUT_S = 10.0

PathLike = Union[str, os.PathLike]


class DownloadCancelled(Cancelled):
    """A download stopped because ``cancel()`` returned True; nothing was kept."""


def select_files(repo_files: Iterable[str], patterns: Sequence[str]) -> List[str]:
    """Files matching any pattern (``fnmatch``, as the Hub's allow-patterns), never pickles."""
    return sorted(f for f in repo_files if not f.lower().endswith(PICKLE_SUFFIXES)
                  and any(fnmatch.fnmatch(f, p) for p in patterns))


def list_repo_files(repo_id: str, timeout: float = DEFAULT_TIMEOUT_S) -> List[str]:
    """File names of a Hub repository. A dry-run snapshot: offline or unreachable it fails in
    well under a second (``HfApi.list_repo_files`` retries for ~25 s)."""
    from huggingface_hub import snapshot_download

    if "dry_run" in inspect.signature(snapshot_download).parameters:
        staging = Path(tempfile.gettempdir()) / f"trajcrafter-listing-{uuid.uuid4().hex}"
        try:
            infos = snapshot_download(repo_id=repo_id, local_dir=str(staging), dry_run=True, etag_timeout=timeout)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return [info.filename for info in infos]
    from huggingface_hub import HfApi  # older huggingface_hub

    return list(HfApi().list_repo_files(repo_id))


def fetch_file(repo_id: str, name: str, folder: Path, timeout: float, tqdm_class=None) -> None:
    """One file of a Hub repository into ``folder`` (at its path in the repository)."""
    from huggingface_hub import hf_hub_download

    extra = {}
    if tqdm_class is not None and "tqdm_class" in inspect.signature(hf_hub_download).parameters:
        extra["tqdm_class"] = tqdm_class
    hf_hub_download(repo_id, name, local_dir=str(folder), etag_timeout=timeout, **extra)


def _file_bar(progress: ProgressFn, index: int, total: int):
    """A tqdm class reporting one file's bytes into ``progress`` (file slot ``index``)."""
    from tqdm.auto import tqdm

    class FileBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no console bar of its own; the caller shows progress
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            super().update(n)
            if self.total:
                fraction = min(float(self.n) / float(self.total), 1.0)
                progress(index * UNITS_PER_FILE + int(fraction * (UNITS_PER_FILE - 1)), total)

    return FileBar


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


def download(repo_id: str, local_dir: PathLike, *, files: Optional[Sequence[str]] = None,
             patterns: Optional[Sequence[str]] = None,
             select: Optional[Callable[[List[str]], List[str]]] = None, progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelFn] = None, timeout: float = DEFAULT_TIMEOUT_S,
             instructions: str = "") -> Path:
    """Download ``files`` (or the repository files matching ``patterns``, or those ``select``
    picks from the repository's file list) of ``repo_id`` into ``local_dir`` (plain files in the
    repository's layout), all or nothing; returns ``local_dir``.

    Files already in ``local_dir`` are replaced only once every file has arrived. Any failure of
    the Hub (offline, unknown or gated repository, network) raises :class:`MissingFilesError`
    naming the repository, the folder and ``instructions``; whatever ``cancel`` raises passes
    through unchanged.
    """
    target = Path(local_dir)
    staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    parent_existed = target.parent.is_dir()
    from_cancel: List[BaseException] = []

    def check_cancel() -> None:
        try:
            stop = cancel() if cancel is not None else False
        except BaseException as exc:  # the host's interrupt: passed through unchanged
            from_cancel.append(exc)
            raise
        if stop:
            raise DownloadCancelled(f"download of {repo_id} cancelled; nothing was written to {target}.")

    done = False
    try:
        # The listing first, always: it fails within a second offline (a file download retries
        # for ~25 s on a DNS failure) and tells which of the named files the repository has.
        listing = list_repo_files(repo_id, timeout)
        if files is None:
            files = select(listing) if select is not None else select_files(listing, patterns or [])
        else:
            absent = [f for f in files if f not in listing]
            if absent:
                raise MissingFilesError(f"{repo_id} does not hold {', '.join(absent)}"
                                        + (f".\n{instructions}" if instructions else "."))
        files = [f for f in files if not f.lower().endswith(PICKLE_SUFFIXES)]
        if not files:
            raise TrajCrafterError(f"{repo_id} holds none of the files needed")
        total = len(files) * UNITS_PER_FILE
        staging.mkdir(parents=True)
        for i, name in enumerate(files):
            check_cancel()
            fetch_file(repo_id, name, staging, timeout,
                       _file_bar(progress, i, total) if progress is not None else None)
            if progress is not None:
                progress((i + 1) * UNITS_PER_FILE, total)
        for name in files:
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, dest)
        done = True
        return target
    except (DownloadCancelled, MissingFilesError):
        raise
    except Exception as exc:  # noqa: BLE001 - the Hub's many failure types mean the same to a user
        if any(exc is c for c in from_cancel):
            raise
        raise MissingFilesError(
            f"Could not download {repo_id} into {target} ({type(exc).__name__}: {_first_line(exc)}). "
            f"No network, HF_HUB_OFFLINE set, no access to the repository, or the Hub is unreachable."
            + (f"\n{instructions}" if instructions else "")) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done and not parent_existed:
            try:  # the parent was made for the staging folder alone
                target.parent.rmdir()
            except OSError:
                pass
