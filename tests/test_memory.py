"""keep_freed_memory: a freed large array stays in the process (its pages are
reused by the next arrays instead of being given back to the kernel and
faulted in again); MINIDL_KEEP_FREED_MEMORY=0 keeps glibc's defaults."""
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import minidl

PACKAGE_PARENT = str(Path(minidl.__file__).resolve().parents[1])
GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Resident memory given back when a 64 MiB array is freed, in a fresh process.
# Threads the setup started may touch a page or two of their own meanwhile,
# so "kept" means less than KEPT_NOISE_MIB given back (-1 when they grew),
# far from the 64 MiB that glibc's defaults give back.
PROBE = """
import numpy as np
{setup}
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
a = np.ones(64 << 20, np.uint8)          # touched: 64 MiB resident
before = resident()
del a
print(kept, (before - resident()) >> 20)
"""


KEPT_NOISE_MIB = 4


def given_back(setup, **env):
    """(what the setup reported, MiB the process gave back on freeing 64 MiB)."""
    result = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": PACKAGE_PARENT, **env}, timeout=300)
    assert result.returncode == 0, result.stderr
    kept, mib = result.stdout.split()
    return kept, int(mib)


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_freed_memory_stays_in_the_process_and_the_variable_turns_it_off():
    setup = "from minidl.memory import keep_freed_memory; kept = keep_freed_memory()"
    kept, mib = given_back(setup)
    assert kept == "True" and mib < KEPT_NOISE_MIB, mib
    kept, mib = given_back(setup, MINIDL_KEEP_FREED_MEMORY="0")
    assert kept == "False" and mib >= 60, mib          # glibc's default: the pages go back at once


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_training_threads_keeps_freed_memory():
    setup = ("from minidl.threads import training_threads\n"
             "block = training_threads(); block.__enter__(); kept = 'inside'")
    kept, mib = given_back(setup)
    assert kept == "inside" and mib < KEPT_NOISE_MIB, mib
    setup_outside = "import minidl; kept = 'outside'"
    kept, mib = given_back(setup_outside)
    assert mib >= 60, mib                                  # importing minidl alone changes nothing


def test_a_bad_value_is_refused_by_name():
    code = "from minidl.memory import keep_freed_memory; keep_freed_memory()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": PACKAGE_PARENT, "MINIDL_KEEP_FREED_MEMORY": "yes"})
    assert result.returncode != 0
    assert "MINIDL_KEEP_FREED_MEMORY must be 0 or 1" in result.stderr and "'yes'" in result.stderr
