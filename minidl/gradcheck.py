"""Check analytic gradients against finite differences, in float64.

    mdl.gradcheck(lambda x, w: F.conv2d(x, w), [x, w])

For every input that requires grad, compare what `backward()` computes with
central differences of the function:

    d f / d x[i]  ~  (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

The output may be any shape: we check the scalar `sum(out * r)` for a fixed
random `r`, whose gradient is the vector-Jacobian product that backward computes.
Small inputs get every index perturbed (the full Jacobian-vector check); large
ones get `directions` random directions `d`, comparing `grad . d` with
(f(x + eps d) - f(x - eps d)) / (2 eps).

Everything is cast to float64 first: in float32, rounding error in f is about
1e-7 * |f|, and dividing it by 2 eps = 2e-6 swamps the derivative.
"""
import numpy as np

from .autograd.tensor import Tensor
from .autograd.grad_mode import enable_grad


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with finite differences."""


def _as_float64_leaf(value):
    if isinstance(value, Tensor):
        if value.dtype.kind == "f":
            return Tensor(value.data.astype(np.float64), requires_grad=value.requires_grad)
        return value
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return Tensor(array.astype(np.float64), requires_grad=True)
    return Tensor(array)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, full_jacobian_max=256,
              directions=16, seed=0):
    """Return True if every input's analytic gradient matches finite differences;
    otherwise raise `GradcheckError` naming the input, the index (or direction),
    both values and the tolerance.

    fn:      callable taking the inputs as Tensors, returning a Tensor.
    inputs:  Tensors or arrays; floating ones that require grad are checked
             (arrays count as requiring grad). Integer inputs pass through.
    full_jacobian_max: inputs with at most this many elements get every index
             perturbed; larger ones get `directions` random directions.
    """
    rng = np.random.default_rng(seed)
    leaves = [_as_float64_leaf(v) for v in inputs]

    def evaluate(arrays):
        args = [Tensor(a, requires_grad=leaf.requires_grad) if leaf.requires_grad else leaf
                for a, leaf in zip(arrays, leaves)]
        with enable_grad():
            return fn(*args), args

    base_arrays = [leaf.data for leaf in leaves]
    output, args = evaluate(base_arrays)
    if not isinstance(output, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(output).__name__}")
    if output.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned dtype {output.dtype} on float64 inputs; "
                        "an op does not keep float64")
    weights = rng.standard_normal(output.shape)          # f(x) = sum(out * weights)
    if not output.requires_grad:
        raise GradcheckError("gradcheck: the output does not depend on any input that requires grad")
    output.backward(weights)

    def scalar(arrays):
        out, _ = evaluate(arrays)
        return float(np.sum(out.data * weights))

    for position, (leaf, arg) in enumerate(zip(leaves, args)):
        if not leaf.requires_grad:
            continue
        analytic = arg.grad if arg.grad is not None else np.zeros_like(leaf.data)
        base = leaf.data

        def shifted(delta):
            arrays = list(base_arrays)
            arrays[position] = base + delta
            return scalar(arrays)

        if base.size <= full_jacobian_max:
            for index in np.ndindex(*base.shape):
                delta = np.zeros_like(base)
                delta[index] = eps
                numeric = (shifted(delta) - shifted(-delta)) / (2 * eps)
                _compare(position, f"index {index}", analytic[index], numeric, atol, rtol, base.shape)
        else:
            for k in range(directions):
                direction = rng.standard_normal(base.shape)
                direction /= np.linalg.norm(direction)
                numeric = (shifted(eps * direction) - shifted(-eps * direction)) / (2 * eps)
                projected = float(np.sum(analytic * direction))
                _compare(position, f"random direction {k}", projected, numeric, atol, rtol, base.shape)
    return True


def _compare(position, where, analytic, numeric, atol, rtol, shape):
    analytic = float(analytic)
    if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
        raise GradcheckError(
            f"gradcheck: input {position} (shape {shape}) at {where}: "
            f"analytic {analytic:.8g} vs numeric {numeric:.8g}, "
            f"difference {abs(analytic - numeric):.3g} exceeds atol {atol} + rtol {rtol} * |numeric|"
        )
