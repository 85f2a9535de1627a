"""Frechet distance and the classifier report, against independent references."""
import numpy as np
import pytest
import scipy.linalg

from minidl.metrics import classifier_report, frechet_distance


def scipy_frechet(a, b):
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 5))
    b = rng.standard_normal((300, 5)) @ rng.standard_normal((5, 5)) + 1.5
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a, b), rel=1e-8)


def test_frechet_distance_one_dimension_by_hand():
    # For 1-D Gaussians d^2 = (m_a - m_b)^2 + (s_a - s_b)^2 with s the standard deviations.
    a = np.array([[0.0], [2.0]])            # mean 1, sample variance 2
    b = np.array([[3.0], [5.0], [7.0]])     # mean 5, sample variance 4
    expected = (1.0 - 5.0) ** 2 + (np.sqrt(2.0) - np.sqrt(4.0)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_shift():
    a = np.random.default_rng(1).standard_normal((200, 4))
    assert abs(frechet_distance(a, a)) < 1e-9
    assert frechet_distance(a, a + 1.0) == pytest.approx(4.0, rel=1e-9)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(10, 3\) and \(10, 4\)"):
        frechet_distance(np.zeros((10, 3)), np.zeros((10, 4)))


def test_classifier_report_counts_confidence_and_coverage():
    probabilities = np.array([[0.95, 0.05, 0.0], [0.5, 0.5, 0.0], [0.0, 0.05, 0.95], [0.92, 0.08, 0.0]])
    report = classifier_report(probabilities, confidence=0.9)
    assert report["confident_fraction"] == 0.75
    assert report["class_shares"] == [0.75, 0.0, 0.25]
    assert report["min_class_share"] == 0.0
