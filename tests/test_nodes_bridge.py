"""The ComfyUI bridge: plain fallbacks without ComfyUI, and the ComfyUI branch against stand-in
modules that have the real API's names and signatures (the integration tests use the real ones)."""

from __future__ import annotations

import os
import sys
import types

import pytest

from nodes_harness import node_module

bridge = node_module("bridge")


@pytest.fixture()
def fake_comfy(tmp_path, monkeypatch):
    """Stand-ins for folder_paths, comfy.model_management and comfy.utils, as ComfyUI 0.8 has them."""
    calls = []

    class InterruptProcessingException(Exception):
        pass

    mm = types.ModuleType("comfy.model_management")
    mm.InterruptProcessingException = InterruptProcessingException
    mm.interrupted = False
    mm.get_torch_device = lambda: "cuda:7"
    mm.intermediate_device = lambda: "cpu:inter"
    mm.unet_offload_device = lambda: "cpu:offload"
    mm.soft_empty_cache = lambda force=False: calls.append("soft_empty_cache")
    mm.free_memory = lambda n, device: calls.append(("free_memory", n, device))

    def throw():
        if mm.interrupted:
            mm.interrupted = False
            raise InterruptProcessingException()

    mm.throw_exception_if_processing_interrupted = throw
    mm.interrupt_current_processing = lambda value=True: setattr(mm, "interrupted", value)

    utils = types.ModuleType("comfy.utils")

    class ProgressBar:
        def __init__(self, total, node_id=None):
            self.total = total
            calls.append(("bar", total))

        def update_absolute(self, value, total=None, preview=None):
            calls.append(("update", value, total))

    utils.ProgressBar = ProgressBar
    comfy = types.ModuleType("comfy")
    comfy.model_management, comfy.utils = mm, utils

    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(tmp_path / "models")
    yaml_dir = str(tmp_path / "from_yaml")
    fp.folder_names_and_paths = {"trajectorycrafter": ([yaml_dir], set())}  # as extra_model_paths.yaml leaves it
    fp.get_folder_paths = lambda name: list(fp.folder_names_and_paths[name][0])
    fp.get_input_directory = lambda: str(tmp_path / "input")
    fp.get_output_directory = lambda: str(tmp_path / "output")
    fp.get_temp_directory = lambda: str(tmp_path / "temp")
    for name, module in (("comfy", comfy), ("comfy.model_management", mm), ("comfy.utils", utils), ("folder_paths", fp)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(bridge, "_modules", {})
    yield types.SimpleNamespace(calls=calls, mm=mm, fp=fp, yaml_dir=yaml_dir, root=tmp_path)
    bridge._modules.clear()


def test_fallbacks_without_comfyui(tmp_path, monkeypatch):
    monkeypatch.setattr(bridge, "_modules", {})
    monkeypatch.setenv("TRAJCRAFTER_INPUT_DIR", str(tmp_path / "in"))
    monkeypatch.setenv("TRAJCRAFTER_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("TRAJCRAFTER_DEVICE", "cpu")
    assert not bridge.in_comfyui()
    assert str(bridge.torch_device()) == "cpu" and str(bridge.intermediate_device()) == "cpu"
    assert bridge.input_directory() == str(tmp_path / "in")
    assert bridge.model_folders() == [str(tmp_path / "m" / "trajectorycrafter")]
    bridge.check_interrupt()  # nothing pending
    bridge.request_interrupt()
    with pytest.raises(bridge.Interrupted) as exc:
        bridge.check_interrupt()
    assert bridge.is_interrupt(exc.value)
    bridge.check_interrupt()  # consumed
    bridge.soft_empty_cache()
    bridge.make_room(10**9)


def test_comfyui_devices_progress_interrupt_and_memory(fake_comfy):
    assert bridge.in_comfyui()
    assert bridge.torch_device() == "cuda:7"
    assert bridge.intermediate_device() == "cpu:inter" and bridge.offload_device() == "cpu:offload"
    bar = bridge.Progress(4)
    bar.update()
    bar.update_absolute(3, total=6)
    assert ("bar", 4) in fake_comfy.calls and ("update", 1, 4) in fake_comfy.calls and ("update", 3, 6) in fake_comfy.calls
    bridge.request_interrupt()
    with pytest.raises(fake_comfy.mm.InterruptProcessingException) as exc:
        bridge.check_interrupt()
    assert bridge.is_interrupt(exc.value) and not bridge.is_interrupt(ValueError())
    bridge.soft_empty_cache()
    import torch

    bridge.make_room(123, torch.device("cuda", 0))
    bridge.make_room(456, torch.device("cpu"))  # nothing to free on the CPU
    assert "soft_empty_cache" in fake_comfy.calls and ("free_memory", 123, torch.device("cuda", 0)) in fake_comfy.calls
    assert not any(c[0] == "free_memory" and c[1] == 456 for c in fake_comfy.calls if isinstance(c, tuple))


def test_model_folder_keeps_extra_model_paths_first(fake_comfy):
    default = os.path.join(fake_comfy.fp.models_dir, "trajectorycrafter")
    assert bridge.model_folders() == [fake_comfy.yaml_dir, default]
    bridge.register_model_folders()  # idempotent
    assert bridge.model_folders() == [fake_comfy.yaml_dir, default]
    del fake_comfy.fp.folder_names_and_paths["trajectorycrafter"]
    assert bridge.model_folders() == [default]


def test_model_dirs_are_found_in_every_search_path(fake_comfy):
    os.makedirs(os.path.join(fake_comfy.yaml_dir, "A"))
    os.makedirs(os.path.join(fake_comfy.fp.models_dir, "trajectorycrafter", "group", "B"))
    found = bridge.list_model_dirs(accept=lambda p: os.path.basename(p) in ("A", "B"), descend=lambda p: True)
    assert found == ["A", "group/B"]
    assert bridge.find_model_dir("group/B").endswith(os.path.join("group", "B"))
    assert bridge.find_model_dir("../etc") is None and bridge.find_model_dir("group/../../x") is None


def test_annotated_files_resolve_in_comfyui_folders(fake_comfy):
    out = fake_comfy.root / "output"
    out.mkdir()
    (out / "clip.mp4").write_bytes(b"x")
    assert bridge.resolve_input_file("clip.mp4 [output]") == str(out / "clip.mp4")
    with pytest.raises(Exception, match="does not exist"):
        bridge.resolve_input_file("clip.mp4")  # not in input/
