"""batch_norm's kernels (minidl/kernels/batch_norm.py): the compiled loops,
the same loops interpreted and the NumPy twin against float64 formulas
written here and against each other, forward and all three gradients; the op
(F.batch_norm, nn.BatchNorm1d/2d) on the kernel path against the op on the
NumPy twin (the readable rule) over drawn shapes (N = 1 and 2 and more,
1x1 maps, (N, C) and (N, C, L)), dtypes, training and eval, affine on and
off, running statistics on and off, momentum None and non-contiguous inputs;
proof that the compiled loops are what the default backend runs; bad input
refused before a kernel runs; inputs never modified.

Tolerances: float64 to 1e-12 relative to the largest value; float32 to 2e-6 of
it for the output and 2e-5 for the gradients (statistics and sums accumulate
in float64, each element's arithmetic is float32), and 1e-4 where the
float32 twin's statistics (NumPy's float32 mean and var) are compared.
"""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels, nn
from minidl.kernels import batch_norm as kernel
from minidl.kernels.batch_norm import batch_norm_backward, batch_norm_forward, batch_norm_normalize
from minidl.threads import SMALL, numba_threads

from layer_check import gradcheck_module
from threaded_rerun import in_two_thread_child

TWO_THREAD_RUN = "MINIDL_TEST_BATCH_NORM_THREADS"        # set in the child that repeats a thread-count test


BACKENDS = ("numba", "numpy", "python")
EPS = 1e-5


def formulas(x, weight, bias, grad, eps=EPS):
    """Forward and gradients of (N, C, S) in float64, written out per channel
    (shares no code with minidl)."""
    x, weight, bias, grad = (np.asarray(a, np.float64) for a in (x, weight, bias, grad))
    out, grad_x = np.empty_like(x), np.empty_like(x)
    grad_weight, grad_bias = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for c in range(x.shape[1]):
        values, g = x[:, c].ravel(), grad[:, c].ravel()
        m = len(values)
        mu = sum(values) / m
        var = sum((v - mu) ** 2 for v in values) / m
        inv_std = 1 / np.sqrt(var + eps)
        x_hat = (values - mu) * inv_std
        out[:, c] = (x_hat * weight[c] + bias[c]).reshape(x.shape[0], -1)
        grad_x[:, c] = (weight[c] * inv_std * (g - g.mean() - x_hat * (g * x_hat).mean())).reshape(x.shape[0], -1)
        grad_weight[c] = (g * x_hat).sum()
        grad_bias[c] = g.sum()
    return out, grad_x, grad_weight, grad_bias


def run(backend, x, weight, bias, grad):
    with kernels.use(backend):
        out, mean, var, inv_std = batch_norm_forward(x, weight, bias, EPS)
        return (out,) + tuple(batch_norm_backward(grad, x, weight, mean, inv_std, True))


def assert_close(got, want, dtype, what, forward, terms=1.0):
    """Relative to the largest value, or to `terms` (the largest term grad_x is a difference of)."""
    scale = max(1.0, float(np.abs(want).max()), terms)
    tol = (2e-6 if forward else 2e-5) if dtype == np.float32 else 1e-12
    assert got.dtype == dtype, what
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


@st.composite
def kernel_cases(draw):
    samples = draw(st.sampled_from([1, 2, 3, 9]))
    channels = draw(st.integers(1, 6))
    spatial = draw(st.sampled_from([1, 2, 5, 16, 130]))            # 130 > CHUNK / C for C >= 4: two chunks
    if samples * spatial < 2:
        spatial = 2
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    offset = draw(st.sampled_from([0.0, 20.0, 1e3]))              # channels far from 0
    x = (rng.standard_normal((samples, channels, spatial)) * 3 + offset).astype(dtype)
    weight, bias = (rng.standard_normal(channels).astype(dtype) for _ in range(2))
    grad = rng.standard_normal(x.shape).astype(dtype)
    return x, weight, bias, grad


@given(case=kernel_cases())
@settings(deadline=None, max_examples=40)
def test_every_backend_matches_the_formulas_and_leaves_inputs_alone(case):
    x, weight, bias, grad = case
    before = [a.copy() for a in case]
    want = formulas(x, weight, bias, grad)
    terms = float(np.abs(grad).max() * np.abs(weight).max() / np.sqrt(EPS + x.var(axis=(0, 2)).min()))
    for backend in BACKENDS:
        got = run(backend, x, weight, bias, grad)
        for i, (name, g, w) in enumerate(zip(("out", "grad_x", "grad_weight", "grad_bias"), got, want)):
            tolerance_dtype = x.dtype
            if backend == "numpy" and x.dtype == np.float32:          # NumPy's float32 statistics
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(w).max(), terms),
                                           err_msg=f"{backend} {name}")
                continue
            assert_close(g, w, tolerance_dtype, f"{backend} {name}", forward=i == 0,
                         terms=terms if name == "grad_x" else 1.0)
    for a, b in zip(case, before):
        np.testing.assert_array_equal(a, b)


def test_float32_channel_far_from_zero_keeps_float32_precision():
    rng = np.random.default_rng(1)
    x = (1000.0 + 0.4 * rng.standard_normal((16, 3, 10))).astype(np.float32)
    weight, bias = np.ones(3, np.float32), np.zeros(3, np.float32)
    out, _, _, _ = batch_norm_forward(x, weight, bias, EPS)
    want = formulas(x, weight, bias, x)[0]
    assert np.abs(out - want).max() < 2e-5                       # a float32 mean alone would miss by ~1e-4


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_float32_channel_far_from_zero_keeps_float32_precision_in_the_backward(backend):
    """The backward recomputes x_hat with the mean split in two float32 numbers,
    as the forward does: channels at 1000 with standard deviation 0.4 give
    gradients within float32 rounding of the float64 formulas; with the
    float32 mean alone x_hat would shift by up to 3e-5 / 0.4 ~ 1e-4, and
    grad_x and grad_weight with it. (The loops, compiled and interpreted; the
    NumPy twin subtracts a float32 mean, see the tolerances above.)"""
    rng = np.random.default_rng(2)
    x = (1000.0 + 0.4 * rng.standard_normal((16, 6, 10))).astype(np.float32)
    weight, bias = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    got = run(backend, x, weight, bias, grad)
    for what, g, w in zip(("out", "grad_x", "grad_weight", "grad_bias"), got, formulas(x, weight, bias, grad)):
        error = np.abs(g.astype(np.float64) - w).max() / np.abs(w).max()
        assert error < 1e-5, f"{what} off by {error:.1e} of its largest value"


def test_normalize_with_given_statistics_and_constant_statistics_backward():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5))
    weight, bias, grad = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal((3, 4, 5))
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    inv_std = 1 / np.sqrt(var + EPS)
    x_hat = (x - mean[:, None]) * inv_std[:, None]
    for backend in BACKENDS:
        with kernels.use(backend):
            out = batch_norm_normalize(x, weight, bias, mean, inv_std)
            grad_x, grad_weight, grad_bias = batch_norm_backward(grad, x, weight, mean, inv_std, False)
        np.testing.assert_allclose(out, x_hat * weight[:, None] + bias[:, None], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grad_x, grad * (weight * inv_std)[:, None], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grad_weight, (grad * x_hat).sum(axis=(0, 2)), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grad_bias, grad.sum(axis=(0, 2)), rtol=1e-12, atol=1e-12)


def test_result_does_not_depend_on_the_thread_count():
    if not in_two_thread_child(__file__, "test_result_does_not_depend_on_the_thread_count", TWO_THREAD_RUN):
        return                                                   # checked in a child with two threads
    rng = np.random.default_rng(3)
    # 4608 positions, several chunks; above threads.SMALL elements, below which the kernel runs one thread
    x = rng.standard_normal((64, 32, 144)).astype(np.float32)
    assert x.size >= SMALL
    weight, bias = rng.standard_normal(32).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    results = []
    for threads in (1, 2):
        with numba_threads(threads):
            assert numba.get_num_threads() == threads
            results.append(run("numba", x, weight, bias, x[::-1].copy()))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


# ---- the op: kernel path against the NumPy rule -------------------------------------------
@st.composite
def op_cases(draw):
    rank = draw(st.sampled_from([2, 3, 4]))
    samples = draw(st.sampled_from([1, 2, 3]))
    channels = draw(st.integers(1, 5))
    spatial = tuple(draw(st.sampled_from([1, 2, 3])) for _ in range(rank - 2))    # 1x1 maps too
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    training = draw(st.booleans())
    if training and samples * int(np.prod(spatial, dtype=np.int64)) < 2:
        samples = 2                                              # training needs two values per channel
    shape = (samples, channels) + spatial
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if layout == "transposed":
        x = (rng.standard_normal(shape[::-1]) * 2 + 1).astype(dtype).T
    elif layout == "strided":
        x = (rng.standard_normal(shape[:-1] + (2 * shape[-1],)) * 2 + 1).astype(dtype)[..., ::2]
    else:
        x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    affine = draw(st.booleans())
    running = draw(st.booleans()) or not training                # eval uses the running statistics
    momentum = draw(st.sampled_from([0.1, 0.7, 1.0]))
    return dict(x=x, affine=affine, running=running, training=training, momentum=momentum,
                weight=rng.standard_normal(channels).astype(dtype), bias=rng.standard_normal(channels).astype(dtype),
                mean=rng.standard_normal(channels).astype(dtype), var=rng.uniform(0.5, 2, channels).astype(dtype),
                grad=rng.standard_normal(shape).astype(dtype))


def run_op(backend, case):
    """F.batch_norm's output, updated running statistics and gradients under `backend`."""
    x = mdl.tensor(case["x"], requires_grad=True)
    weight = mdl.tensor(case["weight"].copy(), requires_grad=True) if case["affine"] else None
    bias = mdl.tensor(case["bias"].copy(), requires_grad=True) if case["affine"] else None
    mean = case["mean"].copy() if case["running"] else None
    var = case["var"].copy() if case["running"] else None
    with kernels.use(backend):
        out = F.batch_norm(x, mean, var, weight, bias, training=case["training"], momentum=case["momentum"])
        out.backward(case["grad"])
    grads = [x.grad] + ([weight.grad, bias.grad] if case["affine"] else [])
    return out.data, mean, var, grads


@given(case=op_cases())
@settings(deadline=None, max_examples=60)
def test_op_on_the_kernel_matches_the_op_on_the_numpy_rule(case):
    before = case["x"].copy()
    out, mean, var, grads = run_op("numba", case)
    rule_out, rule_mean, rule_var, rule_grads = run_op("numpy", case)
    np.testing.assert_array_equal(case["x"], before)                # the input is not modified
    tol = 1e-4 if case["x"].dtype == np.float32 else 1e-11
    assert out.dtype == case["x"].dtype and out.shape == case["x"].shape
    np.testing.assert_allclose(out, rule_out, rtol=tol, atol=tol)
    if case["running"]:
        np.testing.assert_allclose(mean, rule_mean, rtol=tol, atol=tol)
        np.testing.assert_allclose(var, rule_var, rtol=tol, atol=tol)
        if not case["training"]:                                  # eval leaves them alone
            np.testing.assert_array_equal(mean, case["mean"])
            np.testing.assert_array_equal(var, case["var"])
    for got, want in zip(grads, rule_grads):
        assert got.dtype == want.dtype and got.shape == want.shape
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol * 10 * scale)


def test_running_statistics_follow_the_momentum_formula_on_the_kernel_path():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3, 4, 4)) * 2 + 5
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    new_mean, new_var = mean.copy(), var.copy()
    F.batch_norm(mdl.tensor(x), new_mean, new_var, training=True, momentum=0.3)
    batch_mean = x.mean(axis=(0, 2, 3))
    unbiased = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(new_mean, 0.7 * mean + 0.3 * batch_mean, rtol=1e-13)
    np.testing.assert_allclose(new_var, 0.7 * var + 0.3 * unbiased, rtol=1e-13)


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (7, 3)), (nn.BatchNorm1d, (2, 3, 4)),
                                          (nn.BatchNorm2d, (2, 3, 1, 1)), (nn.BatchNorm2d, (1, 3, 2, 3))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_modules_match_the_numpy_rule_over_training_and_eval_steps(layer, shape, momentum):
    rng = np.random.default_rng(5)
    modules = {}
    for backend in ("numba", "numpy"):
        bn = layer(3, momentum=momentum)
        bn.weight.data[...] = np.linspace(0.5, 1.5, 3)
        bn.bias.data[...] = np.linspace(-1, 1, 3)
        modules[backend] = bn
    for step in range(4):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        outputs = {}
        for backend, bn in modules.items():
            bn.train(step != 2)
            with kernels.use(backend):
                outputs[backend] = bn(mdl.tensor(x)).data
        np.testing.assert_allclose(outputs["numba"], outputs["numpy"], rtol=1e-4, atol=1e-4)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(modules["numba"], name).data,
                                       getattr(modules["numpy"], name).data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (5, 2)), (nn.BatchNorm1d, (3, 2, 3)),
                                          (nn.BatchNorm2d, (3, 2, 2, 3)), (nn.BatchNorm2d, (4, 2, 1, 1))])
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_float64_through_the_modules_in_training(layer, shape, affine):
    rng = np.random.default_rng(6)
    bn = layer(2, affine=affine)
    if affine:
        bn.weight.data[...] = rng.standard_normal(2)
        bn.bias.data[...] = rng.standard_normal(2)
    bn.train()
    with kernels.use("numba"):
        assert gradcheck_module(bn, rng.standard_normal(shape) * 2 + 1)
    assert bn.running_mean.dtype == np.float64                  # double(): the kernel's float64 path


def test_the_default_backend_runs_the_compiled_loops(monkeypatch):
    calls = []
    for name in ("batch_norm_forward_loops", "batch_norm_backward_loops", "batch_norm_normalize_loops"):
        original = getattr(kernel, name)

        def counting(*args, _original=original, _name=name):
            calls.append(_name)
            return _original(*args)
        monkeypatch.setattr(kernel, name, counting)
    bn = nn.BatchNorm2d(3)
    x = mdl.tensor(np.random.default_rng(7).standard_normal((4, 3, 2, 2)).astype(np.float32), requires_grad=True)
    bn(x).sum().backward()
    bn.eval()
    bn(x)
    assert calls == ["batch_norm_forward_loops", "batch_norm_backward_loops", "batch_norm_normalize_loops"]


def test_other_dtypes_and_mixed_dtypes_take_the_numpy_twin():
    rng = np.random.default_rng(9)
    x16 = rng.standard_normal((4, 3, 2)).astype(np.float16)
    out = F.batch_norm(mdl.tensor(x16), None, None, training=True)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out.data, formulas(x16, np.ones(3), np.zeros(3), x16)[0], atol=2e-2)
    x32 = rng.standard_normal((4, 3, 2)).astype(np.float32)
    weight64 = mdl.tensor(rng.standard_normal(3), requires_grad=True)             # float64 weight
    out = F.batch_norm(mdl.tensor(x32), None, None, weight64, training=True)
    assert out.dtype == np.float64                                               # NumPy's promotion
    np.testing.assert_allclose(out.data, formulas(x32, weight64.data, np.zeros(3), x32)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: batch_norm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(3), EPS), r"shape \(N, C, S\)"),
    (lambda: batch_norm_forward(np.zeros((2, 3, 4)), np.ones(2), np.zeros(3), EPS), r"weight must have shape \(3,\)"),
    (lambda: batch_norm_normalize(np.zeros((2, 3, 4)), np.ones(3), np.zeros(3), np.zeros(4), np.ones(3)),
     r"mean must have shape \(3,\)"),
    (lambda: batch_norm_backward(np.zeros((2, 3, 5)), np.zeros((2, 3, 4)), np.ones(3), np.zeros(3), np.ones(3),
                                 True), r"grad must have x's shape"),
])
def test_bad_kernel_input_raises_before_any_kernel(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_compiled_float32_backward_sums_over_samples_in_float64():
    """The backward's per-channel sums of grad run in float64 for float32
    input (module docstring): with grad 2**25 in sample 0 and -2**25 in sample
    2 (at equal x, so the grad * x_hat sums cancel as well) and small values in
    sample 1, grad_bias is the small values' sum and the small sample's grad_x
    follows the formulas; a float32 sum over the samples loses the small
    values next to 2**25."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 5)).astype(np.float32)
    x[2] = x[0]
    weight, bias = rng.standard_normal(2).astype(np.float32), np.zeros(2, np.float32)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    grad[0], grad[2] = 2.0 ** 25, -2.0 ** 25
    _, want_grad_x, _, want_grad_bias = formulas(x, weight, bias, grad)
    _, grad_x, _, grad_bias = run("numba", x, weight, bias, grad)
    np.testing.assert_allclose(grad_bias, want_grad_bias, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad_x[1], want_grad_x[1], rtol=1e-4, atol=1e-4)
