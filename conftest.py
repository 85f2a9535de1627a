"""Test-run report: whether PyTorch is there for the parity tests, and why tests skipped.

The header says which torch the parity tests compare against (or why there is
none); the closing summary counts the skipped tests by reason, so a run
without torch says how many parity tests it did not run. (`-rs` in setup.cfg
also lists every skip with its file and line.) The tests' own setup is in
tests/conftest.py.
"""
import collections


def pytest_report_header(config):
    try:
        import torch
    except Exception as error:          # ImportError, or a broken install
        return f"torch: not importable ({type(error).__name__}: {error}); the PyTorch parity tests skip"
    return f"torch: {torch.__version__} (the PyTorch parity tests run against it)"


def skip_reason(report):
    """The reason text of a skipped test's report ('file:line: reason' -> 'reason')."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if r.when in ("setup", "call")]
    if not skipped:
        return
    reasons = collections.Counter(skip_reason(r) for r in skipped)
    torch_skips = sum(n for reason, n in reasons.items() if "torch" in reason)
    terminalreporter.section("skipped tests by reason")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:5d}  {reason}")
    if torch_skips:
        terminalreporter.write_line(f"{torch_skips} PyTorch parity tests did not run: torch is not importable "
                                    "(.ci/run installs torch==2.13.0+cpu where it can)")
