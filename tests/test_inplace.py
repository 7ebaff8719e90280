"""In-place safety, as PyTorch's version counters (issue 12 part 1).

Every in-place change bumps the tensor's version (shared with its views); an op that saved a tensor
for backward checks in backward that the version did not change, and raises naming the op and the
shape. Each case is run in PyTorch too (float64): both raise, or neither does, with the same
version numbers.
"""
import re

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn, optim

MSG = r"one of the variables needed for gradient computation has been modified by an inplace " \
      r"operation: \[Tensor of shape \({shape}\)\] was modified in place after it was used by " \
      r"{op}; its version is {v}, expected {e}"


def _arr(shape=(3, 4), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _torch_versions(fn):
    """Run ``fn`` on torch; return (version, expected) from its error, or None if it did not raise."""
    try:
        fn()
    except RuntimeError as e:
        m = re.search(r"is at version (\d+); expected version (\d+)", str(e))
        assert m, str(e)
        return int(m.group(1)), int(m.group(2))
    return None


# -- versions ------------------------------------------------------------------------------------
INPLACE = [
    ("zero_", lambda t: t.zero_()),
    ("fill_", lambda t: t.fill_(2.0)),
    ("copy_", lambda t, lib=None: t.copy_(t * 0 + 1)),
    ("add_", lambda t: t.add_(1.5)),
    ("sub_", lambda t: t.sub_(1.5)),
    ("mul_", lambda t: t.mul_(2.0)),
    ("div_", lambda t: t.div_(2.0)),
    ("clamp_", lambda t: t.clamp_(-0.5, 0.5)),
    ("setitem", lambda t: t.__setitem__((0, slice(1, 3)), 7.0)),
]


@pytest.mark.parametrize("name,op", INPLACE, ids=[n for n, _ in INPLACE])
def test_each_inplace_op_bumps_the_version_as_torch_and_computes_the_same(name, op):
    a = _arr()
    t, tt = cr.tensor(a), torch.tensor(a)
    assert t._version == tt._version == 0
    with cr.no_grad():
        r = op(t)
    op(tt)
    assert t._version == tt._version == 1
    op(tt) if name != "setitem" else tt.__setitem__((0, slice(1, 3)), 7.0)
    with cr.no_grad():
        op(t)
    assert t._version == tt._version == 2
    np.testing.assert_allclose(t.data, tt.numpy())
    if name != "setitem":
        assert r is t                                 # in-place ops return the tensor itself


def test_add_and_sub_alpha_and_tensor_arguments():
    a, b = _arr(), _arr(seed=1)
    t, tt = cr.tensor(a), torch.tensor(a)
    t.add_(cr.tensor(b), alpha=2.0).sub_(cr.tensor(b[0]), alpha=0.5).mul_(cr.tensor(b)).div_(3.0)
    tt.add_(torch.tensor(b), alpha=2.0).sub_(torch.tensor(b[0]), alpha=0.5).mul_(torch.tensor(b)).div_(3.0)
    np.testing.assert_allclose(t.data, tt.numpy())
    assert t._version == tt._version == 4


def test_inplace_with_a_shape_that_does_not_fit_names_the_op():
    t = cr.tensor(_arr((3,)))
    with pytest.raises(ValueError, match=r"add_: cannot write a result into a tensor of shape \(3,\)"):
        t.add_(cr.tensor(_arr((2, 3))))
    assert t._version == 0                            # nothing was written
    with pytest.raises(ValueError, match="clamp_: at least one of min and max"):
        t.clamp_()


def test_views_share_the_version_counter_and_copies_do_not():
    t = cr.tensor(_arr())
    views = [t.reshape(12), t.view(4, 3), t.T, t.transpose(0, 1), t[1], t[:, 1:3], t.detach(),
             t.unsqueeze(0), t.split(1)[2], t.to(t.dtype)]
    with cr.no_grad():
        views[0].add_(1.0)
    assert t._version == 1 and all(v._version == 1 for v in views)
    views[4].zero_()                                  # through a view: the base sees it
    assert t._version == 2 and np.all(t.data[1] == 0)
    copies = [t[[0, 2]], t.astype(np.float32), t.clone(), t * 1]
    for c in copies:
        c.zero_()
        assert c._version == 1
    assert t._version == 2


def test_optimizer_step_bumps_each_updated_parameter_once():
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps),
                 lambda ps: optim.AdamW(ps), lambda ps: optim.RMSprop(ps)):
        lin, other = nn.Linear(3, 2), nn.Linear(2, 2)
        opt = make(list(lin.parameters()) + list(other.parameters()))
        for step in (1, 2):
            opt.zero_grad()
            lin(cr.randn(4, 3)).sum().backward()      # `other` gets no gradient: not updated
            opt.step()
            assert lin.weight._version == lin.bias._version == step
            assert other.weight._version == other.bias._version == 0


def test_a_subclass_step_calling_its_parent_bumps_once():
    class Clipped(optim.SGD):
        def step(self):
            for g in self.param_groups:
                for p in g["params"]:
                    np.clip(p.grad.data, -1, 1, out=p.grad.data)
            super().step()

    lin = nn.Linear(3, 2)
    opt = Clipped(lin.parameters(), lr=0.1)
    lin(cr.randn(4, 3)).sum().backward()
    opt.step()
    assert lin.weight._version == 1


def test_load_state_dict_bumps_parameters_and_buffers():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    sd = m.state_dict()
    m.load_state_dict(sd)
    assert m[0].weight._version == 1 and m[1].running_mean._version == 1
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    tm.load_state_dict(tm.state_dict())
    assert tm[0].weight._version >= 1 and tm[1].running_mean._version >= 1


# -- backward refuses modified saved tensors -----------------------------------------------------
def test_mul_input_modified_raises_like_torch():
    a, b = _arr(), _arr(seed=1)
    x, w = cr.tensor(a, requires_grad=True), cr.tensor(b)
    y = x * w
    w.add_(1.0)
    with pytest.raises(RuntimeError, match=MSG.format(shape="3, 4", op="Mul", v=1, e=0)):
        y.sum().backward()
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b)

    def run():
        ty = tx * tw
        tw.add_(1.0)
        ty.sum().backward()
    assert _torch_versions(run) == (1, 0)


def test_expected_version_counts_bumps_before_forward():
    a = _arr()
    x, w = cr.tensor(a, requires_grad=True), cr.tensor(a)
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(a)
    w.mul_(2.0)
    tw.mul_(2.0)
    y, ty = (x * w).sum(), (tx * tw).sum()
    w[0] = 1.0
    w.fill_(3.0)
    tw[0] = 1.0
    tw.fill_(3.0)
    with pytest.raises(RuntimeError, match=MSG.format(shape="3, 4", op="Mul", v=3, e=1)):
        y.backward()
    assert _torch_versions(ty.backward) == (3, 1)


@pytest.mark.parametrize("op,cr_fn,torch_fn", [
    ("Sigmoid", lambda x: x.sigmoid(), torch.sigmoid),
    ("Exp", lambda x: x.exp(), torch.exp),
    ("Tanh", lambda x: x.tanh(), torch.tanh),
    ("ReLU", lambda x: x.relu(), torch.relu),
])
def test_output_modified_raises_like_torch(op, cr_fn, torch_fn):
    a = _arr()
    x = cr.tensor(a, requires_grad=True)
    y = cr_fn(x)
    with cr.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match=MSG.format(shape="3, 4", op=op, v=1, e=0)):
        y.sum().backward()
    tx = torch.tensor(a, requires_grad=True)

    def run():
        ty = torch_fn(tx)
        with torch.no_grad():
            ty.mul_(2.0)
        ty.sum().backward()
    assert _torch_versions(run) == (1, 0)


@pytest.mark.parametrize("modify", [
    lambda v: v.reshape(12).add_(1.0),
    lambda v: v[1].zero_(),
    lambda v: v.T.mul_(2.0),
    lambda v: v.detach().fill_(0.0),
    lambda v: v.view(12).__setitem__(3, 9.0),
    lambda v: v.split(2)[1].clamp_(0.0, 0.1),
], ids=["reshape", "index", "T", "detach", "view-setitem", "split"])
def test_a_view_modified_in_place_is_caught_like_torch(modify):
    a, b = _arr(), _arr(seed=1)
    x, w = cr.tensor(a, requires_grad=True), cr.tensor(b)
    y = (x * w).sum()
    modify(w)
    with pytest.raises(RuntimeError, match=MSG.format(shape="3, 4", op="Mul", v=1, e=0)):
        y.backward()
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b)

    def run():
        ty = (tx * tw).sum()
        modify(tw)
        ty.backward()
    assert _torch_versions(run) == (1, 0)


def test_output_modified_through_a_view_is_caught():
    x = cr.tensor(_arr(), requires_grad=True)
    y = x.sigmoid()
    with cr.no_grad():
        y[0].zero_()
    with pytest.raises(RuntimeError, match=MSG.format(shape="3, 4", op="Sigmoid", v=1, e=0)):
        y.sum().backward()


def _mlp(lib):
    """The same 3-4-2 tanh MLP in both libraries (torch's copies chainrule's weights), float64."""
    cr.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    if lib is cr:
        return m
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p, tp in zip(m.parameters(), tm.parameters()):
            tp.copy_(torch.tensor(p.data))
    return tm


def test_parameter_modified_between_forward_and_backward_raises_like_torch():
    a = _arr((5, 3))
    m = _mlp(cr)
    loss = m(cr.tensor(a)).sum()
    with cr.no_grad():
        m[2].weight.add_(0.1)
    with pytest.raises(RuntimeError, match=MSG.format(shape="2, 4", op="Linear", v=1, e=0)):
        loss.backward()
    tm = _mlp(torch)

    def run():
        tl = tm(torch.tensor(a)).sum()
        with torch.no_grad():
            tm[2].weight.add_(0.1)
        tl.backward()
    v, e = _torch_versions(run)                       # (torch's copy_ in _mlp bumped it before)
    assert v - e == 1


def test_optimizer_step_between_forward_and_backward_raises_like_torch():
    a = _arr((5, 3))
    m = _mlp(cr)
    opt = optim.SGD(m.parameters(), lr=0.1)
    m(cr.tensor(a)).sum().backward()
    loss = m(cr.tensor(a)).sum()                    # forward with the old weights ...
    opt.step()                                       # ... then they change
    with pytest.raises(RuntimeError, match="was modified in place after it was used by Linear"):
        loss.backward()
    tm = _mlp(torch)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    tm(torch.tensor(a)).sum().backward()

    def run():
        tl = tm(torch.tensor(a)).sum()
        topt.step()
        tl.backward()
    assert _torch_versions(run) is not None


def test_modified_after_the_first_of_two_backwards_raises():
    a = _arr()
    x, w = cr.tensor(a, requires_grad=True), cr.tensor(a)
    y = (x * w).sum()
    y.backward(retain_graph=True)
    w.sub_(1.0)
    with pytest.raises(RuntimeError, match="used by Mul; its version is 1, expected 0"):
        y.backward()


# -- legal cases: no error, the gradient torch gives -----------------------------------------------
def _same_grad(cr_fn, torch_fn, a):
    x, tx = cr.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    cr_fn(x).backward()
    torch_fn(tx).backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)


def test_inplace_after_ops_that_save_nothing_is_legal_like_torch():
    a, b = _arr(), _arr(seed=1)
    for lib in (cr, torch):
        w = lib.tensor(b)

        def f(x, w=w, lib=lib):
            y = ((x + w) - w).reshape(12).sum() + (-w).sum() + (x * 2.0).sum()
            w.add_(1.0)                               # Add/Sub/Neg/Reshape/Sum saved no tensor
            return y
        if lib is cr:
            xc = cr.tensor(a, requires_grad=True)
            f(xc).backward()
        else:
            xt = torch.tensor(a, requires_grad=True)
            f(xt).backward()
    np.testing.assert_allclose(xc.grad.data, xt.grad.numpy())


def test_bias_modified_after_linear_is_legal_like_torch():
    a = _arr((5, 3))
    m, tm = _mlp(cr), _mlp(torch)
    x, tx = cr.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    loss, tloss = m(x).sum(), tm(tx).sum()
    with cr.no_grad():
        m[2].bias.add_(1.0)
    with torch.no_grad():
        tm[2].bias.add_(1.0)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)


def test_parameter_changed_under_no_grad_then_a_fresh_forward_is_legal():
    a = _arr((5, 3))
    m, tm = _mlp(cr), _mlp(torch)
    with cr.no_grad():
        m[0].weight.mul_(0.5)
        m[0].bias.zero_()
        m[2].weight[0] = 0.25
    with torch.no_grad():
        tm[0].weight.mul_(0.5)
        tm[0].bias.zero_()
        tm[2].weight[0] = 0.25
    m(cr.tensor(a)).sum().backward()
    tm(torch.tensor(a)).sum().backward()
    for p, tp in zip(m.parameters(), tm.parameters()):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-12)


def test_an_unrelated_inplace_change_between_forward_and_backward_is_legal():
    a = _arr()
    other = cr.tensor(a)
    x = cr.tensor(a, requires_grad=True)
    y = (x * cr.tensor(a)).sigmoid().exp().sum()
    other.add_(1.0)                                   # bumps the global count, not a saved tensor
    cr.tensor(a)[[0, 1]].zero_()                      # a copy: nothing shared
    y.backward()
    tx = torch.tensor(a, requires_grad=True)
    (tx * torch.tensor(a)).sigmoid().exp().sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)


def test_training_loop_with_a_step_each_iteration_never_raises():
    m = _mlp(cr)
    opt = optim.Adam(m.parameters(), lr=1e-2)
    x, y = cr.tensor(_arr((8, 3))), cr.tensor(_arr((8, 2), seed=1))
    for _ in range(3):
        opt.zero_grad()
        ((m(x) - y) ** 2).mean().backward()
        opt.step()
    assert m[0].weight._version == 3


# -- in grad mode, in-place on a tensor in the graph refuses -------------------------------------
def test_inplace_on_a_leaf_that_requires_grad_raises_like_torch():
    x = cr.tensor(_arr(), requires_grad=True)
    tx = torch.tensor(_arr(), requires_grad=True)
    for name, op in INPLACE:
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                               "in an in-place operation"):
            op(x)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            op(tx)
    assert x._version == 0
    with cr.no_grad():                                # allowed under no_grad, as in torch
        x.add_(1.0)
    assert x._version == 1


def test_inplace_on_a_graph_tensor_refuses_instead_of_a_wrong_gradient():
    # PyTorch records such in-place ops in the graph; chainrule does not, so it refuses them
    x = cr.tensor(_arr(), requires_grad=True)
    h = x * 2.0
    with pytest.raises(RuntimeError, match="in-place operations are not recorded by autograd"):
        h.mul_(3.0)
    with pytest.raises(RuntimeError, match="in-place operations are not recorded by autograd"):
        cr.tensor(_arr()).add_(x)                     # the argument requires grad
    with pytest.raises(RuntimeError, match="in-place operations are not recorded by autograd"):
        h[0] = 1.0
    assert h._version == 0


def test_many_bumps_after_forward_give_a_bound_on_the_expected_version():
    from chainrule import autograd
    x, w = cr.tensor(_arr(), requires_grad=True), cr.tensor(_arr())
    y = (x * w).sum()
    for _ in range(autograd._HISTORY + 10):
        w.add_(1.0)
    n = autograd._HISTORY + 10
    with pytest.raises(RuntimeError, match=f"its version is {n}, expected at most {n - autograd._HISTORY}"):
        y.backward()
