"""Gradients made inside compiled (Numba) kernels: kept without a copy when no
one else can reach their memory, copied whenever anything else can.

A Numba-made array does not own its memory in NumPy's sense (its base is
Numba's record of the allocation), so these tests check both directions: the
copy the engine skips (the `.grad` is the kernel's very array) and the copy it
must make (a kernel's view of an array someone holds, two arrays over one
buffer, one array sent to two leaves)."""
import weakref

import numpy as np
from numba import njit

import minidl as mdl
from minidl.autograd.engine import KernelMemory


@njit(cache=True)
def _scaled(a, factor):
    """A new array made by the kernel: factor * a."""
    return a * factor


@njit(cache=True)
def _reversed_view(a):
    """A view of the kernel's own input (no new memory), in reverse order.
    (A view with the input's very shape and strides would come back as the
    input array itself.)"""
    return a[::-1]


@njit(cache=True)
def _two_views_of_one_buffer(a):
    """Two arrays over one new buffer: the second is the first, flattened."""
    out = a * 2.0
    return out, out.reshape(out.size)


class _KernelGrad(mdl.Function):
    """y = 3 x; the backward's gradient is made by a kernel (weak references
    to them remembered: an id could be reused once an array is freed)."""
    made = []

    def forward(self, x):
        return 3 * x

    def backward(self, grad_output):
        grad = _scaled(grad_output, 3.0)
        _KernelGrad.made.append(weakref.ref(grad))
        return grad


class _KernelViewOfSaved(mdl.Function):
    """y = x * s with s saved (all 2); the gradient returned is a kernel's
    view of s (correct for grad_output == 1, which the tests use)."""

    def forward(self, x):
        scale = np.full(x.shape, 2.0, dtype=x.dtype)
        self.save_for_backward(scale)
        return x * scale

    def backward(self, grad_output):
        (scale,) = self.saved_tensors
        return _reversed_view(scale)


class _KernelViewOfInput(mdl.Function):
    """y = sum(x * x) / 2 evaluated at x = 1 has gradient x: returned as a
    kernel's view of the input's own data."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.asarray((x * x).sum() / 2)

    def backward(self, grad_output):
        (x,) = self.saved_tensors
        return _reversed_view(x)


class _KernelViewOfGradOutput(mdl.Function):
    """The identity, whose backward passes on a kernel's view of grad_output
    (reversed: correct for a gradient of equal values, which the test uses)."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad_output):
        return _reversed_view(grad_output)


class _TwoOutputsOfOneBuffer(mdl.Function):
    """y = 2a + 2b (a, b of one shape, flat); the kernel returns both
    gradients over one buffer."""

    def forward(self, a, b):
        return 2 * a + 2 * b

    def backward(self, grad_output):
        grad_a, grad_b = _two_views_of_one_buffer(grad_output)
        return grad_a, grad_b


class _SameKernelArrayTwice(mdl.Function):
    """y = 2a + 2b; one kernel array is returned as both gradients."""

    def forward(self, a, b):
        return 2 * a + 2 * b

    def backward(self, grad_output):
        grad = _scaled(grad_output, 2.0)
        return grad, grad


def _leaf(values=(1.0, 2.0, 3.0)):
    return mdl.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def test_a_kernel_made_gradient_nobody_else_holds_is_kept_without_a_copy():
    _KernelGrad.made.clear()
    x = _leaf()
    _KernelGrad.apply(x).sum().backward()
    assert x.grad is _KernelGrad.made[0]()          # the kernel's own array, not a copy or a view
    assert type(x.grad.base) is KernelMemory
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])
    x.grad *= 2                                      # writeable, ours
    np.testing.assert_array_equal(x.grad, [6.0, 6.0, 6.0])


def test_kernel_gradients_accumulate_over_two_backward_passes():
    x = _leaf()
    _KernelGrad.apply(x).sum().backward()
    first = x.grad
    _KernelGrad.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0, 6.0])
    first[...] = 0.0                                  # the first pass's array is not the sum
    np.testing.assert_array_equal(x.grad, [6.0, 6.0, 6.0])


def test_a_retained_saved_value_survives_two_accumulating_passes():
    # if the first pass had stored a view of the saved value as .grad, the
    # second pass (or an in-place update) would change what the op saved
    x = _leaf()
    y = _KernelViewOfSaved.apply(x)
    y.backward(gradient=np.ones(3), retain_graph=True)
    x.grad += 1.0                                     # an optimizer-style in-place change
    y.backward(gradient=np.ones(3), retain_graph=True)
    (saved,) = y.grad_fn.saved_tensors
    np.testing.assert_array_equal(saved, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(x.grad, [5.0, 5.0, 5.0])


def test_a_leaf_used_twice_gets_the_sum_and_no_kernel_array_is_shared():
    _KernelGrad.made.clear()
    x = _leaf()
    (_KernelGrad.apply(x) + _KernelGrad.apply(x)).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0, 6.0])
    assert all(made() is not x.grad for made in _KernelGrad.made)


def test_a_kernel_view_of_a_saved_value_is_copied():
    x = _leaf()
    y = _KernelViewOfSaved.apply(x)
    y.backward(gradient=np.ones(3), retain_graph=True)
    (saved,) = y.grad_fn.saved_tensors
    assert not np.shares_memory(x.grad, saved)
    x.grad *= 100
    np.testing.assert_array_equal(saved, [2.0, 2.0, 2.0])


def test_a_kernel_view_of_the_leafs_own_data_is_never_its_grad():
    x = _leaf((1.0, 1.0, 1.0))
    _KernelViewOfInput.apply(x).backward()
    assert not np.shares_memory(x.grad, x.data)
    x.grad[...] = -5.0
    np.testing.assert_array_equal(x.data, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [-5.0, -5.0, -5.0])


def test_a_kernel_view_of_a_gradient_sent_to_another_leaf_is_copied():
    # out = identity(a) + b: Add passes one array to both branches; a's
    # branch turns it into a kernel view, b stores it.
    a, b = _leaf(), _leaf()
    (_KernelViewOfGradOutput.apply(a) + b).backward(gradient=np.ones(3))
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 1.0])


def test_a_views_gradient_does_not_alias_the_gradient_of_its_base():
    # v is a view (reshape) of x's branch; the gradient Reshape hands back is
    # a view of the gradient that also reaches y
    x = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    y = _leaf((0.0,) * 6)
    out = _KernelGrad.apply(x.reshape(6) + y)
    out.backward(gradient=np.ones(6))
    assert not np.shares_memory(x.grad, y.grad)
    y.grad[...] = 0.0
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 3.0))


def test_two_kernel_arrays_over_one_buffer_become_two_independent_grads():
    a, b = _leaf(), _leaf()
    _TwoOutputsOfOneBuffer.apply(a, b).backward(gradient=np.ones(3))
    assert not np.shares_memory(a.grad, b.grad)
    a.grad[...] = 0.0
    np.testing.assert_array_equal(b.grad, [2.0, 2.0, 2.0])


def test_one_kernel_array_sent_to_two_leaves_is_copied_for_one_of_them():
    a, b = _leaf(), _leaf()
    _SameKernelArrayTwice.apply(a, b).backward(gradient=np.ones(3))
    assert not np.shares_memory(a.grad, b.grad)
    a.grad[...] = 0.0
    np.testing.assert_array_equal(b.grad, [2.0, 2.0, 2.0])


def test_a_kernel_gradient_held_by_someone_else_is_copied():
    kept = []

    class KeepsIt(mdl.Function):
        def forward(self, x):
            return 3 * x

        def backward(self, grad_output):
            grad = _scaled(grad_output, 3.0)
            kept.append(grad)                        # someone else holds the array
            return grad

    x = _leaf()
    KeepsIt.apply(x).sum().backward()
    assert not np.shares_memory(x.grad, kept[0])
    kept[0][...] = 0.0
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])


def test_a_kernel_gradient_another_array_views_is_copied():
    views = []

    class ViewedElsewhere(mdl.Function):
        def forward(self, x):
            return 3 * x

        def backward(self, grad_output):
            grad = _scaled(grad_output, 3.0)
            views.append(grad[1:])                   # a NumPy view keeps a reference to it
            return grad

    x = _leaf()
    ViewedElsewhere.apply(x).sum().backward()
    assert not np.shares_memory(x.grad, views[0])
    views[0][...] = 0.0
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])


def test_a_kernel_gradient_whose_memory_record_backs_another_array_is_copied():
    aliases = []

    class SharesTheRecord(mdl.Function):
        def forward(self, x):
            return 3 * x

        def backward(self, grad_output):
            grad = _scaled(grad_output, 3.0)
            aliases.append(np.frombuffer(grad.base, dtype=grad.dtype))   # the same memory, another array
            return grad

    x = _leaf()
    SharesTheRecord.apply(x).sum().backward()
    assert not np.shares_memory(x.grad, aliases[0])
    aliases[0][...] = 0.0
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])
