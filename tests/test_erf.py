"""erf (for GELU): the NumPy twin (Cody's rational approximations), the loop
kernel (math.erf per element) and the branch-free scalar the fast GELU loops
use, against math.erf, and against SciPy if present."""
import math

import numpy as np
import pytest

from minidl import kernels
from numba import njit

from minidl.kernels import erf as erf_module
from minidl.kernels.erf import (erf, erf_branch_free, erf_loop, erf_numpy, fit_erfc_float32,
                                normal_cdf_branch_free, normal_cdf_fast, normal_cdf_float32)


def _reference(x):
    return np.array([math.erf(v) for v in x.ravel()]).reshape(x.shape)


def test_erf_numpy_twin_matches_math_erf_to_float64_rounding():
    x = np.concatenate([np.linspace(-8, 8, 20001), [-30.0, -4.0, -0.5, 0.0, 0.5, 4.0, 30.0, 1e-300]])
    ref = _reference(x)
    assert np.max(np.abs(erf_numpy(x) - ref)) < 1e-15
    small = np.abs(x) < 0.5                          # relative accuracy where erf is tiny
    rel = np.abs(erf_numpy(x[small]) - ref[small]) / np.maximum(np.abs(ref[small]), 1e-300)
    assert np.max(rel) < 1e-15


def test_erf_loop_equals_math_erf_and_keeps_float32():
    x = np.random.default_rng(0).uniform(-5, 5, (7, 3)).astype(np.float32)
    out = erf_loop(x)
    assert out.dtype == np.float32 and out.shape == (7, 3)
    np.testing.assert_allclose(out, _reference(x.astype(np.float64)).astype(np.float32), rtol=0, atol=0)
    assert erf_numpy(x).dtype == np.float32


def test_erf_nan_and_infinities():
    x = np.array([np.nan, np.inf, -np.inf])
    for fn in (erf_numpy, erf_loop):
        out = fn(x)
        assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == -1.0


@pytest.mark.parametrize("backend", ["numba", "numpy", "python"])
def test_erf_backends_agree(backend):
    x = np.linspace(-6, 6, 301)
    with kernels.use(backend):
        np.testing.assert_allclose(erf(x), _reference(x), rtol=0, atol=1e-15)


def test_erf_against_scipy_if_installed():
    special = pytest.importorskip("scipy.special")
    x = np.random.default_rng(1).standard_normal(10000) * 3
    np.testing.assert_allclose(erf_numpy(x), special.erf(x), rtol=1e-14, atol=1e-16)


# ---- the branch-free erf the fast GELU loops use ---------------------------------------
@njit(cache=False)
def _branch_free_array(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = erf_branch_free(x[i])
    return out


def test_branch_free_erf_matches_math_erf_to_float64_rounding():
    edges = [0.5, 4.0, 27.0]                                     # Cody's range boundaries, and the clamp
    near = [e * f for e in edges for f in (1 - 1e-15, 1.0, 1 + 1e-15)]
    x = np.concatenate([np.linspace(-8, 8, 20001), near, np.negative(near), [-30.0, 30.0, 1e-300, -1e-300]])
    ref = _reference(x)
    for fn in (_branch_free_array, lambda v: np.array([erf_branch_free.py_func(e) for e in v])):
        out = fn(x)
        assert np.max(np.abs(out - ref)) < 1e-15
        small = np.abs(x) < 0.5
        assert np.max(np.abs(out[small] - ref[small]) / np.maximum(np.abs(ref[small]), 1e-300)) < 1e-15


def test_branch_free_erf_special_values():
    out = _branch_free_array(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0]))
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == -1.0
    assert out[3] == 0.0 and not np.signbit(out[3]) and out[4] == 0.0 and np.signbit(out[4])


def test_branch_free_erf_against_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.random.default_rng(2).standard_normal(20000) * 3
    np.testing.assert_allclose(_branch_free_array(x), special.erf(x), rtol=1e-14, atol=1e-16)


@njit(cache=False)
def _normal_cdf_array(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = normal_cdf_branch_free(x[i])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_branch_free_erf_and_normal_cdf_in_their_own_precision(dtype):
    """float32 arguments are computed in float32 arithmetic: erf within a few float32
    ulp of math.erf; Phi relative to math.erfc within 4 eps (1 + x^2) (the rounding
    of x^2 / 2, amplified by exp), down to the smallest normal number."""
    x = np.concatenate([np.linspace(-40, 40, 80001), [-5.66, -0.7071, 0.7071, 5.66]]).astype(dtype)
    x64 = x.astype(np.float64)
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    erf_out = _branch_free_array(x)
    assert erf_out.dtype == dtype
    np.testing.assert_allclose(erf_out, _reference(x64), rtol=0, atol=4 * eps)
    cdf = _normal_cdf_array(x)
    want = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x64])
    assert cdf.dtype == dtype
    bad = np.abs(cdf - want) > 4 * eps * (1 + x64 * x64) * want + tiny
    assert not bad.any(), (x[bad][:5], cdf[bad][:5], want[bad][:5])
    special = _normal_cdf_array(np.array([np.nan, np.inf, -np.inf, 0.0], dtype))
    assert np.isnan(special[0]) and list(special[1:]) == [1.0, 0.0, 0.5]


# ---- the float32 normal CDF from one formula (GELU's fast loops, float32) ---------------
@njit(cache=False)
def _normal_cdf_fast_array(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = normal_cdf_fast(x[i])
    return out


@njit(cache=False)
def _normal_cdf_float32_array(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = normal_cdf_float32(x[i])
    return out


def _cdf_outside_bound(cdf, x):
    """The x whose Phi misses 4 eps (1 + x^2) relative (plus the smallest normal
    float32, for subnormal results), against math.erfc in float64."""
    x64 = x.astype(np.float64)
    want = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x64])
    eps, tiny = np.finfo(np.float32).eps, np.finfo(np.float32).tiny
    bad = np.abs(cdf.astype(np.float64) - want) > 4 * eps * (1 + x64 * x64) * want + tiny
    return x[bad]


def test_float32_normal_cdf_keeps_the_bound_of_the_three_range_version():
    """Within 4 eps (1 + x^2) of math.erfc from -40 to 40, the same bound as
    Cody's ranges in float32; special values as they give."""
    x = np.concatenate([np.linspace(-40, 40, 160001),
                        [-14.14, -14.15, 14.15, -1e-30, 1e-30, -1e-45]]).astype(np.float32)
    cdf = _normal_cdf_fast_array(x)
    assert cdf.dtype == np.float32
    assert _cdf_outside_bound(cdf, x).size == 0, _cdf_outside_bound(cdf, x)[:5]
    special = _normal_cdf_fast_array(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32))
    assert np.isnan(special[0]) and list(special[1:]) == [1.0, 0.0, 0.5, 0.5]


def _relative_errors_in_eps(cdf, x):
    """|Phi - math.erfc-based Phi| / Phi in float32 eps, elementwise."""
    want = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.astype(np.float64)])
    return np.abs(cdf.astype(np.float64) - want) / want / np.finfo(np.float32).eps


def _accurate_where_not_small(cdf, x):
    """Within 12 float32 eps relative over [-3, 3] (where GELU's inputs mostly
    lie), and within 2 eps over [-1, 3]."""
    relative = _relative_errors_in_eps(cdf, x)
    return relative.max() < 12 and relative[x >= -1].max() < 2


def test_float32_normal_cdf_is_accurate_where_it_is_not_small():
    x = np.linspace(-3, 3, 60001).astype(np.float32)
    assert _accurate_where_not_small(_normal_cdf_fast_array(x), x)


def test_normal_cdf_fast_picks_the_float32_formula_for_float32_only():
    x32 = np.random.default_rng(3).standard_normal(5000).astype(np.float32) * 4
    fast32 = _normal_cdf_fast_array(x32)
    assert np.array_equal(fast32, _normal_cdf_float32_array(x32))
    assert not np.array_equal(fast32, _normal_cdf_array(x32))       # Cody's differs in some last bits
    x64 = x32.astype(np.float64)
    assert np.array_equal(_normal_cdf_fast_array(x64), _normal_cdf_array(x64))   # float64: Cody's
    assert normal_cdf_fast(np.float32(-1.0)) == normal_cdf_float32(np.float32(-1.0))  # plain Python too
    assert normal_cdf_fast(-1.0) == normal_cdf_branch_free(-1.0)


def test_float32_coefficients_are_the_fit():
    """The stored Q is fit_erfc_float32() rounded to float32 (within one float32
    rounding step, as LAPACK builds may differ in the last float64 bits)."""
    pytest.importorskip("scipy.special")
    stored = np.array(erf_module._ERFC_Q32, np.float64)
    np.testing.assert_allclose(fit_erfc_float32(), stored, rtol=2 ** -23, atol=0)


def test_float32_formula_has_the_accuracy_the_fit_claims():
    """In float64 arithmetic the formula with the fitted Q is within 2e-8 relative of
    math.erfc over [0, 26] (a sixth of a float32 ulp)."""
    q = fit_erfc_float32()
    z = np.linspace(0, 26, 20001)
    t = 1 / (1 + z / 2)
    u = z * t / 2
    approx = t * np.exp(u * np.polynomial.polynomial.polyval(u, q) - z * z)
    want = np.array([math.erfc(v) for v in z])
    assert np.max(np.abs(approx / want - 1)) < 2e-8


def test_a_perturbed_coefficient_is_caught(monkeypatch):
    """Planted bug: one coefficient off by 1e-4 fails the accuracy the tests hold."""
    x = np.linspace(-3, 3, 1201).astype(np.float32)
    assert _accurate_where_not_small(np.array([normal_cdf_float32.py_func(v) for v in x]), x)
    wrong = list(erf_module._ERFC_Q32)
    wrong[1] = np.float32(wrong[1] + 1e-4)
    monkeypatch.setattr(erf_module, "_ERFC_Q32", tuple(wrong))
    assert not _accurate_where_not_small(np.array([normal_cdf_float32.py_func(v) for v in x]), x)
