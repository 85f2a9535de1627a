"""Pooling geometry shared by max_pool2d and avg_pool2d (kernels in
`max_pool2d.py` and `avg_pool2d.py`; this file re-exports their entry points).

A 2-D pooling window of size (kH, kW) slides over each (H, W) plane of an
(N, C, H, W) input with stride (sH, sW), after `padding` (pH, pW) is added on
every side. Output row i, column j covers input rows and columns

    rows  i*sH - pH  ...  i*sH - pH + kH - 1
    cols  j*sW - pW  ...  j*sW - pW + kW - 1

of which only those inside [0, H) x [0, W) hold real values; the rest are
padding (-inf for max, 0 for avg). Output size (PyTorch's floor formula):

    OH = (H + 2 pH - kH) // sH + 1        OW = (W + 2 pW - kW) // sW + 1

With pH <= kH // 2 (PyTorch's rule, checked by the ops) every window holds at
least one real element, and no window reaches past the padded input.
"""
from .max_pool2d import max_pool2d_forward, max_pool2d_backward  # noqa: F401
from .avg_pool2d import avg_pool2d_forward, avg_pool2d_backward  # noqa: F401
from .pool_geometry import output_size  # noqa: F401
