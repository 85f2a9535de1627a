"""erf (for GELU): the NumPy twin (Cody's rational approximations), the loop
kernel (math.erf per element) and the branch-free scalar the fast GELU loops
use, against math.erf, and against SciPy if present."""
import math

import numpy as np
import pytest

from minidl import kernels
from numba import njit

from minidl.kernels.erf import erf, erf_branch_free, erf_loop, erf_numpy, normal_cdf_branch_free


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
