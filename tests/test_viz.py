"""minidl.viz: the autograd graph walk, the confusion matrix, the image mosaic,
and that every plot writes a readable PNG (without touching pyplot)."""
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

import minidl as mdl
from minidl import viz


def _png_shape(path):
    return matplotlib.image.imread(str(path)).shape


# ---- the computation graph ------------------------------------------------------------
def test_graph_of_a_small_expression_has_its_ops_leaves_edges_and_depths():
    x = mdl.tensor(np.array(2.0), requires_grad=True)
    y = mdl.tensor(np.array(3.0), requires_grad=True)
    z = x * y + x
    nodes, edges = viz.graph_of(z, names={x: "x", y: "y", z: "z"})
    by_label = {n["label"].split("\n")[0]: (key, n) for key, n in nodes.items()}
    assert set(by_label) == {"x", "y", "z", "Mul", "Add"}
    depth = {label: n["depth"] for label, (_, n) in by_label.items()}
    # x feeds both Mul (depth 2) and Add (depth 1): it sits at the longest path, 3
    assert depth == {"z": 0, "Add": 1, "Mul": 2, "x": 3, "y": 3}
    kinds = {label: n["kind"] for label, (_, n) in by_label.items()}
    assert kinds == {"z": "output", "Add": "op", "Mul": "op", "x": "leaf", "y": "leaf"}
    key = {label: k for label, (k, _) in by_label.items()}
    expected = {("x", "Mul"), ("y", "Mul"), ("Mul", "Add"), ("x", "Add"), ("Add", "z")}
    assert {(a, b) for a in key for b in key if (key[a], key[b]) in edges} == expected
    assert len(edges) == len(expected)


def test_graph_of_a_leaf_is_one_node():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = viz.graph_of(x)
    assert len(nodes) == 1 and edges == []
    assert next(iter(nodes.values()))["label"] == "2"           # its shape


def test_graph_of_a_long_chain_needs_no_recursion():
    x = mdl.tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    nodes, edges = viz.graph_of(y)
    assert len(nodes) == 3000 + 1 + 1 + 3000                      # ops, x, output, constants
    assert max(n["depth"] for n in nodes.values()) == 3001


def test_plot_computation_graph_writes_a_png(tmp_path):
    w = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    b = mdl.tensor(np.zeros(3), requires_grad=True)
    x = mdl.tensor(np.ones((4, 2)))                               # a constant input
    loss = ((x @ w + b).tanh() * 2.0).sum()
    path = viz.plot_computation_graph(loss, tmp_path / "graph.png", names={w: "w", b: "b", x: "x"})
    assert _png_shape(path)[0] > 100


# ---- numbers behind the plots ---------------------------------------------------------
def test_confusion_matrix_counts_pairs():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    counts = viz.confusion_matrix(labels, predictions, 4)
    for t in range(4):
        for p in range(4):
            assert counts[t, p] == np.sum((labels == t) & (predictions == p))
    assert counts.sum() == 200


def test_tiles_are_scaled_and_placed_in_the_mosaic():
    tiles = np.arange(2 * 3 * 3, dtype=np.float64).reshape(2, 3, 3, 1) - 4   # (N, H, W, C)
    mosaic, corners = viz._tile_images(tiles, ncols=2, caption_lines=0, symmetric=False)
    for tile, (top, left) in zip(tiles, corners):
        placed = mosaic[top:top + 3, left:left + 3]
        np.testing.assert_allclose(placed, (tile - tile.min()) / (tile.max() - tile.min()))
    assert np.isnan(mosaic).any()                                 # gaps between tiles
    symmetric, _ = viz._tile_images(tiles[:1], ncols=1, caption_lines=0, symmetric=True)
    assert symmetric[1, 1, 0] == pytest.approx(0.5)                # tile value 0 -> the middle


def test_misclassified_shows_only_the_wrong_ones_with_true_and_predicted(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(viz, "plot_image_grid", lambda images, path, titles=None, **kw: seen.update(
        images=images, titles=titles) or path)
    images = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 1, 2, 2), np.float32)
    viz.plot_misclassified(images, [0, 1, 2, 1, 0], [0, 2, 2, 0, 0], ["a", "b", "c"], tmp_path / "m.png")
    np.testing.assert_array_equal(seen["images"][:, 0, 0, 0], [1, 3])
    assert seen["titles"] == ["true b\npred c", "true b\npred a"]


# ---- every plot writes a PNG --------------------------------------------------------------
def test_each_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    metrics = [dict(epoch=e, train_loss=1 / e, test_loss=1.2 / e, train_acc=1 - 0.3 / e,
                    test_acc=1 - 0.4 / e) for e in range(1, 4)]
    labels = rng.integers(0, 3, 30)
    paths = [
        viz.plot_curves(metrics, tmp_path / "curves.png"),
        viz.plot_confusion_matrix(labels, rng.integers(0, 3, 30), ["a", "b", "c"], tmp_path / "cm.png"),
        viz.plot_image_grid(rng.random((7, 3, 8, 8)), tmp_path / "rgb.png", title="samples"),
        viz.plot_image_grid(rng.random((4, 5, 5)), tmp_path / "gray.png", titles=list("abcd")),
        viz.plot_misclassified(rng.random((30, 1, 8, 8)), labels, (labels + 1) % 3, ["a", "b", "c"],
                               tmp_path / "wrong.png"),
        viz.plot_filters(rng.standard_normal((6, 1, 3, 3)), tmp_path / "filters.png"),
        viz.plot_feature_maps(rng.random((1, 8, 8)), rng.random((5, 6, 6)), tmp_path / "maps.png"),
        viz.plot_attention(rng.random((2, 4, 5)), tmp_path / "attn.png", list("abcd"), list("vwxyz")),
    ]
    for path in paths:
        height, width = _png_shape(path)[:2]
        assert height > 50 and width > 50, path


def test_curves_leave_a_gap_where_a_record_lacks_a_figure(monkeypatch, tmp_path):
    """A resumed run whose metrics.json had lost a record's train_loss (or held
    null) trained its epochs and then failed in plot_curves with a KeyError."""
    saved = {}
    monkeypatch.setattr(viz, "_save", lambda fig, path: saved.update(fig=fig) or path)
    metrics = [dict(epoch=1, test_loss=1.0, train_acc=0.5, test_acc=None),
               dict(epoch=2, train_loss=0.5, test_loss=0.8, train_acc=0.75, test_acc=0.7)]
    viz.plot_curves(metrics, tmp_path / "curves.png")
    loss_ax, acc_ax = saved["fig"].axes
    train_loss, test_loss = (line.get_ydata() for line in loss_ax.get_lines())
    train_acc, test_acc = (line.get_ydata() for line in acc_ax.get_lines())
    np.testing.assert_array_equal(train_loss, [np.nan, 0.5])
    np.testing.assert_array_equal(test_acc, [np.nan, 70.0])
    np.testing.assert_array_equal(train_acc, [50.0, 75.0])


def test_nested_output_folders_are_created(tmp_path):
    path = viz.plot_image_grid(np.zeros((1, 1, 4, 4)), tmp_path / "a" / "b" / "grid.png")
    assert path.exists()


@pytest.mark.parametrize("call, message", [
    (lambda p: viz.plot_image_grid(np.zeros((2, 2, 4, 4)), p), r"plot_image_grid: .*\(2, 2, 4, 4\)"),
    (lambda p: viz.plot_filters(np.zeros((2, 3, 3)), p), r"plot_filters: .*\(2, 3, 3\)"),
    (lambda p: viz.plot_feature_maps(np.zeros((1, 4, 4)), np.zeros((4, 4)), p), r"plot_feature_maps"),
    (lambda p: viz.plot_attention(np.zeros(3), p), r"plot_attention: .*\(3,\)"),
])
def test_bad_shapes_raise_value_errors_naming_the_plot(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "x.png")


def test_plotting_never_imports_pyplot(tmp_path):
    code = ("import sys, numpy as np; from minidl import viz; "
            f"viz.plot_image_grid(np.zeros((2, 1, 4, 4)), r'{tmp_path / 'g.png'}'); "
            "print('matplotlib.pyplot' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=str(__import__('pathlib').Path(__file__).resolve().parents[1]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_fixed_value_range_keeps_faint_images_faint():
    from minidl.viz import _tile_images
    faint = np.full((1, 2, 2, 1), 0.1)
    faint[0, 0, 0, 0] = 0.2
    bright = faint * 4                                       # same shape of values, brighter
    stretched = [_tile_images(t, 1, 0, False)[0] for t in (faint, bright)]
    fixed = [_tile_images(t, 1, 0, False, value_range=(0.0, 1.0))[0] for t in (faint, bright)]
    np.testing.assert_allclose(stretched[0], stretched[1])    # own min..max: looks the same
    assert np.nanmax(fixed[0]) == pytest.approx(0.2) and np.nanmax(fixed[1]) == pytest.approx(0.8)
