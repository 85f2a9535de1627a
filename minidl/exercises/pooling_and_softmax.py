"""Checks for tutorial 03 (pooling and softmax): max pooling's backward by
hand, and average pooling that leaves the padding out of the count."""
import numpy as np

from .runner import Exercise


def _max_pool_backward(student):
    import minidl as mdl
    import minidl.functional as F

    rng = np.random.default_rng(31)
    cases = [(rng.standard_normal((2, 3, 6, 6)), 2, 2),              # no overlap
             (rng.standard_normal((1, 2, 7, 7)), 3, 2),              # overlapping windows
             (rng.integers(0, 3, (2, 2, 6, 5)).astype(np.float64), 2, 1),   # many ties
             (np.ones((1, 1, 4, 4)), 2, 2)]                          # all ties
    for x, k, s in cases:
        xt = mdl.tensor(x, requires_grad=True)
        out = F.max_pool2d(xt, k, stride=s)
        grad_out = rng.standard_normal(out.shape)
        (out * mdl.tensor(grad_out)).sum().backward()
        got = np.asarray(student.max_pool2d_backward(x.copy(), grad_out.copy(), k, s))
        assert got.shape == x.shape, f"the gradient should have the input's shape {x.shape}, got {got.shape}"
        error = np.abs(got - xt.grad).max()
        assert error < 1e-12, (f"input {x.shape}, kernel {k}, stride {s}{' (with ties)' if len(np.unique(x)) < x.size else ''}: "
                               f"largest difference from F.max_pool2d's gradient {error:.2e}")


def _avg_pool_exclude_pad(student):
    import minidl as mdl
    import minidl.functional as F

    rng = np.random.default_rng(32)
    for shape, k, s, p in (((1, 1, 5, 5), 3, 1, 1), ((2, 3, 8, 7), 3, 2, 1), ((1, 2, 6, 6), 2, 2, 0),
                           ((1, 1, 7, 6), 4, 3, 2)):
        x = rng.standard_normal(shape)
        sums = F.avg_pool2d(mdl.tensor(x), k, stride=s, padding=p).data            # padding counted
        counts = F.avg_pool2d(mdl.tensor(np.ones(shape)), k, stride=s, padding=p).data
        expected = sums / counts                                                  # the k*k factors cancel
        got = np.asarray(student.avg_pool2d_exclude_pad(x.copy(), k, s, p))
        assert got.shape == expected.shape, f"input {shape}, k {k}, s {s}, p {p}: shape {got.shape}, expected {expected.shape}"
        error = np.abs(got - expected).max()
        assert error < 1e-12, (f"input {shape}, kernel {k}, stride {s}, padding {p}: largest difference {error:.2e} "
                               "(each window is divided by the number of real pixels in it)")


EXERCISES = [
    Exercise(1, "max_pool2d_backward by hand", _max_pool_backward,
             "for every output (n, c, i, j) find the first maximum of its window in scan order "
             "(np.argmax on the flattened window) and ADD grad_out[n, c, i, j] there: windows can overlap."),
    Exercise(3, "avg_pool2d with count_include_pad=False", _avg_pool_exclude_pad,
             "pad with zeros, sum each window, and divide by how many of its pixels lie inside the image "
             "(the same window sum over a padded array of ones)."),
]
