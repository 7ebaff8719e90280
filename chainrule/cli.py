"""The ``chainrule`` command.

    chainrule train                       # an MLP on scikit-learn's digits, prints test_accuracy=...
    chainrule train --dataset mnist1d --hidden 256,256 --epochs 40
    chainrule train --dataset data.csv --label-column species --save model.npz
    chainrule --help / chainrule train --help
"""
import argparse
import sys
import time

import numpy as np

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")


def _hidden(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden expects sizes like 256 or 256,128, got {text!r}")
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def _fraction(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text}")
    return v


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return v


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not for on/off flags ('--no-progress (default: True)' reads backwards) or
    options whose default is None (their help says what happens)."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser():
    p = argparse.ArgumentParser(
        prog="chainrule",
        description="chainrule: deep learning from first principles on NumPy. "
                    "Train networks from the command line, or import chainrule in Python.",
        epilog="Run 'chainrule train' for a first network: an MLP on handwritten digits "
               "(a few seconds). See 'chainrule train --help' for its options.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train", help="train a network and report its test accuracy",
        description="Train a multi-layer perceptron with mini-batch gradient descent, validating "
                    "each epoch, then print the accuracy on a held-out test split as "
                    "'test_accuracy=<fraction>'. With no options: digits (8x8 images, 10 "
                    "classes), 80/20 train/test split, seed 0.",
        formatter_class=_HelpFormatter)
    d = t.add_argument_group("data")
    d.add_argument("--dataset", default="digits",
                   help="'digits' (scikit-learn), 'mnist1d' (generated locally), or the path of a "
                        "CSV file with numeric feature columns and a label column")
    d.add_argument("--label-column", default="label",
                   help="CSV only: the label column's name, or its index (-1 = last)")
    d.add_argument("--test-fraction", type=_fraction, default=0.2,
                   help="share of the data held out for the final test (digits and CSV)")
    d.add_argument("--val-fraction", type=_fraction, default=0.1,
                   help="share of the training data used for per-epoch validation")
    d.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="do not scale features to zero mean and unit variance (statistics of the "
                        "training split)")
    m = t.add_argument_group("model")
    m.add_argument("--hidden", type=_hidden, default="256",   # a string default goes through type
                   help="hidden layer sizes, comma separated (e.g. 256,128)")
    m.add_argument("--activation", default="relu", choices=["relu", "tanh", "sigmoid", "leaky_relu"],
                   help="the hidden layers' nonlinearity")
    m.add_argument("--dropout", type=float, default=0.0, help="dropout probability after each hidden layer")
    o = t.add_argument_group("optimisation")
    o.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="the update rule")
    o.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.1 for sgd, 0.001 for adam/adamw/rmsprop)")
    o.add_argument("--momentum", type=float, default=0.9, help="SGD/RMSprop momentum")
    o.add_argument("--weight-decay", type=float, default=1e-4, help="L2 regularisation strength")
    o.add_argument("--epochs", type=_positive_int, default=50, help="passes over the training data")
    o.add_argument("--batch-size", type=_positive_int, default=32, help="examples per gradient step")
    r = t.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0, help="seed for initialisation, splits and shuffling")
    r.add_argument("--save", metavar="PATH", help="write the trained model (weights and settings) here")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    t.set_defaults(func=cmd_train)
    return p


def load_data(args):
    """(X_train, y_train, X_test, y_test, n_classes, name) for the --dataset choice."""
    from .data import datasets, train_val_split
    if args.dataset == "digits":
        Xtr, ytr, Xte, yte = datasets.digits_split(test_fraction=args.test_fraction, seed=args.seed)
    elif args.dataset == "mnist1d":
        Xtr, ytr, Xte, yte = datasets.mnist1d()
    else:
        label = args.label_column
        label = int(label) if label.lstrip("-").isdigit() else label
        csv = datasets.load_csv(args.dataset, label_column=label, label_map="index")
        X, y = csv.X, csv.y.astype(np.int64)
        Xtr, Xte, ytr, yte = train_val_split(X, y, val_fraction=args.test_fraction, seed=args.seed,
                                             stratify=y)
    n_classes = int(max(ytr.max(), yte.max())) + 1
    return Xtr, ytr, Xte, yte, n_classes


def cmd_train(args):
    import chainrule as cr
    from . import optim
    from .data import train_val_split
    from .models import mlp
    from .train import Trainer

    cr.manual_seed(args.seed)
    Xtr, ytr, Xte, yte, n_classes = load_data(args)
    Xtr, Xval, ytr, yval = train_val_split(Xtr, ytr, val_fraction=args.val_fraction,
                                           seed=args.seed, stratify=ytr)
    mean = std = None
    if args.standardize:
        mean, std = Xtr.mean(axis=0), Xtr.std(axis=0) + 1e-2
        Xtr, Xval, Xte = ((X - mean) / std for X in (Xtr, Xval, Xte))
    Xtr, Xval, Xte = (X.astype(np.float32).reshape(len(X), -1) for X in (Xtr, Xval, Xte))

    model = mlp(Xtr.shape[1], args.hidden, n_classes, args.activation, args.dropout)
    lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else 1e-3)
    params = model.parameters()
    if args.optimizer == "sgd":
        opt = optim.SGD(params, lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    elif args.optimizer == "adam":
        opt = optim.Adam(params, lr=lr, weight_decay=args.weight_decay)
    elif args.optimizer == "adamw":
        opt = optim.AdamW(params, lr=lr, weight_decay=args.weight_decay)
    else:
        opt = optim.RMSprop(params, lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    print(f"dataset={args.dataset} train={len(Xtr)} val={len(Xval)} test={len(Xte)} "
          f"features={Xtr.shape[1]} classes={n_classes}")
    print(model)
    print(f"parameters={model.num_parameters()} optimizer={args.optimizer} lr={lr} "
          f"epochs={args.epochs} batch_size={args.batch_size}")
    trainer = Trainer(model, opt)
    t0 = time.perf_counter()
    history = trainer.fit((Xtr, ytr), epochs=args.epochs, val_data=(Xval, yval),
                          batch_size=args.batch_size, seed=args.seed, progress=args.progress)
    elapsed = time.perf_counter() - t0
    res = trainer.evaluate((Xte, yte))
    print(f"trained {len(history.epoch)} epochs in {elapsed:.1f}s; final train loss "
          f"{history['loss'][-1]:.4f}, val accuracy {history['val_accuracy'][-1]:.4f}")
    if args.save:
        config = {"kind": "mlp", "in_features": int(Xtr.shape[1]), "hidden": list(args.hidden),
                  "out_features": n_classes, "activation": args.activation, "dropout": args.dropout}
        state = {"format": "chainrule-model", "config": config, "model": model.state_dict(),
                 "optimizer": opt.state_dict(), "history": history.history}
        if mean is not None:
            state["standardize"] = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
        cr.save(state, args.save)
        print(f"saved model to {args.save}")
    print(f"test_loss={res['loss']:.4f}")
    print(f"test_accuracy={res['accuracy']:.4f}")
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__
        print(f"chainrule {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    # OSError covers a missing file, a directory or an unreadable file given as --dataset/--save.
    except (ValueError, OSError, TypeError, KeyError, FloatingPointError, ImportError) as e:
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
