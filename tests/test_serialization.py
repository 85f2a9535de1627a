"""mdl.save / mdl.load: .npz round trips without pickle, and clear errors for bad files."""
import os
import zipfile

import numpy as np
import pytest

import minidl as mdl
from minidl import nn
from minidl.serialization import strip_prefix


def test_round_trip_keeps_values_dtypes_and_nested_names(tmp_path):
    rng = np.random.default_rng(0)
    state = {
        "w32": rng.standard_normal((3, 4)).astype(np.float32),
        "w64": rng.standard_normal(5),
        "ints": np.arange(6, dtype=np.int64).reshape(2, 3),
        "mask": np.array([True, False]),
        "epoch": 7,
        "lr": 0.125,
        "name": "lenet",
        "tensor": mdl.tensor(np.ones(2)),
        "optimizer": {"state": {"0": {"exp_avg": np.full(3, 0.5)}}},
    }
    path = tmp_path / "state.npz"
    mdl.save(state, path)
    loaded = mdl.load(path)
    assert set(loaded) == {"w32", "w64", "ints", "mask", "epoch", "lr", "name", "tensor",
                           "optimizer.state.0.exp_avg"}
    for key in ("w32", "w64", "ints", "mask"):
        assert loaded[key].dtype == state[key].dtype
        np.testing.assert_array_equal(loaded[key], state[key])
    assert loaded["epoch"].shape == () and int(loaded["epoch"]) == 7
    assert float(loaded["lr"]) == 0.125 and str(loaded["name"]) == "lenet"
    np.testing.assert_array_equal(loaded["tensor"], np.ones(2))
    np.testing.assert_array_equal(loaded["optimizer.state.0.exp_avg"], np.full(3, 0.5))


def test_model_checkpoint_round_trip(tmp_path):
    mdl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    path = tmp_path / "model.ckpt"                     # the exact path, no extension added
    mdl.save({"model": model.state_dict(), "epoch": 2}, path)
    assert os.listdir(tmp_path) == ["model.ckpt"]      # no temporary files left behind
    mdl.manual_seed(1)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    state = mdl.load(path)
    fresh.load_state_dict(strip_prefix(state, "model"))
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_save_overwrites_and_reads_plain_np_savez_files(tmp_path):
    path = tmp_path / "x.npz"
    mdl.save({"a": np.zeros(2)}, path)
    mdl.save({"b": np.ones(3)}, path)
    assert list(mdl.load(path)) == ["b"]
    np.savez(tmp_path / "numpy.npz", weight=np.arange(3.0))
    np.testing.assert_array_equal(mdl.load(tmp_path / "numpy.npz")["weight"], np.arange(3.0))


def test_save_rejects_objects_and_key_collisions(tmp_path):
    with pytest.raises(TypeError, match="save: 'bad' is a ndarray that would need pickle"):
        mdl.save({"bad": np.array([{"x": 1}], dtype=object)}, tmp_path / "a.npz")
    with pytest.raises(ValueError, match="'a.b' appears twice"):
        mdl.save({"a.b": 1, "a": {"b": 2}}, tmp_path / "b.npz")
    with pytest.raises(TypeError, match="keys must be non-empty strings"):
        mdl.save({1: np.zeros(1)}, tmp_path / "c.npz")
    assert not (tmp_path / "a.npz").exists()


def test_truncated_file_raises_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    mdl.save({"w": np.arange(1000.0)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"ckpt.npz' is not a valid .npz file.*truncated"):
        mdl.load(path)


def test_corrupt_entry_raises_a_clear_error_naming_the_entry(tmp_path):
    path = tmp_path / "ckpt.npz"
    mdl.save({"w": np.zeros(1000)}, path)
    data = bytearray(path.read_bytes())
    middle = data.index(b"\x00" * 64) + 32           # inside w's data: flip a byte
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"ckpt.npz' entry 'w' is corrupt"):
        mdl.load(path)


def test_non_npz_files_raise_clear_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt' is not a valid .npz file: it is not a zip archive"):
        mdl.load(text)
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match="single-array .npy file"):
        mdl.load(npy)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        mdl.load(tmp_path / "missing.npz")


def test_npz_with_object_arrays_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, fine=np.zeros(2), payload=np.array([{"run": "code"}, None], dtype=object))
    with pytest.raises(ValueError, match="evil.npz' entry 'payload' holds an object array"):
        mdl.load(path)
    with zipfile.ZipFile(path) as archive:             # it really is pickle inside
        assert any(name.startswith("payload") for name in archive.namelist())


def test_a_save_that_fails_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    mdl.save({"w": np.arange(3.0)}, path)
    before = path.read_bytes()
    real, calls = np.lib.format.write_array, []

    def fail_on_the_second_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", fail_on_the_second_array)
    with pytest.raises(OSError, match="No space left"):
        mdl.save({"w": np.zeros(3), "b": np.ones(2)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(mdl.load(path)["w"], np.arange(3.0))


def test_a_saved_file_gets_the_permissions_of_any_new_file(tmp_path):
    """The temporary file behind the atomic rename is made private (0600) by
    mkstemp; checkpoints were unreadable to the group beside a 0644 config.json."""
    (tmp_path / "plain").write_bytes(b"")
    mdl.save({"w": np.ones(2)}, tmp_path / "state.npz")
    assert (tmp_path / "state.npz").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


@pytest.mark.parametrize("where", ["missing directory", "a directory"])
def test_a_save_that_cannot_write_names_the_path_asked_for(tmp_path, where):
    """The error named the hidden temporary file (.minidl-save-...npz), so
    `minidl train` said "RUN/.minidl-save-x1y2.npz Is a directory"."""
    path = tmp_path / "no-such-dir" / "state.npz" if where == "missing directory" else tmp_path / "state.npz"
    if where == "a directory":
        path.mkdir()
    with pytest.raises(OSError) as info:
        mdl.save({"w": np.ones(2)}, path)
    assert info.value.filename == str(path), info.value
    assert not any(p.name.startswith(".minidl-save") for p in tmp_path.iterdir())
