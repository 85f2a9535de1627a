"""Find a tutorial's checks, import a student's file, run every check, report.

    results = check_file("01", "exercises/01_autograd.py")   # [(exercise, verdict, message)]
"""
import importlib
import importlib.util
import os
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

SKELETONS = Path(__file__).resolve().parent / "skeletons"


@dataclass(frozen=True)
class Exercise:
    number: int           # as numbered in the tutorial's Exercises section
    title: str
    check: callable       # check(module): raises AssertionError (or anything) when wrong
    hint: str


# tutorial number -> (file stem of the tutorial, module of checks in this package)
TUTORIALS = {
    "01": ("01_autograd", "autograd"),
    "01b": ("01b_mlp_and_training", "mlp_and_training"),
    "02": ("02_convolution", "convolution"),
    "03": ("03_pooling_and_softmax", "pooling_and_softmax"),
    "04": ("04_attention", "attention"),
    "05": ("05_cnn", "cnn"),
    "06": ("06_transformer", "transformer"),
    "07": ("07_gan", "gan"),
}


def _entry(tutorial):
    if tutorial not in TUTORIALS:
        raise ValueError(f"no exercises for tutorial {tutorial!r}; "
                         f"tutorials with checks: {', '.join(TUTORIALS)}")
    return TUTORIALS[tutorial]


def exercises(tutorial):
    """The list of Exercise for one tutorial."""
    return importlib.import_module(f"{__package__}.{_entry(tutorial)[1]}").EXERCISES


def skeleton_path(tutorial):
    return SKELETONS / f"{_entry(tutorial)[0]}.py"


def default_student_path(tutorial):
    return Path("exercises") / f"{_entry(tutorial)[0]}.py"


def copy_skeleton(tutorial, destination=None):
    """Copy the skeleton to `destination` (default exercises/NN_name.py); never overwrite."""
    destination = Path(destination or default_student_path(tutorial))
    if destination.exists():
        raise FileExistsError(f"{destination} exists already; "
                              "delete or rename it to start again")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(skeleton_path(tutorial), destination)
    return destination


def require_python_file(path):
    """Refuse, naming it, a `path` that is not an existing .py file: importlib
    has no loader for other names, and a directory or a missing file cannot run."""
    path = Path(path)
    if path.suffix == ".py" and path.is_file():
        return
    what = "does not exist" if not path.exists() else "is a directory" if path.is_dir() else "is not a .py file"
    raise ValueError(f"{path} {what}; expected the Python file (.py) with your exercises")


def load_student_file(path):
    """Import the file at `path` as a fresh module (its own folder on sys.path meanwhile)."""
    require_python_file(path)
    path = Path(path).resolve()
    name = f"minidl_student_{path.stem.replace('-', '_')}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _describe(error):
    """One line for an exception raised by the student's code or a check."""
    if isinstance(error, NotImplementedError):
        return "not written yet (NotImplementedError)"
    if isinstance(error, AssertionError):
        return str(error) or "a check failed"
    package = str(Path(__file__).resolve().parents[1])             # frames outside minidl: the student's
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(package)]
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def check_file(tutorial, path):
    """Run every check of `tutorial` on the file at `path`.
    Returns a list of (exercise, passed, message); a `path` that is not a
    .py file is a ValueError, before any check runs."""
    listed = exercises(tutorial)
    require_python_file(path)
    try:
        module = load_student_file(path)
    except Exception as error:          # a syntax error or a failing import fails every exercise
        message = f"the file does not import: {_describe(error)}"
        return [(exercise, False, message) for exercise in listed]
    results = []
    for exercise in listed:
        try:
            exercise.check(module)
        except Exception as error:
            results.append((exercise, False, _describe(error)))
        else:
            results.append((exercise, True, ""))
    return results


def report(tutorial, path, results, out=print):
    """Print one line per exercise (and the hint under each failure); return the exit code."""
    out(f"minidl check {tutorial}: tutorials/{_entry(tutorial)[0]}.py, exercises in {path}")
    for exercise, passed, message in results:
        out(f"  exercise {exercise.number}  {exercise.title:<50s} {'passed' if passed else 'FAILED'}")
        if not passed:
            out(f"      what went wrong: {message}")
            out(f"      hint: {exercise.hint}")
    passed = sum(p for _, p, _ in results)
    out(f"{passed} of {len(results)} passed")
    return 0 if passed == len(results) else 1
