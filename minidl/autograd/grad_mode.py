"""Global switches of the autograd engine: whether graphs are recorded, and
whether every op is checked for NaN/inf (anomaly detection).

Both are context managers that restore the previous state on exit, so they nest:

    with mdl.no_grad():          # evaluation: no graph, no memory kept for backward
        logits = model(x)

    with mdl.detect_anomaly():   # debugging: the first op that makes a NaN/inf raises
        loss.backward()
"""
import contextlib

import numpy as np

_grad_enabled = True
_anomaly_enabled = False


def is_grad_enabled():
    """True when new ops record themselves for backward."""
    return _grad_enabled


def is_anomaly_enabled():
    """True inside `detect_anomaly()`."""
    return _anomaly_enabled


@contextlib.contextmanager
def set_grad_enabled(mode):
    """Turn graph recording on or off inside the block."""
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = bool(mode)
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad():
    """Inside the block, ops build no graph: results have requires_grad=False."""
    return set_grad_enabled(False)


def enable_grad():
    """Turn graph recording back on inside a `no_grad()` block."""
    return set_grad_enabled(True)


@contextlib.contextmanager
def detect_anomaly():
    """Inside the block, an op whose forward output or backward gradient holds a
    NaN or an inf raises `FloatingPointError` naming that op."""
    global _anomaly_enabled
    previous = _anomaly_enabled
    _anomaly_enabled = True
    try:
        yield
    finally:
        _anomaly_enabled = previous


def check_finite(op_name, phase, array):
    """Raise FloatingPointError if a float array holds a NaN or an inf (anomaly mode)."""
    if array is None or not np.issubdtype(array.dtype, np.floating):
        return
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise FloatingPointError(
            f"detect_anomaly: {op_name} {phase} produced {array[tuple(bad)]} "
            f"at index {tuple(int(i) for i in bad)} of an array of shape {array.shape}"
        )
