"""The sub-pixel Winograd conv_transpose2d (minidl/kernels/conv_transpose_sub_pixel.py)
computes the output, input gradient, weight gradient and bias gradient equal to
the readable loops of minidl/kernels/conv.py (im2col/col2im, run interpreted by
the "python" backend), up to rounding: float32 and float64, output_padding 0
and 1, odd sizes whose last tiles hang over the output, inputs smaller than one
tile, several blocks and chunks of samples, non-contiguous inputs. The "numba"
backend really runs it on the shapes it is gated to, and only there; bad
arguments never reach it; the caller's arrays are never written.

Tolerances are relative to the magnitude of what is summed (the same
transposed convolution of |x| and |w|, or of |grad| and |w| or |x|).
"""
import contextlib
import os

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels
from minidl.kernels import conv as conv_kernels
from minidl.kernels import conv_fast
from minidl.kernels import conv_transpose_sub_pixel as sub_pixel

from conv_helpers import assert_close_in_magnitude, maybe_transposed, run
from kernel_calls import blas_threads_seen, counting_kernel_calls
from threaded_rerun import rerun_with_bounds_check, rerun_with_two_threads

THREADED_RUN = "MINIDL_TEST_SUB_PIXEL_THREADS"        # set in the two-thread rerun below
BOUNDS_RUN = "MINIDL_TEST_SUB_PIXEL_BOUNDSCHECK"      # set in the bounds-checked rerun below

GEOMETRY = ((2, 2), (1, 1))                            # stride, padding: the only ones this path takes


@contextlib.contextmanager
def split_into_chunks(chunk_tiles):
    """Every call with N >= 2 splits into min(N, threads) blocks, each into
    chunks of about `chunk_tiles` tiles (at least one sample)."""
    old = conv_fast.PARALLEL_MIN_WORK, sub_pixel.CHUNK_TILES      # conv_fast.sample_blocks reads the first
    conv_fast.PARALLEL_MIN_WORK, sub_pixel.CHUNK_TILES = 0, chunk_tiles
    try:
        yield
    finally:
        conv_fast.PARALLEL_MIN_WORK, sub_pixel.CHUNK_TILES = old


@contextlib.contextmanager
def gate_open_to_every_size():
    """The gate admits any channel count and size (its geometry rules stay)."""
    old = sub_pixel.MIN_CHANNELS, sub_pixel.MIN_INPUT_PIXELS, sub_pixel.MIN_USED
    sub_pixel.MIN_CHANNELS, sub_pixel.MIN_INPUT_PIXELS, sub_pixel.MIN_USED = 1, 1, 0.0
    try:
        yield
    finally:
        sub_pixel.MIN_CHANNELS, sub_pixel.MIN_INPUT_PIXELS, sub_pixel.MIN_USED = old


def readable(grad_out, x, weight, output_padding, bias):
    """out, dx, dW, db from the readable loops (the "python" backend)."""
    with kernels.use("python"):
        out = conv_kernels.conv_transpose2d_forward(x, weight, *GEOMETRY, output_padding, (1, 1), 1, bias=bias)
        dx, dw = conv_kernels.conv_transpose2d_backward(grad_out, x, weight, *GEOMETRY, (1, 1), 1)
    return out, dx, dw, grad_out.sum(axis=(0, 2, 3))


def magnitudes(grad_out, x, weight, output_padding):
    """The same sums over absolute values: how large the summed terms are."""
    with kernels.use("numpy"):
        out = conv_kernels.conv_transpose2d_forward(np.abs(x), np.abs(weight), *GEOMETRY, output_padding,
                                                    (1, 1), 1)
        dx, dw = conv_kernels.conv_transpose2d_backward(np.abs(grad_out), np.abs(x), np.abs(weight),
                                                        *GEOMETRY, (1, 1), 1)
    return out, dx, dw, np.abs(grad_out).sum(axis=(0, 2, 3))


@st.composite
def sub_pixel_cases(draw):
    """Sizes around the tile size (a tile is 2x2 input pixels, 4x4 output pixels)."""
    return dict(n=draw(st.integers(1, 5)), c_in=draw(st.integers(1, 5)), c_out=draw(st.integers(1, 5)),
                h=draw(st.integers(1, 9)), w=draw(st.integers(1, 9)),
                output_padding=(draw(st.integers(0, 1)), draw(st.integers(0, 1))),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                non_contiguous=draw(st.booleans()), bias=draw(st.booleans()),
                chunk_tiles=draw(st.sampled_from([1, 7, 128])), seed=draw(st.integers(0, 2**16)))


def arrays(case):
    rng = np.random.default_rng(case["seed"])
    dtype, nc = case["dtype"], case["non_contiguous"]
    x = maybe_transposed(rng, (case["n"], case["c_in"], case["h"], case["w"]), dtype, nc)
    weight = maybe_transposed(rng, (case["c_in"], case["c_out"], 4, 4), dtype, nc)
    bias = rng.standard_normal(case["c_out"]).astype(dtype) if case["bias"] else None
    ho, wo = 2 * case["h"] + case["output_padding"][0], 2 * case["w"] + case["output_padding"][1]
    grad_out = maybe_transposed(rng, (case["n"], case["c_out"], ho, wo), dtype, nc)
    return x, weight, bias, grad_out


@given(sub_pixel_cases())
@settings(max_examples=40, deadline=None)
def test_sub_pixel_kernels_equal_the_readable_loops(case):
    x, weight, bias, grad_out = arrays(case)
    output_padding, dtype = case["output_padding"], case["dtype"]
    copies = [a.copy() for a in (x, weight, grad_out)]
    want = readable(grad_out, x, weight, output_padding, bias)
    sizes = magnitudes(grad_out, x, weight, output_padding)
    if bias is not None:
        sizes = (sizes[0] + np.abs(bias).reshape(1, -1, 1, 1),) + sizes[1:]
    cx, cw, cg = (np.ascontiguousarray(a) for a in (x, weight, grad_out))   # the entry points' contract
    with split_into_chunks(case["chunk_tiles"]):
        out = sub_pixel.conv_transpose2d_forward(cx, cw, output_padding, bias=bias)
        dx, dw, db = sub_pixel.conv_transpose2d_backward(cg, cx, cw, True, True, need_bias=True)
        dx_only, none_w = sub_pixel.conv_transpose2d_backward(cg, cx, cw, True, False)
        none_x, dw_only = sub_pixel.conv_transpose2d_backward(cg, cx, cw, False, True)
    for name, got, expected, size in zip(("out", "dx", "dw", "db"), (out, dx, dw, db), want, sizes):
        assert_close_in_magnitude(name, got, expected, size, dtype)
    assert none_w is None and none_x is None
    np.testing.assert_array_equal(dx_only, dx)          # the same sums whichever gradients are asked for
    np.testing.assert_array_equal(dw_only, dw)
    for original, copy in zip((x, weight, grad_out), copies):
        np.testing.assert_array_equal(original, copy)     # nothing written to the inputs


def test_the_transform_matrices_give_one_tile_of_a_stride_2_transposed_convolution():
    """Along one axis, a tile's four outputs (rows 4ty .. 4ty + 3) from its window
    d = x[2ty - 1 .. 2ty + 2] and the 4 taps w, on hand-picked numbers:
    out[4ty] = d0 w3 + d1 w1, out[4ty+1] = d1 w2 + d2 w0,
    out[4ty+2] = d1 w3 + d2 w1, out[4ty+3] = d2 w2 + d3 w0."""
    d = np.array([1.0, 2.0, -3.0, 5.0])
    w = np.array([2.0, -1.0, 4.0, 3.0])
    products = (sub_pixel.SLOT_FILTER @ w) * (sub_pixel.Z @ d)[sub_pixel.SLOT_DATA]   # the 6 multiplications
    y = sub_pixel.OUTPUT @ products
    np.testing.assert_array_equal(y, [1 * 3 + 2 * -1, 2 * 4 + -3 * 2, 2 * 3 + -3 * -1, -3 * 4 + 5 * 2])
    # the kernels' own one-axis helpers are these matrices
    np.testing.assert_array_equal(sub_pixel.data_1d(*d), sub_pixel.Z @ d)
    np.testing.assert_array_equal(sub_pixel.output_1d(*products), y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_input_pixel_scatters_the_kernel_by_hand(dtype):
    """A 2x2 input holding a single 1 scatters the 4x4 kernel onto the 4x4 output at
    (2*iy - 1, 2*ix - 1), cut by the output's edges: the hand-worked answer."""
    weight = np.arange(16, dtype=dtype).reshape(1, 1, 4, 4) + 1          # taps 1..16
    for iy, ix in [(0, 0), (1, 1), (0, 1)]:
        x = np.zeros((1, 1, 2, 2), dtype)
        x[0, 0, iy, ix] = 1.0
        want = np.zeros((4, 4), dtype)
        for i in range(4):
            for j in range(4):
                oy, ox = 2 * iy - 1 + i, 2 * ix - 1 + j                    # where tap (i, j) lands
                if 0 <= oy < 4 and 0 <= ox < 4:
                    want[oy, ox] = weight[0, 0, i, j]
        got = sub_pixel.conv_transpose2d_forward(x, weight, (0, 0))
        np.testing.assert_array_equal(got[0, 0], want)
    x = np.zeros((1, 1, 2, 2), dtype)
    x[0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(sub_pixel.conv_transpose2d_forward(x, weight, (0, 0))[0, 0, :3, :3],
                                  [[6, 7, 8], [10, 11, 12], [14, 15, 16]])   # w[1:, 1:] written out


# ---- the public op: this path is what runs on the shapes it is gated to -----------------
GATED = [  # (n, c_in, c_out, h, w, output_padding)
    (2, 32, 32, 8, 8, (0, 0)),
    (3, 32, 33, 8, 11, (0, 0)),        # odd width: a 16x22 output in 16x24 of whole tiles, 92% used
    (3, 33, 32, 9, 8, (1, 0)),         # odd height, output_padding: a 19x16 output in 20x16, 95% used
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", GATED, ids=lambda s: f"N{s[0]}-{s[1]}->{s[2]}-{s[3]}x{s[4]}-op{s[5][0]}{s[5][1]}")
def test_gated_shape_runs_sub_pixel_through_the_public_op_and_equals_the_readable_loops(shape, dtype):
    n, c_in, c_out, h, w, output_padding = shape
    rng = np.random.default_rng(11)
    x = maybe_transposed(rng, (n, c_in, h, w), dtype, non_contiguous=True)
    weight = rng.standard_normal((c_in, c_out, 4, 4)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    copies = [a.copy() for a in (x, weight, bias)]
    options = dict(stride=2, padding=1, output_padding=output_padding)
    assert sub_pixel.applies(x.shape, weight.shape, (2, 2), (1, 1), output_padding, (1, 1), 1)
    with counting_kernel_calls(sub_pixel) as calls:
        fast = run("conv_transpose2d", "numba", x, weight, bias, options)
    assert calls == {"forward": 1, "backward": 1}
    slow = run("conv_transpose2d", "python", x, weight, bias, options)
    upstream = np.random.default_rng(1).standard_normal(fast[0].shape)       # run()'s upstream gradient
    sizes = magnitudes(upstream, x, weight, output_padding)
    sizes = (sizes[0] + np.abs(bias).reshape(1, -1, 1, 1),) + sizes[1:]
    for name, got, want, size in zip(("out", "dx", "dw", "db"), fast, slow, sizes):
        assert_close_in_magnitude(name, got, want, size, dtype)
    for original, copy in zip((x, weight, bias), copies):
        np.testing.assert_array_equal(original, copy)


def test_weight_transforms_run_single_threaded_blas_while_the_pool_works():
    """The filter transform and its adjoint are BLAS products too: they run inside
    the single-threaded-BLAS block, so a BLAS pool left on two threads never
    wakes threads that would spin beside Numba's kernel. The count comes back after."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 32, 8, 8)).astype(np.float32)
    weight = rng.standard_normal((32, 32, 4, 4)).astype(np.float32)

    def forward_and_backward():
        out = sub_pixel.conv_transpose2d_forward(x, weight, (0, 0))
        sub_pixel.conv_transpose2d_backward(np.ones_like(out), x, weight, True, True)

    seen, after = blas_threads_seen(sub_pixel, ("weight_transform", "weight_gradient"), forward_and_backward)
    assert seen == {"weight_transform": [1, 1], "weight_gradient": [1]}
    assert after == 2


def test_a_wrong_filter_transform_is_caught():
    """The comparison is sharp enough to catch a transform matrix off in one entry."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 6, 6))
    weight = rng.standard_normal((4, 5, 4, 4))
    with kernels.use("numpy"):
        want = conv_kernels.conv_transpose2d_forward(x, weight, *GEOMETRY, (0, 0), (1, 1), 1)
    right = sub_pixel.conv_transpose2d_forward(x, weight, (0, 0))
    np.testing.assert_allclose(right, want, rtol=1e-12, atol=1e-12)
    correct = sub_pixel.FILTERS
    block = sub_pixel.BLOCK[1, 1]                        # slot pair (1, 1): (w3 + w1) x (w3 + w1)
    try:
        sub_pixel.FILTERS = correct.copy()
        sub_pixel.FILTERS[block, 4 * 1 + 1] *= 1.01      # its tap (1, 1)
        wrong = sub_pixel.conv_transpose2d_forward(x, weight, (0, 0))
    finally:
        sub_pixel.FILTERS = correct
    assert np.abs(wrong - want).max() > 1e-3


@pytest.mark.parametrize("shape, taken", [
    ((64, 128, 64, 8, 8, (0, 0)), True),       # 8x8 -> 16x16: whole tiles
    ((64, 128, 64, 14, 14, (0, 0)), True),
    ((32, 128, 64, 15, 15, (0, 0)), True),     # 30x30 of 32x32: 88% used
    ((64, 128, 64, 7, 7, (0, 0)), False),      # benchmarks/results/conv.md's row: 14x14 of 16x16, 77% used
    ((64, 64, 64, 9, 9, (0, 0)), False),       # 18x18 of 20x20: 81% used, below MIN_USED alone
    ((64, 64, 64, 13, 13, (0, 0)), True),      # 26x26 of 28x28: 86% used, just above it
    ((64, 64, 32, 7, 7, (0, 0)), False),       # the 28x28 DCGAN's first generator layer
    ((64, 64, 32, 2, 2, (0, 0)), False),       # the 8x8 DCGAN's first generator layer
    ((64, 32, 1, 14, 14, (0, 0)), False),      # a generator's last layer: one output channel
    ((64, 32, 16, 8, 8, (0, 0)), False),       # too few output channels
    ((16, 64, 32, 4, 4, (0, 0)), False),       # too few input pixels
])
def test_sub_pixel_is_taken_where_it_is_meant_to_be(shape, taken):
    n, c_in, c_out, h, w, output_padding = shape
    assert sub_pixel.applies((n, c_in, h, w), (c_in, c_out, 4, 4), (2, 2), (1, 1), output_padding,
                             (1, 1), 1) == taken


@pytest.mark.parametrize("kernel, stride, padding, output_padding, dilation, groups", [
    (3, 2, 1, (0, 0), 1, 1), (4, 1, 1, (0, 0), 1, 1), (4, 2, 0, (0, 0), 1, 1), (4, 2, 2, (0, 0), 1, 1),
    (4, 2, 1, (0, 0), 2, 1), (4, 2, 1, (0, 0), 1, 2),
])
def test_other_geometries_do_not_take_sub_pixel(kernel, stride, padding, output_padding, dilation, groups):
    assert not sub_pixel.applies((4, 64, 16, 16), (64, 64 // groups, kernel, kernel), (stride, stride),
                                 (padding, padding), output_padding, (dilation, dilation), groups)


@pytest.mark.parametrize("output_padding", [(0, 0), (1, 1)])
def test_gradcheck_through_the_public_op_with_sub_pixel_taken(output_padding):
    rng = np.random.default_rng(4)
    x = mdl.Tensor(rng.standard_normal((2, 3, 3, 4)), requires_grad=True)
    weight = mdl.Tensor(rng.standard_normal((3, 2, 4, 4)), requires_grad=True)
    bias = mdl.Tensor(rng.standard_normal(2), requires_grad=True)
    fn = lambda a, w, b: F.conv_transpose2d(a, w, b, stride=2, padding=1, output_padding=output_padding)  # noqa: E731
    with gate_open_to_every_size(), counting_kernel_calls(sub_pixel) as calls:
        assert mdl.gradcheck(fn, [x, weight, bias])
    assert calls["forward"] > 0 and calls["backward"] > 0


# ---- bad input never reaches the kernels ---------------------------------------------------
@pytest.fixture
def kernels_must_not_run(monkeypatch):
    def reached(*args):
        raise AssertionError("the sub-pixel kernel ran before the arguments were checked")
    monkeypatch.setattr(sub_pixel, "forward_kernel", reached)
    monkeypatch.setattr(sub_pixel, "backward_kernel", reached)


def t(*shape, dtype=np.float32):
    return mdl.tensor(np.ones(shape, dtype=dtype))


@pytest.mark.parametrize("x, weight, bias, output_padding, error, words", [
    (t(2, 32, 8), t(32, 32, 4, 4), None, 0, ValueError, ["conv_transpose2d", "(2, 32, 8)"]),
    (t(2, 31, 8, 8), t(32, 32, 4, 4), None, 0, ValueError, ["conv_transpose2d", "(2, 31, 8, 8)", "(32, 32, 4, 4)"]),
    (t(2, 32, 8, 8), t(32, 32, 4, 4), t(5), 0, ValueError, ["conv_transpose2d", "bias", "(5,)"]),
    (t(2, 32, 8, 8), t(32, 32, 4, 4), None, 2, ValueError, ["conv_transpose2d", "output_padding"]),
    (t(2, 32, 8, 8, dtype=np.float64), t(32, 32, 4, 4), None, 0, TypeError, ["conv_transpose2d", "float64"]),
    (t(2, 32, 8, 8, dtype=np.int32), t(32, 32, 4, 4, dtype=np.int32), None, 0, TypeError,
     ["conv_transpose2d", "int32"]),
])
def test_bad_arguments_on_a_gated_shape_raise_before_the_kernel(kernels_must_not_run, x, weight, bias,
                                                                output_padding, error, words):
    with pytest.raises(error) as raised:
        F.conv_transpose2d(x, weight, bias, stride=2, padding=1, output_padding=output_padding)
    for word in words:
        assert word in str(raised.value), (word, str(raised.value))


# ---- reruns in fresh processes ----------------------------------------------------------------
def test_threaded_process_runs_with_two_threads():
    if os.environ.get(THREADED_RUN):
        assert numba.get_num_threads() >= 2


def test_equal_with_two_threads_in_a_fresh_process():
    if os.environ.get(THREADED_RUN) or os.environ.get(BOUNDS_RUN):
        return                                               # this IS the fresh process
    rerun_with_two_threads(__file__, THREADED_RUN, expected_passed=39)


@pytest.mark.slow
def test_sub_pixel_kernels_stay_inside_their_buffers(tmp_path):
    """The hypothesis comparison again, in a child process whose kernels are compiled
    with NUMBA_BOUNDSCHECK=1 (into their own cache): any index outside its array raises."""
    if os.environ.get(THREADED_RUN) or os.environ.get(BOUNDS_RUN):
        return
    rerun_with_bounds_check(__file__, BOUNDS_RUN, "readable_loops", tmp_path, expected_passed=7)


