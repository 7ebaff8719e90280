"""Callbacks: hooks into the fit loop, in Keras' shape (History is one of them).

>>> trainer.fit(train, epochs=100, val_data=val, callbacks=[
...     EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
...     ModelCheckpoint("runs/a/checkpoints"),          # last.ckpt every epoch, best.ckpt
...     CSVLogger("runs/a/history.csv"),
...     LearningRateScheduler(optim.ReduceLROnPlateau(opt, factor=0.5, patience=2)),
...     LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["val_accuracy"]))])

Write your own by subclassing ``Callback`` and overriding any hook. A callback that keeps state
across epochs returns it from ``state_dict()`` (arrays, numbers, strings, lists, dicts) and takes
it back in ``load_state_dict()``: checkpoints carry it, so a resumed run continues exactly.
"""
import math
import os
import string
import warnings

import numpy as np

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
           "CSVLogger", "LambdaCallback", "EpochLog"]


class Callback:
    """Subclass and override any of the hooks; ``self.trainer`` is set before training starts
    (``self.trainer.model``, ``.optimizer``, ``.history``, ``.epoch`` = epochs completed).

    ``logs`` is a dict of the numbers known at that point (loss, accuracy, val_loss, lr ...).
    Set ``self.trainer.stop_training = True`` to end training after the current epoch.
    Callbacks run in the order given, except that those with a larger ``order`` run later
    (ModelCheckpoint has 100, so the state it saves includes every other callback's update).
    """

    trainer = None
    order = 0

    def set_trainer(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_batch_end(self, step, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def state_dict(self):
        """What a checkpoint keeps of this callback (restored before training resumes)."""
        return {}

    def load_state_dict(self, state):
        pass


class History(Callback):
    """Per-epoch numbers: ``history.history['val_accuracy'][-1]``, ``history.epoch``."""

    order = -100

    def __init__(self):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def keys(self):
        return self.history.keys()

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


def _resolve_mode(name, monitor, mode):
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.endswith(("f1", "precision", "recall"))) \
            else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"{name}: mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def _monitored(name, monitor, logs):
    if monitor not in logs:
        hint = "; pass val_data to fit, or monitor 'loss'" if monitor.startswith("val_") else ""
        raise ValueError(f"{name}: the monitored value {monitor!r} is not in the logs "
                         f"(available: {', '.join(sorted(logs))}){hint}")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    An improvement must beat the best value so far by more than ``min_delta``. ``mode`` is 'min'
    (losses), 'max' (accuracies) or 'auto' (max when the name has 'acc'). ``baseline``: the value
    to beat from the start. With ``restore_best_weights`` the model ends training (stopped early
    or not) with the weights of its best epoch; unlike Keras, this also holds when the last
    epoch was not the best without patience running out.

    >>> EarlyStopping(monitor="val_loss", patience=5, min_delta=1e-4, restore_best_weights=True)
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False, baseline=None, verbose=False):
        if not (isinstance(patience, (int, np.integer)) and patience >= 0):
            raise ValueError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode = _resolve_mode("EarlyStopping", monitor, mode)
        self.restore_best_weights, self.baseline, self.verbose = restore_best_weights, baseline, verbose
        self._reset()

    def _reset(self):
        self.wait = 0
        self.best = (self.baseline if self.baseline is not None else
                     (math.inf if self.mode == "min" else -math.inf))
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def _improves(self, value):
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored("EarlyStopping", self.monitor, logs or {})
        if self._improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.trainer.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            if self.verbose:
                print(f"EarlyStopping: {self.monitor} has not improved for {self.wait} epochs "
                      f"(best {self.best:.4f} at epoch {self.best_epoch + 1 if self.best_epoch is not None else '-'}); "
                      f"stopping after epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        last = self.trainer.history.epoch[-1] if self.trainer.history.epoch else None
        if self.restore_best_weights and self.best_weights is not None and self.best_epoch != last:
            self.trainer.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1}")

    def state_dict(self):
        return {"wait": self.wait, "best": float(self.best), "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        self.wait, self.best = int(state["wait"]), float(state["best"])
        self.best_epoch, self.stopped_epoch = state["best_epoch"], state["stopped_epoch"]
        self.best_weights = state.get("best_weights")


class ModelCheckpoint(Callback):
    """Write resumable checkpoints (model, optimizer, scheduler, RNG states, epoch, history and
    callback states), atomically through ``chainrule.save``: a crash never leaves a torn file,
    and killing training mid-epoch loses at most that epoch.

    ``path`` is a directory (an existing one, or a name without a file extension): then
    ``last.ckpt`` is written after every epoch and ``best.ckpt`` whenever ``monitor`` improves
    (``save_best_only=True`` skips ``last.ckpt``). Or ``path`` is a file name, which may hold
    fields such as ``"ckpt/epoch{epoch:03d}-{val_loss:.4f}.ckpt"`` (``epoch`` counts from 1):
    written after every epoch, or with ``save_best_only`` only when ``monitor`` improves.
    ``extra``: a dict of more entries to store in every checkpoint (e.g. the model's config).

    Resume with ``trainer.fit(..., resume="runs/a/checkpoints/last.ckpt")``.
    """

    order = 100

    def __init__(self, path, monitor="val_loss", mode="auto", save_best_only=False, extra=None,
                 verbose=False):
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = _resolve_mode("ModelCheckpoint", monitor, mode)
        self.save_best_only = bool(save_best_only)
        self.extra = dict(extra or {})
        self.verbose = verbose
        self.directory_mode = (os.path.isdir(self.path) or self.path.endswith(("/", os.sep))
                               or not os.path.splitext(self.path)[1])
        if not self.directory_mode:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.path) if f]
            self._fields = [f.split(".")[0].split("[")[0] for f in fields]
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.last_path = self.best_path = None
        self._warned = False

    @property
    def directory(self):
        return self.path if self.directory_mode else os.path.dirname(self.path)

    def on_train_begin(self, logs=None):
        if self.directory:
            os.makedirs(self.directory, exist_ok=True)

    def _improves(self, logs):
        if self.monitor not in logs:
            if self.save_best_only and not self.directory_mode:
                _monitored("ModelCheckpoint", self.monitor, logs)     # raises the clear error
            if not self._warned:
                warnings.warn(f"ModelCheckpoint: {self.monitor!r} is not in the logs "
                              f"({', '.join(sorted(logs))}); no best checkpoint is kept")
                self._warned = True
            return False
        v = float(logs[self.monitor])
        if not math.isfinite(v):
            return False
        return v < self.best if self.mode == "min" else v > self.best

    def on_epoch_end(self, epoch, logs=None):
        from .checkpoint import save_checkpoint
        logs = logs or {}
        improved = self._improves(logs)
        if improved:        # before the state is taken, so the checkpoint knows its own best
            self.best, self.best_epoch = float(logs[self.monitor]), epoch
        if self.directory_mode:
            if not self.save_best_only:
                self.last_path = os.path.join(self.path, "last.ckpt")
                save_checkpoint(self.last_path, self.trainer, **self.extra)
            if improved:
                self.best_path = os.path.join(self.path, "best.ckpt")
                save_checkpoint(self.best_path, self.trainer, **self.extra)
        elif improved or not self.save_best_only:
            fields = {k: v for k, v in logs.items()}
            fields["epoch"] = epoch + 1
            missing = [f for f in self._fields if f not in fields]
            if missing:
                raise ValueError(f"ModelCheckpoint: the file name {self.path!r} uses {missing}, "
                                 f"which are not in the logs ({', '.join(sorted(fields))})")
            path = self.path.format(**fields)
            save_checkpoint(path, self.trainer, **self.extra)
            self.last_path = path
            if improved:
                self.best_path = path
        if self.verbose and improved:
            print(f"ModelCheckpoint: {self.monitor} improved to {self.best:.4f}; saved "
                  f"{self.best_path}")

    def state_dict(self):
        return {"best": float(self.best), "best_epoch": self.best_epoch,
                "best_path": self.best_path, "last_path": self.last_path}

    def load_state_dict(self, state):
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
        self.best_path, self.last_path = state.get("best_path"), state.get("last_path")


class LearningRateScheduler(Callback):
    """Step a learning-rate schedule during fit.

    ``schedule`` is a scheduler from ``chainrule.optim`` (stepped after each epoch, or after each
    batch with ``interval='batch'``, e.g. OneCycleLR; ``ReduceLROnPlateau`` is given the
    ``monitor``ed value: 'val_loss' when there is validation, else 'loss'), or a function
    ``schedule(epoch, lr) -> lr`` called before each epoch, as in Keras. The lr each epoch
    trained with is in ``history['lr']``; the scheduler's state is kept in checkpoints.

    >>> LearningRateScheduler(optim.CosineAnnealingLR(opt, T_max=50))
    >>> LearningRateScheduler(lambda epoch, lr: lr * 0.9 if epoch >= 10 else lr)
    """

    def __init__(self, schedule, monitor=None, interval="epoch"):
        if interval not in ("epoch", "batch"):
            raise ValueError(f"LearningRateScheduler: interval must be 'epoch' or 'batch', got "
                             f"{interval!r}")
        self.is_scheduler = hasattr(schedule, "step") and hasattr(schedule, "state_dict")
        if not self.is_scheduler and not callable(schedule):
            raise TypeError(f"LearningRateScheduler: expected a scheduler or a function "
                            f"(epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule, self.monitor, self.interval = schedule, monitor, interval

    @property
    def _plateau(self):
        from ..optim import ReduceLROnPlateau
        return isinstance(self.schedule, ReduceLROnPlateau)

    def on_epoch_begin(self, epoch, logs=None):
        if not self.is_scheduler:
            for g in self.trainer.optimizer.param_groups:
                lr = self.schedule(epoch, g["lr"])
                if not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr)):
                    raise ValueError(f"LearningRateScheduler: the schedule returned {lr!r} for "
                                     f"epoch {epoch}; expected a finite number")
                g["lr"] = float(lr)

    def on_batch_end(self, step, logs=None):
        if self.is_scheduler and self.interval == "batch" and not self._plateau:
            self.schedule.step()

    def on_epoch_end(self, epoch, logs=None):
        if not self.is_scheduler:
            return
        if self._plateau:
            logs = logs or {}
            monitor = self.monitor or ("val_loss" if "val_loss" in logs else "loss")
            self.schedule.step(_monitored("LearningRateScheduler", monitor, logs))
        elif self.interval == "epoch":
            self.schedule.step()

    def state_dict(self):
        return {"scheduler": self.schedule.state_dict()} if self.is_scheduler else {}

    def load_state_dict(self, state):
        if self.is_scheduler and state.get("scheduler") is not None:
            self.schedule.load_state_dict(state["scheduler"])


class CSVLogger(Callback):
    """Write one CSV row per epoch (``epoch`` counts from 0, as ``History.epoch``; then the logs:
    loss, accuracy, val_loss, val_accuracy, lr, time), flushed as each epoch ends.

    A fresh run starts a new file (``append=True`` appends to an existing one). When the trainer
    already has a history (a resumed run, or fit called again) the file is rewritten from it
    first, so it always mirrors the history, even after a crash between a row and a checkpoint.
    """

    def __init__(self, path, separator=",", append=False):
        self.path, self.sep, self.append = os.fspath(path), separator, append
        self.keys = None

    def _row(self, epoch, values):
        cells = [str(epoch)]
        for k in self.keys:
            v = values.get(k)
            cells.append("" if v is None else repr(float(v)) if isinstance(v, (float, np.floating))
                         else str(v))
        return self.sep.join(cells) + "\n"

    def _rewrite(self):
        h = self.trainer.history
        self.keys = list(h.history)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.sep.join(["epoch"] + self.keys) + "\n")
            for i, e in enumerate(h.epoch):
                f.write(self._row(e, {k: v[i] for k, v in h.history.items() if i < len(v)}))
        os.replace(tmp, self.path)

    def on_train_begin(self, logs=None):
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.keys = None
        if self.trainer.history.epoch:
            self._rewrite()
        elif self.append and os.path.exists(self.path) and os.path.getsize(self.path):
            with open(self.path) as f:
                self.keys = f.readline().rstrip("\n").split(self.sep)[1:]
        else:
            with open(self.path, "w"):
                pass

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = list(logs)
            with open(self.path, "a") as f:
                f.write(self.sep.join(["epoch"] + self.keys) + "\n")
        if not set(logs) <= set(self.keys):
            self._rewrite()     # a new column: rewrite from the history (History runs first)
            return
        with open(self.path, "a") as f:     # closed, so flushed, every epoch
            f.write(self._row(epoch, logs))


class LambdaCallback(Callback):
    """A callback from plain functions, for one-off hooks:

    >>> LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))

    Each argument takes the hook's arguments: ``on_train_begin(logs)``, ``on_epoch_begin(epoch,
    logs)``, ``on_batch_end(step, logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_end(logs)``.
    ``keys``: hand ``on_epoch_end`` only these log entries, in this order (a function that
    promises its caller a fixed set of numbers, whatever else the loop logs).
    """

    def __init__(self, on_train_begin=None, on_epoch_begin=None, on_batch_end=None,
                 on_epoch_end=None, on_train_end=None, keys=None):
        if keys is not None and on_epoch_end is not None:
            user_fn, keys = on_epoch_end, tuple(keys)
            on_epoch_end = lambda epoch, logs: user_fn(  # noqa: E731
                epoch, {k: logs[k] for k in keys if k in (logs or {})})
        for name, fn in [("on_train_begin", on_train_begin), ("on_epoch_begin", on_epoch_begin),
                         ("on_batch_end", on_batch_end), ("on_epoch_end", on_epoch_end),
                         ("on_train_end", on_train_end)]:
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable, got "
                                    f"{type(fn).__name__}")
                setattr(self, name, fn)


class EpochLog(Callback):
    """One line per epoch, ``format(epoch, logs) -> str``: with ``bar=True`` the postfix of a single
    tqdm bar over all the epochs (``desc`` its label), else ``log("epoch 3/30 " + line)``
    (``log=None``: nothing). For trainers that report per epoch rather than per batch.

    >>> EpochLog(lambda epoch, logs: f"loss {logs['loss']:.4f}", log=print)
    """

    def __init__(self, format, log=print, bar=False, desc=None):
        if not callable(format):
            raise TypeError(f"EpochLog: format must be callable, got {type(format).__name__}")
        self.format, self.log, self.bar, self.desc = format, log, bool(bar), desc
        self._bar = None

    def on_train_begin(self, logs=None):
        if self.bar:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=self.trainer.total_epochs - self.trainer.initial_epoch,
                             desc=self.desc, unit="epoch", dynamic_ncols=True)

    def on_epoch_end(self, epoch, logs=None):
        line = self.format(epoch, logs or {})
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(line)
        elif self.log:
            self.log(f"epoch {epoch + 1}/{self.trainer.total_epochs} {line}")

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
