"""``chainrule train``, ``evaluate``, ``predict``, ``summary``, ``report`` and ``lr-find``:

    chainrule train                       # an MLP on scikit-learn's digits, prints test_accuracy=...
    chainrule train --dataset mnist1d --hidden 256,256 --epochs 40
    chainrule train --dataset data.csv --label-column species --save model.npz
    chainrule train --model lenet --dataset digits     # a ConvNet (the digits recipe); alexnet, vgg
    chainrule train --config run.toml --out runs/a     # run directory: config, history, checkpoints, report
    chainrule train --resume runs/a                    # continue an interrupted run, bit for bit
    chainrule evaluate runs/a | predict runs/a --input new.csv | summary | report runs/a | lr-find

The settings' defaults live in one table, ``chainrule.train.recipes`` (DEFAULTS, the model and
dataset recipes, OPTIMIZER_LR): every such option here defaults to None ("not set"), and
``resolve_settings`` fills it, highest first, from the command line, the --config file, the
resumed run, then the recipe of the model and dataset. The work itself is the library's
(``train.experiment.train_run``, ``data.prepare``, ``models.registry``).
"""
import argparse
import sys

import numpy as np

from ..models.registry import MODELS, parse_channels
from ..train.recipes import DEFAULTS, LR_SCHEDULES, OPTIMIZER_LR, OPTIMIZERS, train_settings
from .common import (HelpFormatter, checkpoint_path, csv_cell, fraction, nonneg_float,
                     positive_float, positive_int, probability, seed, size_list)
from .common import with_default as dflt

# Options of `chainrule train` that are not part of a run's configuration file.
_NOT_CONFIG = {"config", "resume", "overwrite"}


_hidden = size_list("--hidden", "256 or 256,128")


def _channels(text):
    try:
        return parse_channels(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _lr_help():
    by_lr = {}
    for name, lr in OPTIMIZER_LR.items():
        by_lr.setdefault(lr, []).append(name)
    return "learning rate (default: " + ", ".join(f"{lr} for {'/'.join(names)}"
                                                  for lr, names in by_lr.items()) + ")"


# -- option groups shared by train, lr-find and summary (every default: recipes.DEFAULTS) -----------

def _add_data_args(p):
    d = p.add_argument_group("data")
    d.add_argument("--dataset", help=dflt(
        "'digits' (scikit-learn), 'mnist1d' (generated locally), 'mnist', 'fashion-mnist' (IDX "
        "files) or 'cifar10' (binary batches) from --data-dir, a folder of images with one "
        "sub-folder per class, or the path of a CSV file with numeric feature columns and a label "
        "column", DEFAULTS["dataset"]))
    d.add_argument("--data-dir", metavar="DIR",
                   help="mnist / fashion-mnist / cifar10: the folder holding the downloaded files")
    d.add_argument("--image-size", type=positive_int, help=dflt(
        "image folders: resize every image to this square size", DEFAULTS["image_size"]))
    d.add_argument("--grayscale", action="store_true", default=None,
                   help="image folders: read the images as one grey channel instead of RGB")
    d.add_argument("--label-column", help=dflt(
        "CSV only: the label column's name, or its index (-1 = last)", DEFAULTS["label_column"]))
    d.add_argument("--test-fraction", type=fraction, help=dflt(
        "share of the data held out for the final test (digits and CSV)", DEFAULTS["test_fraction"]))
    d.add_argument("--val-fraction", type=fraction, help=dflt(
        "share of the training data used for per-epoch validation", DEFAULTS["val_fraction"]))
    d.add_argument("--no-standardize", dest="standardize", action="store_false", default=None,
                   help="do not scale features to zero mean and unit variance (ConvNets: do not "
                        "subtract the per-channel mean; statistics of the training split)")
    return d


def _add_model_args(p):
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=MODELS, help=dflt(
        "mlp, or a ConvNet on images: lenet (LeNet-5), alexnet (AlexNet-style), vgg (VGG-style); a "
        "ConvNet brings its own defaults (lenet on digits: the recipe of examples/convnet_digits.py), "
        "which options given here override", DEFAULTS["model"]))
    m.add_argument("--channels", type=_channels, metavar="SIZES",
                   help="ConvNets: convolution widths; lenet: two (default 6,16; on digits "
                        "64,128), alexnet: one (default 32), vgg: widths with M for a max pool "
                        "(default 32,32,M,64,64,M)")
    m.add_argument("--batch-norm", action=argparse.BooleanOptionalAction,
                   help="lenet / vgg: batch norm after each convolution (default: on for lenet on "
                        "digits, else off)")
    m.add_argument("--hidden", type=_hidden, help=dflt(
        "hidden layer sizes, comma separated (e.g. 256,128); lenet: its fully connected layers "
        "(default 120,84), vgg: one size (default 256)", DEFAULTS["hidden"]))
    m.add_argument("--activation", choices=["relu", "tanh", "sigmoid", "leaky_relu"],
                   help=dflt("the hidden layers' nonlinearity", DEFAULTS["activation"]))
    m.add_argument("--dropout", type=probability, help=dflt(
        "dropout probability after each hidden layer", DEFAULTS["dropout"]))


def _add_optim_args(p, epochs=True):
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", choices=OPTIMIZERS, help=dflt("the update rule",
                                                                DEFAULTS["optimizer"]))
    o.add_argument("--lr", type=positive_float, help=_lr_help())
    o.add_argument("--momentum", type=nonneg_float, help=dflt("SGD/RMSprop momentum",
                                                               DEFAULTS["momentum"]))
    o.add_argument("--weight-decay", type=nonneg_float, help=dflt("L2 regularisation strength",
                                                           DEFAULTS["weight_decay"]))
    if epochs:
        o.add_argument("--epochs", type=positive_int, help=dflt(
            "passes over the training data (with --resume: the run's total)", DEFAULTS["epochs"]))
    o.add_argument("--batch-size", type=positive_int, help=dflt("examples per gradient step",
                                                                DEFAULTS["batch_size"]))
    return o


def _add_train_options(t):
    d = _add_data_args(t)
    d.add_argument("--augment", action=argparse.BooleanOptionalAction,
                   help="ConvNets: live augmentation, new each epoch: random shifts of up to 1/8 "
                        "of the image side (1 pixel on digits), plus left-right flips for "
                        "cifar10 and image folders (default: on for lenet on digits, else off)")
    _add_model_args(t)
    o = _add_optim_args(t)
    o.add_argument("--lr-schedule", choices=LR_SCHEDULES, help=dflt(
        "learning-rate schedule, stepped each epoch: step (x0.1 at 1/2 and 3/4 of the epochs), "
        "cosine (to 0 at the last epoch), plateau (x0.5 when the validation loss stalls for 3 "
        "epochs)", DEFAULTS["lr_schedule"]))
    o.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                   help="stop when the validation loss has not improved for PATIENCE epochs, and "
                        "keep the best epoch's weights")
    r = t.add_argument_group("run")
    r.add_argument("--config", metavar="TOML",
                   help="read settings from this TOML file (unknown keys are an error)")
    r.add_argument("--seed", type=seed, help=dflt("seed for initialisation, splits and shuffling",
                                                 DEFAULTS["seed"]))
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
    r.add_argument("--detect-anomaly", action="store_true", default=None,
                   help="stop at the first op that produces NaN or inf, naming it (slower)")
    r.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="hide the progress bars")


def add_commands(sub):
    """Add train, evaluate, predict, summary, report and lr-find to the subparsers ``sub``."""
    t = sub.add_parser(
        "train", help="train a network and report its test accuracy",
        description="Train a multi-layer perceptron (or a ConvNet: --model lenet, alexnet or vgg) "
                    "with mini-batch gradient descent, validating "
                    "each epoch, then print the accuracy on a held-out test split as "
                    "'test_accuracy=<fraction>'. With no options: digits (8x8 images, 10 "
                    "classes), 80/20 train/test split, seed 0. Settings may come from a TOML file "
                    "(--config; its keys are the option names, e.g. epochs = 20, hidden = [256, 128], "
                    "batch_size = 64); options given on the command line override it.",
        formatter_class=HelpFormatter)
    _add_train_options(t)
    t.set_defaults(func=cmd_train, resolve=resolve_train, outputs={"out": "dir", "save": "file"})

    e = sub.add_parser(
        "evaluate", help="evaluate a trained model on its test split or on a CSV file",
        description="Load a checkpoint (RUN_DIR means RUN_DIR/checkpoints/best.ckpt, else last.ckpt) "
                    "and evaluate it: the test split of the run's dataset, rebuilt from the saved "
                    "settings, or a CSV file given with --dataset. Prints the per-class report, "
                    "the confusion matrix, then test_loss= and test_accuracy=.",
        formatter_class=HelpFormatter)
    e.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    e.add_argument("--dataset", help="evaluate on all rows of this CSV file (or another dataset "
                                     "name) instead of the run's test split")
    e.add_argument("--label-column", help="CSV only: the label column (default: the run's)")
    e.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="which checkpoint of a run directory")
    e.add_argument("--batch-size", type=positive_int, default=256, help="examples per batch")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser(
        "predict", help="predict classes for the rows of a CSV file or the images of a folder",
        description="Load a checkpoint (or RUN_DIR) and predict: one output row per input row of "
                    "a CSV file (its label column, if present, is ignored) or per image in a folder "
                    "(searched recursively; resized to the model's input image). Writes a CSV "
                    "(id, class_index, class, confidence, one probability per class) to --output, "
                    "or prints it.",
        formatter_class=HelpFormatter)
    pr.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    pr.add_argument("--input", required=True, metavar="CSV_OR_FOLDER",
                    help="a CSV file of feature columns, or a folder of images")
    pr.add_argument("--output", metavar="CSV", help="write the predictions here (default: print)")
    pr.add_argument("--checkpoint", choices=["best", "last"], default="best",
                    help="which checkpoint of a run directory")
    pr.set_defaults(func=cmd_predict, outputs={"output": "file"})

    s = sub.add_parser(
        "summary", help="print a model's layers, output shapes and parameter counts",
        description="Summarise the model of a checkpoint (or RUN_DIR), or, without one, the model "
                    "'chainrule train' would build with the same model options.",
        formatter_class=HelpFormatter)
    s.add_argument("target", nargs="?", metavar="RUN_DIR_OR_CHECKPOINT")
    s.add_argument("--dataset", help=dflt("the dataset that sets input and output sizes",
                                          DEFAULTS["dataset"]))
    s.add_argument("--label-column", help=dflt("CSV only: the label column", DEFAULTS["label_column"]))
    s.add_argument("--data-dir", metavar="DIR", help="mnist / fashion-mnist / cifar10: their folder")
    _add_model_args(s)
    s.set_defaults(func=cmd_summary, resolve=resolve_settings)

    rp = sub.add_parser(
        "report", help="(re)build the HTML report of a run directory",
        description="Write RUN_DIR/report.html from what 'chainrule train --out RUN_DIR' left "
                    "there: configuration, model summary, final metrics, plots, per-epoch table. "
                    "The file is self-contained (plots embedded) and opens offline.",
        formatter_class=HelpFormatter)
    rp.add_argument("run_dir", metavar="RUN_DIR")
    rp.add_argument("--output", metavar="HTML", help="write the report here instead")
    rp.set_defaults(func=cmd_report, outputs={"output": "file"})

    lf = sub.add_parser(
        "lr-find", help="find a learning rate with the range test",
        description="Train the model 'chainrule train' would build for --num-steps steps while "
                    "the learning rate grows exponentially from --start-lr to --end-lr; print the "
                    "loss curve and a suggested learning rate (where the smoothed loss falls "
                    "fastest) as the last line 'suggested_lr=<value>'.",
        formatter_class=HelpFormatter)
    _add_data_args(lf)
    _add_model_args(lf)
    _add_optim_args(lf, epochs=False)
    g = lf.add_argument_group("range test")
    g.add_argument("--start-lr", type=positive_float, default=1e-5, help="first learning rate")
    g.add_argument("--end-lr", type=positive_float, default=10.0, help="last learning rate")
    g.add_argument("--num-steps", type=positive_int, default=100, help="training steps")
    g.add_argument("--plot", metavar="PNG", help="save the loss-vs-lr plot here")
    g.add_argument("--seed", type=seed, help=dflt("seed for initialisation, splits and shuffling",
                                                 DEFAULTS["seed"]))
    lf.set_defaults(func=cmd_lr_find, resolve=resolve_settings, outputs={"plot": "file"})


# -- settings: the command line over a --config file over a resumed run over the recipe ------------

def settings_of(args):
    """The settings in ``args`` as the library takes them (before ``resolve_settings``: what the
    command line set, None where it set nothing)."""
    return {k: getattr(args, k) for k in DEFAULTS if hasattr(args, k)}


def resolve_settings(args, *layers):
    """Fill ``args`` with the complete settings: the command line's, then ``layers`` (highest
    first), then the recipe of the model and dataset they name (chainrule.train.recipes)."""
    settings = train_settings(settings_of(args), *layers)
    for k, v in settings.items():
        setattr(args, k, v)
    return {}


def resolve_train(args):
    """``chainrule train``'s layers: the --config file, then the resumed run (with its run
    directory as --out). Returns the handler's extra arguments: the resumed state."""
    from ..train.experiment import resume_state, resumed_settings, run_dir_of
    config = read_config(args.config) if args.config else {}
    state, resumed = None, {}
    if args.resume:
        state = resume_state(args.resume)
        resumed = resumed_settings(state)
        _check_resume_overrides({**config, **{k: v for k, v in settings_of(args).items()
                                             if v is not None}}, resumed, args.resume)
        resumed["out"] = run_dir_of(args.resume, state["_path"])
    resolve_settings(args, config, resumed)
    return {"state": state}


# What the resumed optimizer and scheduler states override: given with another value, they would be
# shown and stored as the run's settings while the restored state trains on with the old ones.
_RESTORED_SETTINGS = ("optimizer", "lr", "momentum", "weight_decay", "lr_schedule")


def _check_resume_overrides(given, resumed, target):
    from ..train.recipes import learning_rate
    resumed = dict(resumed)
    if resumed.get("lr") is None and resumed.get("optimizer"):      # the optimizer's default lr
        resumed["lr"] = learning_rate({"optimizer": resumed["optimizer"], "lr": None})
    for k in _RESTORED_SETTINGS:
        if k in given and k in resumed and resumed[k] is not None and given[k] != resumed[k]:
            option = "--" + k.replace("_", "-")
            raise ValueError(f"{option} {given[k]}: the run in {target} was trained with "
                             f"{option} {resumed[k]}, and resuming restores its optimizer and "
                             f"schedule; start a new run (--out NEW_DIR) to train with another "
                             f"{option}")


def _config_actions():
    """{dest: action} of the options a --config file may set (those of `chainrule train`)."""
    t = argparse.ArgumentParser(add_help=False)
    _add_train_options(t)
    return {a.dest: a for a in t._actions if a.dest not in _NOT_CONFIG}


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


def read_config(path):
    """A TOML run configuration as {option dest: value}, checked like the command line: unknown
    keys are an error that lists the valid ones. Tables ([data], [model] ...) may group keys;
    dashes and underscores are the same (batch-size = batch_size)."""
    import tomllib
    actions = _config_actions()
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


# -- handlers ---------------------------------------------------------------------------------------

def cmd_train(args, state=None):
    from ..train.experiment import train_run
    res = train_run(settings_of(args), resume=state, overwrite=args.overwrite)
    print(f"test_loss={res.test['loss']:.4f}")
    print(f"test_accuracy={res.test['accuracy']:.4f}")
    return 0


def _load(target, which):
    from ..models.registry import load_model
    path = checkpoint_path(target, which)
    state, model = load_model(path)
    return path, state, model


def check_inputs(X, state, where, target):
    """Raise ValueError naming the data (``where``) and the model (``target``) unless the examples
    of ``X`` have as many values as the model's input: feature columns for an MLP, C x H x W for a
    ConvNet (a CSV row of an image, or images read at another size or channel count)."""
    from ..models.registry import model_input_shape
    shape = model_input_shape(state["config"])
    want, got = int(np.prod(shape)), int(np.prod(X.shape[1:]))
    model = f"the model in {target}"
    if X.ndim >= 3 and len(shape) == 3 and tuple(X.shape[1:]) != tuple(shape):
        raise ValueError(f"{where} holds images {'x'.join(map(str, X.shape[1:]))} (channels x height "
                         f"x width), {model} expects {'x'.join(map(str, shape))}")
    if got != want:
        images = f" (images {'x'.join(map(str, shape))})" if len(shape) == 3 else ""
        what = "feature columns" if X.ndim == 2 else "values per example"
        raise ValueError(f"{where} has {got} {what}, {model} expects {want}{images}")


def cmd_evaluate(args):
    from ..data.prepare import load_dataset, load_labeled
    from ..models.registry import model_inputs
    from ..train import Trainer, predict
    from ..train.experiment import stored_settings
    from ..train.metrics import classification_report, confusion_matrix
    path, state, model = _load(args.target, args.checkpoint)
    run = train_settings({"label_column": args.label_column}, stored_settings(state))
    classes = state.get("classes") or [str(i) for i in range(int(state["config"]["out_features"]))]
    if args.dataset is not None and args.dataset != run["dataset"]:
        X, y, where = load_labeled(args.dataset, run, classes)
    else:
        d = load_dataset(run)
        X, y, where = d["Xte"], d["yte"], f"the test split of {run['dataset']}"
    check_inputs(X, state, where, args.target)
    X = model_inputs(X, state)
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


def cmd_predict(args):
    from ..data.prepare import read_inputs
    from ..models.registry import model_inputs
    from ..train import predict
    path, state, model = _load(args.target, args.checkpoint)
    ids, X = read_inputs(args.input, state.get("run_config") or {})
    check_inputs(X, state, args.input, args.target)
    X = model_inputs(X, state)
    scores = predict(model, X)
    z = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    classes = state.get("classes") or [str(i) for i in range(p.shape[1])]
    k = p.argmax(axis=1)
    lines = [",".join(["id", "class_index", "class", "confidence"]
                      + [f"p_{csv_cell(c)}" for c in classes])]
    for i, ident in enumerate(ids):
        lines.append(",".join([csv_cell(ident), str(int(k[i])), csv_cell(classes[k[i]]),
                               f"{p[i, k[i]]:.6f}"] + [f"{v:.6f}" for v in p[i]]))
    text = "\n".join(lines) + "\n"
    if args.output:
        from ..io import write_text
        write_text(args.output, text)
        print(f"wrote {len(ids)} predictions to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_summary(args):
    from ..models.registry import build_model, model_config, model_input_shape
    from ..nn.summary import summary
    if args.target:
        path, state, model = _load(args.target, "last")
        config = state["config"]
        print(f"checkpoint={path}")
    else:
        import chainrule as cr
        from ..data.prepare import load_dataset
        cr.manual_seed(0)
        settings = settings_of(args)
        d = load_dataset(settings)
        config = model_config(settings, int(np.prod(d["Xtr"].shape[1:])), d["n_classes"],
                              d["image_shape"])
        model = build_model(config)
    print(summary(model, model_input_shape(config)))
    return 0


def cmd_report(args):
    import os
    from ..io import check_output_file
    from ..viz.report import report_from_run
    if args.output is None:              # the report goes into the run directory
        check_output_file(os.path.join(args.run_dir, "report.html"), "RUN_DIR/report.html")
    path = report_from_run(args.run_dir, args.output)
    print(f"wrote {path}")
    return 0


def cmd_lr_find(args):
    import chainrule as cr
    from ..data.prepare import prepare_data
    from ..models.registry import build_model, is_conv, model_config
    from ..train import lr_find
    from ..train.recipes import build_optimizer
    cr.manual_seed(args.seed)
    if args.start_lr >= args.end_lr:
        raise ValueError(f"--start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})")
    settings = settings_of(args)
    data = prepare_data(settings, images=is_conv(settings["model"]))
    config = model_config(settings, int(np.prod(data["Xtr"].shape[1:])), data["n_classes"],
                          data["image_shape"])
    model = build_model(config)
    opt, _ = build_optimizer(settings, model.parameters())
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
