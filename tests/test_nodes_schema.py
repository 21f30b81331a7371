"""Node definitions: registry, tooltips, descriptions, display names, signatures, cheap import."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap

import pytest

from nodes_harness import PACK, REPO, load_pack

EXPECTED_NODES = {  # id -> category; ids are what workflows save and never change
    "TrajCrafterLoadVideo": "input",
    "TrajCrafterSyntheticScene": "input",
    "TrajCrafterLoadDepthModel": "depth",
    "TrajCrafterEstimateDepth": "depth",
    "TrajCrafterDepthFromImage": "depth",
    "TrajCrafterCameraTargetPose": "camera",
    "TrajCrafterCameraPreset": "camera",
    "TrajCrafterCameraTrajectoryFile": "camera",
    "TrajCrafterImportCameraPath": "camera",
    "TrajCrafterCameraFromLoad3D": "camera",
    "TrajCrafterCameraTrajectory": "camera",
    "TrajCrafterCameraPaths": "camera",
    "TrajCrafterExportScene3D": "camera",
    "TrajCrafterLiftPointCloud": "render",
    "TrajCrafterRenderViews": "render",
    "TrajCrafterRenderManyViews": "render",
    "TrajCrafterLoadModel": "sampling",
    "TrajCrafterSampler": "sampling",
    "TrajCrafterSamplingOptions": "sampling",
    "TrajCrafterSamplerMany": "sampling",
}


@pytest.fixture(scope="module")
def pack():
    return load_pack()


@pytest.fixture(scope="module")
def definitions(pack):
    from importlib import import_module

    return import_module(f"{PACK}.nodes").NODE_DEFS


def test_every_node_module_imports(pack):
    from importlib import import_module

    assert import_module(f"{PACK}.nodes").DISABLED_MODULES == {}


def test_registry_categories_and_display_names(pack, definitions):
    assert set(pack.NODE_CLASS_MAPPINGS) == set(pack.NODE_DISPLAY_NAME_MAPPINGS) == set(EXPECTED_NODES)
    core = json.loads((REPO / "tests" / "data" / "core_object_info.json").read_text())
    core_names = {info.get("display_name") for info in core.values()} | set(core)
    for name, display in pack.NODE_DISPLAY_NAME_MAPPINGS.items():
        # the editor's search matches ids and display names: "trajectorycrafter" finds every node
        assert "trajectorycrafter" in display.lower(), name
        assert display not in core_names, f"{display} collides with a core node"
        assert pack.NODE_CLASS_MAPPINGS[name].CATEGORY == f"TrajectoryCrafter/{EXPECTED_NODES[name]}"
        assert "trajectorycrafter" in definitions[name].aliases
    assert len(set(pack.NODE_DISPLAY_NAME_MAPPINGS.values())) == len(EXPECTED_NODES)


@pytest.mark.parametrize("name", sorted(EXPECTED_NODES))
def test_node_definition_is_complete(pack, definitions, name):
    cls, d = pack.NODE_CLASS_MAPPINGS[name], definitions[name]
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 60
    inputs = cls.INPUT_TYPES()
    json.dumps(inputs)  # /object_info must serialise
    params = inspect.signature(d.run).parameters
    for section in ("required", "optional"):
        for input_name, spec in inputs.get(section, {}).items():
            assert len(spec) == 2 and spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
            assert input_name in params, f"{name}'s run function does not take {input_name}"
            if section == "optional":
                assert params[input_name].default is not inspect.Parameter.empty
            options = spec[1]
            if spec[0] in ("INT", "FLOAT"):
                assert options["min"] <= options["default"] <= options["max"], (name, input_name)
            if isinstance(spec[0], list) and "default" in options:
                assert options["default"] in spec[0], (name, input_name)
    required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
    assert required <= set(inputs["required"]), f"{name} needs {required - set(inputs['required'])}"
    n_out = len(cls.RETURN_TYPES)
    assert len(cls.RETURN_NAMES) == n_out == len(cls.OUTPUT_TOOLTIPS) == len(d.outputs)
    if d.validate is not None:  # ComfyUI passes the widget values the validator names, by name
        names = inspect.getfullargspec(cls.VALIDATE_INPUTS).args[1:]
        assert names == list(inspect.signature(d.validate).parameters)
        assert set(names) <= {i.name for i in d.inputs if i.is_widget}


def test_importing_the_pack_is_cheap_and_touches_no_gpu():
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from nodes_harness import load_pack
        pack = load_pack()
        heavy = [m for m in ("torch", "numpy", "diffusers", "transformers", "av", "safetensors", "PIL") if m in sys.modules]
        print(len(pack.NODE_CLASS_MAPPINGS), heavy)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    count, heavy = out.stdout.strip().split(" ", 1)
    assert int(count) >= 5 and heavy == "[]"


def test_a_node_module_with_a_missing_dependency_is_logged_and_the_rest_still_load():
    code = textwrap.dedent(
        f"""
        import importlib, logging, sys
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
        real = importlib.import_module
        def fake(name, package=None):
            if name == ".render_nodes":  # as if it imported a package that is not installed
                raise ModuleNotFoundError("No module named 'fancy_dependency'", name="fancy_dependency")
            return real(name, package)
        importlib.import_module = fake
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from nodes_harness import load_pack
        print("NODES", sorted(load_pack().NODE_CLASS_MAPPINGS))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "nodes from render_nodes disabled" in out.stdout and "fancy_dependency" in out.stdout
    assert "TrajCrafterRenderViews" not in out.stdout and "TrajCrafterLoadVideo" in out.stdout


def test_a_missing_package_turns_its_feature_off_with_an_install_message(monkeypatch, tmp_path):
    import importlib.util

    from nodes_harness import node_module, run_node

    common = node_module("common")
    real = importlib.util.find_spec
    monkeypatch.setattr(common.importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    assert common.missing_packages("video files") == ["av"]
    monkeypatch.setenv("TRAJCRAFTER_INPUT_DIR", str(tmp_path))
    (tmp_path / "clip.mp4").write_bytes(b"x")
    from trajcrafter_core.errors import TrajCrafterError

    with pytest.raises(TrajCrafterError, match="video files: turned off .* av .*pip install av"):
        run_node("TrajCrafterLoadVideo", video="clip.mp4", frame_cap=1, skip_first=0, every_nth=1, max_size=0)


def test_missing_packages_are_logged_when_the_pack_loads():
    code = textwrap.dedent(
        f"""
        import importlib.util, logging, sys
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name in ("diffusers", "google.protobuf") else real(name, *a)
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from nodes_harness import load_pack
        print("NODES", len(load_pack().NODE_CLASS_MAPPINGS))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "depth models disabled, missing Python package(s): diffusers" in out.stdout
    assert "TrajectoryCrafter model disabled, missing Python package(s): diffusers, protobuf" in out.stdout
    assert f"NODES {len(EXPECTED_NODES)}" in out.stdout  # nodes stay registered; they explain what to install when run
