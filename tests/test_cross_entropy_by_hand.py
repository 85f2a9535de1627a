"""cross_entropy's backward against the closed form w_i (softmax(z_i) - q_i),
for every reduction, an uneven upstream gradient, label smoothing and an
ignored target; the forward against SciPy's log_softmax."""
import numpy as np
import pytest
import scipy.special

import minidl as mdl
import minidl.functional as F


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_gradient_is_weighted_softmax_minus_smoothed_one_hot(reduction, smoothing, dtype):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((4, 5)).astype(dtype) * 3                     # (N, C)
    target = np.array([2, -100, 0, 4])                                          # sample 1 ignored
    valid = target != -100
    z = mdl.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(z, target, reduction=reduction, label_smoothing=smoothing)
    upstream = {"none": np.array([0.5, 2.0, -1.5, 3.0], dtype=dtype)}.get(reduction, np.array(1.7, dtype=dtype))
    loss.backward(upstream)

    log_softmax = scipy.special.log_softmax(logits.astype(np.float64), axis=1)   # (N, C)
    q = np.full((4, 5), smoothing / 5)                                           # smoothed one-hot
    q[np.arange(4), np.where(valid, target, 0)] += 1 - smoothing
    per_sample = -(q * log_softmax).sum(axis=1) * valid                          # (N,)
    weight = {"none": upstream, "sum": np.full(4, 1.7), "mean": np.full(4, 1.7 / valid.sum())}[reduction]
    expected_forward = {"none": per_sample, "sum": per_sample.sum(), "mean": per_sample.sum() / valid.sum()}
    expected_grad = (weight * valid)[:, None] * (np.exp(log_softmax) - q)          # (N, C)

    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    assert loss.dtype == dtype and z.grad.dtype == dtype and z.grad.shape == (4, 5)
    np.testing.assert_allclose(loss.data, expected_forward[reduction], **tolerance)
    np.testing.assert_allclose(z.grad, expected_grad, **tolerance)
    np.testing.assert_array_equal(z.grad[1], 0)                                  # the ignored sample
