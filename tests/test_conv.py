"""conv2d: backends agree, gradients match finite differences, the forward
matches scipy.signal.correlate and hand-worked cases, bad input is refused."""
import numpy as np
import pytest
from hypothesis import given, settings

import minidl as mdl
import minidl.functional as F
from minidl.gradcheck import GradcheckError
from minidl.kernels import conv as conv_kernels
from conv_helpers import TOLERANCE, conv2d_configs, make_arrays, run, scipy_conv2d


def options_of(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])


@given(conv2d_configs())
def test_three_backends_agree_on_forward_and_backward(cfg):
    x, weight, bias = make_arrays(cfg)
    results = {b: run("conv2d", b, x, weight, bias, options_of(cfg)) for b in ("numba", "numpy", "python")}
    tol = TOLERANCE[cfg["dtype"]]
    for backend in ("numpy", "python"):
        for name, ours, theirs in zip(("out", "dx", "dw", "db"), results["numba"], results[backend]):
            if ours is None:
                assert theirs is None
                continue
            assert ours.dtype == cfg["dtype"] and ours.shape == theirs.shape, name
            np.testing.assert_allclose(ours, theirs, err_msg=f"{name} numba vs {backend}", **tol)


@given(conv2d_configs())
def test_forward_matches_scipy_correlate(cfg):
    cfg = dict(cfg, dtype=np.float64)
    x, weight, bias = make_arrays(cfg)
    expected = scipy_conv2d(x, weight, bias, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    out = F.conv2d(mdl.tensor(x), mdl.tensor(weight), None if bias is None else mdl.tensor(bias),
                   **options_of(cfg))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("options", [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
    dict(groups=2, padding=1),
    dict(stride=3, dilation=2, padding=2),
])
def test_gradcheck_input_weight_bias(options):
    rng = np.random.default_rng(0)
    groups = options.get("groups", 1)
    x = rng.standard_normal((2, 2, 5, 6))                          # (N, Cin, H, W)
    weight = rng.standard_normal((4, 2 // groups, 3, 2))           # (Cout, Cin/groups, kH, kW)
    bias = rng.standard_normal(4)
    assert mdl.gradcheck(lambda a, w, b: F.conv2d(a, w, b, **options), [x, weight, bias])


def test_gradcheck_catches_a_wrong_weight_gradient(monkeypatch):
    rng = np.random.default_rng(1)
    x, weight = rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((1, 1, 2, 2))
    original = conv_kernels.conv2d_backward

    def wrong(*args, **kwargs):
        d_input, d_weight = original(*args, **kwargs)
        return d_input, None if d_weight is None else d_weight * 1.01
    monkeypatch.setattr(conv_kernels, "conv2d_backward", wrong)
    with pytest.raises(GradcheckError):
        mdl.gradcheck(lambda a, w: F.conv2d(a, w), [x, weight])


def test_hand_computed_case():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)                  # [[1,2,3],[4,5,6],[7,8,9]]
    weight = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])               # out = x[i, j] - x[i+1, j+1]
    out = F.conv2d(mdl.tensor(x), mdl.tensor(weight), mdl.tensor(np.array([0.5])))
    np.testing.assert_array_equal(out.data, np.full((1, 1, 2, 2), -4.0 + 0.5))
    # padding 1, stride 2: windows start at padded (0,0), (0,2), (2,0), (2,2); the
    # first three see only x[0,0], x[0,2], x[2,0] under the -1 tap; the last is 5 - 9
    out = F.conv2d(mdl.tensor(x), mdl.tensor(weight), stride=2, padding=1)
    np.testing.assert_array_equal(out.data[0, 0], [[-1.0, -3.0], [-7.0, 5.0 - 9.0]])


@pytest.mark.parametrize("backend", ["numba", "numpy", "python"])
def test_edge_cases(backend):
    rng = np.random.default_rng(2)
    with mdl.kernels.use(backend):
        # kernel equal to the input: one output pixel, the full dot product
        x, w = rng.standard_normal((1, 3, 5, 4)), rng.standard_normal((2, 3, 5, 4))
        out = F.conv2d(mdl.tensor(x), mdl.tensor(w)).data
        np.testing.assert_allclose(out[0, :, 0, 0], np.einsum("chw,ochw->o", x[0], w), rtol=1e-12)
        # 1x1 kernel: a matrix product over channels at every pixel
        x, w = rng.standard_normal((2, 3, 5, 7)), rng.standard_normal((4, 3, 1, 1))
        out = F.conv2d(mdl.tensor(x), mdl.tensor(w)).data
        np.testing.assert_allclose(out, np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]), rtol=1e-12)
        # stride larger than the kernel: skipped pixels never matter
        x, w = rng.standard_normal((1, 1, 7, 7)), rng.standard_normal((1, 1, 2, 2))
        out = F.conv2d(mdl.tensor(x), mdl.tensor(w), stride=3).data   # (1, 1, 2, 2)
        expected = [[np.sum(x[0, 0, 3 * i:3 * i + 2, 3 * j:3 * j + 2] * w[0, 0]) for j in range(2)] for i in range(2)]
        np.testing.assert_allclose(out[0, 0], expected, rtol=1e-12)
        # odd sizes, batch 1, float32 stays float32
        x = rng.standard_normal((1, 2, 9, 5)).astype(np.float32)
        w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
        out = F.conv2d(mdl.tensor(x), mdl.tensor(w), padding=1)
        assert out.shape == (1, 3, 9, 5) and out.dtype == np.float32
        ref = scipy_conv2d(x.astype(np.float64), w.astype(np.float64), None, (1, 1), (1, 1), (1, 1), 1)
        np.testing.assert_allclose(out.data, ref, rtol=1e-4, atol=1e-4)


def test_only_the_needed_gradients_are_computed():
    rng = np.random.default_rng(4)
    x = mdl.tensor(rng.standard_normal((2, 3, 6, 6)))                 # no grad wanted
    w = mdl.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == (4, 3, 3, 3)
    # d(sum of outputs)/dW[o, c, i, j] = sum of the pixels tap (i, j) meets in channel c
    windows = np.lib.stride_tricks.sliding_window_view(x.data, (3, 3), axis=(2, 3))  # (N, C, 4, 4, 3, 3)
    np.testing.assert_allclose(w.grad, np.broadcast_to(windows.sum(axis=(0, 2, 3)), (4, 3, 3, 3)), rtol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "numpy", "python"])
def test_caller_arrays_are_not_modified(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    upstream = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    copies = [a.copy() for a in (x, w, b, upstream)]
    xt, wt, bt = (mdl.Tensor(a, requires_grad=True) for a in (x, w, b))
    with mdl.kernels.use(backend):
        out = F.conv2d(xt, wt, bt)
        out.backward(upstream)
        conv_kernels.conv2d_backward(upstream, x, w, (1, 1), (0, 0), (1, 1), 1)
        conv_kernels.conv2d_forward(x, w, (1, 1), (0, 0), (1, 1), 1)
    for before, after in zip(copies, (x, w, b, upstream)):
        np.testing.assert_array_equal(before, after)


@given(conv2d_configs())
@settings(max_examples=15)
def test_parallel_blocks_agree_with_numpy(cfg):
    """Force the thread pool on tiny shapes: samples split into blocks, one
    partial weight gradient per block, summed afterwards."""
    from minidl.kernels import conv_fast
    cfg = dict(cfg, n=cfg["n"] + 2)                       # at least 3 samples to split
    x, weight, bias = make_arrays(cfg)
    expected = run("conv2d", "numpy", x, weight, bias, options_of(cfg))
    old = conv_fast.PARALLEL_MIN_WORK
    conv_fast.PARALLEL_MIN_WORK = 0
    try:
        got = run("conv2d", "numba", x, weight, bias, options_of(cfg))
    finally:
        conv_fast.PARALLEL_MIN_WORK = old
    for name, a, b in zip(("out", "dx", "dw", "db"), got, expected):
        if a is not None:
            np.testing.assert_allclose(a, b, err_msg=name, **TOLERANCE[cfg["dtype"]])


def test_thread_settings_are_restored_after_a_call():
    import numba
    from threadpoolctl import threadpool_info
    from minidl.threads import single_threaded_blas
    threads = numba.get_num_threads()
    blas_before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    x = mdl.tensor(np.ones((8, 4, 32, 32), np.float32), requires_grad=True)   # big enough to go parallel
    w = mdl.tensor(np.ones((8, 4, 3, 3), np.float32), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert numba.get_num_threads() == threads
    blas_after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas_after[:len(blas_before)] == blas_before
    with single_threaded_blas():
        assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")
