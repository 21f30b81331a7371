"""Two-stage TrajectoryCrafter training (single process, multi-GPU and multi-node via accelerate).

Usage::

    python -m training.train --config training/configs/stage1.yaml [-o optim.lr=1e-5 ...]
    accelerate launch --config_file training/configs/accelerate/deepspeed_zero2.yaml \\
        -m training.train --config training/configs/stage1.yaml

- **Stage 1** (``stage: 1``): double-reprojection and triplet shards (``data.mix`` sets their
  ratio); trains the DiT blocks and the patch embedding, the reference stream skipped,
  cross-attention frozen (paper: lr 1e-5 for 10K iterations).
- **Stage 2** (``stage: 2``): triplet shards only; trains only the reference cross-attention
  layers and the reference patch embedding (paper: lr 2e-6 for 5K iterations).

Each optimizer step: cached latents (``data.use_latents``, the shards encoded by
``prepare_latents.py``) or latents encoded by the frozen VAE/T5 (:mod:`training.inputs`), CFG
dropout, uniform timesteps, the scheduler's target (v-prediction for CogVideoX-Fun), MSE loss;
bf16/fp16 autocast (under DeepSpeed the engine holds the model in that dtype and the inputs are
cast to it), gradient checkpointing, gradient accumulation, clipping, optional LoRA and EMA.
Checkpoints (``output.dir/checkpoints``) are atomic and resume exactly: model, optimizer, LR
scheduler, EMA, RNG states, step and data position. Validation (:mod:`training.validation`)
every ``validation.every`` steps. The final weights are exported in the official transformer
layout (``output.export_dir``, default ``output.dir/export``) and, with LoRA, the adapter alone
(``output.dir/lora``, diffusers/PEFT naming).
Logs: TensorBoard (and wandb, ``output.report_to``) under ``output.dir/logs``, one JSON line per
step in ``output.dir/metrics.jsonl`` (loss, lr, grad norm, samples/s, peak memory) and one per
validation in ``output.dir/validation.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from trajcrafter_core.checkpoints import parse_dtype
from trajcrafter_core.errors import TrajCrafterError

from .checkpointing import CheckpointManager, export_lora_adapter, export_transformer, write_text_atomic
from .config import Config, load_config
from .data import ShardBatchStream, make_loader
from .inputs import build_step_inputs, cast_inputs, load_frozen_parts, make_rotary_fn
from .model_setup import add_lora, load_transformer_for_training, select_trainable
from .objective import DiffusionObjective, load_training_scheduler
from .shards import SampleRef, index_shards

# Settings that must not change when a run resumes (they define the model, the data order or
# the random stream). max_steps, output.*, validation.* and num_workers may change.
_RESUME_INVARIANTS = ("stage", "data.shards", "data.kinds", "data.batch_size", "data.num_frames", "data.height",
                      "data.width", "data.shuffle", "data.mix", "train.seed", "train.gradient_accumulation_steps",
                      "train.trainable", "lora", "ema.enabled", "model.transformer_dir")


@dataclass
class TrainResult:
    step: int
    resumed_from: Optional[int]
    losses: Dict[int, float] = field(default_factory=dict)
    export_dir: Optional[Path] = None
    lora_dir: Optional[Path] = None
    checkpoint: Optional[Path] = None
    cached_latents: Optional[bool] = None
    validation: Dict[int, Dict] = field(default_factory=dict)


def _get(d: Dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d


def _flat_hparams(d: Dict, prefix: str = "") -> Dict[str, object]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_hparams(v, key + "/"))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else json.dumps(v)
    return out


def uses_cached_latents(refs: Sequence[SampleRef], use_latents: bool, setting: str = "data.shards") -> bool:
    """Whether the samples ``refs`` train from cached latents (``data.use_latents: true``) or are
    encoded every step (``false``); raises when the shards do not carry what that needs, instead
    of silently loading the VAE and T5 on every process."""
    without = [r for r in refs if not (r.has_latents if use_latents else r.has_video)]
    if without:
        r = without[0]
        if use_latents:
            raise TrajCrafterError(
                f"data.use_latents is true but {len(without)} of {len(refs)} samples of {setting} carry no cached "
                f"latents (e.g. {r.key} in {r.shard}). Encode the shards once with python -m training.prepare_latents "
                f"(recommended: training then never loads the VAE and T5), or set data.use_latents: false to load "
                f"the VAE and T5 on every process and encode each batch (slow).")
        raise TrajCrafterError(
            f"data.use_latents is false (encode every batch) but {len(without)} of {len(refs)} samples of {setting} "
            f"carry no videos (e.g. {r.key} in {r.shard}, an encoded shard); point {setting} at the shards the "
            f"preparation scripts wrote, or set data.use_latents: true.")
    return use_latents


def _truncate_jsonl(path: Path, last_step: int) -> None:
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= last_step]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def _append_jsonl(path: Path, record: Dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _resume_checkpoint(manager: CheckpointManager, resume: str) -> Optional[Path]:
    if resume == "none":
        if manager.complete_checkpoints():
            raise TrajCrafterError(
                f"{manager.dir} already holds checkpoints; resume them (--resume auto) or choose a new output.dir."
            )
        return None
    if resume == "auto":
        return manager.latest()
    path = Path(resume)
    CheckpointManager.read_state(path)
    return path


def _process_group_kwargs() -> list:
    """DeepSpeed or FSDP launched on a machine without GPUs (the CPU tests): accelerate finds no
    distributed backend for the CPU and would run every process as a lone rank 0; gloo makes
    them one job."""
    from accelerate.utils import InitProcessGroupKwargs

    sharded = any(os.environ.get(f"ACCELERATE_USE_{name}", "").lower() == "true" for name in ("DEEPSPEED", "FSDP"))
    if sharded and int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        return [InitProcessGroupKwargs(backend="gloo")]
    return []


def _peak_memory_gb(device: torch.device) -> float:
    """Peak memory since the last call: CUDA allocations on a GPU, the process's peak RSS on CPU."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        return peak / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _deepspeed_fp32_weights(model, names: Sequence[str]) -> Dict[str, torch.Tensor]:
    """The fp32 master copies of the trained parameters ``names`` of a DeepSpeed engine (the
    module itself holds their bf16/fp16 rounding). Collective: every process calls it."""
    from deepspeed.utils import safe_get_full_fp32_param

    wanted = set(names)
    out = {}
    for name, param in model.module.named_parameters():
        if name in wanted:
            full = safe_get_full_fp32_param(param)
            if full is not None:
                out[name] = full.detach().cpu()
    return out


def run_training(cfg: Config, resume: str = "auto", stop_after: Optional[int] = None) -> TrainResult:
    """Train as configured. ``resume``: ``"auto"`` (latest checkpoint if any), ``"none"`` or a
    checkpoint folder. ``stop_after``: return after this many optimizer steps of *this* call
    (as if the job had been killed right after), without the final save/export.
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    # one header scan of every shard, before any model loads (a bad shard fails fast)
    refs = index_shards(cfg.data.shards, cfg.data_kinds)
    cached = uses_cached_latents(refs, cfg.data.use_latents)
    val_refs = index_shards(cfg.validation.shards, cfg.data_kinds) if cfg.validation.every else []
    if val_refs:
        uses_cached_latents(val_refs, cfg.data.use_latents, "validation.shards")
    if not cfg.model.base_dir:
        raise TrajCrafterError("model.base_dir is required (its scheduler/ config defines the noise levels).")
    v = cfg.validation
    needs_empty = cfg.train.cfg_dropout.text > 0 or (val_refs and v.videos and v.guidance_scale > 1)
    if cached and needs_empty and not cfg.model.empty_prompt_embeds:
        raise TrajCrafterError(
            "text dropout (train.cfg_dropout.text) and validation videos with guidance need the empty prompt's "
            "embeddings: set model.empty_prompt_embeds to the empty_prompt.safetensors prepare_latents.py wrote.")
    out = Path(cfg.output.dir)
    manager = CheckpointManager(out, cfg.output.keep_last)
    accelerator = Accelerator(
        mixed_precision=cfg.train.mixed_precision,
        gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
        log_with=list(cfg.output.report_to),
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        kwargs_handlers=_process_group_kwargs(),
    )
    try:
        if accelerator.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
            manager.remove_stale_temporaries()
        accelerator.wait_for_everyone()
        checkpoint = _resume_checkpoint(manager, resume)
        state = CheckpointManager.read_state(checkpoint) if checkpoint else None
        if state is not None:
            now, defaults = cfg.to_dict(), Config().to_dict()

            def saved(key: str):  # a setting added since the checkpoint was written has its default
                try:
                    return _get(state["config"], key)
                except KeyError:
                    return _get(defaults, key)

            changed = [k for k in _RESUME_INVARIANTS if saved(k) != _get(now, k)]
            if changed:
                raise TrajCrafterError(
                    f"cannot resume {checkpoint}: {', '.join(changed)} changed since it was written; "
                    f"restore them or start a new output.dir."
                )
        set_seed(cfg.train.seed, device_specific=True)

        # -- models ---------------------------------------------------------------------------
        model = load_transformer_for_training(cfg.model.transformer_dir, cfg.stage)
        model_config = dict(model.config)
        trainable_names = select_trainable(model, cfg.trainable_prefixes)
        if cfg.lora.enabled:
            add_lora(model, cfg.trainable_prefixes, cfg.lora_targets, cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout)
        if cfg.train.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        model.train()
        named_params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        params = [p for _, p in named_params]
        if not params:
            raise TrajCrafterError("no trainable parameter (check train.trainable / lora settings).")

        weight_dtype = torch.float32 if cfg.train.mixed_precision == "no" else parse_dtype(cfg.train.mixed_precision)
        stream = ShardBatchStream(refs, cfg.data_kinds, cfg.data.batch_size, cfg.data.num_frames,
                                  cfg.data.height, cfg.data.width, seed=cfg.train.seed, shuffle=cfg.data.shuffle,
                                  rank=accelerator.process_index, world_size=accelerator.num_processes,
                                  with_latents=cached, with_video=not cached, mix=cfg.data.mix or None,
                                  start_batch=state["data_position"] if state else 0)
        scheduler = load_training_scheduler(Path(cfg.model.base_dir) / "scheduler")
        parts = load_frozen_parts(cfg.model.base_dir, model, need_encoders=not cached, dtype=weight_dtype,
                                  device=accelerator.device, scheduler=scheduler,
                                  empty_prompt_file=cfg.model.empty_prompt_embeds)
        objective = DiffusionObjective(scheduler)
        rotary_fn = make_rotary_fn(model_config, accelerator.device)

        optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2),
                                      eps=cfg.optim.eps, weight_decay=cfg.optim.weight_decay)
        lr_scheduler = get_scheduler(cfg.optim.lr_scheduler, optimizer,
                                     num_warmup_steps=cfg.optim.warmup_steps * accelerator.num_processes,
                                     num_training_steps=cfg.train.max_steps * accelerator.num_processes)
        ema = None
        if cfg.ema.enabled:
            ema = EMAModel(params, decay=cfg.ema.decay)
            accelerator.register_for_checkpointing(ema)
        distributed = str(accelerator.distributed_type)
        if "FSDP" in distributed and (cfg.ema.enabled or cfg.lora.enabled):
            raise TrajCrafterError("EMA and LoRA are supported with DDP and DeepSpeed ZeRO-2, not with FSDP; "
                                   "use the DeepSpeed config or switch them off.")
        ds_plugin = getattr(accelerator.state, "deepspeed_plugin", None)
        if ds_plugin is not None:
            ds = ds_plugin.deepspeed_config
            if int(ds.get("zero_optimization", {}).get("stage", 0)) >= 3:
                raise TrajCrafterError("DeepSpeed ZeRO-3 is not supported (use ZeRO-2 or FSDP).")
            # we stream our own batches (no prepared DataLoader): tell DeepSpeed the batch sizes, and
            # clip as the config says (DeepSpeed clips inside its step)
            ds["train_micro_batch_size_per_gpu"] = cfg.data.batch_size
            ds["train_batch_size"] = cfg.data.batch_size * cfg.train.gradient_accumulation_steps * accelerator.num_processes
            ds["gradient_clipping"] = cfg.optim.max_grad_norm
        model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
        if ema is not None:
            ema.to(accelerator.device)
        # the dtype the prepared model computes in: float32 master weights under autocast, the
        # engine's bf16/fp16 under DeepSpeed (which turns autocast off)
        input_dtype = next(p.dtype for p in accelerator.unwrap_model(model).parameters() if p.is_floating_point())

        step = 0
        metrics_path = out / "metrics.jsonl"
        validation_path = out / "validation.jsonl"
        if checkpoint is not None:
            accelerator.load_state(str(checkpoint))
            step = int(state["step"])
            if accelerator.is_main_process:
                _truncate_jsonl(metrics_path, step)
                _truncate_jsonl(validation_path, step)
        data_position = state["data_position"] if state else 0
        validator = None
        if val_refs:
            from .validation import Validator

            validator = Validator(cfg, val_refs, parts=parts, objective=objective, model_config=model_config,
                                  rotary_fn=rotary_fn, cached=cached, accelerator=accelerator,
                                  input_dtype=input_dtype, out_dir=out / "validation",
                                  pipe_factory=_sampler_factory(cfg, parts, accelerator, weight_dtype))
        if accelerator.is_main_process:
            accelerator.init_trackers("trajcrafter", config=_flat_hparams(cfg.to_dict()))
            mix = f", mix {cfg.data.mix}" if cfg.data.mix else ""
            accelerator.print(
                f"stage {cfg.stage}: {sum(p.numel() for p in params):,} trainable parameters "
                f"({len(trainable_names)} tensors{' + LoRA' if cfg.lora.enabled else ''}), "
                f"{len(stream.refs)} samples ({', '.join(cfg.data_kinds)}{mix}), "
                f"{'resuming at step ' + str(step) if checkpoint else 'starting at step 0'}"
            )
            if cached:
                accelerator.print(f"data: cached latents from the shards (prepare_latents.py); the VAE and T5 are not "
                                  f"loaded and the videos are not read")
            else:
                print(f"WARNING data: per-step encoding: the VAE and T5 are loaded on each of the "
                      f"{accelerator.num_processes} process(es) and encode every batch. Encode the shards once with "
                      f"python -m training.prepare_latents and set data.use_latents: true to skip this.",
                      file=sys.stderr, flush=True)

        loader = make_loader(stream, cfg.data.num_workers)
        batches = iter(loader)
        result = TrainResult(step=step, resumed_from=step if checkpoint else None, cached_latents=cached)
        progress = tqdm(total=cfg.train.max_steps, initial=step,
                        disable=not (accelerator.is_main_process and cfg.output.progress_bar), desc="train")
        steps_this_call = 0
        cfg_dropout = (cfg.train.cfg_dropout.text, cfg.train.cfg_dropout.reference, cfg.train.cfg_dropout.condition)
        samples_per_step = cfg.data.batch_size * cfg.train.gradient_accumulation_steps * accelerator.num_processes
        # clip_grad_norm_ with an infinite bound measures the norm without clipping
        clip_to = cfg.optim.max_grad_norm if cfg.optim.max_grad_norm > 0 else math.inf
        _peak_memory_gb(accelerator.device)

        def validate(at: int) -> None:
            found = validator.run(model, at)
            record = {"step": at, "loss": found.loss, "videos": [str(p) for p in found.videos]}
            result.validation[at] = record
            if accelerator.is_main_process:
                _append_jsonl(validation_path, record)
                if found.loss is not None:
                    accelerator.log({"val/loss": found.loss}, step=at)
                _log_videos(accelerator, found.videos, at)

        if validator is not None and step == 0:
            validate(0)  # the starting point of the curve
        while step < cfg.train.max_steps:
            losses: List[torch.Tensor] = []
            started = time.perf_counter()
            grad_norm = None
            for _ in range(cfg.train.gradient_accumulation_steps):
                batch = next(batches)
                data_position += 1
                with accelerator.accumulate(model):
                    inputs, target = build_step_inputs(
                        batch, parts, model_config, objective, uses_reference=cfg.uses_reference,
                        reference_frames=cfg.data.reference_frames,
                        noise_aug=(cfg.train.noise_aug_mean, cfg.train.noise_aug_std), cfg_dropout=cfg_dropout,
                        device=accelerator.device, rotary_fn=rotary_fn)
                    with accelerator.autocast():
                        prediction = model(**cast_inputs(inputs, input_dtype), return_dict=False)[0]
                    loss = objective.loss(prediction, target)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        grad_norm = accelerator.clip_grad_norm_(params, clip_to)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                losses.append(loss.detach())
            step += 1
            steps_this_call += 1
            if ema is not None and step % cfg.ema.update_every == 0:
                ema.step(params)
            step_loss = accelerator.gather(torch.stack(losses).mean().reshape(1)).mean().item()
            if not math.isfinite(step_loss):
                raise TrajCrafterError(f"loss became {step_loss} at step {step}; lower optim.lr or check the data.")
            result.losses[step] = step_loss
            lr = lr_scheduler.get_last_lr()[0]
            record = {"step": step, "loss": step_loss, "lr": lr,
                      "grad_norm": float(grad_norm) if grad_norm is not None else None,
                      "samples_per_s": samples_per_step / (time.perf_counter() - started),
                      "peak_memory_gb": _peak_memory_gb(accelerator.device)}
            if accelerator.is_main_process:
                _append_jsonl(metrics_path, record)
                if step % cfg.output.log_every == 0 or step == cfg.train.max_steps:
                    accelerator.log({f"train/{k}": v for k, v in record.items() if k != "step" and v is not None},
                                    step=step)
            progress.update(1)
            progress.set_postfix(loss=f"{step_loss:.4g}")
            if validator is not None and validator.due(step, step == cfg.train.max_steps):
                validate(step)
            if step % cfg.output.checkpoint_every == 0 or step == cfg.train.max_steps:
                result.checkpoint = manager.save(accelerator, step, {
                    "data_position": data_position, "config": cfg.to_dict(), "loss": step_loss})
            if stop_after is not None and steps_this_call >= stop_after and step < cfg.train.max_steps:
                result.step = step
                progress.close()
                return result
        progress.close()
        result.step = step
        accelerator.wait_for_everyone()
        _export(cfg, accelerator, model, ema, params, named_params, distributed, result)
        accelerator.wait_for_everyone()
        return result
    finally:
        accelerator.end_training()
        _reset_accelerate_state()


def _export(cfg: Config, accelerator, model, ema, params, named_params, distributed: str, result: TrainResult) -> None:
    """Write the official-layout export (and the LoRA adapter); collectives run on every process."""
    full_state = accelerator.get_state_dict(model) if "FSDP" in distributed else None
    unwrapped = accelerator.unwrap_model(model)
    use_ema = ema is not None and cfg.output.export_ema
    if use_ema:
        ema.store(params)
        ema.copy_to(params)
    try:
        masters = {}
        if "DEEPSPEED" in distributed and not use_ema:
            masters = _deepspeed_fp32_weights(model, [n for n, _ in named_params])
        if accelerator.is_main_process:
            dtype = parse_dtype(cfg.output.export_dtype)
            result.export_dir = export_transformer(unwrapped, cfg.export_path, dtype, state_dict=full_state,
                                                   overrides=masters)
            accelerator.print(f"exported the transformer to {result.export_dir}")
            if cfg.lora.enabled and cfg.output.export_lora:
                result.lora_dir = export_lora_adapter(unwrapped, cfg.lora_export_path, dtype, overrides=masters)
                accelerator.print(f"exported the LoRA adapter to {result.lora_dir}")
    finally:
        if use_ema:
            ema.restore(params)


def _sampler_factory(cfg: Config, parts, accelerator, dtype: torch.dtype):
    """``model -> TrajectoryCrafterPipeline`` sampling with the model being trained (validation):
    the frozen VAE (the training one, or loaded once for decoding) and the inference scheduler."""
    from trajcrafter_core import checkpoints
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    base = Path(cfg.model.base_dir)
    held = {}

    def build(model):
        if "vae" not in held:
            held["vae"] = parts.pipe.vae if parts.pipe is not None else \
                checkpoints.load_vae(base / "vae", dtype=dtype, device=accelerator.device).eval().requires_grad_(False)
        # FSDP gathers the weights inside the wrapper's forward; elsewhere the module itself runs
        transformer = model if "FSDP" in str(accelerator.distributed_type) else accelerator.unwrap_model(model)
        pipe = TrajectoryCrafterPipeline(transformer=transformer, vae=held["vae"], text_encoder=None, tokenizer=None,
                                         scheduler=checkpoints.load_scheduler(base / "scheduler"),
                                         scheduler_config=checkpoints.read_scheduler_config(base / "scheduler"))
        pipe.device = accelerator.device
        return pipe

    return build


def _log_videos(accelerator, videos: Sequence[Path], step: int) -> None:
    """The middle frame of each validation video to TensorBoard, the videos to wandb."""
    if not videos:
        return
    from trajcrafter_core.video import read_video

    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            for path in videos:
                clip = read_video(path, size_multiple=1)
                frame = clip.frames[clip.num_frames // 2].numpy()
                tracker.writer.add_image(f"val/{path.stem}", frame, global_step=step, dataformats="HWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({f"val/{p.stem}": wandb.Video(str(p), format="mp4") for p in videos}, step=step)


def _reset_accelerate_state() -> None:
    """Let another run start in the same process (tests, notebooks)."""
    try:
        from accelerate.state import AcceleratorState, GradientState, PartialState

        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        PartialState._reset_state()
    except Exception:  # pragma: no cover - accelerate internals moved
        pass


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="YAML or JSON training config (training/configs/*.yaml)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. -o optim.lr=2e-6 (repeatable)")
    p.add_argument("--resume", default="auto",
                   help="'auto' (latest checkpoint in output.dir, default), 'none', or a checkpoint folder")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_arg_parser().parse_args(argv)
    try:
        cfg = load_config(args.config, args.override)
        result = run_training(cfg, resume=args.resume)
    except TrajCrafterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"step": result.step, "export_dir": str(result.export_dir) if result.export_dir else None,
                      "lora_dir": str(result.lora_dir) if result.lora_dir else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
