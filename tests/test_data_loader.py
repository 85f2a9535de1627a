"""ArrayDataset and DataLoader: batch counts, order, seeded per-epoch shuffling, Tensor output."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl as mdl
from minidl.data import ArrayDataset, DataLoader, load_dataset


def _counting_dataset(n, side=2):
    images = np.arange(n * side * side, dtype=np.float32).reshape(n, 1, side, side)
    return ArrayDataset(images, np.arange(n))


def test_array_dataset_validates():
    with pytest.raises(ValueError, match=r"different numbers of samples \(3 vs 4\)"):
        ArrayDataset(np.zeros((3, 1, 2, 2)), np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match="integer class indices"):
        ArrayDataset(np.zeros((3, 1, 2, 2)), np.zeros(3))


@pytest.mark.parametrize("n, batch, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, False, [3, 3, 3]),
    (9, 3, True, [3, 3, 3]), (2, 5, False, [2]), (2, 5, True, []),
])
def test_loader_batch_counts(n, batch, drop_last, sizes):
    loader = DataLoader(_counting_dataset(n), batch_size=batch, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) == len(batches)
    assert [len(y.data) for _, y in batches] == sizes
    if batches:
        x, y = batches[0]
        assert isinstance(x, mdl.Tensor) and isinstance(y, mdl.Tensor)
        assert x.shape == (sizes[0], 1, 2, 2) and x.dtype == np.float32 and y.dtype == np.int64
        assert not x.requires_grad


def test_loader_without_shuffle_keeps_order_and_pairs():
    ds = _counting_dataset(7)
    batches = list(DataLoader(ds, batch_size=3))
    labels = np.concatenate([y.data for _, y in batches])
    images = np.concatenate([x.data for x, _ in batches])
    np.testing.assert_array_equal(labels, np.arange(7))
    np.testing.assert_array_equal(images, ds.images)


def test_loader_shuffle_sees_every_sample_once_and_keeps_pairs():
    ds = _counting_dataset(23)
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=5)
    for _ in range(3):
        xs, ys = zip(*[(x.data, y.data) for x, y in loader])
        labels = np.concatenate(ys)
        np.testing.assert_array_equal(np.sort(labels), np.arange(23))
        np.testing.assert_array_equal(np.concatenate(xs), ds.images[labels])


def _epoch_orders(loader, epochs):
    return [np.concatenate([y.data for _, y in loader]) for _ in range(epochs)]


def test_loader_seeded_shuffle_is_reproducible_and_changes_per_epoch():
    ds = _counting_dataset(50)
    a = _epoch_orders(DataLoader(ds, batch_size=8, shuffle=True, seed=11), 3)
    b = _epoch_orders(DataLoader(ds, batch_size=8, shuffle=True, seed=11), 3)
    c = _epoch_orders(DataLoader(ds, batch_size=8, shuffle=True, seed=12), 1)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], np.arange(50))


def test_loader_unseeded_shuffle_follows_manual_seed():
    ds = _counting_dataset(30)
    mdl.manual_seed(4)
    first = _epoch_orders(DataLoader(ds, batch_size=7, shuffle=True), 2)
    mdl.manual_seed(4)
    again = _epoch_orders(DataLoader(ds, batch_size=7, shuffle=True), 2)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])


def test_loader_accepts_any_indexable_dataset_and_does_not_alias():
    class Pairs:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((1, 2, 2), float(i), dtype=np.float32), i

    x, y = next(iter(DataLoader(Pairs(), batch_size=5)))
    np.testing.assert_array_equal(y.data, np.arange(5))
    np.testing.assert_array_equal(x.data[:, 0, 0, 0], np.arange(5))
    ds = _counting_dataset(4)
    x, _ = next(iter(DataLoader(ds, batch_size=4)))
    x.data[:] = -1
    assert ds.images.min() == 0


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_loader_rejects_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(_counting_dataset(3), batch_size=bad)


def test_loader_on_digits_end_to_end():
    loader = DataLoader(load_dataset("digits"), batch_size=64, shuffle=True, seed=0, drop_last=True)
    assert len(loader) == 1347 // 64
    shapes = {x.shape for x, _ in loader}
    assert shapes == {(64, 1, 8, 8)}


@given(n=st.integers(1, 40), batch=st.integers(1, 12), drop_last=st.booleans(),
       shuffle=st.booleans(), seed=st.integers(0, 2**31))
def test_loader_properties(n, batch, drop_last, shuffle, seed):
    ds = _counting_dataset(n, side=1)
    loader = DataLoader(ds, batch_size=batch, shuffle=shuffle, drop_last=drop_last, seed=seed)
    batches = [(x.data, y.data) for x, y in loader]
    assert len(batches) == len(loader) == (n // batch if drop_last else -(-n // batch))
    assert all(len(y) == batch for _, y in batches[:-1])
    seen = np.concatenate([y for _, y in batches]) if batches else np.zeros(0, dtype=np.int64)
    assert len(set(seen.tolist())) == len(seen)                    # no sample twice
    assert len(seen) == (n - n % batch if drop_last else n)
    for x, y in batches:
        np.testing.assert_array_equal(x[:, 0, 0, 0], y)            # images stay with labels


def test_array_dataset_slices_like_tensor_dataset():
    ds = _counting_dataset(6)
    images, labels = ds[1:4]
    assert images.shape == (3, 1, 2, 2)
    np.testing.assert_array_equal(labels, [1, 2, 3])
    images, labels = ds[np.array([5, 0])]
    np.testing.assert_array_equal(labels, [5, 0])
    image, label = ds[np.int64(-1)]
    assert label == 5 and image.shape == (1, 2, 2)


def test_the_default_batch_size_is_one_as_in_pytorch():
    dataset = ArrayDataset(np.arange(3.0).reshape(3, 1), np.arange(3))
    batches = list(DataLoader(dataset))
    assert len(batches) == 3 and all(len(labels) == 1 for _, labels in batches)
