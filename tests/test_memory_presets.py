"""Memory presets (``trajcrafter_core.memory``): each name maps to its pipeline options, the
same everywhere — ``ModelSpec(memory=...)``, ``from_pretrained(memory=...)``, the loader node's
``memory_preset`` and the CLI's ``--memory`` — and a preset contradicting an explicit option is
refused, naming both. (Whether each fits its card: ``tests/test_memory_plan.py``.)"""

from __future__ import annotations

import json

import pytest
import torch

from nodes_harness import run_node
from test_cli import _bad, depth_npy, no_decoding, run  # noqa: F401 (fixtures)
from tiny_models import baseline, inputs, models_env, one_thread, pipe, tiny  # noqa: F401 (fixtures)
from tiny_models import run as run_pipe
from trajcrafter_core import memory
from trajcrafter_core.errors import TrajCrafterError
from trajcrafter_core.specs import ModelSpec

EXPECTED = {
    "fastest": dict(offload="none", fp8=False, vae_tiling=False, vae_slicing=False, blocks_per_group=1),
    "24 GB": dict(offload="model", fp8=False, vae_tiling=False, vae_slicing=False, blocks_per_group=1),
    "16 GB": dict(offload="block", fp8=False, vae_tiling=True, vae_slicing=False, blocks_per_group=1),
}


def test_presets_map_to_their_pipeline_options():
    assert memory.PRESET_NAMES == tuple(EXPECTED)
    for name, options in EXPECTED.items():
        assert memory.preset_options(name) == options
    assert memory.MEMORY_PRESETS["24 GB"].budget_gib == 24 and memory.MEMORY_PRESETS["16 GB"].budget_gib == 16
    assert memory.MEMORY_PRESETS["fastest"].budget_gib is None


@pytest.mark.parametrize("spelling", ["16gb", "16 GB", "16_gb", " 16-GB "])
def test_preset_names_in_any_spelling(spelling):
    assert memory.canonical_memory_preset(spelling) == "16 GB"


def test_unknown_preset_lists_the_presets():
    with pytest.raises(TrajCrafterError, match=r"unknown memory preset '12gb'; choose one of 'fastest', '24 GB', '16 GB'"):
        memory.preset_options("12gb")


def test_fit_rule():
    assert memory.fits(13.0, 16.0)  # 13 x 1.1 + 1 = 15.3
    assert not memory.fits(14.0, 16.0)  # 16.4
    assert memory.fits(1000.0, None)


def test_model_spec_spells_the_preset_out():
    spec = ModelSpec("base", "transformer", memory="16gb")
    assert spec.memory == "16 GB"
    assert {key: getattr(spec, key) for key in EXPECTED["16 GB"]} == EXPECTED["16 GB"]
    options = spec.options()
    assert "memory" not in options and options["offload"] == "block" and options["vae_tiling"] is True
    # an option equal to the preset's, or left at its default, is fine; a different one is refused
    assert ModelSpec("b", "t", memory="24 GB", offload="model").offload == "model"
    with pytest.raises(TrajCrafterError, match=r"memory preset '24 GB' sets offload='model' but offload='block'"):
        ModelSpec("b", "t", memory="24 GB", offload="block")
    with pytest.raises(TrajCrafterError, match="blocks per group must be >= 1"):
        ModelSpec("b", "t", offload="block", blocks_per_group=0)


def test_from_pretrained_applies_a_preset(tiny, inputs, baseline):
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    load = lambda **kw: TrajectoryCrafterPipeline.from_pretrained(  # noqa: E731
        tiny["base"], tiny["transformer"], dtype="fp32", device="cpu", **kw)
    model = load(memory="24gb")
    assert model.offload == "model" and not model.vae.use_tiling
    small = load(memory="16 GB")
    assert small.offload == "block" and small.vae.use_tiling and not small.vae.use_slicing
    # block offload computes the same thing; tiles only start above the tiny video's size
    assert torch.allclose(run_pipe(small, inputs, prompt="a cat"), baseline, atol=1e-5)
    assert load(memory="fastest", vae_tiling=False).offload == "none"  # a default never contradicts
    with pytest.raises(TrajCrafterError, match="sets fp8=False but fp8=True"):
        load(memory="16 GB", fp8=True)


# ---------------------------------------------------------------------------------- node


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    root = tmp_path_factory.mktemp("models")
    save_tiny_checkpoints(root / "trajectorycrafter", seed=0)
    return root


def load_node(**kw):
    args = dict(transformer="TrajectoryCrafter", base_model="CogVideoX-Fun-V1.1-5b-InP", precision="fp32",
                memory_preset="custom", memory_mode="model_offload", vae_tiling=False, attention="sdpa",
                download_missing=False)
    args.update(kw)
    return run_node("TrajCrafterLoadModel", **args)[0]


def test_loader_node_offers_the_presets_before_the_custom_options():
    from nodes_harness import node_class

    required = node_class("TrajCrafterLoadModel").INPUT_TYPES()["required"]
    names, spec = required["memory_preset"]
    assert names == ["fastest", "24 GB", "16 GB", "custom"] and spec["default"] == "24 GB"
    order = list(required)
    assert order.index("memory_preset") < order.index("memory_mode") < order.index("vae_tiling")


@pytest.mark.parametrize("preset, offload, tiling", [("24 GB", "model", False), ("16 GB", "block", True),
                                                     ("fastest", "none", False)])
def test_loader_node_applies_a_preset(models_env, preset, offload, tiling):
    # memory_mode / vae_tiling are not used with a preset
    m = load_node(memory_preset=preset, memory_mode="block_offload", vae_tiling=not tiling)
    assert m.mode == offload and m.pipe.offload == offload and m.pipe.vae.use_tiling is tiling


def test_loader_node_custom_keeps_memory_mode_and_vae_tiling(models_env):
    m = load_node(memory_preset="custom", memory_mode="block_offload", vae_tiling=True)
    assert m.mode == "block" and m.pipe.vae.use_tiling
    m = load_node(memory_mode="full_gpu")
    assert m.mode == "none" and not m.pipe.vae.use_tiling


def test_loader_node_refuses_an_unknown_preset(models_env):
    with pytest.raises(TrajCrafterError, match="unknown memory preset '8 GB'"):
        load_node(memory_preset="8 GB")


# ---------------------------------------------------------------------------------- CLI


def _generate(media_dir, tmp_path, depth, *extra):
    return ["generate", media_dir / "p7.mp4", "--base-dir", tmp_path / "base", "--transformer-dir",
            tmp_path / "transformer", "--depth", depth, "--frames", 5, "--every-nth", 2, "--max-side", 128,
            "--out", tmp_path / "g", *extra]


@pytest.mark.parametrize("extra, message", [
    (["--memory", "12gb"], "error: --memory: unknown memory preset '12gb'; choose one of 'fastest', '24 GB', '16 GB'"),
    (["--memory", "24gb", "--offload", "block"], "error: --memory: memory preset '24 GB' sets offload='model' but "
                                                 "offload='block' was also given"),
])
def test_cli_memory_is_checked_before_any_work(media_dir, tmp_path, capsys, depth_npy, no_decoding, extra, message):
    assert _bad(capsys, _generate(media_dir, tmp_path, depth_npy, *extra)).startswith(message)


def test_cli_memory_reaches_the_pipeline(media_dir, tmp_path, capsys, depth_npy, monkeypatch):
    from trajcrafter_core.fixtures import save_tiny_checkpoints
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    models = save_tiny_checkpoints(tmp_path / "models")
    seen = []

    def from_spec(spec, **_):
        seen.append(spec)
        raise KeyboardInterrupt  # stop once the model would load

    monkeypatch.setattr(TrajectoryCrafterPipeline, "from_spec", staticmethod(from_spec))
    argv = _generate(media_dir, tmp_path, depth_npy, "--memory", "16gb", "--target-pose", 0, -10, 0.1, 0, 0)
    argv[argv.index("--base-dir") + 1] = models["base"]
    argv[argv.index("--transformer-dir") + 1] = models["transformer"]
    rc, _, err = run(capsys, *argv)
    assert rc == 130, err
    (spec,) = seen
    assert spec.memory == "16 GB" and spec.offload == "block" and spec.vae_tiling
    assert json.loads(json.dumps(spec.options()))["offload"] == "block"
