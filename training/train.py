"""Two-stage TrajectoryCrafter training (single process, multi-GPU and multi-node via accelerate).

Usage::

    python -m training.train --config training/configs/stage1.yaml [-o optim.lr=1e-5 ...]
    accelerate launch --config_file training/configs/accelerate/deepspeed_zero2.yaml \\
        -m training.train --config training/configs/stage1.yaml

- **Stage 1** (``stage: 1``): double-reprojection and triplet shards; trains the DiT blocks and
  the patch embedding, the reference stream skipped, cross-attention frozen (paper: lr 1e-5).
- **Stage 2** (``stage: 2``): triplet shards only; trains only the reference cross-attention
  layers and the reference patch embedding (paper: lr 2e-6).

Each optimizer step: pre-encoded or freshly encoded latents (:mod:`training.inputs`), CFG
dropout, uniform timesteps, the scheduler's target (v-prediction for CogVideoX-Fun), MSE loss;
bf16/fp16 autocast, gradient checkpointing, gradient accumulation, clipping, optional LoRA and
EMA. Checkpoints (``output.dir/checkpoints``) are atomic and resume exactly: model, optimizer,
LR scheduler, EMA, RNG states, step and data position. The final weights are exported in the
official transformer layout (``output.export_dir``, default ``output.dir/export``).
Logs: TensorBoard under ``output.dir/logs``, one JSON line per step in ``output.dir/metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from trajcrafter_core.errors import TrajCrafterError

from .checkpointing import CheckpointManager, export_transformer, write_text_atomic
from .config import Config, load_config
from .data import ShardBatchStream, make_loader
from .inputs import build_step_inputs, load_frozen_parts, make_rotary_fn
from .model_setup import add_lora, load_transformer_for_training, select_trainable
from .objective import DiffusionObjective, load_training_scheduler
from .shards import expand_shard_patterns, index_shard

# Settings that must not change when a run resumes (they define the model, the data order or
# the random stream). max_steps, output.* and num_workers may change.
_RESUME_INVARIANTS = ("stage", "data.shards", "data.kinds", "data.batch_size", "data.num_frames", "data.height",
                      "data.width", "data.shuffle", "train.seed", "train.gradient_accumulation_steps",
                      "train.trainable", "lora", "ema.enabled", "model.transformer_dir")


@dataclass
class TrainResult:
    step: int
    resumed_from: Optional[int]
    losses: Dict[int, float] = field(default_factory=dict)
    export_dir: Optional[Path] = None
    checkpoint: Optional[Path] = None


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


def _check_shards_exist(cfg: Config) -> None:
    """Fail fast (before loading models) on missing or unreadable shards."""
    for path in expand_shard_patterns(cfg.data.shards):
        index_shard(path)


def _truncate_metrics(path: Path, last_step: int) -> None:
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= last_step]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


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

    _check_shards_exist(cfg)
    out = Path(cfg.output.dir)
    manager = CheckpointManager(out, cfg.output.keep_last)
    accelerator = Accelerator(
        mixed_precision=cfg.train.mixed_precision,
        gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
    )
    try:
        if accelerator.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
            manager.remove_stale_temporaries()
        accelerator.wait_for_everyone()
        checkpoint = _resume_checkpoint(manager, resume)
        state = CheckpointManager.read_state(checkpoint) if checkpoint else None
        if state is not None:
            now = cfg.to_dict()
            changed = [k for k in _RESUME_INVARIANTS if _get(state["config"], k) != _get(now, k)]
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
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise TrajCrafterError("no trainable parameter (check train.trainable / lora settings).")

        weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.train.mixed_precision, torch.float32)
        stream = ShardBatchStream(cfg.data.shards, cfg.data_kinds, cfg.data.batch_size, cfg.data.num_frames,
                                  cfg.data.height, cfg.data.width, seed=cfg.train.seed, shuffle=cfg.data.shuffle,
                                  rank=accelerator.process_index, world_size=accelerator.num_processes,
                                  with_latents=cfg.data.use_latents,
                                  start_batch=state["data_position"] if state else 0)
        pre_encoded = cfg.data.use_latents and all("latents.safetensors" in r.members for r in stream.refs) \
            and _latents_have(stream, "prompt_embeds")
        if not cfg.model.base_dir:
            raise TrajCrafterError("model.base_dir is required (its scheduler/ config defines the noise levels).")
        scheduler = load_training_scheduler(Path(cfg.model.base_dir) / "scheduler")
        parts = load_frozen_parts(cfg.model.base_dir, model, need_encoders=not pre_encoded, dtype=weight_dtype,
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
            if int(ds_plugin.deepspeed_config.get("zero_optimization", {}).get("stage", 0)) >= 3:
                raise TrajCrafterError("DeepSpeed ZeRO-3 is not supported (use ZeRO-2 or FSDP).")
            # we stream our own batches (no prepared DataLoader), so tell DeepSpeed the micro-batch
            ds_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.data.batch_size
        model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
        if ema is not None:
            ema.to(accelerator.device)

        step = 0
        metrics_path = out / "metrics.jsonl"
        if checkpoint is not None:
            accelerator.load_state(str(checkpoint))
            step = int(state["step"])
            if accelerator.is_main_process:
                _truncate_metrics(metrics_path, step)
        data_position = state["data_position"] if state else 0
        if accelerator.is_main_process:
            accelerator.init_trackers("trajcrafter", config=_flat_hparams(cfg.to_dict()))
            accelerator.print(
                f"stage {cfg.stage}: {sum(p.numel() for p in params):,} trainable parameters "
                f"({len(trainable_names)} tensors{' + LoRA' if cfg.lora.enabled else ''}), "
                f"{len(stream.refs)} samples ({', '.join(cfg.data_kinds)}), "
                f"{'resuming at step ' + str(step) if checkpoint else 'starting at step 0'}"
            )

        loader = make_loader(stream, cfg.data.num_workers)
        batches = iter(loader)
        result = TrainResult(step=step, resumed_from=step if checkpoint else None)
        progress = tqdm(total=cfg.train.max_steps, initial=step,
                        disable=not (accelerator.is_main_process and cfg.output.progress_bar), desc="train")
        steps_this_call = 0
        cfg_dropout = (cfg.train.cfg_dropout.text, cfg.train.cfg_dropout.reference, cfg.train.cfg_dropout.condition)
        while step < cfg.train.max_steps:
            losses: List[torch.Tensor] = []
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
                        prediction = model(**inputs, return_dict=False)[0]
                    loss = objective.loss(prediction, target)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.optim.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(params, cfg.optim.max_grad_norm)
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
            if accelerator.is_main_process:
                with open(metrics_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"step": step, "loss": step_loss, "lr": lr}) + "\n")
                if step % cfg.output.log_every == 0 or step == cfg.train.max_steps:
                    accelerator.log({"train/loss": step_loss, "train/lr": lr}, step=step)
            progress.update(1)
            progress.set_postfix(loss=f"{step_loss:.4g}")
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
        full_state = accelerator.get_state_dict(model) if "FSDP" in distributed else None  # collective
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(model)
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.output.export_dtype]
            if ema is not None and cfg.output.export_ema:
                ema.store(params)
                ema.copy_to(params)
                result.export_dir = export_transformer(unwrapped, cfg.export_path, dtype)
                ema.restore(params)
            else:
                result.export_dir = export_transformer(unwrapped, cfg.export_path, dtype, state_dict=full_state)
            accelerator.print(f"exported the transformer to {result.export_dir}")
        accelerator.wait_for_everyone()
        return result
    finally:
        accelerator.end_training()
        _reset_accelerate_state()


def _latents_have(stream: ShardBatchStream, name: str) -> bool:
    """Whether the first sample's pre-encoded latents include ``name`` (all shards are encoded alike)."""
    from .shards import read_sample

    sample = read_sample(stream.refs[0], with_latents=True)
    return sample.latents is not None and name in sample.latents


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
    print(json.dumps({"step": result.step, "export_dir": str(result.export_dir) if result.export_dir else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
