"""Optimizers against torch.optim: the same MLP, data and initial weights give the same parameters."""
import copy

import numpy as np
import pytest
import torch

from chainrule import nn
from chainrule.autograd import Tensor
from chainrule.nn import functional as F
from chainrule.optim import schedule
from chainrule.optim.optimizer import SGD, Adam, AdamW, RMSprop

STEPS = 20
RTOL, ATOL = 1e-10, 1e-13


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: torch's thread pool only adds overhead, a lot of it on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


rng = np.random.default_rng(0)
X = rng.standard_normal((16, 5))
Y = rng.integers(0, 3, size=16)


def models(seed=0):
    """A 5-7-3 ReLU MLP in torch and in chainrule, float64, with the same weights."""
    torch.manual_seed(seed)
    tm = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)).double()
    cm = nn.Sequential(nn.Linear(5, 7, dtype=np.float64), nn.ReLU(), nn.Linear(7, 3, dtype=np.float64))
    copy_weights(tm, cm)
    return cm, tm


def copy_weights(tm, cm):
    for (name, p), (tname, tp) in zip(cm.named_parameters(), tm.named_parameters(), strict=True):
        assert name == tname and p.data.shape == tuple(tp.shape)
        p.data[...] = tp.detach().numpy()


def train_step(cm, opt):
    opt.zero_grad()
    F.cross_entropy(cm(Tensor(X)), Y).backward()
    opt.step()


def torch_train_step(tm, topt):
    topt.zero_grad()
    torch.nn.functional.cross_entropy(tm(torch.from_numpy(X)), torch.from_numpy(Y)).backward()
    topt.step()


def assert_same_params(cm, tm, rtol=RTOL, atol=ATOL):
    for (name, p), tp in zip(cm.named_parameters(), tm.parameters(), strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=rtol, atol=atol, err_msg=name)


def groups(model, spec):
    """Param groups for chainrule or torch: spec is None (all params) or a list of per-layer lrs."""
    layers = [m for m in model if len(list(m.parameters()))]
    if spec is None:
        return list(model.parameters())
    return [{"params": list(layer.parameters()), "lr": lr} for layer, lr in zip(layers, spec)]


CASES = {
    "sgd": (SGD, torch.optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    "sgd_dampening": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5)),
    "sgd_nesterov": (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    "sgd_weight_decay": (SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=0.05)),
    "sgd_all": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "rmsprop": (RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    "rmsprop_defaults": (RMSprop, torch.optim.RMSprop, dict()),
    "rmsprop_centered": (RMSprop, torch.optim.RMSprop, dict(lr=0.01, centered=True)),
    "rmsprop_momentum": (RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.9)),
    "rmsprop_weight_decay": (RMSprop, torch.optim.RMSprop, dict(lr=0.01, weight_decay=0.1, alpha=0.9)),
    "rmsprop_all": (RMSprop, torch.optim.RMSprop,
                    dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.05, eps=1e-6)),
    "adam": (Adam, torch.optim.Adam, dict(lr=0.01)),
    "adam_defaults": (Adam, torch.optim.Adam, dict()),
    "adam_weight_decay": (Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    "adam_amsgrad": (Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True, betas=(0.8, 0.99))),
    "adamw": (AdamW, torch.optim.AdamW, dict(lr=0.01)),
    "adamw_amsgrad": (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
}

# buffers each optimizer keeps per parameter, under PyTorch's names
STATE_KEYS = {SGD: {"momentum_buffer"}, RMSprop: {"square_avg", "momentum_buffer", "grad_avg"},
              Adam: {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, AdamW: {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}}


def compare_state(opt, topt, cls):
    """The per-parameter buffers are the same arrays as torch's, under the same names."""
    ours, theirs = opt.state_dict()["state"], topt.state_dict()["state"]
    assert sorted(ours) == sorted(theirs)
    for i in theirs:
        tkeys = {k for k, v in theirs[i].items() if torch.is_tensor(v) and v.ndim > 0}
        okeys = {k for k, v in ours[i].items() if isinstance(v, np.ndarray) and v.ndim > 0}
        assert okeys == tkeys and okeys <= STATE_KEYS[cls], (okeys, tkeys)
        for k in tkeys:
            np.testing.assert_allclose(ours[i][k], theirs[i][k].numpy(), rtol=RTOL, atol=ATOL, err_msg=k)
        if "step" in theirs[i]:
            assert int(ours[i]["step"]) == int(theirs[i]["step"]) == STEPS


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(case):
    cls, tcls, kwargs = CASES[case]
    cm, tm = models()
    opt, topt = cls(cm.parameters(), **kwargs), tcls(tm.parameters(), **kwargs)
    for _ in range(STEPS):
        train_step(cm, opt)
        torch_train_step(tm, topt)
    assert_same_params(cm, tm)
    compare_state(opt, topt, cls)
    # and the weights did move
    _, t0 = models()
    assert not np.allclose(next(cm.parameters()).data, next(t0.parameters()).detach().numpy())


@pytest.mark.parametrize("case", ["sgd_momentum", "rmsprop_all", "adam_amsgrad", "adamw"])
def test_param_groups_with_own_lrs(case):
    cls, tcls, kwargs = CASES[case]
    cm, tm = models(1)
    opt = cls(groups(cm, [kwargs["lr"] * 3, kwargs["lr"] / 2]), **kwargs)
    topt = tcls(groups(tm, [kwargs["lr"] * 3, kwargs["lr"] / 2]), **kwargs)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
    for _ in range(STEPS):
        train_step(cm, opt)
        torch_train_step(tm, topt)
    assert_same_params(cm, tm)


def test_group_hyper_parameters_override_defaults():
    cm, tm = models(2)
    layers, tlayers = [cm[0], cm[2]], [tm[0], tm[2]]
    opt = SGD([{"params": layers[0].parameters(), "momentum": 0.5, "weight_decay": 0.1},
               {"params": layers[1].parameters(), "nesterov": True}], lr=0.05, momentum=0.9)
    topt = torch.optim.SGD([{"params": tlayers[0].parameters(), "momentum": 0.5, "weight_decay": 0.1},
                            {"params": tlayers[1].parameters(), "nesterov": True}], lr=0.05, momentum=0.9)
    for _ in range(STEPS):
        train_step(cm, opt)
        torch_train_step(tm, topt)
    assert_same_params(cm, tm)


def test_add_param_group():
    cm, tm = models(3)
    opt = Adam(cm[0].parameters(), lr=0.01)
    topt = torch.optim.Adam(tm[0].parameters(), lr=0.01)
    for _ in range(5):
        train_step(cm, opt)
        torch_train_step(tm, topt)
    opt.add_param_group({"params": cm[2].parameters(), "lr": 0.05, "amsgrad": True})
    topt.add_param_group({"params": tm[2].parameters(), "lr": 0.05, "amsgrad": True})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    for _ in range(10):
        train_step(cm, opt)
        torch_train_step(tm, topt)
    assert_same_params(cm, tm)
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [cm[0].weight]})           # already in group 0


def test_lr_schedule_during_training_matches_torch():
    cm, tm = models(4)
    opt = SGD(cm.parameters(), lr=0.2, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.2, momentum=0.9)
    sched = schedule.StepLR(opt, step_size=5, gamma=0.5)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=5, gamma=0.5)
    for _ in range(STEPS):
        train_step(cm, opt)
        torch_train_step(tm, topt)
        sched.step()
        tsched.step()
    assert_same_params(cm, tm)


# -- state_dict --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["sgd_momentum", "sgd_nesterov", "rmsprop_all", "adam_amsgrad", "adamw",
                                  "adam_weight_decay"])
def test_state_dict_round_trip(case):
    cls, _, kwargs = CASES[case]
    straight, _ = models(5)
    opt = cls(straight.parameters(), **kwargs)
    for _ in range(STEPS):
        train_step(straight, opt)

    first, _ = models(5)
    opt1 = cls(groups(first, [kwargs.get("lr", 0.01)] * 2), **kwargs)
    for _ in range(STEPS // 2):
        train_step(first, opt1)
    sd = opt1.state_dict()

    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]
    assert sorted(sd["state"]) in ([0, 1, 2, 3], [])
    saved = copy.deepcopy(sd)

    # a second model with the same weights, a new optimizer built with other hyper-parameters
    second, _ = models(6)
    for p, q in zip(second.parameters(), first.parameters()):
        p.data[...] = q.data
    opt2 = cls(groups(second, [123.0, 456.0]), **{**kwargs, "lr": 123.0})
    opt2.load_state_dict(sd)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt1.param_groups]

    # the two continue side by side: the loaded state must not share buffers with the saved one
    for _ in range(STEPS // 2):
        train_step(first, opt1)
        train_step(second, opt2)
    for a, b, c in zip(straight.parameters(), first.parameters(), second.parameters()):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(c.data, a.data, rtol=1e-13, atol=1e-15)
    # and the saved dict was not changed by the steps after saving
    for i, st in saved["state"].items():
        for k, v in st.items():
            np.testing.assert_array_equal(sd["state"][i][k], v)


def test_load_state_dict_rejects_mismatch():
    cm, _ = models()
    opt = Adam(groups(cm, [0.01, 0.01]))
    train_step(cm, opt)
    sd = opt.state_dict()
    with pytest.raises(ValueError):
        Adam(cm.parameters()).load_state_dict(sd)             # one group, not two
    other = nn.Sequential(nn.Linear(5, 4, dtype=np.float64), nn.ReLU(), nn.Linear(4, 3, dtype=np.float64))
    with pytest.raises(ValueError):
        Adam(groups(other, [0.01, 0.01])).load_state_dict(sd)  # shapes differ


def test_state_dict_can_be_loaded_into_torch_layout():
    """The layout is PyTorch's: the same indices, groups and buffer names."""
    cm, tm = models(7)
    opt, topt = Adam(cm.parameters(), lr=0.01), torch.optim.Adam(tm.parameters(), lr=0.01)
    for _ in range(3):
        train_step(cm, opt)
        torch_train_step(tm, topt)
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert [g["params"] for g in ours["param_groups"]] == [g["params"] for g in theirs["param_groups"]]
    assert set(ours["param_groups"][0]) <= set(theirs["param_groups"][0])
    assert {k: set(v) for k, v in ours["state"].items()} == {k: set(v) for k, v in theirs["state"].items()}


# -- grads -------------------------------------------------------------------------------------------
def test_zero_grad_sets_none_or_zeros():
    cm, _ = models()
    opt = SGD(cm.parameters(), lr=0.1)
    F.cross_entropy(cm(Tensor(X)), Y).backward()
    assert all(p.grad is not None for p in cm.parameters())
    opt.zero_grad(set_to_none=False)
    for p in cm.parameters():
        assert p.grad is not None and not p.grad.data.any()
    opt.zero_grad()
    assert all(p.grad is None for p in cm.parameters())
    before = [p.data.copy() for p in cm.parameters()]
    opt.step()                                                   # no grads: nothing moves
    for b, p in zip(before, cm.parameters()):
        np.testing.assert_array_equal(b, p.data)


@pytest.mark.parametrize("case", ["sgd_momentum", "rmsprop_all", "adam_weight_decay", "adamw"])
def test_frozen_parameter_is_skipped(case):
    cls, tcls, kwargs = CASES[case]
    cm, tm = models(8)
    cm[0].bias.requires_grad = False
    tm[0].bias.requires_grad_(False)
    frozen = cm[0].bias.data.copy()
    opt, topt = cls(cm.parameters(), **kwargs), tcls(tm.parameters(), **kwargs)
    for _ in range(STEPS):
        train_step(cm, opt)
        torch_train_step(tm, topt)
        assert cm[0].bias.grad is None
    np.testing.assert_array_equal(cm[0].bias.data, frozen)     # even with weight decay
    assert cm[0].bias not in opt.state
    assert sorted(opt.state_dict()["state"]) == [0, 2, 3]
    assert_same_params(cm, tm)


# -- bad hyper-parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=-0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=-0.5),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, dampening=0.1),
    lambda ps: SGD(ps, lr=0.1, nesterov=True),                   # Nesterov without momentum
    lambda ps: SGD(ps, lr=0.1, weight_decay=-1e-4),
    lambda ps: RMSprop(ps, lr=-0.01),
    lambda ps: RMSprop(ps, alpha=-0.1),
    lambda ps: RMSprop(ps, eps=-1e-8),
    lambda ps: RMSprop(ps, momentum=-0.9),
    lambda ps: Adam(ps, lr=-1e-3),
    lambda ps: Adam(ps, betas=(1.0, 0.999)),
    lambda ps: Adam(ps, betas=(0.9, 1.0)),
    lambda ps: Adam(ps, betas=(-0.1, 0.999)),
    lambda ps: Adam(ps, eps=-1e-8),
    lambda ps: Adam(ps, weight_decay=-0.1),
    lambda ps: AdamW(ps, lr=-1e-3),
    lambda ps: AdamW(ps, betas=(0.9, 1.5)),
    lambda ps: SGD([], lr=0.1),
    lambda ps: SGD([{"params": ps[:2]}, {"params": ps[1:]}], lr=0.1),   # a parameter in two groups
    lambda ps: SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": -1.0}], lr=0.1),
])
def test_bad_hyper_parameters(make):
    cm, _ = models()
    with pytest.raises(ValueError):
        make(list(cm.parameters()))


def test_parameters_must_be_tensors():
    with pytest.raises(TypeError):
        SGD([np.zeros(3)], lr=0.1)


def test_a_lone_tensor_is_rejected():
    cm, _ = models()
    with pytest.raises(TypeError):
        SGD(cm[0].weight, lr=0.1)


@pytest.mark.parametrize("case", ["sgd_all", "rmsprop_all", "adam_amsgrad", "adamw"])
def test_float32_stays_float32(case):
    cls, _, kwargs = CASES[case]
    cm = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).float()
    opt = cls(cm.parameters(), **kwargs)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(cm(Tensor(X.astype(np.float32))), Y).backward()
        opt.step()
    assert {p.data.dtype for p in cm.parameters()} == {np.dtype(np.float32)}
    assert {v.dtype for st in opt.state.values() for v in st.values() if isinstance(v, np.ndarray)} \
        <= {np.dtype(np.float32)}
