"""Reference solutions of tutorial 07's checked exercises (`minidl check 07
--file tutorials/solutions/07_gan.py` passes every check)."""
import numpy as np
from scipy import linalg

import minidl.functional as F


# ---- exercise 1 ---------------------------------------------------------------
def saturating_generator_loss(fake_logits):
    t = fake_logits
    softplus = F.relu(t) + ((-t.abs()).exp() + 1.0).log()       # log(1 + e^t), stable for any t
    return (-softplus).mean()                                   # log(1 - s(t)) = -softplus(t)


# ---- exercise 2 ---------------------------------------------------------------
def interpolate(a, b, steps):
    a, b = np.asarray(a), np.asarray(b)
    weights = np.linspace(0.0, 1.0, steps).reshape((steps,) + (1,) * a.ndim)
    return a + weights * (b - a)                                # (steps, *a.shape)


# ---- exercise 5 ---------------------------------------------------------------
def frechet_distance(features_a, features_b):
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cross = linalg.sqrtm(cov_a @ cov_b).real
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a + cov_b - 2 * cross))
