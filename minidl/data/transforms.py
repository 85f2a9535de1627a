"""Batch transforms in plain NumPy: normalisation and the two classic augmentations.

All functions take a batch `images` (N, C, H, W) and return a new array; the
input is never changed. Random ones take an `np.random.Generator` so a
training run controls (and can replay) its randomness.

    mean, std = NORMALIZATION["fashion-mnist"]
    x = normalize(images, mean, std)
    x = random_crop(x, padding=2, rng=rng)       # shift by up to 2 pixels
    x = horizontal_flip(x, rng=rng)              # mirror half the images

Flipping only makes sense when a mirrored image is still the same class:
true for clothes (Fashion-MNIST), false for digits ('2' mirrored is not a 2),
so `augment` flips only the datasets listed in FLIPPABLE.
"""
import numpy as np

# (mean, std) of the training split's pixels in [0, 1], one channel;
# tests/test_data.py recomputes them from the data.
NORMALIZATION = {
    "digits": (0.3057, 0.3762),
    "mnist": (0.1307, 0.3081),
    "mnist-5k": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
}
FLIPPABLE = frozenset({"fashion-mnist"})


def _check_batch(op, images):
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{op}: expected a batch (N, C, H, W), got shape {images.shape}")
    return images


def mean_std(images):
    """Mean and standard deviation over all pixels of `images` (any shape), as floats."""
    images = np.asarray(images)
    return float(images.mean(dtype=np.float64)), float(images.std(dtype=np.float64))


def normalize(images, mean, std):
    """(images - mean) / std. `mean`, `std`: scalars or per-channel sequences (C,)."""
    images = _check_batch("normalize", images)
    dtype = images.dtype if images.dtype.kind == "f" else np.float32
    mean = np.asarray(mean, dtype=dtype)
    std = np.asarray(std, dtype=dtype)
    if np.any(std <= 0):
        raise ValueError(f"normalize: std must be positive, got {std}")
    if mean.ndim == 1:                               # per channel -> (1, C, 1, 1)
        if mean.shape[0] != images.shape[1] or std.shape != mean.shape:
            raise ValueError(f"normalize: mean {mean.shape} / std {std.shape} must have one value per channel ({images.shape[1]})")
        mean, std = mean[None, :, None, None], std[None, :, None, None]
    return ((images - mean) / std).astype(dtype, copy=False)


def normalize_dataset(images, name):
    """Normalise with the training-set statistics of dataset `name`."""
    if name not in NORMALIZATION:
        raise ValueError(f"normalize_dataset: no statistics for {name!r}; known: {sorted(NORMALIZATION)}")
    mean, std = NORMALIZATION[name]
    return normalize(images, mean, std)


def random_crop(images, padding, rng):
    """Zero-pad each image by `padding` on every side, then cut an H x W window
    at a random offset (0..2*padding in each direction): a random shift."""
    images = _check_batch("random_crop", images)
    if not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"random_crop: padding must be a non-negative int, got {padding!r}")
    n, c, h, w = images.shape
    if padding == 0:
        return images.copy()
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))  # (N, C, H+2p, W+2p)
    top = rng.integers(0, 2 * padding + 1, size=n)   # (N,) window's first row in `padded`
    left = rng.integers(0, 2 * padding + 1, size=n)  # (N,) window's first column
    rows = top[:, None] + np.arange(h)               # (N, H) rows each image keeps
    cols = left[:, None] + np.arange(w)              # (N, W)
    return padded[np.arange(n)[:, None, None, None],
                  np.arange(c)[None, :, None, None],
                  rows[:, None, :, None],
                  cols[:, None, None, :]]            # (N, C, H, W)


def horizontal_flip(images, rng, p=0.5):
    """Mirror each image left-right with probability `p`."""
    images = _check_batch("horizontal_flip", images)
    flip = rng.random(len(images)) < p               # (N,) which images to mirror
    return np.where(flip[:, None, None, None], images[..., ::-1], images)


def augment(images, name, rng, padding=None):
    """The default training augmentation for dataset `name`: a random shift of
    up to `padding` pixels (default 1 for 8x8 digits, 2 for 28x28 images),
    plus a horizontal flip for datasets in FLIPPABLE."""
    images = _check_batch("augment", images)
    if padding is None:
        padding = 1 if images.shape[-1] <= 8 else 2
    out = random_crop(images, padding, rng)
    if name in FLIPPABLE:
        out = horizontal_flip(out, rng)
    return out
