"""Every workflow in workflows/ against the current node definitions (no ComfyUI needed).

Our nodes' definitions come from the classes; the core nodes the workflows use come from a
snapshot recorded from ComfyUI 0.8.0 (``tests/data/core_object_info.json``; the integration
tests check the same workflows against a live server's ``/object_info``).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

from nodes_harness import load_pack
from workflow_tools import (
    FRONTEND_ONLY_NODES,
    WORKFLOWS,
    check_workflow,
    load_workflows,
    offline_object_info,
    to_api_prompt,
)

sys.path.insert(0, str(Path(__file__).parent / "integration"))
from workflow_specs import WORKFLOWS as SPECS  # noqa: E402

ALL = load_workflows()


@pytest.fixture(scope="module")
def object_info():
    return offline_object_info(load_pack())


def test_every_spec_has_its_workflow_and_thumbnail():
    assert set(ALL) == set(SPECS), "run tests/integration/make_workflows.py after changing workflow_specs.py"
    for name in ALL:
        jpg = WORKFLOWS / f"{name}.jpg"
        assert jpg.exists(), f"{name}.jpg missing"
        assert jpg.read_bytes()[:3] == b"\xff\xd8\xff", f"{name}.jpg is not a JPEG"


@pytest.mark.parametrize("name", sorted(ALL))
def test_workflow_matches_node_definitions(name, object_info):
    assert check_workflow(ALL[name], object_info) == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_workflow_uses_only_our_nodes_and_core_nodes(name, object_info):
    pack = load_pack()
    for node in ALL[name]["nodes"]:
        if node["type"] in FRONTEND_ONLY_NODES:
            continue
        assert node["type"] in pack.NODE_CLASS_MAPPINGS or node["type"] in object_info, node["type"]
        if node["type"].startswith("TrajCrafter"):
            assert node["type"] in pack.NODE_CLASS_MAPPINGS


@pytest.mark.parametrize("name", sorted(ALL))
def test_workflow_converts_to_a_complete_api_prompt(name, object_info):
    prompt = to_api_prompt(ALL[name], object_info)
    for node_id, node in prompt.items():
        info = object_info[node["class_type"]]
        for required in info["input"]["required"]:
            assert required in node["inputs"], f"{name}: node {node_id} ({node['class_type']}) lacks {required}"


def test_render_only_workflow_needs_no_file_and_no_weights():
    types = {n["type"] for n in ALL["render_only_synthetic"]["nodes"]}
    assert "TrajCrafterSyntheticScene" in types
    assert not types & {"TrajCrafterLoadVideo", "TrajCrafterLoadModel", "TrajCrafterLoadDepthModel"}


# --- the checker itself must catch mistakes -------------------------------------------------


def _node_of(workflow, node_type):
    return next(n for n in workflow["nodes"] if n["type"] == node_type)


def test_checker_catches_wrong_widget_values(object_info):
    wf = copy.deepcopy(ALL["render_only_synthetic"])
    pose = _node_of(wf, "TrajCrafterCameraTargetPose")
    traj = _node_of(wf, "TrajCrafterCameraTrajectory")
    pose["widgets_values"][0] = 75.0  # theta beyond the official ±60
    traj["widgets_values"][0] = "sideways"  # no such mode
    errors = check_workflow(wf, object_info)
    assert any("theta = 75.0 above max 60.0" in e for e in errors)
    assert any("mode = 'sideways' not in" in e for e in errors)
    traj["widgets_values"].pop()
    assert any("widget values for" in e for e in check_workflow(wf, object_info))


def test_checker_catches_unknown_nodes_bad_links_and_unconnected_inputs(object_info):
    wf = copy.deepcopy(ALL["render_only_synthetic"])
    wf["nodes"].append({"id": 99, "type": "NoSuchNode", "inputs": [], "outputs": [], "widgets_values": []})
    render = _node_of(wf, "TrajCrafterRenderViews")
    link_id = render["inputs"][1]["link"]
    link = next(l for l in wf["links"] if l[0] == link_id)
    link[5] = "IMAGE"  # wrong type on the trajectory link
    errors = check_workflow(wf, object_info)
    assert any("NoSuchNode" in e for e in errors)
    assert any("link type IMAGE" in e for e in errors)
    render["inputs"][1]["link"] = None
    assert any("required input 'trajectory'" in e for e in check_workflow(wf, object_info))
