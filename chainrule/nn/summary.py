"""A Keras-style model summary: each layer, its output shape and its parameter count, found by
running one forward pass with hooks.

>>> print(summary(mlp(64, (256,), 10), (64,)))
Sequential, input (64,)
Layer  Type    Output shape  Params
-----------------------------------
0      Linear  (1, 256)      16,640
1      ReLU    (1, 256)           0
2      Linear  (1, 10)        2,570
Total params: 19,210 (trainable 19,210, frozen 0)

A layer whose parameters are all frozen (``requires_grad_(False)``) is marked "(frozen)" after
its type, one with only some frozen "(partly frozen)"; the totals count frozen parameters apart.
Buffers such as BatchNorm's running statistics are not parameters and are not counted (as in
PyTorch; Keras lists them as non-trainable).
"""
import html

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad

__all__ = ["summary", "ModelSummary"]


def _shape_of(out):
    if isinstance(out, Tensor) or isinstance(out, np.ndarray):
        return tuple(int(n) for n in out.shape)
    if isinstance(out, (tuple, list)):
        return type(out)(_shape_of(o) for o in out)
    return None


def _fmt_shape(s):
    if s is None:
        return "-"
    if isinstance(s, tuple) and all(isinstance(n, int) for n in s):
        return "(" + ", ".join(str(n) for n in s) + ("," if len(s) == 1 else "") + ")"
    if isinstance(s, (tuple, list)):
        return "[" + ", ".join(_fmt_shape(x) for x in s) + "]"
    return str(s)


def row_type(r):
    """A row's type as shown: "Conv2d", "Linear (x2)" when called twice, marked "(frozen)" when
    all its parameters are frozen and "(partly frozen)" when some are."""
    t = r["type"] + (f" (x{r['calls']})" if r.get("calls", 1) > 1 else "")
    trainable = r.get("trainable", r["params"])
    if r["params"] and trainable == 0:
        t += " (frozen)"
    elif trainable < r["params"]:
        t += " (partly frozen)"
    return t


class ModelSummary:
    """What ``summary`` returns: ``rows`` (dicts with name, type, output_shape, params, trainable
    (the trainable part of params), calls), ``total_params``, ``trainable_params``,
    ``frozen_params``, ``input_shape``; ``str()`` gives the text table, ``to_html()`` an HTML
    table, ``to_dict()`` plain values for JSON."""

    def __init__(self, model_name, input_shape, rows, total, trainable):
        self.model_name, self.input_shape, self.rows = model_name, input_shape, rows
        self.total_params, self.trainable_params = total, trainable
        self.frozen_params = total - trainable

    _type = staticmethod(row_type)

    def _table(self):
        head = ["Layer", "Type", "Output shape", "Params"]
        body = [[r["name"], self._type(r), _fmt_shape(r["output_shape"]), f"{r['params']:,}"] for r in self.rows]
        return head, body

    def __str__(self):
        head, body = self._table()
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        fmt = lambda row: "  ".join(
            (c.rjust(w) if i == 3 else c.ljust(w)) for i, (c, w) in enumerate(zip(row, widths)))
        lines = [f"{self.model_name}, input {_fmt_shape(self.input_shape)}", fmt(head),
                 "-" * (sum(widths) + 2 * (len(widths) - 1))]
        lines += [fmt(r) for r in body]
        lines.append(f"Total params: {self.total_params:,} (trainable {self.trainable_params:,}, "
                     f"frozen {self.frozen_params:,})")
        return "\n".join(lines)

    __repr__ = __str__

    def to_html(self):
        head, body = self._table()
        e = html.escape
        rows = "".join("<tr>" + "".join(f'<td{" class=num" if i == 3 else ""}>{e(str(c))}</td>'
                                        for i, c in enumerate(r)) + "</tr>" for r in body)
        return ('<table class="summary"><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in head)
                + f"</tr></thead><tbody>{rows}</tbody><tfoot><tr><td colspan=3>Total params "
                f"(trainable {self.trainable_params:,}, frozen {self.frozen_params:,})</td><td class=num>{self.total_params:,}"
                "</td></tr></tfoot></table>")

    def to_dict(self):
        return {"model": self.model_name, "input_shape": list(self.input_shape),
                "total_params": self.total_params, "trainable_params": self.trainable_params,
                "frozen_params": self.frozen_params,
                "layers": [{"name": r["name"], "type": r["type"],
                            "output_shape": _fmt_shape(r["output_shape"]),
                            "params": r["params"], "trainable": r.get("trainable", r["params"]),
                            "calls": r["calls"]} for r in self.rows]}


def summary(model, input_shape, batch_size=1, dtype=None, input=None):
    """Run ``model`` once on zeros of shape (batch_size, *input_shape) (or on ``input``, e.g. int
    token ids for an embedding) in eval mode without gradients, and list every leaf layer (and
    every module that holds parameters itself) with its output shape and its own parameter count.
    The model's mode and the global RNG are left as they were.

    >>> summary(model, (1, 28, 28))        # a ConvNet on MNIST
    """
    input_shape = tuple(int(n) for n in input_shape)
    if input is None:
        if dtype is None:
            p = next(iter(model.parameters()), None)
            dtype = p.data.dtype if p is not None else backend.get_default_dtype()
        input = Tensor(np.zeros((batch_size,) + input_shape, dtype=dtype))
    elif not isinstance(input, Tensor):
        input = Tensor(input)
    rows, handles = [], []
    for name, m in model.named_modules():
        own = sum(p.data.size for p in m._parameters.values() if p is not None)
        if name and (not any(True for _ in m.named_children()) or own):
            row = {"name": name, "type": type(m).__name__, "output_shape": None, "params": own,
                   "trainable": sum(p.data.size for p in m._parameters.values()
                                    if p is not None and p.requires_grad),
                   "calls": 0}
            rows.append(row)

            def hook(mod, args, out, row=row):
                if row["calls"] == 0:
                    row["output_shape"] = _shape_of(out)
                row["calls"] += 1
            handles.append(m.register_forward_hook(hook))
    modes = [(m, m.training) for m in model.modules()]
    rng = backend.get_rng_state()
    model.eval()
    try:
        with no_grad():
            out = model(input)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.__dict__["training"] = mode
        backend.set_rng_state(rng)
    if not rows:                      # a model that is a single layer
        rows.append({"name": type(model).__name__, "type": type(model).__name__,
                     "output_shape": _shape_of(out), "params": model.num_parameters(),
                     "trainable": model.num_parameters(trainable_only=True), "calls": 1})
    total = model.num_parameters()
    trainable = model.num_parameters(trainable_only=True)
    counted = sum(r["params"] for r in rows)
    if counted != total:              # parameters held by containers that are not leaves
        rows.append({"name": "(other)", "type": "-", "output_shape": None,
                     "params": total - counted,
                     "trainable": trainable - sum(r["trainable"] for r in rows), "calls": 0})
    return ModelSummary(type(model).__name__, input_shape, rows, total, trainable)
