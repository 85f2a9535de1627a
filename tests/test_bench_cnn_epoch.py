"""minidl.bench.cnn_epoch runs without torch (torch is optional, never a
dependency) and with it builds a twin that starts from the same weights."""
import sys

import numpy as np
import pytest

from minidl.bench import cnn_epoch


def test_runs_minidl_alone_when_torch_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)          # `import torch` now raises ImportError
    lines = []
    results, info = cnn_epoch.run(steps=2, batch_size=8, chunk=1, configs="1:1", log=lines.append, limit=64)
    assert info["torch"] is None and "torch not installed" in lines[0]
    (row,) = results
    assert row["torch_s"] is None and "ratio" not in row
    assert row["minidl_s"] > 0 and row["minidl_epoch_s"] == pytest.approx(row["minidl_s"] / 2 * 60_000 / 8)
    assert "| 1:1 |" in cnn_epoch.markdown(results, info)


def test_torch_twin_starts_from_minidl_weights_and_gives_the_same_first_loss():
    pytest.importorskip("torch")
    images, labels, _ = cnn_epoch.load_images(limit=64)
    batches = cnn_epoch.batch_order(len(images), 16, 2)
    model, minidl_step = cnn_epoch.minidl_trainer(images, labels, batches, lr=1e-3)
    torch_step = cnn_epoch.torch_trainer(images, labels, batches, lr=1e-3, minidl_model=model)
    first_torch = torch_step(0)                              # before minidl's step changes its weights
    first_minidl = minidl_step(0)
    assert first_minidl == pytest.approx(first_torch, rel=1e-5)
    assert np.isfinite(first_minidl) and first_minidl > 1.5


def test_bad_thread_configuration_is_refused():
    with pytest.raises(SystemExit, match="THREADS:BLAS"):
        cnn_epoch.parse_configs("2-1")
    with pytest.raises(SystemExit, match="positive"):
        cnn_epoch.parse_configs("0:1")
