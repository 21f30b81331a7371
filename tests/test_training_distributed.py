"""The sharded launch configs on CPU: DeepSpeed ZeRO-2 with bf16 and FSDP, each as two gloo
processes started by ``accelerate launch`` with the shipped config file — a run of steps with a
checkpoint, then a second launch that resumes from that checkpoint and must reproduce the first
run's later losses and its export exactly.

What CPU cannot show: speed and memory on GPUs, NCCL, and DeepSpeed's CUDA kernels (none are
used by ZeRO-2 without offload). DeepSpeed's CPU accelerator builds its optional shared-memory
collective op with the system C++ compiler on first use (cached); without one it is skipped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.test_training import REPO, H, T, W, _cfg, _weights, _write_yaml, tiny  # noqa: F401 (fixture)
from tiny_models import one_thread  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.slow
ACCELERATE_CONFIGS = REPO / "training" / "configs" / "accelerate"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def encoded(tiny, tmp_path_factory):
    """The tiny shards with cached latents (the recommended way to train)."""
    from training import prepare_latents

    out = tmp_path_factory.mktemp("encoded")
    assert prepare_latents.main(["--shards", str(tiny["shards"] / "*.tar"), "--out-dir", str(out), "--base-dir",
                                 str(tiny["base"]), "--transformer-dir", str(tiny["transformer"]),
                                 "--reference-frames", "5", "--dtype", "fp32", "--device", "cpu"]) == 0
    return out


def _launch(config_file: Path, train_config: Path, *extra, launcher=()) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DS_ACCELERATOR="cpu")
    env.pop("ACCELERATE_USE_CPU", None)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
           "--num_processes", "2", "--main_process_port", str(_free_port()), *launcher,
           "-m", "training.train", "--config", str(train_config), *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def _metrics(run: Path):
    return {m["step"]: m for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def _run_then_resume(tiny, encoded, tmp_path, config_file, mixed_precision, launcher=()):
    cfg = _cfg(tiny, tmp_path / "first", stage=1,
               model={"base_dir": str(tiny["base"]), "transformer_dir": str(tiny["transformer"]),
                      "empty_prompt_embeds": str(encoded / "empty_prompt.safetensors")},
               data={"shards": [str(encoded / "*.tar")], "num_frames": T, "height": H, "width": W,
                     "batch_size": 1, "reference_frames": 5},
               train={"max_steps": 4, "mixed_precision": mixed_precision, "gradient_checkpointing": True, "seed": 3},
               output={"dir": str(tmp_path / "first"), "checkpoint_every": 2, "keep_last": 5, "export_dtype": "fp32",
                       "progress_bar": False})
    config = _write_yaml(tmp_path / "train.yaml", cfg)
    first = _launch(config_file, config, launcher=launcher)
    checkpoint = tmp_path / "first" / "checkpoints" / "step-00000002"
    _launch(config_file, config, "-o", f"output.dir={tmp_path / 'resumed'}", "--resume", str(checkpoint),
            launcher=launcher)
    return first, checkpoint, _metrics(tmp_path / "first"), _metrics(tmp_path / "resumed")


def _check_export(tiny, run: Path, frozen_dtype=torch.float32):
    """Only the stage-1 parameters changed; frozen ones are the start weights in the dtype the
    model computed in (DeepSpeed holds the whole module in bf16: lossless for the official bf16
    checkpoints, a rounding of the tiny fp32 ones)."""
    from trajcrafter_core.models import CrossTransformer3DModel

    start, after = _weights(tiny["transformer"]), _weights(run / "export")
    changed = {k for k in start if not torch.equal(start[k].to(frozen_dtype).float(), after[k])}
    assert changed == {k for k in start if k.startswith(("patch_embed.", "transformer_blocks."))}
    _, info = CrossTransformer3DModel.from_pretrained(str(run / "export"), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    return start, after, changed


def test_deepspeed_zero2_bf16_steps_checkpoints_and_resumes(tiny, encoded, tmp_path):
    pytest.importorskip("deepspeed")
    first, checkpoint, a, b = _run_then_resume(tiny, encoded, tmp_path, ACCELERATE_CONFIGS / "deepspeed_zero2.yaml",
                                               "bf16")
    assert "data: cached latents" in first.stdout
    assert sorted(a) == [1, 2, 3, 4] and sorted(b) == [3, 4]
    assert all(torch.isfinite(torch.tensor(m["loss"])) and m["grad_norm"] > 0 for m in a.values())
    # ZeRO-2: the optimizer states are partitioned over the two processes, the model in bf16
    states = sorted(p.name for p in (checkpoint / "pytorch_model").iterdir())
    assert states == ["bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt", "bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt",
                      "mp_rank_00_model_states.pt"]
    # the resumed launch continues exactly where the first one was at its checkpoint
    for step in (3, 4):
        assert b[step]["loss"] == a[step]["loss"], (step, a[step], b[step])
    first_export, resumed_export = _weights(tmp_path / "first" / "export"), _weights(tmp_path / "resumed" / "export")
    assert all(torch.equal(first_export[k], resumed_export[k]) for k in first_export)
    start, after, changed = _check_export(tiny, tmp_path / "first", torch.bfloat16)
    # the export holds the fp32 master weights, not the engine's bf16 copies
    trained = torch.cat([after[k].flatten() for k in sorted(changed)])
    assert not torch.equal(trained, trained.bfloat16().float())


def test_fsdp_steps_checkpoints_and_resumes(tiny, encoded, tmp_path):
    # FSDP cannot broadcast the initial weights from rank 0 on CPU (sync_module_states); every
    # process loads the same weights from disk anyway
    first, checkpoint, a, b = _run_then_resume(tiny, encoded, tmp_path, ACCELERATE_CONFIGS / "fsdp.yaml", "bf16",
                                               launcher=("--fsdp_sync_module_states", "false"))
    assert sorted(a) == [1, 2, 3, 4] and sorted(b) == [3, 4]
    for step in (3, 4):
        assert b[step]["loss"] == a[step]["loss"], (step, a[step], b[step])
    _check_export(tiny, tmp_path / "first")
    first_export, resumed_export = _weights(tmp_path / "first" / "export"), _weights(tmp_path / "resumed" / "export")
    assert all(torch.equal(first_export[k], resumed_export[k]) for k in first_export)
