"""Every tutorial also works as a notebook: jupytext converts it, nbclient runs
it on an IPython kernel in quick mode, and it saves its pictures in
MINIDL_TUTORIAL_OUT. A tutorial that shows its figures through
`minidl.tutorial_support.Tutorial` must also display every one of them inline
(as image/png outputs).

Needs the `tutorials` extra (`pip install ".[tutorials]"`: jupytext, nbclient,
nbformat, ipykernel); without it these tests skip and say so. The kernel is
this test's own Python, declared in a temporary kernelspec, so the notebook
imports the same minidl as the test.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import minidl

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9]*.py"))
CELL_TIMEOUT_SECONDS = 600


def _kernel(tmp_path, out_dir):
    """A kernelspec named minidl-test that runs this Python in quick mode."""
    package_parent = str(Path(minidl.__file__).resolve().parents[1])
    spec_dir = tmp_path / "jupyter" / "kernels" / "minidl-test"
    spec_dir.mkdir(parents=True)
    env = dict(MINIDL_QUICK="1", MINIDL_TUTORIAL_OUT=str(out_dir),
               PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    (spec_dir / "kernel.json").write_text(json.dumps(dict(
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="minidl test", language="python", env=env)))
    return tmp_path / "jupyter"


NUMBERS = {word: n for n, word in enumerate("zero one two three four five six seven eight nine ten eleven "
                                             "twelve".split())}


def stated_picture_count(path):
    """N where the tutorial's introduction says "The N pictures", else None."""
    text = re.sub(r"\n#\s?", " ", path.read_text())
    match = re.search(r"\b[Tt]he (\w+) pictures\b", text)
    return NUMBERS.get(match.group(1)) if match else None


def test_the_stated_picture_counts_are_read():
    counts = {path.stem: stated_picture_count(path) for path in TUTORIALS}
    assert counts.get("01_autograd") == 3 and counts.get("05_cnn") == 8


def test_the_tutorials_extra_lists_the_notebook_tools():
    text = (ROOT / "setup.cfg").read_text()
    extra = text.split("tutorials =", 1)[1].split("\n\n", 1)[0]
    for tool in ("jupytext", "nbclient", "nbformat", "ipykernel"):
        assert tool in extra, f"setup.cfg's tutorials extra does not list {tool}"


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_as_a_notebook_and_shows_its_figures_inline(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext", reason="the tutorials extra is not installed: pip install '.[tutorials]'")
    nbclient = pytest.importorskip("nbclient", reason="the tutorials extra is not installed: pip install '.[tutorials]'")
    pytest.importorskip("ipykernel", reason="the tutorials extra is not installed: pip install '.[tutorials]'")
    out_dir = tmp_path / "out"
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel(tmp_path, out_dir)))
    monkeypatch.delenv("MPLBACKEND", raising=False)      # let the kernel use its inline backend

    notebook = jupytext.read(path)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 2 and kinds.count("code") >= 2
    client = nbclient.NotebookClient(notebook, kernel_name="minidl-test", timeout=CELL_TIMEOUT_SECONDS,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()          # raises CellExecutionError, with the cell and traceback, on any error

    inline = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]
    saved = list(out_dir.glob("**/*.png"))
    assert saved, f"{path.name}: the notebook saved no PNG into MINIDL_TUTORIAL_OUT"
    stated = stated_picture_count(path)
    if stated is not None:
        assert len(saved) == stated, (f"{path.name} says it writes {stated} pictures but wrote "
                                      f"{sorted(p.name for p in saved)}")
    if "minidl.tutorial_support import Tutorial" in path.read_text():
        assert inline, f"{path.name}: no figure was displayed inline in the notebook"
        if path.name < "08":      # 08 and 09 still write some pictures to files only
            assert len(inline) >= len(saved), (f"{path.name}: {len(saved)} pictures saved but only "
                                               f"{len(inline)} shown inline")


def test_the_readme_conversion_command_writes_a_valid_notebook(tmp_path):
    pytest.importorskip("jupytext", reason="the tutorials extra is not installed: pip install '.[tutorials]'")
    nbformat = pytest.importorskip("nbformat", reason="the tutorials extra is not installed: pip install '.[tutorials]'")
    target = tmp_path / "01_autograd.ipynb"
    result = subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "--output", str(target),
                             str(ROOT / "tutorials" / "01_autograd.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    notebook = nbformat.read(target, as_version=4)
    nbformat.validate(notebook)
    assert any("$$" in cell.source for cell in notebook.cells if cell.cell_type == "markdown"), \
        "formulas should reach the notebook as LaTeX in markdown cells"


def test_the_readme_debugging_command_stops_inside_minidl(tmp_path):
    """The README's `MINIDL_QUICK=1 python -m pdb tutorials/01_autograd.py`, then
    `break minidl/gradcheck.py:LINE` and `continue`, stops inside gradcheck."""
    import ast
    import importlib

    module = importlib.import_module("minidl.gradcheck")          # (mdl.gradcheck is the function)
    function = next(node for node in ast.parse(Path(module.__file__).read_text()).body
                    if isinstance(node, ast.FunctionDef) and node.name == "gradcheck")
    line = function.body[1].lineno                                 # the first statement after the docstring
    package_parent = str(Path(minidl.__file__).resolve().parents[1])
    env = dict(os.environ, MINIDL_QUICK="1", MINIDL_TUTORIAL_OUT=str(tmp_path / "out"), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    commands = f"break minidl/gradcheck.py:{line}\ncontinue\np len(inputs)\nquit\n"   # found on sys.path
    result = subprocess.run([sys.executable, "-m", "pdb", str(ROOT / "tutorials" / "01_autograd.py")],
                            input=commands, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert "gradcheck.py" in result.stdout and f"({line})gradcheck()" in result.stdout, result.stdout[-2000:]
    assert "\n(Pdb) 2\n" in result.stdout, "the first gradcheck call of tutorial 01 has two inputs"
