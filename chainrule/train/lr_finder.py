"""The learning-rate range test (Smith 2017, "Cyclical learning rates"): train for a few hundred
steps while the learning rate grows exponentially from tiny to huge, record the (smoothed) loss,
and pick a rate where the loss falls fastest. Model, optimizer and random generators are put back
exactly as they were afterwards.

>>> result = lr_find(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), (X, y))
>>> result.suggestion            # e.g. 0.12
>>> result.plot("lr_find.png")
"""
import math

import numpy as np

from .. import backend
from ..nn import functional as F
from .loop import Trainer, _loader, _model_dtype

__all__ = ["lr_find", "LRFinderResult"]


class LRFinderResult:
    """What ``lr_find`` returns.

    Attributes: ``lrs`` and ``losses`` (smoothed) and ``raw_losses``, one per step taken;
    ``suggestion`` (the learning rate to use) and ``method`` ('steepest' or 'min/10');
    ``diverged`` (stopped early because the loss blew up); ``min_lr`` (where the smoothed loss
    was lowest).
    """

    def __init__(self, lrs, losses, raw_losses, suggestion, method, diverged, min_lr):
        self.lrs, self.losses, self.raw_losses = lrs, losses, raw_losses
        self.suggestion, self.method, self.diverged, self.min_lr = suggestion, method, diverged, min_lr

    def plot(self, path=None):
        """Smoothed loss against learning rate (log scale), the suggestion marked. Returns the
        matplotlib Figure (saved as PNG to ``path`` if given)."""
        from ..viz.plots import plot_lr_find
        return plot_lr_find(self, path)

    def __repr__(self):
        return (f"LRFinderResult(steps={len(self.lrs)}, suggestion={self.suggestion:.3g} "
                f"({self.method}), diverged={self.diverged})")


def _suggest(lrs, losses, skip_start, skip_end):
    """The lr of steepest descent of the smoothed loss (in log lr), looked for before the loss
    minimum; min-loss lr / 10 when there are too few points for a slope."""
    lrs, losses = np.asarray(lrs), np.asarray(losses)
    i_min = int(np.argmin(losses))
    min_lr = float(lrs[i_min])
    lo = min(skip_start, max(len(lrs) - 1, 0))
    hi = min(i_min + 1, len(lrs) - skip_end) if skip_end else i_min + 1
    if hi - lo >= 5:
        slope = np.gradient(losses[lo:hi], np.log(lrs[lo:hi]))
        return float(lrs[lo + int(np.argmin(slope))]), "steepest", min_lr
    return min_lr / 10.0, "min/10", min_lr


def lr_find(model, optimizer, data, loss_fn=F.cross_entropy, start_lr=1e-7, end_lr=10.0,
            num_steps=100, batch_size=32, smooth=0.98, diverge_factor=4.0, seed=None,
            skip_start=5, skip_end=2):
    """Run the range test and return an ``LRFinderResult``.

    Each of up to ``num_steps`` training steps (cycling through ``data``: a DataLoader, a
    Dataset or (X, y)) uses lr = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1)) in every
    param group. The loss is smoothed by an exponential moving average (``smooth``, bias
    corrected); the test stops early once the smoothed loss exceeds ``diverge_factor`` times its
    minimum, or is NaN/inf. Afterwards the model's parameters and buffers, its train/eval mode, the
    gradients, the optimizer (state and learning rates), chainrule's global RNG and the data
    loader's generators are restored exactly: the test leaves no trace.
    """
    if not (0 < start_lr < end_lr):
        raise ValueError(f"lr_find: need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    if not (isinstance(num_steps, (int, np.integer)) and num_steps >= 2):
        raise ValueError(f"lr_find: num_steps must be an integer >= 2, got {num_steps!r}")
    if not 0 <= smooth < 1:
        raise ValueError(f"lr_find: smooth must be in [0, 1), got {smooth}")
    loader = _loader(data, batch_size, True, seed, "lr_find", _model_dtype(model))
    params = list(model.parameters())
    saved = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "groups": [dict((k, v) for k, v in g.items() if k != "params")
                        for g in optimizer.param_groups],
             "training": [(m, m.training) for m in model.modules()],
             "grads": [None if p.grad is None else p.grad.data.copy() for p in params],
             "rng": backend.get_rng_state(),
             "loader": loader.generator.bit_generator.state,
             "transform": loader.transform_generator.bit_generator.state}
    step = Trainer(model, optimizer, loss_fn)          # its step, without clipping
    lrs, losses, raw = [], [], []
    avg, best, diverged = 0.0, math.inf, False
    ratio = end_lr / start_lr
    try:
        model.train()
        batches = iter(loader)
        for i in range(num_steps):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            lr = start_lr * ratio ** (i / (num_steps - 1))
            for g in optimizer.param_groups:
                g["lr"] = lr
            lv = step.train_step((x, y))[0]
            lrs.append(lr)
            raw.append(lv)
            if not math.isfinite(lv):
                diverged = True
                break
            avg = smooth * avg + (1 - smooth) * lv
            s = avg / (1 - smooth ** (i + 1))
            losses.append(s)
            best = min(best, s)
            if s > diverge_factor * best:
                diverged = True
                break
    finally:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        for g, old in zip(optimizer.param_groups, saved["groups"]):
            for k in [k for k in g if k != "params" and k not in old]:
                del g[k]
            g.update(old)
        for m, mode in saved["training"]:
            m.__dict__["training"] = mode
        for p, gd in zip(params, saved["grads"]):
            if gd is None:
                p.grad = None
            elif p.grad is None or p.grad.data.shape != gd.shape:
                from ..autograd import Tensor
                p.grad = Tensor(gd)
            else:
                p.grad.data = gd
        backend.set_rng_state(saved["rng"])
        loader.generator.bit_generator.state = saved["loader"]
        loader.transform_generator.bit_generator.state = saved["transform"]
    lrs = lrs[:len(losses)]
    if not losses:
        raise FloatingPointError(f"lr_find: the loss was not finite from the first step "
                                 f"(lr={start_lr:g}); check the data and the model")
    suggestion, method, min_lr = _suggest(lrs, losses, skip_start, skip_end)
    return LRFinderResult(np.array(lrs), np.array(losses), np.array(raw), suggestion, method,
                          diverged, min_lr)
