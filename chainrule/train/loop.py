"""The fit / evaluate / predict loop, with a live tqdm progress bar and per-epoch validation."""
import math
import os
import time

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad
from ..data import ArrayDataset, DataLoader, Dataset
from ..nn import functional as F
from ..optim.clip import backward_and_step
from ..optim import ReduceLROnPlateau
from .callbacks import Callback, History


def _loader(data, batch_size, shuffle, seed, where, dtype=None):
    """Accept a DataLoader, a Dataset, or a tuple (X, y) of arrays; floating X arrays are cast to
    ``dtype`` (the model's), so float64 NumPy data trains a float32 model as in Keras."""
    if data is None or isinstance(data, DataLoader):
        return data
    if isinstance(data, Dataset):
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = (np.asarray(d.data if isinstance(d, Tensor) else d) for d in data)
        if len(X) != len(y):
            raise ValueError(f"{where}: X has {len(X)} rows but y has {len(y)}")
        if dtype is not None and X.dtype.kind == "f" and X.dtype != dtype:
            X = X.astype(dtype)
        return DataLoader(ArrayDataset(X, y), batch_size=batch_size, shuffle=shuffle, seed=seed)
    raise TypeError(f"{where}: expected a DataLoader, a Dataset or a tuple (X, y), "
                    f"got {type(data).__name__}")


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


class Trainer:
    """Trains ``model`` with ``optimizer`` on ``loss_fn(model(x), y)``.

    >>> trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    >>> history = trainer.fit((X_train, y_train), epochs=20, val_data=(X_val, y_val))
    >>> trainer.evaluate((X_test, y_test))
    {'loss': 0.08, 'accuracy': 0.975}
    """

    def __init__(self, model, optimizer, loss_fn=F.cross_entropy, scheduler=None, clip_grad_norm=None):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.clip_grad_norm = scheduler, clip_grad_norm
        self.stop_training = False
        self.history = History()
        self.callbacks = []
        self.train_loader = None
        self.epoch = 0              # epochs completed
        self.initial_epoch = 0      # where the latest fit started (after a resume: the epoch restored)

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, **extra):
        """The whole training state (see ``chainrule.train.checkpoint``), for ``chainrule.save``."""
        from .checkpoint import training_state
        return training_state(self, **extra)

    def save_checkpoint(self, path, **extra):
        """Write a resumable checkpoint to ``path`` atomically (``fit(..., resume=path)``)."""
        from .checkpoint import save_checkpoint
        return save_checkpoint(path, self, **extra)

    def train_step(self, x, y):
        """One step: zero grad, forward, loss, backward, (clip), update. Returns (loss, output)."""
        opt = self.optimizer
        opt.zero_grad()
        out = self.model(x)
        loss = self.loss_fn(out, y)
        backward_and_step(loss, opt, self.clip_grad_norm)
        return loss, out

    def fit(self, train_data, epochs=10, val_data=None, batch_size=32, shuffle=True, seed=None,
            callbacks=(), progress=True, resume=None):
        """Train for ``epochs`` epochs; returns the History (per-epoch loss, accuracy, val_loss,
        val_accuracy, lr, time). A NaN or infinite loss stops training with an error naming the
        epoch and step.

        ``resume``: a checkpoint path (written by ``ModelCheckpoint`` or ``save_checkpoint``) or a
        loaded checkpoint dict. Model, optimizer, scheduler, RNG states (global and the loader's),
        history and callback states are restored, and training continues up to ``epochs`` epochs
        in all: call fit exactly as the interrupted run did, and the result is bit for bit the
        same as if it had never stopped (same data, model, optimizer and callbacks). A checkpoint
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
        val_loader = _loader(val_data, max(batch_size, 256), False, None, "fit(val_data)", dtype)
        if state is not None:
            try:
                start = restore_training_state(self, state, loader, where=where)
            except Exception:
                backend.set_rng_state(rng0)     # undo the loaders' draws too
                raise
            stop = max(epochs, start)
        else:
            start = len(self.history.epoch)
            stop = start + epochs
        self.callbacks, self.train_loader = cbs, loader
        self.initial_epoch = self.epoch = start
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
            total, correct, seen, counted = 0.0, 0, 0, 0
            bar = bar_cls(total=len(loader), desc=f"epoch {epoch + 1}/{stop}",
                          leave=True, dynamic_ncols=True, unit="batch") if bar_cls else None
            for step, (x, y) in enumerate(loader):
                loss, out = self.train_step(x, y)
                lv = float(loss.data)
                if not math.isfinite(lv):
                    if bar:
                        bar.close()
                    raise FloatingPointError(
                        f"fit: the loss became {lv} at epoch {epoch + 1}, step {step + 1} "
                        f"(batch of {len(y)}); lower the learning rate, clip gradients, or check "
                        f"the inputs for NaN/inf")
                n = len(y)
                total += lv * n
                seen += n
                c = _n_correct(out.data, y.data)
                if c is not None:
                    correct += c[0]
                    counted += c[1]
                for cb in cbs[1:]:
                    cb.on_batch_end(step, {"loss": lv})
                if bar:
                    bar.update(1)
                    if step % 10 == 0 or step == len(loader) - 1:
                        post = {"loss": f"{total / seen:.4f}"}
                        if counted:
                            post["acc"] = f"{correct / counted:.4f}"
                        bar.set_postfix(post, refresh=False)
            logs = {"loss": total / max(seen, 1)}
            if counted:
                logs["accuracy"] = correct / counted
            if val_loader is not None:
                for k, v in self.evaluate(val_loader).items():
                    logs["val_" + k] = v
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

    def evaluate(self, data, batch_size=256):
        """Mean loss (and accuracy for class labels) over ``data``, in eval mode, without gradients."""
        loader = _loader(data, batch_size, False, None, "evaluate", _model_dtype(self.model))
        was_training = self.model.training
        self.model.eval()
        total, seen, correct, counted = 0.0, 0, 0, 0
        with no_grad():
            for x, y in loader:
                out = self.model(x)
                n = len(y)
                total += float(self.loss_fn(out, y).data) * n
                seen += n
                c = _n_correct(out.data, y.data)
                if c is not None:
                    correct += c[0]
                    counted += c[1]
        self.model.train(was_training)
        res = {"loss": total / max(seen, 1)}
        if counted:
            res["accuracy"] = correct / counted
        return res

    def predict(self, X, batch_size=256):
        return predict(self.model, X, batch_size)


def predict(model, X, batch_size=256):
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


def evaluate(model, data, loss_fn=F.cross_entropy, batch_size=256):
    return Trainer(model, None, loss_fn).evaluate(data, batch_size)


def _model_dtype(model):
    for p in model.parameters():
        if p.data.dtype.kind == "f":
            return p.data.dtype
    return None


def _tqdm():
    from tqdm.auto import tqdm
    return tqdm
