"""Exercises a student can check: `minidl check NN`.

Each tutorial with code exercises has here

- a module of checks (`autograd.py` for tutorial 01, ...): a list `EXERCISES`
  of `Exercise(number, title, check, hint)`, where `check(module)` receives the
  student's file, imported, and raises AssertionError saying what is wrong;
- a skeleton, `skeletons/NN_name.py`, with every function to write raising
  NotImplementedError. `minidl check NN --init` copies it to
  `exercises/NN_name.py` in the current directory for the student to fill in.

`minidl check NN` imports the student's file and prints, per exercise, passed
or failed with what went wrong and a hint. The reference solutions live in the
repository (`tutorials/solutions/`); the tests run every check on them (all
must pass) and on the untouched skeletons (all must fail).
"""
from .runner import TUTORIALS, Exercise, check_file, copy_skeleton, skeleton_path  # noqa: F401
