"""`python -m minidl.bench.attention --memory` (benchmarks/results/attention_memory.md):
the fused sdpa forward's peak memory grows linearly in T, the NumPy twin's as T^2,
and the table it writes says so with the figures it measured."""
import re

from minidl.bench.attention import memory_report


def test_memory_report_measures_linear_fused_and_quadratic_twin_peaks(tmp_path):
    path = tmp_path / "attention_memory.md"
    rows = memory_report(path, lengths=(256, 512, 1024))
    per_t = [numba / T for T, numba, _ in rows]             # bytes per query position
    per_t2 = [numpy / T**2 for T, _, numpy in rows]         # bytes per score
    assert max(per_t) < 1.1 * min(per_t), per_t             # linear in T (one Numba thread: one block of scores)
    for value in per_t2:                                    # scores, exponentials, weights: >= 12 bytes per score
        assert 12 <= value < 20, per_t2
    assert all(numpy > 4 * numba for _, numba, numpy in rows), rows
    text = path.read_text()
    table = re.findall(r"^\| (\d+) \| ([0-9.]+) \|", text, re.M)
    assert [int(T) for T, _ in table] == [256, 512, 1024], text
    for (T, mib), (_, numba, _) in zip(table, rows):        # the table prints what was measured
        assert abs(float(mib) - numba / 2**20) < 1e-3, (mib, numba)
    assert "one Numba thread" in text
