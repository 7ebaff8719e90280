"""The ``chainrule`` command.

    chainrule train                       # an MLP on scikit-learn's digits, prints test_accuracy=...
    chainrule train --dataset mnist1d --hidden 256,256 --epochs 40
    chainrule train --dataset data.csv --label-column species --save model.npz
    chainrule train --model lenet --dataset digits     # a ConvNet (the digits recipe); alexnet, vgg
    chainrule train --config run.toml --out runs/a     # run directory: config, history, checkpoints, report
    chainrule train --resume runs/a                    # continue an interrupted run, bit for bit
    chainrule evaluate runs/a | predict runs/a --input new.csv | summary | report runs/a | lr-find
    chainrule --help / chainrule train --help
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from . import cli_convnets as _conv
from .cli_args import fraction as _fraction
from .cli_args import positive_float as _positive_float
from .cli_args import positive_int as _positive_int

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
LR_SCHEDULES = ("none", "step", "cosine", "plateau")
# Settings of `chainrule train` that are not part of a run's configuration file.
_NOT_CONFIG = {"config", "func", "command", "version", "resume", "overwrite"}


def _hidden(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden expects sizes like 256 or 256,128, got {text!r}")
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def _channels(text):
    try:
        return _conv.parse_channels(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not for on/off flags ('--no-progress (default: True)' reads backwards) or
    options whose default is None (their help says what happens)."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


# -- shared option groups ---------------------------------------------------------------------------

def _add_data_args(p):
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="digits",
                   help="'digits' (scikit-learn), 'mnist1d' (generated locally), 'mnist', "
                        "'fashion-mnist' (IDX files) or 'cifar10' (binary batches) from --data-dir, "
                        "a folder of images with one sub-folder per class, or the path of a CSV "
                        "file with numeric feature columns and a label column")
    d.add_argument("--data-dir", metavar="DIR",
                   help="mnist / fashion-mnist / cifar10: the folder holding the downloaded files")
    d.add_argument("--image-size", type=_positive_int, default=32,
                   help="image folders: resize every image to this square size")
    d.add_argument("--grayscale", action="store_true",
                   help="image folders: read the images as one grey channel instead of RGB")
    d.add_argument("--label-column", default="label",
                   help="CSV only: the label column's name, or its index (-1 = last)")
    d.add_argument("--test-fraction", type=_fraction, default=0.2,
                   help="share of the data held out for the final test (digits and CSV)")
    d.add_argument("--val-fraction", type=_fraction, default=0.1,
                   help="share of the training data used for per-epoch validation")
    d.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="do not scale features to zero mean and unit variance (ConvNets: do not "
                        "subtract the per-channel mean; statistics of the training split)")
    return d


def _add_model_args(p):
    m = p.add_argument_group("model")
    m.add_argument("--model", default="mlp", choices=_conv.MODELS,
                   help="mlp, or a ConvNet on images: lenet (LeNet-5), alexnet (AlexNet-style), "
                        "vgg (VGG-style); a ConvNet brings its own defaults (lenet on digits: the "
                        "recipe of examples/convnet_digits.py), which options given here override")
    m.add_argument("--channels", type=_channels, default=None, metavar="SIZES",
                   help="ConvNets: convolution widths; lenet: two (default 6,16; on digits "
                        "64,128), alexnet: one (default 32), vgg: widths with M for a max pool "
                        "(default 32,32,M,64,64,M)")
    m.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="lenet / vgg: batch norm after each convolution (default: on for lenet on "
                        "digits, else off)")
    m.add_argument("--hidden", type=_hidden, default="256",   # a string default goes through type
                   help="hidden layer sizes, comma separated (e.g. 256,128); lenet: its fully "
                        "connected layers (default 120,84), vgg: one size (default 256)")
    m.add_argument("--activation", default="relu", choices=["relu", "tanh", "sigmoid", "leaky_relu"],
                   help="the hidden layers' nonlinearity")
    m.add_argument("--dropout", type=float, default=0.0, help="dropout probability after each hidden layer")


def _add_optim_args(p, epochs=True):
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="the update rule")
    o.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.1 for sgd, 0.001 for adam/adamw/rmsprop)")
    o.add_argument("--momentum", type=float, default=0.9, help="SGD/RMSprop momentum")
    o.add_argument("--weight-decay", type=float, default=1e-4, help="L2 regularisation strength")
    if epochs:
        o.add_argument("--epochs", type=_positive_int, default=50,
                       help="passes over the training data (with --resume: the run's total)")
    o.add_argument("--batch-size", type=_positive_int, default=32, help="examples per gradient step")
    return o


def build_parser():
    p = argparse.ArgumentParser(
        prog="chainrule",
        description="chainrule: deep learning from first principles on NumPy. "
                    "Train networks from the command line, or import chainrule in Python.",
        epilog="Run 'chainrule train' for a first network: an MLP on handwritten digits "
               "(a few seconds). See 'chainrule train --help' for its options.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="threads for NumPy's matrix products (default: the BLAS's own choice); "
                        "1 is much faster on a machine shared with other busy processes")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train", help="train a network and report its test accuracy",
        description="Train a multi-layer perceptron (or a ConvNet: --model lenet, alexnet or vgg) "
                    "with mini-batch gradient descent, validating "
                    "each epoch, then print the accuracy on a held-out test split as "
                    "'test_accuracy=<fraction>'. With no options: digits (8x8 images, 10 "
                    "classes), 80/20 train/test split, seed 0. Settings may come from a TOML file "
                    "(--config; its keys are the option names, e.g. epochs = 20, hidden = [256, 128], "
                    "batch_size = 64); options given on the command line override it.",
        formatter_class=_HelpFormatter)
    d = _add_data_args(t)
    d.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False,
                   help="ConvNets: live augmentation, new each epoch: random shifts of up to 1/8 "
                        "of the image side (1 pixel on digits), plus left-right flips for "
                        "cifar10 and image folders (default: on for lenet on digits, else off)")
    _add_model_args(t)
    o = _add_optim_args(t)
    o.add_argument("--lr-schedule", default="none", choices=LR_SCHEDULES,
                   help="learning-rate schedule, stepped each epoch: step (x0.1 at 1/2 and 3/4 of "
                        "the epochs), cosine (to 0 at the last epoch), plateau (x0.5 when the "
                        "validation loss stalls for 3 epochs)")
    o.add_argument("--early-stopping", type=_positive_int, default=None, metavar="PATIENCE",
                   help="stop when the validation loss has not improved for PATIENCE epochs, and "
                        "keep the best epoch's weights")
    r = t.add_argument_group("run")
    r.add_argument("--config", metavar="TOML",
                   help="read settings from this TOML file (unknown keys are an error)")
    r.add_argument("--seed", type=int, default=0, help="seed for initialisation, splits and shuffling")
    r.add_argument("--out", metavar="RUN_DIR",
                   help="write the run here: config.json, history.csv, checkpoints/last.ckpt and "
                        "best.ckpt (each epoch, atomically), metrics.json, plots/ and report.html")
    r.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue the run saved in this checkpoint (or RUN_DIR, meaning "
                        "RUN_DIR/checkpoints/last.ckpt) up to --epochs in all, with its settings "
                        "unless given again; the result equals the uninterrupted run")
    r.add_argument("--overwrite", action="store_true",
                   help="allow --out to replace a run directory that already holds a run")
    r.add_argument("--save", metavar="PATH", help="write the trained model (weights and settings) here")
    r.add_argument("--detect-anomaly", action="store_true",
                   help="stop at the first op that produces NaN or inf, naming it (slower)")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "evaluate", help="evaluate a trained model on its test split or on a CSV file",
        description="Load a checkpoint (RUN_DIR means RUN_DIR/checkpoints/best.ckpt, else last.ckpt) "
                    "and evaluate it: the test split of the run's dataset, rebuilt from the saved "
                    "settings, or a CSV file given with --dataset. Prints the per-class report, "
                    "the confusion matrix, then test_loss= and test_accuracy=.",
        formatter_class=_HelpFormatter)
    e.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    e.add_argument("--dataset", help="evaluate on all rows of this CSV file (or another dataset "
                                     "name) instead of the run's test split")
    e.add_argument("--label-column", help="CSV only: the label column (default: the run's)")
    e.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="which checkpoint of a run directory")
    e.add_argument("--batch-size", type=_positive_int, default=256, help="examples per batch")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser(
        "predict", help="predict classes for the rows of a CSV file or the images of a folder",
        description="Load a checkpoint (or RUN_DIR) and predict: one output row per input row of "
                    "a CSV file (its label column, if present, is ignored) or per image in a folder "
                    "(searched recursively; resized to the model's input image). Writes a CSV "
                    "(id, class_index, class, confidence, one probability per class) to --output, "
                    "or prints it.",
        formatter_class=_HelpFormatter)
    pr.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    pr.add_argument("--input", required=True, metavar="CSV_OR_FOLDER",
                    help="a CSV file of feature columns, or a folder of images")
    pr.add_argument("--output", metavar="CSV", help="write the predictions here (default: print)")
    pr.add_argument("--checkpoint", choices=["best", "last"], default="best",
                    help="which checkpoint of a run directory")
    pr.set_defaults(func=cmd_predict)

    s = sub.add_parser(
        "summary", help="print a model's layers, output shapes and parameter counts",
        description="Summarise the model of a checkpoint (or RUN_DIR), or, without one, the model "
                    "'chainrule train' would build with the same model options.",
        formatter_class=_HelpFormatter)
    s.add_argument("target", nargs="?", metavar="RUN_DIR_OR_CHECKPOINT")
    s.add_argument("--dataset", default="digits", help="the dataset that sets input and output sizes")
    s.add_argument("--label-column", default="label", help="CSV only: the label column")
    s.add_argument("--data-dir", metavar="DIR", help="mnist / fashion-mnist / cifar10: their folder")
    _add_model_args(s)
    s.set_defaults(func=cmd_summary, test_fraction=0.2, val_fraction=0.1, seed=0, standardize=True,
                   image_size=32, grayscale=False)

    rp = sub.add_parser(
        "report", help="(re)build the HTML report of a run directory",
        description="Write RUN_DIR/report.html from what 'chainrule train --out RUN_DIR' left "
                    "there: configuration, model summary, final metrics, plots, per-epoch table. "
                    "The file is self-contained (plots embedded) and opens offline.",
        formatter_class=_HelpFormatter)
    rp.add_argument("run_dir", metavar="RUN_DIR")
    rp.add_argument("--output", metavar="HTML", help="write the report here instead")
    rp.set_defaults(func=cmd_report)

    lf = sub.add_parser(
        "lr-find", help="find a learning rate with the range test",
        description="Train the model 'chainrule train' would build for --num-steps steps while "
                    "the learning rate grows exponentially from --start-lr to --end-lr; print the "
                    "loss curve and a suggested learning rate (where the smoothed loss falls "
                    "fastest) as the last line 'suggested_lr=<value>'.",
        formatter_class=_HelpFormatter)
    _add_data_args(lf)
    _add_model_args(lf)
    _add_optim_args(lf, epochs=False)
    g = lf.add_argument_group("range test")
    g.add_argument("--start-lr", type=_positive_float, default=1e-5, help="first learning rate")
    g.add_argument("--end-lr", type=_positive_float, default=10.0, help="last learning rate")
    g.add_argument("--num-steps", type=_positive_int, default=100, help="training steps")
    g.add_argument("--plot", metavar="PNG", help="save the loss-vs-lr plot here")
    g.add_argument("--seed", type=int, default=0, help="seed for initialisation, splits and shuffling")
    lf.set_defaults(func=cmd_lr_find)

    from . import cli_seq               # train-char, generate, sentiment, seq2seq, mnist1d-seq, ...
    cli_seq.add_commands(sub)
    from . import cli_vision            # similar, transfer, train-captioner, caption
    cli_vision.add_commands(sub)
    return p


# -- data, model, optimizer -------------------------------------------------------------------------

def load_data(args):
    """(X_train, y_train, X_test, y_test, n_classes) for the --dataset choice."""
    d = _load_raw(args)
    return d["Xtr"], d["ytr"], d["Xte"], d["yte"], d["n_classes"]


def _load_raw(args):
    """The dataset split into train and test, with its class names and image shape."""
    from .data import datasets, train_val_split
    image_shape, classes = None, None
    if args.dataset == "digits":
        Xtr, ytr, Xte, yte = datasets.digits_split(test_fraction=args.test_fraction, seed=args.seed)
        image_shape = [1, 8, 8]
    elif args.dataset == "mnist1d":
        Xtr, ytr, Xte, yte = datasets.mnist1d()
    elif (images := _conv.load_images(args)) is not None:      # mnist, cifar10, image folders
        return images
    else:
        label = args.label_column
        label = int(label) if label.lstrip("-").isdigit() else label
        csv = datasets.load_csv(args.dataset, label_column=label, label_map="index")
        X, y = csv.X, csv.y.astype(np.int64)
        classes = [str(c) for c in csv.classes] if csv.classes is not None else None
        Xtr, Xte, ytr, yte = train_val_split(X, y, val_fraction=args.test_fraction, seed=args.seed,
                                             stratify=y)
    n_classes = int(max(ytr.max(), yte.max())) + 1
    if classes is None:
        classes = [str(i) for i in range(n_classes)]
    return {"Xtr": Xtr, "ytr": ytr, "Xte": Xte, "yte": yte, "n_classes": n_classes,
            "classes": classes, "image_shape": image_shape}


def prepare_data(args):
    """Train / validation / test splits, standardised with the training split's statistics and
    flattened to (N, features) float32, plus what describes them (classes, image_shape, mean,
    std). The same settings always give the same arrays."""
    from .data import train_val_split
    d = _load_raw(args)
    Xtr, Xval, ytr, yval = train_val_split(d["Xtr"], d["ytr"], val_fraction=args.val_fraction,
                                           seed=args.seed, stratify=d["ytr"])
    Xte = d["Xte"]
    d["channel_mean"] = None
    if _conv.is_conv(getattr(args, "model", "mlp")):
        # ConvNets keep images (N, C, H, W), centred with the training split's per-channel mean
        if not d["image_shape"]:
            raise ValueError(f"--model {args.model} needs images: --dataset digits, mnist, "
                             f"fashion-mnist, cifar10 or a folder of images, got {args.dataset!r}")
        shape = d["image_shape"]
        cm = _conv.channel_mean(Xtr.reshape([len(Xtr)] + list(shape))) if args.standardize else None
        Xtr, Xval, Xte = (_conv.subtract_mean(X, cm, shape) for X in (Xtr, Xval, Xte))
        d.update(Xtr=Xtr, ytr=ytr, Xval=Xval, yval=yval, Xte=Xte, mean=None, std=None,
                 channel_mean=cm)
        return d
    Xtr, Xval, Xte = (X.reshape(len(X), -1) for X in (Xtr, Xval, Xte))
    mean = std = None
    if args.standardize:
        mean, std = Xtr.mean(axis=0), Xtr.std(axis=0) + 1e-2
        Xtr, Xval, Xte = ((X - mean) / std for X in (Xtr, Xval, Xte))
    Xtr, Xval, Xte = (X.astype(np.float32).reshape(len(X), -1) for X in (Xtr, Xval, Xte))
    d.update(Xtr=Xtr, ytr=ytr, Xval=Xval, yval=yval, Xte=Xte, mean=mean, std=std)
    return d


def model_config(args, in_features, n_classes, image_shape=None):
    """The settings that rebuild the model (stored in checkpoints as 'config'); ConvNets
    (--model lenet/alexnet/vgg) need ``image_shape`` (C, H, W) and store their constructor's name
    and keyword arguments (chainrule.cli_convnets.conv_config)."""
    if _conv.is_conv(getattr(args, "model", "mlp")):
        return _conv.conv_config(args, image_shape, n_classes)
    if getattr(args, "channels", None) or getattr(args, "batch_norm", None):
        raise ValueError("--channels and --batch-norm are ConvNet options (--model lenet, alexnet "
                         "or vgg)")
    return {"kind": "mlp", "in_features": int(in_features), "hidden": [int(h) for h in args.hidden],
            "out_features": int(n_classes), "activation": args.activation,
            "dropout": float(args.dropout)}


def build_model(config):
    """The model for a ``model_config`` dict (the one place models are built from settings)."""
    from .models import mlp
    kind = config.get("kind", "mlp")
    if kind == "mlp":
        return mlp(int(config["in_features"]), tuple(int(h) for h in config["hidden"]),
                   int(config["out_features"]), config.get("activation", "relu"),
                   float(config.get("dropout", 0.0)))
    model = _conv.build_conv(config)
    if model is not None:
        return model
    raise ValueError(f"unknown model kind {kind!r} in the checkpoint's config")


def model_input_shape(config):
    """The shape of one input example, without the batch dimension."""
    if config.get("kind", "mlp") in _conv.CONV_MODELS.values():
        return _conv.conv_input_shape(config)
    return (int(config["in_features"]),)


def build_optimizer(args, model):
    from . import optim
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
    return opt, lr


def build_scheduler(args, opt):
    from . import optim
    kind = getattr(args, "lr_schedule", "none")
    if kind == "step":
        return optim.MultiStepLR(opt, milestones=sorted({max(1, args.epochs // 2),
                                                         max(2, 3 * args.epochs // 4)}), gamma=0.1)
    if kind == "cosine":
        return optim.CosineAnnealingLR(opt, T_max=args.epochs)
    if kind == "plateau":
        return optim.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    return None


# -- TOML configuration and resume: layers of defaults under the command line ----------------------

def _train_actions(parser):
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"]
    return train, {a.dest: a for a in train._actions
                   if a.dest not in _NOT_CONFIG and a.dest != "help"}


def _config_value(key, value, action, where):
    if isinstance(value, dict):
        raise ValueError(f"{where}: {key!r} is a table; expected a value")
    if action.nargs == 0:                                  # on/off flags
        if not isinstance(value, bool):
            raise ValueError(f"{where}: {key!r} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"{where}: {key!r} must be a {'list of sizes' if key == 'hidden' else 'value'}, "
                         f"got {str(value).lower()}")
    if key in ("hidden", "channels") and isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if isinstance(value, list):
        raise ValueError(f"{where}: {key!r} takes one value, got a list")
    try:
        v = action.type(str(value)) if action.type else str(value)
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise ValueError(f"{where}: {key!r}: {e}") from None
    if action.choices is not None and v not in action.choices:
        raise ValueError(f"{where}: {key!r} must be one of {', '.join(map(str, action.choices))}, "
                         f"got {value!r}")
    return v


def read_config(path, parser=None):
    """A TOML run configuration as {option dest: value}, checked like the command line: unknown
    keys are an error that lists the valid ones. Tables ([data], [model] ...) may group keys;
    dashes and underscores are the same (batch-size = batch_size)."""
    import tomllib
    parser = parser or build_parser()
    _, actions = _train_actions(parser)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    flat = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                flat[k2] = v2
        else:
            flat[k] = v
    out, unknown = {}, []
    for k, v in flat.items():
        dest = k.replace("-", "_")
        if dest not in actions:
            unknown.append(k)
            continue
        out[dest] = _config_value(dest, v, actions[dest], path)
    if unknown:
        raise ValueError(f"{path}: unknown key{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(u) for u in unknown)}; valid keys: "
                         f"{', '.join(sorted(actions))}")
    return out


def _resume_path(target):
    if os.path.isdir(target):
        p = os.path.join(target, "checkpoints", "last.ckpt")
        if not os.path.exists(p):
            raise FileNotFoundError(2, "no checkpoint to resume from in this run directory "
                                       "(expected checkpoints/last.ckpt)", target)
        return p
    return target


def _run_dir_of(target, path):
    """The run directory a resumed checkpoint belongs to (RUN_DIR/checkpoints/last.ckpt), if any."""
    if os.path.isdir(target):
        return target
    parent = os.path.dirname(os.path.abspath(path))
    run = os.path.dirname(parent)
    if os.path.basename(parent) == "checkpoints" and os.path.exists(os.path.join(run, "config.json")):
        return os.path.relpath(run)
    return None


def parse_args(argv=None):
    """Parse the command line; for `train`, settings come from (lowest first) the defaults, the
    resumed checkpoint's run, the --config file, then the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "train" or not (args.config or args.resume):
        return parser, _with_model_defaults(parser, argv, args, {}), None
    train, actions = _train_actions(parser)
    layers, state = {}, None
    if args.resume:
        from .train.checkpoint import load_checkpoint
        path = _resume_path(args.resume)
        state = load_checkpoint(path, resumable=True)
        state["_path"] = path
        for k, v in (state.get("run_config") or {}).items():
            if k in actions and k not in ("out", "save", "progress", "detect_anomaly"):
                layers[k] = tuple(v) if k == "hidden" else v
        if args.out is None:
            layers["out"] = _run_dir_of(args.resume, path)
    if args.config:
        layers.update(read_config(args.config, parser))
    train.set_defaults(**layers)
    return parser, _with_model_defaults(parser, argv, parser.parse_args(argv), layers), state


def _with_model_defaults(parser, argv, args, layers):
    """Reparse with the defaults that --model brings (cli_convnets.model_defaults: a ConvNet's
    learning rate, schedule, epochs ...; lenet on digits: the whole recipe), below ``layers`` (a
    resumed run's settings, the --config file) and the command line."""
    if args.command not in ("train", "summary", "lr-find") or \
            not _conv.is_conv(getattr(args, "model", "mlp")):
        return args
    sub = next(a for a in parser._actions
               if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    dests = {a.dest for a in sub._actions}
    own = {k: v for k, v in _conv.model_defaults(args.model, args.dataset).items() if k in dests}
    sub.set_defaults(**{**own, **layers})
    return parser.parse_args(argv)


# -- train ------------------------------------------------------------------------------------------

def _run_config(args, data):
    run = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
           if k not in _NOT_CONFIG and k not in ("progress", "detect_anomaly")}
    run.update(features=int(np.prod(data["Xtr"].shape[1:])), classes=data["classes"],
               n_classes=int(data["n_classes"]), image_shape=data["image_shape"])
    return run


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        f.write("\n")
    os.replace(tmp, path)


def _check_out_dir(args, resuming):
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(20, "--out must be a directory", out)
    last = os.path.join(out, "checkpoints", "last.ckpt")
    if os.path.exists(last) and not resuming and not args.overwrite:
        raise FileExistsError(17, "--out already holds a run (checkpoints/last.ckpt); continue it "
                                  f"with --resume {out}, or pass --overwrite to replace it", out)


def cmd_train(args, state=None):
    import chainrule as cr
    from .autograd import detect_anomaly
    from .nn.summary import summary
    from .train import CSVLogger, EarlyStopping, ModelCheckpoint, Trainer
    from .train.callbacks import LambdaCallback

    if args.resume and state is None:            # called without parse_args (tests, scripts)
        from .train.checkpoint import load_checkpoint
        path = _resume_path(args.resume)
        state = load_checkpoint(path, resumable=True)
        state["_path"] = path
    if args.out:
        _check_out_dir(args, resuming=state is not None)
    cr.manual_seed(args.seed)
    data = prepare_data(args)
    Xtr, ytr, Xval, yval, Xte, yte = (data[k] for k in ("Xtr", "ytr", "Xval", "yval", "Xte", "yte"))
    n_classes = data["n_classes"]
    config = model_config(args, int(np.prod(Xtr.shape[1:])), n_classes, data["image_shape"])
    model = build_model(config)
    opt, lr = build_optimizer(args, model)
    scheduler = build_scheduler(args, opt)
    train_data = (Xtr, ytr)
    if getattr(args, "augment", False):
        if not _conv.is_conv(args.model):
            raise ValueError("--augment shifts images, which needs a ConvNet (--model lenet, "
                             "alexnet or vgg); an MLP sees flattened, standardised pixels")
        from .data import ArrayDataset, DataLoader
        aug = _conv.augmentation(args.dataset, data["image_shape"])
        # fit() builds the same loader (same seed, same shuffling) for a tuple; this one adds
        # the transform, whose generator a resumed run restores too
        train_data = DataLoader(ArrayDataset(Xtr, ytr), batch_size=args.batch_size, shuffle=True,
                                seed=args.seed, transform=aug)
    print(f"dataset={args.dataset} train={len(Xtr)} val={len(Xval)} test={len(Xte)} "
          f"features={'x'.join(str(n) for n in Xtr.shape[1:])} classes={n_classes}")
    if getattr(args, "augment", False):
        print("augmentation: " + ", ".join(repr(t) for t in aug.transforms))
    print(model)
    print(f"parameters={model.num_parameters()} optimizer={args.optimizer} lr={lr} "
          f"epochs={args.epochs} batch_size={args.batch_size}")
    run_config = _run_config(args, data)
    extra = {"config": config, "run_config": run_config, "classes": data["classes"]}
    if data["mean"] is not None:
        extra["standardize"] = {"mean": data["mean"].astype(np.float32),
                                "std": data["std"].astype(np.float32)}
    if data.get("channel_mean") is not None:
        extra["mean_subtraction"] = {"mean": data["channel_mean"]}
    callbacks = []
    if args.early_stopping:
        callbacks.append(EarlyStopping("val_loss", patience=args.early_stopping,
                                       restore_best_weights=True))
    model_summary = None
    if args.out:
        out = args.out
        model_summary = summary(model, model_input_shape(config))

        def begin(logs):                  # runs after a resume was checked: a bad one writes nothing
            os.makedirs(out, exist_ok=True)
            _write_json(os.path.join(out, "config.json"), {"run": run_config, "model": config})
            _write_json(os.path.join(out, "summary.json"), model_summary.to_dict())
        callbacks += [LambdaCallback(on_train_begin=begin),
                      CSVLogger(os.path.join(out, "history.csv")),
                      ModelCheckpoint(os.path.join(out, "checkpoints"), monitor="val_loss",
                                      extra=extra)]
    if state is not None:
        print(f"resuming from {state['_path']} after epoch {state['epoch']}")
    trainer = Trainer(model, opt, scheduler=scheduler)
    t0 = time.perf_counter()
    with detect_anomaly(args.detect_anomaly):
        history = trainer.fit(train_data, epochs=args.epochs, val_data=(Xval, yval),
                              batch_size=args.batch_size, seed=args.seed, progress=args.progress,
                              callbacks=callbacks, resume=state)
    elapsed = time.perf_counter() - t0
    res = trainer.evaluate((Xte, yte))
    print(f"trained {len(history.epoch)} epochs in {elapsed:.1f}s; final train loss "
          f"{history['loss'][-1]:.4f}, val accuracy {history['val_accuracy'][-1]:.4f}")
    if args.save:
        saved = {"format": "chainrule-model", "config": config, "model": model.state_dict(),
                 "optimizer": opt.state_dict(), "history": history.history,
                 "run_config": run_config, "classes": data["classes"]}
        for key in ("standardize", "mean_subtraction"):
            if key in extra:
                saved[key] = extra[key]
        cr.save(saved, args.save)
        print(f"saved model to {args.save}")
    if args.out:
        report = _finish_run_dir(args.out, trainer, model, (Xte, yte), res, data, run_config,
                                 config, model_summary)
        print(f"wrote run directory {args.out} (report: {report})")
    print(f"test_loss={res['loss']:.4f}")
    print(f"test_accuracy={res['accuracy']:.4f}")
    return 0


def _test_metrics(model, X, y, res, classes):
    from .train import predict
    from .train.metrics import confusion_matrix, precision_recall_f1
    scores = predict(model, X)
    n = len(classes)
    pc = precision_recall_f1(y, scores, num_classes=n)
    return {"test": {"loss": res["loss"], "accuracy": res["accuracy"],
                     "macro_f1": pc["macro"]["f1"]},
            "confusion_matrix": confusion_matrix(y, scores, num_classes=n).tolist(),
            "class_names": list(classes),
            "per_class": {"precision": pc["precision"].tolist(), "recall": pc["recall"].tolist(),
                          "f1": pc["f1"].tolist(), "support": pc["support"].tolist(),
                          "macro": pc["macro"], "weighted": pc["weighted"]}}


def _finish_run_dir(out, trainer, model, test, res, data, run_config, config, model_summary):
    """metrics.json, then report.html with its plots also written to plots/*.png."""
    from .viz.report import report_from_run
    metrics = _test_metrics(model, test[0], test[1], res, data["classes"])
    metrics["epochs"] = len(trainer.history.epoch)
    _write_json(os.path.join(out, "metrics.json"), metrics)
    return report_from_run(out)


# -- evaluate / predict / summary / report / lr-find -----------------------------------------------

def _checkpoint_path(target, which="best"):
    if os.path.isdir(target):
        d = os.path.join(target, "checkpoints")
        order = ["best.ckpt", "last.ckpt"] if which == "best" else ["last.ckpt"]
        for name in order:
            if os.path.exists(os.path.join(d, name)):
                return os.path.join(d, name)
        raise FileNotFoundError(2, f"no checkpoint in this run directory (looked for "
                                   f"{', '.join('checkpoints/' + n for n in order)})", target)
    return target


def _load_model(target, which="best"):
    from .train.checkpoint import load_checkpoint
    path = _checkpoint_path(target, which)
    state = load_checkpoint(path)
    config = state.get("config")
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError(f"{path!r} has no model config (written by hand?); cannot rebuild the model")
    model = build_model(config)
    from .train.checkpoint import check_model_state
    check_model_state(model, state["model"], path)
    model.load_state_dict(state["model"])
    model.eval()
    return path, state, model


def _standardize(X, state):
    """Inputs as the model was trained on them: flattened and standardised for an MLP; images
    (N, C, H, W) minus the training split's per-channel mean for a ConvNet."""
    config = state.get("config") or {}
    if config.get("kind", "mlp") != "mlp":
        shape = model_input_shape(config)
        if int(np.prod(X.shape[1:])) != int(np.prod(shape)):
            raise ValueError(f"the data has {int(np.prod(X.shape[1:]))} values per example "
                             f"(shape {tuple(X.shape[1:])}); the model takes images "
                             f"{'x'.join(map(str, shape))}")
        ms = state.get("mean_subtraction")
        return _conv.subtract_mean(X, ms["mean"] if ms else None, shape)
    st = state.get("standardize")
    X = X.reshape(len(X), -1).astype(np.float32)
    if st is not None:
        X = ((X - st["mean"]) / st["std"]).astype(np.float32)
    return X


def _run_args(state, **override):
    """A namespace with the run's data settings (checkpoint's run_config, else the defaults)."""
    parser = build_parser()
    defaults = vars(parser.parse_args(["train"]))
    run = state.get("run_config") or {}
    ns = argparse.Namespace(**{**defaults, **{k: v for k, v in run.items() if k in defaults}})
    for k, v in override.items():
        if v is not None:
            setattr(ns, k, v)
    return ns


def cmd_evaluate(args):
    from .train import Trainer, predict
    from .train.metrics import classification_report, confusion_matrix
    path, state, model = _load_model(args.target, args.checkpoint)
    run = _run_args(state, label_column=args.label_column)
    classes = state.get("classes") or [str(i) for i in range(int(state["config"]["out_features"]))]
    if args.dataset is not None and args.dataset != run.dataset:
        X, y, where = _read_labeled(args.dataset, run, classes)
    else:
        d = _load_raw(run)
        X, y, where = d["Xte"], d["yte"], f"the test split of {run.dataset}"
    X = _standardize(X, state)
    n_in = model_input_shape(state["config"])[0]
    if X.shape[1] != n_in:
        raise ValueError(f"{where} has {X.shape[1]} features, the model takes {n_in}")
    res = Trainer(model, None).evaluate((X, y), batch_size=args.batch_size)
    scores = predict(model, X, args.batch_size)
    n = len(classes)
    print(f"checkpoint={path} epoch={state.get('epoch', '?')} data={where} examples={len(X)}")
    print(classification_report(y, scores, class_names=classes, num_classes=n))
    print("confusion matrix (rows: true, columns: predicted):")
    print(confusion_matrix(y, scores, num_classes=n))
    print(f"test_loss={res['loss']:.4f}")
    print(f"test_accuracy={res['accuracy']:.4f}")
    return 0


def _read_labeled(path, run, classes):
    from .data import datasets
    images = _conv.load_labeled_images(path, run, classes)
    if images is not None:
        return images
    if path == "digits":
        X, y = datasets.digits()
        return X, y, "digits (all 1797)"
    if path == "mnist1d":
        _, _, X, y = datasets.mnist1d()
        return X, y, "the mnist1d test set"
    label = run.label_column
    label = int(label) if str(label).lstrip("-").isdigit() else label
    csv = datasets.load_csv(path, label_column=label,
                            label_map={c: i for i, c in enumerate(classes)})
    return csv.X, csv.y.astype(np.int64), path


def _read_inputs(path, state):
    """(ids, X) for a CSV file or an image folder."""
    from .data import datasets
    from .data.datasets.image_folder import IMG_EXTENSIONS, load_image
    run = state.get("run_config") or {}
    if os.path.isdir(path):
        shape = run.get("image_shape")
        if not shape:
            raise ValueError(f"{path} is a folder of images, but this model was trained on "
                             f"{run.get('dataset', 'tabular data')} without an image shape; "
                             "give a CSV file")
        c, h, w = shape
        files = []
        for d, dirs, names in os.walk(path):
            dirs.sort()
            files += [os.path.join(d, n) for n in sorted(names)
                      if n.lower().endswith(IMG_EXTENSIONS) and not n.startswith(".")]
        if not files:
            raise FileNotFoundError(2, "no image files in this folder", path)
        X = np.stack([load_image(f, size=(h, w), mode="L" if c == 1 else "RGB", where="predict")
                      for f in files])
        return [os.path.relpath(f, path) for f in files], X
    label = run.get("label_column", "label")
    try:
        csv = datasets.load_csv(path, label_column=label, label_map="auto")
    except ValueError as e:
        if "label column" not in str(e):
            raise
        csv = datasets.load_csv(path, label_column=None)
    return [str(i) for i in range(len(csv.X))], csv.X


def cmd_predict(args):
    from .train import predict
    path, state, model = _load_model(args.target, args.checkpoint)
    ids, X = _read_inputs(args.input, state)
    X = _standardize(X, state)
    n_in = model_input_shape(state["config"])[0]
    if X.shape[1] != n_in:
        raise ValueError(f"{args.input} gives {X.shape[1]} features per example, the model takes "
                         f"{n_in}")
    scores = predict(model, X)
    z = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    classes = state.get("classes") or [str(i) for i in range(p.shape[1])]
    k = p.argmax(axis=1)
    lines = [",".join(["id", "class_index", "class", "confidence"]
                      + [f"p_{_csv_cell(c)}" for c in classes])]
    for i, ident in enumerate(ids):
        lines.append(",".join([_csv_cell(ident), str(int(k[i])), _csv_cell(classes[k[i]]),
                               f"{p[i, k[i]]:.6f}"] + [f"{v:.6f}" for v in p[i]]))
    text = "\n".join(lines) + "\n"
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.output)
        print(f"wrote {len(ids)} predictions to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _csv_cell(s):
    s = str(s)
    return '"' + s.replace('"', '""') + '"' if any(ch in s for ch in ',"\n') else s


def cmd_summary(args):
    from .nn.summary import summary
    if args.target:
        path, state, model = _load_model(args.target, "last")
        config = state["config"]
        print(f"checkpoint={path}")
    else:
        import chainrule as cr
        cr.manual_seed(0)
        d = _load_raw(args)
        features = int(np.prod(d["Xtr"].shape[1:]))
        config = model_config(args, features, d["n_classes"], d["image_shape"])
        model = build_model(config)
    print(summary(model, model_input_shape(config)))
    return 0


def cmd_report(args):
    from .viz.report import report_from_run
    path = report_from_run(args.run_dir, args.output)
    print(f"wrote {path}")
    return 0


def cmd_lr_find(args):
    import chainrule as cr
    from .train import lr_find
    cr.manual_seed(args.seed)
    if args.start_lr >= args.end_lr:
        raise ValueError(f"--start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})")
    data = prepare_data(args)
    config = model_config(args, int(np.prod(data["Xtr"].shape[1:])), data["n_classes"],
                          data["image_shape"])
    model = build_model(config)
    opt, _ = build_optimizer(args, model)
    res = lr_find(model, opt, (data["Xtr"], data["ytr"]), start_lr=args.start_lr,
                  end_lr=args.end_lr, num_steps=args.num_steps, batch_size=args.batch_size,
                  seed=args.seed)
    print(f"optimizer={args.optimizer} steps={len(res.lrs)} of {args.num_steps}"
          f"{' (stopped: the loss diverged)' if res.diverged else ''}")
    print(f"{'lr':>10}  {'loss':>8}")
    for i in np.unique(np.linspace(0, len(res.losses) - 1, min(12, len(res.losses))).astype(int)):
        print(f"{res.lrs[i]:>10.3g}  {res.losses[i]:>8.4f}")
    if args.plot:
        res.plot(args.plot)
        print(f"wrote {args.plot}")
    print(f"min_loss_lr={res.min_lr:.4g}")
    print(f"suggested_lr={res.suggestion:.4g}")
    return 0


def main(argv=None):
    state = None
    try:
        parser, args, state = parse_args(argv)
    except (ValueError, OSError) as e:            # a bad --config or --resume, before any work
        cmd = "train"
        print(f"chainrule {cmd}: error: {e}", file=sys.stderr)
        return 2
    if args.version:
        from . import __version__
        print(f"chainrule {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 0
    if args.threads:
        from .backend import set_num_threads
        set_num_threads(args.threads)
    try:
        if args.command == "train":
            return args.func(args, state)
        return args.func(args)
    # OSError covers a missing file, a directory or an unreadable file given as --dataset/--save.
    except (ValueError, OSError, TypeError, KeyError, FloatingPointError, ImportError) as e:
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
