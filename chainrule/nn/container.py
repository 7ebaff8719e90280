"""Containers: Sequential, ModuleList, ModuleDict."""
from collections import OrderedDict

from .. import fast
from .module import Module


def run_layers(seq, x):
    """The reference forward of a Sequential: its layers one after the other."""
    for layer in seq._layers:
        x = layer(x)
    return x


class Sequential(Module):
    """Layers applied one after the other: ``Sequential(Linear(64, 128), ReLU(), Linear(128, 10))``.

    The fast path (on by default) may run some layer patterns fused, with the same outputs
    and gradients: see ``chainrule/fast/fusion.py``; ``chainrule.fast.disabled()`` turns it off.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (dict, OrderedDict)):
            for name, m in layers[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(layers):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
                self.add_module(str(i), m)
        self._refresh()

    def _refresh(self):
        layers = [m for m in self._modules.values() if m is not None]
        self.__dict__["_layers"] = layers

    def forward(self, x):
        # the fast path plugs in here (chainrule/fast/__init__.py): run_layers, or the fusion
        # pass that replaces it (chainrule/fast/fusion.py)
        return fast.use(run_layers, x)(self, x)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        self._refresh()
        return self

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if isinstance(value, Module) and "_layers" in self.__dict__:
            self._refresh()

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        if isinstance(idx, str):
            return self._modules[idx]
        return self._layers[idx]

    def __setitem__(self, idx, module):
        key = list(self._modules)[idx]
        setattr(self, key, module)

    def __len__(self):
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, idx):
        items = list(self._modules.values())
        return ModuleList(items[idx]) if isinstance(idx, slice) else items[idx]

    def __setitem__(self, idx, module):
        setattr(self, list(self._modules)[idx], module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    def __init__(self, modules=None):
        super().__init__()
        for k, m in (modules or {}).items():
            self.add_module(k, m)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
