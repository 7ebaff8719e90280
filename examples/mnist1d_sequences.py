"""MNIST-1D read as a sequence: a GRU over the 40 samples of each signal, and a time-delay neural
network (TDNN: Conv1d layers over time with dilations 1, 2, 4, 8, so the top layer sees 31 steps,
then the average over time). Same data, same optimiser (Adam, cosine decay, clipping), a few
minutes of CPU at most each.

    python examples/mnist1d_sequences.py               # both
    python examples/mnist1d_sequences.py gru           # or tdnn
"""
import sys
import time

import chainrule as cr
from chainrule import optim
from chainrule.data.datasets import mnist1d
from chainrule.models.sequence import TDNN, GRUClassifier
from chainrule.train import Trainer


def build(kind, hidden_size=128, channels=64):
    if kind == "gru":
        return GRUClassifier(input_size=1, hidden_size=hidden_size, num_classes=10)
    if kind == "tdnn":
        return TDNN(in_channels=1, num_classes=10, channels=channels, dilations=(1, 2, 4, 8))
    raise ValueError(f"unknown model {kind!r}: 'gru' or 'tdnn'")


def train(kind, epochs=None, lr=3e-3, batch_size=64, seed=0, data=None, progress=False,
          verbose=True, **kw):
    """Returns {'test_accuracy', 'seconds', 'parameters', 'history'}."""
    X_tr, y_tr, X_te, y_te = data if data is not None else mnist1d()
    epochs = epochs or 40
    cr.manual_seed(seed)
    model = build(kind, **kw)
    opt = optim.Adam(model.parameters(), lr=lr)
    trainer = Trainer(model, opt, clip_grad_norm=1.0,
                      scheduler=optim.CosineAnnealingLR(opt, T_max=epochs, eta_min=lr / 50))
    t0 = time.perf_counter()
    history = trainer.fit((X_tr, y_tr), epochs=epochs, batch_size=batch_size, seed=seed,
                          progress=progress)
    took = time.perf_counter() - t0
    acc = trainer.evaluate((X_te, y_te))["accuracy"]
    if verbose:
        print(f"{kind:5s} {model.num_parameters():7d} parameters  {epochs} epochs  {took:6.1f} s  "
              f"train accuracy {history['accuracy'][-1]:.4f}  test_accuracy={acc:.4f}", flush=True)
    return {"test_accuracy": acc, "seconds": took, "parameters": model.num_parameters(),
            "history": history}


def main(kinds=("gru", "tdnn"), **kw):
    data = mnist1d()
    print(f"mnist1d: {len(data[0])} training and {len(data[2])} test signals of {data[0].shape[1]} steps")
    return {k: train(k, data=data, **kw) for k in kinds}


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("gru", "tdnn"))
