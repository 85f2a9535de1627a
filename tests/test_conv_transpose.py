"""conv_transpose2d: backends agree, it is conv2d's adjoint, gradients match
finite differences, hand-worked cases and PyTorch (when installed) agree."""
import numpy as np
import pytest
from hypothesis import given, settings

import minidl as mdl
import minidl.functional as F
from conv_helpers import TOLERANCE, conv_transpose2d_configs, make_arrays, run


def options_of(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], output_padding=cfg["output_padding"],
                dilation=cfg["dilation"], groups=cfg["groups"])


def expected_hw(cfg):
    return tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, k, s, p, op, d in zip(
        (cfg["h"], cfg["w"]), (cfg["kh"], cfg["kw"]), cfg["stride"], cfg["padding"],
        cfg["output_padding"], cfg["dilation"]))


@given(conv_transpose2d_configs())
def test_three_backends_agree_on_forward_and_backward(cfg):
    x, weight, bias = make_arrays(cfg, transpose=True)
    results = {b: run("conv_transpose2d", b, x, weight, bias, options_of(cfg))
               for b in ("numba", "numpy", "python")}
    assert results["numba"][0].shape == (cfg["n"], cfg["c_out"]) + expected_hw(cfg)
    tol = TOLERANCE[cfg["dtype"]]
    for backend in ("numpy", "python"):
        for name, ours, theirs in zip(("out", "dx", "dw", "db"), results["numba"], results[backend]):
            if ours is None:
                assert theirs is None
                continue
            assert ours.dtype == cfg["dtype"] and ours.shape == theirs.shape, name
            np.testing.assert_allclose(ours, theirs, err_msg=f"{name} numba vs {backend}", **tol)


@given(conv_transpose2d_configs())
def test_is_the_adjoint_of_conv2d(cfg):
    """<conv2d(u, W), y> == <u, conv_transpose2d(y, W)> for every u, y."""
    cfg = dict(cfg, dtype=np.float64, bias=False)
    y, weight, _ = make_arrays(cfg, transpose=True)          # y: (N, Cin_t, H, W)
    u = np.random.default_rng(cfg["seed"] + 1).standard_normal(
        (cfg["n"], cfg["c_out"]) + expected_hw(cfg))          # u: the transpose's output shape
    with mdl.kernels.use("numba"):
        t_y = F.conv_transpose2d(mdl.tensor(y), mdl.tensor(weight), **options_of(cfg)).data
        conv_u = F.conv2d(mdl.tensor(u), mdl.tensor(weight), stride=cfg["stride"], padding=cfg["padding"],
                          dilation=cfg["dilation"], groups=cfg["groups"]).data
    # conv2d may see extra output rows when output_padding >= stride; they are not in y
    conv_u = conv_u[:, :, :cfg["h"], :cfg["w"]]
    assert conv_u.shape == y.shape and t_y.shape == u.shape
    np.testing.assert_allclose(np.sum(conv_u * y), np.sum(u * t_y), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("options", [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 1), padding=(0, 1), dilation=(1, 2)),
    dict(groups=2, stride=2),
    dict(stride=1, dilation=2, output_padding=1),
])
def test_gradcheck_input_weight_bias(options):
    rng = np.random.default_rng(0)
    groups = options.get("groups", 1)
    x = rng.standard_normal((2, 2, 3, 4))                          # (N, Cin, H, W)
    weight = rng.standard_normal((2, 4 // groups, 3, 2))           # (Cin, Cout/groups, kH, kW)
    bias = rng.standard_normal(4)
    assert mdl.gradcheck(lambda a, w, b: F.conv_transpose2d(a, w, b, **options), [x, weight, bias])


@pytest.mark.parametrize("backend", ["numba", "numpy", "python"])
def test_hand_computed_cases(backend):
    with mdl.kernels.use(backend):
        # stride 2 = kernel size: every input pixel stamps a scaled copy of the kernel
        x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])                 # (1, 1, 2, 2)
        k = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])           # (1, 1, 2, 2)
        out = F.conv_transpose2d(mdl.tensor(x), mdl.tensor(k), stride=2).data
        expected = np.kron(x[0, 0], k[0, 0])                       # block (i, j) = x[i, j] * k
        np.testing.assert_array_equal(out[0, 0], expected)
        # stride 1: stamps overlap and add up
        x = np.array([[[[1.0, 2.0]]]])                              # (1, 1, 1, 2)
        k = np.array([[[[1.0, 1.0]]]])                              # (1, 1, 1, 2)
        out = F.conv_transpose2d(mdl.tensor(x), mdl.tensor(k), mdl.tensor(np.array([0.5]))).data
        np.testing.assert_array_equal(out[0, 0], [[1.5, 3.5, 2.5]])
        # padding crops the border, output_padding adds a row/column at the end
        out = F.conv_transpose2d(mdl.tensor(x), mdl.tensor(k), stride=2, padding=(0, 1), output_padding=1).data
        # full output [1, 1, 2, 2] (+1 trailing zero from output_padding), cropped by 1 at each side
        np.testing.assert_array_equal(out[0, 0], [[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])


def test_matches_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 5, 3))
    w = rng.standard_normal((4, 3, 4, 3))
    b = rng.standard_normal(6)
    options = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=(1, 1))
    ours = F.conv_transpose2d(mdl.tensor(x), mdl.tensor(w), mdl.tensor(b), **options).data
    theirs = torch.nn.functional.conv_transpose2d(*(torch.from_numpy(a) for a in (x, w, b)), **options)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", ["numba", "numpy", "python"])
def test_caller_arrays_are_not_modified(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    upstream = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    copies = [a.copy() for a in (x, w, b, upstream)]
    xt, wt, bt = (mdl.Tensor(a, requires_grad=True) for a in (x, w, b))
    with mdl.kernels.use(backend):
        out = F.conv_transpose2d(xt, wt, bt, stride=2, padding=1, output_padding=1)
        assert out.shape == upstream.shape
        out.backward(upstream)
    for before, after in zip(copies, (x, w, b, upstream)):
        np.testing.assert_array_equal(before, after)


@given(conv_transpose2d_configs())
@settings(max_examples=15)
def test_parallel_blocks_agree_with_numpy(cfg):
    """Force the thread pool on tiny shapes (blocks of samples in parallel)."""
    from minidl.kernels import conv_fast
    cfg = dict(cfg, n=cfg["n"] + 2)
    x, weight, bias = make_arrays(cfg, transpose=True)
    expected = run("conv_transpose2d", "numpy", x, weight, bias, options_of(cfg))
    old = conv_fast.PARALLEL_MIN_WORK
    conv_fast.PARALLEL_MIN_WORK = 0
    try:
        got = run("conv_transpose2d", "numba", x, weight, bias, options_of(cfg))
    finally:
        conv_fast.PARALLEL_MIN_WORK = old
    for name, a, b in zip(("out", "dx", "dw", "db"), got, expected):
        if a is not None:
            np.testing.assert_allclose(a, b, err_msg=name, **TOLERANCE[cfg["dtype"]])
