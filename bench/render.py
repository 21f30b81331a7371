"""Benchmark the point renderer: ms/frame (median of several runs) and peak memory for a clip,
both modes, with and without hole cleanup.

Inputs: the first ``--frames`` frames of ``--video`` (default ``../shared/media/p7.mp4``; a
synthetic clip when absent) resized to ``--height`` x ``--width``, a smooth plausible depth
(disparity from height in the image and blurred luminance, mapped to depth like the official
DepthCrafter post-processing: 2.6 .. ~40 units with steps at luminance edges), official
intrinsics and the official gradual target-pose path (``--pose``, default the official
``run.sh`` pose ``0 -30 0.3 0 0``).

The inputs are prepared once (reading and resizing the video takes most of a minute) and each
configuration runs in its own process that loads them, so "peak RSS" is that configuration's process peak
(inputs + outputs + working memory); "peak alloc" is the largest total of live torch CPU
allocations during one render (working memory + outputs, inputs excluded).

Optional side-by-side column: the official per-frame ``Warper.forward_warp`` loop (as demo.py
runs it, including the final concatenation into one clip tensor, as ours returns), only if a copy of the official TrajectoryCrafter code is given with ``--official-dir``
or ``TRAJCRAFTER_OFFICIAL_DIR`` (never part of this repository; its missing imports are stubbed,
hole cleanup needs ``cv2``).

On CUDA (when available, or ``--device cuda``) the whole clip is rendered with the inputs
already on the GPU and with inputs on the CPU (``device="cuda"``, results back on the CPU);
peak memory is ``torch.cuda.max_memory_allocated``.

Run from the repository root::

    python bench/render.py
    python bench/render.py --official-dir /path/to/TrajectoryCrafter --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trajcrafter_core import camera  # noqa: E402
from trajcrafter_core.render import render_views  # noqa: E402

DEFAULT_VIDEO = REPO.parent / "shared" / "media" / "p7.mp4"


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


def _read_frames(path: Path, count: int, height: int, width: int) -> torch.Tensor:
    """First ``count`` frames resized to ``height x width`` one by one (bounded memory)."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            x = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float() / 255.0
            x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
            frames.append(x[0].clamp(0, 1).permute(1, 2, 0).contiguous())
            if len(frames) == count:
                break
    while len(frames) < count:  # short clip: loop it
        frames.append(frames[len(frames) % max(1, len(frames))])
    return torch.stack(frames)


def _plausible_depth(frames: torch.Tensor) -> torch.Tensor:
    """Smooth depth with steps: disparity = height in image + blurred luminance (+ a step above
    the mean), normalised to 0..1, then depth = 10000 / (3900 * disparity) as the official
    DepthCrafter wrapper maps disparity (clamped to >= 0.06 so the far end stays ~40)."""
    T, H, W, _ = frames.shape
    lum = frames.mean(-1, keepdim=True).permute(0, 3, 1, 2)
    k = max(3, (min(H, W) // 18) | 1)
    blur = F.avg_pool2d(lum, k, 1, k // 2, count_include_pad=False)
    v = torch.linspace(0, 1, H).view(1, 1, H, 1)
    disp = 0.1 + 0.5 * v + 0.3 * blur + 0.2 * (blur > blur.mean()).float()
    disp = (disp - disp.amin()) / (disp.amax() - disp.amin())
    return (10000.0 / (3900.0 * disp.clamp_min(0.06)))[:, 0].contiguous()


def load_inputs(args):
    if args.video and Path(args.video).exists():
        frames = _read_frames(Path(args.video), args.frames, args.height, args.width)
        depths = _plausible_depth(frames)
        source = f"{Path(args.video).name} + plausible depth"
    else:
        from trajcrafter_core import synthetic

        clip = synthetic.example_clip(num_frames=args.frames, height=args.height, width=args.width)
        frames, depths = clip["frames"], clip["depths"]
        source = "synthetic clip (exact depth)"
    K = camera.official_intrinsics(args.width, args.height)
    radius = camera.orbit_radius(depths[0])
    pose = [float(v) for v in args.pose.split()]
    transforms = camera.target_pose_trajectory(*pose, num_frames=args.frames, radius=radius)
    return frames, depths, K, transforms, radius, source


# ----------------------------------------------------------------------------------------------
# One configuration (child process)
# ----------------------------------------------------------------------------------------------


def _official_warper(official_dir: Path):
    """Import ``Warper`` from an official checkout outside the repo, stubbing unused imports."""
    import importlib.util
    import types

    for name in ("skimage", "skimage.io", "decord", "torchvision"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["skimage"].io = sys.modules["skimage.io"]
    sys.modules["decord"].VideoReader = None
    sys.modules["decord"].cpu = None
    try:
        import cv2  # noqa: F401  (clean_points needs it)
    except ImportError:
        sys.modules["cv2"] = types.ModuleType("cv2")
    spec = importlib.util.spec_from_file_location("official_utils", official_dir / "models" / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Warper(device="cpu")


def run_one(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.inputs_file:  # prepared once by the driver (reading and resizing the video is slow)
        frames, depths, K, transforms, radius, source = torch.load(args.inputs_file)
    else:
        frames, depths, K, transforms, radius, source = load_inputs(args)
    T = frames.shape[0]
    clean = args.clean == "1"
    device = torch.device(args.device)
    result = dict(config=args.one, clean_holes=clean, device=str(device), frames=T,
                  size=[args.height, args.width], source=source, radius=round(radius, 3),
                  threads=torch.get_num_threads())

    if args.one == "official-loop":
        import types

        warper = _official_warper(Path(args.official_dir))
        if clean and isinstance(sys.modules.get("cv2"), types.ModuleType) and not hasattr(sys.modules["cv2"], "dilate"):
            return dict(result, skipped="cv2 not installed (needed by the official hole cleanup)")
        # official inputs: [-1, 1] frames, c2w-like poses with pose_t @ inv(pose_s) = transforms
        signed = frames.permute(0, 3, 1, 2) * 2.0 - 1.0
        eye = torch.eye(4).expand(T, 4, 4).contiguous()
        Ks = K.expand(T, 3, 3).contiguous()

        def render():  # as demo.py: per-frame warps, then the clip as one tensor in 0..1
            images, masks = [], []
            for i in range(T):
                image, mask, _, _ = warper.forward_warp(signed[i : i + 1], None, depths[i : i + 1, None], eye[i : i + 1],
                                                        transforms[i : i + 1], Ks[i : i + 1], None, clean, twice=False)
                images.append(image)
                masks.append(mask)
            return (torch.cat(images) + 1.0) / 2.0, torch.cat(masks)
    else:
        if device.type == "cuda" and args.inputs_on == "device":
            frames, depths, K, transforms = (t.to(device) for t in (frames, depths, K, transforms))

        def render():
            render_views(frames, depths, K, transforms, mode=args.one, clean_holes=clean,
                         device=device if args.inputs_on == "cpu" else None)
            if device.type == "cuda":
                torch.cuda.synchronize()

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    render()  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    walls, cpus = [], []
    for _ in range(args.runs):
        w0, c0 = time.perf_counter(), time.process_time()
        render()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    result.update(
        ms_per_frame=round(statistics.median(walls) / T * 1e3, 1),
        ms_per_frame_min=round(min(walls) / T * 1e3, 1),
        clip_seconds=round(statistics.median(walls), 3),
        cpu_ms_per_frame=round(statistics.median(cpus) / T * 1e3, 1),
        peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30, 3),
        inputs_rss_gb=round(baseline / 2**30, 3),
    )
    if device.type == "cuda":
        result["peak_cuda_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    elif args.one != "official-loop" and args.alloc:
        from bench.profiling import cpu_peak_bytes

        result["peak_alloc_gb"] = round(cpu_peak_bytes(render) / 2**30, 3)
    return result


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--height", type=int, default=576)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--runs", type=int, default=3, help="timed runs per configuration (after one warm-up)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat the sweep of configurations (interleaved, each in a fresh process); figures "
                        "are medians over rounds and ratios are taken within a round, which cancels slow "
                        "drifts of a shared machine")
    p.add_argument("--video", default=str(DEFAULT_VIDEO))
    p.add_argument("--pose", default="0 -30 0.3 0 0", help="official target pose: theta phi r x y")
    p.add_argument("--official-dir", default=os.environ.get("TRAJCRAFTER_OFFICIAL_DIR"),
                   help="a copy of the official TrajectoryCrafter code (outside this repo) to time side by side")
    p.add_argument("--device", default=None, help="cpu, cuda or both (default: cpu, plus cuda when available)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-alloc", dest="alloc", action="store_false", help="skip the torch allocation profile")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--clean", default="0", help=argparse.SUPPRESS)
    p.add_argument("--inputs-on", default="device", help=argparse.SUPPRESS)
    p.add_argument("--inputs-file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--clean-holes", choices=("both", "no", "yes"), default="both",
                   help="configurations without and/or with the official hole cleanup")
    args = p.parse_args(argv)

    if args.one:
        print(json.dumps(run_one(args)))
        return 0

    devices = [args.device] if args.device in ("cpu", "cuda") else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    configs = []
    cleans = {"both": ("0", "1"), "no": ("0",), "yes": ("1",)}[args.clean_holes]
    for device in devices:
        for clean in cleans:
            if device == "cpu" and args.official_dir:
                configs.append(("official-loop", clean, "cpu", "device"))
            for mode in ("official", "zbuffer"):
                configs.append((mode, clean, device, "device"))
                if device == "cuda":
                    configs.append((mode, clean, device, "cpu"))
    common = ["--frames", str(args.frames), "--height", str(args.height), "--width", str(args.width),
              "--runs", str(args.runs), "--video", args.video, "--pose", args.pose, "--threads", str(args.threads)]
    if args.official_dir:
        common += ["--official-dir", args.official_dir]
    if not args.alloc:
        common += ["--no-alloc"]
    workdir = tempfile.TemporaryDirectory(prefix="trajcrafter-bench-")
    inputs_file = os.path.join(workdir.name, "inputs.pt")
    torch.save(load_inputs(args), inputs_file)
    common += ["--inputs-file", inputs_file]
    per_round = []
    for _ in range(max(1, args.rounds)):
        rows = {}
        for name, clean, device, inputs_on in configs:
            cmd = [sys.executable, __file__, "--one", name, "--clean", clean, "--device", device,
                   "--inputs-on", inputs_on] + common
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if out.returncode != 0:
                print(f"{name} clean={clean} {device}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["inputs_on"] = inputs_on
            rows[(name, clean, device, inputs_on)] = row
            print(json.dumps(row), flush=True)
        per_round.append(rows)

    workdir.cleanup()

    def median_of(key, field):
        values = [r[key][field] for r in per_round if key in r and field in r[key]]
        return round(statistics.median(values), 3 if field == "clip_seconds" else 1) if values else None

    first = next((r for r in per_round if r), {})
    source = next(iter(first.values()))["source"] if first else ""
    print(f"\n{args.frames} frames {args.height}x{args.width}, pose {args.pose}, {source}; "
          f"medians over {len(per_round)} round(s) of {args.runs} runs")
    print(f"{'renderer':<15}{'clean':<7}{'device':<13}{'ms/frame':>10}{'min':>8}{'clip s':>8}{'cpu ms/f':>10}"
          f"{'peak RSS GB':>13}{'peak alloc GB':>15}")
    for key in configs:
        rows = [r[key] for r in per_round if key in r]
        if not rows:
            continue
        r = rows[0]
        if "skipped" in r:
            print(f"{r['config']:<15}{str(r['clean_holes']):<7}{r['device']:<13}  skipped: {r['skipped']}")
            continue
        where = r["device"] + ("" if r["device"] == "cpu" else f" ({r['inputs_on']} in)")
        mem = max(x.get("peak_cuda_gb", x.get("peak_alloc_gb", 0.0)) for x in rows) or ""
        print(f"{r['config']:<15}{str(r['clean_holes']):<7}{where:<13}{median_of(key, 'ms_per_frame'):>10}"
              f"{min(x['ms_per_frame_min'] for x in rows):>8}{median_of(key, 'clip_seconds'):>8}"
              f"{median_of(key, 'cpu_ms_per_frame'):>10}{max(x['peak_rss_gb'] for x in rows):>13}{mem:>15}")
    # ratios within each round (same minutes of the machine), then their median
    for device in devices:
        for clean in cleans:
            pairs = [("official-loop", "official"), ("zbuffer", "official")]
            for a, b in pairs:
                ka, kb = (a, clean, device, "device"), (b, clean, device, "device")
                ratios = [r[ka]["ms_per_frame"] / r[kb]["ms_per_frame"] for r in per_round
                          if ka in r and kb in r and "ms_per_frame" in r[ka] and "ms_per_frame" in r[kb]]
                if ratios:
                    print(f"{device} clean_holes={clean == '1'}: {a} / {b} = {statistics.median(ratios):.2f} "
                          f"(median of {len(ratios)} round(s): {', '.join(f'{x:.2f}' for x in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
