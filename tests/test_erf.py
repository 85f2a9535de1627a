"""erf (for GELU): the NumPy twin (Cody's rational approximations) and the loop
kernel (math.erf per element) against math.erf, and against SciPy if present."""
import math

import numpy as np
import pytest

from minidl import kernels
from minidl.kernels.erf import erf, erf_loop, erf_numpy


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
