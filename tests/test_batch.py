"""``trajcrafter batch``: a manifest of clips × camera paths, checked line by line before any work;
outputs that only ever appear whole; a run killed mid-way (SIGKILL) and resumed leaves every
path exactly once and complete; two processes under ``accelerate launch`` split six clips 3/3."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from trajcrafter_core import batch, cli
from trajcrafter_core.errors import TrajCrafterError

REPO = Path(__file__).resolve().parents[1]
FILES = {"source.mp4", "render.mp4", "mask.mp4", "preview.png", "summary.json"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Six synthetic clips (9 frames of 64x96, mp4 + exact depth .npy), made once."""
    from trajcrafter_core.synthetic import example_clip
    from trajcrafter_core.video import write_video

    folder = tmp_path_factory.mktemp("clips")
    for k in range(6):
        c = example_clip(num_frames=9, height=64, width=96, seed=k)
        write_video(folder / f"clip{k}.mp4", c["frames"], fps=8)
        np.save(folder / f"clip{k}.npy", c["depths"].numpy())
    return folder


def write_manifest(folder: Path, clips: Path, count: int, cameras=None, **options) -> Path:
    """A manifest of the first ``count`` clips rendered at their own size (no resize), two camera
    paths each by default; clip paths relative to the manifest."""
    cameras = cameras or [{"preset": "orbit_left"}, {"target_pose": [0, 20, 0.1, 0, 0], "mode": "bullet", "name": "bullet"}]
    options.setdefault("sample_size", [64, 96])
    rel = os.path.relpath(clips, folder)
    lines = ["# clips x camera paths"]
    for k in range(count):
        lines.append(json.dumps(dict(video=f"{rel}/clip{k}.mp4", depth=f"{rel}/clip{k}.npy", cameras=cameras,
                                     frames=0, max_side=0, **options)))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def outputs(out: Path):
    """``{clip/path: sorted files}`` of every finished path folder, and the hidden leftovers."""
    done = {f"{p.parent.name}/{p.name}": sorted(os.listdir(p)) for p in out.glob("*/*") if p.is_dir()
            and not p.name.startswith(".") and not p.parent.name.startswith(".")}
    hidden = [p for p in out.glob("*/.partial-*")]
    return done, hidden


def test_a_manifest_is_checked_line_by_line(tmp_path, clips):
    (tmp_path / "clips").symlink_to(clips)
    good = json.dumps(dict(video="clips/clip0.mp4", depth="clips/clip0.npy", cameras=[{"preset": "orbit_left"}]))
    cases = [
        ("not json", "line 2: not JSON"),
        (json.dumps(dict(cameras=[{"preset": "orbit_left"}])), "line 2: needs \"video\""),
        (json.dumps(dict(video="clips/missing.mp4", cameras=[{"preset": "x"}])), "line 2: video clips/missing.mp4: no such file"),
        (json.dumps(dict(video="clips/clip0.mp4", cameras=[])), "line 2: needs \"cameras\""),
        (json.dumps(dict(video="clips/clip0.mp4", cameras=[{"preset": "barrel_roll"}])), "line 2: camera 1: unknown camera preset"),
        (json.dumps(dict(video="clips/clip0.mp4", cameras=[{"pose": 1}])), "line 2: camera 1: .*pose"),
        (json.dumps(dict(video="clips/clip0.mp4", cameras=[{"preset": "static"}], colour="red")), "line 2: unknown key"),
        (good, "line 2: the name 'clip0' is also line 1's"),
    ]
    for line, message in cases:
        (tmp_path / "m.jsonl").write_text(good + "\n" + line + "\n")
        with pytest.raises(TrajCrafterError, match=message):
            batch.read_manifest(tmp_path / "m.jsonl")
    items = batch.read_manifest(write_manifest(tmp_path, clips, 1))
    assert [name for name, _ in items[0].cameras] == ["01_orbit_left_gradual", "bullet"]
    assert items[0].name == "clip0" and items[0].line == 2


def test_shares_are_disjoint_and_cover_the_manifest():
    items = list(range(7))
    shares = [batch.shard(items, r, 3) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]


def test_render_only_batch_writes_whole_folders_and_skips_them_again(tmp_path, clips, capsys):
    manifest = write_manifest(tmp_path, clips, 2)
    out = tmp_path / "out"
    assert cli.main(["batch", str(manifest), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["generated"] is False and len(summary["written"]) == 4 and summary["skipped"] == []
    done, hidden = outputs(out)
    assert hidden == [] and sorted(done) == ["clip0/01_orbit_left_gradual", "clip0/bullet", "clip1/01_orbit_left_gradual", "clip1/bullet"]
    assert all(set(files) == FILES for files in done.values())
    info = json.loads((out / "clip1" / "bullet" / "summary.json").read_text())
    assert info["mode"] == "bullet" and info["line"] == 3 and info["frames"] == 9
    stamp = (out / "clip0" / "bullet" / "render.mp4").stat().st_mtime_ns
    assert cli.main(["batch", str(manifest), "--out", str(out)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["written"] == [] and len(again["skipped"]) == 4
    assert (out / "clip0" / "bullet" / "render.mp4").stat().st_mtime_ns == stamp
    report = json.loads((out / ".batch" / "rank0-of-1.json").read_text())
    assert report["clips"] == ["clip0", "clip1"] and report["failed"] == []


def test_a_failing_clip_is_reported_and_the_others_go_on(tmp_path, clips, capsys):
    manifest = write_manifest(tmp_path, clips, 2)
    np.save(tmp_path / "bad.npy", np.ones((3, 5, 5), dtype=np.float32))  # wrong frame count
    lines = manifest.read_text().splitlines()
    first = json.loads(lines[1])
    lines[1] = json.dumps({**first, "depth": "bad.npy"})
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert cli.main(["batch", str(manifest), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [f["clip"] for f in summary["failed"]] == ["clip0"] and "depth" in summary["failed"][0]["error"]
    done, hidden = outputs(out)
    assert sorted(done) == ["clip1/01_orbit_left_gradual", "clip1/bullet"] and hidden == []


def _run_cli(*argv, env=None):
    return subprocess.Popen([sys.executable, "-m", "trajcrafter_core", *map(str, argv)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_run_resumes_with_every_path_once_and_whole(tmp_path, clips):
    manifest = write_manifest(tmp_path, clips, 6)
    for attempt in range(3):  # the kill must land mid-way; a run that finished first is retried
        out = tmp_path / f"out{attempt}"
        proc = _run_cli("batch", manifest, "--out", out)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            done, hidden = outputs(out)
            if done and hidden:
                break
            time.sleep(0.005)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        done, hidden = outputs(out)
        if killed and len(done) < 12:
            break
    assert killed and 1 <= len(done) < 12, "the run finished before it could be killed"
    # what the kill left: whole folders only, the interrupted work hidden
    assert all(set(files) == FILES for files in done.values())
    before = {k: (out / k / "render.mp4").stat().st_mtime_ns for k in done}
    resumed = _run_cli("batch", manifest, "--out", out)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    summary = json.loads(stdout)
    assert sorted(summary["skipped"]) == sorted(done) and len(summary["written"]) == 12 - len(done)
    final, hidden = outputs(out)
    assert len(final) == 12 and hidden == [] and all(set(files) == FILES for files in final.values())
    assert {k: (out / k / "render.mp4").stat().st_mtime_ns for k in done} == before  # not redone
    assert sorted(p.name for p in out.iterdir()) == [".batch"] + [f"clip{k}" for k in range(6)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_accelerate_launch_split_six_clips_three_and_three(tmp_path, clips):
    manifest = write_manifest(tmp_path, clips, 6, cameras=[{"preset": "orbit_right"}])
    out = tmp_path / "out"
    launcher = Path(sys.executable).with_name("accelerate")
    # accelerate's torchrun launcher (--multi_gpu); without GPUs both processes run on the CPU
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), "-m", "trajcrafter_core", "batch",
           str(manifest), "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((out / ".batch" / f"rank{r}-of-2.json").read_text()) for r in range(2)]
    assert [r["clips"] for r in reports] == [["clip0", "clip2", "clip4"], ["clip1", "clip3", "clip5"]]
    assert [len(r["written"]) for r in reports] == [3, 3]
    done, hidden = outputs(out)
    assert len(done) == 6 and hidden == [] and all(set(files) == FILES for files in done.values())


def test_batch_generates_with_a_model(tmp_path, clips, capsys):
    from trajcrafter_core.fixtures import save_tiny_checkpoints
    from trajcrafter_core.video import probe_video

    tiny = save_tiny_checkpoints(tmp_path / "models", seed=1)
    manifest = write_manifest(tmp_path, clips, 1, steps=1, guidance=1.0, sample_size=[32, 48])
    out = tmp_path / "out"
    capsys.readouterr()  # building the fixture may print (DeepSpeed, when installed); the CLI output starts here
    rc = cli.main(["batch", str(manifest), "--out", str(out), "--base-dir", str(tiny["base"]), "--transformer-dir",
                   str(tiny["transformer"]), "--dtype", "fp32", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["generated"] is True and len(summary["written"]) == 2
    for path in ("01_orbit_left_gradual", "bullet"):
        files = set(os.listdir(out / "clip0" / path))
        assert files == FILES | {"generated.mp4"}
        assert probe_video(out / "clip0" / path / "generated.mp4").frame_count == 9
