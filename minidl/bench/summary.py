"""`python -m minidl.bench.summary`: one row per kernel workload, minidl
against PyTorch, forward + backward, and one row per end-to-end training
step, read from the suite tables in benchmarks/results/ (written by
`minidl bench SUITE`).

Target per row: minidl's time / torch's time <= 1.0 for a kernel, <= 1.2
for a training step. A suite whose table is
missing, or has no torch column (PyTorch not installed when it ran), gives no
rows; the summary says which suites it read and the header line of each
(where the load average at the start is stated).
"""
import argparse
import os

KERNEL_SUITES = ("conv", "pool", "softmax", "attention")
TARGET = 1.0


def read_table(path):
    """(title line, rows as dicts) of a table written by harness.to_markdown."""
    with open(path) as f:
        lines = [line.rstrip("\n") for line in f]
    title = next((line[3:] for line in lines if line.startswith("## ")), "")
    header, rows = None, []
    for line in lines:
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
        else:
            rows.append(dict(zip(header, cells)))
    return title, rows


def paired_rows(results_dir, suites, ours, theirs):
    """(suite, title, op, shape, our row, their row) for every (op, shape) of the
    isolated-harness tables of `suites` that has both implementation `ours` and
    `theirs` (rows as dicts of the table's columns)."""
    for suite in suites:
        path = os.path.join(results_dir, f"{suite}.md")
        if not os.path.exists(path):
            continue
        title, rows = read_table(path)
        if "fresh process" not in title:               # only tables of the isolated harness
            continue
        by_key = {(r["op"], r["shape"], r["implementation"]): r for r in rows}
        for (op, shape, impl), row in by_key.items():
            if impl == ours and (op, shape, theirs) in by_key:
                yield suite, title, op, shape, row, by_key[(op, shape, theirs)]


def summarise(results_dir="benchmarks/results"):
    """[(suite, title, op, shape, minidl ms, torch ms, ratio)] for fwd+bwd rows."""
    found = []
    for suite, title, op, shape, row, theirs in paired_rows(results_dir, KERNEL_SUITES,
                                                            "numba fwd+bwd", "torch fwd+bwd"):
        ms, torch_ms = float(row["ms"]), float(theirs["ms"])
        found.append((suite, title, op, shape, ms, torch_ms, ms / torch_ms))
    return found


def summarise_floors(results_dir="benchmarks/results"):
    """{(op, shape): ms} of the "matmuls only fwd+bwd" rows (the conv suite's
    matrix products of a kernel alone, minidl/bench/matmul_floor.py)."""
    return {(op, shape): float(floor["ms"]) for _, _, op, shape, floor, _ in
            paired_rows(results_dir, KERNEL_SUITES, "matmuls only fwd+bwd", "numba fwd+bwd")}


def machine_of(title):
    """The processor (and BLAS kernels) a suite table's title names ("... at start)
    on AMD EPYC (family 26, model 2), 2 CPUs, AVX-512, OpenBLAS SkylakeX kernels"),
    or "" for a table written before titles named it."""
    head, found, machine = title.rpartition(" at start) on ")
    return machine.strip() if found else ""


def machines_note(titles):
    """Lines warning that the tables listed came from different processors (or
    some from an unnamed one), else no lines: a ratio from one processor says
    little about another's, so rows are compared within one processor only."""
    machines = list(dict.fromkeys(machine_of(t) or "processor not recorded" for t in titles))
    if len(machines) <= 1:
        return []
    return ["", "**These tables were measured on different processors (or BLAS kernels)** ("
            + "; ".join(machines) + "): compare ratios within one table, not across tables."]


def to_markdown(found, floors=None):
    """The kernel table of `found` (from summarise); `floors` (from summarise_floors)
    adds a line under it for each missed row whose matrix products were timed alone."""
    lines = ["# Summary: minidl / PyTorch, forward + backward, float32", "",
             "Read from the suite tables by `python -m minidl.bench.summary`; each row is",
             "the median over alternating rounds, every implementation in its own fresh",
             f"process. Target: ratio <= {TARGET:.1f}.", ""]
    titles = list(dict.fromkeys(t for _, t, *_ in found))
    lines += [f"- {title}" for title in titles] + machines_note(titles)
    lines += ["", "| workload | shape | minidl ms | torch ms | ratio | target | met |",
              "|---|---|---|---|---|---|---|"]
    for suite, _, op, shape, ms, torch_ms, ratio in found:
        lines.append(f"| {op} | {shape} | {ms:.3f} | {torch_ms:.3f} | {ratio:.2f} | <= {TARGET:.1f} | "
                     f"{'yes' if ratio <= TARGET else 'no'} |")
    floors = floors or {}
    for suite, _, op, shape, ms, torch_ms, ratio in found:
        floor = floors.get((op, shape))
        if ratio > TARGET and floor is not None:
            verdict = ("above torch's whole forward and backward: only fewer multiplications or faster "
                       "matrix products would meet the target" if floor > torch_ms else
                       "below torch's time: faster copies around them could still meet the target")
            lines += ["", f"{op} {shape}: minidl's matrix products alone (\"matmuls only fwd+bwd\" in "
                      f"{suite}.md) take {floor:.3f} ms, {verdict}."]
    missing = [s for s in KERNEL_SUITES if s not in {f[0] for f in found}]
    if missing:
        lines += ["", "No rows (not regenerated with the isolated harness, or no torch column): "
                  + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


# ---- end-to-end training steps ------------------------------------------------------------
STEP_SUITES = ("cnn_step", "gpt_step", "gan_step")
STEP_TARGET = 1.2


def summarise_steps(results_dir="benchmarks/results"):
    """[(suite, title, op, shape, minidl ms, torch ms, ratio, threads)] of the step tables."""
    found = []
    for suite, title, op, shape, row, theirs in paired_rows(results_dir, STEP_SUITES, "minidl", "torch"):
        ms, torch_ms = float(row["ms"]), float(theirs["ms"])
        threads = f"minidl {row.get('threads', '?')}; torch {theirs.get('threads', '?')}"
        found.append((suite, title, op, shape, ms, torch_ms, ms / torch_ms, threads))
    return found


def steps_markdown(found):
    lines = ["", "## End-to-end training steps: minidl / PyTorch", "",
             "One training step (forward, loss, backward, optimizer step), each library at its",
             "defaults in its own fresh process, median over alternating rounds (`minidl bench",
             f"cnn_step gpt_step gan_step`). Target: ratio <= {STEP_TARGET:.1f}. Where minidl's",
             "step spends its time, op by op: step_profile.md (`python -m minidl.bench.step_profile`).", ""]
    titles = list(dict.fromkeys(t for _, t, *_ in found))
    lines += [f"- {title}" for title in titles] + machines_note(titles)
    lines += ["", "| workload | shape | minidl ms | torch ms | ratio | target | met | threads |",
              "|---|---|---|---|---|---|---|---|"]
    for suite, _, op, shape, ms, torch_ms, ratio, threads in found:
        lines.append(f"| {op} | {shape} | {ms:.2f} | {torch_ms:.2f} | {ratio:.2f} | <= {STEP_TARGET:.1f} | "
                     f"{'yes' if ratio <= STEP_TARGET else 'no'} | {threads} |")
    missing = [s for s in STEP_SUITES if s not in {f[0] for f in found}]
    if missing:
        lines += ["", "No rows (table missing, or no torch column): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def main(results_dir="benchmarks/results"):
    if not os.path.isdir(results_dir):
        raise SystemExit(f"minidl.bench.summary: results directory {results_dir!r} does not exist "
                         "(expected the folder that holds the suite tables, e.g. benchmarks/results)")
    text = (to_markdown(summarise(results_dir), summarise_floors(results_dir))
            + steps_markdown(summarise_steps(results_dir)))
    with open(os.path.join(results_dir, "summary.md"), "w") as f:
        f.write(text)
    print(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m minidl.bench.summary",
        description="Write summary.md: minidl against PyTorch for every kernel workload and "
                    "training step, read from the suite tables in RESULTS_DIR.")
    parser.add_argument("results_dir", nargs="?", default="benchmarks/results",
                        help="folder holding the tables written by `minidl bench SUITE` "
                             "(default: benchmarks/results)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args().results_dir)
