"""The one download policy (trajcrafter_core.hub): only the files asked for and never pickles,
all or nothing, a fast offline failure, progress and cancel."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trajcrafter_core import hub
from trajcrafter_core.errors import MissingFilesError

from fake_hub import FakeHub

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def repo(tmp_path):
    root = tmp_path / "repo"
    for name in ("config.json", "model.safetensors", "model.bin", "sub/weights.pt", "sub/config.json", "README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    return root


def test_selection_never_includes_pickles():
    files = ["config.json", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "model.ckpt",
             "vae/diffusion_pytorch_model.safetensors", "vae/weights.pt", "tokenizer/spiece.model", "README.md"]
    assert hub.select_files(files, ["*.json", "*.safetensors", "vae/*", "tokenizer/*"]) == [
        "config.json", "diffusion_pytorch_model.safetensors", "tokenizer/spiece.model", "vae/diffusion_pytorch_model.safetensors"]


def test_download_fetches_the_matching_files_with_progress(repo, tmp_path, monkeypatch):
    fake = FakeHub(monkeypatch, {"o/r": repo})
    seen = []
    target = hub.download("o/r", tmp_path / "out" / "model", patterns=["*"], progress=lambda d, t: seen.append((d, t)))
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "README.md", "config.json", "model.safetensors", "sub/config.json"]
    assert [f for _, f in fake.calls] == ["README.md", "config.json", "model.safetensors", "sub/config.json"]
    assert seen[-1] == (4000, 4000) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert sorted(os.listdir(tmp_path / "out")) == ["model"]  # no staging folder left beside it


def test_named_pickles_are_dropped_and_absent_files_named(repo, tmp_path, monkeypatch):
    fake = FakeHub(monkeypatch, {"o/r": repo})
    hub.download("o/r", tmp_path / "m", files=["config.json", "model.bin"])
    assert [f for _, f in fake.calls] == ["config.json"]
    with pytest.raises(MissingFilesError, match="does not hold nothing.json"):
        hub.download("o/r", tmp_path / "m2", files=["nothing.json"])
    assert not (tmp_path / "m2").exists()


def test_failure_midway_keeps_the_folder_as_it_was(repo, tmp_path, monkeypatch):
    target = tmp_path / "models" / "model"
    target.mkdir(parents=True)
    (target / "config.json").write_text("mine")
    FakeHub(monkeypatch, {"o/r": repo}, fail_after=1)
    with pytest.raises(MissingFilesError, match=r"Could not download o/r .*ConnectionError") as err:
        hub.download("o/r", target, patterns=["*.json", "*.safetensors"], instructions="Put them there.")
    assert "Put them there." in str(err.value)
    assert (target / "config.json").read_text() == "mine" and os.listdir(target) == ["config.json"]
    assert os.listdir(tmp_path / "models") == ["model"]


def test_cancel_stops_between_files_and_keeps_nothing(repo, tmp_path, monkeypatch):
    FakeHub(monkeypatch, {"o/r": repo})
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) == 2

    with pytest.raises(hub.DownloadCancelled):
        hub.download("o/r", tmp_path / "a" / "m", patterns=["*"], cancel=cancel)
    assert not (tmp_path / "a").exists()

    class Interrupt(Exception):
        pass

    def interrupt():
        raise Interrupt()

    with pytest.raises(Interrupt):  # the host's own interrupt passes through unchanged
        hub.download("o/r", tmp_path / "b" / "m", patterns=["*"], cancel=interrupt)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "unreachable"])
def test_offline_fails_within_seconds(tmp_path, how):
    """The real huggingface_hub in a fresh process (it reads its settings at import)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HOME": str(tmp_path / "hf")}
    if how == "HF_HUB_OFFLINE":
        env["HF_HUB_OFFLINE"] = "1"
    else:
        env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there
    script = (
        "import sys, time\n"
        "from trajcrafter_core import hub\n"
        "start = time.time()\n"
        "try:\n"
        "    hub.download('o/r', sys.argv[1], files=['config.json'], instructions='INSTRUCTIONS')\n"
        "except Exception as exc:\n"
        "    print('SECONDS', time.time() - start)\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m")], capture_output=True, text=True,
                            timeout=120, env=env)
    lines = result.stdout.splitlines()
    assert lines and lines[0].startswith("SECONDS"), result.stderr[-2000:]
    assert float(lines[0].split()[1]) < 5.0
    assert "MissingFilesError Could not download o/r" in result.stdout and "INSTRUCTIONS" in result.stdout
    assert not (tmp_path / "m").exists()
