"""What the V1 and V3 adapters share: a run function's return value as outputs + ``ui``, and
validators / fingerprints re-exposed with their own parameter names (ComfyUI reads the names to
know which widget values to pass, and checks the others itself)."""

from __future__ import annotations

import inspect
from typing import Callable, Optional, Tuple

from . import bridge
from .declare import NodeDef, Result

#: Most frames of a clip a node shows in itself (evenly spaced).
PREVIEW_FRAMES = 4


def node_outputs(d: NodeDef, returned) -> Tuple[tuple, Optional[dict]]:
    """``(outputs, ui)`` of what ``d.run`` returned (a tuple, or a :class:`Result` with previews)."""
    if isinstance(returned, Result):
        values, previews = tuple(returned.outputs), returned.previews
    else:
        values, previews = tuple(returned), None
    if len(values) != len(d.outputs):
        raise RuntimeError(f"{d.id} returned {len(values)} values for {len(d.outputs)} outputs")
    if previews is None:
        return values, None
    return values, {"images": bridge.save_previews(previews, PREVIEW_FRAMES)}


_MISSING = object()


def forwarding_function(name: str, fn: Callable) -> Callable:
    """``name(cls, <fn's parameters>)`` calling ``fn`` with the arguments ComfyUI passed.

    Written out with ``fn``'s own parameter names (ComfyUI inspects the signature); parameters
    ComfyUI does not pass keep ``fn``'s defaults.
    """
    params = list(inspect.signature(fn).parameters)
    if not all(p.isidentifier() for p in params):  # pragma: no cover - our own declarations
        raise ValueError(f"{fn!r} has parameters that are not identifiers")
    args = ", ".join(f"{p}=_MISSING" for p in params)
    given = ", ".join(f"{p!r}: {p}" for p in params)
    source = (f"def {name}(cls, {args}):\n"
              f"    return _fn(**{{k: v for k, v in {{{given}}}.items() if v is not _MISSING}})\n")
    scope = {"_fn": fn, "_MISSING": _MISSING}
    exec(compile(source, f"<{name} of {getattr(fn, '__qualname__', fn)}>", "exec"), scope)  # noqa: S102
    return scope[name]
