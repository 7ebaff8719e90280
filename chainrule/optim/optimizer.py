"""Optimizers: the update rules of gradient descent, matching PyTorch's formulas step for step.

Each optimizer holds ``param_groups`` (a list of dicts: the parameters and their hyper-parameters,
so that parts of a model can learn at different rates) and ``state`` (per-parameter buffers such as
momentum). Updates are in place, with ``out=`` arguments, so a step allocates little; the array
module comes from each parameter (``xp = array_namespace(w)``), so state lives beside it.
"""
import math

import numpy as np

from .. import checks
from .. import autograd as _autograd
from ..autograd import Tensor
from ..backend import array_namespace


class Optimizer:
    defaults_order = ()
    _stepping = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _bumping(cls.__dict__["step"])

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or dicts "
                            f"(e.g. model.parameters() or [weight]), got a single {type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Add parameters with their own hyper-parameters, e.g. ``{'params': head.parameters(), 'lr': 0.1}``."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            checks.fail(name, "a parameter group", "a dict with a 'params' entry", group, checks.ArgumentTypeError)
        group = dict(group)
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in ps:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in ps):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one group")
        group["params"] = ps
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group):
        """Validate a group's hyper-parameters (each group, also those added later), in place:
        numbers become Python floats, flags bools."""
        name = type(self).__name__
        group["lr"] = checks.real(name, "lr", group["lr"], 0)
        if "weight_decay" in group:
            group["weight_decay"] = checks.real(name, "weight_decay", group["weight_decay"], 0)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    st = self.state.get(p)
                    if st is None:
                        st = self.state[p] = {}
                    self._update(p.data, p.grad.data, st, group)

    def _bump_versions(self):
        """One version bump per updated parameter (those with a gradient): a graph that saved a
        parameter before the step refuses to backward after it, as in PyTorch."""
        _autograd._bump_updated([g["params"] for g in self.param_groups])

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self):
        """PyTorch's layout: {'state': {index: {...}}, 'param_groups': [{..., 'params': [index...]}]}."""
        index, groups, i = {}, [], 0
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index[id(p)] = i
                ids.append(i)
                i += 1
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if hasattr(v, "shape") else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(groups)} parameter groups, "
                             f"this optimizer {len(self.param_groups)}")
        params = []
        for gi, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}.load_state_dict: group {gi} has {len(saved['params'])} "
                                 f"parameters in the state, {len(own['params'])} here")
            params.extend(zip(saved["params"], own["params"]))
        new_state = {}
        saved_state = state_dict["state"]
        for idx, p in params:
            st = saved_state.get(idx, saved_state.get(str(idx)))
            if st is None:
                continue
            entry = {}
            for k, v in st.items():
                if isinstance(v, np.ndarray) and v.ndim > 0:
                    if v.shape != p.data.shape:
                        raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter {idx} has "
                                         f"shape {v.shape}, the parameter {p.data.shape}")
                    v = v.astype(p.data.dtype, copy=True)
                elif isinstance(v, np.ndarray):
                    v = v.item()
                entry[k] = v
            new_state[p] = entry
        self.state = new_state
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = v
            self._check(own)             # a saved lr of NaN (a diverged run) fails here, not in step()

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _bumping(step):
    """Wrap an optimizer's ``step`` so that it bumps the versions of the parameters it updated,
    once per call, also when a subclass's step calls its parent's."""
    import functools

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if self._stepping:
            return step(self, *args, **kwargs)
        self._stepping = True
        try:
            return step(self, *args, **kwargs)
        finally:
            self._stepping = False
            self._bump_versions()

    return wrapper


Optimizer.step = _bumping(Optimizer.step)


class SGD(Optimizer):
    """Stochastic gradient descent: w <- w - lr * g, with optional momentum (heavy ball or
    Nesterov), dampening and L2 weight decay (g <- g + weight_decay * w), as in PyTorch."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check(self, group):
        super()._check(group)
        group["momentum"] = checks.real("SGD", "momentum", group["momentum"], 0)
        group["dampening"] = checks.real("SGD", "dampening", group["dampening"], 0, 1)
        group["nesterov"] = checks.flag("SGD", "nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def step(self):
        for group in self.param_groups:
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            state = self.state
            for p in group["params"]:
                if p.grad is None:
                    continue
                w, g = p.data, p.grad.data
                if wd:
                    g = g + wd * w
                if mom:
                    st = state.get(p)
                    if st is None:
                        buf = g.copy()
                        state[p] = {"momentum_buffer": buf}
                    else:
                        buf = st["momentum_buffer"]
                        buf *= mom
                        if damp:
                            buf += (1 - damp) * g
                        else:
                            buf += g
                    g = g + mom * buf if nesterov else buf
                w -= lr * g


class RMSprop(Optimizer):
    """Divide the gradient by a running root-mean-square of recent gradients (Hinton's RMSProp)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check(self, group):
        super()._check(group)
        group["alpha"] = checks.real("RMSprop", "alpha", group["alpha"], 0, 1)
        group["eps"] = checks.real("RMSprop", "eps", group["eps"], 0)
        group["momentum"] = checks.real("RMSprop", "momentum", group["momentum"], 0)
        group["centered"] = checks.flag("RMSprop", "centered", group["centered"])

    def _update(self, w, g, st, group):
        alpha, eps, mom = group["alpha"], group["eps"], group["momentum"]
        xp = array_namespace(w)
        if group["weight_decay"]:
            g = g + group["weight_decay"] * w
        if not st:
            st["step"] = 0
            st["square_avg"] = xp.zeros_like(w)
            if mom:
                st["momentum_buffer"] = xp.zeros_like(w)
            if group["centered"]:
                st["grad_avg"] = xp.zeros_like(w)
        st["step"] += 1
        sq = st["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * g * g                 # E[g^2] <- alpha E[g^2] + (1 - alpha) g^2
        if group["centered"]:
            ga = st["grad_avg"]
            ga += (1 - alpha) * (g - ga)
            avg = xp.sqrt(sq - ga * ga)
        else:
            avg = xp.sqrt(sq)
        avg += eps
        if mom:
            buf = st["momentum_buffer"]
            buf *= mom
            buf += g / avg
            w -= group["lr"] * buf
        else:
            w -= group["lr"] * (g / avg)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): momentum on the gradient and on its square, bias-corrected.
    ``weight_decay`` adds the L2 term to the gradient (as torch.optim.Adam); see AdamW."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _check(self, group):
        super()._check(group)
        name = type(self).__name__
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            checks.fail(name, "betas", "a pair (beta1, beta2) of numbers in [0, 1)", betas, checks.ArgumentTypeError)
        group["betas"] = (checks.real(name, "betas[0]", betas[0], 0, 1, high_open=True),
                          checks.real(name, "betas[1]", betas[1], 0, 1, high_open=True))
        group["eps"] = checks.real(name, "eps", group["eps"], 0)
        group["amsgrad"] = checks.flag(name, "amsgrad", group["amsgrad"])

    def _update(self, w, g, st, group):
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        b1, b2 = group["betas"]
        xp = array_namespace(w)
        if wd:
            if self.decoupled:
                w *= 1 - lr * wd                  # AdamW: decay the weights, not the gradient
            else:
                g = g + wd * w
        if not st:
            st["step"] = 0
            st["exp_avg"] = xp.zeros_like(w)
            st["exp_avg_sq"] = xp.zeros_like(w)
            if group["amsgrad"]:
                st["max_exp_avg_sq"] = xp.zeros_like(w)
        st["step"] = t = st["step"] + 1
        m, v = st["exp_avg"], st["exp_avg_sq"]
        tmp = g - m                               # one scratch array for the whole update
        tmp *= 1 - b1
        m += tmp                                  # m <- b1 m + (1 - b1) g
        xp.multiply(g, 1 - b2, out=tmp)
        tmp *= g
        v *= b2
        v += tmp                                  # v <- b2 v + (1 - b2) g^2
        if group["amsgrad"]:
            xp.maximum(st["max_exp_avg_sq"], v, out=st["max_exp_avg_sq"])
            v = st["max_exp_avg_sq"]
        step_size = lr / (1 - b1 ** t)
        denom = xp.sqrt(v, out=tmp)
        denom /= math.sqrt(1 - b2 ** t)
        denom += eps
        upd = xp.divide(m, denom, out=denom)
        upd *= step_size
        w -= upd                                  # w <- w - step_size m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): w <- w (1 - lr wd) each step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
