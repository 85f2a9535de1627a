"""Fault injection for the training tests: Ctrl-C at a chosen step, a clock that
moves only when a step runs."""
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
