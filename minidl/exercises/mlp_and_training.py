"""Checks for tutorial 01b (an MLP, trained): cross-entropy and its gradient
in NumPy, one step of SGD with momentum and of Adam, a train/validation split
and accuracy."""
import numpy as np

from .runner import Exercise


def _cross_entropy(student):
    import minidl as mdl
    import minidl.functional as F

    rng = np.random.default_rng(7)
    for logits, labels in ((rng.standard_normal((6, 10)), rng.integers(0, 10, 6)),
                           (rng.standard_normal((1, 3)) * 4, np.array([2])),
                           (np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]]), np.array([0, 2]))):
        reference = mdl.tensor(logits, requires_grad=True)
        loss = F.cross_entropy(reference, mdl.tensor(labels))
        loss.backward()
        value = float(student.cross_entropy(logits.copy(), labels))
        assert np.isfinite(value), (f"cross_entropy is {value} for logits with entries up to "
                                    f"{np.abs(logits).max():g}: subtract each row's maximum first")
        assert np.isclose(value, loss.item(), rtol=1e-9, atol=1e-9), (
            f"cross_entropy of {logits.shape} logits: got {value}, expected {loss.item()}")
        gradient = np.asarray(student.cross_entropy_grad(logits.copy(), labels))
        assert gradient.shape == logits.shape, f"the gradient should have the logits' shape {logits.shape}, got {gradient.shape}"
        assert np.all(np.isfinite(gradient)), "the gradient has inf or nan: subtract each row's maximum first"
        error = np.abs(gradient - reference.grad).max()
        assert error < 1e-9, (f"cross_entropy_grad of {logits.shape} logits is off by up to {error:.2e} "
                              "(is it divided by the batch size N?)")


def _optimizer_steps(student):
    import minidl as mdl
    from minidl import optim

    rng = np.random.default_rng(8)
    gradients = rng.standard_normal((6, 4, 3))
    start = rng.standard_normal((4, 3))

    param = mdl.tensor(start.copy(), requires_grad=True)
    reference = optim.SGD([param], lr=0.05, momentum=0.9)
    mine, buffer = start.copy(), None
    for step, g in enumerate(gradients, 1):
        param.grad = g.copy()
        reference.step()
        mine, buffer = student.sgd_momentum_step(mine, g.copy(), buffer, lr=0.05, momentum=0.9)
        error = np.abs(np.asarray(mine) - param.data).max()
        assert error < 1e-12, (f"SGD with momentum: after step {step} the parameter differs from "
                               f"optim.SGD by {error:.2e}")

    param = mdl.tensor(start.copy(), requires_grad=True)
    reference = optim.Adam([param], lr=0.01, betas=(0.8, 0.99), eps=1e-8)
    mine, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for step, g in enumerate(gradients, 1):
        param.grad = g.copy()
        reference.step()
        mine, m, v = student.adam_step(mine, g.copy(), m, v, step, lr=0.01, betas=(0.8, 0.99), eps=1e-8)
        error = np.abs(np.asarray(mine) - param.data).max()
        assert error < 1e-12, (f"Adam: after step {step} the parameter differs from optim.Adam by "
                               f"{error:.2e} (bias correction uses t = {step})")


def _split_and_accuracy(student):
    for n, fraction in ((1347, 0.2), (10, 0.3), (101, 0.5)):
        train, val = (np.asarray(a) for a in student.train_val_split(n, fraction, seed=0))
        assert len(val) == int(n * fraction), f"train_val_split({n}, {fraction}): {len(val)} validation rows, expected {int(n * fraction)}"
        assert not set(train.tolist()) & set(val.tolist()), f"train_val_split({n}, {fraction}): a row is in both parts"
        assert sorted(train.tolist() + val.tolist()) == list(range(n)), (
            f"train_val_split({n}, {fraction}): together the parts must hold every row 0..{n - 1} once")
        again = np.asarray(student.train_val_split(n, fraction, seed=0)[1])
        assert np.array_equal(again, val), "the same seed must give the same split"
    first = np.asarray(student.train_val_split(1347, 0.2, seed=0)[1])
    other = np.asarray(student.train_val_split(1347, 0.2, seed=1)[1])
    assert set(first.tolist()) != set(other.tolist()), "different seeds should give different (random) splits"
    assert set(first.tolist()) != set(range(269)) and set(first.tolist()) != set(range(1078, 1347)), (
        "the validation rows should be chosen at random, not the first or last rows")

    rng = np.random.default_rng(9)
    logits = rng.standard_normal((50, 10))
    labels = rng.integers(0, 10, 50)
    labels[:20] = logits[:20].argmax(axis=1)                 # at least 20 right
    expected = float(np.mean(logits.argmax(axis=1) == labels))
    got = float(student.accuracy(logits, labels))
    assert np.isclose(got, expected), f"accuracy: got {got}, expected {expected} (a fraction between 0 and 1)"


EXERCISES = [
    Exercise(1, "cross_entropy and cross_entropy_grad in NumPy", _cross_entropy,
             "shift each row by its max; L = mean(log(sum(exp(z))) - z[label]); "
             "the gradient is (softmax(z) - onehot(label)) / N."),
    Exercise(2, "one step of SGD with momentum, one step of Adam", _optimizer_steps,
             "momentum: b = g on the first step (buffer None), else b = momentum * b + g; p - lr * b. "
             "Adam: m, v running means, m / (1 - beta1**t), v / (1 - beta2**t), p - lr * m_hat / (sqrt(v_hat) + eps)."),
    Exercise(3, "train_val_split and accuracy", _split_and_accuracy,
             "np.random.default_rng(seed).permutation(n); the first int(n * val_fraction) indices "
             "are the validation rows. Accuracy: mean of (logits.argmax(axis=1) == labels)."),
]
