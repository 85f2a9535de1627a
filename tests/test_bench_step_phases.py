"""`python benchmarks/step_phases.py`, the README's script for a step that is
sometimes slower for seconds at a time: its split of steps into fast and
slow, its table's columns, its pinning, its arguments, and a run."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import step_phases  # noqa: E402

SCRIPT = ROOT / "benchmarks" / "step_phases.py"
linux_only = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins to cores: Linux only")


def test_slow_steps_are_those_above_the_factor_times_the_twentieth_percentile():
    steps = [10.0] * 8 + [12.0, 13.0]            # 20th percentile 10: slow above 12.5
    assert step_phases.split_phases(steps).tolist() == [False] * 9 + [True]
    assert step_phases.split_phases(steps, factor=1.1).tolist() == [False] * 8 + [True, True]
    assert not step_phases.split_phases([5.0] * 4).any()


def test_table_takes_each_measurement_from_its_own_column_and_phase():
    # columns: step, then per core (arithmetic, memory); values say where they came from
    fast = [10.0, 1.0, 2.0, 3.0, 4.0]
    slow = [20.0, 1.5, 2.5, 3.5, 4.5]
    rows = np.array([fast] * 6 + [slow] * 2)
    text = step_phases.to_markdown("x", rows, [0, 1], (0.5, 0.25, 0.125))
    assert "2 of 8" in text and "load average 0.50 0.25 0.12" in text
    assert "| training step | 10.00 | 20.00 |" in text
    assert "| arithmetic on core 0 | 1.00 | 1.50 |" in text
    assert "| memory on core 0 | 2.00 | 2.50 |" in text
    assert "| arithmetic on core 1 | 3.00 | 3.50 |" in text
    assert "| memory on core 1 | 4.00 | 4.50 |" in text


def test_table_without_slow_steps_says_so():
    text = step_phases.to_markdown("x", np.array([[10.0, 1, 2]] * 3), [0], (0, 0, 0))
    assert "0 of 3" in text and "| training step | 10.00 | - |" in text


@linux_only
def test_timing_on_a_core_runs_there_and_gives_every_core_back():
    before = os.sched_getaffinity(0)
    core = sorted(before)[-1]
    seen = []
    ms = step_phases.time_on_core(core, lambda: seen.append(os.sched_getaffinity(0)))
    assert seen == [{core}] and ms >= 0
    assert os.sched_getaffinity(0) == before


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=900)


@pytest.mark.parametrize("args, message", [(("--steps", "0"), "--steps must be at least 1"),
                                           (("--library", "jax"), "invalid choice")])
def test_bad_arguments_are_refused(args, message):
    result = _run(*args)
    assert result.returncode != 0 and message in result.stderr


@linux_only
def test_quick_run_writes_one_section_per_library(tmp_path):
    out = tmp_path / "phases.md"
    result = _run("--quick", "--steps", "3", "--library", "minidl", "--out", out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.count("## step_phases: minidl gpt step") == 1 and "3 steps in one process" in text
    for core in sorted(os.sched_getaffinity(0)):
        assert f"| memory on core {core} |" in text
    step_row = next(line for line in text.splitlines() if line.startswith("| training step |"))
    assert float(step_row.split("|")[2]) > 0
