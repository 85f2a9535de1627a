"""logsumexp where exp would overflow or underflow, against SciPy; float32 and
float64. var over too few elements (one or none) and logsumexp over none, by
hand and against PyTorch; float32 var, sum and mean over a million rows, against float64."""
import warnings

import numpy as np
import pytest
import scipy.special

import minidl as mdl


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_of_values_a_thousand_apart_matches_scipy_and_its_gradient_is_the_softmax(dtype):
    values = np.array([[1000.0, -1000.0, 999.0], [-800.0, -801.0, -1000.0]], dtype=dtype)   # (2, 3)
    x = mdl.tensor(values, requires_grad=True)
    out = mdl.logsumexp(x, dim=1)                                          # (2,)
    expected = scipy.special.logsumexp(values.astype(np.float64), axis=1)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-6 if dtype == np.float32 else 1e-12)
    out.sum().backward()
    softmax = scipy.special.softmax(values.astype(np.float64), axis=1)
    assert np.all(np.isfinite(x.grad))
    # exp(a - out): out near 1000 is rounded to float32's spacing there (6.1e-5),
    # which moves every softmax value by up to that relative amount.
    np.testing.assert_allclose(x.grad, softmax, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-7)


def test_logsumexp_of_a_row_of_minus_infinity_is_minus_infinity_without_a_warning():
    values = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = mdl.logsumexp(mdl.tensor(values), dim=1)
    np.testing.assert_array_equal(out.data, [-np.inf, 0.0])


@pytest.mark.parametrize("unbiased", [True, False])
def test_var_over_too_few_elements_is_nan_like_pytorch(unbiased):
    """N - 1 = -1 for an empty dim: the unbiased sum of squares 0 / -1 once gave -0.0."""
    empty, single = np.zeros((0, 3)), np.array([[1.5, -2.0, 4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                    # NumPy's mean of nothing
        out_empty = mdl.tensor(empty).var(0, unbiased=unbiased).data
    out_single = mdl.tensor(single).var(0, unbiased=unbiased).data
    assert np.isnan(out_empty).all()                                       # 0 / 0 or 0 / -1: no variance
    np.testing.assert_array_equal(out_single, [np.nan] * 3 if unbiased else [0.0] * 3)
    torch = pytest.importorskip("torch")
    correction = 1 if unbiased else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)                       # torch: degrees of freedom <= 0
        np.testing.assert_array_equal(out_empty, torch.tensor(empty).var(0, correction=correction).numpy())
        np.testing.assert_array_equal(out_single, torch.tensor(single).var(0, correction=correction).numpy())


def test_logsumexp_over_an_empty_dim_is_minus_infinity_like_pytorch():
    """The log of an empty sum; NumPy's max of nothing once raised instead."""
    x = mdl.tensor(np.zeros((0, 3)), requires_grad=True)
    out = x.logsumexp(0)
    np.testing.assert_array_equal(out.data, [-np.inf] * 3)
    out.sum().backward()
    assert x.grad.shape == (0, 3)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(out.data, torch.zeros((0, 3), dtype=torch.float64).logsumexp(0).numpy())


def test_float32_var_over_a_million_rows_is_summed_in_float64():
    """Over a non-last axis NumPy adds float32 rows one after another: the variance of
    2**20 rows of 100 + N(0, 1) came out about 4e-4 off. Now within float32 rounding."""
    x = (100 + np.random.default_rng(0).standard_normal((2 ** 20, 2))).astype(np.float32)
    out = mdl.tensor(x).var(0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, x.astype(np.float64).var(axis=0, ddof=1), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_float32_sum_and_mean_over_a_million_rows_agree_with_float64(reduction):
    """Over a non-last axis NumPy adds float32 rows one after another, so the
    sum of 2**20 rows of 1 + U(0, 1) drifted about 1e-5 from the exact value;
    summed in float64 and rounded once, it is within float32 rounding. The
    result stays float32 and the gradient is unchanged (1, or 1/N)."""
    x = (1 + np.random.default_rng(1).random((2 ** 20, 3))).astype(np.float32)
    t = mdl.tensor(x, requires_grad=True)
    out = getattr(t, reduction)(dim=0)                                     # (3,)
    expected = getattr(x.astype(np.float64), reduction)(axis=0)
    assert out.dtype == np.float32 and out.shape == (3,)
    np.testing.assert_allclose(out.data, expected, rtol=1.2e-7)
    out.sum().backward()
    assert t.grad.dtype == np.float32
    np.testing.assert_array_equal(t.grad[:2], np.full((2, 3), 1.0 if reduction == "sum" else 2.0 ** -20))


def test_float32_sum_over_every_axis_and_with_keepdim_stays_float32():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    t = mdl.tensor(x)
    for out, expected in ((t.sum(), x.astype(np.float64).sum()),
                          (t.sum(dim=(0, 2), keepdim=True), x.astype(np.float64).sum(axis=(0, 2), keepdims=True)),
                          (t.mean(dim=1), x.astype(np.float64).mean(axis=1))):
        assert out.dtype == np.float32 and out.shape == np.shape(expected)
        np.testing.assert_allclose(out.data, expected, rtol=1.2e-7)
