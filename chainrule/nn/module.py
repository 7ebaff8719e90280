"""Module: the base of every layer and model. Parameters and sub-modules register themselves when
assigned as attributes, as in PyTorch."""
from collections import OrderedDict

import numpy as np

from ..autograd import Tensor, _bump
from .parameter import Parameter


class Module:
    """Base class for layers and models: subclass it, assign layers in ``__init__`` and write
    ``forward``.

    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(64, 32)
    ...         self.fc2 = nn.Linear(32, 10)
    ...     def forward(self, x):
    ...         return self.fc2(self.fc1(x).relu())
    """

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["training"] = True

    # -- registration ------------------------------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() is called: call super().__init__() "
                f"first in {type(self).__name__}.__init__")
        params, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"(a Parameter or None is expected)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r}")
            modules[name] = None
        elif name in buffers:
            buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for k in ("_parameters", "_buffers", "_modules"):
            self.__dict__[k].pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is part of the module's state but not learnable (e.g. running means)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(tensor)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name, param):
        setattr(self, name, param)

    def add_module(self, name, module):
        setattr(self, name, module)

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward; returns a handle with ``remove()``."""
        key = object()
        self._forward_hooks[key] = hook
        return _HookHandle(self._forward_hooks, key)

    # -- calling -----------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                r = hook(self, args, out)
                if r is not None:
                    out = r
        return out

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} has no forward(): define forward() in the subclass")

    # -- traversal ---------------------------------------------------------------------------------
    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix="", memo=None):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self.named_children():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for pname, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def get_submodule(self, target):
        """The sub-module at a dotted path such as ``'features.0'``."""
        m = self
        for part in target.split(".") if target else []:
            if part not in m._modules or m._modules[part] is None:
                raise AttributeError(f"{type(m).__name__} has no sub-module {part!r} "
                                     f"(looking for {target!r}; it has {list(m._modules)})")
            m = m._modules[part]
        return m

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes -------------------------------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze (True) every parameter; frozen ones get no gradient."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def num_parameters(self, trainable_only=False):
        """Number of scalar parameters (e.g. 26 for Linear(3, 4) -> Linear(4, 2))."""
        return sum(p.data.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- dtype -------------------------------------------------------------------------------------
    def to(self, dtype):
        """Convert floating parameters and buffers to ``dtype`` in place (objects are kept, so an
        optimizer made before still holds them; create optimizers after converting anyway)."""
        dtype = np.dtype(dtype)
        for t in list(self.parameters()) + list(self.buffers()):
            if t.data.dtype.kind == "f":
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad.data = t.grad.data.astype(dtype)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self):
        """An ordered mapping name -> array copy of every parameter and persistent buffer."""
        out = OrderedDict()
        for mname, m in self.named_modules():
            for kind in ("_parameters", "_buffers"):
                for name, t in m.__dict__[kind].items():
                    if t is None or (kind == "_buffers" and name in m._non_persistent):
                        continue
                    key = f"{mname}.{name}" if mname else name
                    if key not in out:
                        out[key] = np.array(t.data, copy=True)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        With ``strict`` (default) missing or unexpected keys are an error; a shape mismatch always is.
        Returns (missing_keys, unexpected_keys).
        """
        own = OrderedDict()
        for mname, m in self.named_modules():
            for kind in ("_parameters", "_buffers"):
                for name, t in m.__dict__[kind].items():
                    if t is not None and not (kind == "_buffers" and name in m._non_persistent):
                        own.setdefault(f"{mname}.{name}" if mname else name, t)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        name = type(self).__name__
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"Error loading state_dict into {name}: " + "; ".join(parts))
        values = {}
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = np.asarray(state_dict[k])
            if v.shape != t.data.shape:
                raise ValueError(f"Error loading state_dict into {name}: {k!r} has shape {v.shape} "
                                 f"in the state dict but {t.data.shape} in the model")
            if v.dtype.kind not in "fiub":
                raise TypeError(f"Error loading state_dict into {name}: {k!r} has dtype {v.dtype}")
            values[k] = v
        for k, v in values.items():           # copy only after every check passed
            t = own[k]
            t.data[...] = v.astype(t.data.dtype, copy=False)
            _bump(t)                          # a graph that saved it refuses to backward now
        return missing, unexpected

    # -- printing ----------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, m in self.named_children():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


class _HookHandle:
    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


def count_parameters(model, trainable_only=False):
    """Number of learnable scalars in ``model``: 26 for 3 inputs -> 4 hidden -> 2 outputs."""
    return model.num_parameters(trainable_only=trainable_only)
