"""Fault injection for the training tests: Ctrl-C at a chosen step, Ctrl-C in the
middle of a file write, a clock that moves only when a step runs."""
import pathlib

from minidl.training import classifier, loop


def interrupt_at_step(monkeypatch, step):
    """Make the classifier's `step`-th optimisation step (counting from 1) raise
    KeyboardInterrupt, as Ctrl-C would."""
    real, calls = classifier.ClassifierTask.train_step, []

    def train_step(self, batch):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(classifier.ClassifierTask, "train_step", train_step)


def interrupt_path_writes(monkeypatch):
    """From now on `Path.write_text` writes half its text, then raises
    KeyboardInterrupt: Ctrl-C in the middle of writing a file."""
    write_text = pathlib.Path.write_text

    def interrupted_write(path, text, *args, **kwargs):
        write_text(path, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pathlib.Path, "write_text", interrupted_write)


def seconds_per_step(monkeypatch, seconds=1.0):
    """Replace the Trainer's clock by one that advances `seconds` per classifier
    step (a number, or a function of the step's count from 1) and stands still
    otherwise, so time budgets and ETAs are exact. Returns [now]."""
    now, count = [0.0], [0]
    real = classifier.ClassifierTask.train_step

    def train_step(self, batch):
        count[0] += 1
        now[0] += seconds(count[0]) if callable(seconds) else seconds
        return real(self, batch)

    monkeypatch.setattr(classifier.ClassifierTask, "train_step", train_step)
    monkeypatch.setattr(loop, "clock", lambda: now[0])
    return now
