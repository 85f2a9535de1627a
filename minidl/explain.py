"""Seeing inside a trained classifier: which pixels did it use?

    from minidl import explain
    maps = explain.saliency(model, images)                  # (N, H, W): |d score / d pixel|
    maps = explain.grad_cam(model, model.conv3, images)     # (N, H, W): where a conv layer looked
    maps = explain.attention_rollout(vit, images)           # (N, H, W): what the class token read
    explain.deletion_check(model, images, labels, maps, fraction=0.1)   # is the map faithful?

All three give one non-negative map per image, at the input's height and
width, scaled so that each map's largest value is 1.

- Saliency (Simonyan et al., 2013): the gradient of the class score (the
  logit, before softmax) with respect to every input pixel; its size says how
  much a small change of that pixel would move the score. Maximum of |grad|
  over channels.
- Grad-CAM (Selvaraju et al., 2017) for a Conv2d layer with output A (N, K, h, w):
  weight each of the K maps by the mean gradient of the class score over it,
  alpha_k = mean over (h, w) of d score / d A_k, sum, keep the positive part:
  cam = relu(sum_k alpha_k A_k), then resize (h, w) -> (H, W) bilinearly.
- Attention rollout (Abnar & Zuidema, 2020) for a ViT with a class token:
  per layer, the head-averaged attention A (T, T) mixed with the residual
  path, A' = (A + I) / 2 (rows renormalised), multiplied through the layers:
  R = A'_L ... A'_2 A'_1. Row 0 of R, without its first entry, says how much
  each patch flowed into the class token; each patch's value fills its pixels.

An explanation is only worth its faithfulness: hiding the pixels a map calls
important should hurt the classifier much more than hiding as many random
pixels. `deletion_check` measures both accuracies.

The target class is the model's own prediction unless `target` is given.
"""
import numpy as np

import minidl as mdl
from . import functional as F
from .autograd.tensor import Tensor


def _as_input(images):
    return np.asarray(getattr(images, "data", images), dtype=np.float32)     # (N, C, H, W)


def _targets(logits, target):
    """Class per image: the prediction (target None), one int, or one per image."""
    n = logits.shape[0]
    if target is None:
        return np.argmax(logits, axis=1)
    target = np.broadcast_to(np.asarray(target, dtype=np.int64), (n,))
    if target.min() < 0 or target.max() >= logits.shape[1]:
        raise ValueError(f"explain: target classes must be in [0, {logits.shape[1]}), got {target}")
    return target


def _class_score(logits, classes):
    """Sum over images of each image's logit for its class (a scalar to differentiate)."""
    one_hot = np.zeros(logits.shape, dtype=logits.dtype)                      # (N, classes)
    one_hot[np.arange(len(classes)), classes] = 1.0
    return (logits * Tensor(one_hot)).sum()


def _normalise(maps):
    """Scale each map (N, H, W) so its maximum is 1 (an all-zero map stays zero)."""
    top = maps.reshape(len(maps), -1).max(axis=1)                             # (N,)
    return maps / np.where(top > 0, top, 1.0)[:, None, None]


def saliency(model, images, target=None):
    """|d logit[target] / d image|, max over channels: (N, H, W), each map's max 1."""
    x = Tensor(_as_input(images), requires_grad=True)                          # (N, C, H, W)
    was_training = model.training
    model.eval()
    with mdl.enable_grad():
        logits = model(x)                                                      # (N, classes)
    _class_score(logits, _targets(logits.data, target)).backward()
    model.zero_grad()                                 # the weights' gradients are a by-product
    model.train(was_training)
    return _normalise(np.abs(x.grad).max(axis=1))                              # (N, H, W)


def find_layer(model, layer):
    """A sub-module given as itself or by its name in model.named_modules() ("conv3")."""
    if isinstance(layer, str):
        named = dict(model.named_modules())
        if layer not in named:
            convs = [n for n, m in named.items() if type(m).__name__ == "Conv2d"]
            raise ValueError(f"grad_cam: the model has no layer {layer!r}; its Conv2d layers: {convs}")
        return named[layer]
    return layer


def last_conv2d(model):
    """The name of the model's last Conv2d layer (in registration order), or None."""
    names = [n for n, m in model.named_modules() if type(m).__name__ == "Conv2d"]
    return names[-1] if names else None


def grad_cam(model, layer, images, target=None):
    """Grad-CAM maps (N, H, W) of `layer` (a Conv2d module, or its name), each map's max 1."""
    layer = find_layer(model, layer)
    x = Tensor(_as_input(images))                                               # (N, C, H, W)
    recorded = []
    original_forward = layer.forward

    def recording_forward(*args, **kwargs):          # keep the layer's output in the graph
        out = original_forward(*args, **kwargs)
        recorded.append(out.retain_grad())
        return out

    was_training = model.training
    model.eval()
    object.__setattr__(layer, "forward", recording_forward)
    try:
        with mdl.enable_grad():
            logits = model(x)                                                   # (N, classes)
    finally:
        del layer.__dict__["forward"]
    if len(recorded) != 1 or recorded[0].ndim != 4:
        raise ValueError(f"grad_cam: the layer must run once per forward pass and give (N, K, h, w) "
                         f"maps; got {len(recorded)} calls with shapes {[tuple(r.shape) for r in recorded]}")
    activations = recorded[0]                                                   # (N, K, h, w)
    if not logits.requires_grad:
        raise ValueError("grad_cam: the model's output does not depend on trainable weights "
                         "(no graph was recorded)")
    _class_score(logits, _targets(logits.data, target)).backward()
    model.zero_grad()
    model.train(was_training)
    alpha = activations.grad.mean(axis=(2, 3))                                 # (N, K)
    cam = np.maximum(np.einsum("nk,nkhw->nhw", alpha, activations.data), 0.0)  # (N, h, w)
    resized = F.interpolate(Tensor(cam[:, None].astype(np.float32)), size=x.shape[2:],
                            mode="bilinear").data[:, 0]                         # (N, H, W)
    return _normalise(resized)


def attention_rollout(vit, images):
    """Attention rollout (N, H, W) of a VisionTransformer (minidl.models.vit), each map's max 1."""
    if not hasattr(vit, "attention_maps") or not hasattr(vit, "class_token"):
        raise ValueError(f"attention_rollout: needs a VisionTransformer with a class token, "
                         f"got {type(vit).__name__}")
    maps = vit.attention_maps(Tensor(_as_input(images)))                       # layers x (N, T, T)
    tokens = maps[0].shape[-1]
    rollout = np.broadcast_to(np.eye(tokens), maps[0].shape).copy()            # (N, T, T)
    for attention in maps:
        mixed = 0.5 * attention + 0.5 * np.eye(tokens)                         # the residual path
        mixed /= mixed.sum(axis=-1, keepdims=True)
        rollout = mixed @ rollout                                              # (N, T, T)
    side = vit.image_size // vit.patch_size
    patches = rollout[:, 0, 1:].reshape(-1, side, side)                        # class token <- patches
    pixels = np.kron(patches, np.ones((vit.patch_size, vit.patch_size)))       # (N, H, W)
    return _normalise(pixels)


# ---- is an explanation faithful? ------------------------------------------------------
def hide(images, pixels_to_hide, value=0.0):
    """A copy of images (N, C, H, W) with the (N, H, W) True pixels set to `value` in every channel."""
    hidden = np.array(images, copy=True)
    hidden[np.broadcast_to(pixels_to_hide[:, None], hidden.shape)] = value
    return hidden


def top_pixels(maps, count):
    """(N, H, W) bool: the `count` largest entries of each map (ties broken by position)."""
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")[:, :count]                # (N, count)
    chosen = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(chosen, order, True, axis=1)
    return chosen.reshape(maps.shape)


def random_pixels(shape, count, rng):
    """(N, H, W) bool with `count` pixels drawn at random (without repeats) in each image."""
    n, h, w = shape
    chosen = np.zeros((n, h * w), dtype=bool)
    for i in range(n):
        chosen[i, rng.choice(h * w, count, replace=False)] = True
    return chosen.reshape(shape)


def deletion_check(classify, images, labels, maps, fraction=0.1, seed=0, value=0.0):
    """Accuracy of `classify` (raw images (N, C, H, W) -> predicted classes (N,))
    on the images, with the top `fraction` of pixels of each map hidden (set to
    `value`), and with as many random pixels hidden. Returns a dict with
    `original`, `salient_hidden`, `random_hidden` accuracies and `pixels_hidden`."""
    images, labels = _as_input(images), np.asarray(labels)
    count = max(1, int(round(fraction * maps[0].size)))
    rng = np.random.default_rng(seed)
    accuracy = {}
    for name, hidden in (("original", images),
                         ("salient_hidden", hide(images, top_pixels(maps, count), value)),
                         ("random_hidden", hide(images, random_pixels(maps.shape, count, rng), value))):
        accuracy[name] = float(np.mean(np.asarray(classify(hidden)) == labels))
    return dict(accuracy, pixels_hidden=count)


# ---- `minidl explain RUN_DIR` ------------------------------------------------------------
def explain_run(run_dir, num=8, layer=None, fraction=0.1, out=None, log=print):
    """For a classifier run: a grid of `num` test images with their maps
    (saliency; Grad-CAM of `layer` or of the last Conv2d; attention rollout for
    a ViT) saved as explain.png, and the deletion check of every map over the
    whole test set saved as explain.json. Returns that dict."""

    from .models.vit import VisionTransformer
    from .training import RunDirectory
    from .training.classifier import load_data, new_model, prepare_batch
    from .training.config import TrainConfig

    run = RunDirectory(run_dir)
    config = TrainConfig.from_dict(run.load_config())
    if config.kind != "classifier":
        raise ValueError(f"explain: {run_dir} holds a {config.model!r} run ({config.kind}); "
                         f"explanations are for classifiers")
    train_set, test_set = load_data(config)
    model = new_model(config, train_set)
    model.load_state_dict(run.load_checkpoint()["model"])
    model.eval()
    inputs = prepare_batch(test_set.images, config.dataset)                     # normalised (N, C, H, W)

    def classify(raw):
        with mdl.no_grad():
            return model(prepare_batch(raw, config.dataset)).data.argmax(axis=1)

    methods = {"saliency": lambda x: saliency(model, x)}
    layer = layer or last_conv2d(model)
    if layer is not None:
        methods[f"Grad-CAM {layer}"] = lambda x: grad_cam(model, layer, x)
    if isinstance(model, VisionTransformer):
        methods["attention rollout"] = lambda x: attention_rollout(model, x)
    maps = {name: np.concatenate([method(inputs[i:i + 150]) for i in range(0, len(test_set), 150)])
            for name, method in methods.items()}
    report = dict(model=config.model, dataset=config.dataset, fraction_hidden=fraction, methods={})
    for name, values in maps.items():
        check = deletion_check(classify, test_set.images, test_set.labels, values, fraction)
        report["methods"][name] = check
        log(f"{name}: accuracy {check['original']:.1%} -> {check['salient_hidden']:.1%} with the "
            f"{check['pixels_hidden']} most important pixels hidden, {check['random_hidden']:.1%} with "
            f"{check['pixels_hidden']} random pixels hidden")
    path = out or run.file("explain.png")
    predictions = classify(test_set.images[:num])
    plot_explanations(test_set.images[:num], {k: v[:num] for k, v in maps.items()}, path,
                      [f"{test_set.classes[t]} -> {test_set.classes[p]}"
                       for t, p in zip(test_set.labels[:num], predictions)])
    run.write_json("explain.json", report)
    log(f"wrote {path} and {run.file('explain.json')}")
    return report


def plot_explanations(images, maps, path, titles=None):
    """A grid: one row per image; the image, then each map drawn over it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = _as_input(images)
    rows, columns = len(images), 1 + len(maps)
    fig, axes = plt.subplots(rows, columns, figsize=(1.8 * columns, 1.7 * rows), squeeze=False)
    for row in range(rows):
        picture = images[row].mean(axis=0)                                     # (H, W)
        axes[row, 0].imshow(picture, cmap="gray")
        if titles is not None:
            axes[row, 0].set_title(f"true -> predicted\n{titles[row]}", fontsize=7)
        for column, (name, values) in enumerate(maps.items(), start=1):
            axes[row, column].imshow(picture, cmap="gray")
            axes[row, column].imshow(values[row], cmap="inferno", alpha=0.6, vmin=0, vmax=1)
            if row == 0:
                axes[row, column].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
