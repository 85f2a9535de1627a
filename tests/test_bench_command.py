"""The README's benchmark commands run for real: `minidl bench SUITE --quick
--processes N` writes the suite's Markdown table (load average at the start,
each implementation in its own fresh process, thread counts) and its bar
chart, `minidl bench --quick` runs every suite, and `minidl bench jit` writes
jit.md."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import minidl
from minidl.bench import harness, runner

PACKAGE_PARENT = str(Path(minidl.__file__).resolve().parents[1])


def _minidl(*args, coretype=None):
    """Run `minidl ARGS`; coretype: OPENBLAS_CORETYPE for the run (None: unset, as
    `env -u OPENBLAS_CORETYPE minidl bench` in the README)."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT,
                                                                           os.environ.get("PYTHONPATH")])))
    environment.pop("OPENBLAS_CORETYPE", None)
    if coretype is not None:
        environment["OPENBLAS_CORETYPE"] = coretype
    return subprocess.run([sys.executable, "-m", "minidl.cli", *map(str, args)], env=environment,
                          capture_output=True, text=True, timeout=1800)


def _check_table(out, suite, processes):
    text = (out / f"{suite}.md").read_text()
    title = text.splitlines()[0]
    assert re.fullmatch(rf"## {suite}: each implementation in its own fresh process, median of {processes} "
                        r"alternating rounds \(load average [0-9.]+ [0-9.]+ [0-9.]+ at start\) on .+, \d+ CPUs?.*", title), title
    rows = [line for line in text.splitlines()[4:] if line.startswith("| ")]
    assert rows, text
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[3]) > 0, row                          # milliseconds
        assert re.search(r"(blas|numba|torch)=\d", cells[-1]), row  # the thread counts it ran with
    assert (out / f"{suite}.png").stat().st_size > 0
    return text


def test_bench_one_suite_quick_writes_its_table_and_chart(tmp_path):
    result = _minidl("bench", "overhead", "--quick", "--processes", "1", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    text = _check_table(tmp_path, "overhead", 1)
    for implementation in ["minidl", "numpy"] + (["torch"] if harness.has_torch() else []):
        assert f"| {implementation} |" in text, text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overhead.md", "overhead.png"]
    title = text.splitlines()[0]
    assert "OpenBLAS" in title and "forced" not in title, title     # the kernels OpenBLAS picked itself


def test_bench_title_says_when_the_environment_forced_the_blas_kernels(tmp_path):
    result = _minidl("bench", "overhead", "--quick", "--processes", "1", "--out", tmp_path, coretype="Haswell")
    assert result.returncode == 0, result.stderr[-3000:]
    title = _check_table(tmp_path, "overhead", 1).splitlines()[0]
    assert title.endswith(" kernels (forced by OPENBLAS_CORETYPE=Haswell)"), title


def test_bench_refuses_an_unknown_suite(tmp_path):
    result = _minidl("bench", "no_such_suite", "--out", tmp_path)
    assert result.returncode != 0
    assert "unknown suite 'no_such_suite'" in result.stderr


@pytest.mark.slow
def test_bench_quick_runs_every_suite(tmp_path):
    result = _minidl("bench", "--quick", "--processes", "1", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for suite in runner.SUITES:
        _check_table(tmp_path, suite, 1)
    conv_table = (tmp_path / "conv.md").read_text()            # the quick conv_transpose2d runs channels last
    assert "| conv_transpose2d | N4 8->8 7x7->14x14 k4 s2 p1 | matmuls only fwd+bwd |" in conv_table


def test_bench_jit_goes_through_the_cli_and_writes_jit_md(monkeypatch, tmp_path, capsys):
    """`minidl bench jit` (README) reaches minidl.bench.jit and writes jit.md and
    jit.json; the cold compile of every family takes minutes, so this run
    measures one small family (the full run is the slow test in test_jit.py)."""
    from minidl import cli
    from minidl.bench import jit

    real_measure = jit.measure
    asked = []

    def one_family(train=True, families=None):
        asked.append(dict(train=train, families=families))
        return real_measure(train=False, families=["gelu"])

    monkeypatch.setattr(jit, "measure", one_family)
    assert cli.main(["bench", "jit", "--quick", "--out", str(tmp_path)]) == 0
    assert asked == [dict(train=False, families=None)]        # --quick: no training run; every family
    text = (tmp_path / "jit.md").read_text()
    assert "| gelu |" in text and "Load average (1, 5, 15 min) before the run" in text
    assert "warm run printed the compile notice | no" in text
    assert (tmp_path / "jit.json").is_file()
