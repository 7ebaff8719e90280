"""The fit / evaluate / predict loop: one ``Trainer`` under every trainer in the library.

A step is always: zero the gradients, compute the batch's loss, backward, clip, update. What
varies between tasks is kept to three arguments, so the loop itself is written once:

- the data: a DataLoader, a Dataset, a tuple of arrays ``(X, y, ...)`` (any arity), or a function
  ``epoch -> iterable of batches`` for data drawn anew every epoch (a fresh caption per image,
  a new offset for truncated-BPTT streams);
- the loss: ``loss_fn(model(x), y)`` for ``(x, y)`` batches, or ``compute_loss(model, batch)`` for
  any other batch (ragged padded sequences, several inputs), which may also report the batch's
  weight and per-batch metrics;
- the state: with ``stateful=True``, ``compute_loss(model, batch, state) -> (loss, state)`` and the
  state (an RNN's hidden state) is carried from batch to batch, detached at every boundary and reset
  at the start of each epoch: truncated back-propagation through time (``chainrule.train.bptt``).

>>> trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
>>> history = trainer.fit((X_train, y_train), epochs=20, val_data=(X_val, y_val))
>>> trainer.evaluate((X_test, y_test))
{'loss': 0.08, 'accuracy': 0.975}
"""
import math
import os
import time

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad
from ..data import ArrayDataset, DataLoader, Dataset, TensorDataset
from ..nn import functional as F
from ..optim.clip import backward_and_step
from ..optim import ReduceLROnPlateau
from .callbacks import Callback, History

# Batches for evaluation and prediction: no graph is kept, so they can be larger than training's.
EVAL_BATCH_SIZE = 256


def _loader(data, batch_size, shuffle, seed, where, dtype=None):
    """Accept a DataLoader, a Dataset, a function ``epoch -> batches`` (returned as it is), or a
    tuple (X, y, ...) of equally long arrays; a floating X is cast to ``dtype`` (the model's), so
    float64 NumPy data trains a float32 model as in Keras."""
    if data is None or isinstance(data, DataLoader) or callable(data):
        return data
    if isinstance(data, Dataset):
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed)
    if isinstance(data, (tuple, list)) and data:
        arrays = [np.asarray(d.data if isinstance(d, Tensor) else d) for d in data]
        if any(a.ndim == 0 for a in arrays):
            arrays = None
    else:
        arrays = None
    if arrays is None:
        raise TypeError(f"{where}: expected a DataLoader, a Dataset or a tuple (X, y), "
                        f"got {type(data).__name__}")
    if len(arrays) == 2 and len(arrays[0]) != len(arrays[1]):
        raise ValueError(f"{where}: X has {len(arrays[0])} rows but y has {len(arrays[1])}")
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"{where}: the arrays have {[len(a) for a in arrays]} rows; they must "
                         f"have one row per example each")
    X = arrays[0]
    if dtype is not None and X.dtype.kind == "f" and X.dtype != dtype:
        arrays[0] = X.astype(dtype)
    dataset = ArrayDataset(*arrays) if len(arrays) <= 2 else TensorDataset(*arrays)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed)


def _check_not_empty(where, loader):
    """Raise ValueError when ``loader`` (a DataLoader) yields no batch: an empty dataset, or one
    smaller than a batch with drop_last."""
    if not isinstance(loader, DataLoader) or len(loader):
        return
    n = len(loader.dataset)
    why = "is empty" if n == 0 else (f"has {n} examples, fewer than one batch of "
                                     f"{loader.batch_size}, and drop_last skips it")
    raise ValueError(f"{where}: the data {why}; nothing to train on" if where == "fit" else
                     f"{where}: the data {why}")


def _n_correct(out, y):
    """(correct predictions, predictions) for class labels, or None for other targets.

    Scores (N, C) against labels (N,) use the argmax; per-step scores (N, T, C) or (N, C, T)
    against labels (N, T) the argmax over the class axis; (N,) or (N, 1) scores against labels in
    {0, 1} or {-1, +1} their sign.
    """
    if y.dtype.kind not in "iub":
        return None
    if out.ndim == y.ndim + 1 and out.ndim >= 2 and out.shape[-1] > 1 and out.shape[:-1] == y.shape:
        return int((out.argmax(axis=-1) == y).sum()), y.size
    if out.ndim == y.ndim + 1 and out.ndim >= 2 and out.shape[0] == y.shape[0] \
            and out.shape[2:] == y.shape[1:]:
        return int((out.argmax(axis=1) == y).sum()), y.size
    if out.size != y.size:
        return None
    negative = y.min(initial=0) < 0
    pred = np.where(out.reshape(-1) >= 0, 1, -1 if negative else 0)
    return int((pred == y.reshape(-1)).sum()), y.size


def _batch_size(batch):
    """Examples in a batch: the length of its first field (1 for a batch without one)."""
    first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    try:
        return len(first)
    except TypeError:
        return 1


class _Means:
    """An epoch's running means: the loss and plain-number metrics weighted by each batch's size;
    a metric given as (numerator, denominator), such as (correct, counted), is summed apart, so an
    accuracy over tokens is not skewed by batches of unequal length."""

    def __init__(self):
        self.total, self.seen, self.sums = 0.0, 0, {}

    def add(self, loss, size, metrics):
        self.total += loss * size
        self.seen += size
        for k, v in metrics.items():
            num, den = v if isinstance(v, tuple) else (v * size, size)
            s = self.sums.setdefault(k, [0, 0])
            s[0] += num
            s[1] += den

    def result(self):
        res = {"loss": self.total / max(self.seen, 1)}
        res.update((k, n / d) for k, (n, d) in self.sums.items() if d)
        return res


def detach_state(state):
    """Cut the graph behind a recurrent state: a Tensor, or (nested) tuples / lists of Tensors such
    as an LSTM's (h, c). None and arrays pass through."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state


class Trainer:
    """Trains ``model`` with ``optimizer``.

    Args:
        loss_fn: ``loss_fn(model(x), y)`` for batches ``(x, y)`` (default cross-entropy).
        scheduler: stepped once per epoch (``ReduceLROnPlateau`` with the val_loss, else the loss).
        clip_grad_norm: clip the joint gradient norm of the optimizer's parameters (None / 0: not).
        compute_loss: ``compute_loss(model, batch)`` for any other batch: the loss Tensor, or a dict
            ``{"loss": Tensor, "size": n, **metrics}``: ``size`` weighs the batch in the epoch's
            means (default: the batch's first field's length; e.g. the real tokens of a padded
            batch), every other entry is a number averaged with the same weights, or a pair
            (numerator, denominator) summed apart, and shows in the logs under its key.
        stateful: call ``compute_loss(model, batch, state) -> (loss or dict, new_state)``; the state
            starts as None each epoch (and each ``evaluate``) and is detached before every batch,
            so the gradient runs back through one batch only (truncated BPTT).

    >>> trainer = Trainer(model, opt, compute_loss=lambda m, b: m.loss(*b), clip_grad_norm=5.0)
    """

    def __init__(self, model, optimizer, loss_fn=F.cross_entropy, scheduler=None, clip_grad_norm=None,
                 compute_loss=None, stateful=False):
        if stateful and compute_loss is None:
            raise ValueError("Trainer: stateful=True needs compute_loss(model, batch, state)")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.clip_grad_norm = scheduler, clip_grad_norm
        self.compute_loss, self.stateful = compute_loss, bool(stateful)
        self.stop_training = False
        self.history = History()
        self.callbacks = []
        self.train_loader = None
        self.epoch = 0              # epochs completed
        self.initial_epoch = 0      # where the latest fit started (after a resume: the epoch restored)
        self.total_epochs = 0       # where the latest fit stops
        self.steps_per_epoch = None  # batches in the current epoch (None when its data has no len)

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, **extra):
        """The whole training state (see ``chainrule.train.checkpoint``), for ``chainrule.save``."""
        from .checkpoint import training_state
        return training_state(self, **extra)

    def save_checkpoint(self, path, **extra):
        """Write a resumable checkpoint to ``path`` atomically (``fit(..., resume=path)``)."""
        from .checkpoint import save_checkpoint
        return save_checkpoint(path, self, **extra)

    # -- one batch ---------------------------------------------------------------------------------
    def batch_loss(self, batch, state=None):
        """The batch's (loss Tensor, size, metrics, new state), in whatever mode the model is in."""
        if self.compute_loss is None:
            x, y = batch
            out = self.model(x)
            c = _n_correct(out.data, y.data)
            return self.loss_fn(out, y), len(y), {} if c is None else {"accuracy": c}, state
        if self.stateful:
            result, state = self.compute_loss(self.model, batch, state)
        else:
            result = self.compute_loss(self.model, batch)
        if isinstance(result, dict):
            if "loss" not in result:
                raise TypeError(f"Trainer: compute_loss returned a dict without 'loss' "
                                f"(keys {sorted(result)})")
            metrics = {k: v for k, v in result.items() if k not in ("loss", "size")}
            size = result.get("size")
            return result["loss"], _batch_size(batch) if size is None else size, metrics, state
        return result, _batch_size(batch), {}, state

    def train_step(self, batch, state=None):
        """One step: zero grad, forward and loss, backward, (clip), update. Returns (loss as a
        float, size, metrics, new state); override it for a step of another shape."""
        self.optimizer.zero_grad()
        loss, size, metrics, state = self.batch_loss(batch, state)
        return backward_and_step(loss, self.optimizer, self.clip_grad_norm), size, metrics, state

    # -- the loop ----------------------------------------------------------------------------------
    def fit(self, train_data, epochs=10, val_data=None, batch_size=32, shuffle=True, seed=None,
            callbacks=(), progress=True, resume=None, eval_fn=None):
        """Train for ``epochs`` epochs; returns the History (per-epoch loss, metrics, val_loss,
        val_ metrics, eval_fn's numbers, lr, time). A NaN or infinite loss stops training with an
        error naming the epoch and step.

        ``train_data`` / ``val_data``: see the module docstring (``batch_size``, ``shuffle`` and
        ``seed`` apply to arrays and Datasets). ``eval_fn(model, epoch) -> dict`` adds validation
        numbers that are not a mean over batches (BLEU, exact match, ...) to the epoch's logs under
        the keys it returns; it runs in eval mode without gradients, before the callbacks' epoch end.
        ``progress``: a tqdm bar per epoch (False: none; callbacks can report instead).

        ``resume``: a checkpoint path (written by ``ModelCheckpoint`` or ``save_checkpoint``) or a
        loaded checkpoint dict. Model, optimizer, scheduler, RNG states (global and the loader's),
        history and callback states are restored, and training continues up to ``epochs`` epochs
        in all: call fit exactly as the interrupted run did, and the result is bit for bit the
        same as if it had never stopped (same data, model, optimizer and callbacks; data given as
        a function resumes exactly when its batches depend on the epoch alone). A checkpoint
        that is truncated or belongs to another model raises CheckpointError before anything,
        model or file, is changed.
        """
        from .checkpoint import (check_resumable, load_checkpoint, restore_callback_states,
                                 restore_training_state)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be Callback objects, got {type(cb).__name__}")
        cbs = [self.history] + sorted(callbacks, key=lambda cb: cb.order)
        state = None
        if resume is not None:          # checked before anything (even an RNG draw) happens
            where = str(resume) if isinstance(resume, (str, os.PathLike)) else "checkpoint"
            state = resume if isinstance(resume, dict) else load_checkpoint(resume, resumable=True)
            check_resumable(self, state, where)
            rng0 = backend.get_rng_state()
        dtype = _model_dtype(self.model)
        loader = _loader(train_data, batch_size, shuffle, seed, "fit", dtype)
        val_loader = _loader(val_data, max(batch_size, EVAL_BATCH_SIZE), False, None,
                             "fit(val_data)", dtype)
        for what, ld in (("fit", loader), ("fit(val_data)", val_loader)):
            _check_not_empty(what, ld)      # an epoch of nothing would "train" without an error
        if state is not None:
            try:
                start = restore_training_state(
                    self, state, loader if isinstance(loader, DataLoader) else None, where=where)
            except Exception:
                backend.set_rng_state(rng0)     # undo the loaders' draws too
                raise
            stop = max(epochs, start)
        else:
            start = len(self.history.epoch)
            stop = start + epochs
        self.callbacks, self.train_loader = cbs, loader
        self.initial_epoch = self.epoch = start
        self.total_epochs = stop
        for cb in cbs:
            cb.set_trainer(self)
        self.stop_training = False
        for cb in cbs:
            cb.on_train_begin({})
        if state is not None:
            restore_callback_states(cbs, state)
        bar_cls = _tqdm() if progress else None
        for epoch in range(start, stop):
            for cb in cbs:
                cb.on_epoch_begin(epoch, {})
            t0 = time.perf_counter()
            self.model.train()
            batches = loader(epoch) if callable(loader) else loader
            self.steps_per_epoch = len(batches) if hasattr(batches, "__len__") else None
            bar = bar_cls(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{stop}",
                          leave=True, dynamic_ncols=True, unit="batch") if bar_cls else None
            try:
                logs = self._train_epoch(batches, epoch, cbs[1:], bar)
            except BaseException:
                if bar:
                    bar.close()
                raise
            if val_loader is not None:
                for k, v in self.evaluate(val_loader).items():
                    logs["val_" + k] = v
            if eval_fn is not None:
                logs.update(self._run_eval_fn(eval_fn, epoch))
            logs["lr"] = self.optimizer.param_groups[0]["lr"]
            logs["time"] = time.perf_counter() - t0
            if bar:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k not in ("lr", "time")},
                                refresh=True)
                bar.close()
            if self.scheduler is not None:
                if isinstance(self.scheduler, ReduceLROnPlateau):
                    self.scheduler.step(logs.get("val_loss", logs["loss"]))
                else:
                    self.scheduler.step()
            self.epoch = epoch + 1
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in cbs:
            cb.on_train_end({})
        return self.history

    def _train_epoch(self, batches, epoch, cbs, bar):
        """One pass over ``batches``; returns the epoch's means (loss and metrics)."""
        means, state = _Means(), None
        n = self.steps_per_epoch
        step = -1
        for step, batch in enumerate(batches):
            lv, size, metrics, state = self.train_step(batch, detach_state(state))
            if not math.isfinite(lv):
                raise FloatingPointError(
                    f"fit: the loss became {lv} at epoch {epoch + 1}, step {step + 1} "
                    f"(batch of {size}); lower the learning rate, clip gradients, or check "
                    f"the inputs for NaN/inf")
            means.add(lv, size, metrics)
            for cb in cbs:
                cb.on_batch_end(step, {"loss": lv})
            if bar:
                bar.update(1)
                if step % 10 == 0 or step == (n or 0) - 1:
                    post = {"acc" if k == "accuracy" else k: f"{v:.4f}"
                            for k, v in means.result().items()}
                    bar.set_postfix(post, refresh=False)
        if step < 0:
            raise ValueError(f"fit: epoch {epoch + 1} had no batches: the training data gave "
                             f"nothing to train on")
        return means.result()

    def _run_eval_fn(self, eval_fn, epoch):
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad():
                extra = eval_fn(self.model, epoch)
        finally:
            self.model.train(was_training)
        if not isinstance(extra, dict):
            raise TypeError(f"fit: eval_fn must return a dict of numbers, got {type(extra).__name__}")
        return extra

    def evaluate(self, data, batch_size=EVAL_BATCH_SIZE):
        """Mean loss and metrics (accuracy for class labels, or compute_loss's) over ``data``, in
        eval mode, without gradients. ``data`` as ``fit``'s; a function is called with the
        number of epochs completed."""
        loader = _loader(data, batch_size, False, None, "evaluate", _model_dtype(self.model))
        batches = loader(self.epoch) if callable(loader) else loader
        was_training = self.model.training
        self.model.eval()
        means, state = _Means(), None
        try:
            with no_grad():
                for batch in batches:
                    loss, size, metrics, state = self.batch_loss(batch, state)
                    means.add(float(loss.data), size, metrics)
        finally:
            self.model.train(was_training)
        if not means.seen:                  # a mean over nothing would read as a loss of 0
            raise ValueError("evaluate: the data holds no examples")
        return means.result()

    def predict(self, X, batch_size=EVAL_BATCH_SIZE):
        return predict(self.model, X, batch_size)


def predict(model, X, batch_size=EVAL_BATCH_SIZE):
    """The model's outputs for ``X`` (an array (N, ...) or a DataLoader), as one NumPy array,
    computed in eval mode without gradients."""
    was_training = model.training
    model.eval()
    outs = []
    with no_grad():
        if isinstance(X, DataLoader):
            for batch in X:
                outs.append(model(batch[0]).data)
        else:
            X = np.asarray(X.data if isinstance(X, Tensor) else X)
            dtype = _model_dtype(model)
            if dtype is not None and X.dtype.kind == "f" and X.dtype != dtype:
                X = X.astype(dtype)
            for i in range(0, len(X), batch_size):
                outs.append(model(Tensor(X[i:i + batch_size])).data)
    model.train(was_training)
    return np.concatenate(outs) if outs else np.empty((0,))


def fit(model, optimizer, train_data, epochs=10, loss_fn=F.cross_entropy, val_data=None,
        batch_size=32, **kwargs):
    """Train ``model`` (see ``Trainer.fit``); returns the History."""
    return Trainer(model, optimizer, loss_fn).fit(train_data, epochs=epochs, val_data=val_data,
                                                  batch_size=batch_size, **kwargs)


def evaluate(model, data, loss_fn=F.cross_entropy, batch_size=EVAL_BATCH_SIZE):
    return Trainer(model, None, loss_fn).evaluate(data, batch_size)


def _model_dtype(model):
    for p in model.parameters():
        if p.data.dtype.kind == "f":
            return p.data.dtype
    return None


def _tqdm():
    from tqdm.auto import tqdm
    return tqdm
