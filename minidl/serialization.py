"""Save and load state dicts as .npz files: plain arrays, never pickle.

    mdl.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, "ckpt.npz")
    state = mdl.load("ckpt.npz")         # {"model.fc.weight": array, ..., "epoch": array(3)}
    model.load_state_dict(strip_prefix(state, "model"))

An .npz file is a zip archive with one .npy file per array. Nested dicts are
flattened with dots ("model.fc.weight"); Python numbers and strings become 0-d
arrays. Pickle is never written and never read: loading a pickled object can run
arbitrary code, so a file holding object arrays is refused.

`save` writes to a temporary file next to `path` and then renames it, so a crash
while saving does not destroy an older checkpoint at `path`; the file gets the
permissions any new file gets (the umask's), like the run's other files.
"""
import os
import secrets
import zipfile

import numpy as np

from .autograd.tensor import Tensor


def _flatten(state, prefix, out):
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"save: keys must be non-empty strings, got {key!r}")
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(value, name, out)
            continue
        if isinstance(value, Tensor):
            value = value.data
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"save: '{name}' is a {type(value).__name__} that would need pickle "
                            f"(dtype {array.dtype}); only numeric, bool and string arrays can be saved")
        if name in out:
            raise ValueError(f"save: the key '{name}' appears twice after flattening nested dicts")
        out[name] = array


def open_new_file(path):
    """A file descriptor for writing a file that must not exist yet (O_EXCL), with
    the permissions open() gives (0666 less the umask). tempfile.mkstemp would
    make it private to its owner: a checkpoint or a downloaded dataset in a
    shared directory must stay readable by the directory's other users."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


def save(state_dict, path):
    """Write a (possibly nested) dict of arrays, Tensors and scalars to `path` as .npz."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"save: expected a dict, got {type(state_dict).__name__}")
    arrays = {}
    _flatten(state_dict, "", arrays)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".minidl-save-{os.getpid()}-{secrets.token_hex(6)}.npz")
    try:
        handle = open_new_file(temporary)
        with os.fdopen(handle, "wb") as file, zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
            for name, array in arrays.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError) and error.errno is not None:
            # the error names the file asked for, not the temporary one
            raise type(error)(error.errno, error.strerror, path) from None
        raise


def load(path):
    """Read an .npz written by `save` (or np.savez) into a flat {name: ndarray} dict.

    Raises ValueError naming the path and the problem for a file that is not an
    .npz archive, is truncated or corrupt, or holds object (pickled) arrays.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no such file: '{path}'")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as file:
            head = file.read(6)
        if head.startswith(b"PK\x03\x04"):
            problem = "it starts like a zip archive but has no central directory (truncated?)"
        elif head.startswith(b"\x93NUMPY"):
            problem = "it is a single-array .npy file, not an .npz archive"
        else:
            problem = "it is not a zip archive"
        raise ValueError(f"load: '{path}' is not a valid .npz file: {problem}")
    state = {}
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"load: '{path}' is not a readable .npz file: {error}") from None
    with archive:
        for name in archive.files:
            try:
                state[name] = archive[name]
            except ValueError as error:
                if "allow_pickle" in str(error) or "Object arrays" in str(error):
                    raise ValueError(f"load: '{path}' entry '{name}' holds an object array, which "
                                     "needs pickle; refusing to load it") from None
                raise ValueError(f"load: '{path}' entry '{name}' is corrupt: {error}") from None
            except (OSError, EOFError, zipfile.BadZipFile) as error:
                raise ValueError(f"load: '{path}' entry '{name}' is corrupt or truncated: "
                                 f"{error}") from None
    return state


def strip_prefix(state, prefix):
    """The entries of a flat state dict under `prefix.`, with the prefix removed:
    strip_prefix({"model.fc.weight": w, "epoch": e}, "model") == {"fc.weight": w}."""
    head = prefix.rstrip(".") + "."
    return {key[len(head):]: value for key, value in state.items() if key.startswith(head)}
