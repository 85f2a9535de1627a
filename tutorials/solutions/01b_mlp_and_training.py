"""Reference solutions of tutorial 01b's checked exercises (`minidl check 01b
--file tutorials/solutions/01b_mlp_and_training.py` passes every check)."""
import numpy as np


# ---- exercise 1 ---------------------------------------------------------------
def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)                 # (N, K), row max 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy(logits, labels):
    log_p = _log_softmax(np.asarray(logits, dtype=np.float64))           # (N, K)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def cross_entropy_grad(logits, labels):
    p = np.exp(_log_softmax(np.asarray(logits, dtype=np.float64)))       # (N, K) softmax
    p[np.arange(len(labels)), labels] -= 1                               # p - onehot
    return p / len(labels)


# ---- exercise 2 ---------------------------------------------------------------
def sgd_momentum_step(param, grad, buffer, lr, momentum):
    buffer = grad.copy() if buffer is None else momentum * buffer + grad
    return param - lr * buffer, buffer


def adam_step(param, grad, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8):
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


# ---- exercise 3 ---------------------------------------------------------------
def train_val_split(n, val_fraction, seed):
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(n * val_fraction)
    return order[n_val:], order[:n_val]


def accuracy(logits, labels):
    return float(np.mean(np.asarray(logits).argmax(axis=1) == np.asarray(labels)))
