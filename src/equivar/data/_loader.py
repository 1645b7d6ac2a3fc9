"""A dataset of precomputed graphs and a seeded (optionally distributed) loader."""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from ._configuration import Configuration
from ._graph import collate, config_to_graph


class AtomicGraphDataset(Dataset):
    """Graphs of ``configs`` with cutoff ``r_max`` (Å), built once (neighbour lists are precomputed).

    ``dataset[i]`` is the single-graph dict of :func:`config_to_graph`;
    ``dataset.configs[i]`` the source configuration.
    """

    def __init__(self, configs: Sequence[Configuration], r_max: float):
        self.configs = list(configs)
        self.r_max = float(r_max)
        self.graphs = [config_to_graph(c, self.r_max) for c in self.configs]

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int):
        return self.graphs[i]


class ShardSampler(Sampler):
    """Indices ``rank, rank + world_size, ...`` in order: every item exactly once over all ranks (no padding)."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1):
        self.n, self.rank, self.world_size = n, rank, world_size

    def set_epoch(self, epoch: int) -> None:  # same interface as DistributedSampler
        pass

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    collate_fn=None,
) -> DataLoader:
    """A ``DataLoader`` yielding batch dicts, sharded over ``world_size`` ranks.

    With ``shuffle`` the order is a function of ``seed`` and the epoch only:
    call ``loader.sampler.set_epoch(epoch)`` before each epoch (a
    ``DistributedSampler`` is used also for one process), so resumed runs see
    the same batches as uninterrupted ones. Without ``shuffle`` every item is
    seen exactly once over all ranks (:class:`ShardSampler`), for evaluation.
    ``collate_fn`` defaults to the graph :func:`collate` (images:
    :func:`~equivar.data.collate_images`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shuffle:
        sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=drop_last
        )
    else:
        sampler = ShardSampler(len(dataset), rank, world_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn or collate,
        num_workers=0,
        drop_last=drop_last,
    )
