"""`minidl check NN`: every check passes on the reference solution in
tutorials/solutions/, fails on the untouched skeleton the student starts from,
and catches typical mistakes planted in a copy of the solution."""
from pathlib import Path

import pytest

from minidl import cli
from minidl.exercises import TUTORIALS, check_file, skeleton_path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "tutorials" / "solutions"


def solution_path(tutorial):
    return SOLUTIONS / f"{TUTORIALS[tutorial][0]}.py"


@pytest.mark.parametrize("tutorial", sorted(TUTORIALS))
def test_every_check_passes_on_the_reference_solution(tutorial):
    results = check_file(tutorial, solution_path(tutorial))
    failed = [(exercise.number, message) for exercise, passed, message in results if not passed]
    assert results and not failed


@pytest.mark.parametrize("tutorial", sorted(TUTORIALS))
def test_every_check_fails_on_the_untouched_skeleton(tutorial):
    results = check_file(tutorial, skeleton_path(tutorial))
    assert results
    assert [exercise.number for exercise, passed, _ in results if passed] == []
    assert all("not written yet" in message for _, _, message in results)


@pytest.mark.parametrize("tutorial", sorted(TUTORIALS))
def test_the_tutorial_names_its_checked_exercises_and_the_command(tutorial):
    text = (ROOT / "tutorials" / f"{TUTORIALS[tutorial][0]}.py").read_text()
    exercises_section = text.split("## Exercises", 1)[1]
    assert f"minidl check {tutorial}" in exercises_section
    for exercise, _, _ in check_file(tutorial, solution_path(tutorial)):
        assert f"# {exercise.number}. " in exercises_section, f"exercise {exercise.number} is not in the tutorial"


PLANTED = [   # (tutorial, text in the solution, replacement, the exercise that must now fail)
    ("01", "self.grad += (1 - t * t) * out.grad", "self.grad = (1 - t * t) * out.grad", 1),
    ("01", "self.grad += k * self.data ** (k - 1) * out.grad", "self.grad += k * self.data ** k * out.grad", 1),
    ("01", "gradient[index] = (plus - minus) / (2 * eps)", "gradient[index] = (plus - f(x)) / eps", 6),
    ("01", "x[index] = original\n        gradient", "gradient", 6),     # forgets to undo each perturbation
    ("01b", "    return p / len(labels)", "    return p", 1),
    ("01b", "shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits", 1),
    ("01b", "m_hat = m / (1 - beta1 ** t)", "m_hat = m", 2),
    ("01b", "grad.copy() if buffer is None else momentum * buffer + grad",
     "(1 - momentum) * grad if buffer is None else momentum * buffer + grad", 2),
    ("01b", "order = np.random.default_rng(seed).permutation(n)", "order = np.arange(n)", 3),
    ("01b", "n_val = int(n * val_fraction)", "n_val = round(n * val_fraction) + 1", 3),
    ("02", "x_pad[n, c, oy * stride + i * dilation,", "x_pad[n, c, oy * stride + i,", 1),
    ("02", "ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1",
     "ho = (h + 2 * padding - kh) // stride + 1", 1),
    ("02", "+= taps[:, i, j]", "= taps[:, i, j]", 2),
    ("02", "return padded[:, padding:padding + h, padding:padding + w]", "return padded[:, :h, :w]", 2),
    ("03", "grad_x[n, c, i * s + di, j * s + dj] += grad_out[n, c, i, j]",
     "grad_x[n, c, i * s + di, j * s + dj] = grad_out[n, c, i, j]", 1),
    ("03", "np.unravel_index(np.argmax(window), window.shape)",
     "np.unravel_index(window.size - 1 - np.argmax(window[::-1, ::-1]), window.shape)", 1),
    ("03", "/ _window_sums(np.ones_like(x), k, s, p)", "/ (k * k)", 3),
    ("04", "np.where(distance >= 0, -slope * distance, -np.inf)", "np.where(distance >= 0, -slope * distance, 0.0)", 4),
    ("04", "j1 = min(j0 + block, i + 1)", "j1 = j0 + block", 5),
    ("04", "acc = acc * alpha + p @ v[j0:j1]", "acc = acc + p @ v[j0:j1]", 5),
    ("05", "reach = dilation * (kernel - 1) + 1", "reach = kernel", 1),
    ("05", "(out_channels if bias else 0)", "out_channels", 1),
    ("05", "wrong = np.flatnonzero(probabilities.argmax(axis=1) != np.asarray(labels))",
     "wrong = np.arange(len(probabilities))", 4),
    ("05", "np.argsort(-confidence, kind=\"stable\")", "np.argsort(confidence, kind=\"stable\")", 4),
    ("06", "scaled = np.asarray(logits, dtype=np.float64) / temperature",
     "scaled = np.asarray(logits, dtype=np.float64)", 3),
    ("06", "scaled = np.where(scaled >= threshold, scaled, -np.inf)", "pass", 3),
    ("06", "future = np.triu(np.ones((T, T), dtype=bool), k=1)", "future = np.triu(np.ones((T, T), dtype=bool), k=2)", 7),
    ("06", "scores = q @ k.T / np.sqrt(d)", "scores = q @ k.T", 7),
    ("06", "var = x.var(axis=-1, keepdims=True)", "var = x.var(axis=-1, keepdims=True, ddof=1)", 8),
    ("07", "return (-softplus).mean()", "return (-softplus).sum()", 1),
    ("07", "softplus = F.relu(t) + ((-t.abs()).exp() + 1.0).log()", "softplus = (t.exp() + 1.0).log()", 1),
    ("07", "weights = np.linspace(0.0, 1.0, steps)", "weights = np.linspace(0.0, 1.0, steps + 1)[1:]", 2),
    ("07", "cross = linalg.sqrtm(cov_a @ cov_b).real", "cross = np.sqrt(cov_a @ cov_b)", 5),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")        # overflow in a planted mistake
@pytest.mark.parametrize("tutorial, text, replacement, exercise", PLANTED)
def test_a_planted_mistake_fails_exactly_its_exercise(tutorial, text, replacement, exercise, tmp_path):
    source = solution_path(tutorial).read_text()
    assert text in source
    student = tmp_path / solution_path(tutorial).name
    student.write_text(source.replace(text, replacement))
    verdicts = {ex.number: passed for ex, passed, _ in check_file(tutorial, student)}
    assert verdicts[exercise] is False
    assert all(passed for number, passed in verdicts.items() if number != exercise)


def test_a_file_that_does_not_import_fails_every_exercise(tmp_path):
    student = tmp_path / "broken.py"
    student.write_text("def cross_entropy(:\n")
    results = check_file("01b", student)
    assert results and all(not passed and "does not import" in message for _, passed, message in results)


@pytest.mark.parametrize("name, kind, what", [
    ("passwd", "text", "is not a .py file"),
    ("exercises", "folder", "is a directory"),
    ("work.py", "folder", "is a directory"),
])
def test_a_path_that_is_not_a_python_file_is_one_line_before_any_exercise_runs(tmp_path, capsys, name, kind, what):
    path = tmp_path / name
    if kind == "text":
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    else:
        path.mkdir()
    assert cli.main(["check", "01", "--file", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""                                       # no exercise ran
    assert captured.err.strip() == f"minidl check: {path} {what}; expected the Python file (.py) with your exercises"
    with pytest.raises(ValueError, match="missing.py does not exist"):
        check_file("01", tmp_path / "missing.py")


def test_the_command_reports_and_sets_the_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check", "01b"]) == 2                        # nothing to check yet
    assert "--init" in capsys.readouterr().err
    assert cli.main(["check", "01b", "--init"]) == 0
    copied = tmp_path / "exercises" / "01b_mlp_and_training.py"
    assert copied.read_text() == skeleton_path("01b").read_text()
    assert cli.main(["check", "01b", "--init"]) == 1              # never overwrites the student's work
    capsys.readouterr()
    assert cli.main(["check", "01b"]) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED") == 3 and out.count("hint:") == 3 and "0 of 3 passed" in out
    copied.write_text(solution_path("01b").read_text())
    assert cli.main(["check", "01b"]) == 0
    assert "3 of 3 passed" in capsys.readouterr().out
    assert cli.main(["check", "99"]) == 1
    assert "no exercises for tutorial '99'" in capsys.readouterr().err
