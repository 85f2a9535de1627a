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

from minidl.kernels import attention_fast
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


def test_threaded_process_runs_with_two_threads():
    if os.environ.get(THREADED_RUN):
        assert numba.get_num_threads() >= 2


def test_equal_with_two_threads_in_a_fresh_process():
    if os.environ.get(THREADED_RUN):
        return                                               # this IS the fresh process
    rerun_with_two_threads(__file__, THREADED_RUN, expected_passed=8)
