"""Fixtures for tests against a real ComfyUI (``COMFYUI_DIR``); everything here skips without it.

One ComfyUI server per test session, started from ``COMFYUI_DIR`` with ``--cpu`` and
``--base-directory`` pointing at a temporary folder that holds:

- ``custom_nodes/ComfyUI-TrajectoryCrafter`` → a link to this repository (the pack under test,
  and no other custom node);
- ``models/trajectorycrafter/`` → tiny random-init checkpoints in the official layouts
  (built on demand by :func:`tiny_models`);
- ``input/``, ``output/``, ``temp/``, ``user/`` → ComfyUI's folders for this run.

The Python that runs ComfyUI is ``COMFYUI_PYTHON``, else ``$COMFYUI_DIR/venv/bin/python``, else
the one running pytest.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for _p in (REPO, REPO / "tests", Path(__file__).resolve().parent):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from comfy_server import ComfyServer, free_port, make_base  # noqa: E402

COMFYUI_DIR = os.environ.get("COMFYUI_DIR", "")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _needs_comfyui():
    if not COMFYUI_DIR:
        pytest.skip("COMFYUI_DIR is not set: no real ComfyUI to test against")
    if not (Path(COMFYUI_DIR) / "main.py").is_file():
        pytest.fail(f"COMFYUI_DIR={COMFYUI_DIR} has no main.py; point it at a ComfyUI checkout")


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("comfy_base"))


@pytest.fixture(scope="session")
def comfy(comfy_base):
    if not COMFYUI_DIR:
        pytest.skip("COMFYUI_DIR is not set")
    tiny_models(comfy_base)  # models must be in place before ComfyUI lists them
    example_inputs(comfy_base)
    yaml_path = extra_model_paths(comfy_base)
    server = ComfyServer(comfy_base, free_port(), comfy_base / "comfyui.log",
                         extra_args=["--extra-model-paths-config", str(yaml_path)])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Where browser screenshots go (``TRAJCRAFTER_SCREENSHOTS`` or a temporary folder; printed)."""
    folder = Path(os.environ.get("TRAJCRAFTER_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def fe(comfy):
    """The ComfyUI frontend of the session's server in headless Chromium (1920x1080)."""
    pytest.importorskip("playwright")
    from browser import chromium_path, frontend

    try:
        chromium_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with frontend(comfy.url, width=1920, height=1080) as page:
        yield page


def extra_model_paths(base: Path) -> Path:
    """An extra_model_paths.yaml naming a second trajectorycrafter folder, holding ``TrajectoryCrafter-extra``."""
    extra = base / "extra_models" / "trajectorycrafter"
    extra.mkdir(parents=True, exist_ok=True)
    source = base / "models" / "trajectorycrafter" / "TrajectoryCrafter"
    if source.exists() and not (extra / "TrajectoryCrafter-extra").exists():
        shutil.copytree(source, extra / "TrajectoryCrafter-extra")
    yaml_path = base / "extra_model_paths.yaml"
    yaml_path.write_text(f"trajcrafter_test:\n    base_path: {base / 'extra_models'}\n    trajectorycrafter: trajectorycrafter\n")
    return yaml_path


def example_inputs(base: Path) -> None:
    """Small real clip in the input folder (``clip.mp4``, 1296x720 p7 re-encoded small) + a txt path."""
    from trajcrafter_core.video import read_video, write_video

    media = Path(os.environ.get("TRAJCRAFTER_SHARED", REPO.parent / "shared")) / "media" / "p7.mp4"
    if media.exists():
        clip = read_video(media, max_frames=9, every_nth=2, max_side=160)
        write_video(base / "input" / "clip.mp4", clip.frames, fps=clip.fps)
    else:  # synthetic stand-in
        from trajcrafter_core.synthetic import example_clip

        clip = example_clip()
        write_video(base / "input" / "clip.mp4", clip.frames[:9], fps=8)
    trajectories = REPO.parent / "shared" / "trajectories" / "loop1.txt"
    if trajectories.exists():
        shutil.copy(trajectories, base / "input" / "loop1.txt")
    (base / "input" / "not_a_video.mp4").write_text("this is text, not a video\n")


def tiny_models(base: Path) -> None:
    """Tiny random-init checkpoints (official layouts) in ``base/models/trajectorycrafter``.

    - ``TrajectoryCrafter`` + ``CogVideoX-Fun-V1.1-5b-InP``: a working pipeline;
    - ``DepthCrafter``, ``stable-video-diffusion-img2vid-xt``, ``Depth-Anything-V2-Small-hf``;
    - ``TrajectoryCrafter-wrong``: transformer weights with the config of another model size;
    - ``CogVideoX-Fun-incomplete``: a base folder whose weights are missing.
    """
    import json

    from trajcrafter_core.depth.tiny import build_tiny_depth_models
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    target = base / "models" / "trajectorycrafter"
    target.mkdir(parents=True, exist_ok=True)
    paths = save_tiny_checkpoints(target, seed=0)
    build_tiny_depth_models(target, seed=0)
    wrong = target / "TrajectoryCrafter-wrong"
    shutil.copytree(paths["transformer"], wrong)
    cfg = json.loads((wrong / "config.json").read_text())
    cfg["attention_head_dim"] = int(cfg["attention_head_dim"]) * 2
    (wrong / "config.json").write_text(json.dumps(cfg))
    incomplete = target / "CogVideoX-Fun-incomplete"
    for sub in ("vae", "text_encoder", "tokenizer", "scheduler"):
        shutil.copytree(paths["base"] / sub, incomplete / sub)
    for weights in incomplete.glob("*/*.safetensors"):
        weights.unlink()
