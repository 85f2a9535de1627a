"""The optimised convolution loops (minidl/kernels/conv_fast.py, the "numba"
backend) agree with the readable loops (im2col/col2im in minidl/kernels/conv.py,
run interpreted by the "python" backend): forward and every gradient of conv2d
and conv_transpose2d, float32 and float64, strided, dilated, grouped and
non-contiguous inputs, with the batch split over several threads.

Thread splitting is forced on these tiny shapes by lowering PARALLEL_MIN_WORK
to 0, so every call with N >= 2 runs min(N, threads) blocks of samples; and
CHUNK_COLUMNS is drawn small as well as large, so blocks split into chunks
of one, several, or all their samples, some of them one sample shorter. The
last test reruns this file in a fresh process with NUMBA_NUM_THREADS=2, so
that there are at least two threads even on a one-core machine.
"""
import contextlib
import os

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv_helpers import (TOLERANCE, conv2d_configs, conv_transpose2d_configs, make_arrays,
                          run)
from minidl.kernels import conv_fast

from threaded_rerun import rerun_with_bounds_check, rerun_with_two_threads

THREADED_RUN = "MINIDL_TEST_CONV_THREADS"        # set in the subprocess below
BOUNDS_RUN = "MINIDL_TEST_CONV_BOUNDSCHECK"      # set in the bounds-checked subprocess below


@contextlib.contextmanager
def split_over_threads(chunk_columns):
    old = conv_fast.PARALLEL_MIN_WORK, conv_fast.CHUNK_COLUMNS
    conv_fast.PARALLEL_MIN_WORK, conv_fast.CHUNK_COLUMNS = 0, chunk_columns
    try:
        yield
    finally:
        conv_fast.PARALLEL_MIN_WORK, conv_fast.CHUNK_COLUMNS = old


def options_of(cfg, transpose):
    names = ("stride", "padding", "dilation", "groups") + (("output_padding",) if transpose else ())
    return {name: cfg[name] for name in names}


def _check(cfg, op, chunk_columns):
    transpose = op == "conv_transpose2d"
    cfg = dict(cfg, n=2 * cfg["n"] + 1)                      # 3..7 samples: blocks of several to split in chunks
    x, weight, bias = make_arrays(cfg, transpose=transpose)
    readable = run(op, "python", x, weight, bias, options_of(cfg, transpose))
    with split_over_threads(chunk_columns):
        assert conv_fast.sample_blocks(cfg["n"], 1) == min(cfg["n"], numba.get_num_threads())
        fast = run(op, "numba", x, weight, bias, options_of(cfg, transpose))
    for name, a, b in zip(("out", "dx", "dw", "db"), fast, readable):
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype == cfg["dtype"], name
            np.testing.assert_allclose(a, b, err_msg=name, **TOLERANCE[cfg["dtype"]])


# columns per matrix product: 1 (one sample per chunk), a few samples, all of them
CHUNK_COLUMNS = st.sampled_from([1, 24, 100, 4096])


@given(st.integers(0, 40), st.integers(0, 40), st.integers(1, 60), st.integers(1, 600))
def test_chunk_plan_cuts_a_block_into_the_fewest_even_chunks(first, samples, per, chunk_columns):
    end = first + samples
    count, larger = conv_fast.chunk_plan(first, end, per, chunk_columns)
    smaller = conv_fast.smaller_chunk(first, end, count, larger)
    most = max(1, chunk_columns // per)                          # samples a chunk may hold
    assert count == -(-samples // most)                          # no fewer chunks could hold them
    if samples == 0:
        assert (count, larger, smaller) == (0, 0, 0)
        return
    starts = [conv_fast.chunk_start(first, end, count, j) for j in range(count + 1)]
    sizes = [b - a for a, b in zip(starts, starts[1:])]
    assert starts[0] == first and starts[-1] == end              # the chunks tile the block, in order
    assert min(sizes) >= 1 and max(sizes) == larger <= most      # none empty, none too large
    assert max(sizes) - min(sizes) <= 1                          # as even as they can be
    assert set(sizes) == ({larger, smaller} if smaller else {larger})
    # the example in chunk_plan's docstring: 32 samples, at most 10 a chunk
    assert conv_fast.chunk_plan(0, 32, 49, 490) == (4, 8)


@given(conv2d_configs(), CHUNK_COLUMNS)
@settings(max_examples=25)
def test_conv2d_fast_loops_equal_the_readable_loops(cfg, chunk_columns):
    _check(cfg, "conv2d", chunk_columns)


@given(conv_transpose2d_configs(), CHUNK_COLUMNS)
@settings(max_examples=25)
def test_conv_transpose2d_fast_loops_equal_the_readable_loops(cfg, chunk_columns):
    _check(cfg, "conv_transpose2d", chunk_columns)


def test_threaded_process_runs_with_two_threads():
    if os.environ.get(THREADED_RUN):
        assert numba.get_num_threads() >= 2


def test_equal_with_two_threads_in_a_fresh_process():
    if os.environ.get(THREADED_RUN) or os.environ.get(BOUNDS_RUN):
        return                                               # this IS the fresh process
    rerun_with_two_threads(__file__, THREADED_RUN, expected_passed=41)


# Geometries at the edges of the padded buffer's layout (rows Wp = max(W + pw, wo)
# long, a row's right padding being the next row's left padding, spare rows at
# the bottom): (op, h, w, (kh, kw), stride, padding, dilation, output_padding)
EDGE_GEOMETRIES = [
    ("conv2d", 5, 4, (1, 1), (1, 1), (2, 2), (1, 1), None),     # wo = W + 4 > W + pw: Wp = wo
    ("conv2d", 2, 1, (3, 3), (1, 1), (1, 3), (1, 3), None),     # window wider than W + pw: spare rows
    ("conv2d", 6, 7, (3, 3), (1, 2), (0, 1), (1, 1), None),     # stride 1 down, 2 across: strided columns
    ("conv2d", 9, 9, (3, 3), (1, 1), (1, 1), (1, 1), None),     # 3x3 padding 1: one junk column per row
    ("conv2d", 6, 5, (2, 3), (1, 1), (0, 0), (1, 1), None),     # no padding: Wp = W
    ("conv_transpose2d", 4, 3, (4, 4), (2, 2), (1, 1), (1, 1), (0, 0)),   # the generators' k4 s2 p1
]


@pytest.mark.parametrize("geometry", EDGE_GEOMETRIES, ids=lambda g: f"{g[0]}-{g[1]}x{g[2]}-k{g[3]}-s{g[4]}-p{g[5]}-d{g[6]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padded_buffer_edge_geometries(geometry, dtype):
    op, h, w, (kh, kw), stride, padding, dilation, output_padding = geometry
    cfg = dict(n=1, c_in=2, c_out=3, h=h, w=w, kh=kh, kw=kw, stride=stride, padding=padding,
               dilation=dilation, groups=1, bias=True, dtype=dtype, non_contiguous=True, seed=5)
    if output_padding is not None:
        cfg["output_padding"] = output_padding
    _check(cfg, op, chunk_columns=100)


# Stride 1 on either side of conv_fast.wide_columns' rule, 16 channels on the
# products' output side (conv2d's Cout, conv_transpose2d's Cin): (op, h, w, padding, wide)
STRIDE_ONE_LAYOUTS = [
    ("conv2d", 9, 9, 1, True),             # 3x3 padding 1: one junk column per 9 output columns, wide
    ("conv2d", 5, 5, 0, False),            # 3x3 no padding: two junk columns per 3, strided (offsets)
    ("conv_transpose2d", 9, 9, 1, True),   # its conv2d: 9x9 -> 9x9, padding 1, wide
    ("conv_transpose2d", 3, 3, 0, False),  # its conv2d: 5x5 -> 3x3, no padding, strided
]


@pytest.mark.parametrize("op, h, w, padding, wide", STRIDE_ONE_LAYOUTS)
def test_stride_one_takes_the_layout_the_rule_picks_and_equals_the_readable_loops(op, h, w, padding, wide):
    transpose = op == "conv_transpose2d"
    # the conv2d whose products the kernels run (conv_transpose2d's output is its input)
    conv_w = w + 2 - 2 * padding if transpose else w          # its input width
    conv_wo = conv_w + 2 * padding - 2                        # its output width
    assert conv_fast.wide_columns(1, 1, max(conv_w + padding, conv_wo), conv_wo, 16) == wide
    cfg = dict(n=1, c_in=16 if transpose else 2, c_out=2 if transpose else 16, h=h, w=w, kh=3, kw=3,
               stride=(1, 1), padding=(padding, padding), dilation=(1, 1), groups=1, bias=True,
               dtype=np.float64, non_contiguous=False, seed=7)
    if transpose:
        cfg["output_padding"] = (0, 0)
    _check(cfg, op, chunk_columns=100)


@pytest.mark.slow
def test_edge_geometries_stay_inside_their_buffers(tmp_path):
    """Compiled normally, Numba does not check indices: a read past a buffer
    returns whatever lies there, and the values above could still agree. So
    the edge geometries run again in a child process whose kernels are
    compiled with NUMBA_BOUNDSCHECK=1 (into their own cache): any index
    outside its array raises there."""
    if os.environ.get(THREADED_RUN) or os.environ.get(BOUNDS_RUN):
        return                                               # this IS a child process
    rerun_with_bounds_check(__file__, BOUNDS_RUN, "edge_geometries", tmp_path,
                            expected_passed=2 * len(EDGE_GEOMETRIES) + 1)


def test_an_output_larger_than_the_input_gives_is_refused_before_the_kernel():
    x = np.zeros((2, 1, 28, 28), np.float32)
    weight = np.zeros((4, 1, 3, 3), np.float32)
    grad = np.ones((2, 4, 28, 28), np.float32)           # stride 3 gives 10x10, not 28x28
    geometry = ((3, 3), (1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match=r"conv2d backward: output size \(28, 28\).*expected at most \(10, 10\)"):
        conv_fast.conv2d_backward(grad, x, weight, *geometry, x.shape, True, True)
    with pytest.raises(ValueError, match=r"conv2d: output size \(28, 28\)"):
        conv_fast.conv2d_forward(x, weight, *geometry, 28, 28)


@pytest.mark.parametrize("output_hw", [(10, 11), (11, 10)])
def test_an_output_one_too_large_on_one_side_is_refused(output_hw):
    """Each side is checked on its own: one row or one column too many would
    already read and write past the padded buffers."""
    x = np.zeros((2, 1, 28, 28), np.float32)
    weight = np.zeros((4, 1, 3, 3), np.float32)
    grad = np.ones((2, 4) + output_hw, np.float32)
    geometry = ((3, 3), (1, 1), (1, 1), 1)                # 10x10 is the largest
    with pytest.raises(ValueError, match=r"expected at most \(10, 10\)"):
        conv_fast.conv2d_forward(x, weight, *geometry, *output_hw)
    with pytest.raises(ValueError, match=r"expected at most \(10, 10\)"):
        conv_fast.conv2d_backward(grad, x, weight, *geometry, x.shape, True, True)


def test_never_more_sample_blocks_than_samples_nor_threads(monkeypatch):
    """One block for work too small to wake the pool; else one per thread, but
    never more blocks than samples (a block without samples would only wake a thread)."""
    big = 100 * conv_fast.PARALLEL_MIN_WORK
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)     # as in a process with two threads
    assert conv_fast.sample_blocks(5, conv_fast.PARALLEL_MIN_WORK - 1) == 1
    assert conv_fast.sample_blocks(64, conv_fast.PARALLEL_MIN_WORK) == 2
    assert conv_fast.sample_blocks(1, big) == 1
    assert conv_fast.sample_blocks(0, big) == 1


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("frozen", ["x", "weight", "bias", "x and weight"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradient_and_bias_with_some_inputs_frozen(op, frozen, dtype):
    """The fast loops add the bias and sum its gradient inside the convolution
    kernels; whichever inputs require a gradient, every gradient asked for
    equals the readable loops' (the bias gradient: upstream summed over N, H, W)."""
    from minidl import Tensor, kernels
    from minidl.ops.conv import conv2d, conv_transpose2d
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 7, 6)).astype(dtype)                       # (N, Cin, H, W)
    w_shape = (6, 2, 3, 3) if op == "conv2d" else (4, 3, 3, 3)               # groups=2
    weight, bias = rng.standard_normal(w_shape).astype(dtype), rng.standard_normal(6).astype(dtype)
    fn = conv2d if op == "conv2d" else conv_transpose2d
    results = {}
    for backend in ("python", "numba"):
        tensors = [Tensor(a, requires_grad=name not in frozen.split(" and "))
                   for a, name in zip((x, weight, bias), ("x", "weight", "bias"))]
        with kernels.use(backend), split_over_threads(24):
            out = fn(*tensors, stride=2, padding=1, groups=2)
            upstream = np.random.default_rng(4).standard_normal(out.shape).astype(dtype)
            out.backward(upstream)
        results[backend] = [out.data] + [t.grad for t in tensors]
    assert results["numba"][3] is None if frozen == "bias" else np.allclose(
        results["numba"][3], upstream.sum(axis=(0, 2, 3)), **TOLERANCE[dtype])
    for name, a, b in zip(("out", "dx", "dw", "db"), results["numba"], results["python"]):
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == dtype, name
            np.testing.assert_allclose(a, b, err_msg=name, **TOLERANCE[dtype])
