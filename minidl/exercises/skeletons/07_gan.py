"""Exercises 1, 2 and 5 of tutorial 07 (GANs). Fill in the functions that
raise NotImplementedError, then run `minidl check 07` from the folder that
holds `exercises/` (or `minidl check 07 --file THIS_FILE`)."""
import numpy as np

import minidl as mdl
import minidl.functional as F


# ---- exercise 1 ---------------------------------------------------------------
def saturating_generator_loss(fake_logits):
    """The generator's *saturating* loss, mean over the batch of log(1 - s(t)),
    for a Tensor t of D's logits on generated images; a scalar Tensor built from
    minidl ops (so that backward() works), finite for any t."""
    raise NotImplementedError("exercise 1: saturating_generator_loss")


# ---- exercise 2 ---------------------------------------------------------------
def interpolate(a, b, steps):
    """`steps` points evenly spaced on the straight line from array a to array b
    (both included): shape (steps, *a.shape)."""
    raise NotImplementedError("exercise 2: interpolate")


# ---- exercise 5 ---------------------------------------------------------------
def frechet_distance(features_a, features_b):
    """Squared Frechet distance between Gaussians fitted to two (n, d) feature sets."""
    raise NotImplementedError("exercise 5: frechet_distance")
