"""Containers: Sequential, ModuleList, ModuleDict."""
from collections import OrderedDict

from .activation import ReLU
from .conv import Conv2d
from .module import Module
from .pool import MaxPool1d, MaxPool2d


_MAX_POOLS = (MaxPool2d, MaxPool1d)


def _fusions(layers):
    """{index: (kind, span)}: where a run of layers starting at index can run fused (see
    Sequential). Runs may overlap; forward takes the first that applies."""
    found = {}
    for i in range(len(layers) - 1):
        a, b = type(layers[i]), type(layers[i + 1])
        c = type(layers[i + 2]) if i + 2 < len(layers) else None
        if a is Conv2d and b is MaxPool2d:
            found[i] = ("conv_pool", 2)
        elif a is Conv2d and b is ReLU and c is MaxPool2d:
            found[i] = ("conv_relu_pool", 3)
        elif a is ReLU and b in _MAX_POOLS:
            found[i] = ("relu_pool", 2)
    return found


class Sequential(Module):
    """Layers applied one after the other: ``Sequential(Linear(64, 128), ReLU(), Linear(128, 10))``.

    Two exact rewrites, each skipped when one of its layers has forward hooks (hooks always see
    the layers' own outputs):

    * a ``ReLU`` directly followed by a max pooling runs as the pooling, then the ReLU. Max
      pooling commutes with the ReLU (max relu(x) = relu(max x), and the gradient reaches the
      same input or is zero either way), so outputs and gradients are identical, while the ReLU
      touches k*k times fewer values (LeNet-5 step: ~6% faster);
    * a ``Conv2d`` followed by ``MaxPool2d(2)`` (stride 2, no padding), with or without a ReLU
      between them, runs as one op, ``Conv2d.forward_pooled`` (then the ReLU): the same values
      and gradients bit for bit, with the pooling done in the convolution's internal layout.
      It applies where that layout is batch-innermost (small feature maps, e.g. LeNet-5's
      second convolution).
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
        self.__dict__["_fused"] = _fusions(layers)

    def forward(self, x):
        layers, fused = self._layers, self._fused
        if not fused:
            for layer in layers:
                x = layer(x)
            return x
        i, n = 0, len(layers)
        while i < n:
            layer = layers[i]
            kind, span = fused.get(i, (None, 1))
            if kind is not None and not any(m._forward_hooks for m in layers[i:i + span]):
                if kind == "relu_pool":
                    x = layer(layers[i + 1](x))   # the same values and gradients (class notes)
                    i += 2
                    continue
                # the pooling's settings are read now: they may change after construction
                y = layer.forward_pooled(x) if layers[i + span - 1]._2x2 else None
                if y is not None:
                    x = layers[i + 1](y) if kind == "conv_relu_pool" else y
                    i += span
                    continue
            x = layer(x)
            i += 1
        return x

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
