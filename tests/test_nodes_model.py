"""Load TrajectoryCrafter Model + Sampler on tiny random-init checkpoints in the official layouts
(built here; nothing downloaded): the node equals the core pipeline call, reports every step,
stops on Cancel and frees the model, and bad inputs / folders give our messages."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from nodes_harness import node_class, node_module, run_node
from tiny_models import models_env  # noqa: F401 (fixture)

errors = pytest.importorskip("trajcrafter_core.errors")
TrajCrafterError, MissingFilesError = errors.TrajCrafterError, errors.MissingFilesError

T, H, W = 9, 16, 32


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    root = tmp_path_factory.mktemp("models")
    save_tiny_checkpoints(root / "trajectorycrafter", seed=0)
    return root


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    source = torch.rand(T, H, W, 3, generator=g)
    renders = source.clone()
    hole = torch.zeros(T, H, W)
    hole[:, :, W // 2:] = 1.0
    renders[hole.bool()] = 0.0
    return source, renders, hole


def load(**kw):
    args = dict(transformer="TrajectoryCrafter", base_model="CogVideoX-Fun-V1.1-5b-InP", precision="fp32",
                memory_preset="custom", memory_mode="model_offload", vae_tiling=False, attention="sdpa",
                download_missing=False)
    args.update(kw)
    return run_node("TrajCrafterLoadModel", **args)[0]


def conditions(inputs, reference_frames=4, reference_from="start"):
    from trajcrafter_core.redirect import conditions_from_images

    source, renders, hole = inputs
    return conditions_from_images(source, renders, hole, num_reference_frames=reference_frames,
                                  reference_from=reference_from)


def sample(model, inputs, reference_frames=4, reference_from="start", **kw):
    args = dict(model=model, conditions=conditions(inputs, reference_frames, reference_from), prompt="a textured room",
                steps=1, guidance=1.0, seed=5, scheduler="DDIM_Origin")
    args.update(kw)
    return run_node("TrajCrafterSampler", **args)[0]


@pytest.fixture(scope="module")
def model(models_root):
    import os

    old = os.environ.get("TRAJCRAFTER_MODELS_DIR")
    os.environ["TRAJCRAFTER_MODELS_DIR"] = str(models_root)
    try:
        return load()
    finally:
        if old is None:
            del os.environ["TRAJCRAFTER_MODELS_DIR"]
        else:
            os.environ["TRAJCRAFTER_MODELS_DIR"] = old


def test_model_folders_are_listed_with_official_names_first(models_env):
    spec = node_class("TrajCrafterLoadModel").INPUT_TYPES()["required"]
    assert spec["transformer"][0] == ["TrajectoryCrafter"]  # the base folder is not offered as a transformer
    assert spec["base_model"][0] == ["CogVideoX-Fun-V1.1-5b-InP"]


def test_sampler_node_equals_the_core_pipeline_and_reports_each_step(model, inputs):
    bridge = node_module("bridge")
    seen = []
    bridge.Progress.listeners.append(lambda done, total: seen.append((done, total)))
    try:
        out = sample(model, inputs, steps=2, reference_from="end", scheduler="Euler")
    finally:
        bridge.Progress.listeners.clear()
    assert out.shape == (T, H, W, 3) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert seen == [(1, 2), (2, 2)]
    source, renders, hole = inputs
    pipe = model.pipe
    pipe.set_scheduler("Euler")
    ref = pipe(source, renders, hole, prompt="a textured room", num_inference_steps=2, guidance_scale=1.0,
               generator=torch.Generator("cpu").manual_seed(5), num_reference_frames=4, reference_from="end")
    assert torch.equal(out, ref.frames)


def test_sampler_passes_the_conditions_reference_and_prompts(model, inputs, monkeypatch):
    calls = []

    class RecordingPipe:  # the node's contract with the pipeline: which arguments it passes
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def __call__(self, source, render, hole_mask, **kwargs):
            from trajcrafter_core.pipeline import TrajectoryCrafterOutput

            calls.append(dict(kwargs, source=source))
            return TrajectoryCrafterOutput(source, [])

    monkeypatch.setattr(model, "pipe", RecordingPipe(model.pipe))
    source = inputs[0]
    sample(model, inputs, reference_from="end")
    sample(model, inputs, negative_prompt="  blurry ")
    assert torch.equal(calls[0]["reference"], source[-4:]) and torch.equal(calls[1]["reference"], source[:4])
    assert calls[0]["negative_prompt"] is None and calls[1]["negative_prompt"] == "blurry"
    assert calls[0]["num_inference_steps"] == 1 and calls[0]["shape_policy"] == "pad"
    assert calls[0]["generator"].initial_seed() == 5
    with pytest.raises(TrajCrafterError, match="conditions must come from Render Views"):
        run_node("TrajCrafterSampler", model=model, conditions=inputs, prompt="", steps=1, guidance=1.0, seed=0,
                 scheduler="DDIM_Origin")


def test_cancel_during_sampling_stops_frees_and_the_next_run_works(model, inputs):
    bridge = node_module("bridge")
    steps_seen = []

    def cancel_after_first(done, total):
        steps_seen.append(done)
        if done == 1 and total == 3:
            bridge.request_interrupt()

    bridge.Progress.listeners.append(cancel_after_first)
    try:
        with pytest.raises(bridge.Interrupted):
            sample(model, inputs, steps=3)
    finally:
        bridge.Progress.listeners.clear()
    assert steps_seen == [1]
    assert all(p.device.type == "cpu" for m in model.pipe.components().values() for p in m.parameters())
    assert sample(model, inputs).shape == (T, H, W, 3)


def test_full_gpu_mode_parks_weights_on_the_offload_device(models_env, inputs):
    m = load(memory_mode="full_gpu")
    assert m.mode == "none"
    out = sample(m, inputs)
    assert out.shape == (T, H, W, 3)
    assert m.pipe.device == node_module("bridge").offload_device()


@pytest.mark.parametrize("case", ["mask_size", "render_size"])
def test_bad_inputs_give_our_message(model, inputs, case):
    from trajcrafter_core.redirect import conditions_from_images

    source, renders, hole = inputs
    if case == "mask_size":
        with pytest.raises(TrajCrafterError, match=r"mask is \[9, 16, 16\] but render is \[9, 16, 32\]"):
            conditions_from_images(source, renders, hole[:, :, :16])
        bad = conditions(inputs)
        bad.mask = hole[:, :, :16]  # conditions changed after they were made: the sampler checks again
        with pytest.raises(TrajCrafterError, match=r"hole_mask is \[9, 16, 16\] but render is \[9, 16, 32\]"):
            run_node("TrajCrafterSampler", model=model, conditions=bad, prompt="", steps=1, guidance=1.0, seed=0,
                     scheduler="DDIM_Origin")
    else:
        with pytest.raises(TrajCrafterError, match="render is"):
            conditions_from_images(source, renders[:, :, :16], hole)


def test_other_frame_counts_and_sizes_are_padded_and_trimmed_back_with_a_log_line(model, inputs, caplog):
    assert "padded" in node_class("TrajCrafterSampler").DESCRIPTION
    clip = tuple(x[:8, :, :24] for x in inputs)  # 8 frames (not 8m+1), width 24 (not a multiple of 16)
    with caplog.at_level("WARNING"):
        out = sample(model, clip)
    assert out.shape == (8, H, 24, 3)
    assert "8 frames padded to 9" in caplog.text and "trimmed back to 8 frames of 16x24" in caplog.text
    source, renders, hole = clip
    model.pipe.set_scheduler("DDIM_Origin")
    ref = model.pipe(source, renders, hole, prompt="a textured room", num_inference_steps=1, guidance_scale=1.0,
                     generator=torch.Generator("cpu").manual_seed(5), num_reference_frames=4,
                     reference_from="start", shape_policy="pad")
    assert torch.equal(out, ref.frames)


def test_missing_model_files_name_the_files_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(tmp_path))
    with pytest.raises(MissingFilesError) as err:
        load()
    msg = str(err.value)
    folder = tmp_path / "trajectorycrafter"
    assert str(folder) in msg
    assert ("vae/config.json" in msg and "CogVideoX-Fun-V1.1-5b-InP" in msg) or "config.json" in msg


def test_wrong_checkpoint_in_a_model_folder_is_named(models_env, tmp_path, monkeypatch):
    root = tmp_path / "trajectorycrafter"
    shutil.copytree(models_env, root)
    cfg_path = root / "TrajectoryCrafter" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["attention_head_dim"] = int(cfg["attention_head_dim"]) * 2  # weights of another model size
    cfg_path.write_text(json.dumps(cfg))
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(tmp_path))
    with pytest.raises(TrajCrafterError, match="TrajectoryCrafter") as err:
        load()
    assert "shape" in str(err.value) or "config" in str(err.value)


def test_download_offline_fails_fast_naming_files_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    with pytest.raises(MissingFilesError) as err:
        load(download_missing=True)
    msg = str(err.value)
    assert "Could not download alibaba-pai/CogVideoX-Fun-V1.1-5b-InP" in msg
    assert str(tmp_path / "trajectorycrafter" / "CogVideoX-Fun-V1.1-5b-InP") in msg and "vae/config.json" in msg


def test_nothing_is_executed_from_a_model_folder_and_pickles_are_refused(models_env, tmp_path, monkeypatch):
    """A folder carrying Python code (auto_map / custom classes) loads without running it; a folder
    with only pickled weights is refused with a message saying why."""
    root = tmp_path / "trajectorycrafter"
    shutil.copytree(models_env, root)
    marker = tmp_path / "code_ran"
    evil = f"open({str(marker)!r}, 'w').write('x')\n"
    for folder in (root / "TrajectoryCrafter", root / "CogVideoX-Fun-V1.1-5b-InP" / "text_encoder"):
        (folder / "evil.py").write_text(evil)
        (folder / "__init__.py").write_text(evil)
        cfg = json.loads((folder / "config.json").read_text())
        cfg["auto_map"] = {"AutoModel": "evil.Evil", "AutoConfig": "evil.EvilConfig"}
        (folder / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(tmp_path))
    load()
    assert not marker.exists()

    weights = root / "TrajectoryCrafter" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(MissingFilesError, match="(?i)pickle"):
        load()
    assert not marker.exists()
