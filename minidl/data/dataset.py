"""`ArrayDataset`: images and labels held as two NumPy arrays, indexed together.

    ds = ArrayDataset(images, labels, classes=["cat", "dog"], name="pets")
    len(ds)              # N
    image, label = ds[3] # image: ndarray (C, H, W), label: int

It plays the role of PyTorch's `TensorDataset`, but keeps plain arrays inside:
the `DataLoader` slices whole batches out of them and wraps each batch in a
`minidl.Tensor` only at the end.
"""
import numpy as np


class ArrayDataset:
    """A dataset made of `images` (N, ...) and `labels` (N,) arrays.

    `images` keeps its dtype (the built-in datasets give float32 in [0, 1],
    shape (N, 1, H, W)); `labels` are stored as int64 class indices.
    `classes` names the classes (index -> name); `name` is a short label.
    """

    def __init__(self, images, labels, classes=None, name=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim < 1:
            raise ValueError(f"ArrayDataset: images must have a leading sample axis, got shape {images.shape}")
        if labels.ndim != 1:
            raise ValueError(f"ArrayDataset: labels must be 1-D (N,), got shape {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(
                f"ArrayDataset: images {images.shape} and labels {labels.shape} "
                f"have different numbers of samples ({len(images)} vs {len(labels)})")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"ArrayDataset: labels must be integer class indices, got dtype {labels.dtype}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = list(classes) if classes is not None else None
        self.name = name

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        """`(image, label)` for an integer index (negative counts from the end);
        `(images, labels)` arrays for a slice or an index array."""
        if isinstance(index, (int, np.integer)):
            return self.images[index], int(self.labels[index])
        return self.images[index], self.labels[index]

    def get_batch(self, indices):
        """Return `(images, labels)` arrays for an index array (used by DataLoader)."""
        return self.images[indices], self.labels[indices]

    def __repr__(self):
        n_classes = len(self.classes) if self.classes is not None else "?"
        return (f"ArrayDataset(name={self.name!r}, images={self.images.shape} {self.images.dtype}, "
                f"labels={self.labels.shape}, classes={n_classes})")
