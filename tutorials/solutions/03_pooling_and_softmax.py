"""Reference solutions of tutorial 03's checked exercises (`minidl check 03
--file tutorials/solutions/03_pooling_and_softmax.py` passes every check)."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


# ---- exercise 1 ---------------------------------------------------------------
def max_pool2d_backward(x, grad_out, k, s):
    grad_x = np.zeros_like(x)
    n_batch, channels, oh, ow = grad_out.shape
    for n in range(n_batch):
        for c in range(channels):
            for i in range(oh):
                for j in range(ow):
                    window = x[n, c, i * s:i * s + k, j * s:j * s + k]
                    di, dj = np.unravel_index(np.argmax(window), window.shape)   # first maximum
                    grad_x[n, c, i * s + di, j * s + dj] += grad_out[n, c, i, j]
    return grad_x


# ---- exercise 3 ---------------------------------------------------------------
def _window_sums(x, k, s, p):
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    return sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::s, ::s].sum(axis=(-2, -1))


def avg_pool2d_exclude_pad(x, k, s, p):
    return _window_sums(x, k, s, p) / _window_sums(np.ones_like(x), k, s, p)
