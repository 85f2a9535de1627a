"""logsumexp where exp would overflow or underflow, against SciPy; float32 and float64."""
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
