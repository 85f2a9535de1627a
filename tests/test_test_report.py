"""The test run says whether the PyTorch parity tests ran: a header line naming
torch (or why it is missing), skips counted by reason, and .ci/run installing
only the pinned CPU build of torch."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_parity_tests(pythonpath):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(p) for p in pythonpath] + [str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0",
                           "tests/test_optim.py", "-k", "matches_torch"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_without_torch_the_run_counts_the_parity_tests_it_skipped(tmp_path):
    (tmp_path / "torch.py").write_text(
        'raise ModuleNotFoundError("No module named \'torch\'", name="torch")\n')   # torch hidden
    result = run_parity_tests([tmp_path])
    out = result.stdout
    assert result.returncode == 0, out[-2000:]
    assert "torch: not importable (ModuleNotFoundError" in out
    skipped = int(re.search(r"(\d+) skipped", out).group(1))
    assert skipped >= 4
    assert f"{skipped} PyTorch parity tests did not run" in out
    assert re.search(r"SKIPPED \[\d+\] tests/test_optim.py:\d+: could not import 'torch'", out)   # -rs


def test_with_torch_the_header_names_its_version_and_nothing_skips():
    torch = pytest.importorskip("torch")
    result = run_parity_tests([])
    assert result.returncode == 0, result.stdout[-2000:]
    assert f"torch: {torch.__version__} (the PyTorch parity tests run against it)" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]


def test_ci_installs_only_the_pinned_cpu_build_of_torch():
    script = (ROOT / ".ci" / "run").read_text()
    installs = [line for line in script.splitlines()
                if "pip install" in line and "torch" in line and not line.lstrip().startswith("#")]
    assert installs, "the CI script does not install torch"
    for line in installs:
        assert re.search(r'"torch==2\.13\.0\+cpu"', line), line
