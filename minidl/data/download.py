"""`download(name)`: fetch MNIST or Fashion-MNIST IDX files, only when asked.

    from minidl.data.download import download
    download("fashion-mnist")          # -> ~/.local/share/minidl/fashion-mnist/
    # or on the command line:  minidl data download fashion-mnist

Nothing in minidl calls this implicitly: `load_dataset` only reads files that
are already on disk and, when they are missing, says how to get them.

Every file is checked before it is kept. A file is accepted when the MD5 of
the downloaded .gz equals the one the dataset's authors published, or, for
mirrors that recompress the same data, when the SHA-256 of the uncompressed
IDX bytes equals `raw_sha256` (where known). A file that matches neither is
deleted and ValueError is raised. Files are written to a temporary name in the
target directory and renamed only after the check, so an interrupted or
rejected download never leaves a half-written file under the real name.

Provenance of the checksums (see also the module-level table):
- `md5`: the published MD5s of the original .gz files (Fashion-MNIST's README,
  torchvision's MNIST/FashionMNIST resources); not re-hashed here, because
  this machine cannot reach the servers.
- `raw_sha256` for Fashion-MNIST: computed from the Debian package
  dataset-fashion-mnist (0.0~git20200523.55506a9-1), whose .gz files are
  recompressed but hold the same IDX bytes.
"""
import gzip
import hashlib
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path

from ..serialization import open_new_file
from .datasets import dataset_key
from .locations import user_data_dir

MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": {"md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "raw_sha256": None},
        "train-labels-idx1-ubyte.gz": {"md5": "d53e105ee54ea40749a09fcbcd1e9432", "raw_sha256": None},
        "t10k-images-idx3-ubyte.gz": {"md5": "9fb629c4189551a2d022fa330f9573f3", "raw_sha256": None},
        "t10k-labels-idx1-ubyte.gz": {"md5": "ec29112dd5afa0611ce80d1b7f02629c", "raw_sha256": None},
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": {
            "md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "raw_sha256": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
        "train-labels-idx1-ubyte.gz": {
            "md5": "25c81989df183df01b3e8a0aad5dffbe",
            "raw_sha256": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"},
        "t10k-images-idx3-ubyte.gz": {
            "md5": "bef4ecab320f06d8554ea6380940ec79",
            "raw_sha256": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
        "t10k-labels-idx1-ubyte.gz": {
            "md5": "bb300cfdad3c16e7a12a480ee83cd310",
            "raw_sha256": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    },
}


def _normalise_table(checksums):
    """Accept {file: md5-string} as shorthand for {file: {"md5": ...}}."""
    table = {}
    for filename, entry in checksums.items():
        if isinstance(entry, str):
            entry = {"md5": entry}
        if not entry.get("md5") and not entry.get("raw_sha256"):
            raise ValueError(f"download: checksum entry for {filename!r} has neither 'md5' nor 'raw_sha256'")
        table[filename] = entry
    return table


def checksum_matches(payload, entry):
    """True if the bytes `payload` of a .gz file match the checksum `entry`."""
    if entry.get("md5") and hashlib.md5(payload).hexdigest() == entry["md5"].lower():
        return True
    if entry.get("raw_sha256"):
        try:
            raw = gzip.decompress(payload)
        except (OSError, EOFError):
            return False
        return hashlib.sha256(raw).hexdigest() == entry["raw_sha256"].lower()
    return False


def _fetch(url, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _write_atomically(directory, filename, payload):
    tmp = os.path.join(directory, f".{filename}.{os.getpid()}-{secrets.token_hex(6)}.part")
    try:
        fd = open_new_file(tmp)                  # readable by the directory's other users
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, directory / filename)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def download(name, root=None, base_url=None, checksums=None, timeout=60, verbose=True):
    """Download dataset `name` ("mnist" or "fashion-mnist") into `root/name`
    (default: the user data directory, `~/.local/share/minidl/name`).

    base_url: fetch `base_url + filename` instead of the built-in mirrors.
    checksums: {filename: {"md5": ..., "raw_sha256": ...}} (or {filename: md5})
        replacing the built-in table; its keys are the files fetched.
    Files already present with a matching checksum are kept. Returns the
    directory. Raises ValueError on a checksum mismatch (the file is not kept)
    and OSError when no mirror could deliver a file.
    """
    key = dataset_key(name)
    if key not in CHECKSUMS and checksums is None:
        raise ValueError(f"download: unknown dataset {name!r}; choose from {sorted(CHECKSUMS)}")
    table = _normalise_table(checksums if checksums is not None else CHECKSUMS[key])
    bases = (base_url,) if base_url else MIRRORS.get(key, ())
    if not bases:
        raise ValueError(f"download: no base_url given and no known mirror for {name!r}")
    directory = (Path(root) if root is not None else user_data_dir()) / key
    directory.mkdir(parents=True, exist_ok=True)
    for filename, entry in table.items():
        target = directory / filename
        if target.is_file() and checksum_matches(target.read_bytes(), entry):
            if verbose:
                print(f"{target}: present, checksum ok")
            continue
        errors = []
        for base in bases:
            url = base if base.endswith("/") else base + "/"
            url += filename
            try:
                if verbose:
                    print(f"downloading {url}")
                payload = _fetch(url, timeout)
                break
            except (urllib.error.URLError, OSError) as err:
                errors.append(f"{url}: {err}")
        else:
            raise OSError(f"download: could not fetch {filename} for {key!r}:\n  " + "\n  ".join(errors))
        if not checksum_matches(payload, entry):
            got = hashlib.md5(payload).hexdigest()
            raise ValueError(
                f"download: checksum mismatch for {filename} from {url}: md5 {got}, "
                f"expected {entry.get('md5')} (or uncompressed sha256 {entry.get('raw_sha256')}); file not kept")
        _write_atomically(directory, filename, payload)
    return directory
