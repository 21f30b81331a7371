"""Deterministic, resumable streaming of training batches from tar shards.

Order: per epoch, the shards are permuted and the samples inside each shard are permuted
(seeded by ``(seed, epoch)``; locality stays shard by shard). The epoch order is cut into
*global batches* of ``batch_size`` samples; global batch ``g`` belongs to process
``g % world_size``; a process's local batch ``l`` is produced by data-loader worker
``l % num_workers`` (the order in which ``torch.utils.data.DataLoader`` polls workers).
So the stream position is one integer — the number of local batches a process has
consumed — and resuming from it reproduces exactly the batches an uninterrupted run sees.
The incomplete tail of an epoch is dropped so every process gets the same number of batches.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Sequence

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from trajcrafter_core.errors import TrajCrafterError

from .shards import Sample, SampleRef, expand_shard_patterns, index_shard, read_sample

VIDEO_KEYS = ("target", "render", "mask", "reference")


def _epoch_order(refs: List[SampleRef], seed: int, epoch: int, shuffle: bool) -> List[SampleRef]:
    if not shuffle:
        return list(refs)
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    by_shard: Dict[str, List[SampleRef]] = {}
    for ref in refs:
        by_shard.setdefault(str(ref.shard), []).append(ref)
    names = sorted(by_shard)
    order: List[SampleRef] = []
    for i in torch.randperm(len(names), generator=gen).tolist():
        group = by_shard[names[i]]
        order.extend(group[j] for j in torch.randperm(len(group), generator=gen).tolist())
    return order


def collate_samples(samples: Sequence[Sample], num_frames: int, height: int, width: int,
                    with_latents: bool) -> Dict:
    """Stack samples into a batch; every sample must have the configured geometry.

    Video tensors stay uint8 (``target/render/reference`` ``[B,T,H,W,3]``, ``mask``
    ``[B,T,H,W]`` with 1 = hole); a double-reprojection sample's reference is its target.
    ``latents`` (a dict of stacked tensors) is present only if every sample carries them.
    """
    for s in samples:
        t = s.video["target"]
        if tuple(t.shape[:3]) != (num_frames, height, width):
            raise TrajCrafterError(
                f"sample {s.key} ({s.meta.get('source', '?')}) has {list(t.shape[:3])} [T,H,W] but the "
                f"config asks for {[num_frames, height, width]} (data.num_frames/height/width); "
                f"prepare the shards at the training size or change the config."
            )
    batch: Dict = {
        "key": [s.key for s in samples],
        "kind": [s.kind for s in samples],
        "prompt": [s.prompt for s in samples],
    }
    for name in ("target", "render", "mask"):
        batch[name] = torch.stack([s.video[name] for s in samples])
    batch["reference"] = torch.stack([s.video.get("reference", s.video["target"]) for s in samples])
    if with_latents:
        have = [s.latents is not None for s in samples]
        if any(have) and not all(have):
            missing = [s.key for s in samples if s.latents is None]
            raise TrajCrafterError(
                f"samples {missing[:3]} have no pre-encoded latents while others in the same batch do; "
                f"encode all shards (training/prepare_latents.py) or set data.use_latents: false."
            )
        if all(have):
            names = set(samples[0].latents)
            for s in samples:
                if set(s.latents) != names:
                    raise TrajCrafterError(f"sample {s.key} carries latents {sorted(s.latents)}, expected {sorted(names)}.")
            batch["latents"] = {n: torch.stack([s.latents[n] for s in samples]) for n in sorted(names)}
    return batch


class ShardBatchStream(IterableDataset):
    """Infinite stream of collated batches for one process (see module docstring).

    ``start_batch``: local batches already consumed (resume position).
    """

    def __init__(self, shards: Sequence[str], kinds: Sequence[str], batch_size: int, num_frames: int,
                 height: int, width: int, seed: int = 0, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1, with_latents: bool = True, start_batch: int = 0):
        super().__init__()
        paths = expand_shard_patterns(shards)
        refs: List[SampleRef] = []
        for path in paths:
            refs.extend(r for r in index_shard(path) if r.kind in kinds)
        self.refs = refs
        self.kinds = list(kinds)
        self.batch_size = batch_size
        self.geometry = (num_frames, height, width)
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.with_latents = with_latents
        self.start_batch = start_batch
        if self.batches_per_epoch == 0:
            raise TrajCrafterError(
                f"the shards {list(shards)} hold {len(refs)} sample(s) of kind {self.kinds}; one step needs "
                f"batch_size x processes = {batch_size * world_size}. Add data or lower data.batch_size."
            )

    @property
    def batches_per_epoch(self) -> int:
        """Local batches per epoch (the same on every process)."""
        return len(self.refs) // (self.batch_size * self.world_size)

    def batch_refs(self, local_batch: int) -> List[SampleRef]:
        """The samples of this process's ``local_batch``-th batch since the start of training."""
        epoch, j = divmod(local_batch, self.batches_per_epoch)
        order = self._order_cache.get(epoch) if hasattr(self, "_order_cache") else None
        if order is None:
            order = _epoch_order(self.refs, self.seed, epoch, self.shuffle)
            self._order_cache = {epoch: order}
        g = j * self.world_size + self.rank
        return order[g * self.batch_size:(g + 1) * self.batch_size]

    def __iter__(self) -> Iterator[Dict]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        local = self.start_batch + worker
        while True:
            samples = [read_sample(ref, self.with_latents) for ref in self.batch_refs(local)]
            batch = collate_samples(samples, *self.geometry, with_latents=self.with_latents)
            batch["position"] = local
            yield batch
            local += workers


def make_loader(stream: ShardBatchStream, num_workers: int) -> DataLoader:
    """A DataLoader over a batch stream (batches are formed by the stream itself).

    It has its own generator: creating its iterator must not draw from torch's global RNG,
    whose state a resumed run restores from the checkpoint.
    """
    return DataLoader(stream, batch_size=None, num_workers=num_workers, generator=torch.Generator().manual_seed(0),
                      persistent_workers=False, prefetch_factor=2 if num_workers else None)
