"""Benchmarks that put implementations side by side (see `harness` and `runner`).
`benchmarks/run.py` and `minidl bench` both call `runner.run`."""
