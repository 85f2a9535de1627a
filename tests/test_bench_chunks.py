"""The chunk-size sweep (`minidl bench chunks`, minidl/bench/chunks.py): each
implementation runs the kernel the sweep names with the constant at its
value, gives the same result as the others, and the value the kernels use
now is always a row and the baseline; the suite runs from the command line
only when named."""
import numpy as np
import pytest

from minidl.bench import chunks, runner
from minidl.bench.conv import _pair
from minidl.kernels import conv_fast, conv_transpose_sub_pixel, winograd
from minidl.kernels.geometry import conv_output_size

from test_bench_command import _check_table, _minidl


def test_with_constant_sets_the_value_for_the_call_only():
    seen = []
    before = winograd.CHUNK_TILES
    run = chunks.with_constant(winograd, "CHUNK_TILES", before + 7, lambda: seen.append(winograd.CHUNK_TILES))
    run()
    assert seen == [before + 7] and winograd.CHUNK_TILES == before

    def fails():
        raise RuntimeError("inside")
    with pytest.raises(RuntimeError, match="inside"):
        chunks.with_constant(winograd, "CHUNK_TILES", before + 7, fails)()
    assert winograd.CHUNK_TILES == before                 # put back after an error too


def _takes_kernel(module, spec):
    """Whether the shape `spec` runs the kernel whose constant is swept."""
    op, _, n, c_in, c_out, h, w, k, stride, padding, output_padding = spec
    if op == "conv2d":
        ho, wo = conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding)
        on_winograd = winograd.applies((n, c_in, h, w), (c_out, c_in, k, k), _pair(stride), _pair(padding),
                                       (1, 1), 1, (ho, wo))
        return on_winograd if module is winograd else not on_winograd
    on_sub_pixel = conv_transpose_sub_pixel.applies((n, c_in, h, w), (c_in, c_out, k, k), _pair(stride),
                                                    _pair(padding), _pair(output_padding), (1, 1), 1)
    return module is conv_fast and not on_sub_pixel


@pytest.mark.parametrize("sweeps", [chunks.SWEEPS, chunks.QUICK_SWEEPS], ids=["standard", "quick"])
def test_every_swept_shape_runs_the_kernel_whose_constant_is_swept(sweeps):
    for module, name, values, shapes in sweeps:
        assert hasattr(module, name) and len(values) >= 2
        for spec in shapes:
            assert _takes_kernel(module, spec), (name, spec[1])


def test_quick_cases_give_equal_results_with_the_current_value_as_baseline(monkeypatch):
    calls = []
    real_winograd, real_columns = winograd.conv2d_forward, conv_fast.conv2d_forward

    def winograd_spy(*args, **kwargs):
        calls.append(("CHUNK_TILES", winograd.CHUNK_TILES))
        return real_winograd(*args, **kwargs)

    def columns_spy(*args, **kwargs):
        calls.append(("CHUNK_COLUMNS", conv_fast.CHUNK_COLUMNS))
        return real_columns(*args, **kwargs)
    monkeypatch.setattr(winograd, "conv2d_forward", winograd_spy)
    monkeypatch.setattr(conv_fast, "conv2d_forward", columns_spy)

    cases = list(chunks.cases(quick=True))
    assert [case.op for case in cases] == ["conv2d CHUNK_TILES", "conv2d CHUNK_COLUMNS"]
    for case, (module, name, values, _) in zip(cases, chunks.QUICK_SWEEPS):
        current = getattr(module, name)
        assert case.baseline == f"{name}={current} (current)"
        assert set(case.implementations) == {chunks.implementation_name(name, v, current)
                                             for v in set(values) | {current}}
        outputs = []
        for implementation, run in case.implementations.items():
            calls.clear()
            outputs.append(run().data)
            value = int(implementation.split("=")[1].split()[0])
            assert calls == [(name, value)], (implementation, calls)   # the kernel read this value
        for out in outputs[1:]:
            np.testing.assert_allclose(out, outputs[0], rtol=1e-5, atol=1e-4)


def test_the_current_value_gets_a_row_even_when_not_in_the_list(monkeypatch):
    monkeypatch.setattr(winograd, "CHUNK_TILES", 96)
    case = next(chunks.cases(quick=True))
    assert "CHUNK_TILES=96 (current)" in case.implementations and case.baseline == "CHUNK_TILES=96 (current)"


def test_chunks_runs_only_when_named(tmp_path):
    assert "chunks" not in runner.SUITES and "chunks" in runner.NAMED_ONLY
    result = _minidl("bench", "chunks", "--quick", "--processes", "1", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    text = _check_table(tmp_path, "chunks", 1)
    assert f"| CHUNK_TILES={winograd.CHUNK_TILES} (current) |" in text, text
    assert f"| CHUNK_COLUMNS={conv_fast.CHUNK_COLUMNS} (current) |" in text, text
