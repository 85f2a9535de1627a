"""A branch-free exp(x) that Numba can vectorise (SIMD) inside a loop.

Why: without a vector math library (Numba uses Intel's SVML only where it is
installed), `np.exp` inside an `@njit` loop is one scalar libm call per
element, and a row softmax or an attention tile spends most of its time
there. Written out as plain arithmetic, the compiler can run several lanes at
once. This is minidl's one fast exp: softmax uses it through
`exp_nonpositive_like` (below), the attention kernels through `fast_exp` and
`exp_like`.

How (range reduction):   exp(x) = 2**k * exp(r)
    k = round(x / ln 2)                   an integer
    r = x - k * ln 2                      |r| <= ln(2) / 2 ~ 0.347
    exp(r) ~ 1 + r + r**2/2! + ... + r**13/13!      (Taylor, Horner form)
    2**k                                  built from its IEEE-754 bits

- `ln 2` is split in a high part with trailing zero bits and a tiny low part
  (Cody and Waite), so `k * LN2_HI` is exact and r keeps full precision.
- The Taylor tail after degree 13 is below 0.347**14 / 14! ~ 4e-18, so the
  error is float64 rounding: max relative error ~3e-16 (a couple of
  ulp) over [-745, 709] (tests/test_softmax.py checks it against np.exp).
- 2**k is applied as two factors 2**(k//2) * 2**(k - k//2), so results down in
  the subnormal range (x down to -745) come out right instead of flushing.
- Domain: x < -746 (including -inf) gives 0.0; x > 709.78 gives inf; NaN gives NaN.

A float32 twin, `fast_exp32`, does the same in float32 arithmetic (8 SIMD
lanes instead of 4 with AVX2, and a degree-7 polynomial: the Taylor tail is
below 0.347**8 / 8! ~ 5e-9): max relative error 1.0e-7 (under one
float32 ulp) over [-87, 88] where the result is a normal float32; subnormal
results (x down to -103.9) within one subnormal step; x < -104 gives 0,
x > 88.72 gives inf, NaN gives NaN.

`exp_like(x)` picks the one matching x's dtype (a Numba overload; called from
plain Python it does the same), so a kernel written once serves both dtypes.

Softmax only ever takes exp of numbers <= 0 (logits minus their row max, or
log-probabilities), and there `exp_nonpositive_like(x)` saves about a
quarter of the work in float32: `fast_exp32_nonpositive` has no overflow
clamp and scales by 2**k in one factor, so results below the smallest normal
float32 (x < -87) come out 0 instead of subnormal (an absolute error below
1.7e-38). For float64 it is `fast_exp`.
"""
import numpy as np
from numba import njit, types
from numba.extending import overload

LOG2E = 1.4426950408889634             # 1 / ln 2
LN2_HI = 6.93147180369123816490e-01    # ln 2, upper bits (low 32 bits zero)
LN2_LO = 1.90821492927058770002e-10    # ln 2 - LN2_HI
X_MIN = -746.0                         # below: exp(x) rounds to 0 in float64
X_MAX = 710.0                          # above: exp(x) overflows to inf
# float32 versions: LN2_HI_32 = 355/512 has 9 significant bits, so k * LN2_HI_32
# is exact in float32 for |k| < 2**15
LOG2E_32 = np.float32(LOG2E)
LN2_HI_32 = np.float32(0.693359375)
LN2_LO_32 = np.float32(-2.12194440e-4)   # ln 2 - LN2_HI_32
X_MIN_32, X_MAX_32 = np.float32(-104.0), np.float32(89.0)


@njit(cache=True, inline="always")
def fast_exp(x):
    """exp(x) for a float64 scalar x; see the module docstring for accuracy."""
    is_nan = x != x
    # clamp so that k below stays a small integer (also maps -inf to X_MIN)
    t = min(max(x, X_MIN), X_MAX)
    k = np.floor(t * LOG2E + 0.5)                 # nearest integer to t / ln 2
    r = (t - k * LN2_HI) - k * LN2_LO             # t = k ln2 + r, |r| <= 0.347
    # exp(r) by Horner: 1 + r(1 + r/2(1 + r/3(1 + ...))) written as coefficients 1/j!
    p = 1.0 / 6227020800.0                        # 1/13!
    p = p * r + 1.0 / 479001600.0                 # 1/12!
    p = p * r + 1.0 / 39916800.0                  # 1/11!
    p = p * r + 1.0 / 3628800.0                   # 1/10!
    p = p * r + 1.0 / 362880.0                    # 1/9!
    p = p * r + 1.0 / 40320.0                     # 1/8!
    p = p * r + 1.0 / 5040.0                      # 1/7!
    p = p * r + 1.0 / 720.0                       # 1/6!
    p = p * r + 1.0 / 120.0                       # 1/5!
    p = p * r + 1.0 / 24.0                        # 1/4!
    p = p * r + 1.0 / 6.0                         # 1/3!
    p = p * r + 0.5                               # 1/2!
    p = p * r + 1.0
    p = p * r + 1.0                               # p ~ exp(r), in [0.70, 1.42]
    ki = np.int64(k)
    k1 = ki >> 1                                  # floor(k / 2)
    k2 = ki - k1                                  # k1 + k2 = k, both in [-539, 512]
    # a float64 2**j has exponent bits j + 1023 and an all-zero mantissa
    s1 = np.int64((k1 + 1023) << 52).view(np.float64)
    s2 = np.int64((k2 + 1023) << 52).view(np.float64)
    result = (p * s1) * s2
    return x if is_nan else result


@njit(cache=True, inline="always")
def fast_exp32(x):
    """exp(x) for a float32 scalar x, in float32 arithmetic (see the module docstring)."""
    is_nan = x != x
    t = min(max(x, X_MIN_32), X_MAX_32)
    k = np.floor(t * LOG2E_32 + np.float32(0.5))   # nearest integer to t / ln 2
    r = (t - k * LN2_HI_32) - k * LN2_LO_32       # |r| <= 0.347
    p = np.float32(1.0 / 5040.0)                  # 1/7!, then Horner down to 1/0!
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    ki = np.int32(k)
    k1 = ki >> 1
    k2 = ki - k1                                  # both in [-76, 64]: normal float32 powers
    # a float32 2**j has exponent bits j + 127 and an all-zero mantissa
    s1 = np.int32((k1 + 127) << 23).view(np.float32)
    s2 = np.int32((k2 + 127) << 23).view(np.float32)
    result = (p * s1) * s2
    return x if is_nan else result


X_FLUSH_32 = np.float32(-87.0)         # below: fast_exp32_nonpositive gives 0


@njit(cache=True, inline="always")
def fast_exp32_nonpositive(x):
    """exp(x) for a float32 scalar x <= 0: max relative error 1.0e-7 over
    [-87, 0]; 0 for x < -87 (including -inf); NaN gives NaN. Wrong for x > 0
    (the caller guarantees x <= 0)."""
    is_nan = x != x
    t = max(x, X_FLUSH_32)                        # keeps 2**k a normal float32 (k >= -126)
    k = np.floor(t * LOG2E_32 + np.float32(0.5))  # nearest integer to t / ln 2
    r = (t - k * LN2_HI_32) - k * LN2_LO_32       # |r| <= 0.347
    p = np.float32(1.0 / 5040.0)                  # the same degree-7 polynomial as fast_exp32
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    scale = np.int32((np.int32(k) + 127) << 23).view(np.float32)   # 2**k, k in [-126, 0]
    result = np.float32(0.0) if x < X_FLUSH_32 else p * scale
    return x if is_nan else result


def exp_nonpositive_like(x):
    """exp(x) for x <= 0 in x's own precision (float32 -> fast_exp32_nonpositive,
    else fast_exp)."""
    if isinstance(x, np.float32):
        return fast_exp32_nonpositive(x)
    return fast_exp(np.float64(x))


@overload(exp_nonpositive_like)
def _exp_nonpositive_like_numba(x):
    if x == types.float32:
        return lambda x: fast_exp32_nonpositive(x)
    return lambda x: fast_exp(np.float64(x))


def exp_like(x):
    """exp(x) in x's own precision (float32 -> fast_exp32, else fast_exp)."""
    if isinstance(x, np.float32):
        return fast_exp32(x)
    return fast_exp(np.float64(x))


@overload(exp_like)
def _exp_like_numba(x):
    if x == types.float32:
        return lambda x: fast_exp32(x)
    return lambda x: fast_exp(np.float64(x))


def cast_like(value, like):
    """`value` converted to the float type of the scalar `like` (float32 stays
    float32), so a kernel written once keeps float32 arithmetic 8 lanes wide."""
    return np.float32(value) if isinstance(like, np.float32) else np.float64(value)


@overload(cast_like)
def _cast_like_numba(value, like):
    if like == types.float32:
        return lambda value, like: np.float32(value)
    return lambda value, like: np.float64(value)


@njit(cache=True)
def fast_exp_array(x):
    """Elementwise exp_like over a 1-D float32 or float64 array (same dtype out);
    for tests and the tutorial."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = exp_like(x[i])
    return out


@njit(cache=True)
def fast_exp_nonpositive_array(x):
    """Elementwise exp_nonpositive_like over a 1-D float32 or float64 array of
    numbers <= 0 (same dtype out); for tests."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = exp_nonpositive_like(x[i])
    return out
