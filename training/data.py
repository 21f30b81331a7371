"""Deterministic, resumable streaming of training batches from tar shards.

Order: per epoch, the shards are permuted and the samples inside each shard are permuted
(seeded by ``(seed, epoch)``; locality stays shard by shard). The epoch order is cut into
*global batches* of ``batch_size`` samples; global batch ``g`` belongs to process
``g % world_size``; a process's local batch ``l`` is produced by data-loader worker
``l % num_workers`` (the order in which ``torch.utils.data.DataLoader`` polls workers).
So the stream position is one integer — the number of local batches a process has
consumed — and resuming from it reproduces exactly the batches an uninterrupted run sees.
The incomplete tail of an epoch is dropped so every process gets the same number of batches.

With a data mix (``mix``: kind -> weight, stage 1's double-reprojection/triplet ratio) the
global sample sequence interleaves the kinds in a fixed pattern of period at most
:data:`MIX_PERIOD` that holds the weights exactly (e.g. 3:1 → ``d d t d | d d t d ...``; the
weights are rounded to that period); each kind is read in its own epochs (shard-wise permuted
as above, seeded by ``(seed, kind, epoch)``), so a rare kind repeats more often than a common one.
Sample ``n`` of the sequence is a closed-form function of ``n``: positions stay one integer.

Only the members a run needs are read: ``with_video`` (per-step encoding, validation renders)
and ``with_latents`` (cached latents); training from cached latents never reads, decodes or
checksums the videos.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from trajcrafter_core.errors import TrajCrafterError

from .shards import Sample, SampleRef, index_shards, read_sample

VIDEO_KEYS = ("target", "render", "mask", "reference")
#: longest period of the kind pattern of a data mix (weights are rounded to multiples of 1/period)
MIX_PERIOD = 100


def _epoch_order(refs: List[SampleRef], seed: int, epoch: int, shuffle: bool, salt: int = 0) -> List[SampleRef]:
    if not shuffle:
        return list(refs)
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) + salt)
    by_shard: Dict[str, List[SampleRef]] = {}
    for ref in refs:
        by_shard.setdefault(str(ref.shard), []).append(ref)
    names = sorted(by_shard)
    order: List[SampleRef] = []
    for i in torch.randperm(len(names), generator=gen).tolist():
        group = by_shard[names[i]]
        order.extend(group[j] for j in torch.randperm(len(group), generator=gen).tolist())
    return order


def mix_pattern(weights: Mapping[str, float], period: int = MIX_PERIOD) -> List[str]:
    """The repeating kind pattern of a data mix: the smallest period (at most ``period``) whose
    counts hold the weights (rounded), kinds spread evenly (smooth weighted round robin)."""
    total = float(sum(weights.values()))
    shares = {k: Fraction(w / total).limit_denominator(period) for k, w in weights.items() if w > 0}
    length = 1
    for share in shares.values():
        length = length * share.denominator // math.gcd(length, share.denominator)
    counts = {k: int(s * length) for k, s in shares.items()}
    length = sum(counts.values())  # rounding may leave the shares summing to != 1
    pattern, credit = [], {k: 0 for k in counts}
    for _ in range(length):
        for k in counts:
            credit[k] += counts[k]
        best = max(counts, key=lambda k: (credit[k], -list(counts).index(k)))
        credit[best] -= length
        pattern.append(best)
    return pattern


def collate_samples(samples: Sequence[Sample], num_frames: int, height: int, width: int,
                    with_latents: bool) -> Dict:
    """Stack samples into a batch; every sample must have the configured geometry.

    Video tensors (when the samples were read with them) stay uint8
    (``target/render/reference`` ``[B,T,H,W,3]``, ``mask`` ``[B,T,H,W]`` with 1 = hole); a
    double-reprojection sample's reference is its target. ``latents`` (a dict of the tensors
    every sample carries, stacked) is present only if every sample carries latents.
    """
    for s in samples:
        if tuple(s.geometry) != (num_frames, height, width):
            raise TrajCrafterError(
                f"sample {s.key} ({s.meta.get('source', '?')}) has {list(s.geometry)} [T,H,W] but the "
                f"config asks for {[num_frames, height, width]} (data.num_frames/height/width); "
                f"prepare the shards at the training size or change the config."
            )
    batch: Dict = {
        "key": [s.key for s in samples],
        "kind": [s.kind for s in samples],
        "prompt": [s.prompt for s in samples],
    }
    if all(s.video is not None for s in samples):
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
            # what every sample has: a triplet's reference latents are not stacked in a batch
            # that mixes in double-reprojection samples (stage 1, which never uses them)
            names = set.intersection(*(set(s.latents) for s in samples))
            batch["latents"] = {n: torch.stack([s.latents[n] for s in samples]) for n in sorted(names)}
    return batch


class ShardBatchStream(IterableDataset):
    """Infinite stream of collated batches for one process (see module docstring).

    ``shards``: file/glob patterns, or samples already indexed (:func:`training.shards.index_shards`,
    so a process scans the tar headers once). ``start_batch``: local batches already consumed
    (resume position). ``mix``: kind -> weight (module docstring); ``None`` = every sample once
    per epoch.
    """

    def __init__(self, shards: Union[Sequence[str], Sequence[SampleRef]], kinds: Sequence[str], batch_size: int,
                 num_frames: int, height: int, width: int, seed: int = 0, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1, with_latents: bool = True, start_batch: int = 0, with_video: bool = True,
                 mix: Optional[Mapping[str, float]] = None):
        super().__init__()
        shards = list(shards)
        if shards and isinstance(shards[0], SampleRef):
            refs = [r for r in shards if r.kind in kinds]
        else:
            refs = index_shards(shards, kinds)
        self.refs = refs
        self.kinds = list(kinds)
        self.batch_size = batch_size
        self.geometry = (num_frames, height, width)
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.with_latents = with_latents
        self.with_video = with_video
        self.start_batch = start_batch
        self._order_cache: Dict[str, Tuple[int, List[SampleRef]]] = {}
        self.pattern: Optional[List[str]] = None
        self.by_kind: Dict[str, List[SampleRef]] = {}
        if mix:
            self.pattern = mix_pattern({k: float(w) for k, w in mix.items() if k in self.kinds})
            for kind in sorted(set(self.pattern)):
                self.by_kind[kind] = [r for r in refs if r.kind == kind]
                if not self.by_kind[kind]:
                    raise TrajCrafterError(f"data.mix gives {kind} a weight of {mix[kind]} but the shards hold no "
                                           f"{kind} sample; add such shards or set its weight to 0.")
        elif self.batches_per_epoch == 0:
            raise TrajCrafterError(
                f"the shards hold {len(refs)} sample(s) of kind {self.kinds}; one step needs "
                f"batch_size x processes = {batch_size * world_size}. Add data or lower data.batch_size."
            )

    @property
    def batches_per_epoch(self) -> int:
        """Local batches per epoch (the same on every process; without a data mix)."""
        return len(self.refs) // (self.batch_size * self.world_size)

    def _order(self, kind: str, epoch: int) -> List[SampleRef]:
        """The sample order of ``epoch`` (of one kind's epochs with a data mix; kind "" without);
        the current epoch of each kind is cached."""
        cached = self._order_cache.get(kind)
        if cached is None or cached[0] != epoch:
            refs = self.by_kind[kind] if kind else self.refs
            salt = 0 if not kind else 7919 * (1 + sorted(self.by_kind).index(kind))
            cached = self._order_cache[kind] = (epoch, _epoch_order(refs, self.seed, epoch, self.shuffle, salt))
        return cached[1]

    def _mixed_sample(self, n: int) -> SampleRef:
        """Sample ``n`` of the global sequence of a data mix (module docstring)."""
        period, offset = divmod(n, len(self.pattern))
        kind = self.pattern[offset]
        index = period * self.pattern.count(kind) + self.pattern[:offset].count(kind)
        epoch, j = divmod(index, len(self.by_kind[kind]))
        return self._order(kind, epoch)[j]

    def batch_refs(self, local_batch: int) -> List[SampleRef]:
        """The samples of this process's ``local_batch``-th batch since the start of training."""
        if self.pattern is not None:
            g = local_batch * self.world_size + self.rank
            return [self._mixed_sample(n) for n in range(g * self.batch_size, (g + 1) * self.batch_size)]
        epoch, j = divmod(local_batch, self.batches_per_epoch)
        order = self._order("", epoch)
        g = j * self.world_size + self.rank
        return order[g * self.batch_size:(g + 1) * self.batch_size]

    def __iter__(self) -> Iterator[Dict]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        local = self.start_batch + worker
        while True:
            samples = [read_sample(ref, self.with_latents, with_video=self.with_video)
                       for ref in self.batch_refs(local)]
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
