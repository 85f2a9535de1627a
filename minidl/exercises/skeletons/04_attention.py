"""Exercises 4 and 5 of tutorial 04 (attention). Fill in the functions that
raise NotImplementedError, then run `minidl check 04` from the folder that
holds `exercises/` (or `minidl check 04 --file THIS_FILE`). NumPy only."""
import math

import numpy as np


# ---- exercise 4 ---------------------------------------------------------------
def alibi_bias(L, S, slope):
    """(L, S) float mask: -slope * (i - j) where key j <= query i, -inf where j > i."""
    raise NotImplementedError("exercise 4: alibi_bias")


# ---- exercise 5 ---------------------------------------------------------------
def attention_online_causal(q, k, v, block=3):
    """Causal attention for one head, q, k (L, E), v (L, Ev) -> (L, Ev), reading
    the keys `block` at a time with the online softmax of tutorial 04 (running
    maximum m, sum l and accumulator acc per query), never building the L x L scores."""
    raise NotImplementedError("exercise 5: attention_online_causal")
