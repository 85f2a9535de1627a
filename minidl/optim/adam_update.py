"""Adam's update rule as one compiled loop over the elements: the same
arithmetic as `Adam._update`'s dozen NumPy operations, bit for bit, in one
pass instead of a dozen.

    adam_update(p, g, m, v, constants)        # p, m, v changed in place; g is not

p, g, m, v: 1-D C-contiguous arrays of one float dtype (float32 or float64)
and one length, none overlapping another. `constants` is `adam_constants(...)`:
the rule's numbers, already rounded to that dtype.

Why it is bit for bit the same: NumPy runs `array * python_float` in the
array's dtype, after rounding the Python float to that dtype; every step of
`Adam._update` is one such correctly rounded operation (multiply, add,
divide, square root). The loop performs the same operations, in the same
order, on the same dtype-rounded constants, each element on its own, so
every intermediate value is the one NumPy computed. (No `fastmath`: the
compiler may neither reorder them nor fuse a multiply and an add.)
tests/test_adam_update.py holds the two paths equal bit for bit.

`error_model="numpy"`: a float division by zero gives inf or NaN as in NumPy
instead of raising; without it Numba checks every divisor in Python's way,
and that branch stops the loop from being compiled to SIMD code (several
times slower than the NumPy lines).
"""
import math

import numpy as np
from numba import njit


def adam_constants(dtype, lr, beta1, beta2, eps, weight_decay, decoupled, step):
    """The rule's scalars at step number `step`, each rounded to `dtype` exactly
    as NumPy rounds a Python float it multiplies with an array of that dtype."""
    to = np.dtype(dtype).type
    decay_factor = 1 - lr * weight_decay if decoupled and weight_decay != 0 else 1.0   # p *= this
    l2 = weight_decay if not decoupled else 0.0                                     # g += l2 * p
    return (to(decay_factor), to(l2), to(beta1), to(1 - beta1), to(beta2), to(1 - beta2),
            to(math.sqrt(1 - beta2 ** step)), to(eps), to(lr / (1 - beta1 ** step)),
            bool(decoupled and weight_decay != 0), bool(not decoupled and weight_decay != 0))


@njit(cache=True, error_model="numpy")      # float division without a Python zero check: the loop vectorises
def adam_update(p, g, m, v, constants):
    (decay_factor, l2, beta1, one_minus_beta1, beta2, one_minus_beta2,
     sqrt_bias_correction2, eps, step_size, decay, add_l2) = constants
    for i in range(p.size):
        param, grad = p[i], g[i]
        if decay:
            param = param * decay_factor                 # p *= 1 - lr * wd   (AdamW)
        if add_l2:
            grad = grad + param * l2                     # g + wd * p          (Adam's L2)
        m_i = m[i] * beta1 + grad * one_minus_beta1      # m = beta1 m + (1 - beta1) g
        v_i = v[i] * beta2 + (grad * one_minus_beta2) * grad   # v = beta2 v + (1 - beta2) g g
        denom = np.sqrt(v_i) / sqrt_bias_correction2 + eps     # sqrt(v_hat) + eps
        m[i] = m_i
        v[i] = v_i
        p[i] = param - (m_i * step_size) / denom         # p - lr m_hat / (sqrt(v_hat) + eps)
