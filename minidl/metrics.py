"""Measuring generated images with numbers, not only eyes.

- `frechet_distance(features_a, features_b)`: fit a Gaussian to each set of
  feature vectors and measure the distance between the two Gaussians,

      d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

  With features from a trained classifier's penultimate layer this is the
  Frechet Inception Distance's idea, with a minidl CNN in Inception's place
  (so the numbers compare runs of minidl, not papers).
- `classifier_report(probabilities)`: how confidently a trained classifier
  recognises generated samples, and how evenly they cover the classes.
"""
import numpy as np

from .autograd.grad_mode import no_grad
from .autograd.tensor import Tensor


def _psd_sqrt(matrix):
    """Square root of a symmetric positive semi-definite matrix (via eigh)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a, features_b):
    """Squared Frechet distance between Gaussians fitted to two (n, d) feature sets.

    tr((S_a S_b)^(1/2)) is computed as tr((R S_b R)^(1/2)) with R = S_a^(1/2):
    the two matrices are similar, and the second is symmetric, so eigh applies.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: expected two (n, d) arrays with the same d, "
                         f"got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError("frechet_distance: need at least 2 samples in each set")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))                     # (d, d)
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(cov_a)
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)))
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


def classifier_outputs(model, images, batch_size=500):
    """(penultimate features (n, d), class probabilities (n, classes)) of a
    classifier with a `features(x)` method and a final `classify(features)`
    (the CNN has both), images (n, C, H, W) in [0, 1]."""
    features, probabilities = [], []
    was_training = model.training
    model.eval()
    with no_grad():
        for start in range(0, len(images), batch_size):
            batch = Tensor(np.asarray(images[start:start + batch_size], dtype=np.float32))
            f = model.features(batch)                                   # (B, d)
            logits = model.classify(f).data.astype(np.float64)          # (B, classes)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            features.append(f.data)
            probabilities.append(p / p.sum(axis=1, keepdims=True))
    model.train(was_training)
    return np.concatenate(features), np.concatenate(probabilities)


def classifier_report(probabilities, confidence=0.9):
    """Share of samples classified with probability >= `confidence`, and the
    share of samples predicted as each class (coverage)."""
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    shares = np.bincount(predicted, minlength=probabilities.shape[1]) / len(predicted)
    return dict(confident_fraction=float(np.mean(probabilities.max(axis=1) >= confidence)),
                class_shares=[float(s) for s in shares],
                min_class_share=float(shares.min()),
                confidence_threshold=confidence)
