"""Shared test setup: hypothesis profiles.

- "dev" (default): 40 examples per property, quick to run locally.
- "ci": no deadline (JIT compiles and a shared machine make timings erratic),
  derandomized so a CI run is reproducible. Select with HYPOTHESIS_PROFILE=ci.
"""
import os

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
