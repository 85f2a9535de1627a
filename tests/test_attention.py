"""scaled_dot_product_attention: the fused Numba kernels, their interpreted run
and the NumPy twin agree with each other, with a plain softmax(QK^T s + M)V
written here, with a 2x2 case worked by hand, and with finite differences.

Tolerances: float64 1e-10 (1e-9 for gradients); float32 2e-5 relative to the
largest entry (float32 accumulation over E and S terms, exp error ~1e-7).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels
from minidl.gradcheck import gradcheck
from minidl.kernels import attention_fast

SDPA = F.scaled_dot_product_attention


def reference(q, k, v, mask=None, causal=False, scale=None):
    """softmax(q k^T * scale + mask) v, straight from the definition."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.einsum("...le,...se->...ls", q.astype(np.float64), k.astype(np.float64)) * scale
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], dtype=bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    w = np.exp(s - s.max(axis=-1, keepdims=True))
    w = w / w.sum(axis=-1, keepdims=True)
    return np.einsum("...ls,...sd->...ld", w, v.astype(np.float64)), w


def tol(dtype):
    return 1e-10 if dtype == np.float64 else 2e-5


def assert_close(a, b, dtype, what):
    scale = max(1.0, float(np.max(np.abs(b)))) if np.size(b) else 1.0
    err = float(np.max(np.abs(np.asarray(a, np.float64) - b))) if np.size(b) else 0.0
    assert err <= tol(dtype) * scale * 10, f"{what}: max error {err:.3g} (dtype {dtype})"


def run(backend, q, k, v, mask=None, causal=False, scale=None, dropout_p=0.0, seed=0,
        grad_out=None, mask_grad=False):
    """Forward and backward under one backend; returns out and the input grads."""
    tq, tk, tv = (mdl.tensor(x, requires_grad=True) for x in (q, k, v))
    tm = None if mask is None else mdl.tensor(mask, requires_grad=mask_grad)
    with kernels.use(backend):
        mdl.manual_seed(seed)
        out = SDPA(tq, tk, tv, attn_mask=tm, dropout_p=dropout_p, is_causal=causal, scale=scale)
        out.backward(np.ones(out.shape) if grad_out is None else grad_out)
    grads = [tq.grad, tk.grad, tv.grad] + ([tm.grad] if mask_grad else [])
    return out.data, grads


# ---------------------------------------------------------------- independent references

def test_hand_computed_2x2():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    k = np.array([[1.0, 0.0], [0.0, 1.0]])
    v = np.array([[1.0, 2.0], [3.0, 4.0]])
    e = math.e
    # scale 1: scores [[1, 0], [0, 1]]; row 0 weights (e, 1)/(e+1), row 1 (1, e)/(e+1)
    expected = np.array([[(e * 1 + 3) / (e + 1), (e * 2 + 4) / (e + 1)],
                         [(1 + 3 * e) / (e + 1), (2 + 4 * e) / (e + 1)]])
    # causal / mask [[T, F], [T, T]]: row 0 only sees key 0 -> v_0
    masked = np.array([[1.0, 2.0], expected[1]])
    for backend in kernels.BACKENDS:
        with kernels.use(backend):
            assert np.allclose(SDPA(q, k, v, scale=1.0).data, expected, atol=1e-14), backend
            assert np.allclose(SDPA(q, k, v, scale=1.0, is_causal=True).data, masked, atol=1e-14)
            bool_mask = np.array([[True, False], [True, True]])
            assert np.allclose(SDPA(q, k, v, bool_mask, scale=1.0).data, masked, atol=1e-14)
            float_mask = np.array([[0.0, -1.0], [0.0, 0.0]])  # row 0 scores (1, -1)
            row0 = (e * v[0] + v[1] / e) / (e + 1 / e)
            assert np.allclose(SDPA(q, k, v, float_mask, scale=1.0).data[0], row0, atol=1e-14)
    # default scale is 1/sqrt(E) = 1/sqrt(2)
    w = np.exp(np.array([1.0, 0.0]) / math.sqrt(2))
    assert np.allclose(SDPA(q, k, v).data[0], (w[0] * v[0] + w[1] * v[1]) / w.sum(), atol=1e-14)


@st.composite
def attention_case(draw, max_len=9, max_feat=8, max_batch=3):
    """q, k, v (possibly transposed views), a mask (none/bool/float/causal) that
    leaves every row at least one key, and the dtype."""
    batch = tuple(draw(st.lists(st.integers(1, max_batch), max_size=2)))
    L, S = draw(st.integers(1, max_len)), draw(st.integers(1, max_len))
    E, Ev = draw(st.integers(1, max_feat)), draw(st.integers(1, max_feat))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))

    def make(n, d):
        if draw(st.booleans()):               # a transposed (non-contiguous) view
            return rng.standard_normal(batch + (d, n)).astype(dtype).swapaxes(-1, -2)
        return rng.standard_normal(batch + (n, d)).astype(dtype)

    q, k, v = make(L, E), make(S, E), make(S, Ev)
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    mask = None
    if kind in ("bool", "float"):
        full = batch + (L, S)
        keep = draw(st.integers(1, len(full)))          # drop leading dims, set some to 1
        shape = tuple(n if draw(st.booleans()) else 1 for n in full[len(full) - keep:])
        if kind == "bool":
            mask = rng.random(shape) < 0.6
            mask[..., 0] = True                          # every row keeps key 0
        else:
            mask = rng.standard_normal(shape).astype(dtype)
    return q, k, v, mask, kind == "causal", dtype


@given(attention_case())
def test_forward_matches_plain_numpy_reference(case):
    q, k, v, mask, causal, dtype = case
    expected, _ = reference(q, k, v, mask, causal)
    for backend in ("numba", "numpy"):
        with kernels.use(backend):
            out = SDPA(q, k, v, attn_mask=mask, is_causal=causal)
        assert out.dtype == dtype and out.shape == expected.shape
        assert_close(out.data, expected, dtype, f"{backend} forward")


@given(attention_case())
def test_numba_and_numpy_agree_forward_and_backward(case):
    q, k, v, mask, causal, dtype = case
    rng = np.random.default_rng(1)
    grad_out = rng.standard_normal(q.shape[:-1] + (v.shape[-1],))
    shape = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]) + grad_out.shape[-2:]
    grad_out = np.broadcast_to(grad_out, shape)
    out_a, grads_a = run("numba", q, k, v, mask, causal, grad_out=grad_out)
    out_b, grads_b = run("numpy", q, k, v, mask, causal, grad_out=grad_out)
    assert_close(out_a, out_b, dtype, "out")
    for name, a, b in zip("qkv", grads_a, grads_b):
        assert a.shape == b.shape
        assert_close(a, b, dtype, f"d{name}")


@settings(max_examples=12)
@given(attention_case(max_len=4, max_feat=3, max_batch=2))
def test_interpreted_loops_agree_with_numba(case):
    q, k, v, mask, causal, dtype = case
    out_a, grads_a = run("python", q, k, v, mask, causal)
    out_b, grads_b = run("numba", q, k, v, mask, causal)
    assert_close(out_a, out_b, dtype, "out")
    for name, a, b in zip("qkv", grads_a, grads_b):
        assert_close(a, b, dtype, f"d{name}")


@pytest.mark.parametrize("L,S,E,Ev,causal", [(70, 130, 5, 3, False), (70, 130, 5, 3, True),
                                              (130, 33, 8, 7, True), (1, 200, 4, 2, False)])
def test_numba_agrees_across_block_boundaries(L, S, E, Ev, causal):
    rng = np.random.default_rng(L + S)
    q, k, v = (rng.standard_normal((2, n, d)) for n, d in ((L, E), (S, E), (S, Ev)))
    mask = None if causal else rng.standard_normal((L, S))
    out_a, grads_a = run("numba", q, k, v, mask, causal)
    out_b, grads_b = run("numpy", q, k, v, mask, causal)
    assert_close(out_a, reference(q, k, v, mask, causal)[0], np.float64, "out vs reference")
    assert_close(out_a, out_b, np.float64, "out")
    for a, b in zip(grads_a, grads_b):
        assert_close(a, b, np.float64, "grad")


def test_agrees_with_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 3, n, 6)) for n in (5, 7, 7))
    mask = rng.random((5, 7)) < 0.7
    mask[:, 2] = True
    out, grads = run("numba", q, k, v, mask)
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    ref = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.tensor(mask))
    ref.sum().backward()
    assert np.allclose(out, ref.detach().numpy(), atol=1e-12)
    for a, b in zip(grads, (tq, tk, tv)):
        assert np.allclose(a, b.grad.numpy(), atol=1e-12)


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("kind", ["plain", "bool", "causal", "float_grad", "dropout"])
def test_gradcheck(backend, kind):
    rng = np.random.default_rng(7)
    q, k, v = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 2))
    inputs = [q, k, v]
    if kind == "bool":
        mask = rng.random((3, 4)) < 0.5
        mask[:, 1] = True
        fn = lambda q, k, v: SDPA(q, k, v, attn_mask=mask)        # noqa: E731
    elif kind == "causal":
        fn = lambda q, k, v: SDPA(q, k, v, is_causal=True, scale=0.7)  # noqa: E731
    elif kind == "float_grad":
        inputs.append(rng.standard_normal((1, 3, 4)))
        fn = lambda q, k, v, m: SDPA(q, k, v, attn_mask=m)        # noqa: E731
    elif kind == "plain":
        fn = lambda q, k, v: SDPA(q, k, v)                         # noqa: E731
    else:                                                          # same mask every call
        def fn(q, k, v):
            mdl.manual_seed(5)
            return SDPA(q, k, v, dropout_p=0.3)
    with kernels.use(backend):
        assert gradcheck(fn, inputs)


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    from minidl.kernels import attention as kernel_module
    original = kernel_module.backward

    def broken(*args, **kwargs):
        dq, dk, dv = original(*args, **kwargs)
        return dq * 1.01, dk, dv

    monkeypatch.setattr(kernel_module, "backward", broken)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((3, 2)) for _ in range(3))
    with pytest.raises(AssertionError, match="input 0"):
        gradcheck(lambda q, k, v: SDPA(q, k, v), [q, k, v])


# ---------------------------------------------------------------- edge cases

@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_fully_masked_row_gives_zeros_and_zero_gradient(backend):
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    mask = rng.random((4, 5)) < 0.6
    mask[:, 0] = True
    mask[2] = False                                    # query 2 may attend to nothing
    out, (dq, dk, dv) = run(backend, q, k, v, mask)
    assert np.all(out[2] == 0) and np.all(dq[2] == 0)
    assert np.all(np.isfinite(out)) and all(np.all(np.isfinite(g)) for g in (dq, dk, dv))
    keep = [0, 1, 3]                                   # the other rows are unaffected
    out_rest, (dq_rest, dk_rest, dv_rest) = run(backend, q[keep], k, v, mask[keep])
    assert np.allclose(out[keep], out_rest, atol=1e-12)
    assert np.allclose(dk, dk_rest, atol=1e-12) and np.allclose(dv, dv_rest, atol=1e-12)
    weights = F.attention_weights(q, k, mask).data
    assert np.all(weights[2] == 0) and np.allclose(weights[keep].sum(-1), 1)
    float_mask = np.where(mask, 0.0, -np.inf)          # same with a float -inf mask
    assert np.array_equal(run(backend, q, k, v, float_mask)[0], out)


def test_length_one_and_L_differs_from_S_causal_is_top_left():
    rng = np.random.default_rng(4)
    q, k, v = rng.standard_normal((1, 4)), rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    assert np.allclose(SDPA(q, k, v, is_causal=True).data, v[:1])    # row 0 sees key 0 only
    q3 = rng.standard_normal((3, 4))
    expected, _ = reference(q3, k, v, np.tril(np.ones((3, 6), dtype=bool)))
    assert np.allclose(SDPA(q3, k, v, is_causal=True).data, expected, atol=1e-12)


def test_attention_weights_are_the_softmax_and_carry_no_grad():
    rng = np.random.default_rng(5)
    q = mdl.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    k = rng.standard_normal((2, 6, 3))
    w = F.attention_weights(q, k, is_causal=True)
    _, expected = reference(q.data, k, np.zeros((2, 6, 1)), causal=True)
    assert w.shape == (2, 4, 6) and not w.requires_grad
    assert np.allclose(w.data, expected, atol=1e-12)
    assert np.all(np.triu(w.data[0], 1) == 0)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_dropout_zeroes_weights_and_rescales_the_rest(backend):
    # with value = identity, out = the dropped-out weights themselves
    rng = np.random.default_rng(6)
    L, S = (8, 16) if backend == "python" else (64, 256)
    q, k = rng.standard_normal((L, 4)), rng.standard_normal((S, 4))
    with kernels.use(backend):
        mdl.manual_seed(11)
        out = SDPA(q, k, np.eye(S), dropout_p=0.25).data
    weights = F.attention_weights(q, k).data
    dropped = out == 0
    assert np.allclose(out[~dropped], weights[~dropped] / 0.75, rtol=1e-12)
    if backend != "python":
        assert abs(dropped.mean() - 0.25) < 0.02
    with kernels.use("numpy"):                          # the twin draws the same mask
        mdl.manual_seed(11)
        assert np.array_equal(SDPA(q, k, np.eye(S), dropout_p=0.25).data == 0, dropped)


def test_exp_shifted_accuracy():
    x = np.concatenate([np.linspace(-740, 0, 20001), [-np.inf, -800.0, -1e-300]])
    y = x.copy()
    attention_fast.exp_shifted(y, y.size, 0.0)
    expected = np.exp(x)
    big = expected > 1e-300
    assert np.max(np.abs(y[big] / expected[big] - 1)) < 1e-15
    assert np.all(y[x < -746] == 0)
    x32 = x.astype(np.float32)[-2000:]                 # float32: one rounding of the result
    y32 = x32.copy()
    attention_fast.exp_shifted(y32, y32.size, -3.0)
    assert np.allclose(y32, np.exp(x32.astype(np.float64) + 3.0), rtol=1.2e-7, atol=0)


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 7, 3)),
              rng.standard_normal((2, 7, 4)), rng.standard_normal((5, 7))]
    copies = [a.copy() for a in arrays]
    for backend in kernels.BACKENDS:
        run(backend, *arrays, mask_grad=True)
        run(backend, *arrays[:3], causal=True, dropout_p=0.2)
        for a, c in zip(arrays, copies):
            assert np.array_equal(a, c), backend


@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_nan_input_gives_nan_not_zeros(backend):
    rng = np.random.default_rng(9)
    q, k, v = rng.standard_normal((3, 2)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    q[1, 0] = np.nan                                   # query 1 is NaN: its row must be NaN
    out, (dq, dk, dv) = run(backend, q, k, v)
    assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[[0, 2]]))
    assert np.all(np.isnan(dq[1])) and np.all(np.isnan(dk)) and np.all(np.isnan(dv))
    # causal: the same, although keys 2 and 3 come after query 1 (masked for it)
    out, (dq, dk, dv) = run(backend, q, k, v, causal=True)
    assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[[0, 2]]))
    assert np.all(np.isnan(dq[1])) and np.all(np.isfinite(dq[[0, 2]]))
    assert np.all(np.isnan(dk)) and np.all(np.isnan(dv))


def test_input_gradients_own_their_memory_and_match_the_twin():
    """dq, dk, dv come back in the inputs' shapes as new arrays (the kernels write
    them through (BH, ., .) views), so autograd stores them without copying."""
    import minidl as mdl
    import minidl.functional as F
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 3, 5, 4)) for _ in range(3)]
    results = {}
    for backend in ("numba", "numpy"):
        with mdl.kernels.use(backend):
            leaves = [mdl.tensor(a, requires_grad=True) for a in arrays]
            F.scaled_dot_product_attention(*leaves, is_causal=True).backward(np.ones((2, 3, 5, 4)))
        results[backend] = [leaf.grad for leaf in leaves]
    for got, want in zip(results["numba"], results["numpy"]):
        assert got.shape == (2, 3, 5, 4) and got.base is None and got.flags.owndata
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_compiled_float32_rows_sum_their_weights_in_float64():
    """The dense kernels add a float32 row's exponentials in float64: one key
    with score 0 and 100000 at -17, whose weights (4e-8 each before
    normalising) are each below half a float32 step of 1, sum to 1.0041; a
    float32 running sum that holds the 1 drops them. With v = 1 at the first
    key only, out is that key's weight. Against the float64 reference."""
    S = 100_000
    q = np.ones((1, 1, 1, 1), np.float32)
    k = np.full((1, 1, S, 1), -17.0, np.float32)
    k[0, 0, 0, 0] = 0.0
    v = np.zeros((1, 1, S, 1), np.float32)
    v[0, 0, 0, 0] = 1.0
    want, _ = reference(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), scale=1.0)
    with kernels.use("numba"):
        out = F.scaled_dot_product_attention(mdl.tensor(q), mdl.tensor(k), mdl.tensor(v), scale=1.0).data
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=1e-6)
