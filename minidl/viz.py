"""Plots a person would rather see than read: curves, image grids, filters,
feature maps, attention maps and autograd graphs. Every function saves a PNG
and returns its path.

    from minidl import viz
    viz.plot_curves(metrics, "runs/x/curves.png")
    viz.plot_computation_graph(loss, "graph.png", names={x: "x", w: "w"})

Figures are drawn with `matplotlib.figure.Figure` and its Agg canvas directly,
never through `pyplot`, so nothing here opens a window or changes the backend
of a notebook that imports minidl.
"""
import os

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .autograd.engine import topological_order


def _save(fig, path):
    """Write `fig` to `path` (creating its folder) and return the path."""
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _as_array(x):
    return np.asarray(getattr(x, "data", x))


# ---- training curves and confusion matrix ---------------------------------
def plot_curves(metrics, path):
    """Loss and accuracy per epoch, train and test. `metrics` is a list of dicts
    with keys epoch, train_loss, train_acc, test_loss, test_acc (metrics.json)."""
    epochs = [m["epoch"] for m in metrics]

    def figure(key, scale=1.0):          # a figure a record lacks (or holds as null) is a gap
        return [np.nan if m.get(key) is None else scale * m[key] for m in metrics]

    fig = Figure(figsize=(10, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for split, style in (("train", "o-"), ("test", "s--")):
        loss_ax.plot(epochs, figure(f"{split}_loss"), style, label=split)
        acc_ax.plot(epochs, figure(f"{split}_acc", 100), style, label=split)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(labels, predictions, num_classes):
    """counts[t, p] = how many examples of true class t were predicted as p."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts


def plot_confusion_matrix(labels, predictions, classes, path):
    """A heat map of the confusion matrix with the count in every cell."""
    counts = confusion_matrix(labels, predictions, len(classes))
    size = max(4.0, 0.55 * len(classes) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ticks = range(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set(xlabel="predicted", ylabel="true",
           title=f"confusion matrix (accuracy {np.trace(counts) / max(counts.sum(), 1):.2%})")
    threshold = counts.max() / 2
    for t in ticks:
        for p in ticks:
            ax.text(p, t, str(counts[t, p]), ha="center", va="center", fontsize=7,
                    color="white" if counts[t, p] > threshold else "black")
    fig.subplots_adjust(left=1.3 / (size + 1), right=0.95, bottom=1.3 / size, top=1 - 0.5 / size)
    return _save(fig, path)


# ---- image grids ------------------------------------------------------------
def _tile_images(tiles, ncols, caption_lines, symmetric, value_range=None):
    """Lay `tiles` (N, H, W, C) out as one mosaic (rows of tiles, a strip above
    each tile for its caption, NaN between tiles). Each tile is scaled to 0..1
    by its own min..max (or -m..m with `symmetric`), or by the fixed
    `value_range` (low, high) shared by all tiles. Drawing one image instead
    of one axes per tile keeps a 6x6 grid fast."""
    n, h, w, c = tiles.shape
    gap, caption = max(1, w // 8), int(np.ceil(h * 0.2 * caption_lines))
    nrows = int(np.ceil(n / ncols))
    cell_h, cell_w = h + caption + gap, w + gap
    mosaic = np.full((nrows * cell_h, ncols * cell_w, c), np.nan)
    corners = []
    for i, tile in enumerate(tiles.astype(np.float64)):
        low, high = value_range if value_range is not None else (tile.min(), tile.max())
        if symmetric and value_range is None:
            low, high = -max(abs(low), abs(high)), max(abs(low), abs(high))
        tile = (tile - low) / (high - low) if high > low else np.full_like(tile, 0.5)
        top, left = (i // ncols) * cell_h + caption, (i % ncols) * cell_w
        mosaic[top:top + h, left:left + w] = tile
        corners.append((top, left))
    return mosaic, corners


def plot_image_grid(images, path, titles=None, ncols=None, title=None, cmap="gray", symmetric=False,
                    value_range=None, colorbar_labels=None):
    """A grid of images: (N, C, H, W) with C = 1 or 3, or (N, H, W). Each image
    is scaled to its own min..max (with `symmetric`, to -m..m where m = max |x|,
    so that 0 is the middle colour), or, with `value_range=(0, 1)`, all to the
    same fixed range: use that for samples, so a faint or collapsed sample
    looks as faint as it is; `titles` gives one caption per image.
    Used for misclassified digits, filters, GAN and other samples.
    `colorbar_labels` (low, middle, high) adds a colour bar whose three ticks
    say what the scale means, e.g. ("-max |w|", "0", "+max |w|") per tile."""
    images = _as_array(images)
    if images.ndim == 3:
        images = images[:, None]                           # (N, 1, H, W)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"plot_image_grid: expected (N, 1|3, H, W) or (N, H, W), got {images.shape}")
    if len(images) == 0:
        images = np.zeros((1,) + images.shape[1:])         # an empty grid: one blank tile
        titles = ["(none)"]
    n, _, h, w = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    mosaic, corners = _tile_images(images.transpose(0, 2, 3, 1), ncols, lines, symmetric, value_range)
    inch = 1.2 / max(w, h)                                 # inches per pixel: tiles ~1.2 in wide
    title_height = 0.45 if title else 0.0
    bar_width = 1.3 if colorbar_labels else 0.0           # inches kept for the colour bar and its labels
    fig = Figure(figsize=(mosaic.shape[1] * inch + 0.2 + bar_width,
                          max(mosaic.shape[0] * inch, 1.6 if colorbar_labels else 0) + title_height + 0.2))
    width, height = fig.get_size_inches()
    ax = fig.add_axes([0.1 / width, 0.1 / height, 1 - (0.2 + bar_width) / width, 1 - (0.2 + title_height) / height])
    shown = mosaic[..., 0] if mosaic.shape[2] == 1 else mosaic
    colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
    drawn = ax.imshow(shown, cmap=colours, vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    if colorbar_labels:
        bar_ax = fig.add_axes([1 - (bar_width - 0.1) / width, 0.2 / height, 0.15 / width,
                               1 - (0.4 + title_height) / height])
        bar = fig.colorbar(drawn, cax=bar_ax, ticks=[0, 0.5, 1])
        bar.ax.set_yticklabels(colorbar_labels, fontsize=7)
    ax.axis("off")
    for i, (top, left) in enumerate(corners):
        if titles is not None:
            ax.text(left + w / 2, top - 0.5, str(titles[i]), ha="center", va="bottom", fontsize=8)
    if title:
        fig.suptitle(title, y=1 - 0.08 / height, va="top")
    return _save(fig, path)


def plot_samples(images, path, **options):
    """Generated or raw images with pixels in [0, 1], all drawn on that one
    scale (see `plot_image_grid` for the options)."""
    return plot_image_grid(images, path, value_range=(0.0, 1.0), **options)


def plot_misclassified(images, labels, predictions, classes, path, max_images=36):
    """The first `max_images` test images the model got wrong, captioned
    "true X / pred Y"."""
    images, labels, predictions = _as_array(images), np.asarray(labels), np.asarray(predictions)
    wrong = np.flatnonzero(labels != predictions)[:max_images]
    titles = [f"true {classes[labels[i]]}\npred {classes[predictions[i]]}" for i in wrong]
    total = int(np.sum(labels != predictions))
    return plot_image_grid(images[wrong], path, titles=titles,
                           title=f"misclassified: {total} of {len(labels)} (first {len(wrong)} shown)")


def plot_filters(weight, path, max_filters=64):
    """A first convolution layer's filters, weight (C_out, C_in, kH, kW): one
    tile per output channel (its first input channel, or RGB when C_in = 3)."""
    weight = _as_array(weight)
    if weight.ndim != 4:
        raise ValueError(f"plot_filters: expected a weight (C_out, C_in, kH, kW), got {weight.shape}")
    tiles = weight[:max_filters] if weight.shape[1] == 3 else weight[:max_filters, :1]
    return plot_image_grid(tiles, path, titles=[str(i) for i in range(len(tiles))], cmap="bwr",
                           symmetric=True, title=f"first-layer filters {tuple(weight.shape)} (red +, blue -)",
                           colorbar_labels=("-max |w|\n(each filter)", "0", "+max |w|\n(each filter)"))


def plot_feature_maps(image, feature_maps, path, max_maps=32):
    """One input image (C, H, W), in gray on the left, and what a layer made of
    it, feature_maps (C', H', W'), one tile per channel on the right."""
    image, maps = _as_array(image), _as_array(feature_maps)
    if maps.ndim != 3:
        raise ValueError(f"plot_feature_maps: expected feature maps (C, H, W), got {maps.shape}")
    shown = maps[:max_maps]
    ncols = int(np.ceil(np.sqrt(len(shown))))
    mosaic, corners = _tile_images(shown[..., None], ncols, 1, symmetric=False)
    fig = Figure(figsize=(9, 5.2))
    left, right = fig.add_axes([0.02, 0.1, 0.3, 0.75]), fig.add_axes([0.34, 0.02, 0.52, 0.88])
    left.imshow(image.reshape(-1, *image.shape[-2:])[0], cmap="gray", interpolation="nearest")
    left.set_title("input")
    drawn = right.imshow(mosaic[..., 0], cmap=matplotlib.colormaps["viridis"].with_extremes(bad="white"),
                         vmin=0, vmax=1, interpolation="nearest")
    bar = fig.colorbar(drawn, cax=fig.add_axes([0.87, 0.2, 0.015, 0.6]), ticks=[0, 1])
    bar.ax.set_yticklabels(["the map's\nminimum", "the map's\nmaximum"], fontsize=7)
    for i, (top, col) in enumerate(corners):
        right.text(col + shown.shape[2] / 2, top - 0.5, str(i), ha="center", va="bottom", fontsize=7)
    for ax in (left, right):
        ax.axis("off")
    fig.suptitle(f"feature maps {tuple(maps.shape)} of one image (each channel scaled to its own range)")
    return _save(fig, path)


def plot_attention(weights, path, query_labels=None, key_labels=None, title="attention"):
    """Attention weights (L, S), or (H, L, S) for H heads side by side; rows are
    queries, columns the keys they attend to."""
    weights = _as_array(weights)
    if weights.ndim == 2:
        weights = weights[None]
    if weights.ndim != 3:
        raise ValueError(f"plot_attention: expected (L, S) or (H, L, S), got {weights.shape}")
    heads = weights.shape[0]
    fig = Figure(figsize=(3.2 * heads + 1, 3.4))
    axes = np.atleast_1d(fig.subplots(1, heads, squeeze=False)).ravel()
    for h, ax in enumerate(axes):
        image = ax.imshow(weights[h], cmap="magma", vmin=0, vmax=max(weights.max(), 1e-12))
        ax.set(title=f"head {h}" if heads > 1 else title, xlabel="key", ylabel="query")
        if key_labels is not None:
            ax.set_xticks(range(len(key_labels)), list(key_labels), fontsize=6)
        if query_labels is not None:
            ax.set_yticks(range(len(query_labels)), list(query_labels), fontsize=6)
    fig.colorbar(image, ax=list(axes), fraction=0.03)
    return _save(fig, path)


# ---- autograd graphs --------------------------------------------------------
def graph_of(tensor, names=None):
    """The computation graph behind `tensor`, walked through `grad_fn` and each
    Function's `inputs`, in the engine's topological order (no recursion).

    Returns (nodes, edges): nodes maps a node id to a dict with `label`, `kind`
    ("op", "leaf" or "output") and `depth` (longest path to the output, which
    has depth 0); edges is a list of (from_id, to_id) in data-flow direction.
    """
    names = {id(t): n for t, n in (names or {}).items()}
    nodes, edges = {}, []

    def tensor_label(t):
        shape = "x".join(map(str, t.shape)) or "scalar"
        return f"{names[id(t)]}\n{shape}" if id(t) in names else shape

    out_id = ("tensor", id(tensor))
    nodes[out_id] = dict(label=tensor_label(tensor), kind="output", depth=0)
    if tensor.grad_fn is None:
        return nodes, edges
    edges.append((("op", id(tensor.grad_fn)), out_id))
    depth, seen_edges = {id(tensor.grad_fn): 1}, set()
    # Every op comes after all the ops that consume its output, so its depth
    # (1 + the deepest consumer's) is final by the time we reach it.
    for function in topological_order(tensor.grad_fn):
        key = ("op", id(function))
        nodes[key] = dict(label=function.name, kind="op", depth=depth[id(function)])
        for t in function.inputs:
            child_depth = depth[id(function)] + 1
            if t.grad_fn is not None:
                child = ("op", id(t.grad_fn))
                depth[id(t.grad_fn)] = max(depth.get(id(t.grad_fn), 0), child_depth)
            else:
                child = ("tensor", id(t))
                old = nodes.get(child, {}).get("depth", 0)
                nodes[child] = dict(label=tensor_label(t), kind="leaf", depth=max(old, child_depth))
            if (child, key) not in seen_edges:           # x * x: one edge, drawn once
                seen_edges.add((child, key))
                edges.append((child, key))
    return nodes, edges


def plot_computation_graph(tensor, path, names=None, title=None):
    """Draw the graph that `tensor.backward()` would walk: leaves (inputs) on the
    left, ops by depth, the output on the right, arrows in data-flow direction.
    `names` maps tensors to labels, e.g. {x: "x", w: "w"}."""
    nodes, edges = graph_of(tensor, names)
    max_depth = max(n["depth"] for n in nodes.values())
    columns = {}
    for key, node in nodes.items():
        columns.setdefault(max_depth - node["depth"], []).append(key)
    position = {}
    for column, keys in columns.items():
        for row, key in enumerate(keys):
            position[key] = (column, (len(keys) - 1) / 2 - row)
    height = max(len(k) for k in columns.values())
    fig = Figure(figsize=(2.0 * (max_depth + 1) + 1, 1.2 * height + 1.2))
    ax = fig.subplots()
    for source, target in edges:
        ax.annotate("", xy=position[target], xytext=position[source],
                    arrowprops=dict(arrowstyle="-|>", color="0.4", shrinkA=22, shrinkB=22))
    colours = {"op": "#ffd8a8", "leaf": "#c5e3f6", "output": "#c8f0c0"}
    for key, node in nodes.items():
        x, y = position[key]
        ax.text(x, y, node["label"], ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.4" if node["kind"] == "op" else "square,pad=0.4",
                          facecolor=colours[node["kind"]], edgecolor="0.3"))
    ax.set_xlim(-0.7, max_depth + 0.7)
    ax.set_ylim(-height / 2 - 0.2, height / 2 + 0.2)
    ax.axis("off")
    ax.set_title(title or "computation graph (data flows right; gradients flow left)")
    return _save(fig, path)


# ---- diagrams ----------------------------------------------------------------
def im2col_layout(height, width, kernel=3, stride=1, padding=0, dilation=1):
    """For one channel of a height x width image, the im2col matrix of pixel
    numbers: entry [i*kernel + j, oy*wo + ox] is the number (1, 2, ... in
    row-major order) of the input pixel that tap (i, j) of the window of output
    pixel (oy, ox) reads, and 0 where it reads padding. Shape (kernel**2, ho*wo),
    the layout of minidl's conv kernels."""
    ho = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    wo = (width + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"im2col_layout: a {kernel}x{kernel} window (dilation {dilation}) does not fit "
                         f"a {height}x{width} image with padding {padding}")
    numbers = np.arange(1, height * width + 1).reshape(height, width)
    layout = np.zeros((kernel * kernel, ho * wo), dtype=np.int64)
    for i in range(kernel):
        for j in range(kernel):
            for oy in range(ho):
                for ox in range(wo):
                    iy = oy * stride - padding + i * dilation      # input row read by output row oy
                    ix = ox * stride - padding + j * dilation      # input column read by output column ox
                    if 0 <= iy < height and 0 <= ix < width:
                        layout[i * kernel + j, oy * wo + ox] = numbers[iy, ix]
    return layout


def plot_im2col(path, height=4, width=4, kernel=3, stride=1, padding=1, dilation=1, highlight=0):
    """Diagram: the input pixels (numbered) with one window marked, and the
    im2col matrix, one column per output pixel, with that window's column marked.
    The convolution is then weight (Cout, kernel**2) @ this matrix."""
    from matplotlib.patches import Rectangle

    layout = im2col_layout(height, width, kernel, stride, padding, dilation)
    rows, columns = layout.shape
    marked = set(layout[:, highlight][layout[:, highlight] > 0].tolist())
    fig = Figure(figsize=(2.2 + 0.45 * (width + 2 * padding) + 0.42 * columns, 1.6 + 0.42 * max(rows, height)))
    image_ax, matrix_ax = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[width + 2 * padding + 1, columns + 1]))
    for y in range(-padding, height + padding):
        for x in range(-padding, width + padding):
            inside = 0 <= y < height and 0 <= x < width
            number = y * width + x + 1 if inside else 0
            colour = "#ffd8a8" if number in marked else ("white" if inside else "0.88")
            image_ax.add_patch(Rectangle((x, -y), 1, 1, facecolor=colour, edgecolor="0.4"))
            image_ax.text(x + 0.5, -y + 0.5, str(number) if inside else "0", ha="center", va="center",
                          fontsize=8, color="black" if inside else "0.5")
    image_ax.set(xlim=(-padding - 0.2, width + padding + 0.2), ylim=(-height - padding + 0.8, padding + 1.2),
                 title=f"input {height}x{width}, padding {padding} (grey)\nwindow of output pixel {highlight}",
                 aspect="equal")
    image_ax.axis("off")
    for r in range(rows):
        for c in range(columns):
            colour = "#ffd8a8" if c == highlight else ("0.88" if layout[r, c] == 0 else "white")
            matrix_ax.add_patch(Rectangle((c, -r), 1, 1, facecolor=colour, edgecolor="0.6", lw=0.5))
            matrix_ax.text(c + 0.5, -r + 0.5, str(layout[r, c]), ha="center", va="center", fontsize=7,
                           color="black" if layout[r, c] else "0.5")
    matrix_ax.set(xlim=(-0.2, columns + 0.2), ylim=(-rows + 0.8, 1.2), aspect="equal",
                  title=f"im2col: ({kernel}x{kernel} taps, {columns} output pixels) = {layout.shape}, "
                        f"stride {stride}, dilation {dilation}")
    matrix_ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def plot_attention_shapes(path, L=4, S=6, E=3, Ev=2):
    """Diagram of scaled dot-product attention's shapes for one head:
    Q (L, E) @ K^T (E, S) -> scores (L, S) -> softmax over each row ->
    weights (L, S) @ V (S, Ev) -> out (L, Ev). Boxes are drawn to scale."""
    from matplotlib.patches import Rectangle

    pieces = [("Q", L, E, "#c5e3f6"), ("@", None, None, None), ("K^T", E, S, "#c5e3f6"),
              ("=", None, None, None), ("scores\nQ K^T / sqrt(E)", L, S, "#ffd8a8"),
              ("softmax\nper row", None, None, None), ("weights", L, S, "#ffd8a8"),
              ("@", None, None, None), ("V", S, Ev, "#c8f0c0"), ("=", None, None, None),
              ("out", L, Ev, "#c8f0c0")]
    fig = Figure(figsize=(1.0 + 0.42 * sum(c or 1.6 for _, _, c, _ in pieces), 1.4 + 0.42 * max(L, S, E)))
    ax = fig.subplots()
    x = 0.0
    for name, rows, cols, colour in pieces:
        if rows is None:
            ax.text(x + 0.8, 0, name, ha="center", va="center", fontsize=9)
            x += 1.6
            continue
        ax.add_patch(Rectangle((x, -rows / 2), cols, rows, facecolor=colour, edgecolor="0.3"))
        for r in range(1, rows):
            ax.plot([x, x + cols], [-rows / 2 + r] * 2, color="0.6", lw=0.4)
        for c in range(1, cols):
            ax.plot([x + c] * 2, [-rows / 2, rows / 2], color="0.6", lw=0.4)
        ax.text(x + cols / 2, rows / 2 + 0.35, f"{name}\n({rows}, {cols})", ha="center", va="bottom", fontsize=8)
        x += cols + 0.3
    height = max(L, S, E)
    ax.set(xlim=(-0.3, x + 0.3), ylim=(-height / 2 - 0.5, height / 2 + 2.2), aspect="equal")
    ax.axis("off")
    ax.set_title(f"attention for one head: L = {L} queries, S = {S} keys/values, E = {E}, Ev = {Ev}; "
                 "batch and head axes come first: (..., L, E)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
