"""The autograd engine: graph walking, accumulation, modes and dtype rules."""
import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F


def test_backward_through_a_100000_op_chain_has_no_recursion_error():
    x = mdl.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0                      # d y / d x stays 1 along the chain
    y = y * 3.0
    y.backward()
    assert x.grad == pytest.approx(3.0)


def test_gradients_accumulate_on_leaves_across_backward_calls():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [2 * 1 + 3, 2 * 2 + 3])
    x.zero_grad()
    assert x.grad is None


def test_diamond_graph_sums_both_paths():
    # y = a*a + exp(a): a is used on two paths that meet again
    x = mdl.tensor([0.5, -1.0], dtype=np.float64, requires_grad=True)
    a = x * 2.0
    y = (a * a + a.exp()).sum()
    y.backward()
    a_val = 2 * x.data
    np.testing.assert_allclose(x.grad, 2 * (2 * a_val + np.exp(a_val)))


def test_a_value_used_twice_in_one_op():
    x = mdl.tensor([3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0])


def test_second_backward_raises_unless_retain_graph():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    x.zero_grad()
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(x.grad, 2 * 2 * x.data)


def test_no_grad_builds_no_graph_and_restores_the_mode():
    x = mdl.tensor([1.0], requires_grad=True)
    with mdl.no_grad():
        y = x * 2.0
        with mdl.enable_grad():
            z = x * 2.0
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert mdl.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_memory():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.grad_fn is None
    y = (x * d).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, d.data)          # d is a constant for backward
    assert x.detach().data is x.data


def test_requires_grad_on_integer_or_bool_data_raises_type_error():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients, got dtype int64"):
        mdl.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(TypeError, match="dtype bool"):
        mdl.tensor(np.array([True]), requires_grad=True)
    with pytest.raises(TypeError, match="dtype object"):
        mdl.tensor(np.array([object()]))


def test_retain_grad_fills_grad_of_an_intermediate():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    np.testing.assert_allclose(x.grad, 2 * h.data * 3)


def test_item_returns_a_python_number_and_rejects_many_elements():
    assert mdl.tensor([[2.5]]).item() == 2.5
    assert isinstance(mdl.tensor([[2.5]]).item(), float)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        mdl.tensor([1.0, 2.0]).item()


@pytest.mark.parametrize("scalar", [2, 2.0, np.float64(2.0), np.float32(2.0), np.int64(2)])
def test_reflected_operators_keep_float32(scalar):
    x = mdl.tensor([1.0, -3.0], requires_grad=True)
    for y, expected in [(scalar * x, [2.0, -6.0]), (scalar + x, [3.0, -1.0]),
                        (scalar - x, [1.0, 5.0]), (scalar / x, [2.0, -2 / 3]), (scalar ** (x * 0.5), None)]:
        assert y.dtype == np.float32, f"{type(scalar).__name__} {y}"
        if expected is not None:
            np.testing.assert_allclose(y.data, expected, rtol=1e-6)
    (scalar * x).sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 2.0])


def test_dtype_rules():
    assert mdl.tensor(1.5).dtype == np.float32                   # Python float
    assert mdl.tensor([1.0, 2.0]).dtype == np.float32            # list of floats
    assert mdl.tensor([1, 2]).dtype == np.int64                  # Python ints
    assert mdl.tensor(np.zeros(2)).dtype == np.float64           # float64 array kept
    assert mdl.tensor(np.zeros(2, np.float16)).dtype == np.float16
    x32 = mdl.tensor([1.0], requires_grad=True)
    x64 = mdl.tensor(np.ones(1), requires_grad=True)
    assert (x32 * 2.5).dtype == np.float32
    assert (x32 + x64).dtype == np.float64                       # NumPy promotion between tensors
    assert F.gelu(x32).dtype == np.float32 and F.sigmoid(x32).dtype == np.float32
    assert x32.exp().dtype == np.float32 and mdl.tensor([1, 2]).exp().dtype == np.float32


def test_cast_backward_returns_the_gradient_in_the_input_dtype():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)               # float32
    y = x.double()
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    as_int = x.astype(np.int64)                                  # no gradient through an integer cast
    assert as_int.dtype == np.int64 and not as_int.requires_grad


def test_comparisons_give_bool_tensors_without_grad():
    x = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal((x == 2.0).data, [False, True, False])
    np.testing.assert_array_equal((x <= mdl.tensor([1.0, 1.0, 4.0])).data, [True, False, True])


def test_comparing_shapes_that_cannot_broadcast_names_the_op_and_both_shapes():
    a, b = mdl.tensor(np.zeros((2, 3))), mdl.tensor(np.zeros(4))
    for compare, name in ((lambda: a < b, "lt"), (lambda: a == b, "eq"), (lambda: a >= b, "ge")):
        with pytest.raises(ValueError, match=rf"^{name}: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
            compare()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where_gives_a_number_the_tensors_dtype_on_either_side(dtype):
    """A Python int beside a float32 tensor made np.where promote to float64."""
    condition = mdl.tensor(np.array([True, False, True]))
    x = mdl.tensor(np.array([1.5, 2.5, 3.5], dtype), requires_grad=True)
    left, right = F.where(condition, x, 2), F.where(condition, 2, x)
    assert left.dtype == dtype and right.dtype == dtype
    np.testing.assert_array_equal(left.data, np.array([1.5, 2, 3.5], dtype))
    np.testing.assert_array_equal(right.data, np.array([2, 2.5, 2], dtype))
    both = F.where(condition, 1.0, 2.0)                            # two numbers, like torch.where
    np.testing.assert_array_equal(both.data, [1.0, 2.0, 1.0])
    tensors = F.where(condition, x, mdl.tensor(np.zeros(3, dtype)))
    np.testing.assert_array_equal(tensors.data, np.array([1.5, 0, 3.5], dtype))


def test_indexing_with_python_lists_of_bools_ints_and_nothing():
    x = mdl.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    np.testing.assert_array_equal(x[[True, False, True]].data, x.data[[True, False, True]])    # a mask
    np.testing.assert_array_equal(x[[2, 0]].data, x.data[[2, 0]])
    empty = x[[]]                                                     # picks no row, as in NumPy
    assert empty.shape == (0, 4)
    empty.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((3, 4)))


def test_module_level_reductions_drop_the_reduced_dim_by_default():
    from minidl.ops import reductions

    x = mdl.tensor(np.arange(6.0).reshape(2, 3))
    for name in ("sum", "mean", "var", "max", "min", "amax", "amin", "logsumexp"):
        reduce = getattr(reductions, name)
        assert reduce(x, dim=1).shape == (2,), name
        assert reduce(x, dim=1, keepdim=True).shape == (2, 1), name
        assert getattr(x, name)(1).shape == (2,), name                  # the Tensor method


def test_detect_anomaly_names_the_op_whose_forward_makes_nan():
    x = mdl.tensor([1.0, -1.0], requires_grad=True)
    with mdl.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"Log forward produced nan at index \(1,\)"):
            with np.errstate(invalid="ignore"):
                x.log()
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().data[1])                         # outside the block: no check


def test_detect_anomaly_names_the_op_whose_backward_makes_inf():
    x = mdl.tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt().sum()                                           # forward is finite: sqrt(0) = 0
    with mdl.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"Sqrt backward produced inf at index \(0,\)"):
            y.backward()


def test_max_over_a_dim_sends_the_gradient_to_the_first_maximum_on_ties():
    x = mdl.tensor([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]], requires_grad=True)
    x.max(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])
    x.zero_grad()
    x.min(dim=0).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 0, 1], [0, 1, 0]])


def test_amax_amin_and_full_max_split_the_gradient_among_ties():
    """PyTorch's rule: amax/amin, and max()/min() over every element, share
    the gradient equally among the tied extremes (hand-computed cases)."""
    x = mdl.tensor([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]], requires_grad=True)
    x.max().backward()                                          # 7 twice: half each
    np.testing.assert_array_equal(x.grad, [[0, 0, 0], [0.5, 0, 0.5]])
    x.zero_grad()
    (x.amax(dim=1) * mdl.tensor([2.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 1], [2, 0, 2]])
    x.zero_grad()
    mdl.amin(x, dim=(0, 1)).backward()                          # one minimum: all of it
    np.testing.assert_array_equal(x.grad, [[1, 0, 0], [0, 0, 0]])
    x.zero_grad()
    x.amax(dim=0, keepdim=True).sum().backward()                # no ties down the columns
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 1]])
    y = mdl.tensor([[3.0, 3.0, 3.0]], requires_grad=True)
    y.amin(dim=1).backward(mdl.tensor([3.0]))
    np.testing.assert_allclose(y.grad, [[1, 1, 1]])


def test_amax_of_a_group_holding_nan_is_nan_and_so_is_its_gradient():
    x = mdl.tensor([[1.0, np.nan, 4.0], [2.0, 2.0, 0.0]], requires_grad=True)
    out = x.amax(dim=1)
    assert np.isnan(out.data[0]) and out.data[1] == 2.0
    out.sum().backward()
    # no element equals a NaN maximum: PyTorch's amax gives the whole group NaN
    np.testing.assert_array_equal(x.grad, [[np.nan, np.nan, np.nan], [0.5, 0.5, 0]])


def test_maximum_splits_the_gradient_on_ties():
    a = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = mdl.tensor([2.0, 2.0, 2.0], requires_grad=True)
    mdl.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad, [0, 0.5, 1])
    np.testing.assert_allclose(b.grad, [1, 0.5, 0])


def test_getitem_backward_accumulates_repeated_indices():
    x = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 0, 1])


def test_sigmoid_has_no_overflow_warning_at_large_inputs():
    x = mdl.tensor([-1000.0, 1000.0, 0.0], requires_grad=True)
    with np.errstate(over="raise", divide="raise", invalid="raise"):     # underflow to 0 is fine
        y = F.sigmoid(x)
        y.sum().backward()
    np.testing.assert_array_equal(y.data, [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.25])


def test_split_returns_one_tensor_per_piece_each_with_its_own_op():
    x = mdl.tensor(np.arange(10.0), requires_grad=True)
    pieces = x.split(4)
    assert [p.shape for p in pieces] == [(4,), (4,), (2,)]
    assert len({id(p.grad_fn) for p in pieces}) == 3
    (pieces[0].sum() + 2.0 * pieces[2].sum()).backward()
    np.testing.assert_array_equal(x.grad, [1, 1, 1, 1, 0, 0, 0, 0, 2, 2])


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mdl.tensor([1.0]).sum().backward()
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\)"):
        (x * 2.0).backward()


def test_chunk_amax_and_contiguous_follow_pytorch():
    x = mdl.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    assert [c.shape for c in x.chunk(3, dim=1)] == [(3, 2), (3, 2)]      # ceil(4 / 3) = 2 per chunk
    assert [c.shape for c in x.chunk(4, dim=1)] == [(3, 1)] * 4
    np.testing.assert_array_equal(x.amax(dim=1).data, [3, 7, 11])
    np.testing.assert_array_equal(x.argmin(dim=0).data, [0, 0, 0, 0])
    y = x.T.contiguous().view(-1)
    np.testing.assert_array_equal(y.data, x.data.T.ravel())
    (y * mdl.tensor(np.arange(12.0))).sum().backward()
    np.testing.assert_array_equal(x.grad, np.arange(12.0).reshape(4, 3).T)


def test_truth_value_of_a_tensor_needs_exactly_one_value():
    assert bool(mdl.tensor([2.0]) > 1.0) is True
    assert bool(mdl.tensor(0.0)) is False
    with pytest.raises(RuntimeError, match=r"bool: a tensor of shape \(2,\) has 2 values"):
        bool(mdl.tensor([1.0, 2.0]) == mdl.tensor([1.0, 3.0]))


# ---- a leaf's .grad never shares memory with an array someone else holds ----------------
# The engine keeps a leaf's first gradient without a copy only when nothing else
# refers to it; these cases each hand the engine an array that someone else does.
class _Passthrough(mdl.Function):
    """y = x; backward returns dL/dy itself (the same array) as dL/dx."""
    def forward(self, x):
        return x.copy()

    def backward(self, grad_output):
        return grad_output


class _ReturnsSaved(mdl.Function):
    """y = 2 x; backward returns an array it saved in forward (for a constant 2 * g)."""
    def forward(self, x):
        self.save_for_backward(np.full_like(x, 2.0))
        return 2 * x

    def backward(self, grad_output):
        (two,) = self.saved_tensors
        return two if np.all(grad_output == 1) else two * grad_output


class _BroadcastGrad(mdl.Function):
    """y = sum(x); backward returns a read-only broadcast view of dL/dy."""
    def forward(self, x):
        self.shape = x.shape
        return np.asarray(x.sum(), dtype=x.dtype)

    def backward(self, grad_output):
        return np.broadcast_to(grad_output, self.shape)


def test_two_leaves_given_the_same_gradient_array_get_separate_grads():
    a = mdl.tensor([1.0, 2.0], requires_grad=True)
    b = mdl.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()                 # add's backward gives one array to both
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 10                             # an optimizer changing one .grad in place
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    np.testing.assert_array_equal(a.grad, [10.0, 10.0])


def test_an_optimizer_step_on_one_leaf_leaves_the_other_leafs_grad_alone():
    a = mdl.tensor([1.0, 2.0], requires_grad=True)
    b = mdl.tensor([3.0, 4.0], requires_grad=True)
    (a - b).sum().backward()
    b_grad_before = b.grad.copy()
    a.grad[...] = 0.0                        # e.g. a user's in-place clipping of one parameter
    mdl.optim.SGD([a, b], lr=0.1).step()
    np.testing.assert_array_equal(b.grad, b_grad_before)
    np.testing.assert_allclose(b.data, [3.0, 4.0] - 0.1 * b_grad_before)


def test_x_plus_x_gets_twice_the_gradient():
    x = mdl.tensor([1.0, -2.0], requires_grad=True)
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    x.grad += 1                              # the engine's own sum: writable, not shared
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_mutating_the_gradient_passed_to_backward_leaves_the_grads_alone():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    y = _Passthrough.apply(x)
    g = np.array([5.0, 6.0], dtype=np.float32)
    y.backward(gradient=g)                   # dL/dx is g itself
    assert not np.shares_memory(x.grad, g)
    g[...] = -1.0
    np.testing.assert_array_equal(x.grad, [5.0, 6.0])


def test_mutating_the_gradient_passed_to_a_leafs_backward_leaves_its_grad_alone():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    g = np.array([5.0, 6.0], dtype=np.float32)
    x.backward(gradient=g)
    g[...] = -1.0
    np.testing.assert_array_equal(x.grad, [5.0, 6.0])


def test_a_gradient_that_is_a_saved_array_is_copied():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    y = _ReturnsSaved.apply(x)
    y.backward(gradient=np.ones(2, np.float32), retain_graph=True)
    (saved,) = y.grad_fn.saved_tensors
    assert not np.shares_memory(x.grad, saved)
    x.grad *= 100
    np.testing.assert_array_equal(saved, [2.0, 2.0])       # the op's saved value is untouched
    x.zero_grad()
    y.backward(gradient=np.ones(2, np.float32))
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_a_read_only_broadcast_gradient_becomes_a_writable_grad():
    x = mdl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    _BroadcastGrad.apply(x).backward()
    assert x.grad.flags.writeable and x.grad.base is None
    x.grad += 1                                              # would raise on a read-only view
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 2.0))


def test_the_grad_of_a_retained_intermediate_is_not_the_array_passed_on():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    h = _Passthrough.apply(x)
    h.retain_grad()
    h.sum().backward()
    assert not np.shares_memory(h.grad, x.grad)
    h.grad *= 7
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_a_fresh_gradient_nobody_else_holds_is_kept_without_a_copy():
    made = []

    class Fresh(mdl.Function):
        def forward(self, x):
            return 3 * x

        def backward(self, grad_output):
            out = 3 * grad_output            # a new array; only its id is remembered
            made.append(id(out))
            return out

    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    Fresh.apply(x).sum().backward()
    assert id(x.grad) == made[0]             # x.grad is alive, so the id names that same array
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_full_reductions_give_0d_arrays_not_numpy_scalars():
    # np.sum over every axis returns a NumPy scalar; a Tensor always holds an
    # ndarray, so that .data can be written in place and has .shape == ()
    x = mdl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    for result in (x.sum(), x.mean(), (x * 2).max(), mdl.tensor(np.arange(3.0)).sum()):
        assert type(result.data) is np.ndarray and result.data.shape == ()
    total = x.sum()
    total.data[...] = 1.0                                     # writable in place
    assert float(total.data) == 1.0


def test_power_of_a_zero_base_has_zero_exponent_gradient():
    # d(a ** b)/db = a ** b * log(a): at a = 0 and b >= 0 that is 0 * -inf, which
    # PyTorch (and minidl) take as 0; elsewhere the formula, by hand
    a = mdl.tensor(np.array([0.0, 0.0, 2.0]), requires_grad=True)
    b = mdl.tensor(np.array([2.0, 0.0, 3.0]), requires_grad=True)
    (a ** b).sum().backward()
    np.testing.assert_allclose(a.grad, [0.0, 0.0, 3.0 * 2.0 ** 2], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [0.0, 0.0, 8.0 * np.log(2.0)], rtol=1e-15)
