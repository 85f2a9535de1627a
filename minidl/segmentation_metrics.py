"""How good is a segmentation? Pixel accuracy, per-class IoU and their mean (mIoU).

    counts = confusion_counts(true_masks, predicted_masks, num_classes=11)
    pixel_accuracy(counts)      # share of pixels labelled right (background dominates it)
    iou_per_class(counts)       # per class: |true AND predicted| / |true OR predicted|
    mean_iou(counts)            # mIoU: the mean over classes, each class counted once

counts[t, p] is the number of pixels of true class t predicted as class p,
summed over a whole test set. For class c:

    intersection = counts[c, c]                         (right pixels of c)
    union        = counts[c, :].sum() + counts[:, c].sum() - counts[c, c]
    IoU(c)       = intersection / union

A class that is neither present nor predicted anywhere has no IoU (NaN) and
is left out of the mean. On scenes that are 92% background, labelling every
pixel "background" already scores 92% pixel accuracy but an mIoU of 0.92 / 11:
that is why segmentation is judged by mIoU.
"""
import numpy as np


def confusion_counts(true, predicted, num_classes):
    """(num_classes, num_classes) int64 counts of (true class, predicted class) pixel pairs."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    if true.shape != predicted.shape:
        raise ValueError(f"confusion_counts: true {true.shape} and predicted {predicted.shape} "
                         f"label maps must have the same shape")
    for name, labels in (("true", true), ("predicted", predicted)):
        if labels.dtype.kind not in "iu":
            raise TypeError(f"confusion_counts: {name} labels must be integers, got {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"confusion_counts: {name} labels must be in [0, {num_classes}), "
                             f"got values {labels.min()}..{labels.max()}")
    pairs = true.ravel().astype(np.int64) * num_classes + predicted.ravel()     # one code per pixel
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def pixel_accuracy(counts):
    """Right pixels / all pixels."""
    counts = np.asarray(counts)
    return float(np.trace(counts) / max(counts.sum(), 1))


def iou_per_class(counts):
    """IoU of every class (float64 array; NaN for a class neither present nor predicted)."""
    counts = np.asarray(counts, dtype=np.float64)
    intersection = np.diag(counts)
    union = counts.sum(axis=1) + counts.sum(axis=0) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1), np.nan)


def mean_iou(counts):
    """The mean IoU over classes that have one (mIoU)."""
    iou = iou_per_class(counts)
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")
