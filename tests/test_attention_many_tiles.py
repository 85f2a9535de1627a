"""Attention gradients past many tiles, against references written here.

The tiled kernels work on tiles of 32 queries x 64 keys; with L=100 queries
and S=130 keys every batch-head would span 4 query tiles and 3 key tiles, the
last of each partial. (At this length every call, causal too, runs the dense
kernels, in blocks of 128 query rows; tests/test_attention_fast.py holds the
tiled kernels equal to them and, past the causal limit, to the NumPy twin.) The gradients of F.scaled_dot_product_attention are
checked, for float32 and float64, without a mask, with a bool mask, with a
float (additive) mask holding some -inf, and causal, against

- the analytic backward of softmax attention, computed in float64 with the
  full (L, S) matrix (tests/reference_math.py: dV = P^T dO, dZ = P * (dP -
  rowsum(dP * P)), dQ = dZ K / sqrt(E), dK = dZ^T Q / sqrt(E));
- central finite differences of the loss along random directions (float64).
"""
import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F

import reference_math as ref

B, H, L, S, E, EV = 2, 2, 100, 130, 16, 12
# float32: the inputs are exact float32 values and the reference runs in float64;
# the kernels accumulate in float32, so allow ~1e-4 of the gradient's scale
TOLERANCE = {np.float32: 2e-4, np.float64: 1e-10}


def make_mask(kind, rng):
    """None, a (B, 1, L, S) bool mask or an (L, S) float mask; key 0 stays open
    for every query, so that no row is fully masked."""
    if kind == "bool":
        mask = rng.random((B, 1, L, S)) > 0.3             # True = may attend
        mask[..., 0] = True
        return mask
    if kind == "float":
        mask = rng.normal(0, 2, (L, S))
        closed = rng.random((L, S)) < 0.2
        closed[:, 0] = False
        mask[closed] = -np.inf
        return mask
    return None


def make_inputs(dtype, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(0, 1, (B, H, L, E))
    k = rng.normal(0, 1, (B, H, S, E))
    v = rng.normal(0, 1, (B, H, S, EV))
    grad_out = rng.normal(0, 1, (B, H, L, EV))
    # the values the op sees, so that the reference differs only in arithmetic
    return [a.astype(dtype).astype(np.float64) for a in (q, k, v, grad_out)], rng


def minidl_grads(q, k, v, grad_out, mask, causal, dtype):
    tensors = [mdl.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v)]
    attn_mask = None if mask is None else mdl.tensor(
        mask if mask.dtype == np.bool_ else mask.astype(dtype))
    out = F.scaled_dot_product_attention(*tensors, attn_mask=attn_mask, is_causal=causal)
    assert out.dtype == dtype
    out.backward(grad_out.astype(dtype))
    return out.data, [t.grad for t in tensors]


# (mask, is_causal): PyTorch's API takes one or the other, not both
CASES = [("none", False), ("bool", False), ("float", False), ("none", True)]


@pytest.mark.parametrize("mask_kind, causal", CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_gradients_match_the_analytic_backward(dtype, mask_kind, causal):
    (q, k, v, grad_out), rng = make_inputs(dtype)
    mask = make_mask(mask_kind, rng)
    if mask is not None and mask.dtype != np.bool_:
        mask = mask.astype(dtype).astype(np.float64)
    out, grads = minidl_grads(q, k, v, grad_out, mask, causal, dtype)
    expected_out, _ = ref.attention(q, k, v, mask, causal)
    expected = ref.attention_grads(q, k, v, grad_out, mask, causal)
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(out, expected_out, rtol=tolerance,
                               atol=tolerance * np.abs(expected_out).max(), err_msg="out")
    for name, got, want in zip(("dq", "dk", "dv"), grads, expected):
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance * scale,
                                   err_msg=f"{name} ({np.dtype(dtype).name}, mask {mask_kind}, causal {causal})")


@pytest.mark.parametrize("mask_kind, causal", [("bool", False), ("float", False), ("none", True)],
                         ids=lambda c: str(c))
def test_gradients_match_finite_differences_along_random_directions(mask_kind, causal):
    """d/dt loss(q + t u, k + t w, v + t z) at t = 0, by central differences,
    equals <dq, u> + <dk, w> + <dv, z> from backward (float64)."""
    (q, k, v, grad_out), rng = make_inputs(np.float64, seed=1)
    mask = make_mask(mask_kind, rng)
    _, grads = minidl_grads(q, k, v, grad_out, mask, causal, np.float64)
    attn_mask = None if mask is None else mdl.tensor(mask)

    def loss(arrays):
        with mdl.no_grad():
            out = F.scaled_dot_product_attention(*(mdl.tensor(a) for a in arrays),
                                                 attn_mask=attn_mask, is_causal=causal)
        return float(np.sum(out.data * grad_out))

    step = 1e-5
    for trial in range(4):
        directions = [rng.normal(0, 1, a.shape) for a in (q, k, v)]
        # trials 0, 1, 2 move only q, k or v; trial 3 moves all three at once
        if trial < 3:
            directions = [d if i == trial else np.zeros_like(d) for i, d in enumerate(directions)]
        plus = loss([a + step * d for a, d in zip((q, k, v), directions)])
        minus = loss([a - step * d for a, d in zip((q, k, v), directions)])
        numeric = (plus - minus) / (2 * step)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, directions))
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (
            f"direction {trial} (0: q, 1: k, 2: v, 3: all): finite differences {numeric}, backward {analytic}")
