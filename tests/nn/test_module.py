"""chainrule/nn/module.py and containers: registration, traversal, modes, state dicts, counting."""
from collections import OrderedDict

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 2)
        self.scale = nn.Parameter(np.ones(2))
        self.not_a_param = cr.zeros(5)          # a plain Tensor attribute is not registered
        self.config = {"hidden": 4}

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def mlp():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


# -- registration and traversal -------------------------------------------------------------------------------
def test_registration_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [p.shape for p in net.parameters()] == [(2,), (4, 3), (4,), (2, 4), (2,)]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "fc2"]
    assert list(net.children()) == [net.fc1, net.act, net.fc2]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "fc2"]
    assert list(net.modules())[0] is net
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert net(cr.randn(5, 3)).shape == (5, 2)


def test_assignment_rules():
    net = Net()
    with pytest.raises(TypeError, match="scale"):
        net.scale = cr.zeros(2)                  # a parameter slot takes a Parameter or None
    with pytest.raises(TypeError, match="fc1"):
        net.fc1 = 3
    net.fc1 = nn.Linear(3, 4)                   # replacing a child keeps its place
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "fc2"]
    net.scale = None
    assert "scale" not in dict(net.named_parameters())
    del net.fc2
    assert "fc2" not in dict(net.named_children()) and not hasattr(net, "fc2")
    net.register_parameter("extra", nn.Parameter(np.zeros(1)))
    net.add_module("head", nn.Linear(4, 1))
    assert "extra" in dict(net.named_parameters()) and net.get_submodule("head") is net.head


def test_assigning_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_shared_parameters_count_once():
    a = nn.Linear(3, 3)
    m = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(m.parameters())) == 2 and m.num_parameters() == 12
    assert len(list(m.modules())) == 3


def test_buffers_are_state_but_not_parameters():
    m = nn.Linear(2, 2)
    m.register_buffer("running", np.zeros(2))
    m.register_buffer("scratch", np.zeros(3), persistent=False)
    assert "running" not in dict(m.named_parameters())
    assert set(dict(m.named_buffers())) == {"running", "scratch"}
    assert list(m.state_dict()) == ["weight", "bias", "running"]
    m.running = cr.tensor(np.ones(2))
    assert m.state_dict()["running"].tolist() == [1.0, 1.0]


def test_forward_missing_and_hooks_and_repr():
    with pytest.raises(TypeError, match="forward"):
        nn.Module()(1)
    m = mlp()
    seen = []
    h = m[0].register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    m(cr.randn(2, 3))
    h.remove()
    m(cr.randn(2, 3))
    assert seen == [(2, 4)]
    r = repr(m)
    assert "(0): Linear(in_features=3, out_features=4, bias=True)" in r and "(1): ReLU()" in r
    visited = []
    m.apply(lambda mod: visited.append(type(mod).__name__))
    assert visited == ["Linear", "ReLU", "Linear", "Sequential"]
    with pytest.raises(AttributeError, match="'5'"):
        m.get_submodule("5")


# -- modes, grads, counting ----------------------------------------------------------------------------------
def test_train_eval_propagate():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net[1].eval()
    assert net.training and not net[1][0].training


def test_zero_grad_sets_none():
    m = mlp()
    m(cr.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m(cr.randn(4, 3)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in m.parameters())


def test_requires_grad_false_freezes():
    m = mlp()
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    out = m(cr.randn(2, 3))
    assert not out.requires_grad
    m[2].requires_grad_(True)
    m(cr.randn(2, 3)).sum().backward()
    assert m[0].weight.grad is None and m[2].weight.grad is not None
    assert m.num_parameters(trainable_only=True) == 10 and m.num_parameters() == 26


def test_the_26_parameter_fact():
    # 3 inputs -> 4 hidden -> 2 outputs: 3*4 + 4*2 = 20 weights and 4 + 2 = 6 biases
    m = mlp()
    assert m.num_parameters() == 26
    assert nn.count_parameters(m) == 26
    assert sum(p.data.size for n, p in m.named_parameters() if n.endswith("weight")) == 20
    assert sum(p.data.size for n, p in m.named_parameters() if n.endswith("bias")) == 6
    assert nn.count_parameters(nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))) == 20


# -- state dicts ---------------------------------------------------------------------------------------------
def test_state_dict_round_trip():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["fc1.weight"][...] = 0                 # a copy: the model is untouched
    assert a.fc1.weight.data.any()
    sd = a.state_dict()
    w_obj = b.fc1.weight
    assert b.load_state_dict(sd) == ([], [])
    assert b.fc1.weight is w_obj              # loaded in place: optimizers keep their references
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    x = cr.randn(3, 3)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_keeps_the_model_dtype():
    m = mlp()
    sd = OrderedDict((k, v.astype(np.float64)) for k, v in mlp().state_dict().items())
    m.load_state_dict(sd)
    assert all(p.dtype == np.float32 for p in m.parameters())


def test_load_state_dict_errors_name_the_keys():
    m = mlp()
    sd = m.state_dict()
    missing = OrderedDict(sd)
    del missing["2.bias"]
    with pytest.raises(KeyError, match="missing keys \\['2.bias'\\]"):
        m.load_state_dict(missing)
    extra = OrderedDict(sd, **{"3.weight": np.zeros(2)})
    with pytest.raises(KeyError, match="unexpected keys \\['3.weight'\\]"):
        m.load_state_dict(extra)
    assert m.load_state_dict(missing, strict=False) == (["2.bias"], [])
    assert m.load_state_dict(extra, strict=False) == ([], ["3.weight"])


def test_load_state_dict_shape_mismatch_changes_nothing():
    m = mlp()
    before = m.state_dict()
    sd = OrderedDict((k, np.zeros_like(v)) for k, v in before.items())
    sd["2.weight"] = np.zeros((3, 4))
    with pytest.raises(ValueError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert "'2.weight'" in msg and "(3, 4)" in msg and "(2, 4)" in msg
    for k, v in m.state_dict().items():      # all checks run before anything is copied
        np.testing.assert_array_equal(v, before[k])


# -- containers ----------------------------------------------------------------------------------------------
def test_sequential_indexing_slicing_len():
    m = mlp()
    assert len(m) == 3
    assert isinstance(m[0], nn.Linear) and isinstance(m[-1], nn.Linear) and m[-1] is m[2]
    head = m[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is m[0]
    assert [type(l).__name__ for l in m[1:]] == ["ReLU", "Linear"]
    assert [n for n, _ in m[1:].named_parameters()] == ["2.weight", "2.bias"]
    x = cr.randn(2, 3)
    np.testing.assert_array_equal(m(x).data, m[2](m[1](m[0](x))).data)
    np.testing.assert_array_equal(m[:2](x).data, m[1](m[0](x)).data)
    assert list(m) == [m[0], m[1], m[2]]
    m.append(nn.Sigmoid())
    assert len(m) == 4 and m(x).shape == (2, 2)
    m[1] = nn.Tanh()
    assert isinstance(m[1], nn.Tanh) and len(m) == 4
    np.testing.assert_array_equal(m(x).data, m[3](m[2](m[1](m[0](x)))).data)
    named = nn.Sequential(OrderedDict([("enc", nn.Linear(3, 2)), ("act", nn.ReLU())]))
    assert named["enc"] is named[0] and [n for n, _ in named.named_parameters()] == ["enc.weight", "enc.bias"]
    with pytest.raises(TypeError, match="argument 1"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and layers[-1] is list(layers)[2]
    assert len(layers[:2]) == 2
    layers.append(nn.ReLU()).extend([nn.Tanh()])
    assert len(layers) == 5 and len(list(layers.parameters())) == 6
    layers[0] = nn.Linear(2, 3)
    assert layers[0].out_features == 3
    d = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()})
    d["c"] = nn.Linear(2, 1)
    assert list(d) == ["a", "b", "c"] and "c" in d and len(d) == 3
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias", "c.weight", "c.bias"]
    assert list(d.keys()) == ["a", "b", "c"] and d["b"] is dict(d.items())["b"]
