"""The only module of the pack that talks to ComfyUI.

Everything a node needs from the host goes through here: compute / intermediate / offload
devices, progress bars, the interrupt check, freeing cached VRAM, the input folder and the model
folders. Each function uses ComfyUI when it is importable (``comfy.*``, ``folder_paths``) and a
plain fallback otherwise, so every node runs — and is unit-tested — without ComfyUI.

ComfyUI modules are imported lazily, on first use, never at import time of the pack.
Fallback folders come from environment variables (``TRAJCRAFTER_INPUT_DIR``,
``TRAJCRAFTER_MODELS_DIR``, ``TRAJCRAFTER_OUTPUT_DIR``), else ``./input``, ``./models``, ``./output``.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Callable, List, Optional

from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.model_folders import MODEL_FOLDER

log = logging.getLogger("TrajectoryCrafter")

_modules: dict = {}


def _comfy(name: str):
    """The ComfyUI module ``name`` (e.g. ``comfy.model_management``), or None outside ComfyUI."""
    if name not in _modules:
        try:
            _modules[name] = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - outside ComfyUI anything may fail; fall back quietly
            _modules[name] = None
    return _modules[name]


def in_comfyui() -> bool:
    """True when running inside a ComfyUI process (``folder_paths`` and ``comfy`` importable)."""
    return _comfy("folder_paths") is not None and _comfy("comfy.model_management") is not None


# --------------------------------------------------------------------------------- node API


def comfy_io():
    """ComfyUI's V3 node API (``comfy_api.latest.io``), or None: outside ComfyUI, in a ComfyUI
    without it, or when ``TRAJCRAFTER_NODE_API=v1`` asks for the V1 classes."""
    if os.environ.get("TRAJCRAFTER_NODE_API", "").strip().lower() == "v1" or not in_comfyui():
        return None
    latest = _comfy("comfy_api.latest")
    io = getattr(latest, "io", None)
    if io is None or not hasattr(io, "ComfyNode") or not hasattr(latest, "ComfyExtension"):
        return None
    return io


def comfy_extension(node_classes):
    """A V3 ``ComfyExtension`` listing ``node_classes`` (what ``comfy_entrypoint`` returns)."""
    latest = _comfy("comfy_api.latest")

    class TrajectoryCrafterExtension(latest.ComfyExtension):
        async def get_node_list(self):
            return list(node_classes)

    return TrajectoryCrafterExtension()


# --------------------------------------------------------------------------------- devices


def torch_device():
    """Device the models compute on (ComfyUI's choice, honours ``--cpu``)."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        return mm.get_torch_device()
    import torch

    override = os.environ.get("TRAJCRAFTER_DEVICE")
    if override:
        return torch.device(override)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def intermediate_device():
    """Device of tensors passed between nodes (IMAGE, MASK, depth, point clouds): CPU by default."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        return mm.intermediate_device()
    import torch

    return torch.device("cpu")


def offload_device():
    """Where idle model weights wait (CPU unless ComfyUI runs with ``--gpu-only``)."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        return mm.unet_offload_device()
    import torch

    return torch.device("cpu")


def make_room(num_bytes: int, device=None) -> None:
    """Ask ComfyUI to unload its own models until ``num_bytes`` are free on ``device``."""
    mm = _comfy("comfy.model_management")
    if mm is None:
        return
    device = device if device is not None else mm.get_torch_device()
    if getattr(device, "type", "cpu") == "cpu":
        return
    try:
        mm.free_memory(int(num_bytes), device)
    except Exception as exc:  # noqa: BLE001 - best effort; sampling may still fit
        log.warning("could not free %d bytes on %s: %s", num_bytes, device, exc)


def soft_empty_cache() -> None:
    """Release cached, unused accelerator memory (after a run or an interrupt)."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.soft_empty_cache()
        return
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------- progress and interrupt


class Interrupted(Exception):
    """Raised by :func:`check_interrupt` outside ComfyUI after :func:`request_interrupt`."""


_fallback_interrupt = False


def request_interrupt(value: bool = True) -> None:
    """Ask the running node to stop at its next check (ComfyUI's Cancel, or the fallback flag)."""
    global _fallback_interrupt
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.interrupt_current_processing(value)
    else:
        _fallback_interrupt = value


def check_interrupt() -> None:
    """Raise ComfyUI's interrupt exception (or :class:`Interrupted`) if Cancel was pressed."""
    global _fallback_interrupt
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()
    elif _fallback_interrupt:
        _fallback_interrupt = False
        raise Interrupted("processing interrupted")


def is_interrupt(exc: BaseException) -> bool:
    """True for the exception an interrupt raises (ComfyUI's or the fallback one)."""
    if isinstance(exc, Interrupted):
        return True
    mm = _comfy("comfy.model_management")
    return mm is not None and isinstance(exc, mm.InterruptProcessingException)


class Progress:
    """Per-step progress: ComfyUI's ProgressBar (UI bar, and its hook checks Cancel) or a counter.

    ``listeners`` (fallback and ComfyUI alike) get ``(current, total)`` after each update; tests
    use them to observe steps.
    """

    listeners: List[Callable[[int, int], None]] = []

    def __init__(self, total: int):
        self.total = max(int(total), 1)
        self.current = 0
        utils = _comfy("comfy.utils")
        self._bar = utils.ProgressBar(self.total) if utils is not None else None

    def update_absolute(self, value: int, total: Optional[int] = None, preview=None) -> None:
        if total is not None:
            self.total = max(int(total), 1)
        self.current = min(int(value), self.total)
        if self._bar is not None:
            self._bar.update_absolute(self.current, self.total, preview)
        for listener in list(Progress.listeners):
            listener(self.current, self.total)

    def update(self, steps: int = 1) -> None:
        self.update_absolute(self.current + steps)

    def callback(self, done: int, total: int) -> None:
        """``progress(done, total)`` for core functions: moves the bar, then honours Cancel."""
        self.update_absolute(done, total)
        check_interrupt()


def cancel_requested() -> bool:
    """``cancel()`` for core functions: raises the host's interrupt if Cancel was pressed."""
    check_interrupt()
    return False


# --------------------------------------------------------------------------------- previews


def temp_directory() -> str:
    """ComfyUI's temp folder (previews live there), or ``<tmp>/trajcrafter_previews`` outside it."""
    fp = _comfy("folder_paths")
    if fp is not None:
        return fp.get_temp_directory()
    import tempfile

    return os.path.join(tempfile.gettempdir(), "trajcrafter_previews")


def save_previews(images, max_frames: int = 4) -> List[dict]:
    """Save up to ``max_frames`` evenly spaced frames of ``images`` ``[N, H, W, 3]`` (0..1) as PNGs
    in the temp folder; returns ComfyUI's ``ui`` image entries for them (``type: temp``)."""
    import uuid

    import numpy as np
    from PIL import Image

    n = int(images.shape[0])
    picks = sorted({round(i * (n - 1) / max(1, max_frames - 1)) for i in range(min(n, max_frames))})
    folder = temp_directory()
    os.makedirs(folder, exist_ok=True)
    entries = []
    tag = uuid.uuid4().hex[:10]
    for k, index in enumerate(picks):
        frame = images[index].detach().float().clamp(0, 1).cpu().numpy()
        name = f"trajcrafter_{tag}_{k:02d}.png"
        Image.fromarray((frame * 255.0 + 0.5).astype(np.uint8)).save(os.path.join(folder, name), compress_level=1)
        entries.append({"filename": name, "subfolder": "", "type": "temp"})
    return entries


# --------------------------------------------------------------------------------- folders


def _env_dir(var: str, default: str) -> str:
    return os.path.abspath(os.environ.get(var) or os.path.join(os.getcwd(), default))


def input_directory() -> str:
    """ComfyUI's input folder (uploads land here)."""
    fp = _comfy("folder_paths")
    return fp.get_input_directory() if fp is not None else _env_dir("TRAJCRAFTER_INPUT_DIR", "input")


def output_directory() -> str:
    """ComfyUI's output folder."""
    fp = _comfy("folder_paths")
    return fp.get_output_directory() if fp is not None else _env_dir("TRAJCRAFTER_OUTPUT_DIR", "output")


EXAMPLE_TAG = "[example]"
"""Annotation of files bundled with the pack (``"swing.txt [example]"``), read from its own folder."""


def _annotated_base(name: str, examples_dir: Optional[str] = None):
    """Split ComfyUI's ``"file.mp4 [output]"`` annotation into ``(name, base folder)``."""
    if examples_dir is not None and name.endswith(EXAMPLE_TAG):
        return name[: -len(EXAMPLE_TAG)].rstrip(), examples_dir
    for tag, getter in (("[output]", output_directory), ("[input]", input_directory)):
        if name.endswith(" " + tag) or name.endswith(tag):
            return name[: -len(tag)].rstrip(), getter()
    fp = _comfy("folder_paths")
    if fp is not None and name.endswith("[temp]"):
        return name[: -len("[temp]")].rstrip(), fp.get_temp_directory()
    return name, input_directory()


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def list_input_files(extensions) -> List[str]:
    """Files under the input folder (recursively, relative paths) whose suffix is in ``extensions``."""
    root = input_directory()
    found = []
    if not os.path.isdir(root):
        return found
    exts = {e.lower() for e in extensions}
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if os.path.splitext(f)[1].lower() in exts:
                found.append(os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/"))
    return sorted(found)


def list_example_files(folder: str, extensions) -> List[str]:
    """Files bundled with the pack in ``folder``, as combo values ``"name [example]"``."""
    if not os.path.isdir(folder):
        return []
    exts = {e.lower() for e in extensions}
    return [f"{f} {EXAMPLE_TAG}" for f in sorted(os.listdir(folder)) if os.path.splitext(f)[1].lower() in exts]


def comfy_folders() -> List[str]:
    """The folders whose files a prompt may name and learn about: input, output and temp."""
    return [input_directory(), output_directory(), temp_directory()]


def is_private_path(path: str) -> bool:
    """True for a path outside ComfyUI's input, output and temp folders: whoever can queue a
    prompt must not learn whether such a file exists, how large it is or what it holds."""
    return not any(_inside(path, folder) for folder in comfy_folders())


def private_path_message(path: str, what: str) -> str:
    """The one message for any problem with a file outside ComfyUI's folders (the same whether it
    is missing, a folder, unreadable or of another kind)."""
    return (f"{what} path '{path}' cannot be used: it is outside ComfyUI's input, output and temp folders, "
            f"and there only a readable {what} file is accepted. Check the path, or copy the file into "
            f"ComfyUI's input folder for a detailed message.")


def resolve_input_file(choice: str, path: str = "", what: str = "file", examples_dir: Optional[str] = None) -> str:
    """Absolute path of a user-chosen file, refusing to leave ComfyUI's input folder.

    ``path`` (a free-text widget) wins when non-empty: an absolute path is taken as given (the
    user typed it on purpose); a relative one is resolved inside the input folder. ``choice`` (the
    upload combo) is always resolved inside the input folder (or ``[output]``/``[temp]`` when so
    annotated, or the pack's ``examples_dir`` for ``"name [example]"``). Raises
    :class:`TrajCrafterError` for traversal outside that folder, a folder or a missing file —
    for an absolute path outside ComfyUI's folders with :func:`private_path_message` only.
    """
    path = (path or "").strip().strip('"').strip("'")
    if path:
        if os.path.isabs(os.path.expanduser(path)):
            full = os.path.abspath(os.path.expanduser(path))
            base = None
        else:
            base = input_directory()
            full = os.path.abspath(os.path.join(base, path))
        label = f"{what} path '{path}'"
    else:
        if not choice:
            raise TrajCrafterError(f"No {what} chosen: upload one or pick it from the list, or type a path.")
        name, base = _annotated_base(str(choice), examples_dir)
        full = os.path.abspath(os.path.join(base, name))
        label = f"{what} '{choice}'"
    if base is not None and not _inside(full, base):
        raise TrajCrafterError(
            f"{label} points outside ComfyUI's folder {base}; only files inside it can be read "
            f"this way. Type an absolute path in the path input if you mean a file elsewhere."
        )
    if base is None and is_private_path(full):
        if not os.path.isfile(full) or not os.access(full, os.R_OK):
            raise TrajCrafterError(private_path_message(path, what))
        return full
    if os.path.isdir(full):
        raise TrajCrafterError(f"{label} is a folder; choose a {what} file inside it.")
    if not os.path.isfile(full):
        where = f" (looked in {base})" if base is not None else ""
        raise TrajCrafterError(f"{label} does not exist{where}. Check the name or upload the file again.")
    return full


def typed_private_path(path: str) -> bool:
    """True when a typed path is absolute and outside ComfyUI's folders (:func:`is_private_path`)."""
    typed = os.path.expanduser((path or "").strip().strip('"').strip("'"))
    return bool(typed) and os.path.isabs(typed) and is_private_path(os.path.abspath(typed))


def check_input_file(choice: str, path: str = "", what: str = "file", examples_dir: Optional[str] = None):
    """A validator's answer for a chosen file, before the queue runs: ``True`` or the message of
    :func:`resolve_input_file`. An absolute path outside ComfyUI's folders always passes here —
    refusing it now would tell whether it exists; the run gives the one private message."""
    if typed_private_path(path):
        return True
    try:
        resolve_input_file(choice, path, what, examples_dir)
    except TrajCrafterError as exc:
        return str(exc)
    return True


def file_fingerprint(locate: Callable[[], str]):
    """What a file-reading node's ``IS_CHANGED`` returns: the path and modification time of the
    file ``locate()`` finds (so an edited file runs again), NaN when it finds none (always re-run:
    the run reports the problem)."""
    try:
        full = locate()
    except Exception:  # noqa: BLE001 - the run reports it
        return float("nan")
    return f"{full}:{os.path.getmtime(full)}"


def register_model_folders() -> None:
    """Register ``models/trajectorycrafter`` with ComfyUI, keeping yaml-configured paths first."""
    fp = _comfy("folder_paths")
    if fp is None:
        return
    default = os.path.join(fp.models_dir, MODEL_FOLDER)
    if MODEL_FOLDER in fp.folder_names_and_paths:
        paths, _ = fp.folder_names_and_paths[MODEL_FOLDER]
        if default not in paths:
            paths.append(default)
    else:
        fp.folder_names_and_paths[MODEL_FOLDER] = ([default], {".safetensors", ".json"})


def model_folders(name: str = MODEL_FOLDER) -> List[str]:
    """Search paths of a model folder: ``extra_model_paths.yaml`` entries first, then the default."""
    fp = _comfy("folder_paths")
    if fp is not None:
        register_model_folders()
        return list(fp.get_folder_paths(name))
    root = os.environ.get("TRAJCRAFTER_MODELS_DIR") or os.path.join(os.getcwd(), "models")
    return [os.path.join(os.path.abspath(root), name)]


def download_folder(name: str = MODEL_FOLDER) -> str:
    """Where Hub downloads go: the first search path of ``name`` (created if needed)."""
    folder = model_folders(name)[0]
    os.makedirs(folder, exist_ok=True)
    return folder


def list_model_dirs(
    name: str = MODEL_FOLDER,
    accept: Optional[Callable[[str], bool]] = None,
    descend: Optional[Callable[[str], bool]] = None,
) -> List[str]:
    """Sub-folders of every search path of ``name`` that ``accept`` (``"a"``, or ``"a/b"`` one level
    down inside a first-level folder that ``descend`` allows, e.g. a folder grouping models)."""
    found = set()
    for root in model_folders(name):
        if not os.path.isdir(root):
            continue
        for first in sorted(os.listdir(root)):
            p1 = os.path.join(root, first)
            if first.startswith(".") or not os.path.isdir(p1):
                continue
            if accept is None or accept(p1):
                found.add(first)
            if accept is None or (descend is not None and not descend(p1)):
                continue
            for second in sorted(os.listdir(p1)):
                p2 = os.path.join(p1, second)
                if os.path.isdir(p2) and not second.startswith(".") and accept(p2):
                    found.add(f"{first}/{second}")
    return sorted(found)


def find_model_dir(choice: str, name: str = MODEL_FOLDER) -> Optional[str]:
    """Absolute folder for a combo value from :func:`list_model_dirs`, or None if absent."""
    parts = [p for p in choice.replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return None
    for root in model_folders(name):
        full = os.path.join(root, *parts)
        if os.path.isdir(full) and _inside(full, root):
            return full
    return None


def model_path(choice: str, name: str = MODEL_FOLDER) -> str:
    """Folder of a loader's combo value: where it is found, else where a download puts it (the
    first search path of ``name``)."""
    return find_model_dir(choice, name) or os.path.join(model_folders(name)[0], choice)


def list_model_files(name: str, extensions) -> List[str]:
    """Files (relative paths) of ComfyUI's model folder ``name`` (e.g. ``"loras"``) with one of
    ``extensions``; outside ComfyUI, under ``$TRAJCRAFTER_MODELS_DIR/<name>``."""
    exts = {e.lower() for e in extensions}
    fp = _comfy("folder_paths")
    if fp is not None and name in fp.folder_names_and_paths:
        return sorted(f for f in fp.get_filename_list(name) if os.path.splitext(f)[1].lower() in exts)
    found = set()
    for root in model_folders(name):
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for f in files:
                if os.path.splitext(f)[1].lower() in exts:
                    found.add(os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/"))
    return sorted(found)


def model_file_path(choice: str, name: str) -> str:
    """Absolute path of a value of :func:`list_model_files`; raises if it is not there."""
    fp = _comfy("folder_paths")
    if fp is not None and name in fp.folder_names_and_paths:
        full = fp.get_full_path(name, choice)
        if full:
            return full
    else:
        parts = [p for p in choice.replace("\\", "/").split("/") if p]
        for root in model_folders(name):
            full = os.path.join(root, *parts)
            if parts and ".." not in parts and os.path.isfile(full) and _inside(full, root):
                return full
    raise TrajCrafterError(f"'{choice}' is not in the {name} model folder ({', '.join(model_folders(name))}); "
                           f"put the file there or pick another.")
