"""Measuring helpers shared by the benchmarks (and the tests that check a memory bound).

- :func:`cpu_peak_bytes` / :func:`cpu_peak` measure: the highest live total of real CPU
  allocations while a function runs (the profiler's allocator events, kernels' own scratch
  buffers included).
- :class:`LiveBytes` predicts: it counts the bytes of tensor storages that operators create
  on one device (``meta`` for a model too large to run), from creation until the storage is
  freed, so a full-size model on the meta device gives the peak an accelerator would need,
  without an accelerator.
"""

from __future__ import annotations

import bisect
import weakref
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

__all__ = ["cpu_peak_bytes", "cpu_peak", "stage_windows", "LiveBytes", "FUSED_ATTENTION_KERNELS"]


def cpu_peak(fn: Callable[[], object]) -> Tuple[object, int]:
    """``(fn(), peak)``: the highest live total of CPU allocations made while ``fn`` runs, in
    bytes above what was live when it started (profiler memory events)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return result, peak


def stage_windows(fn: Callable[[], object], prefix: str = "stage:") -> Dict[str, List[int]]:
    """Run ``fn`` under the profiler and return, for each ``record_function(prefix + name)``
    window it opened, the highest rise of live CPU allocations above the live total at the
    window's start: ``{name: [rise of each window]}``. Allocations made by ``fn`` before a
    window (e.g. model weights) are known to the profiler, so their frees count too."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = list(prof.profiler.kineto_results.events())
    memory = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    times, totals, live = [], [], 0
    for t, nbytes in memory:
        live += nbytes
        times.append(t)
        totals.append(live)
    windows: Dict[str, List[int]] = {}
    for e in sorted((e for e in events if e.name().startswith(prefix)), key=lambda e: e.start_ns()):
        start, end = e.start_ns(), e.end_ns()
        first = bisect.bisect_left(times, start)
        last = bisect.bisect_right(times, end)
        before = totals[first - 1] if first else 0
        peak = max(totals[first:last], default=before)
        windows.setdefault(e.name()[len(prefix):], []).append(max(peak, before) - before)
    return windows


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """Highest live total of CPU allocations made while ``fn`` runs (profiler memory events)."""
    return cpu_peak(fn)[1]


#: Which fused attention kernel stands in for ``scaled_dot_product_attention`` on the meta
#: device, where PyTorch would otherwise take the math path and build the full ``N × N``
#: score matrix no accelerator run builds: ``"cuda"`` = FlashAttention (what CUDA picks for
#: bf16/fp16 with head dims 64/128, as TrajectoryCrafter's; memory-efficient attention when
#: there is an additive mask), ``"cpu"`` = the CPU flash kernel (what a CPU run picks). They
#: return the output plus a float32 log-sum-exp ``[B, heads, N]``.
def _cuda_attention(q, k, v, mask, scale):
    if mask is None:
        return torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, scale=scale)[0]
    # an additive mask (T5's position bias) rules FlashAttention out: memory-efficient attention
    return torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, mask, False, scale=scale)[0]


def _cpu_attention(q, k, v, mask, scale):
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, attn_mask=mask, scale=scale)[0]


FUSED_ATTENTION_KERNELS = {"cuda": _cuda_attention, "cpu": _cpu_attention}


class _FusedAttentionOnMeta(TorchFunctionMode):
    """On meta tensors: SDPA runs as :data:`FUSED_ATTENTION_KERNELS` ``[kernel]``, and
    ``Tensor.cpu()`` leaves the tensor where it is (a copy to the host is not accelerator
    memory; meta tensors cannot be copied anyway)."""

    def __init__(self, kernel: Optional[str]):
        super().__init__()
        self.kernel = FUSED_ATTENTION_KERNELS[kernel] if kernel else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and self.kernel is not None and args[0].device.type == "meta":
            query, key, value = args[:3]
            mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
            plain = (not kwargs.get("dropout_p") and not kwargs.get("is_causal") and len(args) <= 4
                     and not kwargs.get("enable_gqa") and (mask is None or mask.dtype != torch.bool))
            if plain:
                return self.kernel(query, key, value, mask, kwargs.get("scale"))
        if func is torch.Tensor.cpu and args[0].device.type == "meta":
            return args[0]
        return func(*args, **kwargs)


_ALIASING = object()  # memo entry: this call's outputs share an input's storage, always run it


def _recording(out):
    """Output metadata to rebuild ``out`` (or :data:`_ALIASING` when it is not fresh and dense)."""
    leaves, spec = tree_flatten(out)
    storages = set()
    recorded = []
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            storage = leaf.untyped_storage()
            dense = torch.empty_strided(leaf.shape, leaf.stride(), dtype=leaf.dtype, device="meta")
            if (leaf.device.type != "meta" or leaf.storage_offset() or storage._cdata in storages
                    or storage.nbytes() != dense.untyped_storage().nbytes()):
                return _ALIASING
            storages.add(storage._cdata)
            recorded.append((True, tuple(leaf.shape), leaf.stride(), leaf.dtype))
        else:
            recorded.append((False, leaf, None, None))
    return recorded, spec


def _replay(remembered):
    """Fresh meta tensors (and the plain values) of a :func:`_recording`."""
    recorded, spec = remembered
    leaves = [torch.empty_strided(shape, stride, dtype=dtype, device="meta") if is_tensor else shape
              for is_tensor, shape, stride, dtype in recorded]
    return tree_unflatten(leaves, spec)


class LiveBytes(TorchDispatchMode):
    """Bytes of live tensor storages on ``device`` while active, and their peak.

    Every operator output whose storage is new (not one of the operator's inputs' storages)
    is counted from its creation until the storage is freed (a weak-reference finaliser on
    the storage: views and in-place results cost nothing, a storage kept alive by any view
    stays counted). Storages that existed before can be counted with :meth:`hold` (e.g. the
    weights resident on the accelerator) and dropped with :meth:`release` (offloaded). Only
    the kernels' outputs are seen, not their private scratch buffers (cuBLAS/cuDNN workspace,
    CPU attention tiles); :data:`FUSED_ATTENTION_KERNELS` decides what SDPA allocates on meta.

    Use::

        with LiveBytes() as live:        # model and inputs on the meta device
            model(**inputs)
        live.peak                        # bytes
    """

    def __init__(self, device: str = "meta", attention: Optional[str] = "cuda", memoize: bool = True,
                 count_host_copies: bool = True):
        super().__init__()
        self.device = device
        #: whether copies of CPU tensors onto ``device`` count (inputs uploaded to the GPU do; a
        #: CPU run to compare with has no such copies)
        self.count_host_copies = count_host_copies
        self.live = 0
        self.peak = 0
        self._tracked: Dict[int, Tuple[int, weakref.finalize]] = {}
        self._function_mode = _FusedAttentionOnMeta(attention)
        # Meta kernels are mostly Python shape functions (milliseconds each); a 42-block model
        # repeats the same call with the same shapes, so (op, input metadata) → output metadata
        # is remembered for operators that return fresh, dense tensors (views, in-place and
        # aliasing operators always run).
        self._memo: Optional[Dict[tuple, object]] = {} if memoize and device == "meta" else None

    # ------------------------------------------------------------------ accounting

    def _add(self, storage: torch.UntypedStorage) -> None:
        key = storage._cdata
        if key in self._tracked:
            return
        nbytes = storage.nbytes()
        finaliser = weakref.finalize(storage, self._freed, key)
        finaliser.atexit = False
        self._tracked[key] = (nbytes, finaliser)
        self.live += nbytes
        self.peak = max(self.peak, self.live)

    def _freed(self, key: int) -> None:
        entry = self._tracked.pop(key, None)
        if entry is not None:
            self.live -= entry[0]

    def hold(self, tensors: Iterable[torch.Tensor]) -> None:
        """Count these tensors' storages (on :attr:`device`) as live from now on."""
        for t in tensors:
            if t.device.type == self.device:
                self._add(t.untyped_storage())

    def release(self, tensors: Iterable[torch.Tensor]) -> None:
        """Stop counting these tensors' storages (they leave the device, e.g. offloaded)."""
        for t in tensors:
            entry = self._tracked.pop(t.untyped_storage()._cdata, None) if t.device.type == self.device else None
            if entry is not None:
                entry[1].detach()
                self.live -= entry[0]

    def reset_peak(self) -> None:
        self.peak = self.live

    # ------------------------------------------------------------------ modes

    def __enter__(self):
        self._function_mode.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            self._function_mode.__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves = tree_flatten((args, kwargs))[0]
        key = self._memo_key(func, leaves) if self._memo is not None else None
        remembered = self._memo.get(key) if key is not None else None
        if remembered is not None and remembered is not _ALIASING:
            out = _replay(remembered)
        else:
            out = func(*args, **kwargs)
        inputs = {t.untyped_storage()._cdata for t in leaves
                  if isinstance(t, torch.Tensor) and t.device.type == self.device}
        if not self.count_host_copies and func is torch.ops.aten._to_copy.default and args[0].device.type == "cpu":
            return out
        fresh = True
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == self.device:
                storage = t.untyped_storage()
                if storage._cdata in inputs:
                    fresh = False
                else:
                    self._add(storage)
        if key is not None and remembered is None:
            self._memo[key] = _recording(out) if fresh else _ALIASING
        return out

    @staticmethod
    def _memo_key(func, leaves) -> Optional[tuple]:
        if func.is_view or func._schema.is_mutable:
            return None
        parts = [func]
        for leaf in leaves:
            if isinstance(leaf, torch.Tensor):
                if leaf.device.type != "meta":
                    return None
                parts.append((tuple(leaf.shape), leaf.stride(), leaf.storage_offset(), leaf.dtype))
            elif isinstance(leaf, (int, float, bool, str, type(None), torch.dtype, torch.device,
                                   torch.layout, torch.memory_format)):
                parts.append((type(leaf), leaf))
            else:
                return None
        return tuple(parts)
