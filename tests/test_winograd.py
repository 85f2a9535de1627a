"""Winograd F(2x2, 3x3) (minidl/kernels/winograd.py) computes conv2d, its
input gradient, weight gradient and bias gradient equal to the readable loops
of minidl/kernels/conv.py (im2col/col2im, run interpreted by the "python"
backend), up to rounding: float32 and float64, any padding, odd sizes whose
last tiles hang over the output, inputs smaller than one tile, several
blocks and chunks of samples, non-contiguous inputs. And the "numba" backend
really runs it on the shapes it is meant for.

Tolerances are relative to the magnitude of what is summed (the same
convolution of |x| and |w|, or of |grad| and |w| or |x|): the transforms add
and subtract up to 16 values before and after the products, so Winograd's
rounding error is a few times a direct convolution's, and bounded by a small
multiple of the unit roundoff times that magnitude.
"""
import contextlib
import os

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl as mdl
from minidl import kernels
from minidl.kernels import conv as conv_kernels
from minidl.kernels import conv_fast, winograd
from minidl.ops.conv import conv2d

from conv_helpers import assert_close_in_magnitude, maybe_transposed, run
from kernel_calls import blas_threads_seen, counting_kernel_calls
from threaded_rerun import rerun_with_two_threads

THREADED_RUN = "MINIDL_TEST_WINOGRAD_THREADS"       # set in the two-thread rerun below


@contextlib.contextmanager
def split_into_chunks(chunk_tiles):
    """Every call with N >= 2 splits into min(N, threads) blocks, each into
    chunks of about `chunk_tiles` tiles (at least one sample)."""
    old = conv_fast.PARALLEL_MIN_WORK, winograd.CHUNK_TILES      # conv_fast.sample_blocks reads the first
    conv_fast.PARALLEL_MIN_WORK, winograd.CHUNK_TILES = 0, chunk_tiles
    try:
        yield
    finally:
        conv_fast.PARALLEL_MIN_WORK, winograd.CHUNK_TILES = old


def readable(grad_out, x, weight, padding, bias):
    """out, dx, dW, db from the readable loops (the "python" backend)."""
    geometry = ((1, 1), padding, (1, 1), 1)
    with kernels.use("python"):
        out = conv_kernels.conv2d_forward(x, weight, *geometry, bias=bias)
        dx, dw = conv_kernels.conv2d_backward(grad_out, x, weight, *geometry)
    return out, dx, dw, grad_out.sum(axis=(0, 2, 3))


def magnitudes(grad_out, x, weight, padding):
    """The same sums over absolute values: how large the summed terms are."""
    geometry = ((1, 1), padding, (1, 1), 1)
    with kernels.use("numpy"):
        out = conv_kernels.conv2d_forward(np.abs(x), np.abs(weight), *geometry)
        dx, dw = conv_kernels.conv2d_backward(np.abs(grad_out), np.abs(x), np.abs(weight), *geometry)
    return out, dx, dw, np.abs(grad_out).sum(axis=(0, 2, 3))


@st.composite
def winograd_cases(draw):
    """Sizes around the tile size: output sides from 1 (one tile, half used) up."""
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, 3 - 2 * padding[0]), 9))      # kernel fits: H + 2ph >= 3
    w = draw(st.integers(max(1, 3 - 2 * padding[1]), 9))
    return dict(n=draw(st.integers(1, 5)), c_in=draw(st.integers(1, 5)), c_out=draw(st.integers(1, 5)),
                h=h, w=w, padding=padding, dtype=draw(st.sampled_from([np.float32, np.float64])),
                non_contiguous=draw(st.booleans()), bias=draw(st.booleans()),
                chunk_tiles=draw(st.sampled_from([1, 7, 256])), seed=draw(st.integers(0, 2**16)))


def arrays(case):
    rng = np.random.default_rng(case["seed"])
    dtype, nc = case["dtype"], case["non_contiguous"]
    x = maybe_transposed(rng, (case["n"], case["c_in"], case["h"], case["w"]), dtype, nc)
    weight = maybe_transposed(rng, (case["c_out"], case["c_in"], 3, 3), dtype, nc)
    bias = rng.standard_normal(case["c_out"]).astype(dtype) if case["bias"] else None
    ho, wo = case["h"] + 2 * case["padding"][0] - 2, case["w"] + 2 * case["padding"][1] - 2
    grad_out = maybe_transposed(rng, (case["n"], case["c_out"], ho, wo), dtype, nc)
    return x, weight, bias, grad_out


@given(winograd_cases())
@settings(max_examples=40)
def test_winograd_kernels_equal_the_readable_loops(case):
    x, weight, bias, grad_out = arrays(case)
    padding, dtype = case["padding"], case["dtype"]
    copies = [a.copy() for a in (x, weight, grad_out)]
    want = readable(grad_out, x, weight, padding, bias)
    sizes = magnitudes(grad_out, x, weight, padding)
    if bias is not None:
        sizes = (sizes[0] + np.abs(bias).reshape(1, -1, 1, 1),) + sizes[1:]
    cx, cw, cg = (np.ascontiguousarray(a) for a in (x, weight, grad_out))   # the entry points' contract
    with split_into_chunks(case["chunk_tiles"]):
        out = winograd.conv2d_forward(cx, cw, padding, bias=bias)
        dx, dw, db = winograd.conv2d_backward(cg, cx, cw, padding, x.shape, True, True, need_bias=True)
        dx_only, none_w = winograd.conv2d_backward(cg, None, cw, padding, x.shape, True, False)
        none_x, dw_only = winograd.conv2d_backward(cg, cx, cw, padding, x.shape, False, True)
    for name, got, expected, size in zip(("out", "dx", "dw", "db"), (out, dx, dw, db), want, sizes):
        assert_close_in_magnitude(name, got, expected, size, dtype)
    assert none_w is None and none_x is None
    np.testing.assert_array_equal(dx_only, dx)          # the same sums whichever gradients are asked for
    np.testing.assert_array_equal(dw_only, dw)
    for original, copy in zip((x, weight, grad_out), copies):
        np.testing.assert_array_equal(original, copy)     # nothing written to the inputs


def test_the_transform_matrices_compute_two_outputs_of_a_3_tap_correlation():
    """y = A^T [(G g) * (B^T d)] on hand-picked numbers: y0 = d0 g0 + d1 g1 + d2 g2,
    y1 = d1 g0 + d2 g1 + d3 g2."""
    d = np.array([1.0, 2.0, -3.0, 5.0])
    g = np.array([2.0, -1.0, 4.0])
    y = winograd.A_T @ ((winograd.G @ g) * (winograd.B_T @ d))
    np.testing.assert_array_equal(y, [1 * 2 + 2 * -1 + -3 * 4, 2 * 2 + -3 * -1 + 5 * 4])


# ---- the public op: Winograd is what runs on the shapes it is gated to ----------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h, w, padding", [(8, 8, 1), (11, 10, 0), (9, 13, 2)])
def test_the_public_op_runs_winograd_on_a_gated_shape_and_equals_the_readable_loops(h, w, padding, dtype):
    rng = np.random.default_rng(11)
    c_in, c_out = winograd.MIN_CHANNELS, winograd.MIN_CHANNELS + 3
    x = maybe_transposed(rng, (3, c_in, h, w), dtype, non_contiguous=True)
    weight = rng.standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    options = dict(stride=1, padding=padding)
    assert winograd.applies(x.shape, weight.shape, (1, 1), (padding, padding), (1, 1), 1,
                            (h + 2 * padding - 2, w + 2 * padding - 2))
    with counting_kernel_calls(winograd) as calls:
        fast = run("conv2d", "numba", x, weight, bias, options)
    assert calls == {"forward": 1, "backward": 1}
    slow = run("conv2d", "python", x, weight, bias, options)
    upstream = np.random.default_rng(1).standard_normal(fast[0].shape)       # run()'s upstream gradient
    pad = (padding, padding)
    sizes = magnitudes(upstream, x, weight, pad)
    sizes = (sizes[0] + np.abs(bias).reshape(1, -1, 1, 1),) + sizes[1:]
    for name, got, want, size in zip(("out", "dx", "dw", "db"), fast, slow, sizes):
        assert_close_in_magnitude(name, got, want, size, dtype)


def test_weight_transforms_run_single_threaded_blas_while_the_pool_works():
    """The filter transform and its adjoint are BLAS products too: they run inside
    the single-threaded-BLAS block, as the kernel's own products do. The count
    comes back after."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)

    def forward_and_backward():
        out = winograd.conv2d_forward(x, weight, (1, 1))
        winograd.conv2d_backward(np.ones_like(out), x, weight, (1, 1), x.shape, True, True)

    seen, after = blas_threads_seen(winograd, ("weight_transform", "weight_gradient"), forward_and_backward)
    assert seen == {"weight_transform": [1, 1], "weight_gradient": [1]}
    assert after == 2


def test_a_wrong_filter_transform_is_caught():
    """The comparison above is sharp enough to catch a transform matrix off by one entry."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 16, 8, 8))
    weight = rng.standard_normal((16, 16, 3, 3))
    want = conv_kernels.conv2d_forward_numpy(x, weight, (1, 1), (1, 1), (1, 1), 1)
    right = winograd.conv2d_forward(x, weight, (1, 1))
    np.testing.assert_allclose(right, want, rtol=1e-12, atol=1e-12)
    correct = winograd.G_G
    try:
        winograd.G_G = correct.copy()
        winograd.G_G[5, 4] *= 1.01                     # (G g G^T)[1, 1]: the centre tap's weight
        wrong = winograd.conv2d_forward(x, weight, (1, 1))
    finally:
        winograd.G_G = correct
    assert np.abs(wrong - want).max() > 1e-3


@pytest.mark.parametrize("shape, taken", [
    ((64, 32, 64, 14, 14, 1), True),              # the benchmark's N64 32->64 14x14 k3 p1
    ((32, 32, 64, 13, 13, 0), True),              # the cnn's second convolution (11x11 output)
    ((32, 64, 64, 5, 5, 0), False),               # the cnn's third: a 3x3 output
    ((64, 1, 32, 28, 28, 1), False),              # one input channel
    ((32, 3, 64, 32, 32, 1), False),              # three input channels
])
def test_winograd_is_taken_where_it_is_meant_to_be(shape, taken):
    n, c_in, c_out, h, w, p = shape
    assert winograd.applies((n, c_in, h, w), (c_out, c_in, 3, 3), (1, 1), (p, p), (1, 1), 1,
                            (h + 2 * p - 2, w + 2 * p - 2)) == taken


@pytest.mark.parametrize("stride, dilation, groups, kernel", [
    ((2, 2), (1, 1), 1, 3), ((1, 1), (2, 2), 1, 3), ((1, 1), (1, 1), 2, 3), ((1, 1), (1, 1), 1, 5),
])
def test_other_geometries_do_not_take_winograd(stride, dilation, groups, kernel):
    assert not winograd.applies((4, 32, 16, 16), (32, 32 // groups, kernel, kernel),
                                stride, (1, 1), dilation, groups, (16, 16))


@pytest.mark.parametrize("padding", [0, 1])
def test_gradcheck_through_the_public_op_with_winograd_taken(padding):
    rng = np.random.default_rng(4)
    c = winograd.MIN_CHANNELS
    x = mdl.Tensor(rng.standard_normal((2, c, 10, 11)), requires_grad=True)
    weight = mdl.Tensor(rng.standard_normal((c, c, 3, 3)) * 0.1, requires_grad=True)
    bias = mdl.Tensor(rng.standard_normal(c), requires_grad=True)
    with counting_kernel_calls(winograd) as calls:
        assert mdl.gradcheck(lambda a, b, c_: conv2d(a, b, c_, padding=padding), [x, weight, bias])
    assert calls["forward"] > 0 and calls["backward"] > 0


def test_threaded_process_runs_with_two_threads():
    if os.environ.get(THREADED_RUN):
        assert numba.get_num_threads() >= 2


def test_equal_with_two_threads_in_a_fresh_process():
    if os.environ.get(THREADED_RUN):
        return                                               # this IS the fresh process
    rerun_with_two_threads(__file__, THREADED_RUN, expected_passed=23)
