"""Learning-rate schedules: change ``group['lr']`` of an optimizer's param_groups as training goes.

Call ``scheduler.step()`` once per epoch (OneCycleLR: once per batch), after ``optimizer.step()``;
``ReduceLROnPlateau.step(metric)`` takes the monitored value. They follow torch.optim.lr_scheduler:

>>> opt = SGD(model.parameters(), lr=0.1)
>>> sched = StepLR(opt, step_size=30, gamma=0.1)      # lr 0.1 for epochs 0-29, 0.01 for 30-59 ...
>>> for epoch in range(90):
...     train_one_epoch(model, opt)
...     sched.step()

StepLR, MultiStepLR and ExponentialLR are chainable, as in PyTorch: each step multiplies the current
``group['lr']``, so they compose with each other and with manual changes, and give bit-for-bit
PyTorch's numbers. LambdaLR, CosineAnnealingLR, LinearLR and OneCycleLR compute the closed form
from ``base_lrs`` (the groups' ``initial_lr``), which does not drift over long runs; PyTorch's
recursive cosine and linear forms agree to about 1e-15 relative.

``state_dict()`` holds plain Python values (ints, floats, lists, dicts), never the optimizer.
"""
import copy
import math
import types

from .. import checks

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR",
           "LinearLR", "OneCycleLR", "ReduceLROnPlateau"]


# -- argument checks (clear errors, raised when the scheduler is built) ------------------------------
def _check_optimizer(name, optimizer):
    if not isinstance(getattr(optimizer, "param_groups", None), list):
        raise TypeError(f"{name}: expected an optimizer with param_groups, got {type(optimizer).__name__}")
    return optimizer


def _positive_int(name, what, value, minimum=1):
    return checks.integer(name, what, value, minimum)


def _positive_float(name, what, value):
    return checks.real(name, what, value, 0, low_open=True)


def _per_group(name, what, value, optimizer):
    """A scalar for every group, or a list/tuple with one value per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name}: expected {n} values of {what} (one per param group), got {len(value)}")
        return list(value)
    return [value] * n


class LRScheduler:
    """Base of the epoch-indexed schedules. Subclasses implement ``get_lr()``: the lrs for
    ``self.last_epoch``, one per param group.

    ``last_epoch=-1`` starts a fresh schedule (each group's ``initial_lr`` is set to its current lr,
    unless already there); resuming with ``last_epoch >= 0`` needs ``initial_lr`` in every group,
    which the optimizer's state_dict carries. Prefer ``load_state_dict`` to resume.
    """

    def __init__(self, optimizer, last_epoch=-1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        last_epoch = checks.integer(name, "last_epoch", last_epoch, -1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{name}: param_groups[{i}] has no 'initial_lr', needed to resume with "
                                   f"last_epoch={last_epoch}; load the optimizer's state_dict first")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._initial_step()

    def _initial_step(self):
        self.last_epoch += 1
        self._set_lrs(self._initial_lrs())

    def _initial_lrs(self):
        return self.get_lr()

    def get_lr(self):
        raise TypeError(f"{type(self).__name__} must define get_lr(), the learning rates of the "
                        f"current epoch, one per parameter group")

    def step(self):
        """Advance one epoch and set the new lr in every param group."""
        self.last_epoch += 1
        self._set_lrs(self.get_lr())

    def _set_lrs(self, lrs):
        groups = self.optimizer.param_groups
        if len(lrs) != len(groups):
            raise RuntimeError(f"{type(self).__name__}: the optimizer has {len(groups)} param groups, the "
                               f"scheduler {len(lrs)}; add param groups before creating the scheduler")
        for group, lr in zip(groups, lrs):
            group["lr"] = float(lr)
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self):
        """The lrs set by the latest step, one per param group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer, as plain Python values."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(copy.deepcopy(state_dict))

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): decay by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = _positive_float("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return lrs
        return [lr * self.gamma for lr in lrs]


class MultiStepLR(LRScheduler):
    """Decay by ``gamma`` at each epoch listed in ``milestones`` (a milestone listed twice decays twice)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            checks.fail("MultiStepLR", "milestones", "a list of epochs (integers >= 0)", milestones,
                        checks.ArgumentTypeError)
        counts = {}
        for m in milestones:
            m = _positive_int("MultiStepLR", "each milestone", m, minimum=0)
            counts[m] = counts.get(m, 0) + 1
        self.milestones = dict(sorted(counts.items()))     # {epoch: how many times listed}
        self.gamma = _positive_float("MultiStepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        n = self.milestones.get(self.last_epoch, 0)
        if not n:
            return lrs
        return [lr * self.gamma ** n for lr in lrs]

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        # JSON-like round trips turn int keys into strings
        self.milestones = {int(k): v for k, v in self.milestones.items()}


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = _positive_float("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def _initial_lrs(self):
        # resuming (last_epoch >= 0): the lr in the optimizer is already the scheduled one
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self):
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Falls from base_lr to eta_min over T_max epochs (and, stepped further, rises again, as in
    PyTorch). Closed form, so it overrides changes made to the lr by others.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = checks.real("CosineAnnealingLR", "eta_min", eta_min, 0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        c = (1.0 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2.0
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch); ``lr_lambda`` is one function, or a list with one per group.

    >>> LambdaLR(opt, lambda epoch: 0.95 ** epoch)
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer("LambdaLR", optimizer)
        fns = _per_group("LambdaLR", "lr_lambda", lr_lambda, optimizer)
        for f in fns:
            checks.callable_arg("LambdaLR", "lr_lambda", f)
        self.lr_lambdas = fns
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for f, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        """As PyTorch: functions and lambdas are not saved (None); a callable object's ``__dict__`` is."""
        sd = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        sd["lr_lambdas"] = [None if isinstance(f, types.FunctionType) else copy.deepcopy(f.__dict__)
                            for f in self.lr_lambdas]
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        saved = state_dict.pop("lr_lambdas", None) or []
        self.__dict__.update(copy.deepcopy(state_dict))
        for f, d in zip(self.lr_lambdas, saved):
            if d is not None:
                f.__dict__.update(copy.deepcopy(d))


class LinearLR(LRScheduler):
    """lr = base_lr * factor, the factor going linearly from ``start_factor`` (epoch 0) to
    ``end_factor`` (epoch ``total_iters`` and after): a linear warm-up with the defaults of PyTorch.

    >>> LinearLR(opt, start_factor=0.1, total_iters=5)     # warm up to the full lr over 5 epochs
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        self.start_factor = checks.real("LinearLR", "start_factor", start_factor, 0, 1, low_open=True)
        self.end_factor = checks.real("LinearLR", "end_factor", end_factor, 0, 1)
        self.total_iters = _positive_int("LinearLR", "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        f = self.start_factor + (self.end_factor - self.start_factor) * \
            min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * f for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2017), stepped once per batch: the lr rises from
    max_lr / div_factor to ``max_lr`` over the first ``pct_start`` of ``total_steps``, then anneals to
    max_lr / div_factor / final_div_factor; momentum (SGD's ``momentum`` or Adam's beta1) moves the
    other way between ``max_momentum`` and ``base_momentum``. As torch.optim.lr_scheduler.OneCycleLR.

    >>> OneCycleLR(opt, max_lr=0.1, epochs=10, steps_per_epoch=len(loader))
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        name = "OneCycleLR"
        _check_optimizer(name, optimizer)
        if total_steps is not None:
            self.total_steps = _positive_int(name, "total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int(name, "epochs", epochs)
                                * _positive_int(name, "steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError(f"{name}: give total_steps, or both epochs and steps_per_epoch")
        pct_start = checks.real(name, "pct_start", pct_start, 0, 1)
        checks.choice(name, "anneal_strategy", anneal_strategy, ("cos", "linear"))
        three_phase = checks.flag(name, "three_phase", three_phase)
        cycle_momentum = checks.flag(name, "cycle_momentum", cycle_momentum)
        div_factor = _positive_float(name, "div_factor", div_factor)
        final_div_factor = _positive_float(name, "final_div_factor", final_div_factor)
        self.anneal_strategy = anneal_strategy
        n = self.total_steps
        if three_phase:
            # (end step, lr from, lr to, momentum from, momentum to)
            self._phases = [[float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                            [float(2 * pct_start * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"],
                            [n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"]]
        else:
            self._phases = [[float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                            [n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"]]
        max_lrs = [_positive_float(name, "max_lr", m) for m in _per_group(name, "max_lr", max_lr, optimizer)]
        if last_epoch == -1:
            for m, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            defaults = getattr(optimizer, "defaults", {})
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError(f"{name}: cycle_momentum needs an optimizer with momentum or betas "
                                 f"(SGD, RMSprop, Adam); pass cycle_momentum=False")
            self.use_beta1 = "betas" in defaults
            if last_epoch == -1:
                for hi, lo, group in zip(_per_group(name, "max_momentum", max_momentum, optimizer),
                                         _per_group(name, "base_momentum", base_momentum, optimizer),
                                         optimizer.param_groups):
                    hi = checks.real(name, "max_momentum", hi, 0, 1)
                    lo = checks.real(name, "base_momentum", lo, 0, 1)
                    if self.use_beta1:
                        group["betas"] = (hi, *group["betas"][1:])
                    else:
                        group["momentum"] = hi
                    group["max_momentum"] = hi
                    group["base_momentum"] = lo
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, but total_steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if t <= end or i == len(self._phases) - 1:
                    pct = (t - start) / (end - start)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        m = self._anneal(group[m0], group[m1], pct)
                        if self.use_beta1:
                            group["betas"] = (m, *group["betas"][1:])
                        else:
                            group["momentum"] = m
                    break
                start = end
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has not improved for more than ``patience`` epochs.

    ``mode='min'`` watches a loss, ``'max'`` an accuracy. An improvement must beat the best value by
    ``threshold`` (relative: best * (1 -/+ threshold); absolute: best -/+ threshold). After a
    reduction, ``cooldown`` epochs pass before bad epochs count again. The lr never goes below
    ``min_lr`` (a number, or one per group), and changes smaller than ``eps`` are skipped.

    >>> sched = ReduceLROnPlateau(opt, mode='min', factor=0.5, patience=3)
    >>> sched.step(val_loss)
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        name = "ReduceLROnPlateau"
        self.optimizer = _check_optimizer(name, optimizer)
        factor = checks.real(name, "factor", factor, 0, 1, low_open=True, high_open=True)
        checks.choice(name, "mode", mode, ("min", "max"))
        checks.choice(name, "threshold_mode", threshold_mode, ("rel", "abs"))
        threshold = checks.real(name, "threshold", threshold, 0)
        eps = checks.real(name, "eps", eps, 0)
        min_lrs = [checks.real(name, "min_lr", m, 0) for m in _per_group(name, "min_lr", min_lr, optimizer)]
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else float(min_lr)
        self.min_lrs = [float(m) for m in min_lrs]
        self.factor = float(factor)
        self.patience = _positive_int(name, "patience", patience, minimum=0)
        self.cooldown = _positive_int(name, "cooldown", cooldown, minimum=0)
        self.mode, self.threshold, self.threshold_mode = mode, float(threshold), threshold_mode
        self.eps = float(eps)
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._reset()

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def is_better(self, a, best):
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (1.0 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metric):
        """Record this epoch's ``metric`` (a number or a one-element tensor/array) and maybe reduce the lr."""
        current = float(metric.item() if hasattr(metric, "item") else metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0            # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer now has {len(groups)} param groups, "
                                   f"min_lr lists {len(self.min_lrs)}; set scheduler.min_lrs to match")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new
