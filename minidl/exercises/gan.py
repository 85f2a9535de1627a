"""Checks for tutorial 07 (GANs): the saturating generator loss as a minidl
function (value and gradient), latent interpolation, and the Frechet distance."""
import numpy as np

from .runner import Exercise


def _saturating_loss(student):
    import minidl as mdl

    for logits in (np.linspace(-6, 6, 12), np.array([-30.0, 0.3, 800.0])):       # no t = 0: |t| has a kink there
        t = mdl.tensor(logits.copy(), requires_grad=True)
        loss = student.saturating_generator_loss(t)
        assert isinstance(loss, mdl.Tensor) and loss.ndim == 0, (
            "return a scalar minidl Tensor built from minidl ops, so that backward() works")
        s = 1 / (1 + np.exp(-logits))
        expected = -np.mean(np.logaddexp(0.0, logits))                       # log(1 - s(t)) = -log(1 + e^t)
        assert np.isclose(loss.item(), expected, rtol=1e-9, atol=1e-12), (
            f"mean log(1 - s(t)) for t in {logits[:3].tolist()}...: got {loss.item()}, expected {expected}")
        loss.backward()
        assert np.all(np.isfinite(t.grad)), "the gradient has inf or nan (for large t, log(1 - s(t)) = -softplus(t))"
        error = np.abs(t.grad - (-s / len(logits))).max()
        assert error < 1e-9, (f"the gradient should be -s(t) / N (it vanishes as s(t) -> 0); "
                              f"largest difference {error:.2e}")


def _interpolate(student):
    rng = np.random.default_rng(16)
    a, b = rng.standard_normal(8), rng.standard_normal(8)
    for steps in (2, 5, 11):
        path = np.asarray(student.interpolate(a, b, steps))
        assert path.shape == (steps, 8), f"steps = {steps}: expected shape {(steps, 8)}, got {path.shape}"
        assert np.allclose(path[0], a) and np.allclose(path[-1], b), "the path must start at a and end at b"
        expected = a + np.linspace(0, 1, steps)[:, None] * (b - a)
        assert np.allclose(path, expected, atol=1e-12), "the points should be evenly spaced on the straight line"
    images = rng.uniform(0, 1, (2, 1, 8, 8))
    path = np.asarray(student.interpolate(images[0], images[1], 3))
    assert path.shape == (3, 1, 8, 8) and np.allclose(path[1], images.mean(axis=0)), (
        "for images (1, 8, 8) the middle of 3 steps is their average")


def _frechet_distance(student):
    from scipy import linalg

    rng = np.random.default_rng(17)
    a = rng.standard_normal((300, 4))
    assert abs(float(student.frechet_distance(a, a))) < 1e-8, "the distance of a set to itself is 0"
    shift = np.array([1.0, -2.0, 0.0, 0.5])
    got = float(student.frechet_distance(a, a + shift))
    assert np.isclose(got, shift @ shift, rtol=1e-8), f"shifting a set by c adds |c|^2 = {shift @ shift}, got {got}"
    b = rng.standard_normal((250, 4)) @ rng.standard_normal((4, 4)) + 0.3
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cross = linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a + cov_b - 2 * cross)
    got = float(student.frechet_distance(a, b))
    assert np.isclose(got, expected, rtol=1e-6), (f"frechet_distance of two (n, 4) sets: got {got}, expected "
                                                  f"{expected} (np.cov with rowvar=False, i.e. divided by n - 1)")


EXERCISES = [
    Exercise(1, "saturating_generator_loss as a minidl function", _saturating_loss,
             "log(1 - s(t)) = -softplus(t) = -(max(t, 0) + log(1 + exp(-|t|))); build it from Tensor ops "
             "(F.relu, .abs(), .exp(), .log(), .mean())."),
    Exercise(2, "interpolate between two latent vectors or images", _interpolate,
             "np.linspace(0, 1, steps) gives the weights w; each point is a + w (b - a); "
             "reshape w to (steps, 1, ...) to broadcast over any shape."),
    Exercise(5, "frechet_distance of two feature sets", _frechet_distance,
             "|mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b)); np.cov(x, rowvar=False), "
             "scipy.linalg.sqrtm (take .real)."),
]
