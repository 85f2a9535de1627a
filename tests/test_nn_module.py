"""nn.Module: registration, names, modes, gradients, state_dict round trips and errors, repr."""
from collections import OrderedDict

import numpy as np
import pytest

import minidl as mdl
from minidl import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))
        self.register_buffer("running", np.zeros(4, dtype=np.float32))
        self.register_buffer("scratch", np.zeros(2, dtype=np.float32), persistent=False)
        self.plain = mdl.tensor(np.ones(2, dtype=np.float32))   # a Tensor, not registered

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(4, 2))
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.head[1](self.drop(self.block(x)))


def test_parameters_are_registered_by_assignment_with_dotted_names_in_order():
    names = [name for name, _ in Net().named_parameters()]
    # like PyTorch: a module's own parameters first, then its children's, in assignment order
    assert names == ["block.scale", "block.fc.weight", "block.fc.bias", "head.1.weight", "head.1.bias"]


def test_parameters_match_named_parameters_and_plain_tensors_are_not_registered():
    net = Net()
    params = list(net.parameters())
    assert len(params) == 5
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    assert all(p is q for p, (_, q) in zip(params, net.named_parameters()))
    assert not any(p is net.block.plain for p in params)


def test_shared_parameter_is_listed_once():
    net = nn.Module()
    net.a = nn.Linear(2, 2)
    net.b = nn.Linear(2, 2)
    net.b.weight = net.a.weight
    assert len(list(net.parameters())) == 3
    assert [n for n, _ in net.named_parameters()] == ["a.weight", "a.bias", "b.bias"]


def test_children_and_modules():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["block", "head", "drop"]
    assert list(net.children())[0] is net.block
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "head", "head.0",
                                                  "head.1", "drop"]
    assert len(list(net.modules())) == 7


def test_reassigning_a_parameter_with_a_module_moves_it_between_registries():
    m = nn.Module()
    m.x = nn.Parameter(np.zeros(2))
    m.x = nn.Linear(1, 1)
    assert [n for n, _ in m.named_parameters()] == ["x.weight", "x.bias"]
    del m.x
    assert list(m.parameters()) == []
    with pytest.raises(AttributeError):
        m.x


def test_assigning_a_non_parameter_to_a_parameter_slot_raises():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="bias"):
        lin.bias = np.zeros(2)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]


def test_assignment_before_super_init_raises_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_buffers_are_in_state_dict_but_not_parameters():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == ["block.running", "block.scratch"]
    assert "block.running" in net.state_dict()
    assert "block.scratch" not in net.state_dict()           # persistent=False
    assert not any(b is p for b in net.buffers() for p in net.parameters())


def test_train_eval_propagates_to_every_descendant():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert net.training and not net.head[1].training


def test_zero_grad_sets_grads_to_none_or_zeros():
    net = Net()
    out = net.block(mdl.tensor(np.ones((2, 3), dtype=np.float32)))
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert net.block.fc.weight.grad is not None
    net.zero_grad(set_to_none=False)
    assert np.all(net.block.fc.weight.grad == 0)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_into_a_fresh_model():
    mdl.manual_seed(1)
    a = Net()
    a.block.running.data[...] = [1, 2, 3, 4]
    mdl.manual_seed(2)
    b = Net()
    assert not np.array_equal(a.block.fc.weight.data, b.block.fc.weight.data)
    weight_object = b.block.fc.weight
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert b.block.fc.weight is weight_object                 # loaded in place
    x = mdl.tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    np.testing.assert_array_equal(a.eval()(x).data, b.eval()(x).data)


def test_state_dict_is_a_copy():
    lin = nn.Linear(2, 2)
    state = lin.state_dict()
    state["weight"][...] = 0
    assert not np.all(lin.weight.data == 0)


def test_load_state_dict_shape_mismatch_names_key_and_both_shapes():
    state = nn.Linear(3, 4).state_dict()
    with pytest.raises(ValueError, match=r"'weight': shape \(4, 3\) in the state_dict, but \(5, 3\)"):
        nn.Linear(3, 5, bias=False).load_state_dict({"weight": state["weight"]})


def test_load_state_dict_changes_nothing_when_it_fails():
    lin = nn.Linear(3, 4)
    before = lin.weight.data.copy()
    bad = {"weight": np.zeros((4, 3), np.float32), "bias": np.zeros(5, np.float32)}
    with pytest.raises(ValueError, match="'bias'"):
        lin.load_state_dict(bad)
    np.testing.assert_array_equal(lin.weight.data, before)


def test_load_state_dict_missing_and_unexpected_keys():
    lin = nn.Linear(3, 4)
    state = lin.state_dict()
    del state["bias"]
    state["extra.weight"] = np.zeros(1)
    with pytest.raises(ValueError) as info:
        lin.load_state_dict(state)
    assert "missing key 'bias'" in str(info.value)
    assert "unexpected key 'extra.weight'" in str(info.value)
    result = lin.load_state_dict(state, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra.weight"]


def test_load_state_dict_dtype_mismatch_is_an_error():
    lin = nn.Linear(2, 2)
    state = {k: v.astype(np.float64) for k, v in lin.state_dict().items()}
    with pytest.raises(ValueError, match="'weight': dtype float64 in the state_dict, but float32"):
        lin.load_state_dict(state)
    lin.double()
    lin.load_state_dict(state)
    assert lin.weight.dtype == np.float64


def test_repr_is_nested_like_pytorch():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.1), nn.Flatten()))
    expected = (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.1)\n"
        "    (1): Flatten(start_dim=1, end_dim=-1)\n"
        "  )\n"
        ")"
    )
    assert repr(net) == expected


def test_call_runs_forward_and_missing_forward_raises():
    net = Net()
    out = net(mdl.tensor(np.ones((2, 3), dtype=np.float32)))
    assert out.shape == (2, 2)
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_sequential_indexing_len_slicing_and_modulelist():
    layers = [nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(seq) == layers
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2 and seq[1:][0] is layers[1]
    with pytest.raises(IndexError):
        seq[3]
    named = nn.Sequential(OrderedDict(first=nn.Linear(2, 2), act=nn.ReLU()))
    assert [n for n, _ in named.named_parameters()] == ["first.weight", "first.bias"]

    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    blocks.append(nn.Linear(2, 1))
    assert len(blocks) == 4 and blocks[-1].out_features == 1
    assert len(list(blocks.parameters())) == 8
    assert [n for n, _ in blocks.named_parameters()][-1] == "3.bias"


def test_container_indices_cover_minus_length_to_length_minus_one():
    layers = [nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)]
    for container in (nn.Sequential(*layers), nn.ModuleList(layers)):
        name = type(container).__name__
        assert container[-3] is layers[0] and container[2] is layers[2]
        for index in (3, -4):
            with pytest.raises(IndexError, match=f"{name}: index {index} is out of range for length 3"):
                container[index]
    blocks = nn.ModuleList(layers)
    blocks[-1] = nn.Tanh()                                   # replaces the last, as a list would
    assert isinstance(blocks[2], nn.Tanh) and len(blocks) == 3
    with pytest.raises(IndexError, match="ModuleList: index 3 is out of range for length 3"):
        blocks[3] = nn.ReLU()
    single = nn.Sequential(nn.Linear(2, 1))                  # one module, not a dict of them
    assert len(single) == 1 and single(mdl.tensor(np.ones((4, 2), np.float32))).shape == (4, 1)


def test_registration_takes_the_right_kinds_and_refuses_the_rest_by_name():
    module = nn.Module()
    weight = nn.Parameter(np.ones(3))
    module.register_parameter("weight", weight)
    module.register_parameter("bias", None)                      # an absent parameter, as bias=False
    assert module.weight is weight and module.bias is None
    assert [name for name, _ in module.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="register_parameter: 'scale' must be a Parameter or None, got ndarray"):
        module.register_parameter("scale", np.ones(3))
    for bad in ("", "a.b"):
        with pytest.raises(ValueError, match="register_buffer: invalid name"):
            module.register_buffer(bad, np.zeros(2))
    with pytest.raises(TypeError, match="add_module: 'head' must be a Module, got int"):
        module.add_module("head", 3)
    module.add_module("head", nn.Linear(3, 1))
    module.head = None                                           # a sub-module may be set to None ...
    assert module.head is None
    module.add_module("head", nn.Linear(3, 1))
    with pytest.raises(TypeError, match="cannot assign int to sub-module 'head': expected a Module or None"):
        module.head = 3                                          # ... but not to anything else
    assert isinstance(module.head, nn.Linear)


def test_repr_puts_a_lone_child_on_its_own_line_as_pytorch():
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.ReLU()

    assert repr(Wrapper()) == "Wrapper(\n  (inner): ReLU()\n)"
    assert repr(nn.Linear(2, 3)) == "Linear(in_features=2, out_features=3, bias=True)"
