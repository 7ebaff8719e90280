"""Run a chainrule function and its PyTorch twin on the same float64 inputs and demand that they
agree: both raise, or both give the same values (shapes, dtypes, nan where the other has nan) and
the same gradient for every floating input under a random upstream gradient.

Unlike ``helpers.check_against_torch`` this one expects errors as an outcome: a generated case
where PyTorch raises must raise in chainrule too (never a silent result), with a ValueError or an
IndexError (a clear error, not a ZeroDivisionError from deep inside an op), and NumPy warnings are
errors on chainrule's side (a 0/0 on the way to an empty result is a bug even when the result is
right). Used by tests/test_shapes_property.py and the fuzz suite.
"""
import warnings

import numpy as np
import torch

import chainrule as cr

CLEAR_ERRORS = (ValueError, IndexError)


class Raised:
    """The outcome of a call that raised."""

    def __init__(self, error):
        self.error = error

    def __repr__(self):
        return f"{type(self.error).__name__}: {self.error}"


def _as_list(out):
    """Outputs as a flat list: an LSTM's (out, (h, c)) gives [out, h, c]."""
    if not isinstance(out, (tuple, list)):
        return [out]
    return [o for item in out for o in _as_list(item)]


def _event(name):
    """Count outcomes in hypothesis' statistics (pytest --hypothesis-show-statistics)."""
    from hypothesis import event
    from hypothesis.control import currently_in_test_context
    if currently_in_test_context():
        event(name)


def load_torch_state(cm, tm):
    """Give the chainrule module ``cm`` the parameters and buffers of the torch module ``tm``
    (their names and layouts map one to one)."""
    cm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})


def _float(a):
    return a.dtype.kind == "f"


def agree(cr_fn, torch_fn, arrays, *, rtol=1e-9, atol=1e-11, seed=0, grads=True,
          grad_rtol=None, grad_atol=None, needs=None, modules=None):
    """Call both functions on copies of ``arrays`` (floating arrays require grad unless ``needs``
    says otherwise); assert they agree. ``modules=(chainrule_module, torch_module)``: the modules
    the functions call, whose buffers (after forward) and parameter gradients must agree too.
    Returns ``Raised`` when both raised (so a test can check chainrule's message), else the
    chainrule outputs."""
    needs = [_float(np.asarray(a)) for a in arrays] if needs is None else list(needs)
    arrays = [np.array(a, copy=True) for a in arrays]
    xs = [cr.Tensor(a.copy(), requires_grad=n) for a, n in zip(arrays, needs)]
    ts = [torch.tensor(a.copy(), requires_grad=n) for a, n in zip(arrays, needs)]

    try:
        touts = _as_list(torch_fn(*ts))
    except Exception as e:                       # noqa: BLE001 - any torch error counts as "raises"
        touts = Raised(e)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            outs = _as_list(cr_fn(*xs))
        except CLEAR_ERRORS as e:
            outs = Raised(e)
    shapes = [a.shape for a in arrays]
    if isinstance(touts, Raised) or isinstance(outs, Raised):
        assert isinstance(touts, Raised), f"chainrule raised {outs!r} on {shapes}; torch gives a result"
        assert isinstance(outs, Raised), f"torch raises {touts!r} on {shapes}; chainrule gives a result"
        _event("both raise")
        return outs
    _event("both compute")

    assert len(outs) == len(touts), f"{len(outs)} outputs, torch gives {len(touts)}"
    for k, (o, t) in enumerate(zip(outs, touts)):
        tn = t.detach().numpy()
        assert o.shape == tn.shape, f"output {k}: shape {o.shape}, torch {tn.shape} (inputs {shapes})"
        assert o.dtype == tn.dtype, f"output {k}: dtype {o.dtype}, torch {tn.dtype}"
        np.testing.assert_allclose(o.data, tn, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"forward, output {k}, inputs {shapes}")
    if modules is not None:
        cm, tm = modules
        tstate = tm.state_dict()
        for k, v in cm.state_dict().items():
            np.testing.assert_allclose(np.asarray(v), tstate[k].detach().numpy(), rtol=rtol,
                                       atol=atol, err_msg=f"buffer {k} after forward")
    if not grads or not (any(needs) or modules is not None):
        return outs
    diff = [k for k, t in enumerate(touts) if t.requires_grad]
    if not diff:
        return outs
    rng = np.random.default_rng(seed)
    upstream = [rng.standard_normal(touts[k].shape) for k in diff]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in diff:
            assert outs[k].requires_grad, f"output {k} carries no gradient; torch's does"
        if len(diff) == 1:
            outs[diff[0]].backward(upstream[0])
        else:
            total = None
            for k, u in zip(diff, upstream):
                term = (outs[k] * cr.Tensor(u)).sum()
                total = term if total is None else total + term
            total.backward()
    torch.autograd.backward([touts[k] for k in diff], [torch.tensor(u) for u in upstream])
    grtol = rtol if grad_rtol is None else grad_rtol
    gatol = atol if grad_atol is None else grad_atol
    for i, (x, t, n) in enumerate(zip(xs, ts, needs)):
        if not n:
            continue
        tg = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
        g = np.zeros(x.shape) if x.grad is None else x.grad.data
        assert g.shape == x.shape, f"input {i}: gradient shape {g.shape} != {x.shape}"
        np.testing.assert_allclose(g, tg, rtol=grtol, atol=gatol, equal_nan=True,
                                   err_msg=f"gradient of input {i}, inputs {shapes}")
    if modules is not None:
        tparams = dict(tm.named_parameters())
        for k, p in cm.named_parameters():
            t = tparams[k]
            tg = np.zeros(p.shape) if t.grad is None else t.grad.numpy()
            g = np.zeros(p.shape) if p.grad is None else p.grad.data
            np.testing.assert_allclose(g, tg, rtol=grtol, atol=gatol,
                                       err_msg=f"gradient of parameter {k}, inputs {shapes}")
    return outs


def fuzz_settings(max_examples):
    """The fuzz profile (tests/fuzz/conftest.py) with this test's number of examples."""
    from hypothesis import settings
    return settings(settings.get_profile("chainrule-fuzz"), max_examples=max_examples)
