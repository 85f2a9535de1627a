"""Where one training step's time goes: milliseconds per op (each Function's
forward and backward, and the optimizer's step) in minidl's step of the step
suites, so a student sees which op to make faster first.

    python -m minidl.bench.step_profile               # every step suite's standard shapes
    python -m minidl.bench.step_profile --quick       # their tiny shapes
    python -m minidl.bench.step_profile --out benchmarks/results/step_profile.md

Each case's step runs in its own fresh process, exactly as the suites time it
(`minidl_as_trained`: the threads `minidl train` uses): a few warm-up steps,
then `STEPS` steps with a timer around every `Function.forward`,
`Function.backward` and `Optimizer.step`. "outside ops" is the rest of the
step: building nodes and tensors, modules' Python, the engine's graph walk
and its sums of gradients. The timers themselves add about a microsecond per
call, so the total reads slightly above the suites' tables; compare rows
within a table, not with the suites' figures.
"""
import collections
import json
import os
import subprocess
import sys
import time

STEPS = 20
WARMUP = 5
SUITES = ("cnn_step", "gpt_step", "gan_step")


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def profile_step(step, steps=STEPS, warmup=WARMUP):
    """{"total": ms per step, "ops": {name: (ms per step, calls per step)}} of `step`
    (a zero-argument callable), with every op's forward/backward and every
    optimizer's step timed."""
    from ..autograd.function import Function
    from ..optim.optimizer import Optimizer

    spent, calls = collections.defaultdict(float), collections.Counter()
    originals = []

    def timed(cls, method, label):
        original = cls.__dict__[method]

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start
                calls[label] += 1
        originals.append((cls, method, original))
        setattr(cls, method, wrapper)

    for cls in set(_subclasses(Function)):
        for method in ("forward", "backward"):
            if method in cls.__dict__:
                timed(cls, method, f"{cls.__name__}.{method}")
    for cls in set(_subclasses(Optimizer)):
        if "step" in cls.__dict__:
            timed(cls, "step", f"{cls.__name__}.step")
    try:
        for _ in range(warmup):
            step()
        spent.clear()
        calls.clear()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - start
    finally:
        for cls, method, original in reversed(originals):
            setattr(cls, method, original)
    ops = {name: (1000.0 * spent[name] / steps, calls[name] / steps) for name in spent}
    return {"total": 1000.0 * total / steps, "ops": ops}


def _case_list(suite, quick):
    import importlib
    module = importlib.import_module(f"minidl.bench.{suite}")
    return [(case.op, case.shape) for case in module.cases(quick)]


def _child(suite, index, quick):
    """In a fresh process: build minidl's step of case `index` and profile it; print JSON."""
    import importlib
    from . import harness
    module = importlib.import_module(f"minidl.bench.{suite}")
    case = harness.find_case(module, quick, index)
    step = case.implementations["minidl"]
    step()                                            # builds it (threads, model), the harness's way
    print(json.dumps(profile_step(step)))


def profile_in_fresh_process(suite, index, quick):
    command = [sys.executable, "-m", "minidl.bench.step_profile", "--child", suite, str(index)]
    command += ["--quick"] if quick else []
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=dict(os.environ))
    return json.loads(result.stdout.strip().splitlines()[-1])


def to_markdown(title, profile):
    """One case's table: ops by time spent, then what is outside them."""
    total, ops = profile["total"], profile["ops"]
    lines = [f"### {title}", "", f"{total:.2f} ms per step", "",
             "| op | ms per step | share | calls per step |", "|---|---|---|---|"]
    inside = 0.0
    for name, (ms, count) in sorted(ops.items(), key=lambda item: -item[1][0]):
        inside += ms
        lines.append(f"| {name} | {ms:.3f} | {100 * ms / total:.1f}% | {count:g} |")
    outside = total - inside
    lines.append(f"| outside ops | {outside:.3f} | {100 * outside / total:.1f}% | |")
    return "\n".join(lines) + "\n"


def main(argv):
    if argv and argv[0] == "--child":
        _child(argv[1], int(argv[2]), "--quick" in argv)
        return
    quick = "--quick" in argv
    out = argv[argv.index("--out") + 1] if "--out" in argv else None
    from . import harness
    load = os.getloadavg()
    parts = [f"## Where minidl's training step spends its time (`python -m minidl.bench.step_profile`)",
             "", f"Each case in its own fresh process, {STEPS} steps after {WARMUP} warm-up steps, "
             f"every op's forward and backward and the optimizer's step timed "
             f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start) "
             f"on {harness.machine_description()}.", ""]
    for suite in SUITES:
        for index, (op, shape) in enumerate(_case_list(suite, quick)):
            profile = profile_in_fresh_process(suite, index, quick)
            parts.append(to_markdown(f"{op}, {shape}", profile))
            print(parts[-1])
    if out:
        with open(out, "w") as f:
            f.write("\n".join(parts))
        print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
