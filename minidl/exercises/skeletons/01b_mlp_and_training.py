"""Exercises 1-3 of tutorial 01b (an MLP, trained). Fill in the functions that
raise NotImplementedError, then run `minidl check 01b` from the folder that
holds `exercises/` (or `minidl check 01b --file THIS_FILE`). NumPy only: no
minidl in here."""
import numpy as np


# ---- exercise 1 ---------------------------------------------------------------
def cross_entropy(logits, labels):
    """Mean cross-entropy of (N, K) logits against N integer labels, as a float.
    Must stay finite for logits of size 1000."""
    raise NotImplementedError("exercise 1: cross_entropy")


def cross_entropy_grad(logits, labels):
    """d cross_entropy / d logits, an (N, K) array."""
    raise NotImplementedError("exercise 1: cross_entropy_grad")


# ---- exercise 2 ---------------------------------------------------------------
def sgd_momentum_step(param, grad, buffer, lr, momentum):
    """One step of SGD with momentum (PyTorch's rule). `buffer` is None on the
    first step. Returns (new_param, new_buffer)."""
    raise NotImplementedError("exercise 2: sgd_momentum_step")


def adam_step(param, grad, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8):
    """Step number t (1, 2, ...) of Adam. m and v start as zeros.
    Returns (new_param, new_m, new_v)."""
    raise NotImplementedError("exercise 2: adam_step")


# ---- exercise 3 ---------------------------------------------------------------
def train_val_split(n, val_fraction, seed):
    """Random disjoint index arrays (train, val) covering 0..n-1, with
    int(n * val_fraction) validation rows; the same seed gives the same split."""
    raise NotImplementedError("exercise 3: train_val_split")


def accuracy(logits, labels):
    """The fraction (0..1) of rows whose largest logit is at the label."""
    raise NotImplementedError("exercise 3: accuracy")
