"""Bad input raises ValueError/TypeError (IndexError for indexing) whose
message names the op, the shapes and what was expected."""
import re

import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F


def t(*shape, dtype=np.float32, grad=True):
    return mdl.tensor(np.ones(shape, dtype), requires_grad=grad and np.dtype(dtype).kind == "f")


CASES = [
    # (call, error type, message pattern)
    (lambda: t(2, 3) + t(4), ValueError, r"add: shapes (2, 3) and (4,) cannot be broadcast together"),
    (lambda: t(2, 3) * t(3, 2), ValueError, r"mul: shapes (2, 3) and (3, 2) cannot be broadcast"),
    (lambda: t(2, 3) / t(4), ValueError, r"div: shapes (2, 3) and (4,) cannot be broadcast together"),
    (lambda: mdl.maximum(t(2), t(3)), ValueError, r"maximum: shapes (2,) and (3,)"),
    (lambda: mdl.where(t(2) > 0, t(3), t(2)), ValueError, r"where: shapes (2,) and (3,) and (2,)"),
    (lambda: t(3, 4) @ t(5, 2), ValueError, r"matmul: cannot multiply (3, 4) by (5, 2)"),
    (lambda: t(4) @ t(5), ValueError, r"matmul: cannot multiply (4,) by (5,)"),
    (lambda: t(2, 3, 4) @ t(3, 4, 5), ValueError, r"matmul (batch dims): shapes (2,) and (3,)"),
    (lambda: t() @ t(3), ValueError, r"matmul: both arguments need at least 1 dimension, got shapes () and (3,)"),
    (lambda: t(2, 3).reshape(4, 2), ValueError, r"reshape: cannot reshape a tensor of shape (2, 3) (6 elements) into (4, 2)"),
    (lambda: t(2, 3).view(-1, -1), ValueError, r"reshape: only one dimension can be -1, got (-1, -1)"),
    (lambda: t(2, 3).reshape(4, -1), ValueError, r"reshape: cannot reshape a tensor of shape (2, 3) (6 elements) into (4, -1)"),
    (lambda: t(2, 3).reshape(2.0, 3), TypeError, r"reshape: sizes must be ints"),
    (lambda: t(2, 3).permute(0, 0), ValueError, r"permute: (0, 0) is not a reordering of the 2 dims of (2, 3)"),
    (lambda: t(2, 3).permute(1, 0, 2), ValueError, r"permute: got 3 dims (1, 0, 2) for a tensor of shape (2, 3)"),
    (lambda: t(2, 3).transpose(0, 2), ValueError, r"transpose: dim 2 is out of range for a tensor of shape (2, 3) with 2 dims"),
    (lambda: t(2, 3).sum(dim=-3), ValueError, r"sum: dim -3 is out of range for a tensor of shape (2, 3)"),
    (lambda: t(2, 3).mean(dim=(0, -2)), ValueError, r"mean: dim (0, -2) names the same axis twice"),
    (lambda: t(2, 0).max(dim=1), ValueError, r"max: cannot reduce an empty dimension of a tensor of shape (2, 0)"),
    (lambda: t(2, 3).unsqueeze(3), ValueError, r"unsqueeze: dim 3 is out of range .* (expected a dim in [-3, 2])"),
    (lambda: t(2, 3).flatten(1, 0), ValueError, r"flatten: start_dim 1 comes after end_dim 0 for a tensor of shape (2, 3)"),
    (lambda: t(2, 3).expand(4, 3, 3), ValueError, r"expand: cannot expand a tensor of shape (2, 3) to (4, 3, 3): dim 1 has size 2"),
    (lambda: t(2, 3).expand(3), ValueError, r"expand: the target (3,) has fewer dims than the tensor's shape (2, 3)"),
    (lambda: mdl.cat([t(2, 3), t(2, 4)], dim=0), ValueError, r"cat: tensors must have the same shape except in dim 0, got (2, 3), (2, 4)"),
    (lambda: mdl.cat([], dim=0), ValueError, r"cat: expected a non-empty list"),
    (lambda: mdl.stack([t(2), t(3)]), ValueError, r"stack: all tensors must have the same shape, got (2,), (3,)"),
    (lambda: t(5, 2).split([2, 2]), ValueError, r"split: sections [2, 2] must be non-negative and add up to 5, the size of dim 0 of shape (5, 2)"),
    (lambda: t(5).split(0), ValueError, r"split: split_size must be positive"),
    (lambda: F.pad(t(2, 3), (1, 1, 1)), ValueError, r"pad: the pad tuple (1, 1, 1) must have an even length of at most 2 * ndim = 4 for a tensor of shape (2, 3)"),
    (lambda: F.pad(t(2, 3), (1, 1, 1, 1, 1, 1)), ValueError, r"pad: the pad tuple"),
    (lambda: F.pad(t(2, 3), (-1, 0)), ValueError, r"pad: negative padding"),
    (lambda: F.pad(t(2, 3), (1, 0), mode="reflect"), ValueError, r"pad: only mode='constant'"),
    (lambda: mdl.where(t(3), t(3), t(3)), TypeError, r"where: the mask/condition must be a bool tensor, got dtype float32"),
    (lambda: t(2, 3).masked_fill(mdl.tensor([1, 0, 1]), 0.0), TypeError, r"masked_fill: the mask/condition must be a bool tensor, got dtype int64"),
    (lambda: t(3).masked_fill(mdl.tensor(np.ones((2, 3), bool)), 0.0), ValueError,
     r"masked_fill: mask of shape (2, 3) does not broadcast to the input's shape (3,)"),
    (lambda: t(2, 3)[5], IndexError, r"getitem: index 5 is out of bounds for axis 0 with size 2 (indexing a tensor of shape (2, 3)"),
    (lambda: t(2, 3)[mdl.tensor([0.5])], TypeError, r"getitem: index arrays must hold integers or bools, got dtype float32"),
    (lambda: t(2, 3)["a"], TypeError, r"getitem: cannot index with str 'a'"),
    (lambda: t(3).clamp(), ValueError, r"clamp: at least one of min and max must be given"),
    (lambda: t(3).clamp("a"), TypeError, r"clamp: min must be a number"),
    (lambda: t(3).clamp(max=mdl.tensor(1.0, requires_grad=True)), TypeError,
     r"clamp: max is a tensor that requires grad, but the bounds get no gradient"),
    (lambda: F.gelu(t(3), approximate="fast"), ValueError, r"gelu: approximate must be 'none' or 'tanh', got 'fast'"),
    (lambda: t(3).astype("not a dtype"), TypeError, r"cast: 'not a dtype' is not a dtype"),
    (lambda: t(3) ** "2", TypeError, r"pow: exponent must be a number or a Tensor, got str"),
    (lambda: t(3, dtype=np.int64).mean(), TypeError, r"mean: needs a floating-point tensor, got dtype int64"),
    (lambda: mdl.tensor(np.arange(3), requires_grad=True), TypeError,
     r"requires_grad: only floating-point tensors can require gradients, got dtype int64"),
    (lambda: mdl.tensor(np.array(["a"])), TypeError, r"tensor: cannot make a tensor from data of dtype <U1"),
    (lambda: mdl.tensor(np.array([None, 1.0], dtype=object)), TypeError, r"tensor: cannot make a tensor from data of dtype object"),
    (lambda: t(2, 3).sum(dim=True), TypeError, r"sum: dim must be an int, got bool"),
    (lambda: t(2, 3).sum(dim=1.0), TypeError, r"sum: dim must be an int, got float"),
    (lambda: t(2, 3).sum(dim="1"), TypeError, r"sum: dim must be an int, got str"),
    (lambda: t(2, 3).softmax(dim=(1,)), TypeError, r"softmax: dim must be an int, got (1,) for input of shape (2, 3)"),
]


def test_a_dim_may_be_any_integer_type_but_bool():
    x = mdl.tensor(np.arange(6.0).reshape(2, 3))
    for dim in (np.int64(1), np.int32(-1), 1):
        np.testing.assert_array_equal(x.sum(dim=dim).data, [3.0, 12.0])
    np.testing.assert_array_equal(x.sum(dim=(np.int64(0), 1)).data, 15.0)


@pytest.mark.parametrize("call, error, pattern", CASES, ids=[c[2][:40] for c in CASES])
def test_bad_input_message(call, error, pattern):
    with pytest.raises(error, match=re.escape(pattern).replace(r"\.\*", ".*")):
        call()


def test_errors_come_before_any_graph_is_built():
    x = t(3, 4)
    with pytest.raises(ValueError):
        x @ t(5, 2)
    assert x.grad is None and x.grad_fn is None
