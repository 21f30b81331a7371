"""V1 ComfyUI classes (``INPUT_TYPES`` / ``RETURN_TYPES`` / ``FUNCTION``) made from node declarations.

Used when the running ComfyUI has no V3 API, and by the tests (they run nodes without ComfyUI).
"""

from __future__ import annotations

from typing import Dict

from .declare import Input, NodeDef
from .results import forwarding_function, node_outputs


def input_spec(i: Input):
    """The V1 ``(type, options)`` pair of one input."""
    opts: Dict[str, object] = {"tooltip": i.tooltip} if i.tooltip else {}
    if i.type == "COMBO":
        if i.default is not None:
            opts["default"] = i.default
        if i.upload:
            opts[f"{i.upload}_upload"] = True
        return (i.choices(), opts)
    if i.type in ("INT", "FLOAT"):
        opts.update({k: v for k, v in (("default", i.default), ("min", i.min), ("max", i.max), ("step", i.step))
                     if v is not None})
        if i.slider:
            opts["display"] = "slider"
        if i.control_after_generate:
            opts["control_after_generate"] = True
        return (i.type, opts)
    if i.type == "BOOLEAN":
        return ("BOOLEAN", {"default": bool(i.default), **opts})
    if i.type == "STRING":
        return ("STRING", {"default": i.default or "", **({"multiline": True} if i.multiline else {}), **opts})
    return (i.type, opts)


def v1_class(d: NodeDef) -> type:
    """A V1 node class for ``d``."""

    def INPUT_TYPES(cls):
        required = {i.name: input_spec(i) for i in d.inputs if not i.optional}
        optional = {i.name: input_spec(i) for i in d.inputs if i.optional}
        return {"required": required, **({"optional": optional} if optional else {})}

    def run(self, **inputs):
        values, ui = node_outputs(d, d.run(**inputs))
        return {"ui": ui, "result": values} if ui else values

    attrs = {
        "INPUT_TYPES": classmethod(INPUT_TYPES),
        "RETURN_TYPES": tuple(o.type for o in d.outputs),
        "RETURN_NAMES": tuple(o.name for o in d.outputs),
        "OUTPUT_TOOLTIPS": tuple(o.tooltip for o in d.outputs),
        "FUNCTION": "run",
        "CATEGORY": d.full_category,
        "DESCRIPTION": d.description,
        "SEARCH_ALIASES": list(d.aliases),
        "DEFINITION": d,
        "run": run,
        "__doc__": d.description.split(". ")[0],
    }
    if any(o.is_list for o in d.outputs):
        attrs["OUTPUT_IS_LIST"] = tuple(o.is_list for o in d.outputs)
    if d.output_node:
        attrs["OUTPUT_NODE"] = True
    if d.validate is not None:
        attrs["VALIDATE_INPUTS"] = classmethod(forwarding_function("VALIDATE_INPUTS", d.validate))
    if d.fingerprint is not None:
        attrs["IS_CHANGED"] = classmethod(forwarding_function("IS_CHANGED", d.fingerprint))
    return type(d.id, (), attrs)
