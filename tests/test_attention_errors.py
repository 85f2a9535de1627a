"""scaled_dot_product_attention and attention_weights reject bad arguments with
a ValueError/TypeError naming the op, the shapes and what was expected, before
any kernel runs; a hypothesis fuzz throws malformed arguments at them."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl.functional as F

SDPA = F.scaled_dot_product_attention


# ---------------------------------------------------------------- bad input

BAD = [
    (dict(q=(3,)), ValueError, r"query must have shape .* got shape \(3,\)"),
    (dict(k=(2, 5, 4)), ValueError, r"same last dim \(E\)"),
    (dict(v=(2, 6, 2)), ValueError, r"key \(2, 5, 3\) and value \(2, 6, 2\)"),
    (dict(q=(3, 4, 3)), ValueError, r"batch dims .* cannot be broadcast"),
    (dict(mask=np.ones((5, 4), bool)), ValueError, r"attn_mask of shape \(5, 4\) cannot be broadcast"),
    (dict(mask=np.ones((2, 1, 4, 5), bool)), ValueError, r"attn_mask of shape \(2, 1, 4, 5\)"),
    (dict(mask=np.array(True)), ValueError, r"attn_mask of shape \(\) cannot be broadcast"),   # 0-d: no (L, S)
    (dict(mask=np.ones((4, 5), np.int64)), TypeError, r"attn_mask must be bool .* int64"),
    (dict(mask=np.ones((4, 5), bool), is_causal=True), ValueError, r"not both"),
    (dict(dtype=np.int64), TypeError, r"query must be float32 or float64, got dtype int64"),
    (dict(dtype=np.float16), TypeError, r"float32 or float64"),
    (dict(dropout_p=1.0), ValueError, r"dropout_p must be in \[0, 1\)"),
    (dict(dropout_p=-0.1), ValueError, r"dropout_p"),
    (dict(dropout_p="0.1"), TypeError, r"dropout_p"),
    (dict(scale=float("nan")), ValueError, r"scale must be finite"),
    (dict(scale="big"), TypeError, r"scale"),
    (dict(is_causal=1), TypeError, r"is_causal must be a bool"),
    (dict(q=(2, 0, 3)), ValueError, r"empty"),
]


@pytest.mark.parametrize("change,error,message", BAD)
def test_bad_input_names_op_and_shapes(change, error, message):
    shapes = dict(q=(2, 4, 3), k=(2, 5, 3), v=(2, 5, 3))
    shapes.update({n: change[n] for n in "qkv" if n in change})
    dtype = change.get("dtype", np.float64)
    q, k, v = (np.ones(shapes[n], dtype) for n in "qkv")
    if "v" not in change and "k" in change:
        v = np.ones(change["k"][:-1] + (3,), dtype)
    if "v" in change:
        k = np.ones((2, 5, 3), dtype)
    kwargs = {n: change[n] for n in ("dropout_p", "scale", "is_causal") if n in change}
    with pytest.raises(error, match="scaled_dot_product_attention: .*" + message):
        SDPA(q, k, v, attn_mask=change.get("mask"), **kwargs)


def test_mixed_dtypes_and_non_arrays_raise_type_error():
    q = np.ones((4, 3), np.float32)
    with pytest.raises(TypeError, match="share one dtype.*float32.*float64"):
        SDPA(q, np.ones((5, 3)), np.ones((5, 3)))
    with pytest.raises(TypeError, match="query must be a Tensor or an ndarray, got list"):
        SDPA([[1.0]], q, q)
    with pytest.raises(ValueError, match="attention_weights: query"):
        F.attention_weights(np.ones(3), np.ones((5, 3)))


junk = st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=2),
                 st.booleans(), st.lists(st.integers(0, 3), max_size=3),
                 st.tuples(st.integers(0, 4), st.integers(0, 4)).map(lambda s: np.ones(s)),
                 st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)).map(
                     lambda s: np.zeros(s, dtype=bool)),
                 st.integers(1, 3).map(lambda n: np.ones((n, 3), np.int32)))


@given(st.lists(junk, min_size=3, max_size=3), junk, junk, junk, junk)
def test_fuzz_malformed_arguments_raise_python_errors(qkv, mask, dropout_p, causal, scale):
    good = [np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 2))]
    args = [a if a is not None else g for a, g in zip(qkv, good)]
    try:
        out = SDPA(*args, attn_mask=mask, dropout_p=0.0 if dropout_p is None else dropout_p,
                   is_causal=False if causal is None else causal, scale=scale)
    except (ValueError, TypeError):
        return
    # it ran: then it must be a valid call with a well-formed result
    q, v = np.asarray(args[0]), np.asarray(args[2])
    assert out.shape[-2:] == (q.shape[-2], v.shape[-1])
    assert np.all(np.isfinite(out.data))
