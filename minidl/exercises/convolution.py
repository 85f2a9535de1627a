"""Checks for tutorial 02 (convolution): the seven loops with dilation, and
col2im as the adjoint of im2col."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .runner import Exercise


def _conv2d_loops_with_dilation(student):
    import minidl as mdl
    import minidl.functional as F

    rng = np.random.default_rng(21)
    for shape, weight_shape, stride, padding, dilation in (((1, 1, 7, 7), (1, 1, 3, 3), 1, 0, 2),
                                                           ((2, 2, 8, 9), (3, 2, 3, 3), 1, 2, 2),
                                                           ((1, 3, 9, 8), (2, 3, 2, 3), 2, 1, 3),
                                                           ((2, 1, 6, 6), (2, 1, 3, 3), 1, 1, 1)):
        x, w = rng.standard_normal(shape), rng.standard_normal(weight_shape)
        expected = F.conv2d(mdl.tensor(x), mdl.tensor(w), stride=stride, padding=padding, dilation=dilation).data
        got = np.asarray(student.conv2d_loops(x, w, stride=stride, padding=padding, dilation=dilation))
        assert got.shape == expected.shape, (f"x {shape}, w {weight_shape}, stride {stride}, padding {padding}, "
                                             f"dilation {dilation}: output shape {got.shape}, expected {expected.shape}")
        error = np.abs(got - expected).max()
        assert error < 1e-10, (f"x {shape}, w {weight_shape}, stride {stride}, padding {padding}, dilation "
                               f"{dilation}: largest difference from F.conv2d {error:.2e}")


def _im2col_reference(x, kh, kw, stride, padding):
    """(C*kh*kw, Ho*Wo) columns of one (C, H, W) image, in minidl's layout."""
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(padded, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]   # (C, Ho, Wo, kh, kw)
    c, ho, wo = windows.shape[:3]
    return windows.transpose(0, 3, 4, 1, 2).reshape(c * kh * kw, ho * wo)


def _col2im_is_the_adjoint(student):
    rng = np.random.default_rng(22)
    for shape, (kh, kw), stride, padding in (((1, 5, 5), (3, 3), 1, 1), ((2, 6, 7), (3, 2), 2, 0),
                                             ((3, 5, 6), (2, 2), 1, 2), ((1, 4, 4), (1, 1), 1, 0)):
        for _ in range(3):
            x = rng.standard_normal(shape)
            cols_x = _im2col_reference(x, kh, kw, stride, padding)
            y = rng.standard_normal(cols_x.shape)
            got = np.asarray(student.col2im(y.copy(), shape, (kh, kw), stride=stride, padding=padding))
            assert got.shape == shape, f"col2im should return the input's shape {shape}, got {got.shape}"
            left, right = np.sum(cols_x * y), np.sum(x * got)
            assert np.isclose(left, right, rtol=1e-10, atol=1e-10), (
                f"input {shape}, kernel {(kh, kw)}, stride {stride}, padding {padding}: <im2col(x), y> = {left:.6f} "
                f"but <x, col2im(y)> = {right:.6f}: some column entries are not added onto the pixel they were "
                "copied from")


EXERCISES = [
    Exercise(1, "conv2d_loops with dilation", _conv2d_loops_with_dilation,
             "the output size is (H + 2p - d (k - 1) - 1) // s + 1, and tap (i, j) reads "
             "x_pad[n, c, oy*s + i*d, ox*s + j*d]."),
    Exercise(2, "col2im, the adjoint of im2col", _col2im_is_the_adjoint,
             "start from zeros of the padded shape; for each tap (i, j) add the rows of that tap, reshaped to "
             "(C, Ho, Wo), onto padded[:, i:i + s*Ho:s, j:j + s*Wo:s]; then cut the padding off."),
]
