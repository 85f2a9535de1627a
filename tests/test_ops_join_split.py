"""split and chunk cut a tensor into PyTorch's pieces (sizes written out by hand
and compared with torch where installed), and cat/stack's gradients go back
to the right piece."""
import numpy as np
import pytest

import minidl as mdl

try:
    import torch
except ImportError:
    torch = None


@pytest.mark.parametrize("length, chunks, sizes", [
    (5, 2, [3, 2]), (6, 3, [2, 2, 2]), (7, 3, [3, 3, 1]), (10, 4, [3, 3, 3, 1]),
    (2, 5, [1, 1]), (1, 1, [1]), (9, 2, [5, 4]),
])
def test_chunk_gives_pytorchs_piece_sizes(length, chunks, sizes):
    x = mdl.tensor(np.arange(2 * length, dtype=np.float64).reshape(2, length), requires_grad=True)
    pieces = mdl.chunk(x, chunks, dim=1)
    assert [p.shape[1] for p in pieces] == sizes
    if torch is not None:
        assert [p.shape[1] for p in torch.arange(2 * length).reshape(2, length).chunk(chunks, dim=1)] == sizes
    np.testing.assert_array_equal(np.concatenate([p.data for p in pieces], axis=1), x.data)
    total = sum(((i + 1) * p).sum() for i, p in enumerate(pieces))       # piece i weighted i + 1
    total.backward()
    expected = np.repeat(np.arange(1, len(sizes) + 1), sizes)[None].repeat(2, axis=0)
    np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("length, size, sizes", [(5, 2, [2, 2, 1]), (6, 3, [3, 3]), (4, 5, [4]), (3, 1, [1, 1, 1])])
def test_split_by_size_leaves_the_remainder_last(length, size, sizes):
    x = mdl.tensor(np.arange(length, dtype=np.float64))
    assert [p.shape[0] for p in mdl.split(x, size)] == sizes
    if torch is not None:
        assert [p.shape[0] for p in torch.arange(length).split(size)] == sizes


def test_split_by_sections_along_a_negative_dim_and_its_gradient():
    x = mdl.tensor(np.arange(12, dtype=np.float64).reshape(2, 6), requires_grad=True)
    a, b, c = mdl.split(x, [1, 3, 2], dim=-1)
    np.testing.assert_array_equal(b.data, [[1, 2, 3], [7, 8, 9]])
    (a.sum() * 1 + b.sum() * 2 + c.sum() * 3).backward()
    np.testing.assert_array_equal(x.grad, [[1, 2, 2, 2, 3, 3]] * 2)
    with pytest.raises(ValueError, match=r"split: sections \[1, 2\] must be non-negative and add up to 6"):
        mdl.split(x, [1, 2], dim=1)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack_send_each_piece_its_own_gradient(dim):
    rng = np.random.default_rng(dim + 5)
    shapes = [(2, 3), (2, 3), (2, 3)]
    if dim == 0:
        shapes = [(1, 3), (3, 3), (2, 3)]
    elif dim in (1, -1):
        shapes = [(2, 1), (2, 4), (2, 2)]
    arrays = [rng.standard_normal(s) for s in shapes]
    tensors = [mdl.tensor(a, requires_grad=True) for a in arrays]
    out = mdl.cat(tensors, dim=dim)
    np.testing.assert_array_equal(out.data, np.concatenate(arrays, axis=dim))
    g = rng.standard_normal(out.shape)
    out.backward(g)
    cuts = np.cumsum([s[dim] for s in shapes])[:-1]
    for t, want in zip(tensors, np.split(g, cuts, axis=dim)):
        np.testing.assert_array_equal(t.grad, want)

    same = [mdl.tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(3)]
    stacked = mdl.stack(same, dim=dim)
    np.testing.assert_array_equal(stacked.data, np.stack([t.data for t in same], axis=dim))
    g = rng.standard_normal(stacked.shape)
    stacked.backward(g)
    for i, t in enumerate(same):
        np.testing.assert_array_equal(t.grad, np.take(g, i, axis=dim))


def test_chunk_of_an_empty_dim_gives_that_many_empty_pieces():
    # PyTorch: torch.zeros(2, 0).chunk(3, dim=1) is three (2, 0) tensors
    x = mdl.tensor(np.zeros((2, 0)))
    for chunks in (1, 3):
        assert [p.shape for p in mdl.chunk(x, chunks, dim=1)] == [(2, 0)] * chunks
        if torch is not None:
            assert [tuple(p.shape) for p in torch.zeros(2, 0).chunk(chunks, dim=1)] == [(2, 0)] * chunks
    for chunks in (0, -2):
        with pytest.raises(ValueError, match=f"chunk: chunks must be positive, got {chunks}"):
            mdl.chunk(mdl.tensor(np.zeros(4)), chunks)


def test_split_sections_may_be_empty_and_get_no_gradient():
    x = mdl.tensor(np.arange(5.0), requires_grad=True)
    first, middle, last = mdl.split(x, [0, 5, 0])
    assert (first.shape, middle.shape, last.shape) == ((0,), (5,), (0,))
    np.testing.assert_array_equal(middle.data, x.data)
    (first.sum() + 2 * middle.sum() + last.sum()).backward()
    np.testing.assert_array_equal(x.grad, np.full(5, 2.0))
    with pytest.raises(ValueError, match=r"sections \[-1, 6\] must be non-negative"):
        mdl.split(x, [-1, 6])


def test_cat_of_one_tensor_and_of_vectors_but_not_of_scalars():
    one = mdl.tensor(np.arange(3.0), requires_grad=True)
    out = mdl.cat([one])                                     # a copy of the one tensor
    np.testing.assert_array_equal(out.data, [0.0, 1.0, 2.0])
    (out * mdl.tensor(np.array([1.0, 2.0, 3.0]))).sum().backward()
    np.testing.assert_array_equal(one.grad, [1.0, 2.0, 3.0])
    vectors = mdl.cat([mdl.tensor(np.array([1.0])), mdl.tensor(np.array([2.0, 3.0]))])
    np.testing.assert_array_equal(vectors.data, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="cat: zero-dimensional tensors cannot be concatenated"):
        mdl.cat([mdl.tensor(1.0), mdl.tensor(2.0)])
    with pytest.raises(ValueError, match="stack: all tensors must have the same shape, got \\(2,\\), \\(3,\\)"):
        mdl.stack([mdl.tensor(np.zeros(2)), mdl.tensor(np.zeros(3))])
