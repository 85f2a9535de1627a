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

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self._buffers = {}                 # dtype -> scratch space of step() (see _scratch)

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
        for group in self.param_groups:
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.astype(p.dtype, copy=False)
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)       # m
                    state["exp_avg_sq"] = np.zeros_like(p.data)    # v
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                # Two scratch arrays shaped like p, reused across parameters and
                # steps: every line below writes into memory that already exists.
                work, update = self._scratch(p.data)

                if weight_decay != 0:
                    if self.decoupled_weight_decay:
                        p.data *= 1 - lr * weight_decay            # p -= lr * wd * p
                    else:
                        np.multiply(p.data, weight_decay, out=update)
                        g = np.add(g, update, out=update)          # g + wd * p
                m *= beta1
                np.multiply(g, 1 - beta1, out=work)
                m += work                                          # m = beta1 m + (1 - beta1) g
                v *= beta2
                np.multiply(g, 1 - beta2, out=work)
                work *= g
                v += work                                          # v = beta2 v + (1 - beta2) g^2
                bias_correction1 = 1 - beta1 ** t
                bias_correction2 = 1 - beta2 ** t
                denom = np.sqrt(v, out=work)
                denom /= math.sqrt(bias_correction2)
                denom += eps                                       # sqrt(v_hat) + eps
                np.multiply(m, lr / bias_correction1, out=update)
                update /= denom                                    # lr m_hat / (sqrt(v_hat) + eps)
                p.data -= update

    def _scratch(self, like):
        """Two arrays shaped like `like`: views into buffers kept per dtype and
        grown to the largest parameter (not part of the state: nothing to save)."""
        flat = self._buffers.get(like.dtype)
        if flat is None or flat.shape[1] < like.size:
            flat = self._buffers[like.dtype] = np.empty((2, like.size), like.dtype)
        return flat[0, :like.size].reshape(like.shape), flat[1, :like.size].reshape(like.shape)
