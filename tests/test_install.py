"""The installed package holds every file of the checkout's package.

Under CI the tests import minidl as `pip install .` installed it, so this
catches a module, a data file or an exercise skeleton that the packaging
configuration in setup.cfg leaves out. Run from a checkout on PYTHONPATH the
two folders are the same and the test reads every file against itself.
"""
from pathlib import Path

import minidl

CHECKOUT_PACKAGE = Path(__file__).resolve().parents[1] / "minidl"
INSTALLED_PACKAGE = Path(minidl.__file__).resolve().parent


def _package_files(root):
    """Every source and data file under root, as paths relative to root."""
    files = set()
    for path in root.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        files.add(path.relative_to(root).as_posix())
    return files


def test_every_checkout_file_is_installed():
    checkout = _package_files(CHECKOUT_PACKAGE)
    assert "exercises/skeletons/01_autograd.py" in checkout
    assert "data/digits.csv.gz" in checkout
    missing = sorted(checkout - _package_files(INSTALLED_PACKAGE))
    assert not missing, f"files of the checkout missing from the installed minidl at {INSTALLED_PACKAGE}: {missing}"


def test_installed_files_match_the_checkout_byte_for_byte():
    # A stale install (the checkout changed, the venv did not) would test old code.
    for name in sorted(_package_files(CHECKOUT_PACKAGE)):
        installed = INSTALLED_PACKAGE / name
        assert installed.read_bytes() == (CHECKOUT_PACKAGE / name).read_bytes(), name
