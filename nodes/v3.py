"""V3 ComfyUI nodes (``comfy_api.latest``: ``io.ComfyNode`` with ``define_schema`` / ``execute``)
made from node declarations, for a ComfyUI that has that API. ``io`` is the ``comfy_api.latest.io``
module, handed in by the pack's entry point through :func:`nodes.bridge.comfy_io`."""

from __future__ import annotations

import dataclasses

from .declare import Input, NodeDef, Output
from .results import forwarding_function, node_outputs


def _io_type(io, type_: str):
    core = {"IMAGE": io.Image, "MASK": io.Mask, "AUDIO": io.Audio, "VIDEO": io.Video,
            "LOAD3D_CAMERA": io.Load3DCamera}
    return core.get(type_) or io.Custom(type_)


def _input(io, i: Input):
    common = dict(optional=i.optional, tooltip=i.tooltip or None)
    if i.type == "INT":
        return io.Int.Input(i.name, default=i.default, min=i.min, max=i.max, step=i.step,
                            control_after_generate=i.control_after_generate or None,
                            display_mode=io.NumberDisplay.slider if i.slider else None, **common)
    if i.type == "FLOAT":
        return io.Float.Input(i.name, default=i.default, min=i.min, max=i.max, step=i.step,
                              display_mode=io.NumberDisplay.slider if i.slider else None, **common)
    if i.type == "BOOLEAN":
        return io.Boolean.Input(i.name, default=bool(i.default), **common)
    if i.type == "STRING":
        return io.String.Input(i.name, default=i.default or "", multiline=i.multiline, **common)
    if i.type == "COMBO":
        upload = {"video": io.UploadType.video}.get(i.upload) if i.upload else None
        return io.Combo.Input(i.name, options=i.choices(), default=i.default, upload=upload, **common)
    return _io_type(io, i.type).Input(i.name, **common)


def _output(io, o: Output):
    return _io_type(io, o.type).Output(o.name, display_name=o.name, tooltip=o.tooltip or None,
                                       is_output_list=o.is_list)


def v3_class(d: NodeDef, io) -> type:
    """A V3 node class for ``d``."""

    def define_schema(cls):
        extra = {}
        if "search_aliases" in {f.name for f in dataclasses.fields(io.Schema)}:  # newer ComfyUI
            extra["search_aliases"] = list(d.aliases)
        return io.Schema(node_id=d.id, display_name=d.display_name, category=d.full_category,
                         description=d.description, inputs=[_input(io, i) for i in d.inputs],
                         outputs=[_output(io, o) for o in d.outputs], is_output_node=d.output_node, **extra)

    def execute(cls, **inputs):
        values, ui = node_outputs(d, d.run(**inputs))
        return io.NodeOutput(*values, ui=ui)

    attrs = {"define_schema": classmethod(define_schema), "execute": classmethod(execute), "DEFINITION": d}
    if d.validate is not None:
        attrs["validate_inputs"] = classmethod(forwarding_function("validate_inputs", d.validate))
    if d.fingerprint is not None:
        attrs["fingerprint_inputs"] = classmethod(forwarding_function("fingerprint_inputs", d.fingerprint))
    return type(d.id, (io.ComfyNode,), attrs)
