"""Transforms: normalize against hand values, crop and flip on hand-made examples and a loop reference."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minidl.data import load_dataset, transforms


class _FixedRng:
    """Stands in for np.random.Generator, returning chosen values."""

    def __init__(self, integers=(), random=()):
        self._integers, self._random = list(integers), np.asarray(random)

    def integers(self, low, high, size):
        out = np.asarray(self._integers.pop(0))
        assert out.shape == (size,) and np.all((low <= out) & (out < high))
        return out

    def random(self, size):
        assert size == len(self._random)
        return self._random


def test_normalize_scalar_and_per_channel():
    x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    np.testing.assert_allclose(transforms.normalize(x, 2.0, 4.0), (x - 2) / 4)
    out = transforms.normalize(x, [1.0, 5.0], [2.0, 0.5])
    np.testing.assert_allclose(out[0, 0], (x[0, 0] - 1) / 2)
    np.testing.assert_allclose(out[0, 1], (x[0, 1] - 5) / 0.5)
    assert out.dtype == np.float32 and x[0, 0, 0, 0] == 0
    with pytest.raises(ValueError, match="std must be positive"):
        transforms.normalize(x, 0.0, 0.0)
    with pytest.raises(ValueError, match="one value per channel"):
        transforms.normalize(x, [1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"expected a batch \(N, C, H, W\)"):
        transforms.normalize(x[0], 0.0, 1.0)


def test_digits_normalization_constants_match_the_data():
    train = load_dataset("digits")
    mean, std = transforms.mean_std(train.images)
    assert (mean, std) == pytest.approx(transforms.NORMALIZATION["digits"], abs=5e-4)
    z = transforms.normalize_dataset(train.images, "digits")
    assert abs(z.mean()) < 1e-3 and abs(z.std() - 1) < 1e-3


def test_random_crop_hand_made_example():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)     # [[1,2,3],[4,5,6],[7,8,9]]
    # padding 1: window top=0 (shift down by 1), left=2 (shift left by 1)
    out = transforms.random_crop(x, 1, _FixedRng(integers=[[0], [2]]))
    np.testing.assert_array_equal(out[0, 0], [[0, 0, 0], [2, 3, 0], [5, 6, 0]])
    out = transforms.random_crop(x, 1, _FixedRng(integers=[[1], [1]]))  # centre: unchanged
    np.testing.assert_array_equal(out, x)


def test_random_crop_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 4, 6)).astype(np.float32)
    tops, lefts = rng.integers(0, 5, 5), rng.integers(0, 5, 5)
    out = transforms.random_crop(x, 2, _FixedRng(integers=[tops, lefts]))
    for i in range(5):
        for c in range(2):
            for r in range(4):
                for q in range(6):
                    sr, sq = r + tops[i] - 2, q + lefts[i] - 2             # source pixel
                    inside = 0 <= sr < 4 and 0 <= sq < 6
                    assert out[i, c, r, q] == (x[i, c, sr, sq] if inside else 0)


def test_horizontal_flip_hand_made_example():
    x = np.array([[[[1, 2, 3]]], [[[4, 5, 6]]]], dtype=np.float32)  # (2, 1, 1, 3)
    out = transforms.horizontal_flip(x, _FixedRng(random=[0.2, 0.7]))
    np.testing.assert_array_equal(out[:, 0, 0], [[3, 2, 1], [4, 5, 6]])
    assert x[0, 0, 0, 0] == 1


def test_augment_flips_fashion_but_never_digits():
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 8, 8)).astype(np.float32)
    digits = transforms.augment(x, "digits", np.random.default_rng(1), padding=0)
    np.testing.assert_array_equal(digits, x)
    fashion = transforms.augment(x, "fashion-mnist", np.random.default_rng(1), padding=0)
    flipped = np.all(fashion == x[..., ::-1], axis=(1, 2, 3))
    kept = np.all(fashion == x, axis=(1, 2, 3))
    assert np.all(flipped | kept) and 10 < flipped.sum() < 54
    shifted = transforms.augment(x, "digits", np.random.default_rng(2))
    assert shifted.shape == x.shape and not np.array_equal(shifted, x)


@pytest.mark.parametrize("size, shift", [(8, 1), (28, 2)])
def test_augment_default_shift_is_one_pixel_for_8x8_and_two_for_28x28(size, shift):
    # One bright pixel in the middle of each image: where it lands after the crop
    # is the shift. Over 400 images every shift from -shift to +shift turns up, and
    # no larger one.
    images = np.zeros((400, 1, size, size), np.float32)
    middle = size // 2
    images[:, 0, middle, middle] = 1.0
    out = transforms.augment(images, "digits", np.random.default_rng(3))
    rows, cols = np.nonzero(out[:, 0].max(axis=2))[1], np.nonzero(out[:, 0].max(axis=1))[1]
    assert len(rows) == len(cols) == len(images)    # the pixel never leaves the image
    offsets = set((rows - middle).tolist()) | set((cols - middle).tolist())
    assert offsets == set(range(-shift, shift + 1)), offsets


@given(n=st.integers(1, 3), c=st.integers(1, 2), h=st.integers(1, 5), w=st.integers(1, 5),
       padding=st.integers(0, 3), transposed=st.booleans(), seed=st.integers(0, 2**31))
def test_random_crop_property_against_loop(n, c, h, w, padding, transposed, seed):
    rng = np.random.default_rng(seed)
    if transposed:                                   # a non-contiguous view (N, C, H, W)
        x = rng.standard_normal((n, c, w, h)).astype(np.float32).transpose(0, 1, 3, 2)
    else:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    tops, lefts = rng.integers(0, 2 * padding + 1, n), rng.integers(0, 2 * padding + 1, n)
    fixed = _FixedRng(integers=[tops, lefts]) if padding else None
    before = x.copy()
    out = transforms.random_crop(x, padding, fixed)
    np.testing.assert_array_equal(x, before)         # input untouched
    expected = np.zeros_like(before)
    for i in range(n):
        for r in range(h):
            for q in range(w):
                sr, sq = r + (tops[i] - padding if padding else 0), q + (lefts[i] - padding if padding else 0)
                if 0 <= sr < h and 0 <= sq < w:
                    expected[i, :, r, q] = before[i, :, sr, sq]
    np.testing.assert_array_equal(out, expected)


@given(n=st.integers(1, 6), w=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_horizontal_flip_property(n, w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, 3, w)).astype(np.float32)[:, ::-1]   # negative-stride view
    draws = rng.random(n)
    out = transforms.horizontal_flip(x, _FixedRng(random=draws), p=0.5)
    for i in range(n):
        np.testing.assert_array_equal(out[i], x[i, :, :, ::-1] if draws[i] < 0.5 else x[i])


def test_per_channel_statistics_count_channels_not_rows_and_crop_padding_must_be_an_int():
    images = np.arange(3 * 4 * 5, dtype=np.float32).reshape(1, 3, 4, 5)     # C=3, H=4, W=5
    out = transforms.normalize(images, [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    np.testing.assert_allclose(out[0, 2], (images[0, 2] - 3.0) / 4.0)
    with pytest.raises(ValueError, match="one value per channel"):
        transforms.normalize(images, [0.0] * 4, [1.0] * 4)                # 4 = H, not C
    rng = np.random.default_rng(0)
    for padding in (1.5, -1):
        with pytest.raises(ValueError, match="padding must be a non-negative int"):
            transforms.random_crop(images, padding, rng)
