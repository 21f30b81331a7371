"""Nodes as data: one torch-free declaration per node, from which the pack registers with ComfyUI.

A :class:`NodeDef` says everything ComfyUI shows and checks — inputs with their ranges, choices
and tooltips, outputs, category, description, search aliases, whether the node shows previews —
and names the plain function that runs it. :mod:`nodes.v3` turns it into a V3
``comfy_api.latest`` node where the running ComfyUI has that API, :mod:`nodes.v1` into a V1
class otherwise (and for tests without ComfyUI). Nothing here imports torch or ComfyUI.

Run functions take the inputs as keyword arguments and return a tuple of outputs, or a
:class:`Result` when the node also shows images in itself (``previews``: an IMAGE batch; the
adapters save a few frames to ComfyUI's temp folder and return them as the node's ``ui``).
Validators take widget values by name and return ``True`` or a message; ComfyUI calls them
before a prompt runs (and then skips its own range/choice checks for the inputs they name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Tuple, Union

__all__ = [
    "ROOT_CATEGORY", "CATEGORIES", "WIDGET_TYPES", "Input", "Output", "NodeDef", "Result",
    "Int", "Float", "Bool", "Text", "Choice", "Socket", "Out",
]

ROOT_CATEGORY = "TrajectoryCrafter"
#: The sub-categories of the Add Node menu, in the order of the flow.
CATEGORIES = ("input", "depth", "camera", "render", "sampling")
WIDGET_TYPES = ("INT", "FLOAT", "BOOLEAN", "STRING", "COMBO")


@dataclass(frozen=True)
class Input:
    """One input: a widget (``INT``, ``FLOAT``, ``BOOLEAN``, ``STRING``, ``COMBO``) or a socket type.

    ``options`` (COMBO): a list, or a function returning the list when the editor asks (folder
    listings). ``upload``: ``"video"`` adds the upload button. ``slider``: shown as a slider.
    """

    name: str
    type: str
    tooltip: str = ""
    default: Any = None
    min: Any = None
    max: Any = None
    step: Any = None
    options: Union[Sequence[Any], Callable[[], Sequence[Any]], None] = None
    optional: bool = False
    multiline: bool = False
    slider: bool = False
    upload: Optional[str] = None
    control_after_generate: bool = False

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES

    def choices(self) -> list:
        """The COMBO options as a list (a function is called now)."""
        return list(self.options() if callable(self.options) else (self.options or []))


@dataclass(frozen=True)
class Output:
    """One output. ``is_list``: the value is a Python list and the nodes after it run once per item."""

    name: str
    type: str
    tooltip: str = ""
    is_list: bool = False


@dataclass
class Result:
    """What a run function returns when the node shows images in itself."""

    outputs: tuple
    previews: Any = None


@dataclass(frozen=True)
class NodeDef:
    """A node: its ComfyUI id (the class type saved in workflows, never changed), how the editor
    shows it, its inputs and outputs, and the function that runs it. ``output_node``: the node
    writes files, so ComfyUI runs it even when nothing is connected to its outputs."""

    id: str
    display_name: str
    category: str
    description: str
    inputs: Tuple[Input, ...]
    outputs: Tuple[Output, ...]
    run: Callable[..., Any]
    aliases: Tuple[str, ...] = ()
    validate: Optional[Callable[..., Union[bool, str]]] = None
    fingerprint: Optional[Callable[..., Any]] = None
    previews: bool = False
    output_node: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.category not in CATEGORIES:
            raise ValueError(f"{self.id}: category must be one of {CATEGORIES}, got {self.category!r}")
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id}: input names repeat: {names}")

    @property
    def full_category(self) -> str:
        return f"{ROOT_CATEGORY}/{self.category}"


# --------------------------------------------------------------------------- short constructors


def Int(name, default, min, max, tooltip, step=1, optional=False, control_after_generate=False, slider=False) -> Input:
    return Input(name, "INT", tooltip, default, min, max, step, optional=optional,
                 control_after_generate=control_after_generate, slider=slider)


def Float(name, default, min, max, tooltip, step=0.01, optional=False, slider=False) -> Input:
    return Input(name, "FLOAT", tooltip, default, min, max, step, optional=optional, slider=slider)


def Bool(name, default, tooltip, optional=False) -> Input:
    return Input(name, "BOOLEAN", tooltip, default, optional=optional)


def Text(name, default, tooltip, multiline=False, optional=False) -> Input:
    return Input(name, "STRING", tooltip, default, optional=optional, multiline=multiline)


def Choice(name, options, default, tooltip, optional=False, upload=None) -> Input:
    return Input(name, "COMBO", tooltip, default, options=options, optional=optional, upload=upload)


def Socket(name, type_, tooltip, optional=False) -> Input:
    return Input(name, type_, tooltip, optional=optional)


def Out(name, type_, tooltip, is_list=False) -> Output:
    return Output(name, type_, tooltip, is_list)
