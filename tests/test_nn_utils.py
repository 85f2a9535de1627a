"""nn.utils.clip_grad_norm_ / clip_grad_value_ (by hand and against torch) and
nn.ModuleDict (registration, state_dict, dict behaviour)."""
import numpy as np
import pytest

import minidl as mdl
from minidl import nn


def params_with_grads(*grads, dtype=np.float32):
    params = []
    for g in grads:
        p = nn.Parameter(np.zeros(np.shape(g), dtype))
        p.grad = None if g is None else np.array(g, dtype)
        params.append(p)
    return params


def torch_params_with_grads(torch, grads):
    """PyTorch's twin of params_with_grads (float64)."""
    params = [torch.zeros(np.shape(g), dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    return params


# ---- clip_grad_norm_ --------------------------------------------------------------------------
def test_clip_grad_norm_scales_a_3_4_5_gradient_by_hand():
    a, b = params_with_grads([3.0, 0.0], [[4.0]])             # total 2-norm 5
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert total.item() == pytest.approx(5.0)
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * scale, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad, [[4.0 * scale]], rtol=1e-6)
    assert a.grad.dtype == np.float32


def test_clip_grad_norm_leaves_small_gradients_alone_and_skips_missing_ones():
    a, b = params_with_grads([0.3, 0.4], None)
    before = a.grad.copy()
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert total.item() == pytest.approx(0.5)
    np.testing.assert_array_equal(a.grad, before)
    assert b.grad is None
    assert nn.utils.clip_grad_norm_(params_with_grads(None), 1.0).item() == 0.0


def test_clip_grad_norm_other_norms_by_hand():
    a, b = params_with_grads([1.0, -6.0], [2.0])
    assert nn.utils.clip_grad_norm_([a, b], 100.0, norm_type=1).item() == pytest.approx(9.0)
    assert nn.utils.clip_grad_norm_([a, b], 100.0, norm_type=float("inf")).item() == pytest.approx(6.0)
    nn.utils.clip_grad_norm_([a, b], 3.0, norm_type=float("inf"))
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), np.array([1.0, -6.0, 2.0]) * 3.0 / (6.0 + 1e-6),
                               rtol=1e-6)


def test_clip_grad_norm_does_not_write_into_a_shared_gradient_array():
    shared = np.array([3.0, 4.0], np.float32)
    p = nn.Parameter(np.zeros(2, np.float32))
    p.grad = shared
    nn.utils.clip_grad_norm_([p], 1.0)
    np.testing.assert_array_equal(shared, [3.0, 4.0])


def test_clip_grad_norm_errors():
    with pytest.raises(RuntimeError, match="total norm"):
        nn.utils.clip_grad_norm_(params_with_grads([np.nan, 1.0]), 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm"):
        nn.utils.clip_grad_norm_(params_with_grads([1.0]), -1.0)
    with pytest.raises(TypeError, match="Tensors"):
        nn.utils.clip_grad_norm_([np.zeros(2)], 1.0)


def test_clip_grad_value_clamps_each_entry():
    (p,) = params_with_grads([[-3.0, 0.2], [0.7, 9.0]], dtype=np.float64)
    assert nn.utils.clip_grad_value_(p, 0.5) is None                 # a single Tensor works too
    np.testing.assert_array_equal(p.grad, [[-0.5, 0.2], [0.5, 0.5]])
    assert p.grad.dtype == np.float64



@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
def test_clip_grad_norm_of_a_nan_gradient_is_nan_wherever_it_sits(norm_type):
    # the NaN in the middle parameter: the inf-norm once took Python's max of the
    # per-parameter maxima, which skips a NaN that is not first
    grads = ([1.0, -6.0], [2.0, np.nan], [0.5])
    with pytest.raises(RuntimeError, match="total norm"):
        nn.utils.clip_grad_norm_(params_with_grads(*grads), 1.0, norm_type=norm_type,
                                 error_if_nonfinite=True)
    params = params_with_grads(*grads)
    total = nn.utils.clip_grad_norm_(params, 100.0, norm_type=norm_type)
    assert np.isnan(total.item())
    # as PyTorch: the clipping factor max_norm / (NaN + 1e-6) is NaN, and every gradient is scaled by it
    for p in params:
        assert np.isnan(p.grad).all()


@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
def test_clip_grad_norm_of_a_nan_gradient_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    grads = [np.array([1.0, -6.0]), np.array([2.0, np.nan]), np.array([0.5])]
    ours, theirs = params_with_grads(*grads, dtype=np.float64), torch_params_with_grads(torch, grads)
    ours_total = nn.utils.clip_grad_norm_(ours, 3.0, norm_type=norm_type)
    theirs_total = torch.nn.utils.clip_grad_norm_(theirs, 3.0, norm_type=norm_type)
    np.testing.assert_array_equal(ours_total.item(), theirs_total.item())
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad, t.grad.numpy())


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal((2, 2, 2))]
    ours, theirs = params_with_grads(*grads, dtype=np.float64), torch_params_with_grads(torch, grads)
    ours_total = nn.utils.clip_grad_norm_(ours, 0.7, norm_type=norm_type)
    theirs_total = torch.nn.utils.clip_grad_norm_(theirs, 0.7, norm_type=norm_type)
    assert ours_total.item() == pytest.approx(theirs_total.item(), rel=1e-12)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-12)
    nn.utils.clip_grad_value_(ours, 0.05)
    torch.nn.utils.clip_grad_value_(theirs, 0.05)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-12)


# ---- ModuleDict ---------------------------------------------------------------------------------
def test_module_dict_registers_its_modules_parameters_in_order():
    heads = nn.ModuleDict({"digits": nn.Linear(4, 10), "parity": nn.Linear(4, 2)})
    assert list(heads) == ["digits", "parity"] and len(heads) == 2 and "parity" in heads
    names = [name for name, _ in heads.named_parameters()]
    assert names == ["digits.weight", "digits.bias", "parity.weight", "parity.bias"]
    assert set(heads.state_dict()) == set(names)
    x = mdl.tensor(np.ones((3, 4), np.float32))
    assert heads["parity"](x).shape == (3, 2)


def test_module_dict_as_a_submodule_trains_and_round_trips(tmp_path):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 4)
            self.heads = nn.ModuleDict([("a", nn.Linear(4, 1)), ("b", nn.Linear(4, 1))])

        def forward(self, x, head):
            return self.heads[head](self.body(x))

    mdl.manual_seed(0)
    model = TwoHeads()
    assert len(list(model.parameters())) == 6
    model(mdl.tensor(np.ones((2, 4), np.float32)), "b").sum().backward()
    assert model.heads["b"].weight.grad is not None and model.heads["a"].weight.grad is None
    mdl.save(model.state_dict(), tmp_path / "m.npz")
    mdl.manual_seed(1)
    other = TwoHeads()
    other.load_state_dict(mdl.load(tmp_path / "m.npz"))
    np.testing.assert_array_equal(other.heads["a"].weight.data, model.heads["a"].weight.data)


def test_module_dict_behaves_like_a_dict():
    d = nn.ModuleDict()
    d["relu"] = nn.ReLU()
    d.update({"tanh": nn.Tanh()})
    d["relu"] = nn.GELU()                                       # replacing keeps the position
    assert list(d.keys()) == ["relu", "tanh"] and isinstance(d["relu"], nn.GELU)
    assert isinstance(d.pop("tanh"), nn.Tanh) and list(d) == ["relu"]
    del d["relu"]
    assert len(d) == 0
    d.update([("a", nn.ReLU())])
    d.clear()
    assert list(d.items()) == []


def test_module_dict_errors_name_the_problem():
    d = nn.ModuleDict({"a": nn.ReLU()})
    with pytest.raises(KeyError, match="no module named 'b'"):
        d["b"]
    with pytest.raises(TypeError, match="must be a Module"):
        d["c"] = np.zeros(2)
    with pytest.raises(TypeError, match="strings"):
        d[1] = nn.ReLU()
    with pytest.raises(KeyError, match="invalid key"):
        d["x.y"] = nn.ReLU()
    with pytest.raises(NotImplementedError, match="no forward"):
        d(np.zeros(2))


def test_module_dict_keys_match_torch_state_dict_names():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleDict({"conv": nn.Conv2d(1, 2, 3), "fc": nn.Linear(3, 2)})
    theirs = torch.nn.ModuleDict({"conv": torch.nn.Conv2d(1, 2, 3), "fc": torch.nn.Linear(3, 2)})
    assert list(ours.state_dict()) == list(theirs.state_dict())


# ---- boundaries (mutation audit) --------------------------------------------------------
def test_a_norm_just_under_max_norm_leaves_the_gradients_alone():
    """Scale max_norm / norm = 1.05: nothing is clipped, and nothing is scaled up."""
    p = nn.Parameter(np.zeros(2))
    p.grad = np.array([0.6, 0.8])                                  # norm 1.0
    total = nn.utils.clip_grad_norm_([p], max_norm=1.05)
    assert total.item() == pytest.approx(1.0)
    np.testing.assert_array_equal(p.grad, [0.6, 0.8])


def test_the_inf_norm_ignores_an_empty_gradient_and_norm_type_must_be_positive():
    empty, small = nn.Parameter(np.zeros(0)), nn.Parameter(np.zeros(2))
    empty.grad, small.grad = np.zeros(0), np.array([0.01, -0.02])
    assert nn.utils.clip_grad_norm_([empty, small], max_norm=1.0, norm_type=float("inf")).item() == 0.02
    for norm_type in (0, -1):
        with pytest.raises(ValueError, match="norm_type must be positive"):
            nn.utils.clip_grad_norm_([small], max_norm=1.0, norm_type=norm_type)
