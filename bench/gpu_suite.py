"""Speed and memory of the full-size models on one GPU, in one run (``bench/gpu.sh``).

Full-size random-init models (speed and memory do not depend on the weights' values), the
official geometry (49×384×672, CFG, 10 reference frames, bf16). Sections, most important first;
each is skipped, and says so, when the time budget (``--budget``) has no room left for it:

1. ``memory_options``: one generation through :class:`TrajectoryCrafterPipeline` per memory
   option (the presets, fp8 with model offload, block offload alone): seconds and peak memory
   (``torch.cuda.max_memory_allocated`` per stage) next to ``bench/memory_plan.py``'s
   prediction (computed at the same time in a CPU process), seconds per denoising step.
2. ``reference_attention``: one CFG transformer step with our fused reference cross-attention
   against the official maths (naive Perceiver, the attention matrix materialised).
3. ``attention_backends``: the same step with each usable attention kernel.
4. ``renderer``: the point renderer on a 49×576×1024 clip (both modes).
5. ``depthcrafter``: DepthCrafter on 49×576×1024 (random-init full-size UNet, 5 steps, fp16).
6. ``torch_compile``: the transformer step eager and with its blocks compiled.

``--tiny`` runs everything at toy size on the CPU (the smoke test of this script; CPU memory
is the profiler's live-allocation peak and all weights stay in RAM whatever the option).
Writes one JSON (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import math
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import memory_plan  # noqa: E402
from bench.memory_plan import GIB, STAGES, Placement, instrument  # noqa: E402
from bench.profiling import stage_windows  # noqa: E402
from trajcrafter_core import memory  # noqa: E402

#: Options measured in ``memory_options``: the presets, then two single options of the plan.
MEASURED_OPTIONS = [("preset " + name, Placement.of_preset(name)) for name in memory.PRESET_NAMES] + [
    ("model offload + fp8", Placement("model", fp8=True)),
    ("block offload", Placement("block")),
]
#: Seconds each section needs on an H100 (what the budget check reserves before starting one).
SECTION_COST_S = {"memory_option": 45, "reference_attention": 25, "attention_backends": 30, "renderer": 20,
                  "depthcrafter": 60, "torch_compile": 120}


# ---------------------------------------------------------------------------------- helpers


class Budget:
    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def allows(self, section: str, scale: float) -> bool:
        return self.left() > SECTION_COST_S[section] * scale


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: torch.device) -> Optional[float]:
    return torch.cuda.max_memory_allocated() / GIB if device.type == "cuda" else None


def free(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


@torch.no_grad()
def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights drawn on their own device (fast for billions of parameters): matrices
    ``N(0, 1/fan_in)``, 1-D scales ``1 + N(0, 0.2²)``, biases ``N(0, 0.2²)``."""
    for index, (name, p) in enumerate(module.named_parameters()):
        g = torch.Generator(device=p.device).manual_seed(seed + index)
        if p.ndim >= 2:
            p.normal_(0, 1 / math.sqrt(p[0].numel()), generator=g)
        elif name.endswith("weight"):
            p.normal_(1, 0.2, generator=g)
        else:
            p.normal_(0, 0.2, generator=g)
    return module


def random_models(configs, device: torch.device, dtype: torch.dtype) -> Dict[str, torch.nn.Module]:
    """The pipeline's three models, built without allocating (meta), then random on ``device``."""
    models = memory_plan.build_models(configs, "meta", dtype)
    for name, model in models.items():
        model.to_empty(device=device)
        randomise(model, seed=len(name))
        if name == "vae":  # a deep random decoder stays finite with halved kernels
            with torch.no_grad():
                for p in model.parameters():
                    if p.ndim >= 2:
                        p.mul_(0.5)
    return models


def real_scheduler():
    from trajcrafter_core import checkpoints
    from trajcrafter_core.fixtures import COGVIDEOX_FUN_SCHEDULER_CONFIG

    return checkpoints.scheduler_from_config("DDIM_Origin", COGVIDEOX_FUN_SCHEDULER_CONFIG)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


# ---------------------------------------------------------------------------------- sections


def measure_option(placement: Placement, configs, geometry: dict, device: torch.device, dtype: torch.dtype,
                   steps: int) -> dict:
    """One generation with ``placement``: per stage seconds and peak GiB, seconds per step.

    On the CPU the memory is each stage's rise in live allocations (profiler windows), with the
    models built inside the profiled run so that freed weights (fp8 recasting) are seen."""
    from torch.profiler import record_function

    stages: Dict[str, dict] = {}
    step_times: List[float] = []
    last = [0.0]
    built = {}

    def measure(stage, call):
        reset_peak(device)
        t0 = time.perf_counter()
        with record_function(f"stage:{stage}"):
            result = call()
        sync(device)
        record = stages.setdefault(stage, {"seconds": 0.0, "peak_gib": 0.0})
        record["seconds"] += time.perf_counter() - t0
        if device.type == "cuda":
            record["peak_gib"] = max(record["peak_gib"], peak_gib(device))
        if stage == "vae_encode":  # the steps are timed from the end of the conditions' encoding
            last[0] = time.perf_counter()
        return result

    def on_step(done, total, latents):
        sync(device)
        now = time.perf_counter()
        step_times.append(now - last[0])
        last[0] = now

    def run():
        t0 = time.perf_counter()
        models = random_models(configs, device, dtype)
        pipe = memory_plan.make_pipeline(models, placement, str(device), scheduler=real_scheduler())
        del models
        built["seconds"] = time.perf_counter() - t0
        instrument(pipe, measure)
        with torch.no_grad():
            memory_plan.generate(pipe, geometry["frames"], geometry["height"], geometry["width"], steps=steps,
                                 reference_frames=geometry["reference_frames"], callback=on_step)

    note = None
    try:
        if device.type == "cpu":
            for stage, rises in stage_windows(run).items():
                stages[stage]["peak_gib"] = max(rises) / GIB
        else:
            run()
    except Exception as exc:  # keep the other options' figures (random weights may overflow)
        note = error_text(exc)
    timed = step_times[1:] or step_times
    result = dict(option=placement.label(), placement=asdict(placement), build_seconds=round(built.get("seconds", 0), 1),
                  stages={k: {"seconds": round(v["seconds"], 3), "peak_gib": round(v.get("peak_gib", 0.0), 6)}
                          for k, v in stages.items()},
                  seconds_per_step=round(statistics.median(timed), 3) if timed else None,
                  steps_timed=len(timed))
    if note:
        result["error"] = note
    free(device)
    return result


def step_inputs(config: dict, geometry: dict, device, dtype) -> dict:
    """The transformer's inputs for one CFG step at ``geometry`` (reference latents of the
    official 10 frames: 3 latent frames)."""
    from trajcrafter_core.models import rotary_embedding

    g = torch.Generator().manual_seed(0)
    frames = (geometry["frames"] - 1) // 4 + 1
    ref_frames = (geometry["reference_frames"] - 1) // 4 + 1
    h, w = geometry["height"] // 8, geometry["width"] // 8
    batch = geometry["cfg_batch"]

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    latent = config["out_channels"]
    return dict(
        hidden_states=randn(batch, frames, latent, h, w),
        encoder_hidden_states=randn(batch, geometry["text_tokens"], config["text_embed_dim"]),
        timestep=torch.full((batch,), 500, device=device, dtype=torch.long),
        inpaint_latents=randn(batch, frames, config["in_channels"] - latent, h, w),
        cross_latents=randn(batch, ref_frames, config["cross_attn_in_channels"], h, w),
        image_rotary_emb=tuple(t.to(device=device, dtype=dtype) for t in
                               rotary_embedding(geometry["height"], geometry["width"], frames,
                                                config["attention_head_dim"])),
    )


def timed_step(model, inputs, device, repeats: int) -> dict:
    """Peak GiB of one forward and the median seconds of ``repeats`` more (after a warm-up)."""
    with torch.no_grad():
        reset_peak(device)
        if device.type == "cpu":
            from bench.profiling import cpu_peak

            output, peak = cpu_peak(lambda: model(**inputs, return_dict=False)[0])
            peak = peak / GIB
        else:
            output = model(**inputs, return_dict=False)[0]
            peak = peak_gib(device)
        times = []
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            model(**inputs, return_dict=False)
            sync(device)
            times.append(time.perf_counter() - t0)
    return dict(seconds_per_step=round(statistics.median(times), 4), peak_gib=round(peak, 3)), output


def transformer_on(configs, device, dtype):
    from trajcrafter_core.models import CrossTransformer3DModel

    with torch.device("meta"):
        model = CrossTransformer3DModel.from_config(configs.transformer)
    model = torch.nn.Module.to(model.to_empty(device=device), dtype)
    return randomise(model).eval().requires_grad_(False)


def section_reference_attention(configs, geometry, device, dtype, repeats) -> dict:
    model = transformer_on(configs, device, dtype)
    inputs = step_inputs(configs.transformer, geometry, device, dtype)
    ours, out_ours = timed_step(model, inputs, device, repeats)
    memory_plan.naive_reference_attention_everywhere(model)
    try:
        naive, out_naive = timed_step(model, inputs, device, repeats)
        diff = float((out_ours.float() - out_naive.float()).abs().max())
        scale = float(out_naive.float().abs().max())
    except torch.OutOfMemoryError as exc:
        naive, diff, scale = dict(error=error_text(exc)), None, None
    result = dict(ours=ours, official_maths=naive, max_abs_diff=diff, output_max_abs=scale)
    if "seconds_per_step" in naive:
        result["speedup"] = round(naive["seconds_per_step"] / ours["seconds_per_step"], 2)
    del model
    free(device)
    return result


ATTENTION_BACKENDS = ("sdpa", "_native_flash", "_native_efficient", "_native_cudnn", "flash", "sage")


def section_attention_backends(configs, geometry, device, dtype, repeats) -> dict:
    from trajcrafter_core.errors import TrajCrafterError

    model = transformer_on(configs, device, dtype)
    inputs = step_inputs(configs.transformer, geometry, device, dtype)
    results = {}
    for backend in ATTENTION_BACKENDS:
        try:
            model.set_attention_backend(backend)
            results[backend] = timed_step(model, inputs, device, repeats)[0]
        except (TrajCrafterError, RuntimeError, ValueError, ImportError) as exc:
            results[backend] = dict(skipped=error_text(exc))
    del model
    free(device)
    return results


def section_torch_compile(configs, geometry, device, dtype, repeats) -> dict:
    model = transformer_on(configs, device, dtype)
    inputs = step_inputs(configs.transformer, geometry, device, dtype)
    eager = timed_step(model, inputs, device, repeats)[0]
    for block in list(model.transformer_blocks) + list(model.perceiver_cross_attention):
        block.compile()  # regional: one graph per block type, reused by every block
    started = time.perf_counter()
    try:
        compiled, _ = timed_step(model, inputs, device, repeats)
        compiled["first_call_seconds"] = round(time.perf_counter() - started, 1)
    except Exception as exc:
        compiled = dict(error=error_text(exc))
    del model
    free(device)
    result = dict(eager=eager, compiled=compiled)
    if "seconds_per_step" in compiled:
        result["speedup"] = round(eager["seconds_per_step"] / compiled["seconds_per_step"], 2)
    return result


def section_renderer(size, device, repeats) -> dict:
    from bench.render import _plausible_depth
    from trajcrafter_core import camera
    from trajcrafter_core.render import render_views

    frames_n, height, width = size
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(frames_n, height, width, 3, generator=g)
    depths = _plausible_depth(frames)
    K = camera.official_intrinsics(width, height)
    transforms = camera.target_pose_trajectory(0, -30, 0.3, 0, 0, num_frames=frames_n,
                                               radius=camera.orbit_radius(depths[0]))
    if device.type == "cuda":
        frames, depths, K, transforms = (t.to(device) for t in (frames, depths, K, transforms))
    results = {}
    for mode in ("official", "zbuffer"):
        def render():
            render_views(frames, depths, K, transforms, mode=mode, clean_holes=True)
            sync(device)

        render()
        reset_peak(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            render()
            times.append(time.perf_counter() - t0)
        results[mode] = dict(ms_per_frame=round(statistics.median(times) / frames_n * 1e3, 2),
                             clip_seconds=round(statistics.median(times), 3),
                             peak_gib=round(peak_gib(device), 3) if device.type == "cuda" else None)
    free(device)
    return dict(size=list(size), **results)


def section_depthcrafter(size, device, tiny: bool) -> dict:
    from trajcrafter_core.depth import DepthCrafterEstimator

    frames_n, height, width = size
    frames = torch.rand(frames_n, height, width, 3, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        if tiny:
            from trajcrafter_core.depth.tiny import build_tiny_depth_models

            paths = build_tiny_depth_models(tmp)
            estimator = DepthCrafterEstimator.from_pretrained(paths["unet"], paths["svd"], dtype=torch.float32,
                                                              device=device)
        else:
            from bench.depth import full_depthcrafter

            estimator = full_depthcrafter(device, torch.float16)
            for part in (estimator.unet, estimator.vae, estimator.image_encoder):
                randomise(part)
        reset_peak(device)
        t0 = time.perf_counter()
        note = None
        try:
            estimator.estimate(frames)
        except Exception as exc:  # random weights may give a flat/non-finite map: the timing stands
            note = error_text(exc)
        sync(device)
        seconds = time.perf_counter() - t0
    result = dict(size=list(size), seconds=round(seconds, 2), steps=5,
                  peak_gib=round(peak_gib(device), 3) if device.type == "cuda" else None)
    if note:
        result["note"] = note
    del estimator
    free(device)
    return result


# ---------------------------------------------------------------------------------- report


def print_report(report: dict) -> None:
    print(f"\n== {report['device']} | torch {report['torch']} | {report['scale']} | "
          f"{report['geometry']['frames']}x{report['geometry']['height']}x{report['geometry']['width']} "
          f"CFG, {report['dtype']} | {report['seconds']:.0f} s")
    options = report["sections"].get("memory_options", {})
    if options:
        # tiny models: MiB; on the CPU each stage's rise in live allocations (profiler), all
        # weights staying in RAM whatever the option
        unit, scale = ("MiB", 1024.0) if report["scale"] == "tiny" else ("GiB", 1.0)
        memory_label = f"CPU rise {unit}" if report["device"] == "cpu" else f"measured {unit}"
        print(f"\n{'memory option':34s} {'stage':11s} {'seconds':>8s} {memory_label:>18s} "
              f"{'predicted ' + unit:>14s} {'error':>7s}")
        for name, r in options.items():
            if "skipped" in r:
                print(f"{name:34s} skipped: {r['skipped']}")
                continue
            for stage in STAGES:
                s = r["stages"].get(stage)
                if s is None:
                    continue
                predicted = (r.get("predicted_gib") or {}).get(stage)
                error = (f"{100 * (predicted / s['peak_gib'] - 1):6.1f}%" if predicted and s["peak_gib"] else "      -")
                print(f"{name:34s} {stage:11s} {s['seconds']:8.2f} {s['peak_gib'] * scale:18.3f} "
                      f"{predicted * scale if predicted is not None else float('nan'):14.3f} {error}")
            print(f"{name:34s} {'s/step':11s} {r['seconds_per_step'] or float('nan'):8.3f}"
                  + (f"   error: {r['error']}" if r.get("error") else ""))
    for key, title in (("reference_attention", "reference cross-attention: ours vs official maths"),
                       ("attention_backends", "attention backends (one CFG transformer step)"),
                       ("torch_compile", "torch.compile (transformer blocks)")):
        section = report["sections"].get(key)
        if section is None:
            continue
        print(f"\n{title}")
        for name, value in section.items():
            print(f"  {name:20s} {value}")
    for key in ("renderer", "depthcrafter"):
        if key in report["sections"]:
            print(f"\n{key}: {report['sections'][key]}")


# ---------------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (smoke run of this script)")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run (default 450)")
    parser.add_argument("--out", type=Path, default=Path("out/gpu_bench.json"), help="the JSON written")
    parser.add_argument("--steps", type=int, default=3, help="denoising steps per generation (first = warm-up)")
    parser.add_argument("--repeats", type=int, default=None, help="timed transformer steps (default 3 GPU, 1 CPU)")
    parser.add_argument("--sections", default="memory_options,reference_attention,attention_backends,renderer,"
                                               "depthcrafter,torch_compile", help="comma-separated sections to run")
    parser.add_argument("--options", default=",".join(name for name, _ in MEASURED_OPTIONS),
                        help="comma-separated memory options to measure (names as in the table)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    budget = Budget(args.budget)
    scale = "tiny" if args.tiny else "full"
    device = torch.device("cpu" if args.tiny else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: run with --tiny for the CPU smoke run")
    make_configs, geometry = memory_plan.SCALES[scale]
    configs = make_configs()
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[geometry["dtype"]]
    repeats = args.repeats or (1 if args.tiny else 3)
    render_size = (9, 64, 112) if args.tiny else (49, 576, 1024)
    depth_size = (9, 64, 112) if args.tiny else (49, 576, 1024)
    cost_scale = 0.05 if args.tiny else 1.0
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    chosen = [s.strip() for s in args.options.split(",") if s.strip()]
    unknown = set(chosen) - {name for name, _ in MEASURED_OPTIONS}
    if unknown:
        raise SystemExit(f"unknown --options {sorted(unknown)}; known: {[name for name, _ in MEASURED_OPTIONS]}")
    options = [(name, placement) for name, placement in MEASURED_OPTIONS if name in chosen]

    # The plan's predictions, computed on the CPU while the GPU works. On a CPU nothing is
    # offloaded (every option keeps all weights in RAM) and the profiler measures the rise above
    # each stage's start: the prediction of that is the plan without offload, as a CPU runs it.
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    if device.type == "cuda":
        prediction = pool.submit(memory_plan.predict, [asdict(p) for _, p in options], scale, "cuda")
    else:
        on_cpu = [dict(asdict(p), offload="none", blocks_per_group=1) for _, p in options]
        prediction = pool.submit(memory_plan.predict, on_cpu, scale, "cpu", "rise", False)

    report = dict(device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                  torch=torch.__version__, python=platform.python_version(), scale=scale,
                  geometry=geometry, dtype=geometry["dtype"], budget_seconds=args.budget, sections={})
    sections = report["sections"]
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:  # after every section: a run cut short still leaves its figures
        report["seconds"] = round(time.perf_counter() - started, 1)
        args.out.write_text(json.dumps(report, indent=2))

    def run_section(name: str, cost_key: str, fn: Callable[[], dict]) -> Optional[dict]:
        if not budget.allows(cost_key, cost_scale):
            return dict(skipped=f"time budget ({budget.left():.0f} s left)")
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:
            traceback.print_exc()
            result = dict(error=error_text(exc))
        print(f"[{name}] {time.perf_counter() - t0:.1f} s", flush=True)
        return result

    if "memory_options" in wanted:
        sections["memory_options"] = {}
        for name, placement in options:
            sections["memory_options"][name] = run_section(
                f"memory option {name}", "memory_option",
                functools.partial(measure_option, placement, configs, geometry, device, dtype, args.steps))
            write()
    if "reference_attention" in wanted:
        sections["reference_attention"] = run_section("reference attention", "reference_attention", functools.partial(
            section_reference_attention, configs, geometry, device, dtype, repeats))
        write()
    if "attention_backends" in wanted:
        sections["attention_backends"] = run_section("attention backends", "attention_backends", functools.partial(
            section_attention_backends, configs, geometry, device, dtype, repeats))
        write()
    if "renderer" in wanted:
        sections["renderer"] = run_section("renderer", "renderer",
                                           functools.partial(section_renderer, render_size, device, repeats))
        write()
    if "depthcrafter" in wanted:
        sections["depthcrafter"] = run_section("depthcrafter", "depthcrafter",
                                               functools.partial(section_depthcrafter, depth_size, device, args.tiny))
        write()
    if "torch_compile" in wanted:
        sections["torch_compile"] = run_section("torch.compile", "torch_compile", functools.partial(
            section_torch_compile, configs, geometry, device, dtype, repeats))

    try:
        predicted = prediction.result(timeout=max(10.0, budget.left() + 15))
        for (name, _), stages in zip(options, predicted):
            if name in sections.get("memory_options", {}) and "stages" in sections["memory_options"][name]:
                sections["memory_options"][name]["predicted_gib"] = {k: round(v, 6) for k, v in stages.items()}
    except Exception as exc:
        report["prediction_error"] = error_text(exc)
    pool.shutdown(cancel_futures=True)
    write()
    print_report(report)
    print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    main()
