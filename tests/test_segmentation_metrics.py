"""Pixel accuracy, IoU and mIoU against cases counted by hand."""
import numpy as np
import pytest

from minidl.segmentation_metrics import confusion_counts, iou_per_class, mean_iou, pixel_accuracy


def test_a_four_by_four_case_counted_by_hand():
    true = np.array([[0, 0, 1, 1],
                     [0, 0, 1, 1],
                     [0, 0, 0, 0],
                     [2, 2, 0, 0]])
    predicted = np.array([[0, 0, 1, 0],
                          [0, 1, 1, 1],
                          [0, 0, 0, 0],
                          [2, 0, 0, 0]])
    counts = confusion_counts(true, predicted, 3)
    # class 0: 10 true, 9 of them right, 1 predicted as 1; predicted 0 also at two pixels of 1 and 2
    np.testing.assert_array_equal(counts, [[9, 1, 0], [1, 3, 0], [1, 0, 1]])
    assert pixel_accuracy(counts) == pytest.approx(13 / 16)
    # IoU 0: 9 / (10 + 11 - 9) = 9/12; IoU 1: 3 / (4 + 4 - 3) = 3/5; IoU 2: 1 / (2 + 1 - 1) = 1/2
    np.testing.assert_allclose(iou_per_class(counts), [9 / 12, 3 / 5, 1 / 2])
    assert mean_iou(counts) == pytest.approx((9 / 12 + 3 / 5 + 1 / 2) / 3)


def test_perfect_prediction_scores_one_and_absent_classes_are_left_out():
    true = np.array([[0, 1], [1, 0]])
    counts = confusion_counts(true, true, 4)           # classes 2 and 3 never appear
    iou = iou_per_class(counts)
    assert iou[0] == iou[1] == 1.0 and np.isnan(iou[2]) and np.isnan(iou[3])
    assert mean_iou(counts) == 1.0 and pixel_accuracy(counts) == 1.0


def test_all_background_scores_high_accuracy_but_low_miou():
    true = np.zeros((10, 10), dtype=np.int64)
    true[2:4, 2:4] = 1
    true[6:8, 6:8] = 2
    counts = confusion_counts(true, np.zeros_like(true), 3)
    assert pixel_accuracy(counts) == pytest.approx(0.92)
    assert mean_iou(counts) == pytest.approx(0.92 / 3)


def test_a_class_predicted_but_absent_counts_as_zero():
    counts = confusion_counts(np.array([0, 0, 0]), np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(iou_per_class(counts), [2 / 3, 0.0])


def test_bad_label_maps_raise():
    with pytest.raises(ValueError, match="same shape"):
        confusion_counts(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        confusion_counts(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(TypeError, match="integers"):
        confusion_counts(np.array([0.0]), np.array([0]), 2)
    for true, predicted in (([-1, 1], [0, 1]), ([0, 1], [1, -1])):    # a negative label among good ones
        with pytest.raises(ValueError, match=r"in \[0, 2\)"):
            confusion_counts(np.array(true), np.array(predicted), 2)


def test_pixel_accuracy_of_one_pixel_and_of_none():
    assert pixel_accuracy(np.array([[1, 0], [0, 0]])) == 1.0          # one pixel, right
    assert pixel_accuracy(np.array([[0, 1], [0, 0]])) == 0.0          # one pixel, wrong
    assert pixel_accuracy(np.zeros((2, 2), np.int64)) == 0.0          # no pixels: 0 / 1, not a division by zero
