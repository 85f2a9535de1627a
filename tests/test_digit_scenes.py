"""digit-scenes: every label comes from the digit under it, splits never mix, scenes repeat exactly."""
import numpy as np
import pytest

from minidl.data import DataLoader, load_dataset, load_scenes, make_scenes, plot_scenes
from minidl.data.digit_scenes import STROKE_THRESHOLD, SCENE_CLASSES, _free, stroke_labels


@pytest.fixture(scope="module")
def scenes():
    return {split: load_scenes("digit-scenes", split) for split in ("train", "test")}


def test_shapes_dtypes_and_classes(scenes):
    train, test = scenes["train"], scenes["test"]
    assert train.images.shape == (1000, 1, 32, 32) and test.images.shape == (300, 1, 32, 32)
    assert train.images.dtype == np.float32 and train.masks.dtype == np.int64
    assert train.masks.shape == (1000, 32, 32)
    assert SCENE_CLASSES == ["background"] + [str(d) for d in range(10)]
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    assert set(np.unique(train.masks)) == set(range(11)), "every class appears in training scenes"


def test_every_scene_holds_two_to_four_non_overlapping_digits(scenes):
    for data in scenes.values():
        per_scene = np.bincount(data.placements[:, 0], minlength=len(data))
        assert per_scene.min() == 2 and per_scene.max() == 4
        for scene in range(0, len(data), 7):
            boxes = data.placements[data.placements[:, 0] == scene][:, 2:]
            cover = np.zeros((32, 32), dtype=int)
            for row, column in boxes:
                cover[row:row + 8, column:column + 8] += 1
            assert cover.max() == 1, f"scene {scene}: digit squares overlap"


def test_each_label_is_the_class_of_the_digit_stroke_under_it(scenes):
    """Rebuild every label map from the placements and the source digits, by hand."""
    for data in scenes.values():
        digits = data.source
        expected_images = np.zeros_like(data.images)
        expected = np.zeros_like(data.masks)
        for scene, source, row, column in data.placements:
            picture = digits.images[source, 0]                         # (8, 8)
            expected_images[scene, 0, row:row + 8, column:column + 8] = picture
            stroke = picture >= STROKE_THRESHOLD
            expected[scene, row:row + 8, column:column + 8][stroke] = 1 + digits.labels[source]
        np.testing.assert_array_equal(data.images, expected_images)
        np.testing.assert_array_equal(data.masks, expected)
        # pixels labelled background are empty canvas or faint ink, never strong ink
        assert data.images[:, 0][data.masks == 0].max() < STROKE_THRESHOLD
        assert data.images[:, 0][data.masks > 0].min() >= STROKE_THRESHOLD


def test_train_scenes_use_only_training_digits_and_test_scenes_only_test_digits(scenes):
    for split, data in scenes.items():
        split_digits = load_dataset("digits", split)
        np.testing.assert_array_equal(data.source.images, split_digits.images)
        # every 8x8 square cut out of a scene is, pixel for pixel, a digit of its own split
        own = {image.tobytes() for image in split_digits.images[:, 0]}
        for scene, _, row, column in data.placements:
            square = np.ascontiguousarray(data.images[scene, 0, row:row + 8, column:column + 8])
            assert square.tobytes() in own
    training = {image.tobytes() for image in load_dataset("digits", "train").images[:, 0]}
    test = scenes["test"]
    unseen = [test.source.images[source, 0].tobytes() not in training for source in test.placements[:, 1]]
    assert np.mean(unseen) > 0.99, "test scenes are made of digits never seen in training"


def test_scenes_are_deterministic_and_the_splits_differ():
    digits = load_dataset("digits", "test")
    a = make_scenes(digits, 20, 32, seed=5)
    b = make_scenes(digits, 20, 32, seed=5)
    c = make_scenes(digits, 20, 32, seed=6)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.masks, c.masks)


def test_cached_scenes_are_read_only(scenes):
    with pytest.raises(ValueError):
        scenes["train"].masks[0, 0, 0] = 3


def test_dataloader_gives_image_and_mask_batches(scenes):
    images, masks = next(iter(DataLoader(scenes["test"], batch_size=16)))
    assert images.shape == (16, 1, 32, 32) and masks.shape == (16, 32, 32)
    assert masks.dtype == np.int64


def test_bad_names_and_sizes_raise():
    with pytest.raises(ValueError, match="unknown scene set"):
        load_scenes("digit-scene")
    with pytest.raises(ValueError, match="split"):
        load_scenes("digit-scenes", "validation")
    with pytest.raises(ValueError, match="canvas"):
        make_scenes(load_dataset("digits", "test"), 3, 12, seed=0)


def test_mnist_scenes_when_mnist_5k_is_installed():
    try:
        data = load_scenes("digit-scenes-mnist-5k", "test")
    except FileNotFoundError as error:
        pytest.skip(f"MNIST-5k not installed: {error}")
    assert data.images.shape == (500, 1, 64, 64)
    scene, source, row, column = data.placements[0]
    patch = data.masks[scene, row:row + 28, column:column + 28]
    assert set(np.unique(patch)) <= {0, 1 + data.source.labels[source]}


def test_picture_of_scenes_and_label_maps(scenes, tmp_path):
    path = plot_scenes(scenes["test"], tmp_path / "scenes.png", predictions=scenes["test"].masks[:8])
    assert path.stat().st_size > 5000


def test_stroke_labels_by_hand_at_the_threshold():
    patch = np.array([[0.0, STROKE_THRESHOLD], [np.nextafter(np.float32(STROKE_THRESHOLD), np.float32(0)), 1.0]], np.float32)
    np.testing.assert_array_equal(stroke_labels(patch, 7), [[0, 8], [0, 8]])   # ink >= threshold: 1 + class


def test_digit_squares_may_touch_but_never_overlap():
    boxes = [(4, 4)]                      # one 8x8 digit covering rows and columns 4..11
    for row, column in ((12, 4), (4, 12), (-4, -4), (4, -4), (-4, 4)):   # edge to edge, or far
        assert _free(boxes, row, column, 8), (row, column)
    for row, column in ((11, 4), (4, 11), (5, 5), (-3, 4), (4, -3), (11, 11)):   # one pixel shared
        assert not _free(boxes, row, column, 8), (row, column)
