"""The channels-last columns (minidl/kernels/conv_channels_last.py), which the
"numba" backend runs for undilated convolutions with at least
CHANNELS_LAST_MIN_CHANNELS input channels per group that are strided, or of
stride 1 without wide columns (small outputs, many output channels), agree with the readable
loops (im2col/col2im in minidl/kernels/conv.py) for conv2d and
conv_transpose2d: forward and every gradient, float32 and float64, groups,
odd sizes, output_padding, non-contiguous inputs, samples split over threads
and chunks. Lowering the channel threshold to 1 lets hypothesis reach the
path with small, fast shapes; other tests keep the real threshold.
The last tests rerun this file with two threads and with bounds checks."""
import contextlib
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minidl as mdl
import minidl.functional as F
from conv_helpers import TOLERANCE, conv2d_configs, conv_transpose2d_configs, make_arrays, run
from kernel_calls import counting_kernel_calls
from minidl.kernels import conv as conv_kernels
from minidl.kernels import conv_channels_last, conv_fast
from minidl.kernels.geometry import conv_output_size, conv_transpose_output_size
from test_conv_fast import options_of, split_over_threads
from threaded_rerun import rerun_with_bounds_check, rerun_with_two_threads

THREADED_RUN = "MINIDL_TEST_CHANNELS_LAST_THREADS"
BOUNDS_RUN = "MINIDL_TEST_CHANNELS_LAST_BOUNDSCHECK"


@contextlib.contextmanager
def _setting(name, value):
    """conv_channels_last.<name> = value inside the block (hypothesis tests
    cannot take pytest's function-scoped monkeypatch)."""
    old = getattr(conv_channels_last, name)
    setattr(conv_channels_last, name, value)
    try:
        yield
    finally:
        setattr(conv_channels_last, name, old)


def channels_last_from(channels):
    return _setting("CHANNELS_LAST_MIN_CHANNELS", channels)


def keeping_any_columns():
    return _setting("KEEP_MAX_FACTOR", 10 ** 9)


def conv_geometry(cfg, transpose):
    """conv_fast.takes_channels_last's arguments for the conv2d the kernels run
    (for conv_transpose2d, the conv2d whose input is its output): input width,
    weight shape, stride, padding, dilation, groups, output width."""
    groups, (kh, kw), (sw, pw, dw) = cfg["groups"], (cfg["kh"], cfg["kw"]), \
        (cfg["stride"][1], cfg["padding"][1], cfg["dilation"][1])
    if transpose:              # conv input: the transposed output; conv output: x
        weight_shape = (cfg["c_in"], cfg["c_out"] // groups, kh, kw)
        input_width = conv_transpose_output_size(cfg["w"], kw, sw, pw, cfg["output_padding"][1], dw)
        output_width = cfg["w"]
    else:
        weight_shape = (cfg["c_out"], cfg["c_in"] // groups, kh, kw)
        input_width, output_width = cfg["w"], conv_output_size(cfg["w"], kw, sw, pw, dw)
    return input_width, weight_shape, cfg["stride"], cfg["padding"], cfg["dilation"], groups, output_width


def check_against_readable_loops(cfg, op, chunk_columns, expect_channels_last=True):
    transpose = op == "conv_transpose2d"
    x, weight, bias = make_arrays(cfg, transpose=transpose)
    inputs = [a.copy() for a in (x, weight) + ((bias,) if bias is not None else ())]
    readable = run(op, "python", x, weight, bias, options_of(cfg, transpose))
    assert conv_fast.takes_channels_last(*conv_geometry(cfg, transpose)) == expect_channels_last
    with split_over_threads(chunk_columns), counting_kernel_calls(conv_channels_last) as calls:
        fast = run(op, "numba", x, weight, bias, options_of(cfg, transpose))
    taken = {"forward": 1, "backward": 1} if expect_channels_last else {"forward": 0, "backward": 0}
    assert calls == taken, calls                                      # forward and backward took the path, or neither
    for name, a, b in zip(("out", "dx", "dw", "db"), fast, readable):
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype == cfg["dtype"], name
            np.testing.assert_allclose(a, b, err_msg=name, **TOLERANCE[cfg["dtype"]])
    for before, after in zip(inputs, (x, weight, bias)):                # the caller's arrays untouched
        np.testing.assert_array_equal(before, after)


CHUNK_COLUMNS = st.sampled_from([1, 24, 100, 4096])


@given(conv2d_configs(), CHUNK_COLUMNS)
@settings(max_examples=30, deadline=None)
def test_strided_conv2d_through_channels_last_columns_equals_the_readable_loops(cfg, chunk_columns):
    assume(max(cfg["stride"]) > 1)
    cfg = dict(cfg, n=2 * cfg["n"] + 1, dilation=(1, 1))               # 3..7 samples to split
    with channels_last_from(1):
        check_against_readable_loops(cfg, "conv2d", chunk_columns)


@given(conv_transpose2d_configs(), CHUNK_COLUMNS)
@settings(max_examples=30, deadline=None)
def test_strided_conv_transpose2d_through_channels_last_columns_equals_the_readable_loops(cfg, chunk_columns):
    assume(max(cfg["stride"]) > 1)
    output_padding = tuple(min(op, s - 1) for op, s in zip(cfg["output_padding"], cfg["stride"]))
    cfg = dict(cfg, n=2 * cfg["n"] + 1, dilation=(1, 1), output_padding=output_padding)
    for size, k, s, p, op in zip((cfg["h"], cfg["w"]), (cfg["kh"], cfg["kw"]), cfg["stride"],
                                 cfg["padding"], output_padding):
        assume((size - 1) * s - 2 * p + k + op >= 1)                     # undilated output size
    with channels_last_from(1):
        check_against_readable_loops(cfg, "conv_transpose2d", chunk_columns)


@st.composite
def stride_one_configs(draw, transpose):
    """A stride-1 conv2d (or conv_transpose2d) whose conv2d conv_fast.py would
    not build wide columns for: each output row would carry junk = kw - 1 - pw
    >= 1 columns, and there are more than 8*wo / junk output channels per group
    (wo: the conv2d's output width; for conv_transpose2d, its input width)."""
    groups = draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 2))
    junk = kw - 1 - pw
    narrow_side = draw(st.integers(max(1, 2 * pw - kw + 2), 3))  # conv2d's output width (>= 1 input column)
    tall_side = draw(st.integers(max(1, 2 * ph - kh + 2), 4))
    per_group = draw(st.integers(8 * narrow_side // junk + 1, 8 * narrow_side // junk + 4))
    cfg = dict(n=draw(st.integers(3, 7)), h=tall_side, stride=(1, 1), padding=(ph, pw), dilation=(1, 1),
               groups=groups, kh=kh, kw=kw, bias=draw(st.booleans()),
               dtype=draw(st.sampled_from([np.float32, np.float64])), non_contiguous=draw(st.booleans()),
               seed=draw(st.integers(0, 2**16)))
    other = groups * draw(st.integers(1, 2))                      # channels on the other side
    if transpose:              # its input is the conv2d's output: width narrow_side, per_group channels
        return dict(cfg, w=narrow_side, c_in=groups * per_group, c_out=other, output_padding=(0, 0))
    width = narrow_side - 1 + kw - 2 * pw                         # the input width giving that output
    return dict(cfg, h=tall_side - 1 + kh - 2 * ph, w=width, c_in=other, c_out=groups * per_group)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
@given(data=st.data(), chunk_columns=CHUNK_COLUMNS)
@settings(max_examples=30, deadline=None)
def test_stride_one_without_wide_columns_takes_channels_last_and_equals_the_readable_loops(op, data, chunk_columns):
    cfg = data.draw(stride_one_configs(transpose=op == "conv_transpose2d"))
    with channels_last_from(1):
        check_against_readable_loops(cfg, op, chunk_columns)


# Shapes at the real threshold, as the GAN layers use them, with odd sizes:
# (op, n, c_in, c_out, h, w, k, stride, padding, output_padding, groups)
GATED_SHAPES = [
    ("conv2d", 3, 16, 8, 7, 9, (4, 4), (2, 2), (1, 1), None, 1),            # discriminator's k4 s2 p1
    ("conv2d", 2, 8, 5, 8, 5, (3, 3), (2, 2), (1, 1), None, 1),             # k3 s2 p1
    ("conv2d", 2, 16, 6, 6, 7, (3, 2), (3, 1), (0, 1), None, 2),            # 8 per group, stride across rows only
    ("conv_transpose2d", 3, 6, 16, 3, 4, (4, 4), (2, 2), (1, 1), (0, 0), 1),   # generator's k4 s2 p1
    ("conv_transpose2d", 2, 5, 8, 4, 3, (3, 3), (2, 2), (1, 1), (1, 1), 1),    # output_padding 1
    ("conv_transpose2d", 2, 4, 16, 3, 3, (4, 3), (2, 3), (2, 0), (1, 2), 2),   # groups, uneven strides
    ("conv2d", 3, 64, 64, 5, 5, (3, 3), (1, 1), (0, 0), None, 1),           # a CNN's last 3x3: stride 1, not wide
    ("conv2d", 2, 16, 48, 4, 5, (3, 3), (1, 1), (1, 1), None, 1),           # stride 1, padded: columns 9x, not kept
    ("conv2d", 2, 16, 64, 4, 3, (2, 3), (1, 1), (0, 1), None, 2),           # stride 1, groups
    ("conv_transpose2d", 2, 40, 8, 3, 4, (3, 3), (1, 1), (1, 1), (0, 0), 1),   # stride 1, padded
]


@pytest.mark.parametrize("shape", GATED_SHAPES, ids=lambda s: f"{s[0]}-{s[1]}x{s[2]}->{s[3]}-{s[4]}x{s[5]}-k{s[6]}-s{s[7]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("non_contiguous", [False, True])
def test_edge_gated_shapes_take_channels_last_columns_and_equal_the_readable_loops(shape, dtype, non_contiguous):
    op, n, c_in, c_out, h, w, k, stride, padding, output_padding, groups = shape
    cfg = dict(n=n, c_in=c_in, c_out=c_out, h=h, w=w, kh=k[0], kw=k[1], stride=stride, padding=padding,
               dilation=(1, 1), groups=groups, bias=True, dtype=dtype, non_contiguous=non_contiguous, seed=11)
    if output_padding is not None:
        cfg["output_padding"] = output_padding
    check_against_readable_loops(cfg, op, chunk_columns=40)


@pytest.mark.parametrize("op, stride, dilation, channels", [
    ("conv2d", (1, 1), (1, 1), 16),          # stride 1: conv_fast's columns (wide or strided)
    ("conv2d", (2, 2), (2, 2), 16),          # dilated
    ("conv2d", (2, 2), (1, 1), 4),           # too few channels per group
    ("conv_transpose2d", (2, 2), (1, 1), 1),  # a generator's last layer: one output channel
])
def test_other_geometries_keep_the_strided_columns(op, stride, dilation, channels):
    transpose = op == "conv_transpose2d"
    cfg = dict(n=2, c_in=5 if transpose else channels, c_out=channels if transpose else 5, h=6, w=5, kh=3,
               kw=3, stride=stride, padding=(1, 1), dilation=dilation, groups=1, bias=True,
               dtype=np.float64, non_contiguous=False, seed=2)
    if transpose:
        cfg["output_padding"] = (0, 0)
    check_against_readable_loops(cfg, op, chunk_columns=100, expect_channels_last=False)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_gradcheck_through_the_public_op_on_the_channels_last_path(op):
    rng = np.random.default_rng(0)
    if op == "conv2d":
        x, weight = rng.standard_normal((2, 8, 5, 6)), rng.standard_normal((3, 8, 4, 4))
        fn = lambda a, w, b: F.conv2d(a, w, b, stride=2, padding=1)            # noqa: E731
    else:
        x, weight = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal((3, 8, 4, 4))
        fn = lambda a, w, b: F.conv_transpose2d(a, w, b, stride=2, padding=1, output_padding=1)  # noqa: E731
    bias = rng.standard_normal(weight.shape[0] if op == "conv2d" else weight.shape[1])
    with counting_kernel_calls(conv_channels_last) as calls:
        assert mdl.gradcheck(fn, [x, weight, bias])
    assert calls["forward"] > 0 and calls["backward"] > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_reordering_and_block_sum_equal_numpy_transposes(dtype):
    rng = np.random.default_rng(5)
    groups, cog, cg, kh, kw, blocks = 2, 3, 5, 3, 2, 3
    weight = rng.standard_normal((groups * cog, cg, kh, kw)).astype(dtype)
    w_cl = np.full((groups, cog, kh * kw * cg), np.nan, dtype)
    for first, end in ((0, 4), (4, 6)):                 # two uneven ranges of output channels, as two threads
        conv_channels_last.reorder_weight(weight, w_cl, first, end)
    expected_cl = weight.transpose(0, 2, 3, 1).reshape(groups, cog, kh * kw * cg)
    np.testing.assert_array_equal(w_cl, expected_cl)

    parts = rng.standard_normal((blocks, groups, cog, kh * kw * cg)).astype(dtype)
    expected = parts.sum(axis=0).reshape(groups * cog, kh, kw, cg).transpose(0, 3, 1, 2)
    d_weight = np.full(weight.shape, np.nan, dtype)
    for first, end in ((0, 1), (1, 6)):
        conv_channels_last.sum_weight_parts(parts.copy(), d_weight, first, end)
    np.testing.assert_allclose(d_weight, expected, **TOLERANCE[dtype])
    block_0_alone = parts[0].reshape(groups * cog, kh, kw, cg).transpose(0, 3, 1, 2)
    assert not np.allclose(block_0_alone, expected)     # the check would see a sum that skipped blocks


def numpy_columns_channels_last(x, kh, kw, stride, padding, groups, ho, wo):
    """The column matrices of the module docstring, from NumPy slicing:
    columns[g, n*P + oy*wo + ox, (i*kw + j)*Cg + c] = x_pad[n, g*Cg + c, oy*sh + i, ox*sw + j]."""
    (sh, sw), (ph, pw) = stride, padding
    n, c_in = x.shape[:2]
    cg = c_in // groups
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    taps = np.empty((n, c_in, kh, kw, ho, wo), x.dtype)           # taps[n, c, i, j, oy, ox]
    for i in range(kh):
        for j in range(kw):
            taps[:, :, i, j] = x_pad[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
    taps = taps.reshape(n, groups, cg, kh, kw, ho, wo)
    return taps.transpose(1, 0, 5, 6, 3, 4, 2).reshape(groups, n * ho * wo, kh * kw * cg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", [1, 2])
def test_kept_columns_and_weight_follow_the_layout_of_the_docstring(dtype, groups):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 16, 7, 6)).astype(dtype)
    weight = rng.standard_normal((6, 16 // groups, 3, 4)).astype(dtype)
    stride, padding, ho, wo = (2, 2), (1, 2), 4, 4
    out, kept = conv_fast.conv2d_forward(x, weight, stride, padding, (1, 1), groups, ho, wo, keep_columns=True)
    columns, w_cl = kept
    np.testing.assert_array_equal(columns, numpy_columns_channels_last(x, 3, 4, stride, padding, groups, ho, wo))
    cog = weight.shape[0] // groups
    np.testing.assert_array_equal(w_cl, weight.transpose(0, 2, 3, 1).reshape(groups, cog, -1))
    plain = conv_fast.conv2d_forward(x, weight, stride, padding, (1, 1), groups, ho, wo)
    np.testing.assert_array_equal(out, plain)                        # keeping changes nothing in the output
    _, nothing = conv_fast.conv2d_forward(x, weight, (1, 1), padding, (1, 1), groups, 7, 7, keep_columns=True)
    assert nothing == ()                                             # stride 1: another path, nothing kept


@pytest.mark.parametrize("shape, stride, padding, kept_arrays", [
    ((2, 64, 5, 5), (1, 1), (0, 0), 2),      # a CNN's last 3x3 output: columns 3.24x the input, kept
    ((2, 16, 4, 5), (1, 1), (1, 1), 0),      # stride 1, padded: 9x the input, rebuilt in the backward
    ((2, 16, 9, 9), (2, 2), (1, 1), 2),      # k3 s2: 2.8x, kept
])
def test_columns_are_kept_only_up_to_the_memory_bound(shape, stride, padding, kept_arrays):
    x = np.random.default_rng(4).standard_normal(shape)
    weight = np.random.default_rng(5).standard_normal((64, shape[1], 3, 3))
    ho, wo = (conv_output_size(size, 3, s, p) for size, s, p in zip(shape[2:], stride, padding))
    assert conv_fast.takes_channels_last(shape[3], weight.shape, stride, padding, (1, 1), 1, wo)
    factor = ho * wo * weight[0].size / x[0].size
    assert (factor <= conv_channels_last.KEEP_MAX_FACTOR) == (kept_arrays == 2)
    out, kept = conv_fast.conv2d_forward(x, weight, stride, padding, (1, 1), 1, ho, wo, keep_columns=True)
    assert len(kept) == kept_arrays
    np.testing.assert_array_equal(out, conv_fast.conv2d_forward(x, weight, stride, padding, (1, 1), 1, ho, wo))


@given(conv2d_configs(), CHUNK_COLUMNS, st.booleans(), st.booleans())
@settings(max_examples=25, deadline=None)
def test_backward_from_kept_columns_equals_backward_that_rebuilds_them(cfg, chunk_columns, need_input, need_bias):
    assume(max(cfg["stride"]) > 1)
    cfg = dict(cfg, n=2 * cfg["n"] + 1, dilation=(1, 1))
    x, weight, _ = make_arrays(cfg)
    x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
    params = (cfg["stride"], cfg["padding"], (1, 1), cfg["groups"])
    with channels_last_from(1), keeping_any_columns(), split_over_threads(chunk_columns):
        ho = (x.shape[2] + 2 * cfg["padding"][0] - cfg["kh"]) // cfg["stride"][0] + 1
        wo = (x.shape[3] + 2 * cfg["padding"][1] - cfg["kw"]) // cfg["stride"][1] + 1
        out, kept = conv_fast.conv2d_forward(x, weight, *params, ho, wo, keep_columns=True)
        assert len(kept) == 2
        kept_before = [a.copy() for a in kept]
        grad = np.random.default_rng(3).standard_normal(out.shape).astype(out.dtype)
        rebuilt = conv_fast.conv2d_backward(grad, x, weight, *params, x.shape, need_input, True,
                                            need_bias=need_bias)
        reused = conv_fast.conv2d_backward(grad, x, weight, *params, x.shape, need_input, True,
                                           need_bias=need_bias, kept=kept)
    for name, a, b in zip(("dx", "dw", "db"), reused, rebuilt):
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(a, b, err_msg=name, **TOLERANCE[cfg["dtype"]])
    for before, after in zip(kept_before, kept):                     # read, not written
        np.testing.assert_array_equal(before, after)


def test_the_public_op_keeps_columns_only_when_the_weight_needs_its_gradient(monkeypatch):
    """A frozen weight (or no_grad) keeps nothing, and its input gradient is still right."""
    asked = []                                                       # keep_columns of each forward
    original = conv_kernels.conv2d_forward

    def recording(*args, keep_columns=False, **kwargs):
        asked.append(keep_columns)
        return original(*args, keep_columns=keep_columns, **kwargs)

    monkeypatch.setattr(conv_kernels, "conv2d_forward", recording)
    cfg = dict(n=3, c_in=16, c_out=8, h=7, w=6, kh=3, kw=3, stride=(2, 2), padding=(1, 1), dilation=(1, 1),
               groups=1, bias=True, dtype=np.float64, non_contiguous=False, seed=6)
    x, weight, bias = make_arrays(cfg)
    options = options_of(cfg, False)
    upstream = np.random.default_rng(1).standard_normal((3, 8, 4, 3))
    readable = run("conv2d", "python", x, weight, bias, options)     # (out, dx, dW, db), grad_seed 1
    asked.clear()
    for weight_grad in (True, False):
        xt, wt = mdl.Tensor(x, requires_grad=True), mdl.Tensor(weight, requires_grad=weight_grad)
        out = F.conv2d(xt, wt, mdl.Tensor(bias), **options)
        assert len(out.grad_fn.saved_tensors) == (4 if weight_grad else 2)   # x, weight (+ columns, weight reordered)
        out.backward(upstream)
        np.testing.assert_allclose(xt.grad, readable[1], **TOLERANCE[np.float64])
        assert (wt.grad is None) != weight_grad
    assert asked == [True, False]
    with mdl.no_grad():
        assert F.conv2d(mdl.Tensor(x), mdl.Tensor(weight, requires_grad=True), **options).grad_fn is None
    assert asked == [True, False, False]                             # no_grad: not asked to keep


def test_retained_graph_runs_the_backward_twice_from_the_same_kept_columns():
    rng = np.random.default_rng(8)
    x = mdl.Tensor(rng.standard_normal((2, 8, 6, 6)), requires_grad=True)
    weight = mdl.Tensor(rng.standard_normal((4, 8, 4, 4)), requires_grad=True)
    out = F.conv2d(x, weight, stride=2, padding=1)
    out.sum().backward(retain_graph=True)
    first = weight.grad.copy()
    out.sum().backward()
    np.testing.assert_allclose(weight.grad, 2 * first, rtol=1e-12)


@pytest.mark.parametrize("bad", ["shape", "dtype"])
def test_kept_arrays_of_another_call_are_refused_before_the_kernel(bad):
    x = np.ones((2, 8, 6, 6), np.float32)
    weight = np.ones((4, 8, 4, 4), np.float32)
    out, (columns, w_cl) = conv_fast.conv2d_forward(x, weight, (2, 2), (1, 1), (1, 1), 1, 3, 3, keep_columns=True)
    wrong = columns[:, :-1] if bad == "shape" else columns.astype(np.float64)
    with pytest.raises(ValueError, match=r"conv2d backward: the kept channels-last columns"):
        conv_fast.conv2d_backward(out, x, weight, (2, 2), (1, 1), (1, 1), 1, x.shape, True, True,
                                  kept=(wrong, w_cl))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_more_sample_blocks_than_threads_add_up_to_the_readable_loops(op, monkeypatch):
    """Three blocks of uneven size (1, 1 and 2 samples; more than the threads):
    each writes its own part of the weight gradient, and the kernel's sum of the
    parts is the whole gradient."""
    monkeypatch.setattr(conv_fast, "sample_blocks", lambda n, work: min(n, 3))
    cfg = dict(n=4, c_in=16, c_out=8, h=7, w=6, kh=3, kw=3, stride=(2, 2), padding=(1, 1), dilation=(1, 1),
               groups=2 if op == "conv2d" else 1, bias=True, dtype=np.float64, non_contiguous=False, seed=4)
    if op == "conv_transpose2d":
        cfg = dict(cfg, c_in=3, c_out=16, output_padding=(1, 0))
    check_against_readable_loops(cfg, op, chunk_columns=40)


def test_threaded_process_runs_with_two_threads():
    if os.environ.get(THREADED_RUN):
        import numba
        assert numba.get_num_threads() >= 2


def test_equal_with_two_threads_in_a_fresh_process():
    if os.environ.get(THREADED_RUN) or os.environ.get(BOUNDS_RUN):
        return                                               # this IS the fresh process
    rerun_with_two_threads(__file__, THREADED_RUN, expected_passed=74)


@pytest.mark.slow
def test_channels_last_columns_stay_inside_their_buffers(tmp_path):
    """The gated shapes again, in a child process whose kernels are compiled
    with NUMBA_BOUNDSCHECK=1 (into their own cache): any index outside its
    array raises there."""
    if os.environ.get(THREADED_RUN) or os.environ.get(BOUNDS_RUN):
        return
    rerun_with_bounds_check(__file__, BOUNDS_RUN, "edge_gated", tmp_path,
                            expected_passed=len(GATED_SHAPES) * 4)


def test_the_conv_fast_entry_points_refuse_an_output_too_large_before_this_path():
    x = np.zeros((2, 16, 8, 8), np.float32)
    weight = np.zeros((4, 16, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"conv2d: output size \(8, 8\)"):
        conv_fast.conv2d_forward(x, weight, (2, 2), (1, 1), (1, 1), 1, 8, 8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_without_samples_write_zero_weight_gradient_parts(dtype):
    """dw_parts is scratch (np.empty in conv_fast.py): a block that gets no
    sample (a batch of 0, or more blocks than samples) must still write its
    part, as zeros, or the sum of the parts reads garbage. Scratch filled with
    NaN here, and two blocks of four left without samples."""
    rng = np.random.default_rng(11)
    n, c_in, c_out, kh, kw, (sh, sw), (ph, pw) = 2, 8, 4, 3, 3, (2, 2), (1, 1)
    x = rng.standard_normal((n, c_in, 6, 6)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, kh, kw)).astype(dtype)
    ho = wo = 3
    k = c_in * kh * kw
    gy = rng.standard_normal((n, 1, c_out, ho * wo)).astype(dtype)           # (N, G, cog, P)
    _, expected = conv_kernels.conv2d_backward_numpy(gy.reshape(n, c_out, ho, wo), x, weight, (sh, sw), (ph, pw),
                                                     (1, 1), 1, x.shape, need_input=False)
    blocks = n + 2
    none = np.zeros(0, dtype)
    for kernel in ("forward", "backward"):
        dw_parts = np.full((blocks, 1, c_out, k), np.nan, dtype)
        d_weight = np.full(weight.shape, np.nan, dtype)
        w_cl = np.empty((1, c_out, k), dtype)
        db_parts, columns = np.zeros((blocks, 0)), np.empty((0, 0, 0), dtype)
        if kernel == "forward":
            out = np.empty((n, 1, c_out, ho * wo), dtype)
            conv_channels_last.forward_kernel(x, weight, w_cl, none, kh, kw, sh, sw, ph, pw, ho, wo, gy, True,
                                              conv_fast.CHUNK_COLUMNS, out, dw_parts, d_weight, db_parts, columns)
        else:
            dx = np.empty(x.shape, dtype)
            conv_channels_last.backward_kernel(x, weight, w_cl, gy, kh, kw, sh, sw, ph, pw, ho, wo, False, True,
                                               conv_fast.CHUNK_COLUMNS, none, dx, dw_parts, d_weight, db_parts,
                                               columns)
        np.testing.assert_allclose(d_weight, expected, err_msg=kernel, **TOLERANCE[dtype])


@pytest.mark.parametrize("op, stride", [("conv2d", 2), ("conv2d", 1), ("conv_transpose2d", 2)])
def test_a_batch_of_no_samples_gives_zero_parameter_gradients(op, stride):
    """Zero samples: an empty output, and the weight and bias gradients are
    exactly zero (sums over no samples), on the channels-last path (stride 2)
    and the others."""
    x = mdl.Tensor(np.zeros((0, 16, 6, 6), np.float32), requires_grad=True)
    shape = (8, 16, 3, 3) if op == "conv2d" else (16, 8, 4, 4)
    weight = mdl.Tensor(np.ones(shape, np.float32), requires_grad=True)
    bias = mdl.Tensor(np.ones(8, np.float32), requires_grad=True)
    if op == "conv2d":
        out = F.conv2d(x, weight, bias, stride=stride, padding=1)
    else:
        out = F.conv_transpose2d(x, weight, bias, stride=stride, padding=1)
    assert out.shape[0] == 0 and out.shape[1] == 8
    out.sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(weight.grad, np.zeros(shape, np.float32))
    np.testing.assert_array_equal(bias.grad, np.zeros(8, np.float32))
