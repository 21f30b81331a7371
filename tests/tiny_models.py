"""Tiny random-init models and inputs shared by the model/pipeline/node test files.

Import what a test file needs (``tests/`` is on ``sys.path``: pytest inserts each test file's
folder in its default ``prepend`` import mode); an imported fixture works like one defined in
the importing file, ``autouse`` included::

    from tiny_models import one_thread, tiny, pipe, inputs, baseline, run  # noqa: F401

- :func:`one_thread` — autouse, module scope: torch on one thread while the module runs.
- :func:`tiny` — official-layout folders ``{"base", "transformer"}`` written once per module;
  the seed is the module's ``TINY_SEED`` (default :data:`DEFAULT_SEED`).
- :func:`pipe`, :func:`inputs`, :func:`baseline`, :func:`run` — the sampler on ``T x H x W``
  inputs.
- :func:`models_env` — point ``TRAJCRAFTER_MODELS_DIR`` at the module's ``models_root`` fixture.
"""

from __future__ import annotations

import pytest
import torch

T, H, W = 9, 16, 32
STEPS = 1
DEFAULT_SEED = 11


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread than on threads shared with other processes (and CPU
    results depend on the thread count: bit-exact comparisons need the same one throughout)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, request):
    """Tiny CogVideoX-Fun base + TrajectoryCrafter transformer folders (``TINY_SEED`` of the module)."""
    from trajcrafter_core.fixtures import save_tiny_checkpoints

    seed = getattr(request.module, "TINY_SEED", DEFAULT_SEED)
    return save_tiny_checkpoints(tmp_path_factory.mktemp("tiny"), seed=seed)


@pytest.fixture(scope="module")
def pipe(tiny):
    """The float32 CPU pipeline loaded from :func:`tiny`."""
    from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

    return TrajectoryCrafterPipeline.from_pretrained(tiny["base"], tiny["transformer"], dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def inputs():
    """``(source, render, hole)`` of ``T x H x W`` (see ``fixtures.tiny_video_inputs``)."""
    from trajcrafter_core.fixtures import tiny_video_inputs

    return tiny_video_inputs(T, H, W, seed=0)


def run(pipe, inputs, seed=0, **kwargs):
    """The frames of ``pipe`` on ``inputs`` (overridable as ``source=``/``render=``/``hole_mask=``)
    with :data:`STEPS` steps, 5 reference frames and a generator seeded with ``seed``."""
    return run_output(pipe, inputs, seed, **kwargs).frames


def run_output(pipe, inputs, seed=0, **kwargs):
    """Like :func:`run`, the whole :class:`~trajcrafter_core.pipeline.TrajectoryCrafterOutput`."""
    source, render, hole = inputs
    kwargs.setdefault("num_inference_steps", STEPS)
    kwargs.setdefault("num_reference_frames", 5)
    return pipe(kwargs.pop("source", source), kwargs.pop("render", render), kwargs.pop("hole_mask", hole),
                generator=torch.Generator().manual_seed(seed), **kwargs)


@pytest.fixture(scope="module")
def baseline(pipe, inputs):
    """The output of ``run(pipe, inputs, prompt="a cat")``."""
    return run(pipe, inputs, prompt="a cat")


@pytest.fixture()
def models_env(models_root, monkeypatch):
    """``TRAJCRAFTER_MODELS_DIR`` set to the module's ``models_root``; returns its
    ``trajectorycrafter`` folder."""
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(models_root))
    return models_root / "trajectorycrafter"
