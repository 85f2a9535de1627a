"""Shared test setup: one thread per math library in the test processes, and
hypothesis profiles.

Tests run in parallel (`pytest -n 2`: one worker per core). If each worker also
let OpenBLAS and Numba start a thread per core, four busy-waiting threads
would share two cores, and a small matrix product can take 20x longer. So each
worker uses one thread per library; set the variables yourself to override.

With one Numba thread no parallel kernel splits its work, so the tests of
splitting do not run here: tests/test_parallel_split.py starts a child process
with NUMBA_NUM_THREADS=2 for each case and checks there that two threads did
the work and that the results match independent references.

- "dev" (default): 40 examples per property, quick to run locally.
- "ci": no deadline (JIT compiles and a shared machine make timings erratic),
  derandomized so a CI run is reproducible. Select with HYPOTHESIS_PROFILE=ci.

The test-run report: the header names the torch the parity tests compare
against (or why there is none); the closing summary counts the skipped tests
by reason, so a run without torch says how many parity tests it did not run.
(`-rs` in setup.cfg also lists every skip with its file and line.)

This file lives in tests/, not at the repository root: a conftest.py at the
root would put the checkout first on sys.path, and `pytest` would then test
the checkout instead of the installed package.
"""
import collections
import os

for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(variable, "1")   # before NumPy or Numba is imported

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_report_header(config):
    try:
        import torch
    except Exception as error:          # ImportError, or a broken install
        return f"torch: not importable ({type(error).__name__}: {error}); the PyTorch parity tests skip"
    return f"torch: {torch.__version__} (the PyTorch parity tests run against it)"


def skip_reason(report):
    """The reason text of a skipped test's report ('file:line: reason' -> 'reason')."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if r.when in ("setup", "call")]
    if not skipped:
        return
    reasons = collections.Counter(skip_reason(r) for r in skipped)
    torch_skips = sum(n for reason, n in reasons.items() if "torch" in reason)
    terminalreporter.section("skipped tests by reason")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:5d}  {reason}")
    if torch_skips:
        terminalreporter.write_line(f"{torch_skips} PyTorch parity tests did not run: torch is not importable "
                                    "(.ci/run installs torch==2.13.0+cpu where it can)")
