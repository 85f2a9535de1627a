"""The optimised attention loops (minidl/kernels/attention_fast.py, the "numba"
backend: tiles, online softmax, blocked products) agree with the readable
loops (minidl/kernels/attention.py, run interpreted by the "python" backend):
output and the gradients of q, k and v, float32 and float64, non-contiguous
inputs, bool/float/causal masks, dropout, and shapes that cross the tile
boundaries. The last test reruns this file in a fresh process with
NUMBA_NUM_THREADS=2, so the parallel loops split work over two threads.
"""
import os

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minidl.kernels import attention as kernels, attention_fast, use
from minidl.kernels.dropout_hash import dropout_threshold
from minidl.threads import single_threaded_blas
from test_attention import assert_close, attention_case, run
from threaded_rerun import rerun_with_two_threads

THREADED_RUN = "MINIDL_TEST_ATTENTION_THREADS"


def _check(case, dropout_p=0.0, seed=0):
    q, k, v, mask, causal, dtype = case
    out_fast, grads_fast = run("numba", q, k, v, mask, causal, dropout_p=dropout_p, seed=seed)
    out_read, grads_read = run("python", q, k, v, mask, causal, dropout_p=dropout_p, seed=seed)
    assert out_fast.dtype == out_read.dtype == dtype
    assert_close(out_fast, out_read, dtype, "out")
    for name, a, b in zip("qkv", grads_fast, grads_read):
        assert a.dtype == dtype
        assert_close(a, b, dtype, f"d{name}")


@settings(max_examples=30)
@given(attention_case(max_len=6, max_feat=4, max_batch=2))
def test_fast_loops_equal_the_readable_loops(case):
    _check(case)


@settings(max_examples=10)
@given(attention_case(max_len=6, max_feat=4, max_batch=2), st.sampled_from([0.1, 0.5]),
       st.integers(0, 1000))
def test_fast_loops_equal_the_readable_loops_with_dropout(case, p, seed):
    _check(case, dropout_p=p, seed=seed)


@pytest.mark.parametrize("L,S,causal", [(attention_fast.BLOCK_Q + 3, attention_fast.BLOCK_K + 5, False),
                                        (attention_fast.BLOCK_Q + 3, attention_fast.BLOCK_K + 5, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_loops_equal_the_readable_loops_across_tiles(L, S, causal, dtype):
    rng = np.random.default_rng(L * S)
    q, k, v = (rng.standard_normal((2, n, d)).astype(dtype) for n, d in ((L, 3), (S, 3), (S, 2)))
    mask = None if causal else (rng.random((L, S)) < 0.7) | (np.arange(S) == 0)
    _check((q, k, v, mask, causal, dtype))


@pytest.mark.parametrize("dropout_p", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_kernels_equal_the_readable_loops_across_query_blocks(dtype, dropout_p):
    # no causal mask: the dense kernels run. L > DENSE_Q makes two query blocks,
    # so dK and dV of the second block are added to the first block's; two rows
    # are fully masked (output 0, no gradient) and one query row is NaN.
    L, S = attention_fast.DENSE_Q + 5, 11
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((2, n, d)).astype(dtype) for n, d in ((L, 3), (S, 3), (S, 2)))
    q[1, attention_fast.DENSE_Q + 2, 1] = np.nan
    mask = rng.random((L, S)) < 0.6
    mask[:, 0] = True
    mask[[3, attention_fast.DENSE_Q + 1]] = False
    assert attention_fast.use_dense(q, k, v, causal=False)
    out_fast, grads_fast = run("numba", q, k, v, mask, dropout_p=dropout_p, seed=5)
    out_read, grads_read = run("python", q, k, v, mask, dropout_p=dropout_p, seed=5)
    assert np.isnan(out_fast[1, attention_fast.DENSE_Q + 2]).all()
    assert not np.isnan(out_fast[0]).any() and not np.isnan(grads_fast[1][0]).any()
    assert (out_fast[:, [3, attention_fast.DENSE_Q + 1]] == 0).all()
    for name, a, b in zip(["out", "dq", "dk", "dv"], [out_fast] + grads_fast, [out_read] + grads_read):
        assert a.dtype == dtype
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)   # the same NaNs
        assert_close(np.nan_to_num(a), np.nan_to_num(b), dtype, name)


@pytest.mark.parametrize("L,S", [(attention_fast.DENSE_Q + 6, 40), (40, attention_fast.DENSE_Q + 6), (1, 1)])
@pytest.mark.parametrize("dropout_p", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_causal_kernels_equal_the_readable_loops(dtype, dropout_p, L, S):
    # causal and short: the dense kernels run, taking the maximum and the
    # exponentials of each row only over the keys it may see (i + 1 of them,
    # all S once i >= S); more queries than keys and fewer, a NaN query row,
    # a non-contiguous query, two query blocks in the first case
    rng = np.random.default_rng(11)
    q = rng.standard_normal((2, 3, L)).astype(dtype).swapaxes(-1, -2)        # (2, L, 3) view
    k, v = rng.standard_normal((2, S, 3)).astype(dtype), rng.standard_normal((2, S, 2)).astype(dtype)
    if L > 2:
        q[1, L - 2, 0] = np.nan
    assert attention_fast.use_dense(q, k, v, causal=True)
    grad_out = rng.standard_normal((2, L, 2)).astype(dtype)
    out_fast, grads_fast = run("numba", q, k, v, causal=True, dropout_p=dropout_p, seed=3, grad_out=grad_out)
    out_read, grads_read = run("python", q, k, v, causal=True, dropout_p=dropout_p, seed=3, grad_out=grad_out)
    if L > 2:
        assert np.isnan(out_fast[1, L - 2]).all() and not np.isnan(out_fast[0]).any()
    for name, a, b in zip(["out", "dq", "dk", "dv"], [out_fast] + grads_fast, [out_read] + grads_read):
        assert a.dtype == dtype
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)   # the same NaNs
        assert_close(np.nan_to_num(a), np.nan_to_num(b), dtype, name)


@pytest.mark.parametrize("nan_row", [None, 3, attention_fast.DENSE_Q_CAUSAL + 2])
@pytest.mark.parametrize("L,S", [(3 * attention_fast.DENSE_Q_CAUSAL + 5, 3 * attention_fast.DENSE_Q_CAUSAL + 5),
                                 (2 * attention_fast.DENSE_Q_CAUSAL + 1, 3 * attention_fast.DENSE_Q_CAUSAL),
                                 (3 * attention_fast.DENSE_Q_CAUSAL, attention_fast.DENSE_Q_CAUSAL + 3)])
def test_dense_causal_blocks_read_only_the_keys_they_see(L, S, nan_row):
    # With a causal mask the dense kernels give a block of query rows i0 ..
    # i0 + nr - 1 only the keys below i0 + nr (the rest are masked for all of
    # them): several blocks here, more keys than queries and fewer, and a NaN
    # query row in the first or second block, whose NaN weights reach every
    # key's dK and dV (as in the readable loops), also the keys its block
    # does not read. The kernels are called directly with gradient arrays
    # full of garbage: every entry must be written.
    rng = np.random.default_rng(L + S)
    dtype = np.float64
    BH, E, Ev = 2, 4, 3
    q, k = rng.standard_normal((BH, L, E)), rng.standard_normal((BH, S, E))
    v, dout = rng.standard_normal((BH, S, Ev)), rng.standard_normal((BH, L, Ev))
    if nan_row is not None:
        q[1, nan_row, 2] = np.nan
    assert attention_fast.use_dense(q, k, v, causal=True)
    bias, bias_index = np.zeros((0, 1, 1)), np.zeros(BH, np.int64)
    args = (q, k, v, bias, bias_index, True, dtype(0.5), np.uint64(0), np.uint64(0), dtype(1.0))
    out, lse = np.full((BH, L, Ev), 7.0), np.full((BH, L), 7.0)
    grads = [np.full_like(q, 9.0), np.full_like(k, 9.0), np.full_like(v, 9.0)]
    with single_threaded_blas():
        attention_fast.attention_forward_dense(*args, out, lse)
        attention_fast.attention_backward_dense(*args, out, lse, dout, *grads)
    out_read, grads_read = run("python", q, k, v, causal=True, grad_out=dout)
    for name, a, b in zip(["out", "dq", "dk", "dv"], [out] + grads, [out_read] + grads_read):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)   # the same NaNs
        assert_close(np.nan_to_num(a), np.nan_to_num(b), dtype, name)
    if nan_row is not None:
        assert np.isnan(grads[1][1]).all() and not np.isnan(grads[1][0]).any()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_kernels_equal_the_dense_kernels(dtype, causal):
    # the entry points send non-causal calls, and causal ones up to
    # DENSE_CAUSAL_MAX queries and keys, to the dense kernels (which the tests
    # above hold equal to the readable loops); the tiled kernels stay held
    # equal to them here, called directly, across tiles and query blocks
    rng = np.random.default_rng(3)
    BH, L, S, E, Ev = 3, attention_fast.DENSE_Q + 9, attention_fast.BLOCK_K + 7, 5, 4
    q, k = rng.standard_normal((BH, L, E)).astype(dtype), rng.standard_normal((BH, S, E)).astype(dtype)
    v, dout = rng.standard_normal((BH, S, Ev)).astype(dtype), rng.standard_normal((BH, L, Ev)).astype(dtype)
    bias = rng.standard_normal((2, L, S)).astype(dtype)
    bias[rng.random(bias.shape) < 0.3] = -np.inf          # masked entries
    bias[:, :, 0] = 0                                      # every row keeps key 0
    bias_index = np.array([0, 1, 0], np.int64)
    seed, threshold, keep_scale = np.uint64(11), dropout_threshold(0.2), dtype(1 / 0.8)
    args = (q, k, v, bias, bias_index, causal, dtype(0.4), seed, threshold, keep_scale)
    results = []
    for forward, backward in ((attention_fast.attention_forward_blocked, attention_fast.attention_backward_blocked),
                              (attention_fast.attention_forward_dense, attention_fast.attention_backward_dense)):
        out, lse = np.empty((BH, L, Ev), dtype), np.empty((BH, L))
        with single_threaded_blas():
            forward(*args, out, lse)
            grads = [np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)]
            backward(*args, out, lse, dout, *grads)
        results.append([out, lse] + grads)
    for name, tiled, dense in zip(["out", "lse", "dq", "dk", "dv"], *results):
        assert_close(tiled, dense, dtype, name)


def test_causal_calls_run_dense_up_to_the_limit_and_tiled_beyond():
    limit = attention_fast.DENSE_CAUSAL_MAX
    for L, S, dense in ((limit, limit, True), (7, 5, True), (limit + 1, 5, False), (5, limit + 1, False)):
        q, k, v = np.zeros((1, L, 4)), np.zeros((1, S, 4)), np.zeros((1, S, 3))
        assert attention_fast.use_dense(q, k, v, causal=True) is dense, (L, S)
        assert attention_fast.use_dense(q, k, v, causal=False)


def test_causal_beyond_the_limit_equals_the_numpy_twin():
    # the tiled kernels through the entry points, long enough to run them
    rng = np.random.default_rng(9)
    L = attention_fast.DENSE_CAUSAL_MAX + 7
    q, k, v, dout = (rng.standard_normal((2, L, 4)) for _ in range(4))
    empty_bias, bias_index = np.zeros((0, 1, 1)), np.zeros(2, np.int64)
    results = {}
    for backend in ("numba", "numpy"):
        with use(backend):
            out, lse = kernels.forward(q, k, v, empty_bias, bias_index, True, 0.5)
            grads = kernels.backward(q, k, v, empty_bias, bias_index, True, 0.5, 0.0, 0, out, lse, dout)
        results[backend] = [out, lse] + list(grads)
    for name, a, b in zip(["out", "lse", "dq", "dk", "dv"], results["numba"], results["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("causal", [False, True])
def test_dense_backward_weights_of_each_query_sum_to_one_at_large_scores(causal):
    """The backward recomputes each weight as exp(s - lse) from the forward's
    logsumexp. With scores near 1000 (an additive mask), lse carries bits a
    float32 cannot hold; the kernel keeps them as a second float32 number.
    With dO = 1 every dV row is sum_i p_ij, so the dV rows add up to the
    number of queries when each query's weights sum to 1: a rounded lse
    shifts every weight of a row by the same factor (up to 3e-5)."""
    rng = np.random.default_rng(7)
    L = S = 300                                         # dense kernels, several query blocks
    q, k, v = (rng.standard_normal((2, n, 16)).astype(np.float32) for n in (L, S, S))
    mask = np.float32(1000.0) + rng.uniform(0, 1, (L, S)).astype(np.float32)
    with use("numba"):
        out, lse = kernels.forward(q, k, v, mask[None], np.zeros(2, np.int64), causal, 0.25)
        dout = np.ones_like(out)
        _, _, dv = kernels.backward(q, k, v, mask[None], np.zeros(2, np.int64), causal, 0.25, 0.0, 0,
                                    out, lse, dout)
    np.testing.assert_allclose(dv.astype(np.float64).sum(axis=1), L, rtol=2e-6)


@pytest.mark.parametrize("scale", [-0.7, 0.0, 0.3])
@pytest.mark.parametrize("causal", [False, True])
def test_dense_kernels_equal_the_readable_loops_at_any_scale(scale, causal):
    """Without a mask the dense kernels apply a positive scale inside the exp
    (the maximum of the unscaled scores, scaled); a negative scale turns the
    largest score into the smallest, so it must take the scaled scores: the
    float32 scores here span about 200, and exp(0.7 * 200) overflows
    float32. Scale 0 makes every weight equal. L = S = 140: two query blocks."""
    rng = np.random.default_rng(11)
    q, k = (rng.standard_normal((2, 140, 8)).astype(np.float32) * 5 for _ in range(2))
    v = rng.standard_normal((2, 140, 8)).astype(np.float32)
    grad = rng.standard_normal((2, 140, 8)).astype(np.float32)
    fast = run("numba", q, k, v, causal=causal, scale=scale, grad_out=grad)
    readable = run("python", q, k, v, causal=causal, scale=scale, grad_out=grad)
    assert np.isfinite(readable[0]).all()
    assert_close(fast[0], readable[0], np.float32, "out")
    for name, a, b in zip("qkv", fast[1], readable[1]):
        assert_close(a, b, np.float32, f"d{name}")


def test_threaded_process_runs_with_two_threads():
    if os.environ.get(THREADED_RUN):
        assert numba.get_num_threads() >= 2


def test_equal_with_two_threads_in_a_fresh_process():
    if os.environ.get(THREADED_RUN):
        return                                               # this IS the fresh process
    rerun_with_two_threads(__file__, THREADED_RUN, expected_passed=51)


def _tiled_causal_on_both(q, k, v, dout=None):
    """Causal attention long enough for the tiled kernels, through the entry
    points on "numba" and on the NumPy twin: {backend: (out, lse)}, or
    {backend: (dq, dk, dv)} when `dout` is given."""
    empty_bias, bias_index = np.zeros((0, 1, 1)), np.zeros(q.shape[0], np.int64)
    assert not attention_fast.use_dense(q, k, v, causal=True)
    results = {}
    for backend in ("numba", "numpy"):
        with use(backend):
            out, lse = kernels.forward(q, k, v, empty_bias, bias_index, True, 0.5)
            results[backend] = (out, lse) if dout is None else kernels.backward(
                q, k, v, empty_bias, bias_index, True, 0.5, 0.0, 0, out, lse, dout)
    return results


def test_tiled_forward_nan_rows_equal_the_numpy_twin():
    # a NaN in a query row makes that row's output and logsumexp NaN; a NaN in
    # a key makes every row that sees the key NaN (causal: rows from the key on),
    # across key tiles and query blocks; every other row as without the NaN
    rng = np.random.default_rng(10)
    L = attention_fast.DENSE_CAUSAL_MAX + 7
    q, k, v = (rng.standard_normal((2, L, 4)) for _ in range(3))
    q[0, 100, 2] = np.nan                                   # row 100 of batch-head 0
    k[1, 300, 0] = np.nan                                   # rows 300.. of batch-head 1
    results = _tiled_causal_on_both(q, k, v)
    (out, lse), (want_out, want_lse) = results["numba"], results["numpy"]
    nan_rows = np.zeros((2, L), bool)
    nan_rows[0, 100] = True
    nan_rows[1, 300:] = True
    np.testing.assert_array_equal(np.isnan(lse), nan_rows)
    np.testing.assert_array_equal(np.isnan(out), np.broadcast_to(nan_rows[..., None], out.shape))
    np.testing.assert_allclose(out, want_out, rtol=1e-9, atol=1e-10)    # NaN where the twin has NaN
    np.testing.assert_allclose(lse, want_lse, rtol=1e-9, atol=1e-10)


def test_tiled_backward_nan_row_makes_its_batch_heads_key_gradients_nan():
    # a NaN query row: its row of dq is NaN, and every key's dk and dv in its
    # batch-head (also the key tiles after the row, which the causal mask lets
    # the tiled kernel skip for it), as in the twin and the readable loops;
    # the other batch-head and the other rows of dq equal the twin's
    rng = np.random.default_rng(12)
    L = attention_fast.DENSE_CAUSAL_MAX + 7
    q, k, v, dout = (rng.standard_normal((2, L, 4)) for _ in range(4))
    q[0, 100, 2] = np.nan                                   # row 100 of batch-head 0
    results = _tiled_causal_on_both(q, k, v, dout)
    (dq, dk, dv), (want_dq, want_dk, want_dv) = results["numba"], results["numpy"]
    nan_dq = np.zeros(dq.shape, bool)
    nan_dq[0, 100] = True
    np.testing.assert_array_equal(np.isnan(dq), nan_dq)
    for name, got, want in (("dk", dk, want_dk), ("dv", dv, want_dv)):
        assert np.isnan(got[0]).all() and np.isnan(want[0]).all(), name
        assert not np.isnan(got[1]).any(), name
    for name, got, want in (("dq", dq, want_dq), ("dk", dk, want_dk), ("dv", dv, want_dv)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=name)  # NaN where the twin has NaN


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_kernels_fully_masked_rows_give_zeros(dtype):
    # a row whose every key the bias masks: output 0, logsumexp -inf, no
    # gradient from it; rows 0, BLOCK_Q (first rows of their query blocks),
    # a row inside a block and the last row, with and without a causal mask
    rng = np.random.default_rng(4)
    BH, L, S, E, Ev = 2, 2 * attention_fast.BLOCK_Q + 5, attention_fast.BLOCK_K + 3, 3, 2
    q, k = rng.standard_normal((BH, L, E)).astype(dtype), rng.standard_normal((BH, S, E)).astype(dtype)
    v, dout = rng.standard_normal((BH, S, Ev)).astype(dtype), rng.standard_normal((BH, L, Ev)).astype(dtype)
    masked = [0, attention_fast.BLOCK_Q, attention_fast.BLOCK_Q + 7, L - 1]
    bias = np.zeros((1, L, S), dtype)
    bias[0, masked] = -np.inf
    bias_index = np.zeros(BH, np.int64)
    for causal in (False, True):
        args = (q, k, v, bias, bias_index, causal, dtype(0.5), np.uint64(0), np.uint64(0), dtype(1))
        out, lse = np.full((BH, L, Ev), np.nan, dtype), np.full((BH, L), np.nan)
        with single_threaded_blas():
            attention_fast.attention_forward_blocked(*args, out, lse)
            grads = [np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)]
            attention_fast.attention_backward_blocked(*args, out, lse, dout, *grads)
        assert (out[:, masked] == 0).all() and (lse[:, masked] == -np.inf).all()
        assert (grads[0][:, masked] == 0).all()
        others = np.setdiff1d(np.arange(L), masked)
        assert np.isfinite(out[:, others]).all() and np.isfinite(lse[:, others]).all()
        # the same rows computed by the readable loops, interpreted
        with use("python"):
            want_out, want_lse = kernels.forward(q, k, v, bias, bias_index, causal, 0.5)
            want_grads = kernels.backward(q, k, v, bias, bias_index, causal, 0.5, 0.0, 0,
                                          want_out, want_lse, dout)
        np.testing.assert_allclose(lse, want_lse, rtol=1e-5)          # -inf where masked
        for name, a, b in zip(["out", "dq", "dk", "dv"], [out] + grads, [want_out] + list(want_grads)):
            assert_close(a, b, dtype, name)
