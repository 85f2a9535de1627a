"""Frechet distance and the classifier report, against independent references."""
import numpy as np
import pytest
import scipy.linalg
import scipy.special

import minidl as mdl
from minidl.metrics import classifier_outputs, classifier_report, frechet_distance
from minidl.models.cnn import CNN


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


def test_frechet_distance_needs_two_samples_in_each_set():
    many = np.random.default_rng(2).standard_normal((50, 3))
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(many, many[:1])
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(many[:1], many)


def test_classifier_report_counts_a_probability_equal_to_the_threshold_as_confident():
    report = classifier_report(np.array([[0.9, 0.1], [0.2, 0.8]]), confidence=0.9)
    assert report["confident_fraction"] == 0.5


def test_classifier_outputs_are_the_models_features_and_softmax_across_uneven_batches():
    """Features and probabilities of 23 images in batches of 5 (the last one
    short) equal those of one pass, the probabilities are SciPy's softmax of
    the logits, and the model's training mode is restored."""
    mdl.manual_seed(0)
    model = CNN(in_channels=1, num_classes=10, image_size=(8, 8))
    images = np.random.default_rng(3).random((23, 1, 8, 8)).astype(np.float32)
    model.train()
    features, probabilities = classifier_outputs(model, images, batch_size=5)
    assert model.training
    assert features.shape[0] == 23 and probabilities.shape == (23, 10)
    model.eval()
    with mdl.no_grad():
        expected_features = model.features(mdl.Tensor(images)).data           # (23, d)
        logits = model.classify(mdl.Tensor(expected_features)).data.astype(np.float64)
    np.testing.assert_allclose(features, expected_features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities, scipy.special.softmax(logits, axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)


def test_classifier_outputs_softmax_stays_finite_for_logits_in_the_thousands():
    mdl.manual_seed(0)
    model = CNN(in_channels=1, num_classes=10, image_size=(8, 8))
    model.fc2.weight.data *= 1e5                                               # logits of order 1e3-1e4
    images = np.random.default_rng(4).random((6, 1, 8, 8)).astype(np.float32)
    _, probabilities = classifier_outputs(model, images)
    with mdl.no_grad():
        logits = model(mdl.Tensor(images)).data.astype(np.float64)            # (6, 10)
    assert np.abs(logits).max() > 800                                          # exp would overflow unshifted
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities, scipy.special.softmax(logits, axis=1), rtol=1e-5, atol=1e-7)
