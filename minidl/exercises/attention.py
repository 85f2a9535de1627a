"""Checks for tutorial 04 (attention): an ALiBi bias as a float mask, and the
online softmax with a causal mask."""
import numpy as np

from .runner import Exercise


def _alibi(student):
    import minidl as mdl
    import minidl.functional as F

    for L, S, slope in ((4, 4, 0.5), (3, 6, 0.25), (5, 5, 1.0)):
        bias = np.asarray(student.alibi_bias(L, S, slope), dtype=np.float64)
        assert bias.shape == (L, S), f"alibi_bias({L}, {S}, {slope}) should have shape {(L, S)}, got {bias.shape}"
        for i in range(L):
            for j in range(S):
                expected = -slope * (i - j) if j <= i else -np.inf
                assert bias[i, j] == expected, (f"alibi_bias({L}, {S}, {slope})[{i}, {j}] = {bias[i, j]}, "
                                                f"expected {expected}")
    rng = np.random.default_rng(41)
    q, k, v = (rng.standard_normal((5, 3)) for _ in range(3))
    weights = F.attention_weights(mdl.tensor(q), mdl.tensor(k), attn_mask=mdl.tensor(student.alibi_bias(5, 5, 0.5)))
    assert np.allclose(np.triu(weights.data, 1), 0), "with the bias as attn_mask, the future must get weight 0"


def _online_causal(student):
    import minidl as mdl
    import minidl.functional as F

    rng = np.random.default_rng(42)
    for L, E, Ev, block in ((1, 2, 2, 1), (7, 4, 3, 3), (10, 8, 5, 4), (9, 3, 3, 16)):
        q, k, v = rng.standard_normal((L, E)), rng.standard_normal((L, E)), rng.standard_normal((L, Ev))
        expected = F.scaled_dot_product_attention(mdl.tensor(q), mdl.tensor(k), mdl.tensor(v), is_causal=True).data
        got = np.asarray(student.attention_online_causal(q, k, v, block=block))
        assert got.shape == expected.shape, f"L {L}, Ev {Ev}: expected shape {expected.shape}, got {got.shape}"
        error = np.abs(got - expected).max()
        assert error < 1e-10, (f"L {L}, E {E}, block {block}: largest difference from "
                               f"F.scaled_dot_product_attention(..., is_causal=True) {error:.2e}")
    q = rng.standard_normal((6, 4)) * 300                                       # scores of size ~1e5
    got = np.asarray(student.attention_online_causal(q, q, q, block=2))
    assert np.all(np.isfinite(got)), "huge scores overflow: keep the running maximum and rescale by exp(m - m_new)"


EXERCISES = [
    Exercise(4, "alibi_bias, a float mask favouring recent tokens", _alibi,
             "bias[i, j] = -slope * (i - j) for j <= i and -inf above the diagonal; np.arange(L)[:, None] "
             "- np.arange(S)[None, :] gives every i - j."),
    Exercise(5, "attention_online_causal", _online_causal,
             "for query i only keys j <= i count: stop at the block holding key i and set the scores of "
             "keys j > i inside it to -inf before updating m, l and acc."),
]
