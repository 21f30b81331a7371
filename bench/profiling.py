"""Measuring helpers shared by the benchmarks (and the tests that check a memory bound)."""

from __future__ import annotations

from typing import Callable


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """Highest live total of CPU allocations made while ``fn`` runs (profiler memory events)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak
