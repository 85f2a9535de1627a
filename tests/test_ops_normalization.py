"""F.batch_norm and F.layer_norm: forward against hand-written per-channel /
per-sample loops, running-statistics updates over several steps, gradcheck
in every mode, and errors that name the op and the shapes."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl.gradcheck import gradcheck


# ---- independent references: explicit loops, sums written out ---------------------
def reference_batch_norm(x, mean_run, var_run, weight, bias, training, momentum, eps):
    """Per channel, with the statistics written as sums; returns (y, new_mean, new_var)."""
    x = np.asarray(x, dtype=np.float64)
    channels = x.shape[1]
    y = np.empty_like(x)
    new_mean = None if mean_run is None else np.array(mean_run, dtype=np.float64)
    new_var = None if var_run is None else np.array(var_run, dtype=np.float64)
    for c in range(channels):
        values = x[:, c].ravel()
        m = len(values)
        if training or mean_run is None:
            mu = sum(values) / m
            sq = sum((v - mu) ** 2 for v in values)
            var = sq / m
            if training and mean_run is not None:
                new_mean[c] = (1 - momentum) * mean_run[c] + momentum * mu
                new_var[c] = (1 - momentum) * var_run[c] + momentum * sq / (m - 1)
        else:
            mu, var = mean_run[c], var_run[c]
        scale = 1.0 if weight is None else weight[c]
        shift = 0.0 if bias is None else bias[c]
        y[:, c] = (x[:, c] - mu) / np.sqrt(var + eps) * scale + shift
    return y, new_mean, new_var


def reference_layer_norm(x, k, weight, bias, eps):
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:x.ndim - k]
    y = np.empty_like(x)
    for index in np.ndindex(*lead):
        values = x[index].ravel()
        mu = sum(values) / len(values)
        var = sum((v - mu) ** 2 for v in values) / len(values)
        out = (x[index] - mu) / np.sqrt(var + eps)
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        y[index] = out
    return y


def random_array(rng, shape, dtype=np.float64, transposed=False):
    """A (possibly non-contiguous, transposed-view) array of the given shape."""
    if transposed:
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    return rng.standard_normal(shape).astype(dtype)


shapes_bn = st.one_of(
    st.tuples(st.integers(2, 5), st.integers(1, 4)),
    st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(2, 5)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(2, 4)),
)


# ---- batch_norm forward -----------------------------------------------------------
@given(shape=shapes_bn, training=st.booleans(), affine=st.booleans(), transposed=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_batch_norm_forward_matches_per_channel_loop(shape, training, affine, transposed, dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, transposed) * 3 + 1
    c = shape[1]
    mean_run = rng.standard_normal(c).astype(dtype)
    var_run = rng.uniform(0.5, 2.0, c).astype(dtype)
    weight = rng.standard_normal(c).astype(dtype) if affine else None
    bias = rng.standard_normal(c).astype(dtype) if affine else None
    x_before = x.copy()
    expected, exp_mean, exp_var = reference_batch_norm(x, mean_run.copy(), var_run.copy(), weight,
                                                       bias, training, 0.1, 1e-5)
    out = F.batch_norm(mdl.tensor(x), mean_run, var_run,
                       None if weight is None else mdl.tensor(weight),
                       None if bias is None else mdl.tensor(bias), training=training)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(mean_run, exp_mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(var_run, exp_var, rtol=tol, atol=tol)
    np.testing.assert_array_equal(x, x_before)            # the input is not modified


def test_batch_norm_running_stats_over_several_steps_follow_momentum_formula():
    rng = np.random.default_rng(1)
    mean_run, var_run = np.zeros(3), np.ones(3)
    ref_mean, ref_var = mean_run.copy(), var_run.copy()
    for step in range(4):
        x = rng.standard_normal((6, 3, 2, 2)) * (step + 1) + step
        F.batch_norm(mdl.tensor(x), mean_run, var_run, training=True, momentum=0.3)
        _, ref_mean, ref_var = reference_batch_norm(x, ref_mean, ref_var, None, None, True, 0.3, 1e-5)
        np.testing.assert_allclose(mean_run, ref_mean, rtol=1e-12)
        np.testing.assert_allclose(var_run, ref_var, rtol=1e-12)
    assert not np.allclose(mean_run, 0)                   # the buffers really moved


def test_batch_norm_updates_tensor_buffers_in_place_and_eval_does_not():
    rng = np.random.default_rng(2)
    mean_run, var_run = mdl.tensor(np.zeros(2, np.float32)), mdl.tensor(np.ones(2, np.float32))
    x = mdl.tensor(rng.standard_normal((5, 2)).astype(np.float32) + 4)
    F.batch_norm(x, mean_run, var_run, training=True)
    np.testing.assert_allclose(mean_run.data, 0.1 * x.data.mean(axis=0), rtol=1e-5)
    saved = mean_run.data.copy(), var_run.data.copy()
    F.batch_norm(x, mean_run, var_run, training=False)
    np.testing.assert_array_equal(mean_run.data, saved[0])
    np.testing.assert_array_equal(var_run.data, saved[1])


def test_batch_norm_train_and_eval_give_different_outputs():
    rng = np.random.default_rng(3)
    x = mdl.tensor(rng.standard_normal((8, 3)) * 5 + 2)
    mean_run, var_run = np.zeros(3), np.ones(3)
    train = F.batch_norm(x, mean_run.copy(), var_run.copy(), training=True).data
    evaluated = F.batch_norm(x, mean_run, var_run, training=False).data
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-12)     # batch stats: centred
    np.testing.assert_allclose(evaluated, x.data / np.sqrt(1 + 1e-5))  # running stats 0/1
    assert not np.allclose(train, evaluated)


# ---- batch_norm backward ----------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4), (2, 3, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_gradcheck(shape, training, affine):
    rng = np.random.default_rng(4)
    c = shape[1]
    x = rng.standard_normal(shape)
    mean_run, var_run = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    if affine:
        w, b = rng.standard_normal(c), rng.standard_normal(c)
        fn = lambda x, w, b: F.batch_norm(x, mean_run.copy(), var_run.copy(), w, b, training=training)  # noqa: E731
        assert gradcheck(fn, [x, w, b])
    else:
        fn = lambda x: F.batch_norm(x, mean_run.copy(), var_run.copy(), training=training)  # noqa: E731
        assert gradcheck(fn, [x])


@given(shape=shapes_bn, seed=st.integers(0, 2**16), transposed=st.booleans())
def test_batch_norm_gradcheck_property(shape, seed, transposed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, transposed=transposed)
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                     [x, w, b], directions=4)


# ---- batch_norm errors -----------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda x: F.batch_norm(x, np.zeros(4), np.ones(4)), "running_mean must have shape (3,)"),
    (lambda x: F.batch_norm(x, None, None, training=False), "training=False needs"),
    (lambda x: F.batch_norm(mdl.tensor(x.data[:1, :, :1, :1]), None, None, training=True),
     "more than one value"),
    (lambda x: F.batch_norm(x, None, None, mdl.tensor(np.ones(2)), training=True), "weight must"),
    (lambda x: F.batch_norm(mdl.tensor(x.data.ravel()), None, None, training=True), "(N, C, ...)"),
    (lambda x: F.batch_norm(x, np.zeros(3), None, training=True), "both running_mean"),
])
def test_batch_norm_bad_input_raises_value_error_naming_op(call, message):
    x = mdl.tensor(np.ones((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="batch_norm") as info:
        call(x)
    assert message in str(info.value)


def test_batch_norm_integer_input_raises_type_error():
    with pytest.raises(TypeError, match="batch_norm"):
        F.batch_norm(mdl.tensor(np.ones((2, 3), dtype=np.int64)), None, None, training=True)


@pytest.mark.parametrize("mean, var, message", [
    # integer buffers cannot hold the moving average (NumPy's in-place cast error, before)
    (np.zeros(3, np.int64), np.ones(3, np.int64), "running_mean must be floating point, got dtype int64"),
    # lists: the type is named first (before, an AttributeError about .shape)
    ([0.0] * 3, [1.0] * 3, "running_mean and running_var must be ndarrays or Tensors"),
])
def test_batch_norm_running_stats_of_the_wrong_type_raise_type_error_naming_op(mean, var, message):
    with pytest.raises(TypeError, match="batch_norm") as info:
        F.batch_norm(mdl.tensor(np.ones((2, 3))), mean, var, training=True)
    assert message in str(info.value)


# ---- layer_norm -----------------------------------------------------------------
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
       norm=st.lists(st.integers(1, 4), min_size=1, max_size=2).filter(lambda s: np.prod(s) > 1),
       affine=st.booleans(), transposed=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_layer_norm_forward_matches_per_sample_loop(lead, norm, affine, transposed, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + tuple(norm)
    x = random_array(rng, shape, dtype, transposed) * 2 - 1
    weight = rng.standard_normal(norm).astype(dtype) if affine else None
    bias = rng.standard_normal(norm).astype(dtype) if affine else None
    expected = reference_layer_norm(x, len(norm), weight, bias, 1e-5)
    out = F.layer_norm(mdl.tensor(x), tuple(norm), None if weight is None else mdl.tensor(weight),
                       None if bias is None else mdl.tensor(bias))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_allclose(out.data, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape, normalized_shape", [((3, 4), 4), ((2, 3, 4), (4,)), ((2, 2, 3), (2, 3))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_gradcheck(shape, normalized_shape, affine):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    if affine:
        w, b = rng.standard_normal(ns), rng.standard_normal(ns)
        assert gradcheck(lambda x, w, b: F.layer_norm(x, normalized_shape, w, b), [x, w, b])
    else:
        assert gradcheck(lambda x: F.layer_norm(x, normalized_shape), [x])


def float64_layer_norm_and_grads(x, weight, bias, g, eps=1e-5):
    """layer_norm over the last axis and its three gradients, in float64 from the formulas."""
    x, weight, bias, g = (np.asarray(a, np.float64) for a in (x, weight, bias, g))
    mean = x.mean(axis=-1, keepdims=True)
    inv_std = 1 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    x_hat = (x - mean) * inv_std
    gh = g * weight
    grad_x = inv_std * (gh - gh.mean(axis=-1, keepdims=True)
                        - x_hat * (gh * x_hat).mean(axis=-1, keepdims=True))
    lead = tuple(range(x.ndim - 1))
    return x_hat * weight + bias, grad_x, (g * x_hat).sum(axis=lead), g.sum(axis=lead)


@pytest.mark.parametrize("shape", [(32, 64, 64), (4, 3000), (7, 1, 5)])
def test_float32_layer_norm_and_its_gradients_agree_with_float64_formulas(shape):
    # The statistics and sums accumulate in float64, each element's arithmetic runs
    # in float32: within these tolerances of the float64 formulas.
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(shape) * 3 + 20).astype(np.float32)         # an offset, as activations have
    weight, bias = (rng.standard_normal(shape[-1]).astype(np.float32) for _ in range(2))
    g = rng.standard_normal(shape).astype(np.float32)
    xt, wt, bt = (mdl.tensor(a, requires_grad=True) for a in (x, weight, bias))
    out = F.layer_norm(xt, shape[-1], wt, bt)
    out.backward(gradient=g)
    expected = float64_layer_norm_and_grads(x, weight, bias, g)
    for got, want in zip((out.data, xt.grad, wt.grad, bt.grad), expected):
        assert got.dtype == np.float32
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5 * scale)


@pytest.mark.parametrize("call, message", [
    (lambda x: F.layer_norm(x, (3,)), "must end with normalized_shape (3,)"),
    (lambda x: F.layer_norm(x, 4, weight=mdl.tensor(np.ones(3))), "weight must have shape (4,)"),
    (lambda x: F.layer_norm(x, (2, 3, 4, 5)), "(2, 3, 4)"),
])
def test_layer_norm_bad_input_raises_value_error(call, message):
    x = mdl.tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="layer_norm") as info:
        call(x)
    assert message in str(info.value)


def test_gradcheck_would_catch_a_wrong_layer_norm_backward(monkeypatch):
    """The gradcheck above can fail: drop the mean-correction terms and it does."""
    from minidl.ops import normalization
    from minidl.gradcheck import GradcheckError

    right = normalization.layer_norm_backward

    def wrong(grad, x, weight, mean, inv_std):
        grad_x, grad_weight, grad_bias = right(grad, x, weight, mean, inv_std)
        return grad * weight * inv_std[:, None], grad_weight, grad_bias   # forgets the statistics depend on x

    monkeypatch.setattr(normalization, "layer_norm_backward", wrong)
    x = np.random.default_rng(6).standard_normal((2, 5))
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: F.layer_norm(x, 5), [x])


@pytest.mark.parametrize("training", [True, False])
def test_float32_stays_float32_through_forward_and_backward(training):
    rng = np.random.default_rng(7)
    x = mdl.tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32), requires_grad=True)
    w = mdl.tensor(np.ones(3, np.float32), requires_grad=True)
    b = mdl.tensor(np.zeros(3, np.float32), requires_grad=True)
    out = F.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32), w, b, training=training)
    ln = F.layer_norm(x, (2, 2))
    assert out.dtype == ln.dtype == np.float32
    # the Functions' own gradients (leaf .grad would be cast on accumulation and hide a promotion)
    grads = list(out.grad_fn.backward(np.ones(out.shape, np.float32)))
    grads += list(ln.grad_fn.backward(np.ones(ln.shape, np.float32)))
    assert [g.dtype for g in grads] == [np.float32] * 4
