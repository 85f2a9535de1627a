"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter).

Adam's L2 term adds wd * p to the gradient, where the adaptive step size then
shrinks it for parameters with large gradients. AdamW instead decays every
parameter by the same fraction each step, separately from the gradient:

    p = p - lr * weight_decay * p      then the Adam update without any L2 term
"""
from .adam import Adam


class AdamW(Adam):
    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
