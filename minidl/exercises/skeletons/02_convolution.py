"""Exercises 1 and 2 of tutorial 02 (convolution). Fill in the functions that
raise NotImplementedError, then run `minidl check 02` from the folder that
holds `exercises/` (or `minidl check 02 --file THIS_FILE`). NumPy only."""
import numpy as np


# ---- exercise 1 ---------------------------------------------------------------
def conv2d_loops(x, w, stride=1, padding=0, dilation=1):
    """The seven loops of tutorial 02, with dilation: x (N, C, H, W), w (O, C, kH, kW)
    -> (N, O, Ho, Wo); tap (i, j) of output (oy, ox) reads x_pad[n, c, oy*s + i*d, ox*s + j*d]."""
    raise NotImplementedError("exercise 1: conv2d_loops with dilation")


# ---- exercise 2 ---------------------------------------------------------------
def col2im(cols, input_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col for one image of shape input_shape = (C, H, W):
    cols is (C*kH*kW, Ho*Wo), row (c*kH + i)*kW + j, column oy*Wo + ox, as in
    minidl's kernels. Returns a (C, H, W) array where every entry of cols has
    been added onto the pixel im2col copied it from (entries from padding are
    dropped)."""
    raise NotImplementedError("exercise 2: col2im")
