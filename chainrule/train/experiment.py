"""A training run from settings, as ``chainrule train`` does it: data, model, optimizer and
schedule from ``chainrule.train.recipes.train_settings``, the fit with its callbacks, the test
evaluation, and, with settings' ``out``, a run directory:

    RUN_DIR/config.json  summary.json  history.csv  checkpoints/{last,best}.ckpt  metrics.json
    RUN_DIR/plots/*.png  report.html

    >>> from chainrule.train.recipes import train_settings
    >>> res = train_run(train_settings(epochs=3, progress=False), log=None)
    >>> res.test["accuracy"] > 0.9
    True

A run stopped part way continues with ``resume=resume_state(RUN_DIR)``; the result equals the
uninterrupted run.
"""
import contextlib
import json
import os
import time
from dataclasses import dataclass

import numpy as np

# Settings that describe how a run is shown, not what it computes: not stored with the run.
DISPLAY_SETTINGS = ("progress", "detect_anomaly")


def checkpoint_path(target, which="best"):
    """The checkpoint a target names: a file as is; a run directory: its checkpoints/best.ckpt
    (else last.ckpt) for ``which="best"``, its checkpoints/last.ckpt for ``which="last"``."""
    if os.path.isdir(target):
        d = os.path.join(target, "checkpoints")
        order = ["best.ckpt", "last.ckpt"] if which == "best" else ["last.ckpt"]
        for name in order:
            if os.path.exists(os.path.join(d, name)):
                return os.path.join(d, name)
        raise FileNotFoundError(2, f"no checkpoint in this run directory (looked for "
                                   f"{', '.join('checkpoints/' + n for n in order)})", target)
    return target


def resume_path(target):
    """The checkpoint to resume from: a file as is; a run directory: its checkpoints/last.ckpt."""
    if os.path.isdir(target):
        p = os.path.join(target, "checkpoints", "last.ckpt")
        if not os.path.exists(p):
            raise FileNotFoundError(2, "no checkpoint to resume from in this run directory "
                                       "(expected checkpoints/last.ckpt)", target)
        return p
    return target


def resume_state(target):
    """The resumable checkpoint state of ``target`` (a file or a run directory), with the path it
    came from under "_path"."""
    from ..io import remove_stale_temps
    from .checkpoint import load_checkpoint
    path = resume_path(target)
    remove_stale_temps(os.path.dirname(os.path.abspath(path)))   # what a kill mid-save left
    state = load_checkpoint(path, resumable=True)
    state["_path"] = path
    return state


def run_dir_of(target, path):
    """The run directory a resumed checkpoint belongs to (RUN_DIR/checkpoints/last.ckpt), if any."""
    if os.path.isdir(target):
        return target
    parent = os.path.dirname(os.path.abspath(path))
    run = os.path.dirname(parent)
    if os.path.basename(parent) == "checkpoints" and os.path.exists(os.path.join(run, "config.json")):
        return os.path.relpath(run)
    return None


def stored_settings(state):
    """The settings a checkpoint's run was trained with (its run_config), as train_settings
    takes them."""
    from .recipes import DEFAULTS
    return {k: (tuple(v) if k == "hidden" else v)
            for k, v in (state.get("run_config") or {}).items() if k in DEFAULTS}


def resumed_settings(state):
    """The settings a resumed run continues with (its own, but not where it writes or shows)."""
    return {k: v for k, v in stored_settings(state).items()
            if k not in ("out", "save") + DISPLAY_SETTINGS}


def write_json(path, obj):
    """Write ``obj`` as indented JSON, atomically (arrays as lists)."""
    from ..io import write_text
    write_text(path, json.dumps(obj, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                else str(o)) + "\n")


def check_out_dir(out, resuming, overwrite=False):
    """Refuse a run directory that is a file, cannot be written, or holds another run (unless
    ``overwrite``)."""
    from ..io import check_output_dir
    check_output_dir(out, "--out")
    for sub in ("", "checkpoints"):           # an existing but read-only run directory
        d = os.path.join(out, sub)
        if os.path.isdir(d):
            check_output_dir(d, "--out")
    last = os.path.join(out, "checkpoints", "last.ckpt")
    if os.path.exists(last) and not resuming and not overwrite:
        raise FileExistsError(17, "--out already holds a run (checkpoints/last.ckpt); continue it "
                                  f"with --resume {out}, or pass --overwrite to replace it", out)


def run_config(settings, data):
    """What a run stores about itself: its settings and the data's shape and classes."""
    run = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()
           if k not in DISPLAY_SETTINGS}
    run.update(features=int(np.prod(data["Xtr"].shape[1:])), classes=data["classes"],
               n_classes=int(data["n_classes"]), image_shape=data["image_shape"])
    return run


def held_out_metrics(model, X, y, res, classes):
    """metrics.json's content: loss, accuracy, macro F1, confusion matrix, per-class scores."""
    from . import predict
    from .metrics import confusion_matrix, precision_recall_f1
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


@dataclass
class RunResult:
    """What ``train_run`` returns: the trainer (with its history), the model, the test result
    ({"loss", "accuracy"}), the model config, the run's stored settings, the prepared data, the
    training time in seconds, and the report's path (with ``out``)."""
    trainer: object
    model: object
    test: dict
    config: dict
    run_config: dict
    data: dict
    elapsed: float
    report: str = None


def train_run(settings, resume=None, overwrite=False, log=print):
    """Train as the settings say (``chainrule.train.recipes.train_settings``), evaluate on the
    test split, save to settings' ``save`` and write the run directory settings' ``out``.
    ``resume``: a ``resume_state`` to continue; ``log``: where the run's lines go (None: nowhere)."""
    import chainrule as cr
    from ..autograd import detect_anomaly
    from ..data.prepare import augmentation, prepare_data
    from ..models.registry import build_model, is_conv, model_config, model_input_shape
    from ..nn.summary import summary
    from . import CSVLogger, EarlyStopping, ModelCheckpoint, Trainer
    from .callbacks import LambdaCallback
    from .recipes import build_optimizer, build_scheduler

    log = log or (lambda *a, **k: None)
    s, out = settings, settings.get("out")
    if out:
        check_out_dir(out, resuming=resume is not None, overwrite=overwrite)
    if resume is not None and s["epochs"] < resume["epoch"]:    # fit would do nothing, silently
        raise ValueError(f"--epochs {s['epochs']}: the run in {resume['_path']} has done "
                         f"{resume['epoch']} epochs already; --epochs is the run's total, give "
                         f"more than {resume['epoch']} to continue it")
    if s["save"]:                        # before training: a failed save afterwards loses the model
        from ..io import check_output_file
        check_output_file(s["save"], "--save")
    cr.manual_seed(s["seed"])
    data = prepare_data(s, images=is_conv(s["model"]))
    Xtr, ytr, Xval, yval, Xte, yte = (data[k] for k in ("Xtr", "ytr", "Xval", "yval", "Xte", "yte"))
    config = model_config(s, int(np.prod(Xtr.shape[1:])), data["n_classes"], data["image_shape"])
    model = build_model(config)
    opt, lr = build_optimizer(s, model.parameters())
    scheduler = build_scheduler(s, opt)
    train_data = (Xtr, ytr)
    if s["augment"]:
        if not is_conv(s["model"]):
            raise ValueError("--augment shifts images, which needs a ConvNet (--model lenet, "
                             "alexnet or vgg); an MLP sees flattened, standardised pixels")
        from ..data import ArrayDataset, DataLoader
        aug = augmentation(s["dataset"], data["image_shape"])
        # fit() builds the same loader (same seed, same shuffling) for a tuple; this one adds
        # the transform, whose generator a resumed run restores too
        train_data = DataLoader(ArrayDataset(Xtr, ytr), batch_size=s["batch_size"], shuffle=True,
                                seed=s["seed"], transform=aug)
    log(f"dataset={s['dataset']} train={len(Xtr)} val={len(Xval)} test={len(Xte)} "
        f"features={'x'.join(str(n) for n in Xtr.shape[1:])} classes={data['n_classes']}")
    if s["augment"]:
        log("augmentation: " + ", ".join(repr(t) for t in aug.transforms))
    log(model)
    log(f"parameters={model.num_parameters()} optimizer={s['optimizer']} lr={lr} "
        f"epochs={s['epochs']} batch_size={s['batch_size']}")
    stored = run_config(s, data)
    extra = {"config": config, "run_config": stored, "classes": data["classes"]}
    if data["mean"] is not None:
        extra["standardize"] = {"mean": data["mean"].astype(np.float32),
                                "std": data["std"].astype(np.float32)}
    if data.get("channel_mean") is not None:
        extra["mean_subtraction"] = {"mean": data["channel_mean"]}
    callbacks = []
    if s["early_stopping"]:
        callbacks.append(EarlyStopping("val_loss", patience=s["early_stopping"],
                                       restore_best_weights=True))
    if out:
        model_summary = summary(model, model_input_shape(config))

        def begin(logs):                  # runs after a resume was checked: a bad one writes nothing
            from ..io import remove_stale_temps
            os.makedirs(out, exist_ok=True)
            for d in (out, os.path.join(out, "checkpoints")):    # what a kill mid-write left
                remove_stale_temps(d)
            for name in ("history.csv", "config.json", "summary.json", "metrics.json"):
                with contextlib.suppress(FileNotFoundError):   # fixed-name temps of older writers
                    os.remove(os.path.join(out, name + ".tmp"))
            write_json(os.path.join(out, "config.json"), {"run": stored, "model": config})
            write_json(os.path.join(out, "summary.json"), model_summary.to_dict())
        callbacks += [LambdaCallback(on_train_begin=begin),
                      CSVLogger(os.path.join(out, "history.csv")),
                      ModelCheckpoint(os.path.join(out, "checkpoints"), monitor="val_loss",
                                      extra=extra)]
    if resume is not None:
        log(f"resuming from {resume['_path']} after epoch {resume['epoch']}")
    trainer = Trainer(model, opt, scheduler=scheduler)
    if resume is not None:                # named after its file, not as 'checkpoint'
        from .checkpoint import check_resumable
        check_resumable(trainer, resume, resume.get("_path", "checkpoint"))
    t0 = time.perf_counter()
    with detect_anomaly(s["detect_anomaly"]):
        history = trainer.fit(train_data, epochs=s["epochs"], val_data=(Xval, yval),
                              batch_size=s["batch_size"], seed=s["seed"], progress=s["progress"],
                              callbacks=callbacks, resume=resume)
    elapsed = time.perf_counter() - t0
    res = trainer.evaluate((Xte, yte))
    log(f"trained {len(history.epoch)} epochs in {elapsed:.1f}s; final train loss "
        f"{history['loss'][-1]:.4f}, val accuracy {history['val_accuracy'][-1]:.4f}")
    if s["save"]:
        saved = {"format": "chainrule-model", "config": config, "model": model.state_dict(),
                 "optimizer": opt.state_dict(), "history": history.history,
                 "run_config": stored, "classes": data["classes"]}
        for key in ("standardize", "mean_subtraction"):
            if key in extra:
                saved[key] = extra[key]
        os.makedirs(os.path.dirname(os.path.abspath(s["save"])), exist_ok=True)
        cr.save(saved, s["save"])
        log(f"saved model to {s['save']}")
    result = RunResult(trainer, model, res, config, stored, data, elapsed)
    if out:
        from ..viz.report import report_from_run
        metrics = held_out_metrics(model, Xte, yte, res, data["classes"])
        metrics["epochs"] = len(trainer.history.epoch)
        write_json(os.path.join(out, "metrics.json"), metrics)
        result.report = report_from_run(out)
        log(f"wrote run directory {out} (report: {result.report})")
    return result
