"""The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t**2) dt, for GELU.

NumPy has no erf, and the kernels stay within NumPy and Numba, so minidl
carries its own:

- loop kernel (`erf_loop`, @njit): `math.erf` per element (the C library's erf,
  correctly rounded to within an ulp or so). Interpreted, it is the reference.
- NumPy twin (`erf_numpy`): W. J. Cody's rational Chebyshev approximations
  ("Rational Chebyshev approximations for the error function", Math. Comp. 23,
  1969), the ones behind SPECFUN's CALERF. Three ranges of |x|:
      |x| <= 0.5        erf(x)  = x R1(x**2)                     R1 = P1/Q1, degree 4/4
      0.5 < |x| <= 4    erfc(x) = exp(-x**2) R2(|x|)             degree 8/8
      |x| > 4           erfc(x) = exp(-x**2)/|x| (1/sqrt(pi) + R3(1/x**2)/x**2)  degree 5/5
  Cody states max relative errors near 1e-19 (beyond float64), so the twin
  matches math.erf to a few ulp in float64; tests/test_erf.py measures it
  (max absolute difference < 1e-15 over [-8, 8]).

Both compute in float64 and return the input's float dtype.
"""
import math

import numpy as np
from numba import njit

from .backend import current, interpreted


# ---- loop kernel (compiled by Numba; interpreted by the "python" backend) -------------
@njit(cache=True)
def _erf_loop_flat(x, out):
    """out[i] = erf(x[i]) for 1-D float64 arrays of equal length."""
    for i in range(x.shape[0]):
        out[i] = math.erf(x[i])


# ---- NumPy twin (vectorised: Cody's rational approximations) -------------------------
# erf(x) = x * P1(x^2) / Q1(x^2) on |x| <= 0.5 (coefficients highest degree last)
_P1 = (3.209377589138469472562e03, 3.774852376853020208137e02, 1.138641541510501556495e02,
       3.161123743870565596947e00, 1.857777061846031526730e-01)
_Q1 = (2.844236833439170622273e03, 1.282616526077372275645e03, 2.440246379344441733056e02,
       2.360129095234412093499e01, 1.0)
# erfc(x) = exp(-x^2) * P2(x) / Q2(x) on 0.5 < x <= 4
_P2 = (1.23033935479799725272e03, 2.05107837782607146532e03, 1.71204761263407058314e03,
       8.81952221241769090411e02, 2.98635138197400131132e02, 6.61191906371416294775e01,
       8.88314979438837594118e00, 5.64188496988670089180e-01, 2.15311535474403846343e-08)
_Q2 = (1.23033935480374942043e03, 3.43936767414372163696e03, 4.36261909014324715820e03,
       3.29079923573345962678e03, 1.62138957456669018874e03, 5.37181101862009857509e02,
       1.17693950891312499305e02, 1.57449261107098347253e01, 1.0)
# erfc(x) = exp(-x^2)/x * (1/sqrt(pi) + z P3(z)/Q3(z)), z = 1/x^2, on x > 4
_P3 = (-6.58749161529837803157e-04, -1.60837851487422766278e-02, -1.25781726111229246204e-01,
       -3.60344899949804439429e-01, -3.05326634961232344035e-01, -1.63153871373020978498e-02)
_Q3 = (2.33520497626869185443e-03, 6.05183413124413191178e-02, 5.27905102951428412248e-01,
       1.87295284992346725209e00, 2.56852019228982242072e00, 1.0)
_INV_SQRT_PI = 0.5641895835477563


def _polynomial(coefficients, x):
    """c0 + c1 x + c2 x^2 + ... by Horner's rule."""
    result = np.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def erf_numpy(x):
    """erf elementwise, vectorised (Cody's approximations; see module docstring)."""
    out_dtype = x.dtype if x.dtype.kind == "f" else np.float64
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    out = np.empty_like(x)

    small = ax <= 0.5
    xs = x[small]
    out[small] = xs * _polynomial(_P1, xs * xs) / _polynomial(_Q1, xs * xs)

    middle = (ax > 0.5) & (ax <= 4.0)
    am = ax[middle]
    erfc = np.exp(-am * am) * _polynomial(_P2, am) / _polynomial(_Q2, am)
    out[middle] = np.copysign(1.0 - erfc, x[middle])

    large = ax > 4.0                                   # erfc < 1.6e-8 here
    al = np.minimum(ax[large], 27.0)                   # beyond 27, erfc underflows to 0
    z = 1.0 / (al * al)
    erfc = np.exp(-al * al) / al * (_INV_SQRT_PI + z * _polynomial(_P3, z) / _polynomial(_Q3, z))
    out[large] = np.copysign(1.0 - erfc, x[large])

    nan = np.isnan(x)                                  # NaN fell in no range above
    out[nan] = np.nan
    return out.astype(out_dtype, copy=False)


# ---- entry points --------------------------------------------------------------------
def erf_loop(x):
    """erf elementwise with the loop kernel (compiled or, on the "python"
    backend, interpreted)."""
    out_dtype = x.dtype if x.dtype.kind == "f" else np.float64
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)   # (n,)
    out = np.empty_like(flat)
    kernel = interpreted(_erf_loop_flat) if current() == "python" else _erf_loop_flat
    kernel(flat, out)
    return out.reshape(x.shape).astype(out_dtype, copy=False)


def erf(x):
    """erf(x) on the current kernel backend ("numpy" uses the twin)."""
    return erf_numpy(x) if current() == "numpy" else erf_loop(x)
