"""Memory plan: the accelerator memory each stage of one TrajectoryCrafter generation needs, for
every memory option, computed without an accelerator.

The full-size models (:mod:`trajcrafter_core.models.official_configs`: the 6.1 B Ref-DiT
transformer, the CogVideoX-5b VAE, T5-XXL) are built on the meta device (shapes, no values)
and the real :class:`~trajcrafter_core.pipeline.TrajectoryCrafterPipeline` runs one official
generation on them (49×384×672, CFG, 10 reference frames, bf16) under
:class:`bench.profiling.LiveBytes`, which counts every tensor storage the operators create
until it is freed. What lives on the accelerator besides those tensors — the weights — follows
each option the way the pipeline places them (``pipeline.set_placement``):

- ``none``: all three models resident for the whole run;
- ``model``: a model's weights while it runs (T5, VAE, transformer in turn);
- ``block``: transformer and T5 streamed one block at a time (diffusers group offloading with
  CUDA streams: the current block + the prefetched next one + the layers outside the block
  lists), the VAE as ``model``;
- ``fp8``: transformer Linear weights stored in float8, each layer cast to bf16 for its own
  forward (the casts are real operators, so the transient copies are counted);
- VAE tiling / slicing: diffusers' own tiled/sliced encode and decode run as they are.

Stages (the pipeline's public methods): ``text`` (T5 on both prompts), ``vae_encode`` (the
masked render and the reference frames), ``denoise`` (two CFG steps, the second with the
prefetch order known), ``vae_decode``. A stage's figure is the highest live total during it,
the weights then resident included: what ``torch.cuda.max_memory_allocated`` would report.
Not counted: the CUDA context and kernel workspaces (cuBLAS, cuDNN, flash-attention scratch),
which ``max_memory_allocated`` does not count either, and allocator fragmentation — the "fits"
columns add :data:`trajcrafter_core.memory.FIT_OVERHEAD_GIB` and
:data:`~trajcrafter_core.memory.FIT_MARGIN` for those.

``--validate`` checks the method where it can be measured: the same stages run for real on
the CPU with a tiny and a mid-size model (profiler allocation events, kernels' scratch
included) against the same tracker on meta copies of those models.

Run from the repository root::

    python bench/memory_plan.py                 # the full-size plan (2-3 minutes on 2 cores)
    python bench/memory_plan.py --validate      # + measured vs predicted on CPU (1 minute more)
    python bench/memory_plan.py --presets       # only the presets' rows
    python bench/memory_plan.py --json plan.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.profiling import LiveBytes, stage_windows  # noqa: E402
from trajcrafter_core import memory  # noqa: E402
from trajcrafter_core.models.official_configs import (  # noqa: E402
    OFFICIAL_GEOMETRY,
    T5_ENCODER_CONFIG,
    TRANSFORMER_CONFIG,
    VAE_CONFIG,
)

GIB = 2**30
#: The pipeline methods that make up one generation, and the stage each belongs to.
STAGE_OF_METHOD = {
    "encode_text": "text",
    "inpaint_latents": "vae_encode",
    "encode_reference_frames": "vae_encode",
    "denoise": "denoise",
    "decode_latents": "vae_decode",
}
STAGES = ("text", "vae_encode", "denoise", "vae_decode")


# ----------------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class ModelConfigs:
    """The three architectures of one pipeline (config dicts as in the official folders)."""

    transformer: dict
    vae: dict
    text_encoder: dict


FULL = ModelConfigs(TRANSFORMER_CONFIG, VAE_CONFIG, T5_ENCODER_CONFIG)


def _tiny_configs() -> ModelConfigs:
    from trajcrafter_core.fixtures import TINY_T5_CONFIG, TINY_TEXT_DIM, TINY_VAE_CONFIG
    from trajcrafter_core.models.tiny import tiny_transformer_config

    return ModelConfigs(tiny_transformer_config(text_embed_dim=TINY_TEXT_DIM), dict(TINY_VAE_CONFIG),
                        dict(TINY_T5_CONFIG, vocab_size=300))


def _mid_configs() -> ModelConfigs:
    """The official layout with narrower widths (heads of the official size 64 and 128), so the
    same kernels run, on a CPU, in seconds."""
    from trajcrafter_core.fixtures import TINY_T5_CONFIG, TINY_VAE_CONFIG
    from trajcrafter_core.models.official_configs import official_transformer_config

    transformer = official_transformer_config(
        num_attention_heads=4, num_layers=4, text_embed_dim=128, time_embed_dim=64,
        cross_attn_num_heads=2, cross_attn_dim_head=128)
    vae = dict(TINY_VAE_CONFIG, block_out_channels=[32, 32, 64, 64], layers_per_block=2, norm_num_groups=8)
    t5 = dict(TINY_T5_CONFIG, d_model=128, d_ff=256, d_kv=32, num_heads=4, num_layers=4, vocab_size=300)
    return ModelConfigs(transformer, vae, t5)


# ------------------------------------------------------------------------------ memory options


@dataclass(frozen=True)
class Placement:
    """One memory option of the pipeline (the ``from_pretrained`` / ``ModelSpec`` options)."""

    offload: str = "none"
    fp8: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    blocks_per_group: int = 1

    @classmethod
    def of_preset(cls, name: str) -> "Placement":
        return cls(**memory.preset_options(name))

    def label(self) -> str:
        parts = [f"offload={self.offload}"]
        if self.offload == "block" and self.blocks_per_group != 1:
            parts.append(f"{self.blocks_per_group} blocks/group")
        parts += [name for name, on in (("fp8", self.fp8), ("vae tiling", self.vae_tiling),
                                        ("vae slicing", self.vae_slicing)) if on]
        return ", ".join(parts)


#: The table's rows: each offload mode alone, then with fp8 weights and with VAE tiling (VAE
#: slicing splits the VAE's batch, which is 1 here: one row shows it changes nothing).
TABLE_OPTIONS = [
    Placement("none"),
    Placement("none", fp8=True),
    Placement("none", vae_tiling=True),
    Placement("model"),
    Placement("model", fp8=True),
    Placement("model", vae_tiling=True),
    Placement("model", vae_slicing=True),
    Placement("model", fp8=True, vae_tiling=True),
    Placement("block"),
    Placement("block", vae_tiling=True),
]


# ---------------------------------------------------------------------------- pipeline stand-ins


class _StandInTokenizer:
    """Ids of the right shape (memory does not depend on which tokens)."""

    def __call__(self, texts, max_length: int = 226, **_):
        from types import SimpleNamespace

        return SimpleNamespace(input_ids=torch.zeros(len(texts), max_length, dtype=torch.long))


class _StandInScheduler:
    """DDIM's v-prediction step as arithmetic on latent-sized tensors, without reading
    timestep values (meta tensors have none); the real scheduler allocates the same few
    latent-sized temporaries (3.4 MB each at 49×384×672)."""

    init_noise_sigma = 1.0
    config: dict = {}

    def set_timesteps(self, num_inference_steps: int, device=None) -> None:
        self.timesteps = torch.linspace(999, 0, num_inference_steps).long().to(device)

    def scale_model_input(self, sample, timestep):
        return sample

    def step(self, model_output, timestep, sample, return_dict: bool = True):
        original = 0.9 * sample - 0.4 * model_output
        noise = 0.9 * model_output + 0.4 * sample
        return (0.95 * original + 0.3 * noise,)


def build_models(configs: ModelConfigs, device: str = "meta", dtype: torch.dtype = torch.bfloat16,
                 seed: Optional[int] = None) -> Dict[str, torch.nn.Module]:
    """``{"transformer", "vae", "text_encoder"}`` built from ``configs`` on ``device`` in
    ``dtype``; ``seed`` redraws the weights (:func:`~trajcrafter_core.models.tiny.randomise_weights`)
    for models that run for real."""
    from diffusers import AutoencoderKLCogVideoX
    from transformers import T5Config, T5EncoderModel

    from trajcrafter_core.models import CrossTransformer3DModel
    from trajcrafter_core.models.tiny import randomise_weights

    with torch.device(device):
        models = {
            "transformer": CrossTransformer3DModel.from_config(configs.transformer),
            "vae": AutoencoderKLCogVideoX.from_config(configs.vae),
            "text_encoder": T5EncoderModel(T5Config(**configs.text_encoder)),
        }
    for name, model in models.items():
        if seed is not None:
            randomise_weights(model, seed)
            if name == "vae":  # near-identity scales keep a deep random decoder's output finite
                with torch.no_grad():
                    for p_name, p in model.named_parameters():
                        if p.ndim >= 2:
                            p.mul_(0.5)
        models[name] = torch.nn.Module.to(model, dtype).eval().requires_grad_(False)
    return models


def make_pipeline(models: Dict[str, torch.nn.Module], placement: Placement, device: str,
                  scheduler=None, tokenizer=None):
    """A :class:`TrajectoryCrafterPipeline` over ``models`` with ``placement``'s fp8 / VAE
    options applied the pipeline's way. On the meta device its placement stays ``none`` (the
    plan models where weights live, see :func:`_residency`); elsewhere ``set_placement``
    applies the offload mode."""
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    pipe = TrajectoryCrafterPipeline(
        transformer=models["transformer"], vae=models["vae"], text_encoder=models["text_encoder"],
        tokenizer=tokenizer or _StandInTokenizer(), scheduler=scheduler or _StandInScheduler(),
        scheduler_config={"stand_in": True},
    )
    pipe.vae.disable_tiling()  # the models may come from a previous option's pipeline
    pipe.vae.disable_slicing()
    pipe.apply_memory_options(fp8=placement.fp8, vae_tiling=placement.vae_tiling, vae_slicing=placement.vae_slicing)
    if device == "meta":
        pipe.device = torch.device("meta")
    else:
        pipe.set_placement(device=device, offload=placement.offload, blocks_per_group=placement.blocks_per_group)
    return pipe


def video_inputs(frames: int, height: int, width: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``source``, ``render`` ``[T, H, W, 3]`` and a hole mask ``[T, H, W]`` (left third holes) on the CPU."""
    g = torch.Generator().manual_seed(0)
    source = torch.rand(frames, height, width, 3, generator=g)
    render = torch.rand(frames, height, width, 3, generator=g)
    hole = torch.zeros(frames, height, width)
    hole[:, :, : width // 3] = 1.0
    return source, render, hole


# -------------------------------------------------------------------------------- residency


def _weights(module: torch.nn.Module) -> List[torch.Tensor]:
    return list(module.parameters()) + list(module.buffers())


def _block_groups(module: torch.nn.Module, blocks_per_group: int) -> Tuple[List[List[torch.nn.Module]], List[torch.Tensor]]:
    """diffusers' block-level grouping: each ``ModuleList``/``Sequential`` child is cut into
    groups of ``blocks_per_group`` blocks; everything else (other children, the module's own
    parameters) is the always-onloaded rest. Returns ``(groups, rest_tensors)``."""
    groups, grouped = [], set()
    for child in module.children():
        if isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)):
            blocks = list(child)
            for i in range(0, len(blocks), blocks_per_group):
                groups.append(blocks[i: i + blocks_per_group])
            grouped.update(id(t) for b in blocks for t in _weights(b))
    rest = [t for t in _weights(module) if id(t) not in grouped]
    return groups, rest


def _stream_blocks(module: torch.nn.Module, live: LiveBytes, blocks_per_group: int, prefetch: bool) -> None:
    """Hooks that hold a group's weights while it runs, as diffusers' group offloading does:
    the rest for the whole forward; each group from its first block's call to its last
    block's return; with ``prefetch`` (CUDA streams) the next group too, in the execution
    order recorded on the first forward (before that, the next group in module order: the
    steady state, never below what a first call needs)."""
    groups, rest = _block_groups(module, blocks_per_group)
    order: List[int] = []
    recorded = {"done": False}

    def following(index: int) -> Optional[int]:
        if recorded["done"]:
            position = order.index(index)
            return order[position + 1] if position + 1 < len(order) else None
        return index + 1 if index + 1 < len(groups) else None

    def onload(index: int) -> None:
        live.hold(t for m in groups[index] for t in _weights(m))

    def offload(index: int) -> None:
        live.release(t for m in groups[index] for t in _weights(m))

    def root_pre(_module, _args):
        live.hold(rest)
        if prefetch and groups:
            onload(order[0] if recorded["done"] else 0)

    def root_post(_module, _args, _output):
        live.release(rest)
        recorded["done"] = True

    module.register_forward_pre_hook(root_pre)
    module.register_forward_hook(root_post)
    for index, group in enumerate(groups):
        def pre(_module, _args, index=index):
            onload(index)
            nxt = following(index) if prefetch else None
            if nxt is not None:
                onload(nxt)

        def post(_module, _args, _output, index=index):
            offload(index)
            if not recorded["done"]:
                order.append(index)

        group[0].register_forward_pre_hook(pre)
        group[-1].register_forward_hook(post)


def _residency(pipe, placement: Placement, live: LiveBytes, prefetch: bool = True) -> None:
    """Make ``live`` count the weights on the accelerator as ``placement`` puts them there
    (see ``TrajectoryCrafterPipeline.set_placement`` and ``_running``)."""
    if placement.offload == "none":
        for module in pipe.components().values():
            live.hold(_weights(module))
        return

    @contextlib.contextmanager
    def running(module):
        moved = placement.offload == "model" or module is pipe.vae
        if moved:
            live.hold(_weights(module))
        try:
            yield
        finally:
            if moved:
                live.release(_weights(module))

    pipe._running = running
    if placement.offload == "block":
        for module in (pipe.transformer, pipe.text_encoder.encoder):
            _stream_blocks(module, live, placement.blocks_per_group, prefetch and placement.blocks_per_group == 1)


# ---------------------------------------------------------------------------------- stages


def instrument(pipe, measure: Callable[[str, Callable[[], object]], object]) -> None:
    """Route each stage method of ``pipe`` through ``measure(stage, call)``."""
    for method, stage in STAGE_OF_METHOD.items():
        original = getattr(pipe, method)

        def wrapped(*args, _original=original, _stage=stage, **kwargs):
            return measure(_stage, lambda: _original(*args, **kwargs))

        setattr(pipe, method, wrapped)


def generate(pipe, frames: int, height: int, width: int, *, steps: int, reference_frames: int,
             cfg: bool = True, callback=None) -> torch.Tensor:
    """One generation through ``pipe.__call__`` (the stages in the pipeline's own order)."""
    source, render, hole = video_inputs(frames, height, width)
    return pipe(source, render, hole, prompt="a plan", num_inference_steps=steps,
                guidance_scale=6.0 if cfg else 1.0, num_reference_frames=reference_frames,
                callback=callback).frames


class _TrackerStages:
    """``measure`` for :func:`instrument`: each stage's highest live total (``peak``) and its
    rise above what was live when it started (``rise``), from a :class:`LiveBytes`."""

    def __init__(self, live: LiveBytes):
        self.live = live
        self.stages: Dict[str, Dict[str, int]] = {}

    def __call__(self, stage: str, call: Callable[[], object]):
        self.live.reset_peak()
        start = self.live.live
        result = call()
        record = self.stages.setdefault(stage, {"peak": 0, "rise": 0})
        record["peak"] = max(record["peak"], self.live.peak)
        record["rise"] = max(record["rise"], self.live.peak - start)
        return result


def naive_reference_attention_everywhere(transformer) -> None:
    """Run the reference cross-attention as the official maths (materialised attention matrix)."""
    from trajcrafter_core.models.reference_attention import naive_reference_attention

    for layer in transformer.perceiver_cross_attention:
        layer.forward = functools.partial(naive_reference_attention, layer)


def plan(placement: Placement, *, configs: ModelConfigs = FULL, geometry: Optional[dict] = None,
         attention: str = "cuda", steps: int = 2, naive_perceiver: bool = False,
         models: Optional[Dict[str, torch.nn.Module]] = None,
         count_host_copies: bool = True) -> Dict[str, Dict[str, int]]:
    """Predicted bytes per stage (``{"text": {"peak", "rise"}, ...}``) of one generation with
    ``placement``, on meta models of ``configs`` (:data:`FULL` by default) at ``geometry``
    (:data:`OFFICIAL_GEOMETRY` by default). ``attention`` names the fused SDPA kernel the run
    would use (:data:`bench.profiling.FUSED_ATTENTION_KERNELS`); ``count_host_copies=False``
    leaves out the inputs' copies from the host (for comparing with a CPU run, which has none)."""
    geometry = dict(OFFICIAL_GEOMETRY, **(geometry or {}))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[geometry["dtype"]]
    models = models or build_models(configs, "meta", dtype)
    pipe = make_pipeline(models, placement, "meta")
    if naive_perceiver:
        naive_reference_attention_everywhere(pipe.transformer)
    with torch.no_grad(), LiveBytes("meta", attention=attention, count_host_copies=count_host_copies) as live:
        _residency(pipe, placement, live)
        stages = _TrackerStages(live)
        instrument(pipe, stages)
        generate(pipe, geometry["frames"], geometry["height"], geometry["width"], steps=steps,
                 reference_frames=geometry["reference_frames"], cfg=geometry["cfg_batch"] == 2)
    return stages.stages


#: Model sizes a benchmark runs at: the official one, and a tiny one for CPU smoke runs.
SCALES = {
    "full": (lambda: FULL, dict(OFFICIAL_GEOMETRY)),
    "tiny": (_tiny_configs, dict(OFFICIAL_GEOMETRY, frames=9, height=32, width=48, reference_frames=5, dtype="fp32")),
}


def predict(placements: List[dict], scale: str = "full", attention: str = "cuda", quantity: str = "peak",
            count_host_copies: bool = True) -> List[Dict[str, float]]:
    """GiB per stage of each placement (``Placement`` fields as dicts) at a :data:`SCALES`
    entry, for a benchmark to print next to what it measures: ``quantity="peak"`` (what
    ``max_memory_allocated`` reports) or ``"rise"`` (above the stage's start, what the CPU
    profiler measures)."""
    make_configs, geometry = SCALES[scale]
    configs = make_configs()
    rows = []
    for fields_ in placements:
        stages = plan(Placement(**fields_), configs=configs, geometry=geometry, attention=attention,
                      count_host_copies=count_host_copies)
        rows.append({stage: record[quantity] / GIB for stage, record in stages.items()})
    return rows


def weight_gib(configs: ModelConfigs = FULL, dtype: torch.dtype = torch.bfloat16) -> Dict[str, float]:
    models = build_models(configs, "meta", dtype)
    return {name: sum(t.numel() * t.element_size() for t in _weights(m)) / GIB for name, m in models.items()}


# ------------------------------------------------------------------------------- validation


def measure_on_cpu(configs: ModelConfigs, geometry: dict, placement: Placement = Placement()) -> Dict[str, Dict[str, int]]:
    """The stages run for real on the CPU (random weights, the real DDIM scheduler): each
    stage's rise in live CPU allocations above the live total when it starts, from the
    profiler's allocation events. Models are built inside the profiled run, so frees of their
    weights (fp8 recasting) are seen too."""
    from torch.profiler import record_function

    from trajcrafter_core import checkpoints
    from trajcrafter_core.fixtures import COGVIDEOX_FUN_SCHEDULER_CONFIG

    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[geometry["dtype"]]

    def run():
        models = build_models(configs, "cpu", dtype, seed=0)
        scheduler = checkpoints.scheduler_from_config("DDIM_Origin", COGVIDEOX_FUN_SCHEDULER_CONFIG)
        pipe = make_pipeline(models, placement, "cpu", scheduler=scheduler)

        def measure(stage, call):
            with record_function(f"stage:{stage}"):
                return call()

        instrument(pipe, measure)
        with torch.no_grad():
            generate(pipe, geometry["frames"], geometry["height"], geometry["width"], steps=2,
                     reference_frames=geometry["reference_frames"], cfg=True)

    windows = stage_windows(run)
    return {stage: {"rise": max(rises)} for stage, rises in windows.items()}


#: The validation cases: tiny and mid-size models on small videos, in bf16 (the dtype the GPU
#: runs) and fp32. fp32 Conv3d on a CPU lowers to im2col (``slow_conv3d``), whose column
#: buffers are kernel scratch the tracker does not see: there the VAE stages measure higher.
VALIDATION_CASES = {
    "tiny fp32": (_tiny_configs, dict(frames=9, height=32, width=48, reference_frames=5, dtype="fp32")),
    "tiny bf16": (_tiny_configs, dict(frames=9, height=32, width=48, reference_frames=5, dtype="bf16")),
    "mid bf16": (_mid_configs, dict(frames=17, height=96, width=160, reference_frames=10, dtype="bf16")),
    "mid bf16 fp8 weights": (_mid_configs, dict(frames=17, height=96, width=160, reference_frames=10,
                                                dtype="bf16", fp8=True)),
}


def validate(cases: Iterable[str] = tuple(VALIDATION_CASES), threads: int = 1) -> Dict[str, Dict[str, dict]]:
    """Measured (CPU) against predicted (meta + :class:`LiveBytes` with the CPU attention
    kernel) rise per stage: ``{case: {stage: {"measured", "predicted", "error"}}}``."""
    results = {}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # the CPU kernels' scratch grows with threads
    try:
        for case in cases:
            make_configs, spec = VALIDATION_CASES[case]
            spec = dict(spec)
            placement = Placement(fp8=spec.pop("fp8", False))
            configs = make_configs()
            measured = measure_on_cpu(configs, spec, placement)
            predicted = plan(placement, configs=configs, geometry=dict(spec, cfg_batch=2), attention="cpu",
                             count_host_copies=False)
            results[case] = {
                stage: {"measured": measured[stage]["rise"], "predicted": predicted[stage]["rise"],
                        "error": predicted[stage]["rise"] / measured[stage]["rise"] - 1.0}
                for stage in STAGES
            }
    finally:
        torch.set_num_threads(previous)
    return results


# ------------------------------------------------------------------------------------- main


def full_plan(options: Iterable[Placement] = TABLE_OPTIONS, naive_row: bool = True) -> List[dict]:
    """One row per option: predicted GiB per stage and overall, and whether it fits each card."""
    models = build_models(FULL, "meta", torch.bfloat16)
    rows = []
    runs = [(option, False) for option in options] + ([(Placement("none"), True)] if naive_row else [])
    for option, naive in runs:
        if option.fp8 or naive:  # fp8 / the naive maths change the transformer: a fresh copy
            models = build_models(FULL, "meta", torch.bfloat16)
        stages = plan(option, models=models, naive_perceiver=naive)
        peak = max(s["peak"] for s in stages.values())
        row = dict(option=option.label() + (" [official maths: naive Perceiver]" if naive else ""),
                   placement=asdict(option), naive_perceiver=naive,
                   stages_gib={k: round(v["peak"] / GIB, 2) for k, v in stages.items()},
                   peak_gib=round(peak / GIB, 2))
        row["fits"] = {card: memory.fits(peak / GIB, budget) for card, budget in memory.CARD_BUDGETS_GIB.items()}
        rows.append(row)
        if option.fp8 or naive:
            models = build_models(FULL, "meta", torch.bfloat16)
    return rows


def print_plan(rows: List[dict]) -> None:
    cards = list(memory.CARD_BUDGETS_GIB)
    head = f"{'option':62s} " + " ".join(f"{s:>10s}" for s in STAGES) + f" {'peak':>7s} " + " ".join(
        f"{c:>6s}" for c in cards)
    print(head)
    print("-" * len(head))
    for row in rows:
        print(f"{row['option']:62s} " + " ".join(f"{row['stages_gib'][s]:10.2f}" for s in STAGES)
              + f" {row['peak_gib']:7.2f} " + " ".join(f"{'fits' if row['fits'][c] else '-':>6s}" for c in cards))
    print(f"(GiB, predicted max_memory_allocated per stage; 'fits' = peak x {memory.FIT_MARGIN} + "
          f"{memory.FIT_OVERHEAD_GIB} GiB <= the card)")


def print_validation(results: Dict[str, Dict[str, dict]]) -> None:
    print(f"{'case':22s} {'stage':11s} {'measured MiB':>13s} {'predicted MiB':>14s} {'error':>8s}")
    for case, stages in results.items():
        for stage, r in stages.items():
            print(f"{case:22s} {stage:11s} {r['measured'] / 2**20:13.2f} {r['predicted'] / 2**20:14.2f} "
                  f"{100 * r['error']:7.1f}%")
    for dtype in ("bf16", "fp32"):
        errors = [r["error"] for case, stages in results.items() if dtype in case for r in stages.values()]
        if errors:
            print(f"{dtype}: error from {100 * min(errors):+.1f}% to {100 * max(errors):+.1f}%"
                  + (" (fp32 VAE: the CPU's im2col Conv3d scratch, unseen by the tracker)" if dtype == "fp32" else ""))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validate", action="store_true", help="also measure tiny/mid models on the CPU")
    parser.add_argument("--validate-only", action="store_true", help="only the CPU validation")
    parser.add_argument("--presets", action="store_true", help="only the memory presets' rows")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    report: dict = {"geometry": OFFICIAL_GEOMETRY}
    started = time.perf_counter()
    if not args.validate_only:
        report["weights_gib"] = {k: round(v, 2) for k, v in weight_gib().items()}
        print("weights (bf16):", report["weights_gib"])
        options = [Placement.of_preset(name) for name in memory.PRESET_NAMES] if args.presets else TABLE_OPTIONS
        report["plan"] = full_plan(options, naive_row=not args.presets)
        if args.presets:
            for name, row in zip(memory.PRESET_NAMES, report["plan"]):
                row["option"] = f"preset {name!r}: {row['option']}"
        print_plan(report["plan"])
    if args.validate or args.validate_only:
        report["validation"] = validate()
        print_validation(report["validation"])
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
