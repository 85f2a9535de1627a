"""Exercises 1 and 3 of tutorial 03 (pooling and softmax). Fill in the
functions that raise NotImplementedError, then run `minidl check 03` from the
folder that holds `exercises/` (or `minidl check 03 --file THIS_FILE`). NumPy only."""
import numpy as np


# ---- exercise 1 ---------------------------------------------------------------
def max_pool2d_backward(x, grad_out, k, s):
    """Gradient of max pooling (kernel k, stride s, no padding) with respect to
    x (N, C, H, W), given grad_out (N, C, OH, OW): each window's gradient goes to
    its first maximum in scan order; overlapping windows add up."""
    raise NotImplementedError("exercise 1: max_pool2d_backward")


# ---- exercise 3 ---------------------------------------------------------------
def avg_pool2d_exclude_pad(x, k, s, p):
    """Average pooling with zero padding p that divides each window's sum by the
    number of real (not padding) pixels in it: x (N, C, H, W) -> (N, C, OH, OW)."""
    raise NotImplementedError("exercise 3: avg_pool2d_exclude_pad")
