"""Find, download and load the TrajectoryCrafter weights (safetensors only, never pickles).

Two folders, in their official layouts:

- **transformer** (``TrajectoryCrafter/TrajectoryCrafter``): ``config.json`` + safetensors
  (one file, or shards with ``*.safetensors.index.json``), either in the folder itself or one
  level down in ``crosstransformer/``.
- **base** (``alibaba-pai/CogVideoX-Fun-V1.1-5b-InP``): ``vae/``, ``text_encoder/``,
  ``tokenizer/``, ``scheduler/``. Its ``transformer/`` folder is never used nor downloaded.

:meth:`TrajectoryCrafterPipeline.from_pretrained <trajcrafter_core.pipeline.TrajectoryCrafterPipeline.from_pretrained>`
puts everything together (this module never imports the pipeline). Loaders (:func:`load_vae`,
:func:`load_text_encoder`, :func:`load_tokenizer`, :func:`load_scheduler`,
:func:`load_transformer`) check files and tensor shapes first and raise
:class:`~trajcrafter_core.errors.MissingFilesError` / :class:`~trajcrafter_core.errors.TrajCrafterError`
with the file, folder or tensor key at fault. :func:`ensure_models` downloads what is missing
through :func:`trajcrafter_core.hub.download` (allow-patterns, all or nothing); offline it fails
in seconds with a message listing what to put where.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Union

import torch

from . import hub
from .errors import MissingFilesError, TrajCrafterError
from .model_folders import REPO_IDS
from .models.checkpoint_check import check_state_dict, safetensors_shapes  # noqa: F401 (re-exported)
from .official import SCHEDULER_CLASSES

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

BASE_REPO_ID = REPO_IDS["base"]
TRANSFORMER_REPO_ID = REPO_IDS["transformer"]
TRANSFORMER_SUBFOLDER = "crosstransformer"

#: What :func:`download_base_model` fetches: everything but the CogVideoX-Fun transformer.
BASE_ALLOW_PATTERNS = [
    "model_index.json",
    "vae/config.json", "vae/*.safetensors", "vae/*.safetensors.index.json",
    "text_encoder/config.json", "text_encoder/*.safetensors", "text_encoder/*.safetensors.index.json",
    "tokenizer/*",
    "scheduler/scheduler_config.json",
]

#: Where each base component lives and what it needs (shown in "missing files" messages).
BASE_LAYOUT = {
    "vae": "config.json, diffusion_pytorch_model.safetensors",
    "text_encoder": "config.json, model.safetensors (or model-0000x-of-0000n.safetensors + "
                    "model.safetensors.index.json)",
    "tokenizer": "spiece.model, tokenizer_config.json, special_tokens_map.json",
    "scheduler": "scheduler_config.json",
}

DTYPES = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}

#: Official sampler names (``demo.py``) → diffusers scheduler class names.
SCHEDULERS = SCHEDULER_CLASSES


def parse_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """``"fp32" | "fp16" | "bf16"`` (or aliases, or a ``torch.dtype``) → ``torch.dtype``."""
    if isinstance(dtype, torch.dtype):
        if dtype in (torch.float32, torch.float16, torch.bfloat16):
            return dtype
    elif isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise TrajCrafterError(f"dtype must be one of fp32, fp16, bf16 (or the torch dtypes), got {dtype!r}.")


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise MissingFilesError(f"{what}: {path.name} is missing in {path.parent}.")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TrajCrafterError(f"{what}: {path} is not valid JSON ({exc}); download it again.") from exc


def find_safetensors(folder: PathLike, stem: str, what: str) -> List[Path]:
    """The safetensors files holding one component's weights in ``folder``.

    Looks for ``{stem}.safetensors``, then a shard index ``{stem}.safetensors.index.json`` (every
    shard it names must exist), then any ``*.safetensors``. Pickle files (``.bin``, ``.pt``) are
    never loaded: their presence alone gives a message saying to convert them.
    """
    folder = Path(folder)
    single = folder / f"{stem}.safetensors"
    if single.is_file():
        return [single]
    index = folder / f"{stem}.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index, what).get("weight_map", {})
        shards = sorted(set(weight_map.values()))
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing or not shards:
            raise MissingFilesError(
                f"{what}: shard(s) {', '.join(missing) or '(none listed)'} named by {index.name} are "
                f"missing in {folder}. Download every shard of the index into that folder.")
        return [folder / name for name in shards]
    found = sorted(folder.glob("*.safetensors"))
    if found:
        return found
    pickles = sorted(p.name for p in folder.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    hint = (f" Only pickle weights were found ({', '.join(pickles)}); they are not loaded for safety: "
            f"convert them to safetensors (safetensors.torch.save_file) first." if pickles else "")
    raise MissingFilesError(
        f"{what}: no weights in {folder}; expected {stem}.safetensors or sharded "
        f"{stem}-0000x-of-0000n.safetensors with {stem}.safetensors.index.json.{hint}")


def _build_empty(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Instantiate with parameters on the meta device (no memory, no random init)."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        return build()


def load_module_weights(model: torch.nn.Module, files: Sequence[Path], dtype: torch.dtype) -> torch.nn.Module:
    """Load safetensors ``files`` into an (empty-built) ``model``, casting floats to ``dtype``."""
    from safetensors.torch import load_file

    for file in files:
        state = load_file(str(file), device="cpu")
        state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
        model.load_state_dict(state, strict=False, assign=True)
        del state
    for module in model.modules():  # non-persistent float buffers (built on CPU) follow dtype
        for name, buffer in list(module._buffers.items()):
            if buffer is not None and buffer.is_floating_point() and buffer.dtype != dtype:
                module._buffers[name] = buffer.to(dtype)
    return model.eval().requires_grad_(False)


def _load_diffusers_model(cls, folder: Path, weight_stem: str, what: str, dtype: torch.dtype,
                          device: Optional[Union[str, torch.device]]):
    config = _read_json(folder / "config.json", what)
    files = find_safetensors(folder, weight_stem, what)
    try:
        model = _build_empty(lambda: cls.from_config(config))
    except Exception as exc:
        raise TrajCrafterError(f"{what}: {folder / 'config.json'} does not describe a "
                               f"{cls.__name__} ({exc}).") from exc
    check_state_dict(model, safetensors_shapes(files), what, folder)
    model = load_module_weights(model, files, dtype)
    return model.to(device) if device is not None else model


# --------------------------------------------------------------------------------------------
# component loaders
# --------------------------------------------------------------------------------------------


def resolve_transformer_dir(path: PathLike) -> Path:
    """The folder holding the transformer's ``config.json``: ``path`` or ``path/crosstransformer``."""
    path = Path(path)
    for candidate in (path, path / TRANSFORMER_SUBFOLDER):
        if (candidate / "config.json").is_file():
            return candidate
    raise MissingFilesError(
        f"TrajectoryCrafter transformer not found in {path}: expected config.json and "
        f"diffusion_pytorch_model*.safetensors there or in {path / TRANSFORMER_SUBFOLDER}. "
        f"Download https://huggingface.co/{TRANSFORMER_REPO_ID} into {path} "
        f"(e.g. `huggingface-cli download {TRANSFORMER_REPO_ID} --local-dir {path}`).")


def load_transformer(path: PathLike, *, dtype: Union[str, torch.dtype] = "bf16",
                     device: Optional[Union[str, torch.device]] = None):
    """Load the Ref-DiT ``CrossTransformer3DModel`` from an official transformer folder."""
    from .models import CrossTransformer3DModel

    folder = resolve_transformer_dir(path)
    # checks config keys, files, state-dict keys and shapes first (TrajCrafterError naming them)
    model = CrossTransformer3DModel.from_pretrained(str(folder), torch_dtype=parse_dtype(dtype),
                                                    use_safetensors=True)
    model = model.eval().requires_grad_(False)
    return model.to(device) if device is not None else model


def load_vae(folder: PathLike, *, dtype: Union[str, torch.dtype] = "bf16",
             device: Optional[Union[str, torch.device]] = None):
    """Load the CogVideoX VAE (diffusers ``AutoencoderKLCogVideoX``) from ``base/vae``.

    Encoding is set to the official chunking (first ``4 + r`` frames, then groups of 4);
    decoding already uses the official groups (first ``2 + r`` latents, then groups of 2).
    """
    from diffusers import AutoencoderKLCogVideoX

    vae = _load_diffusers_model(AutoencoderKLCogVideoX, Path(folder), "diffusion_pytorch_model",
                                "CogVideoX VAE", parse_dtype(dtype), device)
    set_official_vae_chunking(vae)
    return vae


def set_official_vae_chunking(vae) -> None:
    """Make diffusers' CogVideoX VAE group frames like the official ``autoencoder_magvit``.

    diffusers encodes 8 frames at a time (``num_sample_frames_batch_size``); the official code
    encodes 4 (first group ``4 + T % 4``). Decoding groups of 2 latents are the same in both.
    """
    vae.num_sample_frames_batch_size = 4
    vae.num_latent_frames_batch_size = 2


def load_text_encoder(folder: PathLike, *, dtype: Union[str, torch.dtype] = "bf16",
                      device: Optional[Union[str, torch.device]] = None):
    """Load the T5 encoder (``transformers.T5EncoderModel``) from ``base/text_encoder``."""
    from transformers import T5Config, T5EncoderModel

    folder = Path(folder)
    what = "T5 text encoder"
    _read_json(folder / "config.json", what)
    files = find_safetensors(folder, "model", what)
    try:
        config = T5Config.from_pretrained(str(folder))
    except Exception as exc:
        raise TrajCrafterError(f"{what}: {folder / 'config.json'} is not a T5 config ({exc}).") from exc
    empty = _build_empty(lambda: T5EncoderModel(config))
    check_state_dict(empty, safetensors_shapes(files), what, folder)
    del empty
    # transformers handles shards, tied embeddings and fp32-kept layers exactly like the official
    # loader; safetensors only.
    model = T5EncoderModel.from_pretrained(str(folder), dtype=parse_dtype(dtype), use_safetensors=True)
    model = model.eval().requires_grad_(False)
    return model.to(device) if device is not None else model


def load_tokenizer(folder: PathLike):
    """Load the T5 tokenizer (``spiece.model`` or ``tokenizer.json``) from ``base/tokenizer``."""
    from transformers import AutoTokenizer, T5Tokenizer

    folder = Path(folder)
    if not ((folder / "spiece.model").is_file() or (folder / "tokenizer.json").is_file()):
        raise MissingFilesError(
            f"T5 tokenizer: spiece.model (or tokenizer.json) is missing in {folder}; put the "
            f"files of {BASE_REPO_ID}/tokenizer there ({BASE_LAYOUT['tokenizer']}).")
    try:
        return T5Tokenizer.from_pretrained(str(folder))
    except Exception:
        try:
            return AutoTokenizer.from_pretrained(str(folder))
        except Exception as exc:
            raise TrajCrafterError(f"T5 tokenizer in {folder} could not be loaded ({exc}).") from exc


def load_scheduler(folder: PathLike, name: str = "DDIM_Origin"):
    """Build the scheduler named as in the official demo from ``base/scheduler`` config.

    ``DDIM_Origin`` (default) → ``DDIMScheduler``, ``DDIM_Cog`` → ``CogVideoXDDIMScheduler``,
    ``Euler``, ``Euler A``, ``DPM++`` (``DPMSolverMultistepScheduler``), ``PNDM``. Keys a class
    does not know are ignored, as ``from_pretrained`` does in the official code.
    """
    return scheduler_from_config(name, read_scheduler_config(folder))


def read_scheduler_config(folder: PathLike) -> dict:
    """The raw ``scheduler_config.json`` of ``base/scheduler``."""
    return _read_json(Path(folder) / "scheduler_config.json", "scheduler")


def scheduler_from_config(name: str, config: dict):
    """Scheduler of the official ``name`` built from a raw scheduler config dict."""
    import diffusers

    if name not in SCHEDULERS:
        raise TrajCrafterError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {name!r}.")
    return getattr(diffusers, SCHEDULERS[name]).from_config(config)


# --------------------------------------------------------------------------------------------
# checks and downloads
# --------------------------------------------------------------------------------------------


def missing_base_files(base_dir: PathLike) -> List[str]:
    """Relative paths that ``base_dir`` lacks (empty when complete)."""
    base = Path(base_dir)
    missing = []
    for sub, required in (("vae", ["config.json"]), ("text_encoder", ["config.json"]),
                          ("scheduler", ["scheduler_config.json"])):
        missing += [f"{sub}/{name}" for name in required if not (base / sub / name).is_file()]
    for sub, stem in (("vae", "diffusion_pytorch_model"), ("text_encoder", "model")):
        try:
            find_safetensors(base / sub, stem, sub)
        except MissingFilesError:
            missing.append(f"{sub}/{stem}*.safetensors")
    if not ((base / "tokenizer" / "spiece.model").is_file() or (base / "tokenizer" / "tokenizer.json").is_file()):
        missing.append("tokenizer/spiece.model")
    return missing


def _base_instructions(base: Path) -> str:
    lines = [f"  {base / sub}/  ({files})" for sub, files in BASE_LAYOUT.items()]
    includes = " ".join(f'--include "{p}"' for p in BASE_ALLOW_PATTERNS)
    return ("Put the files of https://huggingface.co/" + BASE_REPO_ID + " here:\n" + "\n".join(lines)
            + "\n(its transformer/ folder is not needed), e.g.\n"
            + f"  huggingface-cli download {BASE_REPO_ID} {includes} --local-dir {base}")


def check_base_dir(base_dir: PathLike) -> Path:
    """Raise :class:`MissingFilesError` listing what ``base_dir`` lacks and where it goes."""
    base = Path(base_dir)
    missing = missing_base_files(base)
    if missing:
        raise MissingFilesError(
            f"CogVideoX-Fun base model incomplete in {base}: missing {', '.join(missing)}.\n"
            + _base_instructions(base))
    return base


def _transformer_complete(path: Path) -> bool:
    try:
        folder = resolve_transformer_dir(path)
        find_safetensors(folder, "diffusion_pytorch_model", "transformer")
        return True
    except MissingFilesError:
        return False


def download_base_model(base_dir: PathLike, repo_id: str = BASE_REPO_ID, timeout: float = 10.0,
                        progress=None, cancel=None) -> Path:
    """Download VAE, T5, tokenizer and scheduler (never the unused transformer) into ``base_dir``."""
    base = Path(base_dir)
    hub.download(repo_id, base, patterns=BASE_ALLOW_PATTERNS, progress=progress, cancel=cancel,
                 timeout=timeout, instructions=_base_instructions(base))
    return check_base_dir(base)


def transformer_allow_patterns(repo_files: Iterable[str]) -> List[str]:
    """Files fetching one copy of the transformer: the repo root or ``crosstransformer/``."""
    files = list(repo_files)
    root = [f for f in files if "/" not in f]
    has_root = "config.json" in root and any(f.endswith(".safetensors") for f in root)
    if has_root:
        return ["config.json"] + [f for f in root if f.endswith((".safetensors", ".safetensors.index.json"))]
    sub = TRANSFORMER_SUBFOLDER + "/"
    return [f for f in files if f.startswith(sub) and f.endswith(("config.json", ".safetensors", ".safetensors.index.json"))]


def _transformer_instructions(target: Path, repo_id: str) -> str:
    return (f"Put config.json and diffusion_pytorch_model*.safetensors of "
            f"https://huggingface.co/{repo_id} into {target} (or {target / TRANSFORMER_SUBFOLDER}).")


def download_transformer(transformer_dir: PathLike, repo_id: str = TRANSFORMER_REPO_ID,
                         timeout: float = 10.0, progress=None, cancel=None) -> Path:
    """Download the TrajectoryCrafter transformer (safetensors + config only) into ``transformer_dir``."""
    target = Path(transformer_dir)
    hub.download(repo_id, target, select=transformer_allow_patterns, progress=progress, cancel=cancel,
                 timeout=timeout, instructions=_transformer_instructions(target, repo_id))
    resolve_transformer_dir(target)
    return target


def check_transformer_dir(path: PathLike) -> Path:
    """Raise :class:`MissingFilesError` unless ``path`` holds a complete transformer; returns the
    folder holding its ``config.json``."""
    folder = resolve_transformer_dir(path)
    find_safetensors(folder, "diffusion_pytorch_model", "TrajectoryCrafter transformer")
    return folder


def ensure_models(base_dir: PathLike, transformer_dir: PathLike, *, download: bool = False,
                  base_repo_id: str = BASE_REPO_ID, transformer_repo_id: str = TRANSFORMER_REPO_ID,
                  progress=None, cancel=None) -> None:
    """Check both folders before any work, fetching what is missing first when ``download``.

    Raises :class:`MissingFilesError` naming the missing files and the folder they belong in.
    """
    base, transformer = Path(base_dir), Path(transformer_dir)
    if download and missing_base_files(base):
        download_base_model(base, base_repo_id, progress=progress, cancel=cancel)
    if download and not _transformer_complete(transformer):
        download_transformer(transformer, transformer_repo_id, progress=progress, cancel=cancel)
    check_base_dir(base)
    check_transformer_dir(transformer)
