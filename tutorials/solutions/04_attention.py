"""Reference solutions of tutorial 04's checked exercises (`minidl check 04
--file tutorials/solutions/04_attention.py` passes every check)."""
import math

import numpy as np


# ---- exercise 4 ---------------------------------------------------------------
def alibi_bias(L, S, slope):
    distance = np.arange(L)[:, None] - np.arange(S)[None, :]           # (L, S): i - j
    return np.where(distance >= 0, -slope * distance, -np.inf)


# ---- exercise 5 ---------------------------------------------------------------
def attention_online_causal(q, k, v, block=3):
    L, E = q.shape
    out = np.zeros((L, v.shape[1]))
    for i in range(L):
        m, l, acc = -np.inf, 0.0, np.zeros(v.shape[1])
        for j0 in range(0, i + 1, block):                               # blocks after key i are skipped
            j1 = min(j0 + block, i + 1)                                 # keys j0 .. j1-1, all j <= i
            s = k[j0:j1] @ q[i] / math.sqrt(E)
            m_new = max(m, s.max())
            alpha = math.exp(m - m_new)
            p = np.exp(s - m_new)
            l = l * alpha + p.sum()
            acc = acc * alpha + p @ v[j0:j1]
            m = m_new
        out[i] = acc / l
    return out
