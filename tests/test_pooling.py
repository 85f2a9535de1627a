"""max_pool2d and avg_pool2d: hand-worked cases (overlapping windows, ties,
padding), the three backends agreeing on forward and backward over drawn
configurations, gradcheck in float64, and edge cases. Bad arguments are in
test_pooling_errors.py.

Tolerances: float64 backends agree to 1e-12 (same sums, maybe another order);
float32 to rtol 1e-5 / atol 1e-6 (max pooling is exact; averages round once
per term, and the NumPy twin sums in float32 while the loops use float64).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels

BACKENDS = ("numba", "numpy", "python")
POOLS = {"max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d}
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


def run(op, x, grad, backend, **args):
    """Forward and backward of a pooling op under a backend: (out, dL/dx)."""
    with kernels.use(backend):
        t = mdl.tensor(x, requires_grad=True)
        out = POOLS[op](t, **args)
        out.backward(grad)
    return out.data, t.grad


# ---- hand-computed cases ------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_overlapping_windows_add_gradients_at_a_shared_max(backend):
    x = np.array([[1, 2, 1], [2, 9, 2], [1, 2, 1]], np.float64)[None, None]   # (1, 1, 3, 3)
    g = np.array([[1, 2], [3, 4]], np.float64)[None, None]
    out, gx = run("max_pool2d", x, g, backend, kernel_size=2, stride=1)
    assert out.tolist() == [[[[9, 9], [9, 9]]]]        # all four windows hold the 9
    expected = np.zeros((3, 3)); expected[1, 1] = 1 + 2 + 3 + 4
    np.testing.assert_array_equal(gx[0, 0], expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_tie_sends_gradient_to_first_element_in_scan_order(backend):
    x = np.ones((1, 1, 3, 3))                           # every window is one big tie
    g = np.array([[1.0, 10.0], [100.0, 1000.0]])[None, None]
    out, gx = run("max_pool2d", x, g, backend, kernel_size=2, stride=1)
    # window (i, j) starts at (i, j): its first element gets that window's gradient
    np.testing.assert_array_equal(gx[0, 0], [[1, 10, 0], [100, 1000, 0], [0, 0, 0]])
    x = np.array([[0.0, 3.0], [3.0, 1.0]])[None, None]  # tie between (0, 1) and (1, 0)
    out, gx = run("max_pool2d", x, np.full((1, 1, 1, 1), 5.0), backend, kernel_size=2)
    np.testing.assert_array_equal(gx[0, 0], [[0, 5], [0, 0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_stride_2_hand_case_and_padding_never_wins(backend):
    x = np.array([[1, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 4]], np.float32)[None, None]
    out, gx = run("max_pool2d", x, np.ones((1, 1, 2, 2), np.float32), backend, kernel_size=2)
    assert out.tolist() == [[[[5, 8], [9, 7]]]]
    assert gx[0, 0].tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0]]
    neg = -np.array([[1, 2], [3, 4]], np.float64)[None, None]   # all negative, padded with -inf
    out, gx = run("max_pool2d", neg, np.ones((1, 1, 2, 2)), backend, kernel_size=3, stride=1, padding=1)
    assert out.tolist() == [[[[-1, -1], [-1, -1]]]]
    assert gx[0, 0].tolist() == [[4, 0], [0, 0]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_avg_pool_overlapping_and_padding_counted(backend):
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    out, gx = run("avg_pool2d", x, np.ones((1, 1, 2, 2)), backend, kernel_size=2, stride=1)
    assert out.tolist() == [[[[2, 3], [5, 6]]]]         # (0+1+3+4)/4, ...
    np.testing.assert_allclose(gx[0, 0], np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4)
    ones = np.ones((1, 1, 2, 2))                        # every 3x3 window sees 4 ones + 5 pads
    out, gx = run("avg_pool2d", ones, np.ones((1, 1, 2, 2)), backend, kernel_size=3, stride=1, padding=1)
    np.testing.assert_allclose(out, np.full((1, 1, 2, 2), 4 / 9))
    np.testing.assert_allclose(gx, np.full((1, 1, 2, 2), 4 / 9))   # each input in 4 windows, 1/9 each


# ---- backends agree over drawn configurations -----------------------------------
@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 3)), h=h, w=w,
                kernel_size=(kh, kw), stride=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
                padding=(ph, pw), dtype=draw(st.sampled_from([np.float32, np.float64])),
                layout=draw(st.sampled_from(["contiguous", "transposed", "strided"])),
                seed=draw(st.integers(0, 2**16)))


def distinct_input(cfg):
    """Distinct values (a shuffled range, so no max ties), in the requested memory layout."""
    rng = np.random.default_rng(cfg["seed"])
    shape = (cfg["n"], cfg["c"], cfg["h"], cfg["w"])
    values = rng.permutation(int(np.prod(shape))).astype(cfg["dtype"]) / 7 - 3
    if cfg["layout"] == "transposed":                   # memory order (N, C, W, H)
        return np.ascontiguousarray(values.reshape(shape).swapaxes(2, 3)).swapaxes(2, 3)
    if cfg["layout"] == "strided":                      # every other column of a wider array
        wide = np.zeros(shape[:3] + (2 * shape[3],), cfg["dtype"])
        wide[..., ::2] = values.reshape(shape)
        return wide[..., ::2]
    return values.reshape(shape)


@pytest.mark.parametrize("op", POOLS)
@given(cfg=pool_configs())
def test_backends_agree_forward_and_backward(op, cfg):
    x = distinct_input(cfg)
    args = dict(kernel_size=cfg["kernel_size"], stride=cfg["stride"], padding=cfg["padding"])
    before = x.copy()
    results = {}
    for backend in BACKENDS:
        with kernels.use(backend):
            out_shape = POOLS[op](mdl.tensor(x), **args).shape
        grad = np.random.default_rng(1).standard_normal(out_shape).astype(cfg["dtype"])
        results[backend] = run(op, x, grad, backend, **args)
    np.testing.assert_array_equal(x, before)            # the caller's array is untouched
    oh = (cfg["h"] + 2 * cfg["padding"][0] - cfg["kernel_size"][0]) // cfg["stride"][0] + 1
    ow = (cfg["w"] + 2 * cfg["padding"][1] - cfg["kernel_size"][1]) // cfg["stride"][1] + 1
    assert results["numba"][0].shape == (cfg["n"], cfg["c"], oh, ow)
    for backend in ("numpy", "python"):
        for got, want in zip(results[backend], results["numba"]):
            assert got.dtype == cfg["dtype"]
            np.testing.assert_allclose(got, want, **TOL[cfg["dtype"]])


def reference_pool(x, op, k, s, p):
    """Plain-Python reference: look at every window element by element."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    out = np.zeros((n, c, oh, ow))
    for b, ch, i, j in np.ndindex(n, c, oh, ow):
        cells = [x[b, ch, i * s[0] - p[0] + di, j * s[1] - p[1] + dj]
                 if 0 <= i * s[0] - p[0] + di < h and 0 <= j * s[1] - p[1] + dj < w else None
                 for di in range(k[0]) for dj in range(k[1])]
        real = [v for v in cells if v is not None]
        out[b, ch, i, j] = max(real) if op == "max_pool2d" else sum(real) / len(cells)
    return out


@pytest.mark.parametrize("op", POOLS)
@given(cfg=pool_configs())
def test_forward_matches_elementwise_reference(op, cfg):
    x = distinct_input(cfg).astype(np.float64)
    got = POOLS[op](mdl.tensor(x), kernel_size=cfg["kernel_size"], stride=cfg["stride"],
                    padding=cfg["padding"]).data
    want = reference_pool(x, op, cfg["kernel_size"], cfg["stride"], cfg["padding"])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---- gradcheck (float64, distinct inputs: no ties) -------------------------------
@pytest.mark.parametrize("op", POOLS)
@pytest.mark.parametrize("k, s, p, shape", [
    (2, 2, 0, (2, 2, 4, 4)), (3, 1, 1, (1, 2, 5, 4)), (3, 2, 1, (2, 1, 7, 6)),
    ((2, 3), (1, 2), (1, 0), (1, 3, 5, 7)), (1, 1, 0, (1, 1, 3, 3)), (2, 3, 0, (1, 2, 8, 8)),
])
def test_gradcheck(op, k, s, p, shape):
    rng = np.random.default_rng(0)
    x = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01   # gaps 0.01 >> eps
    assert mdl.gradcheck(lambda t: POOLS[op](t, k, s, p), [x])


# ---- edge cases ------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_edge_cases(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 7))                # batch 1, odd sizes
    with kernels.use(backend):
        whole = F.max_pool2d(mdl.tensor(x), (5, 7)).data          # kernel equal to the input
        np.testing.assert_array_equal(whole[..., 0, 0], x.max(axis=(2, 3)))
        mean = F.avg_pool2d(mdl.tensor(x), (5, 7)).data
        np.testing.assert_allclose(mean[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-12)
        ident = F.max_pool2d(mdl.tensor(x), 1).data               # 1x1: identity
        np.testing.assert_array_equal(ident, x)
        far = F.avg_pool2d(mdl.tensor(x), 2, stride=3).data       # stride larger than kernel
        assert far.shape == (1, 2, 2, 2)
        np.testing.assert_allclose(far[0, 0, 1, 1], x[0, 0, 3:5, 3:5].mean(), rtol=1e-12)
        chw = F.max_pool2d(mdl.tensor(x[0]), 2).data              # 3-D (C, H, W) input
        np.testing.assert_array_equal(chw, F.max_pool2d(mdl.tensor(x), 2).data[0])
        empty = F.avg_pool2d(mdl.tensor(np.zeros((0, 3, 4, 4))), 2)
        assert empty.shape == (0, 3, 2, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_nan_propagates_and_inf_handled(backend):
    x = np.array([[1.0, np.nan], [-np.inf, 2.0]])[None, None]
    with kernels.use(backend):
        assert np.isnan(F.max_pool2d(mdl.tensor(x), 2).data).all()
        y = F.max_pool2d(mdl.tensor(np.full((1, 1, 2, 2), -np.inf)), 2).data
    assert y.tolist() == [[[[-np.inf]]]]


def test_gradient_reaches_a_non_contiguous_input_through_3d_form():
    x = np.random.default_rng(0).standard_normal((4, 6, 2)).transpose(2, 0, 1)  # (2, 4, 6) view
    t = mdl.tensor(x, requires_grad=True)
    F.max_pool2d(t, 2).sum().backward()
    assert t.grad.shape == (2, 4, 6)
    assert t.grad.sum() == pytest.approx(2 * 2 * 3)      # one unit per window


def test_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((2, 3, 9, 8))
    for op, k, s, p in (("max_pool2d", 3, 2, 1), ("avg_pool2d", (3, 2), 1, (1, 1)), ("max_pool2d", 2, 1, 0)):
        t = mdl.tensor(x, requires_grad=True)
        y = POOLS[op](t, k, s, p)
        y.backward(np.ones(y.shape))
        tt = torch.tensor(x, requires_grad=True)
        ty = getattr(torch.nn.functional, op)(tt, k, s, p)
        ty.backward(torch.ones_like(ty))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("backend", ["numba", "numpy", "python"])
def test_input_gradient_is_a_new_array_that_owns_its_memory(pool, backend):
    """The backward allocates dL/dx in Python (an array made inside a Numba
    kernel never owns its memory in NumPy's eyes), so autograd keeps it as the
    leaf's gradient without copying it; the values match the twin's."""
    import minidl as mdl
    import minidl.functional as F
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    fn = F.max_pool2d if pool == "max" else F.avg_pool2d
    with mdl.kernels.use(backend):
        t = mdl.tensor(x, requires_grad=True)
        fn(t, 2).backward(np.ones((2, 3, 3, 3)))
    assert t.grad.base is None and t.grad.flags.owndata and t.grad.shape == x.shape
    with mdl.kernels.use("numpy"):
        ref = mdl.tensor(x, requires_grad=True)
        fn(ref, 2).backward(np.ones((2, 3, 3, 3)))
    np.testing.assert_allclose(t.grad, ref.grad, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_avg_pool_loops_sum_a_float32_window_in_float64(backend):
    """The loops add a float32 window in float64 and round once, compiled and
    interpreted (the module docstring's float64 accumulator): a window holding
    2**24, 1, 1 and -2**24 sums to 2, where a float32 running sum loses both ones (2**24 + 1
    rounds back to 2**24). The reference is NumPy's float64 mean of the same
    float32 values, rounded to float32. (The NumPy twin sums in float32; see
    the tolerances above. The loops start their sum at np.float64(0.0): a
    plain 0.0 would stay float32 once interpreted, under NumPy 2's promotion.)"""
    big = np.float32(2.0 ** 24)
    plane = np.array([[big, 1, 5, 7],
                      [1, -big, -3, 2],
                      [-big, 3, 1, big],
                      [1, big, 1, -big]], np.float32)    # windows in several orders and positions
    x = np.stack([plane, plane.T, -plane])[None]       # (1, 3, 4, 4)
    with kernels.use(backend):
        for k, s in (((2, 2), (2, 2)), ((2, 2), (1, 1)), ((4, 4), (1, 1)), ((2, 3), (1, 1))):
            out = F.avg_pool2d(mdl.tensor(x), kernel_size=k, stride=s).data
            windows = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), k, axis=(2, 3))
            want = windows[:, :, ::s[0], ::s[1]].mean(axis=(-2, -1)).astype(np.float32)
            assert out.dtype == np.float32
            np.testing.assert_array_equal(out, want, err_msg=f"kernel {k}, stride {s}")


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_an_unbatched_input_pools_like_a_batch_of_one_and_an_empty_stride_means_the_kernel(pool):
    rng = np.random.default_rng(0)
    image = rng.standard_normal((3, 6, 6)).astype(np.float32)            # (C, H, W)
    unbatched = mdl.tensor(image, requires_grad=True)
    batched = mdl.tensor(image[None], requires_grad=True)
    out, expected = pool(unbatched, 3, stride=1, padding=1), pool(batched, 3, stride=1, padding=1)
    assert out.shape == (3, 6, 6)
    np.testing.assert_array_equal(out.data, expected.data[0])
    weights = rng.standard_normal(out.shape).astype(np.float32)
    (out * mdl.tensor(weights)).sum().backward()
    (expected * mdl.tensor(weights[None])).sum().backward()
    np.testing.assert_array_equal(unbatched.grad, batched.grad[0])
    for empty in ((), []):                                               # PyTorch's stride=[]: the kernel
        np.testing.assert_array_equal(pool(batched, 2, stride=empty).data, pool(batched, 2).data)
