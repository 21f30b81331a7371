"""Hub downloads for the loader nodes: ComfyUI progress bar, Cancel, safetensors and configs only.

:func:`download` fetches the files of a Hub repository that match allow-patterns into a local
folder (``local_dir``: plain files, the layout the loaders read), one file after another, with
the ComfyUI progress bar advancing per file and, within a file, per byte where
``huggingface_hub`` reports it. Cancel stops between files. Pickled weights (``.bin``, ``.pt``,
``.ckpt``, ...) are never fetched, whatever the patterns say.
"""

from __future__ import annotations

import fnmatch
from typing import Iterable, List, Sequence

from . import bridge

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".msgpack", ".h5", ".onnx")
_UNITS_PER_FILE = 1000


def select_files(repo_files: Iterable[str], patterns: Sequence[str]) -> List[str]:
    """Files matching any pattern (``fnmatch``, as the Hub's allow-patterns), never pickles."""
    chosen = []
    for f in repo_files:
        if f.lower().endswith(PICKLE_SUFFIXES):
            continue
        if any(fnmatch.fnmatch(f, p) for p in patterns):
            chosen.append(f)
    return sorted(chosen)


def list_repo_files(repo_id: str) -> List[str]:
    from huggingface_hub import HfApi

    return list(HfApi().list_repo_files(repo_id))


def _file_bar(progress: "bridge.Progress", index: int):
    """A tqdm class reporting one file's bytes into ``progress`` (slot ``index``)."""
    from tqdm.auto import tqdm

    class FileBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no console bar; the UI shows it
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            super().update(n)
            if self.total:
                fraction = min(float(self.n) / float(self.total), 1.0)
                progress.update_absolute(index * _UNITS_PER_FILE + int(fraction * (_UNITS_PER_FILE - 1)))

    return FileBar


def download(repo_id: str, local_dir: str, patterns: Sequence[str] = None, files: Sequence[str] = None) -> List[str]:
    """Download ``files`` (or the repo files matching ``patterns``) of ``repo_id`` into ``local_dir``.

    Returns the relative paths fetched. Raises whatever ``huggingface_hub`` raises (offline,
    unknown repository, gated); callers turn that into a message naming the files and folder.
    """
    import inspect

    from huggingface_hub import hf_hub_download

    if files is None:
        files = select_files(list_repo_files(repo_id), patterns or [])
    else:
        files = [f for f in files if not f.lower().endswith(PICKLE_SUFFIXES)]
    progress = bridge.Progress(max(len(files), 1) * _UNITS_PER_FILE)
    accepts_bar = "tqdm_class" in inspect.signature(hf_hub_download).parameters
    for i, name in enumerate(files):
        bridge.check_interrupt()
        extra = {"tqdm_class": _file_bar(progress, i)} if accepts_bar else {}
        hf_hub_download(repo_id, name, local_dir=local_dir, **extra)
        progress.update_absolute((i + 1) * _UNITS_PER_FILE)
    return list(files)
