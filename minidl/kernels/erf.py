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

- branch-free scalars (`erf_branch_free`, `normal_cdf_branch_free`, @njit,
  inlined): the same three rational approximations, all evaluated for every x
  and the right one picked by comparisons, with the exp from fast_exp.py, in
  the argument's own precision (float32 arithmetic for float32: twice the SIMD
  lanes). A loop calling them has no branch and no libm call, so Numba
  compiles it to SIMD code (math.erf in a loop stays one scalar call per
  element). GELU's fast loops use the normal CDF (gelu_fast.py);
  tests/test_erf.py measures both against math.erf / math.erfc: float64
  within 1e-15 absolute over [-8, 8] (like the twin), float32 within a few
  float32 ulp.

- float32 normal CDF from one formula (`normal_cdf_float32`): what GELU's fast
  loops run for float32 (`normal_cdf_fast` picks it for float32 and the
  branch-free Cody CDF for float64). Float32 needs about 7 digits, not
  Cody's 19, so one expression covers every |x| instead of three ranges:
      erfc(z) = t exp(-z**2 + u Q(u)),   t = 1 / (1 + z / 2),  u = 1 - t = z t / 2,
  for z >= 0, with Q a polynomial of degree 10. As z runs over [0, inf), u runs
  over [0, 1) and log(erfc(z) / t) + z**2 stays smooth (it tends to
  log(1 / (2 sqrt(pi))) at z = inf and to 0 at z = 0, hence the factor u, which also keeps
  the exponent exact near z = 0). `fit_erfc_float32` fits Q in float64 (least
  squares on Chebyshev nodes in u, reweighted towards the largest errors until
  near minimax: max relative error 1e-8 in exact arithmetic, a sixth of a
  float32 ulp); tests/test_erf.py refits it and compares with the stored
  coefficients. It costs one division, one exp and 11 multiply-adds per
  element, against one division, one exp and about 50 multiply-adds for the
  three ranges; evaluated in float32 it stays within the same bound as the
  Cody version, 4 eps (1 + x**2) relative (tests/test_erf.py).
"""
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .backend import current, interpreted
from .fast_exp import cast_like, exp_like, fast_exp32_nonpositive


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
_SQRT_HALF = math.sqrt(0.5)


def _polynomial(coefficients, x):
    """c0 + c1 x + c2 x^2 + ... by Horner's rule."""
    result = np.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def _erf_small_and_erfc_numpy(x):
    """For float64 x: (small, value), small = |x| <= 0.5, value = erf(x) where
    small and erfc(|x|) elsewhere (NaN falls in no range and stays NaN)."""
    ax = np.abs(x)
    value = np.full_like(x, np.nan)

    small = ax <= 0.5
    xs = x[small]
    value[small] = xs * _polynomial(_P1, xs * xs) / _polynomial(_Q1, xs * xs)

    middle = (ax > 0.5) & (ax <= 4.0)
    am = ax[middle]
    value[middle] = np.exp(-am * am) * _polynomial(_P2, am) / _polynomial(_Q2, am)

    large = ax > 4.0                                   # erfc < 1.6e-8 here
    al = np.minimum(ax[large], 27.0)                   # beyond 27, erfc underflows to 0
    z = 1.0 / (al * al)
    erfc = np.exp(-al * al) / al * (_INV_SQRT_PI + z * _polynomial(_P3, z) / _polynomial(_Q3, z))
    value[large] = np.where(ax[large] > 27.0, 0.0, erfc)
    return small, value


def erf_numpy(x):
    """erf elementwise, vectorised (Cody's approximations; see module docstring)."""
    out_dtype = x.dtype if x.dtype.kind == "f" else np.float64
    x = np.asarray(x, dtype=np.float64)
    small, value = _erf_small_and_erfc_numpy(x)
    out = np.where(small, value, np.copysign(1.0 - value, x))   # erf = sign(x) (1 - erfc(|x|))
    return out.astype(out_dtype, copy=False)


def normal_cdf_numpy(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 elementwise in float64, vectorised; for
    x < 0 taken as erfc(|x| / sqrt 2) / 2 directly (no cancellation in 1 + erf)."""
    t = np.asarray(x, dtype=np.float64) * _SQRT_HALF
    small, value = _erf_small_and_erfc_numpy(t)
    with np.errstate(invalid="ignore"):
        return np.where(small, 0.5 + 0.5 * value, np.where(t > 0, 1.0 - 0.5 * value, 0.5 * value))


# ---- branch-free scalars (Numba inlines them; a loop over them vectorises) ---------------
def _cody_constants(float_type, x_max):
    """Cody's coefficients as one tuple of `float_type` numbers, so float32 code
    stays float32: ranges 1 and 2 padded with zeros to degree 8, range 3 in
    reverse order (see _erf_parts), then 1/2, 4, the clamp x_max (beyond it
    erfc underflows to 0 in that type), 1/sqrt(pi) and 1."""
    def pad(coefficients, reverse=False):
        values = list(reversed(coefficients)) if reverse else list(coefficients)
        return tuple(float_type(v) for v in values + [0.0] * (9 - len(values)))
    return (pad(_P1), pad(_Q1), pad(_P2), pad(_Q2), pad(_P3, True), pad(_Q3, True),
            tuple(float_type(v) for v in (0.5, 4.0, x_max, _INV_SQRT_PI, 1.0)))


_CODY64 = _cody_constants(np.float64, 27.0)     # erfc(27) ~ 5e-319: the last float64 subnormals
_CODY32 = _cody_constants(np.float32, 10.0)     # erfc(10) ~ 2e-45: below float32's smallest


def _cody_like(x):
    return _CODY32 if isinstance(x, np.float32) else _CODY64


@overload(_cody_like)
def _cody_like_numba(x):
    if x == types.float32:
        return lambda x: _CODY32
    return lambda x: _CODY64


# error_model="numpy": a division by zero gives inf/NaN instead of raising, so
# Numba adds no zero check (a branch) to the division; "contract" lets the
# compiler fuse each Horner step into one multiply-add (one rounding instead of two)
_SCALAR = dict(cache=True, inline="always", error_model="numpy", fastmath={"contract"})


@njit(**_SCALAR)
def _horner(c, x):
    """c[0] + c[1] x + ... + c[8] x^8 by Horner's rule (c: 9 coefficients)."""
    return ((((((((c[8] * x + c[7]) * x + c[6]) * x + c[5]) * x + c[4]) * x + c[3]) * x + c[2]) * x
             + c[1]) * x + c[0])


@njit(**_SCALAR)
def _erf_parts(ax):
    """For ax = |x| >= 0 (float32 or float64; computed in that type):
    (small, ratio, erfc) with small = ax <= 0.5, ratio = erf(ax) when small,
    and erfc = erfc(ax) when not small. Cody's three ranges, without branches:
    each range's numerator and denominator are computed on ax clamped into
    that range, comparisons pick the pair that applies, and ONE division
    follows (divisions are the slow part of a SIMD loop)."""
    p1, q1, p2, q2, p3, q3, k = _cody_like(ax)
    half, four, x_max, inv_sqrt_pi, one = k
    # range 1, ax <= 0.5: erf = ax P1(ax^2) / Q1(ax^2)
    a1 = min(ax, half)                                       # ax clamped into range 1
    s1 = a1 * a1
    n1, d1 = a1 * _horner(p1, s1), _horner(q1, s1)
    # range 2, 0.5 < ax <= 4: erfc = exp(-ax^2) P2(ax) / Q2(ax)
    a2 = min(max(ax, half), four)                            # ax clamped into range 2
    n2, d2 = _horner(p2, a2), _horner(q2, a2)
    # range 3, ax > 4: erfc = exp(-ax^2) / ax (1/sqrt(pi) + z P3(z) / Q3(z)), z = 1/ax^2.
    # With w = ax^2, z P3(z) / Q3(z) = P3'(w) / (w Q3'(w)), where P3', Q3' hold the
    # coefficients in reverse order (numerator and denominator times w^5), so no
    # 1/ax^2 is needed:  erfc = exp(-ax^2) (w Q3'(w) / sqrt(pi) + P3'(w)) / (ax w Q3'(w))
    a3 = min(max(ax, four), x_max)                           # ax clamped into range 3
    w = a3 * a3
    wq = w * _horner(q3, w)
    n3, d3 = inv_sqrt_pi * wq + _horner(p3, w), a3 * wq
    # pick the range's pair, divide once
    small, middle = ax <= half, ax <= four
    ratio = (n1 if small else (n2 if middle else n3)) / (d1 if small else (d2 if middle else d3))
    ae = min(ax, x_max)
    erfc = ratio * exp_like(-ae * ae)                        # ranges 2 and 3
    erfc = erfc if ax <= x_max else half - half              # 0 beyond x_max (in ax's type)
    return small, ratio, erfc


@njit(**_SCALAR)
def erf_branch_free(x):
    """erf(x) for a float64 or float32 scalar x, in x's precision (Cody's
    approximations, see the module docstring), without branches (_erf_parts).
    NaN gives NaN, +-inf gives +-1, erf(-0.0) = -0.0."""
    small, ratio, erfc = _erf_parts(abs(x))
    one = _cody_like(x)[6][4]
    result = ratio if small else one - erfc                  # erf(|x|)
    result = math.copysign(result, x)                        # erf is odd (and erf(-0.0) = -0.0)
    return x if x != x else result                           # NaN in, NaN out


@njit(**_SCALAR)
def normal_cdf_branch_free(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 for a float64 or float32 scalar x, in
    x's precision, without branches. For x < 0 it is erfc(|x| / sqrt 2) / 2,
    computed directly: no cancellation in 1 + erf, so the result keeps its
    relative precision far into the lower tail (down to x ~ -38 in float64,
    -14 in float32). NaN gives NaN; Phi(-inf) = 0, Phi(inf) = 1."""
    constants = _cody_like(x)[6]
    half, one = constants[0], constants[4]
    t = x * cast_like(_SQRT_HALF, x)                         # x / sqrt 2
    small, ratio, erfc = _erf_parts(abs(t))
    tail = half * erfc                                       # Phi(-|x|) for |t| > 0.5
    big = one - tail if t > 0 else tail                      # Phi(x) for |t| > 0.5
    result = half + half * math.copysign(ratio, t) if small else big
    return x if x != x else result                           # NaN in, NaN out


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


# ---- float32 normal CDF from one formula (see the module docstring) -------------------------
def fit_erfc_float32(terms=11, nodes=4000, rounds=60):
    """Q's coefficients (u, u**2, ... order: Q(u) = c[0] + c[1] u + ...) of
    erfc(z) = t exp(-z**2 + u Q(u)), t = 1 / (1 + z / 2), u = z t / 2, fitted in
    float64 on Chebyshev nodes of u in (0, 1) by least squares, reweighted
    `rounds` times in proportion to the square root of each node's error
    (Lawson's iteration: the weights move towards the minimax fit). Needs SciPy
    (erfcx = exp(z**2) erfc(z) keeps the target exact at large z)."""
    from scipy import special
    k = np.arange(nodes)
    u = 0.5 * (1.0 - np.cos(np.pi * (k + 0.5) / nodes))    # (nodes,) Chebyshev nodes in (0, 1)
    t = 1.0 - u
    z = 2.0 * u / t                                          # the z with t = 1 / (1 + z / 2)
    target = np.log(special.erfcx(z)) - np.log(t)           # log(erfc(z) / t) + z**2 = u Q(u)
    basis = u[:, None] ** np.arange(1, terms + 1)           # (nodes, terms): u, u**2, ...
    weight = np.ones(nodes)
    for _ in range(rounds):
        coefficients = np.linalg.lstsq(basis * weight[:, None], target * weight, rcond=None)[0]
        error = np.abs(basis @ coefficients - target)
        weight = weight * np.sqrt(error + 1e-300)
        weight /= weight.max()
    return coefficients


# fit_erfc_float32() rounded to float32 (tests/test_erf.py refits and compares)
_ERFC_Q32 = tuple(np.float32(c) for c in (
    -1.2567564230254968, -0.3033542537553543, 0.16391175356700988, 0.16729214890024272,
    0.2126947010909988, -0.6497993386213023, 1.3373749237789276, -2.1985238656122608,
    2.0228339160559274, -0.9319858350600918, 0.17080013930945664))
_HALF32, _ONE32, _ZERO32 = np.float32(0.5), np.float32(1.0), np.float32(0.0)
_SQRT_HALF32 = np.float32(_SQRT_HALF)
_Z_MAX32 = np.float32(10.0)                      # erfc(10) ~ 2e-45: below float32's smallest


@njit(**_SCALAR)
def normal_cdf_float32(x):
    """Phi(x) for a float32 scalar x, in float32 arithmetic, from one formula
    for every x (module docstring): erfc(|x| / sqrt 2) / 2 for x < 0, one minus
    it for x > 0, so small probabilities keep their relative precision.
    NaN gives NaN; Phi(-inf) = 0, Phi(inf) = 1."""
    c = _ERFC_Q32
    t_signed = x * _SQRT_HALF32                              # x / sqrt 2
    z = min(abs(t_signed), _Z_MAX32)                         # erfc's argument, clamped
    t = _ONE32 / (_ONE32 + _HALF32 * z)                      # in (0, 1]
    u = _HALF32 * z * t                                      # 1 - t without cancellation
    q = (((((((((c[10] * u + c[9]) * u + c[8]) * u + c[7]) * u + c[6]) * u + c[5]) * u + c[4]) * u
           + c[3]) * u + c[2]) * u + c[1]) * u + c[0]       # Q(u), Horner
    erfc = t * fast_exp32_nonpositive(u * q - z * z)         # erfc(z); u Q(u) - z^2 <= 0 (z^2 >= 0, Q < 0)
    erfc = erfc if abs(t_signed) <= _Z_MAX32 else _ZERO32    # 0 beyond the clamp
    tail = _HALF32 * erfc                                    # Phi(-|x|)
    result = _ONE32 - tail if t_signed > 0 else tail
    return x if x != x else result                           # NaN in, NaN out


def normal_cdf_fast(x):
    """Phi(x) in x's precision, the version GELU's fast loops run: float32 by
    `normal_cdf_float32`, float64 by `normal_cdf_branch_free` (Cody's ranges:
    float64 needs their precision). A Numba overload picks at compile time;
    called from plain Python it picks the same way."""
    if isinstance(x, np.float32):
        return normal_cdf_float32(x)
    return normal_cdf_branch_free(x)


@overload(normal_cdf_fast, inline="always")
def _normal_cdf_fast_numba(x):
    if x == types.float32:
        return lambda x: normal_cdf_float32(x)
    return lambda x: normal_cdf_branch_free(x)
