"""softmax and log_softmax: against scipy.special over drawn shapes, dims, dtypes
and memory layouts; the three backends agreeing on forward and backward;
backward against the explicit Jacobian (diag(y) - y y^T) and gradcheck;
extreme logits (+-1e4), -inf entries, all -inf rows (NaN, as in PyTorch);
the polynomial exp against np.exp; bad input and a fuzz test.

Tolerances: float64 to 1e-12; float32 to rtol 2e-6 / atol 1e-6 (the loops
compute in float64 and round once; the NumPy twin computes in float32, so
its log_softmax near 0 carries the ~1e-7 absolute error of a float32 log).
"""
import numpy as np
import pytest
import scipy.special
from hypothesis import given, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels
from minidl.kernels.fast_exp import fast_exp_array, fast_exp_nonpositive_array

BACKENDS = ("numba", "numpy", "python")
OPS = {"softmax": (F.softmax, scipy.special.softmax), "log_softmax": (F.log_softmax, scipy.special.log_softmax)}
TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def run(op, x, dim, grad, backend):
    with kernels.use(backend):
        t = mdl.tensor(x, requires_grad=True)
        y = OPS[op][0](t, dim=dim)
        y.backward(grad)
    return y.data, t.grad


@st.composite
def softmax_cases(draw, max_elements=400):
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=1, max_size=4)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scale = draw(st.sampled_from([1.0, 10.0, 1e4]))
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    if draw(st.booleans()) and x.ndim >= 2:           # a non-contiguous (transposed) view
        x = np.ascontiguousarray(x.swapaxes(0, -1)).swapaxes(0, -1)
    grad = rng.standard_normal(shape).astype(dtype)
    return x, dim, grad


@pytest.mark.parametrize("op", OPS)
@given(case=softmax_cases())
def test_forward_matches_scipy_and_backends_agree(op, case):
    x, dim, grad = case
    before, grad_before = x.copy(), grad.copy()
    want = OPS[op][1](x.astype(np.float64), axis=dim)
    results = {b: run(op, x, dim, grad, b) for b in BACKENDS}
    np.testing.assert_array_equal(x, before)           # caller arrays untouched
    np.testing.assert_array_equal(grad, grad_before)
    for backend, (y, gx) in results.items():
        assert y.dtype == x.dtype and gx.dtype == x.dtype and y.shape == x.shape
        np.testing.assert_allclose(y, want, **TOL[x.dtype.type], err_msg=backend)
        np.testing.assert_allclose(gx, results["numba"][1], rtol=TOL[x.dtype.type]["rtol"] * 10,
                                   atol=1e-6 if x.dtype == np.float32 else 1e-12, err_msg=backend)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_equals_explicit_jacobian(op, backend):
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    y, gx = run(op, x, -1, g, backend)
    for r in range(3):
        p = scipy.special.softmax(x[r])
        jac = np.diag(p) - np.outer(p, p)               # d softmax_i / d x_j
        if op == "log_softmax":
            jac = np.eye(6) - np.tile(p, (6, 1))        # d log softmax_i / d x_j = delta_ij - p_j
        np.testing.assert_allclose(gx[r], g[r] @ jac, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape, dim", [((4, 5), -1), ((3, 4, 2), 0), ((2, 3, 4), 1), ((7,), 0)])
def test_gradcheck(op, shape, dim):
    x = np.random.default_rng(0).standard_normal(shape) * 3
    assert mdl.gradcheck(lambda t: OPS[op][0](t, dim=dim), [x])
    assert mdl.gradcheck(lambda t: OPS[op][0](t.transpose(0, -1), dim=dim), [x.swapaxes(0, -1).copy()])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_and_minus_inf_entries(backend, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1],            # would overflow exp without the max shift
                  [-np.inf, 0.0, 1.0, -np.inf],         # -inf entries: probability 0
                  [-1e4, -1e4 + 2, -np.inf, -1e4]], dtype)
    g = np.arange(12, dtype=dtype).reshape(3, 4)
    for op in OPS:
        y, gx = run(op, x, -1, g, backend)
        want = OPS[op][1](x.astype(np.float64), axis=-1)
        np.testing.assert_allclose(y, want, **TOL[dtype])
        assert np.all(np.isfinite(gx))
    p, gx = run("softmax", x, -1, g, backend)
    assert p[1, 0] == 0 and p[1, 3] == 0 and gx[1, 0] == 0
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-6)
    logp, gx = run("log_softmax", x, -1, g, backend)
    assert logp[1, 0] == -np.inf and gx[1, 0] == g[1, 0]   # g - softmax * sum(g), softmax = 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_minus_inf_row_is_nan_like_pytorch_and_other_rows_unaffected(backend):
    x = np.array([[-np.inf] * 3, [0.0, 1.0, 2.0]])
    for op in OPS:
        y, gx = run(op, x, 1, np.ones_like(x), backend)
        assert np.isnan(y[0]).all() and np.isnan(gx[0]).all()
        np.testing.assert_allclose(y[1], OPS[op][1](x[1]), rtol=1e-12)
        assert np.isfinite(gx[1]).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 16, 17, 31, 40])
def test_row_max_found_at_every_position(backend, dtype, n):
    # the compiled row max runs in SIMD lanes plus a tail loop: put a dominant
    # logit at every position in turn (each lane, the tail)
    rng = np.random.default_rng(n)
    x = rng.uniform(-3, 3, (n, n)).astype(dtype)
    x[np.arange(n), np.arange(n)] = 1e3                  # row r peaks at position r: a missed
    # maximum would leave exp(x - max) to overflow to inf and the row to NaN
    g = rng.standard_normal((n, n)).astype(dtype)
    for op in OPS:
        y, _ = run(op, x, -1, g, backend)
        np.testing.assert_allclose(y, OPS[op][1](x.astype(np.float64), axis=-1), **TOL[dtype])
    p, _ = run("softmax", x, -1, g, backend)
    assert np.all(p[np.arange(n), np.arange(n)] > 1 - 1e-6)


SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 1e-40, -1e-40, 3e38, -3e38, np.inf, -np.inf]


@pytest.mark.parametrize("compiled", [True, False])
@given(dtype=st.sampled_from([np.float32, np.float64]),
       values=st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(-1e30, 1e30, allow_subnormal=True).map(float)),
                       min_size=1, max_size=70),
       start=st.integers(0, 3))
def test_row_max_on_the_bits_equals_numpy_max(compiled, dtype, values, start):
    # _row_max reads the floats' bits as integers: signed zeros, subnormals,
    # infinities, all-negative rows and rows longer than a SIMD register, on a
    # row that starts anywhere in its buffer (not aligned), against np.max
    from minidl.kernels.softmax import _row_max
    buffer = np.zeros(start + len(values), dtype)
    row = buffer[start:]
    row[:] = values
    got = (_row_max if compiled else _row_max.py_func)(row)
    want = row.max()
    assert compiled or type(got) is dtype              # (Numba returns a float32 as a Python float)
    assert dtype(got) == want and (want != 0 or np.signbit(got) == np.signbit(row[row == 0]).all())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_max_with_nan_makes_the_softmax_row_nan(dtype):
    # a NaN of either sign, anywhere, turns the whole row NaN (as in PyTorch)
    from minidl.kernels.softmax import softmax_forward
    for sign in (1.0, -1.0):
        for position in (0, 5, 16, 39):
            x = np.linspace(-3, 3, 40).astype(dtype)[None].repeat(2, 0)   # (2, 40)
            x[0, position] = np.copysign(np.nan, sign)
            assert np.signbit(x[0, position]) == (sign < 0)
            for log in (False, True):
                y = softmax_forward(x, log)
                assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


def test_fast_exp_accuracy_against_numpy():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-745.0, 709.0, 400_001), rng.uniform(-30, 30, 100_000),
                        -rng.exponential(100, 100_000), [0.0, -0.0, 1e-300, -1e-300]])
    got, want = fast_exp_array(x), np.exp(x)
    normal = want >= np.finfo(np.float64).tiny
    rel = np.abs(got[normal] - want[normal]) / want[normal]
    assert got.dtype == np.float64
    assert rel.max() <= 4e-16                          # measured ~2.2e-16 (one ulp)
    assert np.all(np.abs(got[~normal] - want[~normal]) <= 5e-324)   # subnormals: within one step
    special = np.array([-np.inf, -1e4, -746.0, np.inf, 1e4, np.nan])
    np.testing.assert_array_equal(fast_exp_array(special), [0, 0, 0, np.inf, np.inf, np.nan])


def test_fast_exp32_accuracy_against_numpy():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.linspace(-103.9, 88.7, 400_001), rng.uniform(-20, 20, 100_000),
                        -rng.exponential(20, 100_000)]).astype(np.float32)
    got = fast_exp_array(x)
    assert got.dtype == np.float32
    want = np.exp(x.astype(np.float64))                # exact reference, before float32 rounding
    normal = want >= np.finfo(np.float32).tiny
    rel = np.abs(got[normal] - want[normal]) / want[normal]
    assert rel.max() <= 1.5e-7                         # measured 1.0e-7: under one float32 ulp
    step = np.finfo(np.float32).smallest_subnormal
    assert np.all(np.abs(got[~normal] - want[~normal]) <= step)
    special = np.array([-np.inf, -1e4, -105.0, np.inf, 1e4, np.nan, 0.0], np.float32)
    np.testing.assert_array_equal(fast_exp_array(special), [0, 0, 0, np.inf, np.inf, np.nan, 1])


def test_fast_exp32_nonpositive_accuracy_against_numpy():
    # softmax's exp for arguments <= 0: as accurate as fast_exp32 down to -87,
    # 0 below (where exp is under the smallest normal float32, 1.2e-38)
    rng = np.random.default_rng(2)
    x = np.concatenate([np.linspace(-87.0, 0.0, 400_001), -rng.exponential(5, 100_000),
                        [0.0, -0.0, -1e-30]]).astype(np.float32)
    got = fast_exp_nonpositive_array(x)
    assert got.dtype == np.float32
    want = np.exp(x.astype(np.float64))
    assert (np.abs(got - want) / want).max() <= 1.5e-7
    below = np.linspace(-150.0, -87.01, 1001).astype(np.float32)
    np.testing.assert_array_equal(fast_exp_nonpositive_array(below), 0)
    special = np.array([-np.inf, -1e4, np.nan, 0.0], np.float32)
    np.testing.assert_array_equal(fast_exp_nonpositive_array(special), [0, 0, np.nan, 1])
    x64 = np.linspace(-745.0, 0.0, 10_001)                # float64: the full fast_exp
    np.testing.assert_array_equal(fast_exp_nonpositive_array(x64), fast_exp_array(x64))


def test_zero_dim_and_empty_inputs():
    assert F.softmax(mdl.tensor(np.float64(3.0)), dim=0).item() == 1.0
    assert F.log_softmax(mdl.tensor(np.float64(3.0)), dim=-1).item() == 0.0
    t = mdl.tensor(np.zeros((3, 0)), requires_grad=True)
    y = F.softmax(t, dim=1)
    assert y.shape == (3, 0)
    y.sum().backward()
    assert t.grad.shape == (3, 0)


def test_tensor_methods():
    x = np.random.default_rng(0).standard_normal((2, 5))
    t = mdl.tensor(x)
    np.testing.assert_allclose(t.softmax(0).data, scipy.special.softmax(x, axis=0), rtol=1e-12)
    np.testing.assert_allclose(t.log_softmax(-1).data, scipy.special.log_softmax(x, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("x, dim, error, words", [
    (np.arange(6).reshape(2, 3), -1, TypeError, ["int64", "(2, 3)"]),
    (np.zeros((2, 3), bool), 0, TypeError, ["bool"]),
    (np.zeros((2, 3)), 2, ValueError, ["dim 2", "(2, 3)"]),
    (np.zeros((2, 3)), -3, ValueError, ["dim -3"]),
    (np.zeros((2, 3)), 1.0, TypeError, ["dim"]),
    (np.zeros((2, 3)), None, TypeError, ["dim"]),
])
def test_bad_input_names_op_and_shape(op, x, dim, error, words):
    with pytest.raises(error) as info:
        OPS[op][0](mdl.tensor(x), dim=dim)
    assert str(info.value).startswith(op + ":")
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("op", OPS)
@given(shape=st.lists(st.integers(0, 4), max_size=4),
       dtype=st.sampled_from([np.float32, np.float64, np.int8, np.float16, np.complex128]),
       dim=st.one_of(st.integers(-6, 6), st.floats(-2, 2), st.none(), st.just("0"), st.booleans()))
def test_fuzz_malformed_arguments_raise_python_errors(op, shape, dtype, dim):
    x = np.ones(shape, dtype)
    try:
        y = OPS[op][0](mdl.tensor(x), dim=dim)
    except (ValueError, TypeError):
        return
    assert y.shape == x.shape and y.dtype == x.dtype
    if x.size:                                           # uniform logits: uniform probabilities
        n = x.shape[dim] if x.ndim else 1
        want = 1.0 / n if op == "softmax" else -np.log(n)
        np.testing.assert_allclose(y.data, want, rtol=1e-6)


def test_small_inputs_run_single_threaded_and_thread_count_is_restored():
    import numba
    from minidl.threads import single_thread_if_small
    before = numba.get_num_threads()
    with single_thread_if_small(10):
        assert numba.get_num_threads() == 1
    with single_thread_if_small(10**9):
        assert numba.get_num_threads() == before
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dim", [-1, 0])
def test_gradient_owns_its_memory_when_dim_is_last_and_values_agree_either_way(op, dim):
    """Along the last dim the op writes forward and backward results straight
    into arrays of x's shape (through 2-D views), so the gradient a leaf
    receives is a plain array, stored without a copy; along another dim the
    result is moved back. Both give the same numbers as scipy."""
    x = np.random.default_rng(7).standard_normal((3, 5, 4))
    grad = np.random.default_rng(8).standard_normal((3, 5, 4))
    t = mdl.tensor(x, requires_grad=True)
    y = OPS[op][0](t, dim=dim)
    y.backward(grad)
    np.testing.assert_allclose(y.data, OPS[op][1](x, axis=dim), rtol=1e-12, atol=1e-13)
    want = scipy.special.softmax(x, axis=dim)
    if op == "softmax":
        expected = want * (grad - (grad * want).sum(axis=dim, keepdims=True))
    else:
        expected = grad - want * grad.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(t.grad, expected, rtol=1e-12, atol=1e-13)
    if dim == -1:
        assert y.data.base is None and t.grad.base is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernels_write_into_out_and_refuse_a_wrong_one(backend):
    from minidl.kernels.softmax import softmax_backward, softmax_forward
    x = np.random.default_rng(9).standard_normal((4, 6)).astype(np.float32)
    with kernels.use(backend):
        out = np.full_like(x, np.nan)
        assert softmax_forward(x, False, out=out) is out
        np.testing.assert_allclose(out, scipy.special.softmax(x, axis=1), rtol=2e-6)
        grad_out = np.full_like(x, np.nan)
        assert softmax_backward(x, out, False, out=grad_out) is grad_out
        np.testing.assert_allclose(grad_out, softmax_backward(x, out, False), rtol=0, atol=0)
        for bad in (np.empty((4, 5), np.float32), np.empty((4, 6)), np.empty((6, 4), np.float32).T):
            with pytest.raises(ValueError,
                               match=r"softmax_forward: out must be a C-contiguous, writeable \(4, 6\) float32"):
                softmax_forward(x, False, out=bad)


def _float32_backward_case(log, seed=11):
    """A float32 (grad, y) pair whose row sum (sum g for log_softmax, <g, y>
    for softmax) cancels: large terms of both signs and small ones. Summed in
    float64 from the float32 values, as the compiled loops do, it is exact to
    ~1e-16; a float32 running sum (or float32 products) loses the small terms
    next to the large ones."""
    rng = np.random.default_rng(seed)
    n = 64
    rows = []
    for _ in range(3):
        x = rng.standard_normal(n)
        p = scipy.special.softmax(x)
        y = np.log(p) if log else p
        g = rng.standard_normal(n)                     # the small terms
        big = 2.0 ** 25 if log else 1e6
        i, j = rng.choice(n, 2, replace=False)
        g[i] = big                                     # a large pair that (nearly) cancels
        g[j] = -big if log else -big * p[i] / p[j]
        rows.append((g, y))
    g = np.array([r[0] for r in rows], np.float32)
    y = np.array([r[1] for r in rows], np.float32)
    return g, y


@pytest.mark.parametrize("backend", ["numba", "python"])
@pytest.mark.parametrize("log", [False, True])
def test_float32_backward_sums_in_float64(log, backend):
    """softmax's backward sums each row in float64 for float32 rows too,
    compiled and interpreted (the module docstring): against the formula
    evaluated in float64 on the same float32 grad and y. The entries with small gradients depend on the row sum
    to full precision; with a float32 sum they would be off by ~1e-2 and more."""
    from minidl.kernels.softmax import softmax_backward
    g, y = _float32_backward_case(log)
    g64, y64 = g.astype(np.float64), y.astype(np.float64)
    if log:
        want = g64 - np.exp(y64) * g64.sum(axis=1, keepdims=True)
    else:
        want = y64 * (g64 - (g64 * y64).sum(axis=1, keepdims=True))
    with kernels.use(backend):
        got = softmax_backward(g, y, log)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)


def test_fast_exp_keeps_the_last_subnormal_step():
    """Results in the last subnormal step (x from about -745.13 to -744.4, where
    exp(x) rounds to 2**-1074) come out as that step, not 0: 2**k is applied
    as two factors, so it never underflows on its own before the polynomial's
    value scales it."""
    x = np.linspace(-745.5, -740.0, 5501)
    got, want = fast_exp_array(x), np.exp(x)
    assert np.all(got[want > 0] > 0), x[(want > 0) & (got == 0)][:5]
    assert np.all(np.abs(got - want) <= 5e-324)


@pytest.mark.parametrize("backend", ["numba", "python"])
@pytest.mark.parametrize("log", [False, True])
def test_float32_forward_sum_error_stays_within_the_block_bound(log, backend):
    """softmax's forward adds a float32 row's exponentials in float32 within
    blocks of SUM_BLOCK terms and the blocks' sums in float64, compiled and
    interpreted (the module docstring). A row with one logit at 0 and 100000
    at -17, whose exponentials (4e-8) are each below half a float32 step of 1,
    sums to 1.0041: a float32 running sum over the whole row drops them all
    (relative error 4e-3 in every output; PyTorch's float32 sum errs by 2.6e-4
    here); within blocks at most the block holding the 1 loses its other
    SUM_BLOCK - 1 terms, a relative error under SUM_BLOCK float32 units
    (7.6e-6), and the compiled loops, which add in SIMD lanes, lose fewer.
    Against SciPy in float64 on the same float32 logits."""
    from minidl.kernels.softmax import SUM_BLOCK
    n = 100_000
    x = np.full((3, n), -17.0, np.float32)
    x[0, 0], x[1, n // 2 + 3], x[2, n - 1] = 0.0, 0.0, 0.0   # the large term early, inside, last
    want = OPS["log_softmax" if log else "softmax"][1](x.astype(np.float64), axis=-1)
    with kernels.use(backend):
        y = (F.log_softmax if log else F.softmax)(mdl.tensor(x), dim=-1).data
    assert y.dtype == np.float32
    bound = SUM_BLOCK * np.finfo(np.float32).eps / 2 + 2 * np.finfo(np.float32).eps   # block sum + rounding
    if log:                                             # log-probabilities: an absolute error log(1 + e) ~ e
        np.testing.assert_allclose(y, want, rtol=0, atol=bound)
    else:
        np.testing.assert_allclose(y, want, rtol=bound, atol=0)
    if backend == "numba":                             # SIMD lanes: each sums a few of the block's terms
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
