"""The course's worked transfer experiment: LeNet-5 pretrained on the digits 0-4 learns the digits
5-9 from a few labelled images, with each transfer regime of ``chainrule.applications.transfer``
(``chainrule transfer`` on the command line runs it).

>>> res = digits_transfer_experiment(seeds=5, shots=10)
>>> print(res.table()); res.plot("transfer.png")
"""
import numpy as np

from .. import nn
from ..applications.transfer import linear_probe, setup_transfer

__all__ = ["digits_transfer_experiment", "TransferResults", "METHODS", "conv_stage", "DIGITS_MODEL"]


METHODS = {
    "scratch": "(a) from scratch",
    "linear": "(b) linear classifier, frozen top-layer features",
    "linear_conv": "(b') linear classifier, frozen conv features",
    "finetune": "(c) fine-tune all, pretrained lr x0.1",
    "finetune_full": "(c') fine-tune all, same lr",
    "finetune_last": "(d) fine-tune the last 2 layers",
}


class TransferResults:
    """Accuracies of the digits transfer experiment: ``acc[method]`` is a list (one per seed);
    ``mean(method)``, ``std(method)``, ``table()`` (text) and ``plot(path)`` (a bar chart with one
    standard deviation as error bars). ``source_acc``: the pretrained nets' accuracy on digits 0-4."""

    def __init__(self, methods, seeds, shots):
        self.methods, self.seeds, self.shots = list(methods), list(seeds), shots
        self.acc = {m: [] for m in self.methods}
        self.source_acc = []
        self.n_test = 0
        self.model_config = None

    def mean(self, method):
        return float(np.mean(self.acc[method]))

    def std(self, method):
        return float(np.std(self.acc[method]))

    def table(self):
        width = max(len(METHODS.get(m, m)) for m in self.methods)
        lines = [f"transfer digits 0-4 -> 5-9, {self.shots} labelled images per class, "
                 f"{len(self.seeds)} seeds, {self.n_test} test images",
                 f"{'method':<{width}}  {'accuracy':>8}  {'std':>6}  per seed",
                 "-" * (width + 20 + 7 * len(self.seeds))]
        for m in self.methods:
            per = " ".join(f"{a:.3f}" for a in self.acc[m])
            lines.append(f"{METHODS.get(m, m):<{width}}  {self.mean(m):>8.3f}  {self.std(m):>6.3f}  {per}")
        if self.source_acc:
            lines.append(f"(pretrained nets on digits 0-4: {np.mean(self.source_acc):.3f})")
        return "\n".join(lines)

    def to_dict(self):
        return {"seeds": self.seeds, "shots": self.shots, "n_test": self.n_test,
                "accuracy": {m: list(map(float, v)) for m, v in self.acc.items()},
                "mean": {m: self.mean(m) for m in self.methods},
                "std": {m: self.std(m) for m in self.methods},
                "source_accuracy": list(map(float, self.source_acc))}

    def plot(self, path):
        """A bar chart of the mean accuracies (error bars: one standard deviation) as a PNG."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import textwrap
        labels = [textwrap.fill(METHODS.get(m, m), 16) for m in self.methods]
        means = [self.mean(m) for m in self.methods]
        fig, ax = plt.subplots(figsize=(1.4 * len(means) + 1.5, 4.2))
        colours = ["#999999", "#4477aa", "#66ccee", "#228833", "#ccbb44", "#ee6677", "#aa3377"]
        bars = ax.bar(range(len(means)), means, yerr=[self.std(m) for m in self.methods],
                      capsize=4, color=[colours[i % len(colours)] for i in range(len(means))])
        for b, v, m in zip(bars, means, self.methods):
            ax.text(b.get_x() + b.get_width() / 2, v + self.std(m) + 0.02, f"{v:.3f}",
                    ha="center", fontsize=9)
        ax.set_xticks(range(len(means)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("test accuracy (digits 5-9)")
        ax.set_title(f"Transfer from digits 0-4, {self.shots} labels per class, "
                     f"mean of {len(self.seeds)} seeds")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def _accuracy(model, X, y):
    from ..train import predict
    return float((predict(model, X).argmax(1) == y).mean())


def _fit(model, opt, X, y, epochs, batch_size, seed):
    from ..train import Trainer
    Trainer(model, opt).fit((X, y), epochs=epochs, batch_size=batch_size, seed=seed, progress=False)
    return model


def conv_stage(model):
    """The name of the model's first Flatten layer: the end of its convolutional stage."""
    for n, m in model.named_modules():
        if isinstance(m, nn.Flatten):
            return n
    raise ValueError(f"{type(model).__name__} has no Flatten layer")


DIGITS_MODEL = {"kind": "lenet5", "in_channels": 1, "num_classes": 5, "input_size": 8}


def digits_transfer_experiment(seeds=5, shots=10, pretrain_epochs=20, epochs=60, lr=1e-3,
                               pretrained_lr_scale=0.1, methods=tuple(METHODS), log=print,
                               return_pretrained=False):
    """Pretrain LeNet-5 on the digits 0-4 (the training split), then learn the digits 5-9 from only
    ``shots`` labelled images per class with each of ``methods``, and test on the 5-9 images of the
    test split:

    - 'scratch': a fresh LeNet-5 trained on the few images;
    - 'linear': a linear classifier on the pretrained net's frozen top-layer (penultimate) features;
    - 'linear_conv': the same on the frozen features of the convolutional stage (the course's
      "try linear classifiers from different stages");
    - 'finetune': a new head, every layer fine-tuned, the pretrained ones at lr * pretrained_lr_scale
      (optimizer parameter groups);
    - 'finetune_full': the same with one learning rate for all;
    - 'finetune_last': a new head, only the last two layers with parameters fine-tuned.

    Every method gets the same images and ``epochs`` passes (Adam, batches of 10). ``seeds``: a
    count or a list; each seed pretrains its own net and draws its own few images. Returns a
    ``TransferResults`` (and the pretrained net of the first seed with ``return_pretrained``).
    """
    from .. import backend, optim
    from ..data.datasets import digits_split
    from ..models import lenet5
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else list(seeds)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"digits_transfer_experiment: unknown method {m!r}; choose from "
                             f"{list(METHODS)}")
    cfg = {k: v for k, v in DIGITS_MODEL.items() if k != "kind"}
    X_tr, y_tr, X_te, y_te = digits_split(test_fraction=0.2, seed=0, images=True)
    src, tgt = y_tr < 5, y_tr >= 5
    Xs, ys = X_tr[src], y_tr[src]
    Xs_te, ys_te = X_te[y_te < 5], y_te[y_te < 5]
    Xt_pool, yt_pool = X_tr[tgt], y_tr[tgt] - 5
    Xt_te, yt_te = X_te[y_te >= 5], y_te[y_te >= 5] - 5
    if shots > min(np.bincount(yt_pool)):
        raise ValueError(f"digits_transfer_experiment: shots must be at most "
                         f"{min(np.bincount(yt_pool))} (images per class available), got {shots}")
    res = TransferResults(methods, seeds, shots)
    res.n_test = len(yt_te)
    res.model_config = dict(DIGITS_MODEL)
    first_pretrained = None
    bs = min(10, 5 * shots)
    for seed in seeds:
        backend.manual_seed(seed)
        base = lenet5(**cfg)
        _fit(base, optim.Adam(base.parameters(), lr=lr), Xs, ys, pretrain_epochs, 32, seed)
        res.source_acc.append(_accuracy(base, Xs_te, ys_te))
        if first_pretrained is None:
            first_pretrained = base
        rng = np.random.default_rng(1000 + seed)
        pick = np.concatenate([rng.choice(np.flatnonzero(yt_pool == c), shots, replace=False)
                               for c in range(5)])
        Xf, yf = Xt_pool[pick], yt_pool[pick]

        def pretrained_copy():
            m = lenet5(**cfg)
            m.load_state_dict(base.state_dict())
            return m

        for method in methods:
            backend.manual_seed(10_000 + seed)
            if method == "scratch":
                m = lenet5(**cfg)
                _fit(m, optim.Adam(m.parameters(), lr=lr), Xf, yf, epochs, bs, seed)
            elif method in ("linear", "linear_conv"):
                net = pretrained_copy()
                layer = conv_stage(net) if method == "linear_conv" else None
                m = linear_probe(net, Xf, yf, num_classes=5, layer=layer, epochs=epochs, lr=1e-2,
                                 batch_size=bs, seed=seed)
            else:
                regime = "last" if method == "finetune_last" else "all"
                scale = 1.0 if method == "finetune_full" else pretrained_lr_scale
                m, opt = setup_transfer(pretrained_copy(), 5, regime, lr=lr, last_n=2,
                                        pretrained_lr_scale=scale)
                _fit(m, opt, Xf, yf, epochs, bs, seed)
            res.acc[method].append(_accuracy(m, Xt_te, yt_te))
        if log:
            log(f"seed {seed}: pretrained on 0-4 {res.source_acc[-1]:.3f}; "
                + ", ".join(f"{m} {res.acc[m][-1]:.3f}" for m in methods))
    return (res, first_pretrained) if return_pretrained else res
