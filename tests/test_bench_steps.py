"""The training-step suites (cnn_step, gpt_step, gan_step) compare like with
like: torch starts from minidl's weights and both sides compute the same
first step (and, for the GPT, the same second); each implementation is built
only in the process that times it (torch never loaded in minidl's process),
and the thread counts in the table are those the step ran under."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minidl
from minidl.bench import harness

PACKAGE_PARENT = str(Path(minidl.__file__).resolve().parents[1])
STEP_SUITES = ("cnn_step", "gpt_step", "gan_step")


def _run_python(code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("suite", STEP_SUITES)
def test_minidl_and_torch_take_the_same_first_step(suite):
    pytest.importorskip("torch")
    import importlib
    importlib.import_module(f"minidl.bench.{suite}").check_same_step(quick=True)


@pytest.mark.parametrize("suite", STEP_SUITES)
def test_minidl_step_runs_in_a_process_without_torch_and_reports_its_threads(suite):
    # The child builds and runs minidl's implementation the way the harness does.
    code = (f"import sys, json\n"
            f"from minidl.bench import harness, {suite} as suite\n"
            f"case = harness.find_case(suite, True, 0)\n"
            f"step = case.implementations['minidl']\n"
            f"step(); step()\n"
            f"print(json.dumps(dict(torch_loaded='torch' in sys.modules, threads=step.threads)))\n")
    answer = _run_python(code)
    assert answer["torch_loaded"] is False
    assert set(answer["threads"]) == {"numba", "blas"}
    assert all(count >= 1 for count in answer["threads"].values())


def test_built_on_first_call_builds_once_and_keeps_only_its_libraries():
    built = []

    def build():
        built.append(1)
        return lambda: len(built)
    step = harness.BuiltOnFirstCall(build, ("numba",))
    assert step.threads is None
    assert [step(), step(), step()] == [1, 1, 1]
    assert built == [1]
    assert set(step.threads) == {"numba"}


def test_summary_has_one_row_per_step_workload_judged_at_1_2(tmp_path):
    from minidl.bench import summary
    title = "gpt_step: each implementation in its own fresh process"
    rows = [dict(op="gpt train step", shape="B2", implementation="minidl", ms=30.0, unit="GFLOP/s", rate=None,
                 threads="blas=2 numba=2"),
            dict(op="gpt train step", shape="B2", implementation="torch", ms=20.0, unit="GFLOP/s", rate=None,
                 threads="torch=2"),
            dict(op="gpt train step", shape="B4", implementation="minidl", ms=11.0, unit="GFLOP/s", rate=None,
                 threads="blas=2 numba=2"),
            dict(op="gpt train step", shape="B4", implementation="torch", ms=10.0, unit="GFLOP/s", rate=None,
                 threads="torch=2")]
    (tmp_path / "gpt_step.md").write_text(harness.to_markdown(rows, title))
    (tmp_path / "cnn_step.md").write_text(harness.to_markdown(rows, "cnn_step: median of 2 processes"))  # old harness
    found = summary.summarise_steps(str(tmp_path))
    assert [(shape, round(ratio, 2)) for _, _, _, shape, _, _, ratio, _ in found] == [("B2", 1.5), ("B4", 1.1)]
    text = summary.steps_markdown(found)
    assert "| gpt train step | B2 | 30.00 | 20.00 | 1.50 | <= 1.2 | no | minidl blas=2 numba=2; torch torch=2 |" in text
    assert "| gpt train step | B4 | 11.00 | 10.00 | 1.10 | <= 1.2 | yes |" in text
    assert "cnn_step" in text.split("No rows")[1] and "gan_step" in text.split("No rows")[1]
    assert "step_profile.md" in text                                # where to look for what is left


# ---- step_profile: where a step's time goes ---------------------------------------------
def test_step_profile_times_every_op_of_a_step_and_removes_its_timers():
    import numpy as np
    from minidl import nn, optim
    from minidl.bench import step_profile
    import minidl.functional as F
    from minidl.ops.linear import Linear

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = optim.Adam(model.parameters())
    x, y = minidl.tensor(np.ones((5, 4), np.float32)), np.array([0, 1, 2, 0, 1])

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    forward_before, step_before = Linear.__dict__["forward"], optim.Adam.__dict__["step"]
    profile = step_profile.profile_step(step, steps=3, warmup=1)
    ops = profile["ops"]
    assert ops["Linear.forward"][1] == 2 and ops["Linear.backward"][1] == 2      # calls per step
    assert ops["CrossEntropy.forward"][1] == 1 and ops["Adam.step"][1] == 1
    assert all(ms >= 0 for ms, _ in ops.values())
    assert sum(ms for ms, _ in ops.values()) <= profile["total"]
    assert Linear.__dict__["forward"] is forward_before                        # timers removed
    assert optim.Adam.__dict__["step"] is step_before


def test_step_profile_command_writes_a_table_per_step_case(tmp_path):
    out = tmp_path / "profile.md"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-m", "minidl.bench.step_profile", "--quick", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "load average" in text
    for name in ("cnn train step", "gpt train step", "dcgan train step"):
        assert f"### {name}" in text
    assert "Conv2d.backward" in text and "SelfAttentionHeads.forward" in text and "Adam.step" in text
    assert text.count("| outside ops |") == 3


@pytest.mark.parametrize("name, kept", [("minidl", True), ("minidl, malloc defaults", False)])
def test_gpt_step_rows_with_and_without_keeping_freed_memory(name, kept):
    import platform
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    code = (f"import json\n"
            f"from minidl import memory\n"
            f"from minidl.bench import harness, gpt_step as suite\n"
            f"step = harness.find_case(suite, True, 0).implementations[{name!r}]\n"
            f"step(); step()\n"
            f"print(json.dumps(memory.keep_freed_memory()))\n")
    assert _run_python(code) is kept


def test_gpt_step_cpu_mode_times_only_the_rows_at_each_librarys_defaults():
    # The BLAS-1-thread and malloc-defaults rows change process-wide settings,
    # so in the one-process --cpu mode they would skew every row after them.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-m", "minidl.bench.gpt_step", "--cpu", "--quick"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert "minidl " in line and "CPU ms/step" in line
    assert "BLAS 1 thread" not in line and "malloc defaults" not in line
