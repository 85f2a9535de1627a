"""Dropout masks that need no storage: element `index` of a tensor is kept
when a 64-bit hash of (seed, index) passes a threshold.

Because the mask is a pure function of (seed, index), a backward pass
recomputes exactly the mask its forward pass drew, and the compiled loops,
the interpreted loops and the NumPy twin all draw the same one. The hash is
SplitMix64's finaliser (a well-mixing bijection of 64-bit integers) applied
to seed + index * golden ratio; its top 24 bits are compared with the
threshold, so an element is dropped with probability threshold / 2**24,
within 2**-25 of the requested p. uint64 arithmetic wraps around on purpose.
"""
import numpy as np
from numba import njit

# SplitMix64 finaliser constants (a well-mixing 64-bit hash of a counter)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)


def dropout_threshold(dropout_p):
    """Integer threshold t: an element is kept when its 24-bit hash is >= t,
    so it is dropped with probability t / 2**24 ~ dropout_p."""
    return np.uint64(int(round(dropout_p * (1 << 24))))


@njit(cache=True)
def dropout_keep(seed, index, threshold):
    """Keep element `index` (a flat index into the (BH, L, S) weights) under
    `seed`? Pure function of (seed, index), so backward recomputes the same
    mask without storing it. seed, index, threshold: uint64."""
    z = seed + index * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return (z >> _S40) >= threshold


def dropout_keep_numpy(seed, index, threshold):
    """`dropout_keep` on an array of uint64 indices (the NumPy twin's version)."""
    z = np.uint64(seed) + index * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return (z >> _S40) >= threshold
