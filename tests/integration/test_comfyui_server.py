"""The pack inside a real ComfyUI server: clean start-up, /object_info, workflows vs live schemas."""

from __future__ import annotations

import json
import re

import pytest

from nodes_harness import load_pack
from workflow_tools import CORE_SNAPSHOT, check_workflow, combo_options, load_workflows, pack_object_info


def test_server_starts_with_the_pack_and_logs_no_import_failure(comfy):
    log = comfy.startup_log
    assert re.search(r"\d+\.\d+ seconds: .*ComfyUI-TrajectoryCrafter", log), log[-3000:]
    assert "IMPORT FAILED" not in log and "Cannot import" not in log
    assert "TrajectoryCrafter: nodes from" not in log  # no node module disabled
    assert "disabled, missing Python package" not in log, log[-3000:]  # every feature available
    assert "Traceback" not in log, log[-3000:]
    print(f"ComfyUI answered {comfy.start_seconds:.1f} s after launch")


def test_object_info_lists_every_node_with_our_schema(comfy):
    live = comfy.object_info()
    ours = pack_object_info(load_pack())
    for name, expected in ours.items():
        assert name in live, f"{name} missing from /object_info"
        got = live[name]
        for key in ("input", "input_order", "output", "output_name", "display_name", "description", "category",
                    "output_node", "output_tooltips"):
            if key == "input":  # file lists differ (the server's input folder): compare the rest
                assert _strip_file_lists(got[key]) == _strip_file_lists(expected[key]), name
            elif key == "input_order":  # hidden inputs (V3 output nodes) are ComfyUI's
                assert {k: v for k, v in got[key].items() if k != "hidden"} == expected[key], (name, key)
            else:
                assert got[key] == expected[key], (name, key)
        assert got["python_module"].startswith("custom_nodes.")
        for section in ("required", "optional"):
            for input_name, spec in got["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{name}.{input_name}"


def _strip_file_lists(inputs):
    """Inputs in V1 form (a V3 server writes combos as ``["COMBO", {"options": [...]}]``), with
    the lists of files and folders (they depend on the server's folders) replaced by a marker.
    The ``hidden`` inputs a V3 output node gets (prompt, workflow) are ComfyUI's, not ours."""
    out = {k: v for k, v in json.loads(json.dumps(inputs)).items() if k != "hidden"}
    for section in out.values():
        for name, spec in section.items():
            if spec[0] == "COMBO":
                spec[0] = spec[1].pop("options", [])
            for flag in ("multiselect", "multiline"):  # V3 writes these out when false
                if spec[1].get(flag) is False:
                    del spec[1][flag]
            if isinstance(spec[0], list) and (spec[1].get("video_upload") or name in (
                    "trajectory_file", "camera_file", "transformer", "base_model", "depthcrafter_unet", "svd",
                    "depth_anything", "lora")):
                spec[0] = "<files>"
    return out


def test_extra_model_paths_yaml_is_honoured(comfy):
    """A 'trajectorycrafter' entry of extra_model_paths.yaml adds its folder to the model lists."""
    assert "Adding extra search path trajectorycrafter" in comfy.startup_log
    assert "trajectorycrafter" in comfy.get("/models")  # registered with folder_paths
    transformers = combo_options(comfy.object_info()["TrajCrafterLoadModel"]["input"]["required"]["transformer"])
    assert transformers[0] == "TrajectoryCrafter"
    assert "TrajectoryCrafter-extra" in transformers and "TrajectoryCrafter-wrong" in transformers
    assert "CogVideoX-Fun-V1.1-5b-InP" not in transformers  # a base folder is not a transformer


def test_recorded_core_nodes_match_the_live_server(comfy):
    live = comfy.object_info()
    recorded = json.loads(CORE_SNAPSHOT.read_text())
    for name, info in recorded.items():
        assert name in live, f"core node {name} is gone"
        assert live[name]["input"] == info["input"] or name in ("LoadVideo", "Load3D"), name  # their file lists
        assert live[name]["output"] == info["output"], name


@pytest.mark.parametrize("name", sorted(load_workflows()))
def test_workflow_matches_the_live_schemas(comfy, name):
    assert check_workflow(load_workflows()[name], comfy.object_info()) == []
