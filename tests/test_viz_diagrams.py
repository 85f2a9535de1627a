"""The diagrams drawn by code: im2col's layout is the one a convolution really
uses (checked against F.conv2d with one-hot filters), and both diagrams draw."""
import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F
from minidl import viz


@pytest.mark.parametrize("height, width, kernel, stride, padding, dilation",
                         [(4, 4, 3, 1, 1, 1), (5, 6, 3, 2, 0, 1), (7, 5, 2, 1, 2, 2), (6, 6, 3, 2, 1, 2)])
def test_im2col_layout_rows_are_convolutions_with_one_hot_filters(height, width, kernel, stride, padding,
                                                                  dilation):
    layout = viz.im2col_layout(height, width, kernel, stride, padding, dilation)
    numbers = mdl.tensor(np.arange(1, height * width + 1, dtype=np.float64).reshape(1, 1, height, width))
    for i in range(kernel):
        for j in range(kernel):
            tap = np.zeros((1, 1, kernel, kernel))
            tap[0, 0, i, j] = 1.0                                   # reads tap (i, j) of every window
            out = F.conv2d(numbers, mdl.tensor(tap), stride=stride, padding=padding, dilation=dilation)
            np.testing.assert_array_equal(layout[i * kernel + j], out.data.reshape(-1))


def test_im2col_layout_rejects_a_window_that_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        viz.im2col_layout(2, 2, kernel=3)


def test_the_diagrams_are_drawn(tmp_path):
    for path in (viz.plot_im2col(tmp_path / "im2col.png", highlight=5),
                 viz.plot_attention_shapes(tmp_path / "attention.png", L=3, S=5, E=4, Ev=2)):
        assert path.stat().st_size > 5000
