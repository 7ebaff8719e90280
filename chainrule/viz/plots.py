"""Training plots with matplotlib (the optional extra ``plot``: ``pip install chainrule[plot]``).

Figures are drawn on matplotlib's Agg canvas without pyplot, so nothing here changes the user's
backend or opens a window, and it works on a machine without a display. Each function returns the
``matplotlib.figure.Figure`` and, given ``path``, also writes it there as a PNG.

>>> plot_loss(history, "loss.png"); plot_accuracy(history, "accuracy.png")
>>> plot_confusion_matrix(confusion_matrix(y_test, scores), "cm.png")
>>> plot_first_layer(model, "weights.png", image_shape=(8, 8))   # or a ConvNet's first filters
>>> plot_feature_maps(model, X_test[0], "2", "feature_maps.png")   # one input's maps at layer '2'
"""
import io
import math
import os

import numpy as np

__all__ = ["plot_loss", "plot_accuracy", "plot_lr", "plot_confusion_matrix", "plot_first_layer",
           "plot_feature_maps", "plot_lr_find", "plot_history", "figure_png"]

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"     # matplotlib's tab:blue and tab:orange


def _figure(figsize=(6.4, 4.0)):
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError as e:
        raise ImportError("chainrule.viz needs matplotlib for plots: pip install chainrule[plot]") \
            from e
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path):
    if path is not None:
        path = os.fspath(path)
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        fig.savefig(path, format="png")
    return fig


def figure_png(fig):
    """The figure as PNG bytes (for embedding in HTML)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _history(history):
    """(epochs counted from 1, dict of lists) from a History, a dict of lists or a CSV's rows."""
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError(f"expected a History or a dict of per-epoch lists, got "
                        f"{type(history).__name__}")
    n = max((len(v) for v in h.values()), default=0)
    epochs = getattr(history, "epoch", None)
    ep = np.asarray(epochs, dtype=float) + 1 if epochs is not None and len(epochs) == n \
        else np.arange(1, n + 1, dtype=float)
    return ep, h


def _series(h, key, ep):
    v = h.get(key)
    if v is None or len(v) == 0:
        return None
    return np.asarray([np.nan if x is None else float(x) for x in v], dtype=float)[:len(ep)]


def _curves(history, key, title, ylabel, path, shade_gap):
    ep, h = _history(history)
    tr, va = _series(h, key, ep), _series(h, "val_" + key, ep)
    if tr is None and va is None:
        raise KeyError(f"plot: the history has neither {key!r} nor {'val_' + key!r} "
                       f"(it has {sorted(h)})")
    fig = _figure()
    ax = fig.add_subplot()
    marker = "o" if len(ep) <= 30 else None
    if tr is not None:
        ax.plot(ep[:len(tr)], tr, color=TRAIN_COLOR, marker=marker, ms=3, lw=2, label="train")
    if va is not None:
        ax.plot(ep[:len(va)], va, color=VAL_COLOR, marker=marker, ms=3, lw=2, label="validation")
    if shade_gap and tr is not None and va is not None:
        n = min(len(tr), len(va))
        ax.fill_between(ep[:n], tr[:n], va[:n], color="#d62728", alpha=0.18, lw=0,
                        label="train - validation gap")
        gap = tr[n - 1] - va[n - 1]
        ax.annotate(f"final gap {gap:+.3f}", xy=(ep[n - 1], (tr[n - 1] + va[n - 1]) / 2),
                    xytext=(-8, 0), textcoords="offset points", ha="right", va="center",
                    fontsize=9, color="#8c1c1c")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    _integer_epochs(ax)
    return fig


def _integer_epochs(ax):
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_loss(history, path=None):
    """Training and validation loss per epoch."""
    return _finish(_curves(history, "loss", "Loss", "loss", path, shade_gap=False), path)


def plot_accuracy(history, path=None):
    """Training and validation accuracy per epoch, the gap between them shaded: a wide gap
    (train far above validation) means overfitting."""
    return _finish(_curves(history, "accuracy", "Accuracy (shaded: train - validation gap)",
                           "accuracy", path, shade_gap=True), path)


def plot_lr(history, path=None):
    """The learning rate over the epochs (log scale when it spans more than a factor of 10).
    ``history`` may also be a plain sequence of learning rates."""
    if isinstance(history, (list, tuple, np.ndarray)):
        lrs = np.asarray(history, dtype=float)
        ep = np.arange(1, len(lrs) + 1)
    else:
        ep, h = _history(history)
        lrs = _series(h, "lr", ep)
        if lrs is None:
            raise KeyError(f"plot_lr: the history has no 'lr' (it has {sorted(h)})")
    fig = _figure((6.4, 3.2))
    ax = fig.add_subplot()
    ax.step(ep[:len(lrs)], lrs, where="mid", color="#2ca02c", lw=2,
            marker="o" if len(lrs) <= 30 else None, ms=3)
    _integer_epochs(ax)
    pos = lrs[lrs > 0]
    if len(pos) and pos.max() / pos.min() > 10:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate")
    ax.grid(True, alpha=0.3)
    return _finish(fig, path)


def plot_confusion_matrix(cm, path=None, class_names=None, normalize=False, title=None):
    """The confusion matrix (rows: true class, columns: predicted), counts written in the cells;
    ``normalize=True`` shows each row as fractions of the class."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square matrix, got shape {cm.shape}")
    c = cm.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(c)]
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    size = min(3.5 + 0.45 * c, 12)
    fig = _figure((size + 1.2, size))
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(c), labels=names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(c), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix"))
    if c <= 30:
        top = shown.max() if shown.size else 0
        for i in range(c):
            for j in range(c):
                v = shown[i, j]
                txt = f"{v:.2f}" if normalize else str(int(v))
                ax.text(j, i, txt, ha="center", va="center", fontsize=8 if c > 12 else 9,
                        color="white" if top and v > 0.6 * top else "black")
    return _finish(fig, path)


def _first_weight(model):
    """The weight of the first layer with a 2-d (out, in) or 4-d (out, in, kh, kw) weight."""
    if isinstance(model, np.ndarray):
        return model, "weights"
    if hasattr(model, "data") and hasattr(model, "grad"):
        return np.asarray(model.data), "weights"
    for name, p in model.named_parameters():
        if name.endswith("weight") and p.data.ndim in (2, 4):
            return np.asarray(p.data), name
    raise ValueError(f"plot_first_layer: {type(model).__name__} has no layer with a 2-d or 4-d "
                     "weight")


def _grid(n):
    cols = int(math.ceil(math.sqrt(n)))
    return int(math.ceil(n / cols)), cols


def plot_first_layer(model, path=None, image_shape=None, max_units=64):
    """The first layer's weights as images.

    For a Linear first layer (an MLP on images) each hidden unit's weights, a row of (out, in),
    are reshaped to the input image: ``image_shape`` is (H, W) or (C, H, W); by default a square
    (in = H * H), or RGB (in = 3 * H * H). For a convolution (out, C, kh, kw) each filter is one
    tile (RGB when C = 3, else the mean over channels). Each tile is scaled to its own range;
    one-channel tiles are drawn blue (negative) - white (zero) - red (positive). At most
    ``max_units`` tiles, laid out in a square grid; ``fig.tiles`` holds them (n, C, h, w).
    """
    w, name = _first_weight(model)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 2:
        n_in = w.shape[1]
        if image_shape is None:
            s = int(round(math.sqrt(n_in)))
            s3 = int(round(math.sqrt(n_in / 3)))
            if s * s == n_in:
                image_shape = (s, s)
            elif 3 * s3 * s3 == n_in:
                image_shape = (3, s3, s3)
            else:
                raise ValueError(f"plot_first_layer: cannot guess an image shape for {n_in} inputs; "
                                 "pass image_shape=(H, W) or (C, H, W)")
        image_shape = tuple(int(n) for n in image_shape)
        if int(np.prod(image_shape)) != n_in:
            raise ValueError(f"plot_first_layer: image_shape {image_shape} has "
                             f"{int(np.prod(image_shape))} pixels, the layer {n_in} inputs")
        tiles = w.reshape((w.shape[0],) + image_shape)
        if tiles.ndim == 3:
            tiles = tiles[:, None]
        what = f"{name}: each hidden unit's weights reshaped to {'x'.join(map(str, image_shape))}"
    elif w.ndim == 4:
        tiles = w
        what = f"{name}: {w.shape[0]} filters of {w.shape[1]}x{w.shape[2]}x{w.shape[3]}"
    else:
        raise ValueError(f"plot_first_layer: expected a 2-d or 4-d weight, got shape {w.shape}")
    tiles = tiles[:max_units]
    n = len(tiles)
    rows, cols = _grid(n)
    h, w_ = tiles.shape[2], tiles.shape[3]
    pad = max(1, min(h, w_) // 6)
    H, W = rows * (h + pad) - pad, cols * (w_ + pad) - pad
    rgb = tiles.shape[1] == 3
    # One mosaic drawn by a single imshow: far faster than a grid of axes. Each tile is scaled
    # to its own range; the padding is NaN (drawn white) in the grey / blue-white-red mosaic.
    mosaic = np.ones((H, W, 3)) if rgb else np.full((H, W), np.nan)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        y0, x0 = r * (h + pad), c * (w_ + pad)
        if rgb:
            img = np.moveaxis(t, 0, -1)
            lo, hi = img.min(), img.max()
            mosaic[y0:y0 + h, x0:x0 + w_] = (img - lo) / (hi - lo) if hi > lo else 0.5
        else:
            img = t.mean(axis=0)
            m = np.abs(img).max()
            mosaic[y0:y0 + h, x0:x0 + w_] = img / m if m > 0 else 0.0
    scale = max(1.0, 40.0 / max(h, w_))          # about 40 points per tile at most
    fig = _figure((min(max(cols * w_ * scale / 72 + 0.4, 3.0), 11),
                   min(max(rows * h * scale / 72 + 0.7, 2.0), 11)))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(what, fontsize=9)
    if rgb:
        ax.imshow(mosaic, interpolation="nearest")
    else:
        from matplotlib import colormaps
        cmap = colormaps["bwr"].with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=-1, vmax=1,
                  interpolation="nearest")
    fig.tiles = tiles                            # what was drawn, tile by tile
    return _finish(fig, path)


def plot_lr_find(result, path=None):
    """Loss (smoothed) against learning rate from ``lr_find``, log lr axis, suggestion marked."""
    fig = _figure()
    ax = fig.add_subplot()
    lrs, losses = np.asarray(result.lrs), np.asarray(result.losses)
    ax.plot(lrs[:len(losses)], losses, color=TRAIN_COLOR, lw=2, label="smoothed loss")
    ax.set_xscale("log")
    s = result.suggestion
    ax.axvline(s, color="#d62728", ls="--", lw=1.5, label=f"suggested lr {s:.2g} ({result.method})")
    finite = losses[np.isfinite(losses)]
    if len(finite):
        lo, hi = finite.min(), finite[: max(1, len(finite) // 10)].max()
        ax.set_ylim(lo - 0.05 * (hi - lo + 1e-12), max(hi, lo) + 0.6 * (hi - lo + 1e-12))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss")
    ax.set_title("Learning-rate range test")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    return _finish(fig, path)


def plot_history(history, directory):
    """Write loss.png, accuracy.png (when there is accuracy) and lr.png (when there is lr) into
    ``directory``; returns {name: path}."""
    os.makedirs(directory, exist_ok=True)
    _, h = _history(history)
    out = {}
    if "loss" in h or "val_loss" in h:
        out["loss"] = os.path.join(directory, "loss.png")
        plot_loss(history, out["loss"])
    if "accuracy" in h or "val_accuracy" in h:
        out["accuracy"] = os.path.join(directory, "accuracy.png")
        plot_accuracy(history, out["accuracy"])
    if "lr" in h:
        out["lr"] = os.path.join(directory, "lr.png")
        plot_lr(history, out["lr"])
    return out


def plot_feature_maps(model, x, layer_name, path=None, max_maps=64, cmap="viridis"):
    """The feature maps of ONE input at the layer ``layer_name`` (a name from
    ``model.named_modules()``, e.g. ``'1'`` for the ReLU after the first convolution of a
    Sequential), one tile per channel, laid out in a square grid.

    ``x`` is one example (C, H, W) or a batch of one (1, C, H, W), an array or a Tensor. The model
    runs once in eval mode without gradients; its mode and the global RNG are left as they were.
    Each map is scaled to its own range (a dead map, all one value, is drawn flat). At most
    ``max_maps`` tiles; ``fig.maps`` holds the whole output (C, h, w) of the layer.

    >>> plot_feature_maps(model, X_test[0], "2", "feature_maps.png")
    """
    from .. import backend
    from ..autograd import Tensor, no_grad
    modules = dict(model.named_modules())
    if layer_name not in modules or layer_name == "":
        names = [n for n in modules if n]
        raise ValueError(f"plot_feature_maps: {type(model).__name__} has no layer {layer_name!r}; "
                         f"its layers are {', '.join(names) or '(none)'}")
    xa = np.asarray(x.data if isinstance(x, Tensor) else x)
    if xa.ndim == 3:
        xa = xa[None]
    if xa.ndim != 4 or xa.shape[0] != 1:
        raise ValueError(f"plot_feature_maps: expected one input (C, H, W) or (1, C, H, W), got "
                         f"shape {xa.shape}")
    p = next(iter(model.parameters()), None)
    if p is not None and xa.dtype != p.data.dtype:
        xa = xa.astype(p.data.dtype)
    seen = {}
    handle = modules[layer_name].register_forward_hook(
        lambda mod, args, out: seen.setdefault("out", np.array(out.data)))
    modes = [(m, m.training) for m in model.modules()]
    rng = backend.get_rng_state()
    model.eval()
    try:
        with no_grad():
            model(Tensor(xa))
    finally:
        handle.remove()
        for m, mode in modes:
            m.__dict__["training"] = mode
        backend.set_rng_state(rng)
    if "out" not in seen:
        raise ValueError(f"plot_feature_maps: layer {layer_name!r} was not called in the forward pass")
    out = seen["out"]
    kind = type(modules[layer_name]).__name__
    if out.ndim != 4:
        raise ValueError(f"plot_feature_maps: layer {layer_name!r} ({kind}) gives shape {out.shape}, "
                         f"not feature maps (1, C, H, W); pick a convolution, activation or pooling "
                         f"layer")
    maps = out[0].astype(np.float64)
    shown = maps[:max_maps]
    n, h, w = shown.shape
    rows, cols = _grid(n)
    pad = max(1, min(h, w) // 6)
    H, W = rows * (h + pad) - pad, cols * (w + pad) - pad
    mosaic = np.full((H, W), np.nan)            # NaN padding is drawn white
    for k, m in enumerate(shown):
        r, c = divmod(k, cols)
        lo, hi = m.min(), m.max()
        mosaic[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = \
            (m - lo) / (hi - lo) if hi > lo else 0.0
    scale = max(1.0, 40.0 / max(h, w))
    fig = _figure((min(max(cols * w * scale / 72 + 0.4, 3.0), 11),
                   min(max(rows * h * scale / 72 + 0.7, 2.0), 11)))
    ax = fig.add_subplot()
    ax.set_axis_off()
    more = f" (first {n} of {len(maps)})" if n < len(maps) else ""
    ax.set_title(f"layer {layer_name} ({kind}): {len(maps)} feature maps of {h}x{w}{more}",
                 fontsize=9)
    from matplotlib import colormaps
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=colormaps[cmap].with_extremes(bad="white"),
              vmin=0, vmax=1, interpolation="nearest")
    fig.maps = maps
    return _finish(fig, path)
