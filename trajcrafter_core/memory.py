"""Memory presets: named choices of the pipeline's memory options, one per card size (torch-free).

A preset sets ``offload`` (:data:`~trajcrafter_core.specs.OFFLOAD_MODES`), ``fp8`` (transformer
weights stored in float8), ``vae_tiling`` / ``vae_slicing`` and ``blocks_per_group`` (block
offload) together. The nodes (``memory_preset``), the CLI (``--memory``),
:class:`~trajcrafter_core.specs.ModelSpec` (``memory``) and
``TrajectoryCrafterPipeline.from_pretrained(memory=...)`` all resolve a name here.

Each preset's budget is checked by ``bench/memory_plan.py``, which predicts the accelerator
peak of a full-size official generation (49×384×672, CFG) for any option without a GPU
(``tests/test_memory_plan.py`` re-checks the presets). A card fits when
``predicted peak × FIT_MARGIN + FIT_OVERHEAD_GIB <= card``: the overhead is the CUDA context and
kernel workspaces that ``torch.cuda.max_memory_allocated`` (what the plan predicts) leaves out,
the margin is for allocator fragmentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from .errors import TrajCrafterError

__all__ = [
    "MemoryPreset",
    "MEMORY_PRESETS",
    "PRESET_NAMES",
    "CARD_BUDGETS_GIB",
    "FIT_MARGIN",
    "FIT_OVERHEAD_GIB",
    "DEFAULT_MEMORY_OPTIONS",
    "canonical_memory_preset",
    "preset_options",
    "resolve_memory_options",
    "fits",
]

#: CUDA context + cuBLAS/cuDNN/attention workspaces, outside ``max_memory_allocated``.
FIT_OVERHEAD_GIB = 1.0
#: Allocator fragmentation (reserved above allocated) at the peak.
FIT_MARGIN = 1.10
#: Card sizes the presets are made for (a "24 GB" card has 24 GiB).
CARD_BUDGETS_GIB = {"24 GB": 24.0, "16 GB": 16.0}
#: The pipeline's memory options when nothing is chosen (everything on the GPU, exact bf16).
DEFAULT_MEMORY_OPTIONS = {"offload": "none", "fp8": False, "vae_tiling": False, "vae_slicing": False,
                          "blocks_per_group": 1}


@dataclass(frozen=True)
class MemoryPreset:
    """A named set of memory options and the card it is made for (``budget_gib``, None = no limit)."""

    name: str
    budget_gib: Optional[float]
    offload: str
    fp8: bool
    vae_tiling: bool
    vae_slicing: bool
    blocks_per_group: int
    summary: str

    def options(self) -> Dict[str, object]:
        """The preset as pipeline options (keys of :data:`DEFAULT_MEMORY_OPTIONS`)."""
        return {key: getattr(self, key) for key in DEFAULT_MEMORY_OPTIONS}


MEMORY_PRESETS: Dict[str, MemoryPreset] = {
    preset.name: preset
    for preset in (
        MemoryPreset(
            "fastest", None, offload="none", fp8=False, vae_tiling=False, vae_slicing=False, blocks_per_group=1,
            summary="all models stay on the GPU, exact bf16; for cards of 40 GB and more"),
        MemoryPreset(
            "24 GB", CARD_BUDGETS_GIB["24 GB"], offload="model", fp8=False, vae_tiling=False, vae_slicing=False,
            blocks_per_group=1,
            summary="one model on the GPU at a time: T5, then the VAE, then the transformer; exact bf16"),
        MemoryPreset(
            "16 GB", CARD_BUDGETS_GIB["16 GB"], offload="block", fp8=False, vae_tiling=True, vae_slicing=False,
            blocks_per_group=1,
            summary="transformer and T5 streamed block by block, the next block prefetched on a CUDA "
                    "stream; VAE tiled, faint seams possible; exact bf16 weights"),
    )
}
PRESET_NAMES = tuple(MEMORY_PRESETS)


def _key(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def canonical_memory_preset(name) -> str:
    """A preset name in any spelling (``"24gb"``, ``"24_GB"``, ``"24 GB"``) as one of :data:`PRESET_NAMES`."""
    for preset in PRESET_NAMES:
        if _key(preset) == _key(name):
            return preset
    raise TrajCrafterError(
        f"unknown memory preset {name!r}; choose one of {', '.join(repr(p) for p in PRESET_NAMES)} "
        f"({'; '.join(f'{p}: {MEMORY_PRESETS[p].summary}' for p in PRESET_NAMES)}).")


def preset_options(name) -> Dict[str, object]:
    """The pipeline options of the preset ``name`` (see :meth:`MemoryPreset.options`)."""
    return MEMORY_PRESETS[canonical_memory_preset(name)].options()


def resolve_memory_options(memory: Optional[str] = None, **options) -> Dict[str, object]:
    """The memory options to use: ``options`` (missing keys take :data:`DEFAULT_MEMORY_OPTIONS`),
    or with ``memory`` the preset's. An option given with a value other than its default *and*
    other than the preset's is a contradiction and raises, naming both."""
    unknown = set(options) - set(DEFAULT_MEMORY_OPTIONS)
    if unknown:
        raise TrajCrafterError(f"unknown memory option(s) {sorted(unknown)}; known: {list(DEFAULT_MEMORY_OPTIONS)}.")
    chosen = {**DEFAULT_MEMORY_OPTIONS, **options}
    if memory is None or memory == "":
        return chosen
    name = canonical_memory_preset(memory)
    preset = MEMORY_PRESETS[name].options()
    for key, value in chosen.items():
        if value != DEFAULT_MEMORY_OPTIONS[key] and value != preset[key]:
            raise TrajCrafterError(
                f"memory preset {name!r} sets {key}={preset[key]!r} but {key}={value!r} was also given; "
                f"give either the preset or the individual options.")
    return preset


def fits(peak_gib: float, budget_gib: Optional[float]) -> bool:
    """Whether a predicted allocated peak fits a card of ``budget_gib`` (None = any card)."""
    return budget_gib is None or peak_gib * FIT_MARGIN + FIT_OVERHEAD_GIB <= budget_gib
