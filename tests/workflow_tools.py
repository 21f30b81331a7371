"""Check UI-format workflows against node definitions, convert them to API prompts, build them.

The node definitions are an ``/object_info``-shaped dict: from a live ComfyUI server
(integration tests) or built here from our node classes plus a recorded snapshot of the few core
nodes our workflows use (``tests/data/core_object_info.json``, recorded from ComfyUI 0.8.0).

How the frontend maps inputs to ``widgets_values`` (checked against the real frontend by the
browser test, which compares :func:`to_api_prompt` with ``app.graphToPrompt()``):

- every input whose type is INT, FLOAT, STRING, BOOLEAN or a combo (list / ``"COMBO"``) is a
  widget, in ``input_order`` (required, then optional), whether or not a link feeds it;
- an INT with ``control_after_generate``, or named ``seed`` / ``noise_seed`` (the frontend adds
  one to those by name), is followed by its control value (fixed / increment / decrement / randomize);
- a combo with ``image_upload`` / ``video_upload`` / ``audio_upload`` adds an upload button whose
  value (``"image"``) comes after all the other widgets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
WORKFLOWS = REPO / "workflows"
CORE_SNAPSHOT = TESTS / "data" / "core_object_info.json"

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
SEED_NAMES = ("seed", "noise_seed")
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
FRONTEND_ONLY_NODES = ("Note", "MarkdownNote")
DYNAMIC_COMBOS = UPLOAD_FLAGS + ("file_upload",)  # combos listing user files: any value is allowed in a template
#: Core nodes whose widgets the frontend lays out itself (its 3-D viewers, frontend 1.35): every
#: ``widgets_values`` entry as ``(name, role)``. ``"button"`` widgets go into the API prompt under
#: their name with their value; ``"viewer"`` is the node's 3-D canvas: Preview 3D sends its value,
#: Load 3D a capture of the view taken when queued (image, mask, normal, camera_info), which no
#: tool can compute (:data:`VIEWER_CAPTURE` stands for it).
FRONTEND_LAYOUTS = {
    "Load3D": (("model_file", "value"), ("upload 3d model", "button"), ("upload extra resources", "button"),
               ("clear", "button"), ("image", "viewer"), ("width", "value"), ("height", "value")),
    "Preview3D": (("model_file", "value"), ("image", "viewer")),
}
VIEWER_CAPTURE = "<capture of the Load 3D view>"


def node_info(cls, class_name: str, display_name: Optional[str] = None) -> dict:
    """``/object_info`` entry of a V1 node class, as ComfyUI's server builds it (JSON round-trip)."""
    inputs = cls.INPUT_TYPES()
    info = {
        "input": inputs,
        "input_order": {k: list(v.keys()) for k, v in inputs.items()},
        "output": cls.RETURN_TYPES,
        "output_is_list": getattr(cls, "OUTPUT_IS_LIST", [False] * len(cls.RETURN_TYPES)),
        "output_name": getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES),
        "name": class_name,
        "display_name": display_name or class_name,
        "description": getattr(cls, "DESCRIPTION", ""),
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = cls.OUTPUT_TOOLTIPS
    return json.loads(json.dumps(info))


def pack_object_info(pack) -> dict:
    """``/object_info`` of our pack's nodes."""
    return {
        name: node_info(cls, name, pack.NODE_DISPLAY_NAME_MAPPINGS.get(name))
        for name, cls in pack.NODE_CLASS_MAPPINGS.items()
    }


def offline_object_info(pack) -> dict:
    """Our nodes plus the recorded core nodes: what CI checks workflows against."""
    info = json.loads(CORE_SNAPSHOT.read_text()) if CORE_SNAPSHOT.exists() else {}
    info.update(pack_object_info(pack))
    return info


# ------------------------------------------------------------------------------- widgets


def combo_options(spec) -> Optional[list]:
    kind = spec[0]
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        return list((spec[1] if len(spec) > 1 else {}).get("options", []))
    return None


def widget_slots(info: dict) -> List[Tuple[str, str, list]]:
    """Ordered ``(input name, role, spec)`` of every ``widgets_values`` entry of a node.

    role: ``"value"`` (the input itself), ``"control"`` (control after generate) or ``"upload"``
    (or a :data:`FRONTEND_LAYOUTS` role).
    """
    if info.get("name") in FRONTEND_LAYOUTS:
        specs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        return [(name, role, specs.get(name, [role])) for name, role in FRONTEND_LAYOUTS[info["name"]]]
    slots, uploads = [], []
    for section in ("required", "optional"):
        specs = info["input"].get(section, {})
        for name in info.get("input_order", {}).get(section, list(specs)):
            spec = specs[name]
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            is_combo = combo_options(spec) is not None
            if not (is_combo or spec[0] in WIDGET_TYPES):
                continue
            if opts.get("forceInput") or opts.get("rawLink"):
                continue
            slots.append((name, "value", spec))
            if spec[0] == "INT" and (opts.get("control_after_generate") or name in SEED_NAMES):
                slots.append((name, "control", spec))
            if is_combo and any(opts.get(flag) for flag in UPLOAD_FLAGS):
                uploads.append((name, "upload", spec))
    return slots + uploads


def socket_inputs(info: dict) -> List[Tuple[str, str, bool]]:
    """``(name, type, required)`` of the inputs that are sockets only (no widget)."""
    out = []
    laid_out = {name for name, _ in FRONTEND_LAYOUTS.get(info.get("name"), ())}
    for section in ("required", "optional"):
        specs = info["input"].get(section, {})
        for name in info.get("input_order", {}).get(section, list(specs)):
            spec = specs[name]
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if name in laid_out:
                continue
            if combo_options(spec) is None and (spec[0] not in WIDGET_TYPES or opts.get("forceInput")):
                out.append((name, spec[0], section == "required"))
    return out


def _check_value(where: str, name: str, spec, value) -> List[str]:
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    options = combo_options(spec)
    if options is not None:
        if any(opts.get(flag) for flag in DYNAMIC_COMBOS):
            return [] if isinstance(value, str) else [f"{where}: {name} = {value!r} is not a file name"]
        return [] if value in options else [f"{where}: {name} = {value!r} not in {options}"]
    if kind == "BOOLEAN":
        return [] if isinstance(value, bool) else [f"{where}: {name} = {value!r} is not a boolean"]
    if kind == "STRING":
        return [] if isinstance(value, str) else [f"{where}: {name} = {value!r} is not a string"]
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return [f"{where}: {name} = {value!r} is not a number"]
        errors = []
        if kind == "INT" and value != int(value):
            errors.append(f"{where}: {name} = {value!r} is not an integer")
        if "min" in opts and value < opts["min"]:
            errors.append(f"{where}: {name} = {value} below min {opts['min']}")
        if "max" in opts and value > opts["max"]:
            errors.append(f"{where}: {name} = {value} above max {opts['max']}")
        return errors
    return []


def _type_accepts(input_type, output_type: str) -> bool:
    if input_type == "*" or output_type == "*":
        return True
    if isinstance(input_type, list):  # a combo fed by a link
        return output_type == "COMBO"
    accepted = {t.strip() for t in str(input_type).split(",")}
    return output_type in accepted or output_type.split(",")[0] in accepted


def check_workflow(workflow: dict, object_info: dict) -> List[str]:
    """Every problem of a UI-format workflow against node definitions (empty list = fine).

    Checks: node types exist; ``widgets_values`` has one entry per widget with the right type,
    range and combo membership; links are consistent with the nodes' slots and their types are
    accepted at both ends; every required socket input is linked (no red inputs).
    """
    errors: List[str] = []
    nodes = {n["id"]: n for n in workflow.get("nodes", [])}
    links = {l[0]: l for l in workflow.get("links", [])}
    for node in nodes.values():
        where = f"node {node['id']} ({node['type']})"
        if node["type"] in FRONTEND_ONLY_NODES:
            continue
        info = object_info.get(node["type"])
        if info is None:
            errors.append(f"{where}: unknown node type")
            continue
        slots = widget_slots(info)
        values = node.get("widgets_values", [])
        if isinstance(values, dict):
            errors.append(f"{where}: widgets_values is a dict (not the list form ComfyUI uses)")
            continue
        if len(values) != len(slots):
            errors.append(
                f"{where}: {len(values)} widget values for {len(slots)} widgets "
                f"{[s[0] + ('' if s[1] == 'value' else ':' + s[1]) for s in slots]}"
            )
            continue
        for (name, role, spec), value in zip(slots, values):
            if role == "value":
                errors += _check_value(where, name, spec, value)
            elif role == "control" and value not in CONTROL_VALUES:
                errors.append(f"{where}: {name} control_after_generate = {value!r}")
        # inputs listed on the node must exist and agree with the links
        declared = {i["name"]: i for i in node.get("inputs", [])}
        all_inputs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        frontend_inputs = {"upload"} if any(role == "upload" for _, role, _ in slots) else set()
        frontend_inputs |= {name for name, _ in FRONTEND_LAYOUTS.get(node["type"], ())}
        for name, slot in declared.items():
            if name not in all_inputs and name not in frontend_inputs:
                errors.append(f"{where}: input {name!r} does not exist")
            if slot.get("link") is not None and slot["link"] not in links:
                errors.append(f"{where}: input {name!r} refers to missing link {slot['link']}")
        for name, kind, required in socket_inputs(info):
            slot = declared.get(name)
            if required and (slot is None or slot.get("link") is None):
                errors.append(f"{where}: required input {name!r} ({kind}) is not connected")
        outputs = node.get("outputs", [])
        if len(outputs) > len(info["output"]):
            errors.append(f"{where}: {len(outputs)} outputs, the node has {len(info['output'])}")
    for link_id, (lid, src, src_slot, dst, dst_slot, ltype) in links.items():
        where = f"link {lid}"
        if src not in nodes or dst not in nodes:
            errors.append(f"{where}: connects missing node {src if src not in nodes else dst}")
            continue
        s_info, d_info = object_info.get(nodes[src]["type"]), object_info.get(nodes[dst]["type"])
        if s_info is None or d_info is None:
            continue
        if src_slot >= len(s_info["output"]):
            errors.append(f"{where}: source slot {src_slot} out of range")
            continue
        out_type = s_info["output"][src_slot]
        if ltype != out_type:
            errors.append(f"{where}: link type {ltype} but the output is {out_type}")
        if link_id not in (nodes[src]["outputs"][src_slot].get("links") or []):
            errors.append(f"{where}: not listed in node {src}'s output {src_slot}")
        d_inputs = nodes[dst].get("inputs", [])
        if dst_slot >= len(d_inputs) or d_inputs[dst_slot].get("link") != link_id:
            errors.append(f"{where}: target slot {dst_slot} of node {dst} does not hold it")
            continue
        name = d_inputs[dst_slot]["name"]
        all_inputs = {**d_info["input"].get("required", {}), **d_info["input"].get("optional", {})}
        if name in all_inputs and not _type_accepts(all_inputs[name][0], out_type):
            errors.append(f"{where}: {out_type} into {nodes[dst]['type']}.{name} ({all_inputs[name][0]})")
    return errors


# --------------------------------------------------------------------------- UI -> API


def to_api_prompt(workflow: dict, object_info: dict) -> dict:
    """The API prompt (``/prompt`` body's ``prompt``) of a UI workflow, as the frontend makes it.

    Muted (mode 2) / bypassed (mode 4) nodes and frontend-only nodes are left out.
    """
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {l[0]: l for l in workflow.get("links", [])}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY_NODES or node.get("mode", 0) in (2, 4):
            continue
        info = object_info[node["type"]]
        inputs = {}
        for (name, role, _), value in zip(widget_slots(info), node.get("widgets_values", [])):
            if role in ("value", "button"):
                inputs[name] = value
            elif role == "viewer":
                inputs[name] = VIEWER_CAPTURE if node["type"] == "Load3D" else value
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, src, src_slot, *_ = links[slot["link"]]
                if src in nodes:
                    inputs[slot["name"]] = [str(src), src_slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs, "_meta": {"title": node.get("title") or info["display_name"]}}
    return prompt


def load_workflows() -> Dict[str, dict]:
    """Every workflow JSON in ``workflows/`` by file stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(WORKFLOWS.glob("*.json"))}
