import json

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

from chainrule.nn import Parameter
from chainrule.optim import schedule as cs
from chainrule.optim.optimizer import SGD, Adam

EPOCHS = 30
LRS = (0.1, 0.03)          # two param groups with their own lr


def optimizers(kind="sgd", lrs=LRS):
    """A chainrule and a torch optimizer with one param group per lr."""
    ours = [Parameter(np.zeros(2)) for _ in lrs]
    theirs = [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64)) for _ in lrs]
    if kind == "sgd":
        return (SGD([{"params": [p], "lr": lr} for p, lr in zip(ours, lrs)], lr=lrs[0], momentum=0.9),
                torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(theirs, lrs)], lr=lrs[0],
                                momentum=0.9))
    return (Adam([{"params": [p], "lr": lr} for p, lr in zip(ours, lrs)], lr=lrs[0]),
            torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(theirs, lrs)], lr=lrs[0]))


def lrs_of(opt):
    return [g["lr"] for g in opt.param_groups]


def run(opt, sched, epochs=EPOCHS, metrics=None):
    """The lr sequence: the lrs after construction, then after each epoch's step."""
    seq = [lrs_of(opt)]
    for e in range(epochs):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[e])
        assert sched.get_last_lr() == lrs_of(opt)
        seq.append(lrs_of(opt))
    return np.array(seq)


# (chainrule scheduler, torch scheduler, kwargs, exact?)
CASES = {
    "step": (cs.StepLR, tls.StepLR, dict(step_size=7, gamma=0.5), True),
    "step1": (cs.StepLR, tls.StepLR, dict(step_size=1), True),
    "multistep": (cs.MultiStepLR, tls.MultiStepLR, dict(milestones=[3, 8, 8, 20], gamma=0.3), True),
    "multistep_unsorted": (cs.MultiStepLR, tls.MultiStepLR, dict(milestones=[25, 0, 5]), True),
    "exponential": (cs.ExponentialLR, tls.ExponentialLR, dict(gamma=0.9), True),
    "cosine": (cs.CosineAnnealingLR, tls.CosineAnnealingLR, dict(T_max=10), False),
    "cosine_eta_min": (cs.CosineAnnealingLR, tls.CosineAnnealingLR, dict(T_max=12, eta_min=0.001), False),
    "cosine_long": (cs.CosineAnnealingLR, tls.CosineAnnealingLR, dict(T_max=40, eta_min=1e-4), False),
    "lambda": (cs.LambdaLR, tls.LambdaLR, dict(lr_lambda=lambda e: 1.0 / (1 + e) ** 0.5), True),
    "lambda_per_group": (cs.LambdaLR, tls.LambdaLR,
                         dict(lr_lambda=[lambda e: 0.95 ** e, lambda e: min(1.0, (e + 1) / 5)]), True),
    "linear_warmup": (cs.LinearLR, tls.LinearLR, dict(start_factor=0.1, total_iters=5), False),
    "linear_decay": (cs.LinearLR, tls.LinearLR, dict(start_factor=1.0, end_factor=0.2, total_iters=12), False),
    "linear_default": (cs.LinearLR, tls.LinearLR, dict(), False),
}


def compare(ours, theirs, exact):
    assert ours.shape == theirs.shape
    if exact:
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-17)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(case):
    ours_cls, torch_cls, kwargs, exact = CASES[case]
    opt, topt = optimizers()
    ours = run(opt, ours_cls(opt, **kwargs))
    theirs = run(topt, torch_cls(topt, **kwargs))
    compare(ours, theirs, exact)
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS)


def test_cosine_reaches_eta_min_and_closed_form():
    opt, _ = optimizers()
    sched = cs.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    seq = run(opt, sched, epochs=10)
    np.testing.assert_allclose(seq[-1], [0.001, 0.001], rtol=1e-14)
    t = np.arange(11)[:, None]
    base = np.array(LRS)[None, :]
    np.testing.assert_allclose(seq, 0.001 + (base - 0.001) * (1 + np.cos(np.pi * t / 10)) / 2, rtol=1e-15)


def test_chained_schedulers_match_torch():
    """Chainable schedulers multiply the current lr, so two of them compose as in PyTorch."""
    opt, topt = optimizers()
    a, b = cs.StepLR(opt, step_size=4, gamma=0.5), cs.ExponentialLR(opt, gamma=0.95)
    ta, tb = tls.StepLR(topt, step_size=4, gamma=0.5), tls.ExponentialLR(topt, gamma=0.95)
    for _ in range(EPOCHS):
        opt.step()
        topt.step()
        a.step(), b.step()
        ta.step(), tb.step()
        assert lrs_of(opt) == lrs_of(topt)


@pytest.mark.parametrize("kind,kwargs", [
    ("sgd", dict(max_lr=0.5, total_steps=EPOCHS)),
    ("sgd", dict(max_lr=[0.5, 0.2], epochs=5, steps_per_epoch=6, pct_start=0.25, anneal_strategy="linear")),
    ("sgd", dict(max_lr=0.5, total_steps=EPOCHS, three_phase=True, div_factor=10.0)),
    ("adam", dict(max_lr=0.01, total_steps=EPOCHS, base_momentum=0.8, max_momentum=0.9)),
    ("adam", dict(max_lr=0.01, total_steps=EPOCHS, cycle_momentum=False)),
])
def test_one_cycle_matches_torch(kind, kwargs):
    opt, topt = optimizers(kind)
    sched, tsched = cs.OneCycleLR(opt, **kwargs), tls.OneCycleLR(topt, **kwargs)
    key = "betas" if kind == "adam" else "momentum"
    for step in range(EPOCHS):
        np.testing.assert_allclose(lrs_of(opt), lrs_of(topt), rtol=1e-12)
        for g, tg in zip(opt.param_groups, topt.param_groups):
            np.testing.assert_allclose(g[key], tg[key], rtol=1e-12)
        if step < EPOCHS - 1:
            opt.step()
            topt.step()
            sched.step()
            tsched.step()
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()
        sched.step()


def test_one_cycle_errors():
    opt, _ = optimizers()
    with pytest.raises(ValueError, match="total_steps"):
        cs.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        cs.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="pct_start"):
        cs.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="max_lr"):
        cs.OneCycleLR(opt, max_lr=[0.1], total_steps=10)


# -- ReduceLROnPlateau ---------------------------------------------------------------------------
# improves, plateaus (tiny relative changes), improves a little, gets worse, plateaus again
LOSSES = ([1.0, 0.8, 0.6, 0.5] + [0.5, 0.49999, 0.5, 0.50001, 0.5] + [0.45, 0.44] + [0.6] * 6
          + [0.44, 0.4399, 0.43999] + [0.43999] * 10)
ACCURACIES = [1.0 - x for x in LOSSES]


@pytest.mark.parametrize("kwargs,metrics", [
    (dict(), LOSSES),
    (dict(factor=0.5, patience=2), LOSSES),
    (dict(factor=0.5, patience=0), LOSSES),
    (dict(factor=0.5, patience=1, cooldown=2), LOSSES),
    (dict(factor=0.5, patience=1, threshold=0.01, threshold_mode="abs"), LOSSES),
    (dict(factor=0.2, patience=1, min_lr=[0.005, 0.0029]), LOSSES),
    (dict(factor=0.5, patience=1, min_lr=0.01), LOSSES),
    (dict(mode="max", factor=0.5, patience=2), ACCURACIES),
    (dict(mode="max", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=1), ACCURACIES),
    (dict(factor=0.5, patience=1, eps=0.02), LOSSES),   # group 1 stays: its step is < eps
])
def test_plateau_matches_torch(kwargs, metrics):
    assert len(metrics) == EPOCHS
    opt, topt = optimizers()
    ours = run(opt, cs.ReduceLROnPlateau(opt, **kwargs), metrics=metrics)
    theirs = run(topt, tls.ReduceLROnPlateau(topt, **kwargs), metrics=metrics)
    np.testing.assert_array_equal(ours, theirs)
    assert ours[-1, 0] < ours[0, 0]          # the sequence does plateau: the lr was reduced


def test_plateau_accepts_arrays_and_tensors():
    from chainrule import tensor
    opt, _ = optimizers()
    sched = cs.ReduceLROnPlateau(opt, patience=0)
    sched.step(np.float32(1.0))
    sched.step(np.array(2.0))
    sched.step(tensor(3.0))
    assert sched.get_last_lr() == pytest.approx([0.001, 0.0003])


# -- state_dict --------------------------------------------------------------------------------------
class Warmup:
    """A callable object: LambdaLR saves its attributes, as PyTorch does."""

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, e):
        return min(1.0, (e + 1) / self.epochs)


RESUME = {
    "step": (cs.StepLR, dict(step_size=4, gamma=0.5), None),
    "multistep": (cs.MultiStepLR, dict(milestones=[5, 12, 12, 15], gamma=0.5), None),
    "exponential": (cs.ExponentialLR, dict(gamma=0.9), None),
    "cosine": (cs.CosineAnnealingLR, dict(T_max=15, eta_min=0.001), None),
    "lambda": (cs.LambdaLR, dict(lr_lambda=lambda e: 0.9 ** e), None),
    "lambda_object": (cs.LambdaLR, dict(lr_lambda=Warmup(8)), None),
    "linear": (cs.LinearLR, dict(start_factor=0.2, total_iters=14), None),
    "onecycle": (cs.OneCycleLR, dict(max_lr=0.4, total_steps=EPOCHS + 1), None),
    "plateau": (cs.ReduceLROnPlateau, dict(factor=0.5, patience=1, cooldown=1), LOSSES),
}


@pytest.mark.parametrize("case", sorted(RESUME))
def test_state_dict_round_trip(case):
    cls, kwargs, metrics = RESUME[case]

    def advance(opt, sched, epochs):
        for e in epochs:
            opt.step()
            sched.step() if metrics is None else sched.step(metrics[e])

    opt, _ = optimizers()
    sched = cls(opt, **kwargs)
    advance(opt, sched, range(EPOCHS))
    expected = lrs_of(opt)

    opt1, _ = optimizers()
    sched1 = cls(opt1, **kwargs)
    advance(opt1, sched1, range(10))
    sd, opt_sd = sched1.state_dict(), opt1.state_dict()
    assert "optimizer" not in sd
    sd = json.loads(json.dumps(sd))              # plain Python values only
    advance(opt1, sched1, range(10, 12))         # later changes must not leak into the saved copy

    if case == "lambda_object":
        kwargs = dict(lr_lambda=Warmup(1))      # the saved attributes must win
    opt2, _ = optimizers()
    sched2 = cls(opt2, **kwargs)
    opt2.load_state_dict(opt_sd)
    sched2.load_state_dict(sd)
    assert sched2.get_last_lr() == lrs_of(opt2)
    advance(opt2, sched2, range(10, EPOCHS))
    assert lrs_of(opt2) == expected
    if case == "lambda_object":
        assert sched2.lr_lambdas[0].epochs == 8


def test_state_dict_lambdas_not_saved_but_objects_are():
    opt, _ = optimizers()
    sd = cs.LambdaLR(opt, [lambda e: 1.0, Warmup(3)]).state_dict()
    assert sd["lr_lambdas"] == [None, {"epochs": 3}]


def test_resume_with_last_epoch_needs_initial_lr():
    opt, _ = optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        cs.StepLR(opt, step_size=3, last_epoch=5)
    for g in opt.param_groups:
        g["initial_lr"] = 1.0
    sched = cs.CosineAnnealingLR(opt, T_max=10, last_epoch=4)
    assert sched.last_epoch == 5 and sched.base_lrs == [1.0, 1.0]
    assert sched.get_last_lr() == pytest.approx([0.5, 0.5])


def test_initial_lr_kept_when_present():
    opt, _ = optimizers()
    cs.StepLR(opt, step_size=2)
    opt.param_groups[0]["lr"] = 7.0
    sched = cs.ExponentialLR(opt, gamma=0.5)
    assert sched.base_lrs == list(LRS)


# -- errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda o: cs.StepLR(o, step_size=0), "step_size"),
    (lambda o: cs.StepLR(o, step_size=2.5), "step_size"),
    (lambda o: cs.StepLR(o, step_size=3, gamma=0), "gamma"),
    (lambda o: cs.StepLR(o, step_size=3, gamma=-0.5), "gamma"),
    (lambda o: cs.MultiStepLR(o, milestones=[2, -1]), "milestone"),
    (lambda o: cs.MultiStepLR(o, milestones=[2, 4], gamma=0.0), "gamma"),
    (lambda o: cs.ExponentialLR(o, gamma=0.0), "gamma"),
    (lambda o: cs.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: cs.CosineAnnealingLR(o, T_max=10, eta_min=-1.0), "eta_min"),
    (lambda o: cs.LambdaLR(o, [lambda e: 1.0]), "lr_lambda"),
    (lambda o: cs.LinearLR(o, start_factor=0.0), "start_factor"),
    (lambda o: cs.LinearLR(o, end_factor=1.5), "end_factor"),
    (lambda o: cs.ReduceLROnPlateau(o, mode="maximum"), "mode"),
    (lambda o: cs.ReduceLROnPlateau(o, threshold_mode="relative"), "threshold_mode"),
    (lambda o: cs.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: cs.ReduceLROnPlateau(o, factor=0.0), "factor"),
    (lambda o: cs.ReduceLROnPlateau(o, patience=-1), "patience"),
    (lambda o: cs.ReduceLROnPlateau(o, cooldown=-1), "cooldown"),
    (lambda o: cs.ReduceLROnPlateau(o, min_lr=[0.1]), "min_lr"),
    (lambda o: cs.ReduceLROnPlateau(o, min_lr=-0.1), "min_lr"),
    (lambda o: cs.ReduceLROnPlateau(o, threshold=-1e-4), "threshold"),
    (lambda o: cs.StepLR(o, step_size=3, last_epoch=-2), "last_epoch"),
])
def test_bad_arguments(make, match):
    opt, _ = optimizers()
    with pytest.raises(ValueError, match=match):
        make(opt)


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="optimizer"):
        cs.StepLR([Parameter(np.zeros(2))], step_size=2)
    with pytest.raises(TypeError, match="callable"):
        cs.LambdaLR(optimizers()[0], 0.5)


def test_exported_from_optim():
    import chainrule.optim as optim
    for name in ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR",
                 "ReduceLROnPlateau", "clip_grad_norm_", "clip_grad_value_"):
        assert hasattr(optim, name), name
