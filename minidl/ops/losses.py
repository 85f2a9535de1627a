"""Loss functions, each one fused Function so that forward and backward stay
numerically stable (no exp of a large logit, no log of 0).

    F.cross_entropy(logits, target)                       # (N, C) or (N, C, d1, ...) ; int targets
    F.binary_cross_entropy_with_logits(logits, target)    # same shapes, targets in [0, 1]
    F.mse_loss(input, target)                             # same shapes

reduction: 'mean' (default), 'sum' or 'none' (one loss per element / position).
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _array(value):
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _check_reduction(op, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got '{reduction}'")


def _check_float(op, name, array):
    if array.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {array.dtype}")


def _reduce(losses, reduction, dtype):
    if reduction == "none":
        return losses.astype(dtype, copy=False)
    if reduction == "sum":
        return np.asarray(losses.sum(), dtype=dtype)
    return np.asarray(losses.mean(), dtype=dtype)                  # "mean"


def _reduction_grad(grad, shape, reduction, count):
    """dL/d(each element loss), broadcast to `shape`, for the upstream gradient `grad`."""
    if reduction == "none":
        return grad
    scale = grad / count if reduction == "mean" else grad
    return np.broadcast_to(scale, shape)


class CrossEntropy(Function):
    """loss_i = -sum_c q_ic log softmax(z_i)_c,  q_i = (1 - s) onehot(t_i) + s / C  (s = label_smoothing)
    dL/dz_ic = w_i (softmax(z_i)_c - q_ic),  w_i = the reduction's weight of loss_i (0 if ignored)

    One exp serves both directions: forward keeps e = exp(z - max z) and its
    sums S over classes, so log softmax(z)_c = (z_c - max z) - log S is only
    formed where the loss reads it (at the target; its mean for smoothing),
    and backward's softmax is e / S, scaled by w_i in the same pass."""

    def forward(self, logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
        self.unbatched = logits.ndim == 1
        if self.unbatched:                                     # (C,) -> (1, C), () -> (1,)
            logits, target = logits[None], target[None]
        z = np.moveaxis(logits, 1, -1)                         # (N, d1, ..., C): classes last
        num_classes = z.shape[-1]
        valid = target != ignore_index                         # (N, d1, ...)
        bad = valid & ((target < 0) | (target >= num_classes))
        if bad.any():
            raise ValueError(
                f"cross_entropy: target value {target[bad].flat[0]} is out of range for "
                f"{num_classes} classes (expected 0 <= target < {num_classes}"
                f" or target == ignore_index={ignore_index})"
            )
        safe_target = np.where(valid, target, 0)[..., None]    # (N, d1, ..., 1)
        shifted = z - z.max(axis=-1, keepdims=True)            # (N, d1, ..., C), max 0: exp never overflows
        exp = np.exp(shifted)                                  # (N, d1, ..., C)
        sums = exp.sum(axis=-1)                                # (N, d1, ...), >= 1
        log_sums = np.log(sums)                                # (N, d1, ...)
        nll = log_sums - np.take_along_axis(shifted, safe_target, axis=-1)[..., 0]   # -log softmax at t
        if label_smoothing:                                    # mean over c of -log softmax_c
            nll = (1 - label_smoothing) * nll + label_smoothing * (log_sums - shifted.mean(axis=-1))
        losses = np.where(valid, nll, 0).astype(logits.dtype)
        count = int(valid.sum())
        self.save_for_backward(exp, sums, safe_target, valid)
        self.options = reduction, label_smoothing, count
        if reduction == "mean":
            # like PyTorch, the mean is over non-ignored targets (NaN if there are none)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(losses.sum() / count, dtype=logits.dtype)
        if reduction == "none" and self.unbatched:
            return losses[0]
        return _reduce(losses, reduction, logits.dtype)

    def backward(self, grad):
        exp, sums, safe_target, valid = self.saved_tensors
        reduction, label_smoothing, count = self.options
        num_classes = exp.shape[-1]
        if reduction == "none" and self.unbatched:
            grad = grad[None]
        weight = (_reduction_grad(grad, valid.shape, reduction, max(count, 1)) * valid)[..., None]  # (N, d1, ..., 1)
        grad_z = exp * (weight / sums[..., None])              # w softmax(z)
        if label_smoothing:
            grad_z -= weight * (label_smoothing / num_classes)
        np.put_along_axis(grad_z, safe_target,                 # minus w (1 - s) at the target class
                          np.take_along_axis(grad_z, safe_target, axis=-1) - weight * (1 - label_smoothing),
                          axis=-1)
        grad_logits = np.moveaxis(grad_z, -1, 1).astype(exp.dtype, copy=False)
        return (grad_logits[0] if self.unbatched else grad_logits), None


def cross_entropy(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Softmax cross-entropy against integer class indices.

    logits (N, C) or (N, C, d1, ...), or (C,) for one sample; target (N,) or
    (N, d1, ...) (or a scalar) of ints in [0, C), or ignore_index to skip a position.
    """
    logits_array, target_array = _array(logits), _array(target)
    _check_reduction("cross_entropy", reduction)
    _check_float("cross_entropy", "logits", logits_array)
    if target_array.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: target must hold integer class indices, got dtype {target_array.dtype}"
            " (class probabilities as targets are not supported)"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if logits_array.ndim == 1:                                 # one unbatched sample (C,)
        expected = ()
    elif logits_array.ndim >= 2:
        expected = logits_array.shape[:1] + logits_array.shape[2:]
    else:
        raise ValueError("cross_entropy: logits must have at least one dimension, got a scalar")
    if target_array.shape != expected:
        raise ValueError(
            f"cross_entropy: logits of shape {logits_array.shape} need target of shape "
            f"{expected} (logits shape without the class dimension 1), got {target_array.shape}"
        )
    return CrossEntropy.apply(logits, target_array.astype(np.int64, copy=False), reduction=reduction,
                              ignore_index=int(ignore_index), label_smoothing=float(label_smoothing))


class BinaryCrossEntropyWithLogits(Function):
    """loss = -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))) = max(x, 0) - x y + log(1 + exp(-|x|))
    dL/dx = sigmoid(x) - y,   dL/dy = -x"""

    def forward(self, x, y, reduction="mean"):
        losses = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
        self.save_for_backward(x, y)
        self.reduction = reduction
        return _reduce(losses, reduction, x.dtype)

    def backward(self, grad):
        x, y = self.saved_tensors
        weight = _reduction_grad(grad, x.shape, self.reduction, x.size)
        e = np.exp(-np.abs(x))                                 # in (0, 1]: never overflows
        sigmoid = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return (weight * (sigmoid - y)).astype(x.dtype), (weight * -x).astype(y.dtype)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Sigmoid + binary cross-entropy in one stable step; logits and target have the same shape."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    x, y = _array(logits), _array(target)
    _check_float("binary_cross_entropy_with_logits", "logits", x)
    _check_float("binary_cross_entropy_with_logits", "target", y)
    if x.shape != y.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {y.shape} must equal "
                         f"logits shape {x.shape}")
    return BinaryCrossEntropyWithLogits.apply(logits, target, reduction=reduction)


class MSELoss(Function):
    """loss = (a - b)^2;   dL/da = 2 (a - b) g,  dL/db = -2 (a - b) g"""

    def forward(self, a, b, reduction="mean"):
        diff = a - b
        self.save_for_backward(diff)
        self.reduction = reduction
        return _reduce(diff * diff, reduction, a.dtype)

    def backward(self, grad):
        (diff,) = self.saved_tensors
        weight = _reduction_grad(grad, diff.shape, self.reduction, diff.size)
        grad_a = (2 * weight * diff).astype(diff.dtype)
        return grad_a, -grad_a


def mse_loss(input, target, reduction="mean"):
    """Mean (or sum, or elementwise) squared error; input and target have the same shape."""
    _check_reduction("mse_loss", reduction)
    a, b = _array(input), _array(target)
    _check_float("mse_loss", "input", a)
    _check_float("mse_loss", "target", b)
    if a.shape != b.shape:
        raise ValueError(f"mse_loss: target shape {b.shape} must equal input shape {a.shape} "
                         "(no broadcasting, to catch (N, 1) vs (N,) mistakes)")
    return MSELoss.apply(input, target, reduction=reduction)
