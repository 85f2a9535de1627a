"""F.embedding: forward against a loop over positions, backward against a
loop that adds each output gradient into its row, gradcheck with repeated
indices, and clear errors for out-of-range and non-integer indices."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import nn
from minidl.gradcheck import gradcheck


@given(num=st.integers(1, 7), dim=st.integers(1, 4),
       index_shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_embedding_forward_and_backward_match_loops(num, dim, index_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    weight = mdl.tensor(rng.standard_normal((num, dim)).astype(dtype), requires_grad=True)
    indices = rng.integers(0, num, size=index_shape)
    out = F.embedding(indices, weight)
    grad = rng.standard_normal(out.shape).astype(dtype)
    out.backward(grad)

    expected = np.empty(tuple(index_shape) + (dim,), dtype)
    expected_grad = np.zeros((num, dim), dtype)
    for position in np.ndindex(*index_shape):
        row = indices[position]
        expected[position] = weight.data[row]
        expected_grad[row] += grad[position]
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.data, expected)
    np.testing.assert_allclose(weight.grad, expected_grad, rtol=1e-5, atol=1e-6)


def test_embedding_repeated_indices_accumulate_gradients():
    weight = mdl.tensor(np.zeros((3, 2)), requires_grad=True)
    out = F.embedding(np.array([1, 1, 1, 2]), weight)
    out.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(weight.grad, [[0, 0], [3, 3], [1, 1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_backward_with_many_repeats_matches_sequential_adds(dtype):
    # A batch of tokens: each of 50 rows picked ~80 times, in no order. The
    # gradients of one row are summed in a different order than one position
    # at a time, so they agree within rounding.
    rng = np.random.default_rng(3)
    indices = rng.integers(0, 50, size=(16, 256))
    weight = mdl.tensor(rng.standard_normal((60, 8)).astype(dtype), requires_grad=True)   # rows 50..59 unused
    grad = rng.standard_normal((16, 256, 8)).astype(dtype)
    F.embedding(indices, weight).backward(grad)
    expected = np.zeros((60, 8), np.float64)
    np.add.at(expected, indices.reshape(-1), grad.reshape(-1, 8).astype(np.float64))
    assert weight.grad.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(weight.grad, expected, rtol=tol, atol=tol * 10)
    assert not weight.grad[50:].any()


def test_embedding_of_no_indices_gives_a_zero_gradient():
    weight = mdl.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    out = F.embedding(np.zeros((0, 4), np.int64), weight)
    assert out.shape == (0, 4, 2)
    (out.sum() + (weight * 0).sum()).backward()
    np.testing.assert_array_equal(weight.grad, np.zeros((3, 2)))


def test_embedding_gradcheck_with_repeats():
    rng = np.random.default_rng(0)
    indices = np.array([[0, 3, 3], [1, 0, 3]])
    assert gradcheck(lambda w: F.embedding(indices, w), [rng.standard_normal((4, 3))])


def test_embedding_accepts_index_tensor_and_padding_idx_gets_no_gradient():
    weight = mdl.tensor(np.ones((4, 2)), requires_grad=True)
    out = F.embedding(mdl.tensor(np.array([0, 2, 2, 3])), weight, padding_idx=2)
    out.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(weight.grad, [[1, 1], [0, 0], [0, 0], [1, 1]])


@pytest.mark.parametrize("padding_idx, row", [(-1, 3), (-4, 0), (-2, 2), (1, 1)])
def test_a_negative_padding_idx_counts_from_the_end_like_pytorch(padding_idx, row):
    weight = mdl.tensor(np.ones((4, 2)), requires_grad=True)
    F.embedding(np.array([0, 1, 2, 3, 3]), weight, padding_idx=padding_idx).backward(np.ones((5, 2)))
    expected = np.array([[1, 1], [1, 1], [1, 1], [2, 2]], dtype=np.float64)
    expected[row] = 0
    np.testing.assert_array_equal(weight.grad, expected)
    layer = nn.Embedding(4, 2, padding_idx=padding_idx)
    assert layer.padding_idx == row
    np.testing.assert_array_equal(layer.weight.data[row], 0)


@pytest.mark.parametrize("indices, error, message", [
    (np.array([0, 5]), ValueError, "index 5 is out of range"),
    (np.array([-1, 0]), ValueError, "index -1 is out of range"),
    (np.array([0.0, 1.0]), TypeError, "integer"),
])
def test_embedding_bad_indices_raise_clear_errors(indices, error, message):
    weight = mdl.tensor(np.ones((5, 2)))
    with pytest.raises(error, match="embedding") as info:
        F.embedding(indices, weight)
    assert message in str(info.value)


def test_embedding_weight_must_be_2d():
    with pytest.raises(ValueError, match=r"embedding: weight must have shape .*got shape \(5,\)"):
        F.embedding(np.array([0]), mdl.tensor(np.ones(5)))
