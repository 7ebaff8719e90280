"""Layer fusions for ``nn.Sequential``: a pass over its layer list, applied by the fast path.
Replaces running the layers one by one (``nn.container.run_layers``; registered in
``fast/registry.py``) where two exact rewrites apply; each is skipped while one of its layers has
forward hooks (hooks see the layers' own outputs):

* ``ReLU`` directly followed by a max pooling runs as the pooling, then the ReLU. Max pooling
  commutes with the ReLU (max relu(x) = relu(max x), and the gradient reaches the same input or
  is zero either way), so outputs and gradients are identical, while the ReLU touches k*k times
  fewer values (LeNet-5 step: ~6% faster);
* ``Conv2d`` followed by ``MaxPool2d(2)`` (stride 2, no padding), with or without a ReLU
  between them, runs as one op, ``fast.conv.ConvMaxPool2d`` (then the ReLU): bit for bit the
  convolution then the pooling, with the pooling done in the convolution's batch-innermost
  layout. It applies where that layout is used (small feature maps, e.g. LeNet-5's second
  convolution).

The plan is computed once per layer list (Sequential rebuilds its list when a layer changes);
the pooling's settings and the input's size are read at every call.
"""
from ..autograd import Tensor
from ..nn.activation import ReLU
from ..nn.conv import Conv2d
from ..nn.pool import MaxPool1d, MaxPool2d
from .conv import ConvMaxPool2d

_MAX_POOLS = (MaxPool2d, MaxPool1d)


def plan(layers):
    """{index: (kind, span)}: where a run of layers starting at index can run fused. Runs may
    overlap; ``run`` takes the first that applies."""
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


def conv_pooled(conv, x):
    """``MaxPool2d(2)(conv(x))`` as one op (``ConvMaxPool2d``), or None where it does not apply
    (large outputs, which the convolution runs batch-outermost, or no whole 2x2 window)."""
    xd = x.data if isinstance(x, Tensor) else x
    conv._check(xd)
    d = conv.__dict__
    if d.get("_pooled_shape") != xd.shape:
        d["_pooled_ok"] = ConvMaxPool2d.applies(conv.output_size(xd.shape[2:]))
        d["_pooled_shape"] = xd.shape
    if not d["_pooled_ok"]:
        return None
    args = (x, conv.weight) if conv.bias is None else (x, conv.weight, conv.bias)
    return ConvMaxPool2d.apply(*args, stride=conv.stride, padding=conv._pads,
                               dilation=conv.dilation, groups=conv.groups)


def run(seq, x):
    """``Sequential.forward`` with the fusions above: the same outputs and gradients as running
    ``seq``'s layers one by one."""
    layers = seq._layers
    cached = seq.__dict__.get("_fast_plan")
    if cached is None or cached[0] is not layers:
        cached = seq.__dict__["_fast_plan"] = (layers, plan(layers))
    fused = cached[1]
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
                x = layer(layers[i + 1](x))       # the same values and gradients (module notes)
                i += 2
                continue
            # the pooling's settings are read now: they may change after construction
            y = conv_pooled(layer, x) if layers[i + span - 1]._2x2 else None
            if y is not None:
                x = layers[i + 1](y) if kind == "conv_relu_pool" else y
                i += span
                continue
        x = layer(x)
        i += 1
    return x

