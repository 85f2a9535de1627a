"""Every tutorial runs as a script in quick mode and leaves at least one picture,
and trains only inside `training_threads()`.

Each tutorials/*.py is a jupytext percent-format file. Here it runs in a fresh
Python process with MINIDL_QUICK=1 (small shapes, few steps) and
MINIDL_TUTORIAL_OUT pointing into a temporary directory, using the same minidl
this test imported (installed, or the source tree). A small launcher runs it
as `__main__` after importing NumPy (as the tutorials do, before minidl) and
counts every optimizer step made inside and outside `training_threads()`.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minidl

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9]*.py"))
TIMEOUT_SECONDS = 300          # per tutorial, in quick mode
TRAINING = {"01b_mlp_and_training", "05_cnn", "06_transformer", "07_gan", "08_segmentation", "09_explaining"}

LAUNCHER = r"""
import json, runpy, sys
import numpy                                      # the tutorials import NumPy before minidl
from minidl import optim, threads

steps = {"inside": 0, "outside": 0}


def count_steps_of(cls):
    for sub in cls.__subclasses__():
        if "step" in sub.__dict__:
            original = sub.__dict__["step"]

            def step(self, *args, _original=original, **kwargs):
                steps["inside" if threads.in_training_threads() else "outside"] += 1
                return _original(self, *args, **kwargs)

            sub.step = step
        count_steps_of(sub)


count_steps_of(optim.Optimizer)
path, record = sys.argv[1], sys.argv[2]
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
with open(record, "w") as f:
    json.dump(steps, f)
"""


def test_there_are_tutorials():
    assert any(path.name.startswith("01_autograd") for path in TUTORIALS)


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_is_a_jupytext_percent_file(path):
    text = path.read_text()
    assert "format_name: percent" in text
    assert text.count("# %% [markdown]") >= 2, "prose cells"
    assert "\n# %%\n" in text, "code cells"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_quick_mode_and_writes_a_png(path, tmp_path):
    package_parent = str(Path(minidl.__file__).resolve().parents[1])
    env = dict(os.environ, MINIDL_QUICK="1", MINIDL_TUTORIAL_OUT=str(tmp_path / "out"),
               MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    record = tmp_path / "steps.json"
    result = subprocess.run([sys.executable, "-c", LAUNCHER, str(path), str(record)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    pictures = list((tmp_path / "out").glob("**/*.png"))
    assert pictures, f"{path.name} wrote no PNG into MINIDL_TUTORIAL_OUT"
    assert all(p.stat().st_size > 1000 for p in pictures)
    steps = json.loads(record.read_text())
    assert steps["outside"] == 0, f"{path.name}: {steps['outside']} optimizer steps outside training_threads()"
    if path.stem in TRAINING:
        assert steps["inside"] > 0, f"{path.name} made no optimizer step: is it still a training tutorial?"


def test_the_timing_script_times_a_tutorial(tmp_path):
    """benchmarks/time_tutorials.py, which measured the README's learning-path times."""
    package_parent = str(Path(minidl.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    table = tmp_path / "times.md"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "time_tutorials.py"), "--quick-only",
                             "--out", str(table), "01_autograd"], env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_SECONDS)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in table.read_text().splitlines() if line.startswith("| `")]
    assert len(rows) == 1 and rows[0].startswith("| `01_autograd.py` |") and "not run" in rows[0]

