"""Keeping Numba's on-disk cache true to the kernel sources.

Every kernel is compiled with `@njit(cache=True)`: the machine code is written
to disk (in `__pycache__` next to the source, or under NUMBA_CACHE_DIR) and
later processes load it instead of compiling again. Numba reuses a cached
kernel as long as the file that DEFINES it is unchanged; it does not look at
the files of the functions the kernel CALLS. Softmax's loops live in
softmax.py but call the exp in fast_exp.py: after an edit of fast_exp.py
alone, the cached softmax would go on running the old exp.

So when minidl.kernels is imported, `invalidate_stale_cache()` hashes every
kernel source file together (names and contents) and compares the hash with
the one stored beside the cache. If they differ (a file was edited, added or
removed since the cache was written), every cached minidl kernel is deleted
and compiles again on its next call. When nothing changed, the check costs
one read of each source file.
"""
import hashlib
import os
from pathlib import Path

from numba import njit

KERNEL_DIRECTORY = Path(__file__).resolve().parent
STAMP_NAME = "minidl-kernels.sha256"


@njit(cache=True)
def _probe():
    """Never called: its dispatcher tells where Numba caches this directory's kernels."""
    return 0


def kernel_modules():
    """The kernel source files, sorted by name."""
    return sorted(KERNEL_DIRECTORY.glob("*.py"))


def sources_digest():
    """One SHA-256 over every kernel file's name and bytes."""
    digest = hashlib.sha256()
    for path in kernel_modules():
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_directory():
    """Where Numba keeps this directory's cached kernels (the same place for
    every file here), or None when the compiler is off (NUMBA_DISABLE_JIT=1)."""
    cache = getattr(_probe, "_cache", None)
    path = getattr(cache, "cache_path", None)
    return Path(path) if path else None


def cached_kernel_files(directory):
    """Numba's index (.nbi) and data (.nbc) files of minidl's kernels in `directory`:
    their names start with the module's name, e.g. `softmax.softmax_rows-87.py311.nbi`."""
    modules = {path.stem for path in kernel_modules()}
    return [path for pattern in ("*.nbi", "*.nbc") for path in directory.glob(pattern)
            if path.name.split(".", 1)[0] in modules]


def invalidate_stale_cache():
    """Delete the cached kernels if any kernel source changed since they were
    written; returns how many files were deleted. A cache directory that
    cannot be read or written is left alone (Numba then compiles in memory)."""
    directory = cache_directory()
    if directory is None or not directory.is_dir():
        return 0
    digest = sources_digest()
    stamp = directory / STAMP_NAME
    try:
        if stamp.is_file() and stamp.read_text().strip() == digest:
            return 0
        deleted = 0
        for path in cached_kernel_files(directory):
            try:
                path.unlink()
                deleted += 1
            except FileNotFoundError:          # another process deleted it first
                pass
        temporary = directory / f"{STAMP_NAME}.{os.getpid()}"
        temporary.write_text(digest + "\n")
        os.replace(temporary, stamp)           # atomic: readers see the old or the new stamp
        return deleted
    except OSError:
        return 0
