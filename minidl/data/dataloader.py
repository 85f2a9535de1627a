"""`DataLoader`: cut a dataset into mini-batches of minidl Tensors.

    loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
    for epoch in range(3):
        for images, labels in loader:   # Tensor (B, 1, H, W) float32, Tensor (B,) int64
            ...
    len(loader)                           # batches per epoch

Shuffling: the loader owns one `np.random.Generator`, made once from `seed`,
and draws a fresh permutation from it at the start of every epoch. So epoch 1
and epoch 2 see different orders, and a new loader with the same seed
replays exactly the same sequence of epochs. With `seed=None` the permutation
comes from minidl's shared generator, so `mdl.manual_seed(s)` fixes it.
"""
import numpy as np

from ..autograd.tensor import Tensor
from .. import random as _random


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size` samples.

    dataset: anything with `__len__` and `__getitem__(i) -> (image, label)`;
        if it also has `get_batch(indices) -> (images, labels)` (ArrayDataset
        does), whole batches are sliced at once instead of stacked one by one.
    shuffle: draw a new order every epoch; otherwise samples come in index order.
    drop_last: drop the final batch if it has fewer than `batch_size` samples.
    seed: seed of this loader's own generator (used only when shuffling).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def __len__(self):
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)             # ceil(n / batch_size)

    def _order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = self._rng if self._rng is not None else _random.generator()
        return rng.permutation(n)

    def _fetch(self, indices):
        if hasattr(self.dataset, "get_batch"):
            images, labels = self.dataset.get_batch(indices)
        else:
            pairs = [self.dataset[int(i)] for i in indices]
            images = np.stack([np.asarray(image) for image, _ in pairs])
            labels = np.array([label for _, label in pairs], dtype=np.int64)
        return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)

    def __iter__(self):
        order = self._order()                       # (N,) sample indices for this epoch
        for b in range(len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            images, labels = self._fetch(indices)   # (B, C, H, W), (B,)
            yield Tensor(images), Tensor(labels)

    def __repr__(self):
        return (f"DataLoader(dataset={self.dataset!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")
