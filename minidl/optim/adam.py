"""Adam: gradient descent with per-parameter step sizes from running moments.

For each parameter p with gradient g, at step t = 1, 2, ... (PyTorch's rule):

    g = g + weight_decay * p                       (L2 penalty, if weight_decay != 0)
    m = beta1 * m + (1 - beta1) * g                first moment (mean of g)
    v = beta2 * v + (1 - beta2) * g^2              second moment (mean of g^2)
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)    undo the bias toward 0
    p = p - lr * m_hat / (sqrt(v_hat) + eps)

AdamW (see adamw.py) replaces the L2 term by decoupled decay, p = p - lr * wd * p,
applied before the Adam step.
"""
import math

import numba
import numpy as np

from .adam_update import adam_constants, adam_update
from .flat_buffer import FlatBuffer
from .optimizer import Optimizer


SMALL = 1 << 14          # elements: parameters up to this size are updated together (see Adam)


class Adam(Optimizer):
    """See the module docstring for the rule.

    The rule is a dozen NumPy operations; applied to each parameter in turn,
    a model of many small tensors (biases, norms, heads) spends most of the
    step calling them. So `step()` updates, per group and dtype, all small
    parameters (up to SMALL elements) that have a gradient at once: their
    moments live in one `FlatBuffer` (each one's `exp_avg`/`exp_avg_sq` in
    `state` is a view of it), their values and gradients are copied in, the
    rule runs once over the flat arrays, and the values are copied back.
    Larger parameters are updated one by one, on their own arrays (there the
    calls cost little next to the work, and the copies would cost more than
    they save). When the small parameters are not all at the same step (one
    had no gradient in an earlier step, or state was loaded for some only),
    the same rule runs per parameter on the views. Every path runs the same
    elementwise operations, so they give identical results."""

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self._flat = {}                    # (group index, dtype) -> FlatBuffer of that group's small params
        self._buffers = {}                 # dtype -> scratch space of the per-parameter path

    def _check_hyper(self, group):
        super()._check_hyper(group)
        name = type(self).__name__
        betas = tuple(group["betas"])
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {group['betas']}")
        group["betas"] = betas
        if group["eps"] < 0:
            raise ValueError(f"{name}: invalid eps {group['eps']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"{name}: invalid weight_decay {group['weight_decay']}")

    def step(self):
        for index, group in enumerate(self.param_groups):
            small = {}                                     # dtype -> small params with a gradient
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.data.size <= SMALL:
                    small.setdefault(p.dtype, []).append(p)
                else:
                    self._step_one(p, group)
            for dtype, params in small.items():
                flat = self._flat_buffer(index, dtype, params)
                steps = {self.state[p]["step"] for p in params}
                if len(steps) > 1:                         # steps differ: the same rule per parameter
                    for p in params:
                        self._step_one(p, group)
                    continue
                for p in params:                           # all at step t: one update of the flat arrays
                    self.state[p]["step"] += 1
                flat.gather()
                self._update(flat.param, flat.grad, flat.slots["exp_avg"], flat.slots["exp_avg_sq"],
                             steps.pop() + 1, group, *flat.scratch)
                flat.scatter()

    def _step_one(self, p, group):
        """The update of one parameter, on its own arrays."""
        state = self.state.setdefault(p, {})
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)       # m
            state["exp_avg_sq"] = np.zeros_like(p.data)    # v
        state["step"] += 1
        # Two scratch arrays shaped like p, reused across parameters and
        # steps: every line of _update writes into memory that already exists.
        work, update = self._scratch(p.data)
        self._update(p.data, p.grad.astype(p.dtype, copy=False), state["exp_avg"], state["exp_avg_sq"],
                     state["step"], group, work, update)

    def _update(self, p, g, m, v, t, group, work, update):
        """One Adam step at step number t, in place on p, m and v (arrays of one
        shape; work and update are scratch arrays of that shape; g is not changed).

        The NumPy lines below are the rule; `adam_update.adam_update` runs the
        same operations in one compiled pass over the elements (bit for bit the
        same result) whenever it can: Python-number hyperparameters and
        contiguous arrays (see `_fused`)."""
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if _fused(p, g, m, v, lr, eps, weight_decay, beta1, beta2):
            adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                        adam_constants(p.dtype, lr, beta1, beta2, eps, weight_decay,
                                       self.decoupled_weight_decay, t))
            return
        if weight_decay != 0:
            if self.decoupled_weight_decay:
                p *= 1 - lr * weight_decay                     # p -= lr * wd * p
            else:
                np.multiply(p, weight_decay, out=update)
                g = np.add(g, update, out=update)              # g + wd * p
        m *= beta1
        np.multiply(g, 1 - beta1, out=work)
        m += work                                              # m = beta1 m + (1 - beta1) g
        v *= beta2
        np.multiply(g, 1 - beta2, out=work)
        work *= g
        v += work                                              # v = beta2 v + (1 - beta2) g^2
        bias_correction1 = 1 - beta1 ** t
        bias_correction2 = 1 - beta2 ** t
        denom = np.sqrt(v, out=work)
        denom /= math.sqrt(bias_correction2)
        denom += eps                                           # sqrt(v_hat) + eps
        np.multiply(m, lr / bias_correction1, out=update)
        update /= denom                                        # lr m_hat / (sqrt(v_hat) + eps)
        p -= update

    def _flat_buffer(self, index, dtype, params):
        """The FlatBuffer of group `index`'s `params` (those of `dtype` with a
        gradient), whose views are every param's exp_avg and exp_avg_sq in
        `state`. Rebuilt when the set of params changed or `state` was replaced
        (load_state_dict): existing moments and steps are copied in, a param
        without state starts at step 0 with zero moments."""
        flat = self._flat.get((index, dtype))
        if flat is not None and flat.holds(params) and all(
                p in self.state and self.state[p].get("exp_avg") is m and self.state[p].get("exp_avg_sq") is v
                for p, m, v in zip(params, flat.views["exp_avg"], flat.views["exp_avg_sq"])):
            return flat
        flat = self._flat[(index, dtype)] = FlatBuffer(params, slots=("exp_avg", "exp_avg_sq"), scratch=2)
        for p, m, v in zip(params, flat.views["exp_avg"], flat.views["exp_avg_sq"]):
            state = self.state.setdefault(p, {})
            if "exp_avg" in state:
                m[...] = state["exp_avg"]
                v[...] = state["exp_avg_sq"]
            else:
                state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = m, v
        return flat

    def _scratch(self, like):
        """Two arrays shaped like `like`: views into buffers kept per dtype and
        grown to the largest parameter (not part of the state: nothing to save)."""
        flat = self._buffers.get(like.dtype)
        if flat is None or flat.shape[1] < like.size:
            flat = self._buffers[like.dtype] = np.empty((2, like.size), like.dtype)
        return flat[0, :like.size].reshape(like.shape), flat[1, :like.size].reshape(like.shape)


def _fused(p, g, m, v, *hyperparameters):
    """Can `adam_update` run this step? Only when it gives exactly NumPy's
    result: every hyperparameter a Python number (NumPy rounds those to the
    array's dtype; a NumPy float64 scalar would make it compute in float64),
    p, g, m, v C-contiguous of one float dtype, and the compiler on (with
    NUMBA_DISABLE_JIT=1 the loop would run element by element in Python)."""
    return (not numba.config.DISABLE_JIT
            and all(type(h) in (float, int) for h in hyperparameters)
            and p.dtype in (np.float32, np.float64)
            and all(a.dtype == p.dtype and a.flags.c_contiguous for a in (g, m, v))
            and p.flags.c_contiguous and p.flags.writeable)
