"""Kill a training run with SIGKILL mid-run and resume it: it continues from the saved step and
every later loss (and the final weights) equal an uninterrupted run's, bit for bit on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch

from tests.test_training import REPO, _cfg, _weights, _write_yaml, tiny  # noqa: F401 (fixtures)
from tiny_models import one_thread  # noqa: F401 (autouse fixture)
from training.config import config_from_dict

def test_killed_run_resumes_with_identical_losses(tiny, tmp_path, monkeypatch):
    from training.train import run_training

    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")  # bit-exact comparisons are a CPU property

    steps = 8
    reference = run_training(config_from_dict(_cfg(tiny, tmp_path / "ref", train__max_steps=steps,
                                                   output={"dir": str(tmp_path / "ref"), "checkpoint_every": 2,
                                                           "export_dtype": "fp32", "progress_bar": False},
                                                   train={"max_steps": steps, "mixed_precision": "no",
                                                          "gradient_checkpointing": True, "seed": 7,
                                                          "gradient_accumulation_steps": 2})))
    # the same run in a separate process, killed with SIGKILL once a checkpoint exists
    run_dir = tmp_path / "killed"
    cfg = _cfg(tiny, run_dir, output={"dir": str(run_dir), "checkpoint_every": 2, "export_dtype": "fp32",
                                      "progress_bar": False},
               train={"max_steps": 10_000, "mixed_precision": "no", "gradient_checkpointing": True, "seed": 7,
                      "gradient_accumulation_steps": 2})
    config_file = _write_yaml(tmp_path / "killed.yaml", cfg)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               ACCELERATE_USE_CPU="1")
    proc = subprocess.Popen([sys.executable, "-m", "training.train", "--config", str(config_file)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    try:
        while not (run_dir / "checkpoints" / "latest").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    saved = int((run_dir / "checkpoints" / "latest").read_text().split("-")[1])
    assert 2 <= saved < steps
    resumed = run_training(config_from_dict(dict(cfg, train=dict(cfg["train"], max_steps=steps))))
    assert resumed.resumed_from == saved
    assert sorted(resumed.losses) == list(range(saved + 1, steps + 1))
    for step, loss in resumed.losses.items():
        assert loss == reference.losses[step], (step, loss, reference.losses[step])
    # the killed run's own losses up to the checkpoint were the reference's too
    for m in metrics:
        if m["step"] <= saved:
            assert m["loss"] == reference.losses[m["step"]]
    a, b = _weights(reference.export_dir), _weights(resumed.export_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # metrics.jsonl holds each step once, no leftover temporaries
    steps_logged = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == list(range(1, steps + 1))
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".tmp")]


