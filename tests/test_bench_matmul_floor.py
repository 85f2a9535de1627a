"""The conv suite's "matmuls only" rows run the products the channels-last
kernels run: the right products, over every chunk of every block, and only
for the shapes that take that path."""
import numpy as np
import pytest

from minidl.bench import conv, matmul_floor
from minidl.kernels import conv_fast


def _last_chunks(n, blocks, most):
    """[(block, samples in its last chunk)] as the kernels split n samples:
    each block's samples in the fewest chunks of at most `most`, sizes as even
    as they can be (chunk j starts at j*size//count within the block)."""
    found = []
    for b in range(blocks):
        size = (b + 1) * n // blocks - b * n // blocks       # the block's samples
        count = -(-size // most)
        found.append((b, size - (count - 1) * size // count))
    return found


@pytest.mark.parametrize("n", [7, 8, 1])
def test_each_product_is_the_kernels_matrix_product(monkeypatch, n):
    per, k, c_out = 200, 32, 24
    monkeypatch.setattr(conv_fast, "CHUNK_COLUMNS", 2 * per)          # two samples per chunk
    for name in matmul_floor.PRODUCTS:
        run = matmul_floor.matmuls_only(n, per, k, c_out, (name,), dtype=np.float64)
        buffers = run.buffers
        blocks = buffers["cols_t"].shape[0]
        cols_before = buffers["cols_t"].copy()
        result, dw, cols_t = run()
        assert buffers["chunk"] == min(2, -(-n // blocks))
        for b, last in _last_chunks(n, blocks, 2):
            rows = last * per                                         # the block's last chunk
            source = buffers["gy_full"] if last == buffers["chunk"] else buffers["gy_rest"]
            gy = source[b, :c_out * rows].reshape(c_out, rows)        # (Cout, m*P)
            cols = cols_before[b, :rows]                              # (m*P, K)
            if name == "forward":
                np.testing.assert_allclose(result[b, :rows], cols @ buffers["w_cl"].T, rtol=1e-12)
            elif name == "weight_grad":
                np.testing.assert_allclose(dw[b], gy @ cols, rtol=1e-12)
            else:
                np.testing.assert_allclose(cols_t[b, :rows], gy.T @ buffers["w_cl"], rtol=1e-12)


def test_unknown_product_is_refused():
    with pytest.raises(ValueError, match="matmuls_only: unknown products"):
        matmul_floor.matmuls_only(4, 49, 16, 8, ("forward", "dx"))


def test_conv_suite_adds_the_rows_for_the_channels_last_shapes_only():
    # conv_transpose2d from 7x7 (im2col, channels last): its forward is the conv2d's input gradient
    assert conv._products("conv_transpose2d", 64, 128, 64, 7, 7, 4, 2, 1, 0) == (49, 64 * 16, 128, ("input_grad",))
    # strided conv2d: P = 8x8 output pixels, K = 64 channels x 9 taps
    assert conv._products("conv2d", 16, 64, 128, 16, 16, 3, 2, 1, 0) == (64, 64 * 9, 128, ("forward",))
    # stride 1, a narrow output with many channels (the Keras CNN's 5x5 -> 3x3 layer): channels last
    assert conv._products("conv2d", 32, 64, 64, 5, 5, 3, 1, 0, 0) == (9, 64 * 9, 64, ("forward",))
    assert conv._products("conv2d", 64, 32, 64, 14, 14, 3, 1, 1, 0) is None         # Winograd
    assert conv._products("conv_transpose2d", 64, 128, 64, 8, 8, 4, 2, 1, 0) is None  # sub-pixel path
    assert conv._products("conv2d", 16, 3, 64, 32, 32, 3, 2, 1, 0) is None           # 3 channels: strided columns
    with_rows = {(c.op, c.shape) for c in conv.cases() if "matmuls only fwd+bwd" in c.implementations}
    assert with_rows == {("conv2d", "N16 64->128 16x16 k3 s2 p1"),
                         ("conv_transpose2d", "N64 128->64 7x7->14x14 k4 s2 p1")}
