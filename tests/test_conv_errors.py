"""Bad arguments to conv2d / conv_transpose2d raise ValueError or TypeError
naming the op and the shapes, before any kernel runs; a fuzz test throws
malformed arguments and accepts only a clean exception or a right-shaped result."""
import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl.kernels import conv as conv_kernels


@pytest.fixture
def no_kernels(monkeypatch):
    """Make every conv kernel entry point fail the test if it is reached."""
    def reached(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were checked")
    for name in ("conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward"):
        monkeypatch.setattr(conv_kernels, name, reached)


def a(*shape, dtype=np.float32):
    return mdl.tensor(np.ones(shape, dtype=dtype))


CONV2D_CASES = [
    # (x, weight, bias, options, error, words the message must contain)
    (a(3, 5, 5), a(2, 3, 3, 3), None, {}, ValueError, ["conv2d", "4-D input", "(3, 5, 5)"]),
    (a(1, 3, 5, 5), a(2, 3, 3), None, {}, ValueError, ["conv2d", "4-D weight", "(2, 3, 3)"]),
    (a(1, 3, 5, 5), a(2, 2, 3, 3), None, {}, ValueError, ["conv2d", "(1, 3, 5, 5)", "(2, 2, 3, 3)", "channels"]),
    (a(1, 1, 3, 3), a(1, 1, 5, 5), None, {}, ValueError, ["conv2d", "larger than the padded input", "(1, 1, 3, 3)"]),
    (a(1, 1, 3, 3), a(1, 1, 3, 3), None, dict(dilation=2), ValueError, ["conv2d", "dilation 2"]),
    (a(1, 1, 5, 5), a(1, 1, 3, 3), None, dict(stride=0), ValueError, ["conv2d", "stride", ">= 1"]),
    (a(1, 1, 5, 5), a(1, 1, 3, 3), None, dict(stride=(1, -2)), ValueError, ["conv2d", "stride"]),
    (a(1, 1, 5, 5), a(1, 1, 3, 3), None, dict(padding=-1), ValueError, ["conv2d", "padding", ">= 0"]),
    (a(1, 1, 5, 5), a(1, 1, 3, 3), None, dict(dilation=0), ValueError, ["conv2d", "dilation"]),
    (a(1, 1, 5, 5), a(1, 1, 3, 3), None, dict(stride=1.5), TypeError, ["conv2d", "stride", "int"]),
    (a(1, 1, 5, 5), a(1, 1, 3, 3), None, dict(padding=(1, 2, 3)), ValueError, ["conv2d", "padding", "pair"]),
    (a(1, 4, 5, 5), a(3, 2, 3, 3), None, dict(groups=2), ValueError, ["conv2d", "groups=2", "(3, 2, 3, 3)"]),
    (a(1, 4, 5, 5), a(4, 2, 3, 3), None, dict(groups=0), ValueError, ["conv2d", "groups"]),
    (a(1, 1, 5, 5), a(2, 1, 3, 3), a(3), {}, ValueError, ["conv2d", "bias", "(3,)", "(2,)"]),
    (a(1, 1, 5, 5, dtype=np.int64), a(1, 1, 3, 3), None, {}, TypeError, ["conv2d", "int64", "(1, 1, 5, 5)"]),
    (a(1, 1, 5, 5), a(1, 1, 3, 3, dtype=np.float64), None, {}, TypeError, ["conv2d", "float32", "float64"]),
    (a(1, 1, 5, 5), a(1, 1, 3, 3), a(1, dtype=np.float64), {}, TypeError, ["conv2d", "bias", "float64"]),
    (a(1, 1, 5, 5, dtype=np.float16), a(1, 1, 3, 3, dtype=np.float16), None, {}, TypeError, ["conv2d", "float16"]),
]

TRANSPOSE_CASES = [
    (a(1, 3, 5), a(3, 2, 3, 3), None, {}, ValueError, ["conv_transpose2d", "4-D input"]),
    (a(1, 3, 5, 5), a(2, 2, 3, 3), None, {}, ValueError, ["conv_transpose2d", "(1, 3, 5, 5)", "(2, 2, 3, 3)"]),
    (a(1, 2, 4, 4), a(2, 1, 3, 3), None, dict(stride=2, output_padding=2), ValueError,
     ["conv_transpose2d", "output_padding", "stride"]),
    (a(1, 2, 4, 4), a(2, 1, 3, 3), None, dict(output_padding=-1), ValueError, ["conv_transpose2d", "output_padding"]),
    (a(1, 1, 1, 1), a(1, 1, 1, 1), None, dict(padding=1), ValueError, ["conv_transpose2d", "output size", "(1, 1, 1, 1)"]),
    (a(1, 3, 4, 4), a(3, 1, 3, 3), None, dict(groups=2), ValueError, ["conv_transpose2d", "groups=2"]),
    (a(1, 2, 4, 4), a(2, 3, 3, 3), a(2), {}, ValueError, ["conv_transpose2d", "bias", "(3,)"]),
    (a(1, 2, 4, 4), a(2, 3, 3, 3), None, dict(stride=0), ValueError, ["conv_transpose2d", "stride"]),
    (a(1, 2, 4, 4, dtype=np.int32), a(2, 3, 3, 3), None, {}, TypeError, ["conv_transpose2d", "int32"]),
    (a(1, 2, 4, 4, dtype=np.float64), a(2, 3, 3, 3), None, {}, TypeError, ["conv_transpose2d", "float64", "float32"]),
]


@pytest.mark.parametrize("op, case", [(F.conv2d, c) for c in CONV2D_CASES] +
                         [(F.conv_transpose2d, c) for c in TRANSPOSE_CASES])
def test_bad_arguments_raise_before_any_kernel(no_kernels, op, case):
    x, weight, bias, options, error, words = case
    with pytest.raises(error) as info:
        op(x, weight, bias, **options)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def conv2d_shape(x, w, stride, padding, dilation):
    s, p, d = (v if isinstance(v, tuple) else (v, v) for v in (stride, padding, dilation))
    return (x[0], w[0]) + tuple((x[2 + a] + 2 * p[a] - d[a] * (w[2 + a] - 1) - 1) // s[a] + 1 for a in range(2))


def conv_transpose2d_shape(x, w, stride, padding, output_padding, dilation, groups):
    s, p, o, d = (v if isinstance(v, tuple) else (v, v) for v in (stride, padding, output_padding, dilation))
    return (x[0], w[1] * groups) + tuple((x[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (w[2 + a] - 1) + o[a] + 1
                                         for a in range(2))


small_ints = st.integers(-1, 3)
pairs_or_ints = st.one_of(*[st.integers(1, 2)] * 6, small_ints, st.tuples(small_ints, small_ints),
                          st.tuples(small_ints), st.floats(0.5, 2.5), st.none())
dtypes = st.sampled_from([np.float32, np.float32, np.float32, np.float64, np.int64, np.bool_, np.float16])
# mostly 4-D, so that a fair share of draws is legal and its output shape gets checked
shapes = st.one_of(*[st.lists(st.integers(0, 5), min_size=4, max_size=4)] * 3,
                   st.lists(st.integers(0, 5), min_size=0, max_size=6))


@settings(max_examples=150)
@given(op=st.sampled_from(["conv2d", "conv_transpose2d"]),
       x_shape=shapes, w_shape=shapes,
       bias_shape=st.one_of(st.none(), st.none(), st.lists(st.integers(0, 5), min_size=0, max_size=2)),
       x_dtype=dtypes, w_dtype=dtypes, stride=pairs_or_ints, padding=pairs_or_ints,
       dilation=pairs_or_ints, output_padding=pairs_or_ints, groups=st.one_of(small_ints, st.just(1.0)),
       backend=st.sampled_from(["numba", "numpy"]), match_channels=st.booleans())
def test_fuzz_malformed_arguments(op, x_shape, w_shape, bias_shape, x_dtype, w_dtype, stride, padding,
                                  dilation, output_padding, groups, backend, match_channels):
    if match_channels and len(x_shape) == len(w_shape) == 4:     # nudge towards legal calls
        w_shape[1 if op == "conv2d" else 0] = x_shape[1]
        groups, w_dtype = 1, x_dtype
    x = np.ones(x_shape, dtype=x_dtype)
    w = np.ones(w_shape, dtype=w_dtype)
    bias = None if bias_shape is None else mdl.tensor(np.ones(bias_shape, dtype=x_dtype))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if op == "conv_transpose2d":
        options["output_padding"] = output_padding
    fn = F.conv2d if op == "conv2d" else F.conv_transpose2d
    try:
        with mdl.kernels.use(backend):
            out = fn(mdl.tensor(x), mdl.tensor(w), bias, **options)
    except (ValueError, TypeError):
        event("rejected")
        return
    event("accepted")
    # it ran: then everything was legal and the result must have the documented shape
    if op == "conv2d":
        expected = conv2d_shape(x_shape, w_shape, stride, padding, dilation)
    else:
        expected = conv_transpose2d_shape(x_shape, w_shape, stride, padding, output_padding, dilation, groups)
    assert out.shape == expected and out.dtype == x.dtype
    assert np.all(np.isfinite(out.data))
