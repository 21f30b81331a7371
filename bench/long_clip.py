"""Clips of any length: seconds per output frame and peak memory against the clip length.

    .venv/bin/python bench/long_clip.py                       # tiny random-init models on the CPU
    .venv/bin/python bench/long_clip.py --device cuda --base-dir models/CogVideoX-Fun-V1.1-5b-InP \\
        --transformer-dir models/TrajectoryCrafter --size 384 672 --steps 50   # the released model on a GPU

Every clip length runs in a fresh process (so each peak is its own): conditions of ``T`` frames
at the model size, then ``redirect.generate`` in overlapping windows (``--window``,
``--overlap``) and, side by side, in one window of the whole clip (``--whole``; what the pipeline
did before, padded to ``8m + 1``). Printed per run: seconds per output frame (median of
``--repeats``), the peak memory above the loaded model (CPU: peak RSS; CUDA: peak allocated),
and the clip's own tensors (source, render, mask, output), which any method must hold; the
peak includes them. Windows should give a flat time per frame and a peak that does not grow
with ``T`` beyond the clip's tensors. On a shared CPU, compare runs of one invocation only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


class PeakRSS:
    """The largest resident set size (MB) seen while the block runs, sampled every 5 ms."""

    def __enter__(self):
        import threading

        self.peak, self._stop = _rss_mb(), threading.Event()

        def watch():
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, _rss_mb())

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def child(args) -> None:
    import torch

    sys.path.insert(0, str(REPO))
    from trajcrafter_core import redirect
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    torch.set_num_threads(args.threads)
    pipe = TrajectoryCrafterPipeline.from_pretrained(args.base_dir, args.transformer_dir, dtype=args.dtype,
                                                     device=args.device)
    T, (h, w) = args.child_frames, args.size
    g = torch.Generator().manual_seed(0)
    source = torch.rand(T, h, w, 3, generator=g)
    mask = (torch.rand(T, h, w, generator=g) > 0.7).float()
    render = source * (1 - mask[..., None])
    cond = redirect.conditions_from_images(source, render, mask, num_reference_frames=10)
    window = None if args.child_mode == "whole" else args.window
    kwargs = dict(prompt="a room", num_inference_steps=args.steps, guidance_scale=6.0, seed=0, window_frames=window,
                  overlap_frames=args.overlap if window else None)
    redirect.generate(pipe, redirect.conditions_from_images(source[:9], render[:9], mask[:9]), **{**kwargs, "window_frames": None})  # warm-up
    gc.collect()
    cuda = torch.device(args.device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2 ** 20
    else:
        base = _rss_mb()
    times = []
    with PeakRSS() as rss:
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = redirect.generate(pipe, cond, **kwargs)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else rss.peak
    assert out.shape[0] == T
    clip_mb = (source.numel() * 3 + mask.numel()) * 4 / 2 ** 20  # source, render, output + mask
    print(json.dumps(dict(frames=T, mode=args.child_mode, s_per_frame=statistics.median(times) / T,
                          peak_mb=peak - base, clip_mb=clip_mb)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, nargs="+", default=[49, 97, 193])
    p.add_argument("--size", type=int, nargs=2, default=[96, 160], metavar=("H", "W"), help="model size")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--window", type=int, default=49)
    p.add_argument("--overlap", type=int, default=13)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--whole", action=argparse.BooleanOptionalAction, default=True,
                   help="also run every clip as one window (the pipeline without windows)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--base-dir", default=None, help="CogVideoX-Fun base folder (default: tiny random-init models)")
    p.add_argument("--transformer-dir", default=None)
    p.add_argument("--child-frames", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-mode", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_frames:
        child(args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        if args.base_dir is None:
            sys.path.insert(0, str(REPO))
            from trajcrafter_core.fixtures import save_tiny_checkpoints

            tiny = save_tiny_checkpoints(Path(tmp), seed=0)
            args.base_dir, args.transformer_dir = str(tiny["base"]), str(tiny["transformer"])
            print(f"tiny random-init models, {args.device}, {args.threads} threads")
        print(f"model size {args.size[0]}x{args.size[1]}, {args.steps} steps, CFG 6, windows of {args.window} "
              f"frames overlapping by {args.overlap}")
        print(f"{'frames':>6} {'method':>8} {'s/frame':>9} {'peak MB':>9} {'clip MB':>8}")
        modes = ["windows"] + (["whole"] if args.whole else [])
        for T in args.frames:
            for mode in modes:
                cmd = [sys.executable, __file__, "--child-frames", str(T), "--child-mode", mode]
                for key in ("size", "steps", "window", "overlap", "repeats", "threads", "device", "dtype", "base_dir",
                            "transformer_dir"):
                    value = getattr(args, key)
                    cmd += [f"--{key.replace('_', '-')}", *map(str, value if isinstance(value, list) else [value])]
                # freed tensors go back to the system at once (glibc: large blocks are mmapped), so the
                # resident size follows the live memory instead of the allocator's cache
                env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if out.returncode:
                    print(f"{T:>6} {mode:>8} failed: {out.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{T:>6} {mode:>8} {r['s_per_frame']:>9.4f} {r['peak_mb']:>9.1f} {r['clip_mb']:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
