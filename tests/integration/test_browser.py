"""The workflows in the real ComfyUI frontend (headless Chromium): every workflow loads with no
missing-node dialog, ``app.graphToPrompt()`` gives exactly the prompt our schema tools compute,
and screenshots are saved (``TRAJCRAFTER_SCREENSHOTS`` or a temporary folder; path printed).
"""

from __future__ import annotations

import json
import time

import pytest

from workflow_tools import VIEWER_CAPTURE, load_workflows, to_api_prompt

WORKFLOWS = load_workflows()


def _strip_meta(prompt):
    """The prompt without titles; Load 3D's view capture (taken when queued) as our tools name it."""
    def inputs(node):
        if node["class_type"] == "Load3D" and isinstance(node["inputs"].get("image"), dict):
            return {**node["inputs"], "image": VIEWER_CAPTURE}
        return node["inputs"]

    return {k: {"class_type": v["class_type"], "inputs": inputs(v)} for k, v in prompt.items()}


def test_missing_node_detection_works(fe):
    """Negative control: an unknown node type is reported (so the checks below can fail)."""
    bogus = json.loads(json.dumps(WORKFLOWS["render_only_synthetic"]))
    bogus["nodes"][0]["type"] = "NoSuchTrajCrafterNode"
    result = fe.load(bogus)
    assert result["unregistered"] == ["NoSuchTrajCrafterNode"]
    assert result["dialogs"], "the missing-nodes dialog did not appear"
    fe.close_dialogs()
    invalid = json.loads(json.dumps(WORKFLOWS["render_only_synthetic"]))
    invalid["definitions"] = None  # what a raw graph.serialize() can hold
    assert any("Invalid workflow" in a for a in fe.load(invalid)["alerts"])
    fe.close_dialogs()


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_loads_and_converts_like_our_tools(fe, comfy, shots, name):
    result = fe.load(WORKFLOWS[name])
    assert result["unregistered"] == [] and result["dialogs"] == [] and result["alerts"] == [], result
    assert result["nodes"] == len(WORKFLOWS[name]["nodes"])
    prompt = fe.to_prompt()
    expected = to_api_prompt(WORKFLOWS[name], comfy.object_info())
    assert _strip_meta(prompt) == _strip_meta(expected)
    assert not fe.page_errors, fe.page_errors
    fe.close_dialogs()
    fe.fit_in_editor()
    fe.screenshot(shots / f"{name}.png")
    if name == "full_redirect_target_pose":
        fe.keep("full_redirect_target_pose")


def test_render_only_workflow_runs_from_the_editor(fe, comfy, shots):
    """Queue the render-only workflow with the Run action and screenshot the graph with its previews."""
    fe.load(WORKFLOWS["render_only_synthetic"])
    before = set((comfy.get("/history") or {}).keys())
    fe.page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    t0 = time.time()
    entry = None
    while time.time() - t0 < 600:
        new = set((comfy.get("/history") or {}).keys()) - before
        if new:
            entry = comfy.history(new.pop())
            if entry and entry["status"].get("status_str") in ("success", "error"):
                break
        time.sleep(0.5)
    assert entry and entry["status"]["status_str"] == "success", entry and entry["status"]
    fe.page.wait_for_timeout(1500)  # previews load
    fe.close_dialogs()
    fe.fit_in_editor()
    fe.screenshot(shots / "render_only_synthetic_after_run.png")
    fe.keep("render_only_synthetic_after_run")


def test_node_search_finds_every_node_under_trajectorycrafter(fe, comfy, shots):
    """Typing "trajectorycrafter" in the editor's node search lists all our nodes."""
    from nodes_harness import load_pack

    fe.load(WORKFLOWS["render_only_synthetic"])
    fe.close_dialogs()
    box = fe.page.locator("canvas").first.bounding_box()
    fe.page.mouse.dblclick(box["x"] + box["width"] - 60, box["y"] + box["height"] - 60)  # empty canvas
    search = fe.page.locator("input[placeholder]").filter(visible=True).last
    search.wait_for(timeout=10000)
    search.fill("trajectorycrafter")
    fe.page.wait_for_timeout(1500)
    listed = fe.page.locator("[role=option]").all_inner_texts()
    fe.screenshot(shots / "node_search_trajectorycrafter.png")
    fe.keep("node_search_trajectorycrafter")
    fe.page.keyboard.press("Escape")
    names = load_pack().NODE_DISPLAY_NAME_MAPPINGS.values()
    text = "\n".join(listed)
    missing = [n for n in names if n not in text]
    assert not missing, f"not listed: {missing}\n{text[:2000]}"
