"""Gradient clipping: keep one bad batch from throwing the weights far away.

    clip_grad_norm_(params, max_norm)   if the gradients' total norm
                                        ||g|| = (sum over all p of sum |g_p|^q)^(1/q)
                                        exceeds max_norm, scale every gradient by
                                        max_norm / (||g|| + 1e-6); returns ||g||
                                        (NaN if any gradient holds a NaN: then
                                        every gradient is scaled by NaN)
    clip_grad_value_(params, value)     clamp every gradient entry to [-value, value]

Both change `p.grad` of each parameter (in place, as the trailing _ says)
between `loss.backward()` and `optimizer.step()`, and skip parameters whose
grad is None, as PyTorch does.
"""
import math

import numpy as np

from ...autograd.tensor import Tensor


def _with_grads(parameters, name):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: expected Tensors (e.g. model.parameters()), got {type(p).__name__}")
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients so that their total `norm_type`-norm is at most
    `max_norm`; return the total norm before clipping (a 0-d Tensor)."""
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be positive or inf, got {norm_type}")
    params = _with_grads(parameters, "clip_grad_norm_")
    if not params:
        return Tensor(np.array(0.0, dtype=np.float32))
    grads = [np.asarray(p.grad, dtype=np.float64) for p in params]
    if math.isinf(norm_type):
        # np.max, not Python's max: a NaN gradient makes the norm NaN wherever it sits
        total = float(np.max([np.max(np.abs(g)) if g.size else 0.0 for g in grads]))
    else:
        # the norm of the per-parameter norms equals the norm of all entries together
        per_param = [float(np.sum(np.abs(g) ** norm_type)) for g in grads]
        total = math.fsum(per_param) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}; "
                           "set error_if_nonfinite=False to clip anyway")
    scale = max_norm / (total + 1e-6)
    if not scale >= 1.0:                 # also a NaN norm: every gradient becomes NaN, as in PyTorch
        for p in params:
            p.grad = (p.grad * scale).astype(p.grad.dtype, copy=False)    # a new array: never a shared one
    return Tensor(np.array(total, dtype=params[0].grad.dtype))


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _with_grads(parameters, "clip_grad_value_"):
        p.grad = np.clip(p.grad, -clip_value, clip_value).astype(p.grad.dtype, copy=False)
