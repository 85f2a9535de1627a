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
"""
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
