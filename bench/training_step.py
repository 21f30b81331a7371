"""Benchmark: one stage-1 training step of the Ref-DiT transformer as DeepSpeed ZeRO-2 runs it —
the module in bf16 (inputs cast to it, :func:`training.inputs.cast_inputs`), gradient
checkpointing, the reference stream skipped, the stage-1 parameters trained — through the
training code's own input path (:func:`training.inputs.build_step_inputs` on cached-latent
shapes of 49x384x672, the CogVideoX-Fun scheduler, v-prediction MSE).

Measured: seconds per forward + backward (median) and peak memory. The fp32 master weights and
the two AdamW moments of the trained parameters (12 bytes each) live in DeepSpeed's optimizer,
partitioned over the N processes by ZeRO-2: the per-GPU figure printed adds that share to the
measured peak (an upper bound: ZeRO-2 partitions the gradients too).

    python bench/training_step.py                  # CPU: a narrow model, small latents (checks the script)
    python bench/training_step.py --scale full     # CUDA: the official 5B config, random weights
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.transformer import CPU_CONFIG, FULL_CONFIG, randomise_on_device  # noqa: E402


def main(argv=None) -> int:
    from diffusers import CogVideoXDDIMScheduler

    from trajcrafter_core.fixtures import COGVIDEOX_FUN_SCHEDULER_CONFIG
    from trajcrafter_core.models import CrossTransformer3DModel
    from trajcrafter_core.models.tiny import randomise_weights
    from training.config import STAGE_TRAINABLE_DEFAULTS
    from training.inputs import FrozenParts, build_step_inputs, cast_inputs, make_rotary_fn
    from training.model_setup import select_trainable
    from training.objective import DiffusionObjective

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=["cpu", "full"], default="full" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--gpus", type=int, default=8, help="processes ZeRO-2 partitions the optimizer over")
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.scale == "full" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--scale full needs a CUDA GPU")
    if args.scale == "full":
        config, (F, h, w, L) = FULL_CONFIG, (13, 48, 84, 226)
        with torch.device("meta"):
            model = CrossTransformer3DModel.from_config(config)
        model = torch.nn.Module.to(model.to_empty(device=device), torch.bfloat16)
        randomise_on_device(model)
    else:
        config, (F, h, w, L) = CPU_CONFIG, (3, 12, 20, 32)
        model = torch.nn.Module.to(randomise_weights(CrossTransformer3DModel.from_config(config)), torch.bfloat16)
    trained = select_trainable(model, STAGE_TRAINABLE_DEFAULTS[1])
    model.enable_gradient_checkpointing()
    model.train()
    C = int(config["out_channels"])
    g = torch.Generator().manual_seed(0)
    latents = {"target_mean": torch.randn(1, F, C, h, w, generator=g), "target_std": torch.rand(1, F, C, h, w, generator=g),
               "inpaint_latents": torch.randn(1, F, C + 1, h, w, generator=g),
               "prompt_embeds": torch.randn(1, L, int(config["text_embed_dim"]), generator=g),
               "scaling_factor": torch.tensor([0.7])}
    batch = {"key": ["bench"], "kind": ["double_reprojection"], "prompt": [""], "latents": latents}
    objective = DiffusionObjective(CogVideoXDDIMScheduler.from_config(COGVIDEOX_FUN_SCHEDULER_CONFIG))
    parts = FrozenParts(empty_prompt=torch.zeros(L, int(config["text_embed_dim"])))
    rotary = make_rotary_fn(dict(model.config), device)
    model_config = dict(model.config)

    def step() -> float:
        inputs, target = build_step_inputs(batch, parts, model_config, objective, uses_reference=False,
                                           reference_frames=10, noise_aug=(-3.0, 0.5), cfg_dropout=(0.1, 0.0, 0.0),
                                           device=device, rotary_fn=rotary)
        prediction = model(**cast_inputs(inputs, torch.bfloat16), return_dict=False)[0]
        loss = objective.loss(prediction, target)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return float(loss.detach())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for r in range(args.repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if r:
            times.append(time.perf_counter() - t0)
    n_trained = sum(p.numel() for n, p in model.named_parameters() if n in set(trained))
    n_all = sum(p.numel() for p in model.parameters())
    sharded = 12 * n_trained / args.gpus / 2**30  # fp32 master + 2 AdamW moments, partitioned over N
    print(f"device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}; {n_all / 1e6:,.1f} M "
          f"parameters, {n_trained / 1e6:,.1f} M trained (stage 1); latents {F}x{h}x{w}, {L} text tokens; bf16, "
          f"gradient checkpointing")
    print(f"forward + backward: {statistics.median(times):.2f} s (median of {args.repeats})")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"peak memory {peak:.1f} GiB (bf16 weights, activations, all bf16 gradients); with ZeRO-2 over "
              f"{args.gpus} GPUs add {sharded:.1f} GiB of partitioned optimizer state: at most "
              f"~{peak + sharded:.1f} GiB per GPU (ZeRO-2 also partitions the gradients)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
