"""pooling_fast.max_pool2d_2x2_forward (what the "numba" backend runs for 2x2
windows, stride 2, no padding) against the readable loop it replaces,
bit for bit, values and argmax: odd sizes, ties, signed zeros, NaN and
infinities, float32 and float64, one and several threads; and through the op:
non-contiguous inputs, the caller's array untouched, the gradient."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels
from minidl.kernels import pooling, pooling_fast
from minidl.threads import numba_threads

from threaded_rerun import in_two_thread_child

TWO_THREAD_RUN = "MINIDL_TEST_POOLING_FAST_THREADS"        # set in the child that repeats a thread-count test


def same_bits(a, b):
    """Equal arrays, element for element and bit for bit (NaN == NaN, -0.0 != 0.0)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@st.composite
def inputs(draw):
    """(N, C, H, W) arrays whose values make ties likely: small integers,
    signed zeros, and sometimes infinities or NaN."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)),
             draw(st.integers(2, 11)), draw(st.integers(2, 11)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    pool = [0.0, -0.0, 1.0, -1.0, 2.0]
    pool += draw(st.sampled_from([[], [np.inf, -np.inf], [np.nan], [np.nan, np.inf, -np.inf]]))
    x = rng.choice(np.array(pool), size=shape).astype(dtype)
    if draw(st.booleans()):                              # or distinct values from a normal draw
        x = rng.standard_normal(shape).astype(dtype)
    return x


@settings(max_examples=150, deadline=None)
@given(x=inputs())
def test_fast_2x2_equals_readable_loop_bit_for_bit(x):
    before = x.copy()
    out, argmax = pooling_fast.max_pool2d_2x2_forward(x)
    want_out, want_argmax = pooling.max_pool2d_forward_loops(x, 2, 2, 2, 2, 0, 0)
    assert same_bits(out, want_out)
    assert same_bits(argmax, want_argmax)
    assert same_bits(x, before)                          # input never written


def test_hand_case_ties_signed_zero_nan_inf():
    plane = np.array([[3.0, 3.0, -0.0, 0.0, 1.0],        # tie 3/3: first; -0.0/0.0 tie: the -0.0
                      [1.0, 3.0, 0.0, -1.0, 9.0],
                      [np.inf, -np.inf, -np.inf, -np.inf, 0.0],
                      [np.inf, 2.0, -np.inf, -np.inf, 0.0],
                      [7.0, 7.0, 7.0, 7.0, 7.0]])        # last row and column: in no window
    x = plane[None, None]
    out, argmax = pooling_fast.max_pool2d_2x2_forward(x)
    assert argmax[0, 0].tolist() == [[0, 2], [10, 12]]    # flat r * 5 + col
    assert out[0, 0, 0, 0] == 3.0 and np.signbit(out[0, 0, 0, 1])   # the -0.0 came first
    assert out[0, 0, 1].tolist() == [np.inf, -np.inf]
    x_nan = x.copy()
    x_nan[0, 0, 1, 1] = np.nan                           # a NaN plane takes the readable path
    x_nan[0, 0, 3, 3] = np.nan
    out, argmax = pooling_fast.max_pool2d_2x2_forward(x_nan)
    assert np.isnan(out[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 6
    assert np.isnan(out[0, 0, 1, 1]) and argmax[0, 0, 1, 1] == 18
    assert out[0, 0, 0, 1] == 0.0 and argmax[0, 0, 0, 1] == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_several_threads_and_a_nan_plane_among_many(dtype, request):
    if not in_two_thread_child(__file__, request.node.name, TWO_THREAD_RUN):
        return                                                   # checked in a child with two threads
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, size=(8, 40, 27, 26)).astype(dtype)   # ties everywhere, odd H
    x[3, 5, 10, 10] = np.nan
    want = pooling.max_pool2d_forward_loops(x, 2, 2, 2, 2, 0, 0)
    for threads in (1, 2):
        with numba_threads(threads):
            assert numba.get_num_threads() == threads
            got = pooling_fast.max_pool2d_2x2_forward(x)
        assert same_bits(got[0], want[0]) and same_bits(got[1], want[1])


@pytest.mark.parametrize("layout", ["transposed", "strided", "3-d"])
def test_op_takes_the_fast_path_with_non_contiguous_input(layout):
    rng = np.random.default_rng(2)
    base = rng.integers(-2, 3, size=(2, 3, 9, 8)).astype(np.float32)
    if layout == "transposed":
        x = np.ascontiguousarray(base.swapaxes(2, 3)).swapaxes(2, 3)
    elif layout == "strided":
        wide = np.zeros(base.shape[:3] + (16,), np.float32)
        wide[..., ::2] = base
        x = wide[..., ::2]
    else:
        x = base[0].transpose(0, 2, 1).copy().transpose(0, 2, 1)   # (C, H, W), not C-contiguous
        base = base[0]
    before = x.copy()
    grad = rng.standard_normal((base.shape[:-2]) + (4, 4)).astype(np.float32)
    results = {}
    for backend in ("numba", "python"):
        with kernels.use(backend):
            t = mdl.tensor(x, requires_grad=True)
            y = F.max_pool2d(t, 2)
            y.backward(grad)
        results[backend] = (y.data, t.grad)
    assert same_bits(x, before)
    assert same_bits(results["numba"][0], results["python"][0])
    assert same_bits(results["numba"][1], results["python"][1])


def test_gradcheck_on_the_fast_path():
    x = np.random.default_rng(0).permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.01
    assert mdl.gradcheck(lambda t: F.max_pool2d(t, 2), [x])
    assert mdl.gradcheck(lambda t: F.max_pool2d(t, (2, 2), (2, 2), 0), [x])
