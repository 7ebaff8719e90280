"""Every public constructor and function refuses a bad argument when it is called, with a message
that names the argument and the value (issue 12, part 2).

Table-driven: each row is (where, argument, bad value, call). The call must raise TypeError for a
wrong type (a bool where a count or a number is expected included) and ValueError for a value out
of range (NaN, inf, negative, zero where positive), and the message must hold the argument's name
and the value as ``repr`` shows it. A second table checks that good values, NumPy scalars among
them, still build working objects.
"""
import math
import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import (ArrayDataset, Compose, DataLoader, MeanSubtraction, Normalize,
                            RandomApply, RandomCrop, RandomHorizontalFlip, RandomShift,
                            random_split, train_val_split)
from chainrule.nn import functional as F

NAN, INF = float("nan"), float("inf")
T, V = TypeError, ValueError


def _params():
    return [nn.Parameter(np.zeros(3))]


def _opt(**kw):
    return optim.SGD(_params(), lr=0.1, momentum=0.9, **kw)


def _logits():
    return cr.Tensor(np.random.default_rng(0).standard_normal((4, 3)))


_LABELS = np.array([0, 1, 2, 1])
_DS = ArrayDataset(np.zeros((10, 2)), np.arange(10))

CASES = []          # (id, exception, argument name, value, thunk)


def case(where, arg, exc, values, make, shown=None):
    """One row per bad value: ``make(value)`` must raise ``exc`` naming ``arg`` and the value."""
    for v in values:
        CASES.append((f"{where}-{arg}={v!r}", exc, arg, repr(v) if shown is None else shown,
                      (lambda v=v: make(v))))


# -- optimizers (each group; also groups added later) --------------------------------------------
for name, cls in [("SGD", optim.SGD), ("RMSprop", optim.RMSprop), ("Adam", optim.Adam),
                  ("AdamW", optim.AdamW)]:
    case(name, "lr", V, [NAN, INF, -1.0, -INF], lambda v, c=cls: c(_params(), lr=v))
    case(name, "lr", T, ["0.1", True, None], lambda v, c=cls: c(_params(), lr=v))
    case(name, "weight_decay", V, [NAN, INF, -0.1], lambda v, c=cls: c(_params(), weight_decay=v))
    case(name, "weight_decay", T, [True, "0"], lambda v, c=cls: c(_params(), weight_decay=v))
    case(name + "-group", "lr", V, [NAN, -1.0], lambda v, c=cls: c([{"params": _params(), "lr": v}]))
    case(name + "-add_param_group", "lr", V, [NAN, INF],
         lambda v, c=cls: c(_params(), lr=0.1).add_param_group({"params": _params(), "lr": v}))
    case(name + "-add_param_group", "a parameter group", T, [[1, 2], None],
         lambda v, c=cls: c(_params()).add_param_group(v))
case("SGD", "momentum", V, [NAN, INF, -0.5], lambda v: optim.SGD(_params(), lr=0.1, momentum=v))
case("SGD", "momentum", T, [True, "0.9"], lambda v: optim.SGD(_params(), lr=0.1, momentum=v))
case("SGD", "dampening", V, [NAN, 1.5, -0.1], lambda v: optim.SGD(_params(), lr=0.1, momentum=0.9, dampening=v))
case("SGD", "nesterov", T, ["yes", 1], lambda v: optim.SGD(_params(), lr=0.1, momentum=0.9, nesterov=v))
case("SGD", "nesterov", V, [0.0], lambda v: optim.SGD(_params(), lr=0.1, momentum=v, nesterov=True),
     shown="momentum=0.0")
case("SGD-add_param_group", "momentum", V, [-1.0],
     lambda v: _opt().add_param_group({"params": _params(), "momentum": v}))
case("RMSprop", "alpha", V, [NAN, 1.5, -0.1, INF], lambda v: optim.RMSprop(_params(), alpha=v))
case("RMSprop", "eps", V, [NAN, -1.0, INF], lambda v: optim.RMSprop(_params(), eps=v))
case("RMSprop", "momentum", V, [NAN, -1.0], lambda v: optim.RMSprop(_params(), momentum=v))
case("RMSprop", "centered", T, ["no", 0], lambda v: optim.RMSprop(_params(), centered=v))
for name, cls in [("Adam", optim.Adam), ("AdamW", optim.AdamW)]:
    case(name, "betas[0]", V, [1.0, -0.1, NAN], lambda v, c=cls: c(_params(), betas=(v, 0.999)))
    case(name, "betas[1]", V, [1.0, INF, NAN], lambda v, c=cls: c(_params(), betas=(0.9, v)))
    case(name, "betas[0]", T, [True, "0.9"], lambda v, c=cls: c(_params(), betas=(v, 0.999)))
    case(name, "betas", T, [0.9, (0.9,), (0.9, 0.99, 0.999)], lambda v, c=cls: c(_params(), betas=v))
    case(name, "eps", V, [NAN, -1e-8, INF], lambda v, c=cls: c(_params(), eps=v))
    case(name, "amsgrad", T, ["yes", 1], lambda v, c=cls: c(_params(), amsgrad=v))

# -- schedulers ------------------------------------------------------------------------------------
S = optim
case("StepLR", "step_size", V, [0, -1], lambda v: S.StepLR(_opt(), step_size=v))
case("StepLR", "step_size", T, [1.5, True, NAN, "2"], lambda v: S.StepLR(_opt(), step_size=v))
case("StepLR", "gamma", V, [NAN, INF, 0.0, -0.1], lambda v: S.StepLR(_opt(), 2, gamma=v))
case("StepLR", "gamma", T, [True, "0.1"], lambda v: S.StepLR(_opt(), 2, gamma=v))
case("StepLR", "last_epoch", V, [-2], lambda v: S.StepLR(_opt(), 2, last_epoch=v))
case("StepLR", "last_epoch", T, [1.5, True], lambda v: S.StepLR(_opt(), 2, last_epoch=v))
case("MultiStepLR", "milestones", T, [30, "30"], lambda v: S.MultiStepLR(_opt(), v))
case("MultiStepLR", "each milestone", T, [1.5, True], lambda v: S.MultiStepLR(_opt(), [v]))
case("MultiStepLR", "each milestone", V, [-1], lambda v: S.MultiStepLR(_opt(), [v]))
case("MultiStepLR", "gamma", V, [NAN, INF, 0.0], lambda v: S.MultiStepLR(_opt(), [2], gamma=v))
case("ExponentialLR", "gamma", V, [NAN, INF, 0.0, -1.0], lambda v: S.ExponentialLR(_opt(), v))
case("CosineAnnealingLR", "T_max", V, [0, -5], lambda v: S.CosineAnnealingLR(_opt(), v))
case("CosineAnnealingLR", "T_max", T, [1.5, True, NAN], lambda v: S.CosineAnnealingLR(_opt(), v))
case("CosineAnnealingLR", "eta_min", V, [NAN, -1.0, INF], lambda v: S.CosineAnnealingLR(_opt(), 5, eta_min=v))
case("LambdaLR", "lr_lambda", T, [0.5, None, "f"], lambda v: S.LambdaLR(_opt(), v))
case("LinearLR", "start_factor", V, [0.0, 1.5, NAN, -1.0], lambda v: S.LinearLR(_opt(), start_factor=v))
case("LinearLR", "end_factor", V, [NAN, -0.1, 2.0], lambda v: S.LinearLR(_opt(), end_factor=v))
case("LinearLR", "total_iters", V, [0], lambda v: S.LinearLR(_opt(), total_iters=v))
case("LinearLR", "total_iters", T, [True, 2.5], lambda v: S.LinearLR(_opt(), total_iters=v))
case("OneCycleLR", "max_lr", V, [NAN, 0.0, -1.0, INF], lambda v: S.OneCycleLR(_opt(), v, total_steps=10))
case("OneCycleLR", "total_steps", V, [0, -3], lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=v))
case("OneCycleLR", "total_steps", T, [True, 1.5], lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=v))
case("OneCycleLR", "pct_start", V, [NAN, 1.5, -0.1], lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=10, pct_start=v))
case("OneCycleLR", "anneal_strategy", V, ["cosine"],
     lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=10, anneal_strategy=v))
case("OneCycleLR", "div_factor", V, [0.0, NAN, INF], lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=10, div_factor=v))
case("OneCycleLR", "final_div_factor", V, [0.0, NAN],
     lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=10, final_div_factor=v))
case("OneCycleLR", "max_momentum", V, [NAN, 1.5], lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=10, max_momentum=v))
case("OneCycleLR", "base_momentum", V, [NAN, -0.5], lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=10, base_momentum=v))
case("OneCycleLR", "three_phase", T, ["yes"], lambda v: S.OneCycleLR(_opt(), 0.1, total_steps=10, three_phase=v))
R = S.ReduceLROnPlateau
case("ReduceLROnPlateau", "factor", V, [1.0, 0.0, NAN, 1.5, -0.5], lambda v: R(_opt(), factor=v))
case("ReduceLROnPlateau", "patience", V, [-1], lambda v: R(_opt(), patience=v))
case("ReduceLROnPlateau", "patience", T, [1.5, True, NAN], lambda v: R(_opt(), patience=v))
case("ReduceLROnPlateau", "mode", V, ["mean", None], lambda v: R(_opt(), mode=v))
case("ReduceLROnPlateau", "threshold", V, [NAN, -1.0, INF], lambda v: R(_opt(), threshold=v))
case("ReduceLROnPlateau", "threshold_mode", V, ["relative"], lambda v: R(_opt(), threshold_mode=v))
case("ReduceLROnPlateau", "cooldown", V, [-1], lambda v: R(_opt(), cooldown=v))
case("ReduceLROnPlateau", "min_lr", V, [-1.0, NAN], lambda v: R(_opt(), min_lr=v))
case("ReduceLROnPlateau", "eps", V, [NAN, -1.0], lambda v: R(_opt(), eps=v))


# -- gradient clipping -----------------------------------------------------------------------------
def _with_grad():
    p = nn.Parameter(np.ones(3))
    p.grad = cr.Tensor(np.ones(3))
    return [p]


case("clip_grad_norm_", "max_norm", V, [NAN, -1.0], lambda v: optim.clip_grad_norm_(_with_grad(), v))
case("clip_grad_norm_", "max_norm", T, ["1", True, None], lambda v: optim.clip_grad_norm_(_with_grad(), v))
case("clip_grad_norm_", "norm_type", V, [0.0, -1.0, NAN, -INF], lambda v: optim.clip_grad_norm_(_with_grad(), 1.0, v))
case("clip_grad_norm_", "norm_type", T, ["two", True], lambda v: optim.clip_grad_norm_(_with_grad(), 1.0, v))
case("clip_grad_value_", "clip_value", V, [NAN, -1.0, INF], lambda v: optim.clip_grad_value_(_with_grad(), v))
case("clip_grad_value_", "clip_value", T, [True, "1"], lambda v: optim.clip_grad_value_(_with_grad(), v))

# -- losses: the module and the functional form, one check ------------------------------------------
_X2 = cr.Tensor(np.zeros((4, 3)))
_LOSSES = [
    ("L1Loss", nn.L1Loss, lambda r: F.l1_loss(_X2, _X2, reduction=r)),
    ("MSELoss", nn.MSELoss, lambda r: F.mse_loss(_X2, _X2, reduction=r)),
    ("L2Loss", nn.L2Loss, lambda r: F.l2_loss(_X2, _X2, reduction=r)),
    ("HingeLoss", nn.HingeLoss, lambda r: F.hinge_loss(cr.Tensor(np.zeros(4)), np.ones(4), reduction=r)),
    ("MultiClassHingeLoss", nn.MultiClassHingeLoss,
     lambda r: F.multiclass_hinge_loss(_logits(), _LABELS, reduction=r)),
    ("CrossEntropyLoss", nn.CrossEntropyLoss, lambda r: F.cross_entropy(_logits(), _LABELS, reduction=r)),
    ("NLLLoss", nn.NLLLoss, lambda r: F.nll_loss(_logits(), _LABELS, reduction=r)),
    ("BCEWithLogitsLoss", nn.BCEWithLogitsLoss,
     lambda r: F.binary_cross_entropy_with_logits(_X2, _X2, reduction=r)),
    ("ZeroOneLoss", nn.ZeroOneLoss, lambda r: F.zero_one_loss(_logits(), _LABELS, reduction=r)),
]
for name, cls, fn in _LOSSES:
    case(name, "reduction", V, ["avg", "MEAN", None, True, 0], lambda v, c=cls: c(reduction=v))
    case(name + "-functional", "reduction", V, ["avg", None], fn)
for where, make in [("CrossEntropyLoss", lambda v: nn.CrossEntropyLoss(label_smoothing=v)),
                    ("cross_entropy", lambda v: F.cross_entropy(_logits(), _LABELS, label_smoothing=v))]:
    case(where, "label_smoothing", V, [NAN, -0.1, 1.5, INF], make)
    case(where, "label_smoothing", T, [True, "0.1", None], make)
for where, make in [("MultiClassHingeLoss", lambda v: nn.MultiClassHingeLoss(margin=v)),
                    ("multiclass_hinge_loss", lambda v: F.multiclass_hinge_loss(_logits(), _LABELS, margin=v))]:
    case(where, "margin", V, [NAN, INF, -INF], make)
    case(where, "margin", T, ["1", True, None], make)
for where, make in [("L2Loss", lambda v: nn.L2Loss(half=v)),
                    ("l2_loss", lambda v: F.l2_loss(_X2, _X2, half=v))]:
    case(where, "half", T, ["yes", 1, None], make)

# -- layers ----------------------------------------------------------------------------------------
case("Linear", "in_features", V, [0, -1], lambda v: nn.Linear(v, 2))
case("Linear", "in_features", T, [2.5, True, NAN, "3", None], lambda v: nn.Linear(v, 2))
case("Linear", "out_features", V, [0, -3], lambda v: nn.Linear(3, v))
case("Linear", "out_features", T, [2.5, False], lambda v: nn.Linear(3, v))
case("Linear", "bias", T, ["yes", 1], lambda v: nn.Linear(3, 2, bias=v))
case("Flatten", "start_dim", T, [1.5, "1", True], lambda v: nn.Flatten(start_dim=v))
case("Flatten", "end_dim", T, [None, 0.5], lambda v: nn.Flatten(end_dim=v))
case("LeakyReLU", "negative_slope", V, [NAN, INF], lambda v: nn.LeakyReLU(v))
case("LeakyReLU", "negative_slope", T, ["0.1", True, None], lambda v: nn.LeakyReLU(v))
case("leaky_relu", "negative_slope", V, [NAN, -INF], lambda v: F.leaky_relu(_X2, v))
case("Softmax", "dim", T, [1.5, "1", True], lambda v: nn.Softmax(dim=v))
case("LogSoftmax", "dim", T, [0.5], lambda v: nn.LogSoftmax(dim=v))
for name, cls in [("Conv2d", nn.Conv2d), ("ConvTranspose2d", nn.ConvTranspose2d)]:
    case(name, "in_channels", V, [0, -1], lambda v, c=cls: c(v, 4, 3))
    case(name, "in_channels", T, [1.5, True, NAN], lambda v, c=cls: c(v, 4, 3))
    case(name, "out_channels", V, [0], lambda v, c=cls: c(2, v, 3))
    case(name, "kernel_size", V, [0, (3, 0), (-1, 3)], lambda v, c=cls: c(2, 4, v))
    case(name, "kernel_size", V, [(3,), (3, 3, 3)], lambda v, c=cls: c(2, 4, v))
    case(name, "kernel_size", T, [2.5, True, (3, True), (3, 1.5), "3", None], lambda v, c=cls: c(2, 4, v))
    case(name, "stride", V, [0, (1, 0)], lambda v, c=cls: c(2, 4, 3, stride=v))
    case(name, "stride", T, [1.5, True], lambda v, c=cls: c(2, 4, 3, stride=v))
    case(name, "padding", V, [-1, (1, -1)], lambda v, c=cls: c(2, 4, 3, padding=v))
    case(name, "padding", T, [1.5, True], lambda v, c=cls: c(2, 4, 3, padding=v))
    case(name, "dilation", V, [0], lambda v, c=cls: c(2, 4, 3, dilation=v))
    case(name, "groups", V, [0, -2], lambda v, c=cls: c(2, 4, 3, groups=v))
    case(name, "groups", T, [True, 1.5], lambda v, c=cls: c(2, 4, 3, groups=v))
    case(name, "bias", T, ["no"], lambda v, c=cls: c(2, 4, 3, bias=v))
case("Conv2d", "in_channels=3", V, [2], lambda v: nn.Conv2d(3, 4, 3, groups=v), shown="groups=2")
case("Conv2d", "out_channels=3", V, [2], lambda v: nn.Conv2d(2, 3, 3, groups=v), shown="groups=2")
case("Conv2d", "padding", V, ["middle"], lambda v: nn.Conv2d(2, 4, 3, padding=v))
case("Conv2d", "padding_mode", V, ["mirror"], lambda v: nn.Conv2d(2, 4, 3, padding_mode=v))
case("ConvTranspose2d", "output_padding", V, [-1], lambda v: nn.ConvTranspose2d(2, 4, 3, output_padding=v))
case("ConvTranspose2d", "output_padding", V, [2], lambda v: nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=v),
     shown="(2, 2)")
case("Conv1d", "kernel_size", V, [0, -2], lambda v: nn.Conv1d(2, 4, v))
case("Conv1d", "kernel_size", T, [2.5, True], lambda v: nn.Conv1d(2, 4, v))
case("Conv1d", "kernel_size", V, [(3, 3)], lambda v: nn.Conv1d(2, 4, v))
case("Conv1d", "stride", V, [0], lambda v: nn.Conv1d(2, 4, 3, stride=v))
_IMG, _W = cr.Tensor(np.zeros((1, 2, 6, 6))), cr.Tensor(np.zeros((4, 2, 3, 3)))
for fname, fn in [("conv2d", F.conv2d), ("conv_transpose2d", lambda x, w, **k: F.conv_transpose2d(x, w.transpose(1, 0, 2, 3), **k))]:
    case(fname, "stride", V, [0, (1, 0)], lambda v, f=fn: f(_IMG, _W, stride=v))
    case(fname, "stride", T, [1.5, True, "1"], lambda v, f=fn: f(_IMG, _W, stride=v))
    case(fname, "dilation", V, [0, -1], lambda v, f=fn: f(_IMG, _W, dilation=v))
    case(fname, "dilation", T, [2.5], lambda v, f=fn: f(_IMG, _W, dilation=v))
    case(fname, "groups", V, [0, -1], lambda v, f=fn: f(_IMG, _W, groups=v))
    case(fname, "groups", T, [1.5, True], lambda v, f=fn: f(_IMG, _W, groups=v))
    case(fname, "padding", T, [0.5, True], lambda v, f=fn: f(_IMG, _W, padding=v))
case("conv1d", "stride", T, [1.5], lambda v: F.conv1d(cr.Tensor(np.zeros((1, 2, 6))), cr.Tensor(np.zeros((4, 2, 3))), stride=v))
case("conv_transpose2d", "output_padding", V, [-1], lambda v: F.conv_transpose2d(_IMG, cr.Tensor(np.zeros((2, 4, 3, 3))), output_padding=v))
case("Conv2d.output_size", "input_size", T, [6.5], lambda v: nn.Conv2d(2, 4, 3).output_size(v))
case("LocallyConnected2d", "input_size", V, [0, (8, 0)], lambda v: nn.LocallyConnected2d(1, 4, v, 3))
case("LocallyConnected2d", "input_size", T, [8.5, True], lambda v: nn.LocallyConnected2d(1, 4, v, 3))
case("LocallyConnected2d", "kernel_size", V, [0], lambda v: nn.LocallyConnected2d(1, 4, 8, v))
case("LocallyConnected2d", "kernel_size", T, [2.5], lambda v: nn.LocallyConnected2d(1, 4, 8, v))
case("LocallyConnected2d", "in_channels", V, [0], lambda v: nn.LocallyConnected2d(v, 4, 8, 3))
case("LocallyConnected2d", "stride", V, [0], lambda v: nn.LocallyConnected2d(1, 4, 8, 3, stride=v))
for name, cls in [("MaxPool2d", nn.MaxPool2d), ("AvgPool2d", nn.AvgPool2d)]:
    case(name, "kernel_size", V, [0, (2, 0)], lambda v, c=cls: c(v))
    case(name, "kernel_size", V, [(2, 2, 2)], lambda v, c=cls: c(v))
    case(name, "kernel_size", T, [2.5, True, "2", (2, 1.5)], lambda v, c=cls: c(v))
    case(name, "stride", V, [0], lambda v, c=cls: c(2, stride=v))
    case(name, "stride", T, [1.5, True], lambda v, c=cls: c(2, stride=v))
    case(name, "padding", V, [-1, 2], lambda v, c=cls: c(2, padding=v))
    case(name, "padding", T, [0.5], lambda v, c=cls: c(2, padding=v))
    case(name, "ceil_mode", T, ["yes", 1], lambda v, c=cls: c(2, ceil_mode=v))
case("MaxPool2d", "dilation", V, [0], lambda v: nn.MaxPool2d(2, dilation=v))
case("AvgPool2d", "count_include_pad", T, ["no", 0], lambda v: nn.AvgPool2d(2, count_include_pad=v))
case("AvgPool2d", "divisor_override", V, [0, -1], lambda v: nn.AvgPool2d(2, divisor_override=v))
case("AvgPool2d", "divisor_override", T, [1.5, True], lambda v: nn.AvgPool2d(2, divisor_override=v))
for name, cls in [("MaxPool1d", nn.MaxPool1d), ("AvgPool1d", nn.AvgPool1d)]:
    case(name, "kernel_size", V, [0], lambda v, c=cls: c(v))
    case(name, "kernel_size", T, [2.5, True], lambda v, c=cls: c(v))
_P4 = cr.Tensor(np.zeros((1, 1, 4, 4)))
case("max_pool2d", "ceil_mode", T, ["no", 1, None], lambda v: F.max_pool2d(_P4, 2, ceil_mode=v))
case("max_pool1d", "ceil_mode", T, ["no"], lambda v: F.max_pool1d(cr.Tensor(np.zeros((1, 1, 4))), 2, ceil_mode=v))
case("avg_pool2d", "ceil_mode", T, ["yes"], lambda v: F.avg_pool2d(_P4, 2, ceil_mode=v))
case("avg_pool2d", "count_include_pad", T, ["no", 0], lambda v: F.avg_pool2d(_P4, 2, count_include_pad=v))
case("avg_pool2d", "divisor_override", V, [0, -2], lambda v: F.avg_pool2d(_P4, 2, divisor_override=v))
case("avg_pool2d", "divisor_override", T, [1.5, True], lambda v: F.avg_pool2d(_P4, 2, divisor_override=v))
case("avg_pool1d", "count_include_pad", T, ["no"], lambda v: F.avg_pool1d(cr.Tensor(np.zeros((1, 1, 4))), 2, count_include_pad=v))
case("max_pool2d", "kernel_size", T, [2.5], lambda v: F.max_pool2d(cr.Tensor(np.zeros((1, 1, 4, 4))), v))
case("AdaptiveAvgPool2d", "output_size", V, [0, (2, 0)], lambda v: nn.AdaptiveAvgPool2d(v))
case("AdaptiveAvgPool2d", "output_size", T, [2.5, True], lambda v: nn.AdaptiveAvgPool2d(v))
for name, cls in [("BatchNorm1d", nn.BatchNorm1d), ("BatchNorm2d", nn.BatchNorm2d)]:
    case(name, "num_features", V, [0, -4], lambda v, c=cls: c(v))
    case(name, "num_features", T, [2.5, True, NAN, "4"], lambda v, c=cls: c(v))
    case(name, "eps", V, [0.0, -1e-5, NAN, INF], lambda v, c=cls: c(4, eps=v))
    case(name, "eps", T, [True, "1e-5"], lambda v, c=cls: c(4, eps=v))
    case(name, "momentum", V, [NAN, 1.5, -0.1, INF], lambda v, c=cls: c(4, momentum=v))
    case(name, "affine", T, ["yes", 1], lambda v, c=cls: c(4, affine=v))
    case(name, "track_running_stats", T, ["no"], lambda v, c=cls: c(4, track_running_stats=v))
_BN_X = cr.Tensor(np.zeros((2, 3)))
case("batch_norm", "eps", V, [0.0, NAN, -1.0, INF], lambda v: F.batch_norm(_BN_X, np.zeros(3), np.ones(3), eps=v))
case("batch_norm", "eps", T, ["1e-5", True], lambda v: F.batch_norm(_BN_X, np.zeros(3), np.ones(3), eps=v))
case("batch_norm", "momentum", V, [NAN, 1.5], lambda v: F.batch_norm(_BN_X, np.zeros(3), np.ones(3), training=True, momentum=v))
case("local_response_norm", "alpha", V, [NAN], lambda v: F.local_response_norm(cr.Tensor(np.zeros((1, 3, 2))), 3, alpha=v))
case("local_response_norm", "beta", T, ["0.75"], lambda v: F.local_response_norm(cr.Tensor(np.zeros((1, 3, 2))), 3, beta=v))
case("LocalResponseNorm", "size", V, [0, -1], lambda v: nn.LocalResponseNorm(v))
case("LocalResponseNorm", "size", T, [2.5, True], lambda v: nn.LocalResponseNorm(v))
case("LocalResponseNorm", "alpha", V, [NAN, INF], lambda v: nn.LocalResponseNorm(5, alpha=v))
case("LocalResponseNorm", "beta", V, [NAN], lambda v: nn.LocalResponseNorm(5, beta=v))
case("LocalResponseNorm", "k", V, [INF], lambda v: nn.LocalResponseNorm(5, k=v))
for name, make in [("Dropout", nn.Dropout), ("Dropout2d", nn.Dropout2d),
                   ("dropout", lambda v: F.dropout(_X2, v)),
                   ("dropout2d", lambda v: F.dropout2d(cr.Tensor(np.zeros((2, 3, 4, 4))), v))]:
    case(name, "p", V, [NAN, 1.5, -0.1, INF], make)
    case(name, "p", T, ["0.5", True, None], make)
case("Embedding", "num_embeddings", V, [0, -1], lambda v: nn.Embedding(v, 4))
case("Embedding", "num_embeddings", T, [2.5, True, NAN], lambda v: nn.Embedding(v, 4))
case("Embedding", "embedding_dim", V, [0], lambda v: nn.Embedding(10, v))
case("Embedding", "embedding_dim", T, [1.5], lambda v: nn.Embedding(10, v))
case("Embedding", "padding_idx", V, [10, -11], lambda v: nn.Embedding(10, 4, padding_idx=v), shown=None)
case("Embedding", "padding_idx", T, [1.5, True], lambda v: nn.Embedding(10, 4, padding_idx=v))
case("Embedding.from_pretrained", "freeze", T, ["yes"], lambda v: nn.Embedding.from_pretrained(np.zeros((3, 2)), freeze=v))
for name, cls in [("RNN", nn.RNN), ("LSTM", nn.LSTM), ("GRU", nn.GRU)]:
    case(name, "input_size", V, [0, -1], lambda v, c=cls: c(v, 4))
    case(name, "input_size", T, [2.5, True, NAN], lambda v, c=cls: c(v, 4))
    case(name, "hidden_size", V, [0], lambda v, c=cls: c(3, v))
    case(name, "hidden_size", T, [NAN, 4.5], lambda v, c=cls: c(3, v))
    case(name, "num_layers", V, [0], lambda v, c=cls: c(3, 4, num_layers=v))
    case(name, "num_layers", T, [True, 2.0], lambda v, c=cls: c(3, 4, num_layers=v))
    case(name, "dropout", V, [NAN, 1.5, -0.1], lambda v, c=cls: c(3, 4, dropout=v))
    case(name, "dropout", T, ["0.1", True], lambda v, c=cls: c(3, 4, dropout=v))
    case(name, "bidirectional", T, ["yes", 2], lambda v, c=cls: c(3, 4, bidirectional=v))
    case(name, "batch_first", T, ["yes"], lambda v, c=cls: c(3, 4, batch_first=v))
    case(name, "bias", T, [None], lambda v, c=cls: c(3, 4, bias=v))
case("RNN", "nonlinearity", V, ["sigmoid", None], lambda v: nn.RNN(3, 4, nonlinearity=v))
case("GRU", "variant", V, ["keras"], lambda v: nn.GRU(3, 4, variant=v))
for name, cls in [("RNNCell", nn.RNNCell), ("LSTMCell", nn.LSTMCell), ("GRUCell", nn.GRUCell)]:
    case(name, "input_size", V, [0], lambda v, c=cls: c(v, 4))
    case(name, "input_size", T, [2.5, True], lambda v, c=cls: c(v, 4))
    case(name, "hidden_size", V, [0, -2], lambda v, c=cls: c(3, v))
    case(name, "bias", T, ["yes"], lambda v, c=cls: c(3, 4, bias=v))
case("RNNCell", "nonlinearity", V, ["gelu"], lambda v: nn.RNNCell(3, 4, nonlinearity=v))
case("LSTM", "peephole", T, ["yes"], lambda v: nn.LSTM(3, 4, peephole=v))

# -- initialisers ------------------------------------------------------------------------------------
def _w():
    return nn.Parameter(np.zeros((4, 3)))


I = nn.init
case("uniform_", "a", V, [NAN, -INF], lambda v: I.uniform_(_w(), a=v))
case("uniform_", "b", V, [NAN, INF, -2.0], lambda v: I.uniform_(_w(), a=0.0, b=v))
case("uniform_", "a", T, ["0", True], lambda v: I.uniform_(_w(), a=v))
case("normal_", "std", V, [NAN, INF, -1.0], lambda v: I.normal_(_w(), std=v))
case("normal_", "mean", V, [NAN], lambda v: I.normal_(_w(), mean=v))
case("xavier_uniform_", "gain", V, [NAN, -1.0, INF], lambda v: I.xavier_uniform_(_w(), gain=v))
case("xavier_normal_", "gain", V, [NAN, -1.0], lambda v: I.xavier_normal_(_w(), gain=v))
case("kaiming_uniform_", "mode", V, ["fan_avg"], lambda v: I.kaiming_uniform_(_w(), mode=v))
case("kaiming_normal_", "a", V, [NAN, INF], lambda v: I.kaiming_normal_(_w(), a=v))
case("kaiming_uniform_", "a", T, ["0"], lambda v: I.kaiming_uniform_(_w(), a=v))


# -- data ------------------------------------------------------------------------------------------
case("DataLoader", "batch_size", V, [0, -1], lambda v: DataLoader(_DS, batch_size=v))
case("DataLoader", "batch_size", T, [True, 2.5, NAN, "4", None], lambda v: DataLoader(_DS, batch_size=v))
case("DataLoader", "shuffle", T, ["yes", 1, None], lambda v: DataLoader(_DS, shuffle=v))
case("DataLoader", "drop_last", T, ["no", 0], lambda v: DataLoader(_DS, drop_last=v))
case("DataLoader", "seed", V, [-1], lambda v: DataLoader(_DS, seed=v))
case("DataLoader", "seed", T, [1.5, True, "0"], lambda v: DataLoader(_DS, seed=v))
case("DataLoader", "transform", T, [5], lambda v: DataLoader(_DS, transform=v), shown="int")
case("random_split", "lengths", V, [[0.5, NAN], [0.5, INF], [-1, 11], [1.5, -0.5]],
     lambda v: random_split(_DS, v), shown="")
case("random_split", "lengths", T, [[True, 9], ["5", 5]], lambda v: random_split(_DS, v), shown="")
case("random_split", "seed", V, [-1], lambda v: random_split(_DS, [5, 5], seed=v))
case("random_split", "seed", T, [0.5], lambda v: random_split(_DS, [5, 5], seed=v))
case("train_val_split", "val_fraction", V, [NAN, 1.5, -0.1, True, INF, 0.0],
     lambda v: train_val_split(np.zeros((10, 2)), val_fraction=v))
case("train_val_split", "shuffle", T, ["yes"], lambda v: train_val_split(np.zeros((10, 2)), shuffle=v))
case("train_val_split", "seed", V, [-3], lambda v: train_val_split(np.zeros((10, 2)), seed=v))
case("RandomHorizontalFlip", "p", V, [NAN, 1.5, -0.1], lambda v: RandomHorizontalFlip(v))
case("RandomHorizontalFlip", "p", T, [True, "0.5"], lambda v: RandomHorizontalFlip(v))
case("RandomApply", "p", V, [NAN, -1.0, INF], lambda v: RandomApply(RandomShift(1), p=v))
case("RandomApply", "transform", T, [5], lambda v: RandomApply(v), shown="int")
case("RandomCrop", "size", V, [0, (4, 0)], lambda v: RandomCrop(v), shown="")
case("RandomCrop", "size", T, [2.5, True, "4"], lambda v: RandomCrop(v))
case("RandomCrop", "padding", V, [-1], lambda v: RandomCrop(4, padding=v), shown="")
case("RandomCrop", "padding", T, [1.5], lambda v: RandomCrop(4, padding=v))
case("RandomCrop", "pad_mode", V, ["mirror", None], lambda v: RandomCrop(4, pad_mode=v))
case("RandomCrop", "fill", V, [NAN], lambda v: RandomCrop(4, fill=v))
case("RandomCrop", "fill", T, ["0"], lambda v: RandomCrop(4, fill=v))
case("RandomShift", "max_shift", V, [-1, (1, -1)], lambda v: RandomShift(v))
case("RandomShift", "max_shift", T, [1.5, True, "1"], lambda v: RandomShift(v))
case("Normalize", "std", V, [0.0, NAN, -1.0, [1.0, 0.0], INF], lambda v: Normalize(0.5, v), shown="")
case("Normalize", "mean", V, [NAN, [0.0, INF]], lambda v: Normalize(v, 1.0), shown="")
case("Normalize", "mean and std", V, [[0.1, 0.2, 0.3]], lambda v: Normalize(v, [1.0, 1.0]), shown="(3,)")
case("MeanSubtraction", "mean", V, [NAN], lambda v: MeanSubtraction(v), shown="")
case("Compose", "item 0", T, [[5]], lambda v: Compose(v), shown="int")


def _show(s):
    # NaN prints as nan and inf as inf in every message; repr of a float already does
    return re.escape(s)


@pytest.mark.parametrize("exc,arg,shown,thunk", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_is_refused_with_a_clear_message(exc, arg, shown, thunk):
    with pytest.raises((TypeError, ValueError)) as info:
        thunk()
    msg = str(info.value)
    assert arg in msg, f"the message does not name {arg!r}: {msg}"
    assert shown in msg, f"the message does not show the value {shown}: {msg}"
    assert isinstance(info.value, exc), f"{type(info.value).__name__}, expected {exc.__name__}: {msg}"


def test_the_table_is_broad():
    # the closing note counts these per category; a shrinking table is a regression
    assert len(CASES) >= 700


def test_one_message_format():
    with pytest.raises(ValueError, match=r"^SGD: lr must be a finite number >= 0, got nan$"):
        optim.SGD(_params(), lr=NAN)
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss: label_smoothing must be a finite number "
                                         r"in \[0, 1\], got 1.5$"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"^Conv2d: kernel_size must be positive ints, got \(3, 0\)$"):
        nn.Conv2d(1, 1, (3, 0))
    with pytest.raises(TypeError, match=r"^DataLoader: batch_size must be an integer at least 1, got True$"):
        DataLoader(_DS, batch_size=True)


# -- good values, NumPy scalars among them, still work ----------------------------------------------
def test_numpy_scalars_and_good_values_are_accepted():
    x = cr.Tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32))
    for layer in [nn.Conv2d(np.int64(3), np.int32(4), (np.int64(3), 3), stride=np.int8(1), padding=np.int64(1)),
                  nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1), nn.MaxPool2d(np.int64(2)),
                  nn.AvgPool2d(2, divisor_override=np.int64(3)), nn.AdaptiveAvgPool2d((2, None)),
                  nn.BatchNorm2d(np.int64(3), eps=np.float32(1e-5), momentum=np.float64(0.2)),
                  nn.BatchNorm2d(3, momentum=None), nn.LocalResponseNorm(np.int64(3), alpha=np.float32(1e-4)),
                  nn.Dropout(np.float64(0.3)), nn.Dropout2d(1), nn.Conv2d(3, 4, 3, padding="same"),
                  nn.LocallyConnected2d(3, 2, input_size=np.int64(8), kernel_size=3)]:
        assert np.isfinite(layer(x).data).all()
    lin = nn.Linear(np.int64(3), np.int64(2), bias=np.bool_(False))
    assert lin(cr.Tensor(np.ones((4, 3), np.float32))).shape == (4, 2)
    assert nn.LeakyReLU(np.float32(0.2)).negative_slope == pytest.approx(0.2)
    assert nn.LeakyReLU(-0.5)(cr.Tensor(np.array([-1.0]))).data[0] == 0.5
    assert nn.LeakyReLU(np.float64(0.5))(cr.Tensor(np.array([-1.0]))).data[0] == -0.5
    assert nn.Softmax(dim=np.int64(1)).axis == 1
    assert nn.Flatten(np.int64(1), -1)(x).shape == (2, 192)
    emb = nn.Embedding(np.int64(10), np.int32(4), padding_idx=np.int64(-1))
    assert emb.padding_idx == 9
    for rnn in [nn.RNN(np.int64(3), 4, num_layers=np.int64(2), dropout=np.float32(0.1), nonlinearity="relu"),
                nn.LSTM(3, 4, bidirectional=True), nn.GRU(3, 4, dropout=1)]:
        out = rnn(cr.Tensor(np.zeros((5, 2, 3), np.float32)))
        assert out[0].shape[:2] == (5, 2)
    for cell in [nn.RNNCell(np.int64(3), 4), nn.LSTMCell(3, 4), nn.GRUCell(3, 4)]:
        cell(cr.Tensor(np.zeros((2, 3), np.float32)))


def test_good_optimizer_scheduler_and_clip_values_work():
    p = nn.Parameter(np.ones(3))
    for opt in [optim.SGD([p], lr=np.float32(0.1), momentum=np.float64(0.9), nesterov=np.bool_(True)),
                optim.SGD([p], lr=0, weight_decay=0),
                optim.RMSprop([p], lr=1, alpha=np.float64(0.0), eps=0, momentum=0.5),
                optim.RMSprop([p], centered=np.bool_(True)),
                optim.Adam([p], betas=[np.float32(0.5), 0], eps=np.float64(1e-8), amsgrad=True),
                optim.AdamW([{"params": [p], "lr": np.float64(0.01)}], weight_decay=0)]:
        p.grad = cr.Tensor(np.ones(3))
        opt.step()
        assert np.isfinite(p.data).all()
        assert all(type(g["lr"]) is float for g in opt.param_groups)
    opt = optim.Adam([p])
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    opt.add_param_group({"params": [nn.Parameter(np.ones(2))], "lr": np.float32(0.5)})
    assert opt.param_groups[1]["lr"] == 0.5
    for sched in [optim.StepLR(_opt(), np.int64(2), gamma=np.float32(0.5)), optim.MultiStepLR(_opt(), [np.int64(2), 2, 1]),
                  optim.ExponentialLR(_opt(), 1.5), optim.CosineAnnealingLR(_opt(), np.int64(4), eta_min=0),
                  optim.LambdaLR(_opt(), lambda e: 1.0), optim.LinearLR(_opt(), 1, 0, np.int64(3)),
                  optim.OneCycleLR(_opt(), np.float64(0.5), epochs=2, steps_per_epoch=np.int64(3)),
                  optim.OneCycleLR(optim.Adam(_params()), [0.5], total_steps=5, three_phase=True)]:
        for _ in range(4):
            sched.step()
    r = optim.ReduceLROnPlateau(_opt(), factor=np.float32(0.5), patience=np.int64(0), min_lr=[0.01])
    for v in [1.0, 2.0, 3.0]:
        r.step(v)
    assert r.optimizer.param_groups[0]["lr"] < 0.1
    assert optim.clip_grad_norm_(_with_grad(), np.float32(1.0), norm_type="inf") == 1.0
    assert optim.clip_grad_norm_(_with_grad(), INF) == pytest.approx(math.sqrt(3))     # inf: measure only
    assert optim.clip_grad_norm_(_with_grad(), 1, norm_type=INF) == 1.0
    optim.clip_grad_value_(_with_grad(), np.int64(0))


def test_good_loss_and_data_values_work():
    for ls in [0, 1, np.float32(0.1), 0.5]:
        a = nn.CrossEntropyLoss(label_smoothing=ls)(_logits(), _LABELS)
        b = F.cross_entropy(_logits(), _LABELS, label_smoothing=ls)
        assert float(a.data) == pytest.approx(float(b.data))
    for m in [0, np.float64(2.0), -1, 1]:
        assert np.isfinite(nn.MultiClassHingeLoss(margin=m)(_logits(), _LABELS).data)
    assert float(nn.L2Loss(half=np.bool_(True))(_X2, _X2).data) == 0.0
    assert F.mse_loss(_X2, _X2, reduction="none").shape == (4, 3)
    assert len(DataLoader(_DS, batch_size=np.int64(3), shuffle=np.bool_(True), drop_last=True, seed=np.int64(1))) == 3
    parts = random_split(_DS, [np.float64(0.5), 0.3, 0.2], seed=np.int64(0))
    assert [len(s) for s in parts] == [5, 3, 2]
    assert [len(s) for s in random_split(_DS, [np.int64(7), 3])] == [7, 3]
    assert [len(s) for s in random_split(_DS, [0, 10])] == [0, 10]
    assert train_val_split(np.zeros((10, 2)), val_fraction=np.int64(3))[1].shape == (3, 2)
    assert train_val_split(np.zeros((10, 2)), val_fraction=np.float64(0.5))[1].shape == (5, 2)
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8))
    for t in [RandomHorizontalFlip(np.float32(1.0)), RandomApply(RandomShift(np.int64(1)), p=1),
              RandomCrop((np.int64(6), 6), padding=0), RandomCrop(8, padding=1, pad_mode="reflect"),
              Normalize([0.1, 0.2, 0.3], np.float32(2.0)), Normalize(0, [1, 2, 3]), MeanSubtraction(0.5)]:
        y = t(x, rng=np.random.default_rng(0))
        assert np.isfinite(y).all()


def test_optimizer_load_state_dict_checks_the_loaded_hyper_parameters():
    opt = optim.SGD(_params(), lr=0.1, momentum=0.9)
    state = opt.state_dict()
    state["param_groups"][0]["lr"] = NAN
    with pytest.raises(ValueError, match=r"SGD: lr must be a finite number >= 0, got nan"):
        optim.SGD(_params(), lr=0.1, momentum=0.9).load_state_dict(state)
    state["param_groups"][0]["lr"] = 0.5
    opt2 = optim.SGD(_params(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == 0.5
