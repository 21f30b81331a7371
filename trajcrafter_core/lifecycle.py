"""Where a loaded model lives: one small placement API for the pipeline and the depth estimators.

A model made of torch modules lists them in :meth:`ModelPlacement.components`; the mixin gives
every such model the same :meth:`~ModelPlacement.place` (move all components, remember the
device), :meth:`~ModelPlacement.weight_bytes` and :meth:`~ModelPlacement.memory`, so front-ends
never walk a model's attributes. Models that place their parts in a special way (the pipeline's
offload modes) override :meth:`~ModelPlacement.place`.
"""

from __future__ import annotations

from typing import Dict, Union

import torch

__all__ = ["ModelPlacement"]

DeviceLike = Union[str, torch.device]


class ModelPlacement:
    """Mixin: ``components()`` → placement, size and memory of a multi-module model."""

    device: torch.device

    def components(self) -> Dict[str, torch.nn.Module]:
        """The model's torch modules by name."""
        raise NotImplementedError

    def place(self, device: DeviceLike) -> None:
        """Move every component to ``device``; the model then runs there."""
        device = torch.device(device)
        for module in self.components().values():
            module.to(device)
        self.device = device

    def weight_bytes(self) -> int:
        """Bytes of all parameters and buffers (what placing the model on a device costs)."""
        return sum(t.numel() * t.element_size() for m in self.components().values()
                   for t in list(m.parameters()) + list(m.buffers()))

    def memory(self) -> Dict[str, Dict[str, int]]:
        """Bytes of each component per device it occupies: ``{component: {device: bytes}}``."""
        report: Dict[str, Dict[str, int]] = {}
        for name, module in self.components().items():
            per_device: Dict[str, int] = {}
            for t in list(module.parameters()) + list(module.buffers()):
                key = str(t.device)
                per_device[key] = per_device.get(key, 0) + t.numel() * t.element_size()
            report[name] = per_device
        return report
