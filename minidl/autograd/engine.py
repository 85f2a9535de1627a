"""The backward pass: the chain rule applied over the graph, output to inputs.

    loss.backward()

1. Sort the ops that led to `loss` so that every op comes after all the ops that
   use its output (a topological order). The sort uses an explicit stack, not
   recursion, so a chain of 100,000 ops works.
2. Walk that order. Each op receives dL/d(its output), summed over every place
   the output was used, and its `backward` turns it into dL/d(each input).
3. A leaf tensor (one made by the user, with requires_grad=True) adds what
   arrives into its `.grad`: gradients accumulate until `zero_grad()`. (During
   the walk a leaf's gradients are summed in a dict and stored once at the end,
   so a weight used by 1000 ops costs one store, not 1000.)

A leaf's first gradient is stored without a copy when no one else can reach
its memory: a fresh array that an op's backward made (with NumPy, or inside a
compiled kernel), or the engine's own sum. An array that anything else can
reach (another input's gradient, the caller's `gradient=`, a saved value, the
leaf's own data, a broadcast view) is copied, so an optimizer changing `.grad`
in place never changes another array, and changing `.grad` never changes data.
"""
import sys

import numpy as np

try:  # the owner of the memory of an array a compiled (Numba) kernel allocated
    from numba.core.runtime._nrt_python import _MemInfo as KernelMemory
except ImportError:  # another Numba layout: such arrays are then always copied
    KernelMemory = None

from . import grad_mode
from .grad_mode import check_finite


def topological_order(root_function):
    """Functions reachable from `root_function`, each listed after every
    function that consumes its output (so the root comes first).

    (Functions hash by identity, so they can be set members and dict keys.)"""
    order, visited = [], set()
    stack = [(root_function, False)]
    while stack:
        function, children_done = stack.pop()
        if children_done:
            order.append(function)          # all inputs' producers are placed
            continue
        if function in visited:
            continue
        visited.add(function)
        stack.append((function, True))      # come back after the inputs
        for tensor in function.inputs:
            producer = tensor.grad_fn
            if producer is not None and producer not in visited:
                stack.append((producer, False))
    order.reverse()                         # post-order reversed: outputs first
    return order


def backward(tensor, gradient=None, retain_graph=False):
    """Accumulate d(tensor)/d(leaf) into `.grad` of every leaf that requires grad."""
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no grad_fn; "
            "create the inputs with requires_grad=True (and not inside no_grad())"
        )
    if gradient is None:
        if tensor.data.size != 1:
            raise RuntimeError(
                f"backward: the gradient can only be implied for a single value, "
                f"but the tensor has shape {tensor.shape}; pass gradient=... explicitly"
            )
        gradient = np.ones_like(tensor.data)
    else:
        gradient = np.asarray(getattr(gradient, "data", gradient), dtype=tensor.dtype)
        if gradient.shape != tensor.shape:
            raise ValueError(
                f"backward: gradient of shape {gradient.shape} does not match "
                f"the tensor's shape {tensor.shape}"
            )

    if tensor.grad_fn is None:              # backward() called on a leaf
        tensor._accumulate(gradient)
        return

    grad_of_leaf = _walk(tensor.grad_fn, gradient, retain_graph)
    while grad_of_leaf:                            # one store per leaf, after the walk
        leaf, grad = grad_of_leaf.popitem()        # popped: the dict no longer refers to it
        # Kept without a copy only if nothing but this local variable refers
        # to it (no view of it: a view refers to its base; no other leaf's
        # entry, no saved value, not the caller's `gradient=`) and nothing
        # else can reach its memory.
        private = _reference_count(grad) == _SOLE_REFERENCE and _owns_its_memory(grad)
        leaf._accumulate(grad, owned=private)


def _reference_count(array):
    """sys.getrefcount(array) as seen from a caller holding `array` in a local variable."""
    return sys.getrefcount(array)


def _base_reference_count(array):
    """sys.getrefcount(array.base) as seen from here: 2 when `array` alone refers to its base."""
    return sys.getrefcount(array.base)


def _probe_reference_counts():
    """The counts the two functions above report for an array held by one
    local variable and nothing else, and for a base held by one array and
    nothing else (measured once: Python versions differ)."""
    probe = np.empty(2)
    view = probe[:]
    del probe                                     # now only `view` refers to its base
    return _reference_count(view), _base_reference_count(view)


_SOLE_REFERENCE, _SOLE_BASE_REFERENCE = _probe_reference_counts()


def _owns_its_memory(array):
    """True when `array` is a plain, writeable ndarray whose memory nothing
    else can reach: either it allocated its memory itself (NumPy), or a
    compiled kernel allocated it and handed it over to this array alone (its
    base is then the kernel's memory record, shared with no other array).

    (The caller checks that nothing but its local variable refers to `array`.)"""
    if type(array) is not np.ndarray or not array.flags.writeable:
        return False
    if array.base is None:
        return array.flags.owndata
    return _is_kernel_memory_of(array) and _base_reference_count(array) == _SOLE_BASE_REFERENCE


def _is_kernel_memory_of(array):
    """Is `array.base` a compiled kernel's memory record held by no other kernel array?

    Numba gives an array it returns a record of the memory as its base; the
    record counts the arrays holding that memory (2 for two arrays returned
    over one buffer). A kernel can also return a view of an array it was
    given: that case the engine copies when the gradient is made (see
    `_reaches_memory_of_op`)."""
    base = array.base
    return KernelMemory is not None and type(base) is KernelMemory and base.refcount == 1


def _reaches_memory_of_op(grad, function, grad_output):
    """Can `grad` (an array a kernel made) share memory with an array the op
    holds or was given: its output's gradient, its saved values, its inputs'
    data? (A kernel may return a view of an input; its record looks like a
    fresh one.)"""
    held = [grad_output, *function.saved_tensors, *[t.data for t in function.inputs]]
    return any(type(a) is np.ndarray and np.may_share_memory(grad, a) for a in held)


def _walk(root_function, gradient, retain_graph):
    """Run every op's backward from `root_function` (whose output has gradient
    `gradient`); return {leaf tensor: dL/d(leaf) summed}. Once this returns,
    the dict holds the only reference the engine keeps to each array."""
    grad_of_output = {root_function: gradient}    # function -> dL/d(its output), summed
    grad_of_leaf = {}                              # leaf tensor -> dL/d(leaf), summed
    anomaly = grad_mode.is_anomaly_enabled()
    with grad_mode.no_grad():
        for function in topological_order(root_function):
            grad_output = grad_of_output.pop(function, None)
            if grad_output is None:         # output did not influence the result
                continue
            if function.freed:
                raise RuntimeError(
                    f"backward: trying to go through {function.name} a second time, "
                    "but its saved values were freed after the first backward; "
                    "call backward(retain_graph=True) the first time"
                )
            if function.output_retains_grad is not None:
                function.output_retains_grad._accumulate(grad_output)

            grads = function.backward(grad_output)
            if type(grads) is not tuple:
                grads = (grads,)

            for input_tensor, needs, grad in zip(function.inputs, function.needs_input_grad, grads):
                if not needs or grad is None:
                    continue
                if grad.shape != input_tensor.data.shape:
                    raise RuntimeError(
                        f"{function.name}.backward returned a gradient of shape "
                        f"{grad.shape} for an input of shape {input_tensor.shape}"
                    )
                if anomaly:
                    check_finite(function.name, "backward", grad)
                if input_tensor.grad_fn is None:    # a leaf: collect, store once at the end
                    if (grad.base is not None and _is_kernel_memory_of(grad)
                            and _reaches_memory_of_op(grad, function, grad_output)):
                        grad = grad.copy()          # a kernel's view of an array the op holds
                    pending, key = grad_of_leaf, input_tensor
                else:                               # an intermediate: pass on to its op
                    pending, key = grad_of_output, input_tensor.grad_fn
                pending[key] = pending[key] + grad if key in pending else grad
            if not retain_graph:
                function.release()
    return grad_of_leaf
