"""Resumable training checkpoints.

One checkpoint is one ``chainrule.save`` file (npz + JSON manifest, no pickle, written atomically):

    {"format": "chainrule-model",            # the same layout `chainrule train --save` writes
     "model": state dict, "optimizer": state dict, "history": {"loss": [...], ...},
     "epoch": epochs completed,
     "training": {"history_epochs": [...], "optimizer_class": "SGD",
                  "scheduler": state dict or None,
                  "rng": {"global": ..., "loader": ..., "transform": ...},   # bit-generator states
                  "callbacks": {"EarlyStopping": {...}, ...}},
     ... anything passed as extra (config, standardize, run_config)}

``Trainer.fit(..., resume=path)`` restores all of it, so that a run interrupted after epoch k and
resumed gives bit for bit the weights and history (but the wall-clock 'time') of the run that was
never interrupted.
"""
import copy
import os

import numpy as np

from .. import backend
from ..io import CheckpointError, load, save

__all__ = ["FORMAT", "training_state", "save_checkpoint", "load_checkpoint", "check_model_state",
           "check_resumable", "restore_training_state", "restore_callback_states",
           "CheckpointError"]

FORMAT = "chainrule-model"
_RESERVED = ("format", "model", "optimizer", "history", "epoch", "training")


def _rng_state(gen):
    return None if gen is None else gen.bit_generator.state


def _callback_keys(callbacks):
    """Stable names for the callbacks' states: class name, then _1, _2 for repeats."""
    seen, keys = {}, []
    for cb in callbacks:
        name = type(cb).__name__
        n = seen.get(name, 0)
        seen[name] = n + 1
        keys.append(name if n == 0 else f"{name}_{n}")
    return keys


def training_state(trainer, **extra):
    """Everything needed to continue ``trainer``'s run exactly, as a dict ``chainrule.save`` takes."""
    bad = [k for k in extra if k in _RESERVED]
    if bad:
        raise ValueError(f"training_state: extra entries may not be named {bad}")
    loader = getattr(trainer, "train_loader", None)
    cbs = [cb for cb in getattr(trainer, "callbacks", []) if cb is not trainer.history]
    sched = trainer.scheduler
    state = {
        "format": FORMAT,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict() if trainer.optimizer is not None else None,
        "history": copy.deepcopy(trainer.history.history),
        "epoch": int(getattr(trainer, "epoch", len(trainer.history.epoch))),
        "training": {
            "history_epochs": [int(e) for e in trainer.history.epoch],
            "optimizer_class": type(trainer.optimizer).__name__ if trainer.optimizer else None,
            "scheduler": sched.state_dict() if sched is not None else None,
            "rng": {"global": backend.get_rng_state(),
                    "loader": _rng_state(getattr(loader, "generator", None)),
                    "transform": _rng_state(getattr(loader, "transform_generator", None))},
            "callbacks": {k: cb.state_dict() for k, cb in zip(_callback_keys(cbs), cbs)},
        },
    }
    state.update(extra)
    return state


def save_checkpoint(path, trainer, **extra):
    """Write ``training_state(trainer, **extra)`` to ``path`` atomically (parent folders made)."""
    d = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(d, exist_ok=True)
    save(training_state(trainer, **extra), path)
    return path


def load_checkpoint(path, model=None, resumable=False):
    """Read a checkpoint and check its layout; with ``model``, also that it fits the model.

    Raises FileNotFoundError, or CheckpointError (a ValueError) with what is wrong: truncated,
    not a chainrule checkpoint, written for another model (names and shapes that differ), or,
    with ``resumable``, lacking the training state needed to resume.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"{path!r} is a directory; give a checkpoint file such as "
                              f"{os.path.join(path, 'checkpoints', 'last.ckpt')!r}")
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        what = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path!r} is a chainrule file but not a model checkpoint "
                              f"(format {what!r}, expected {FORMAT!r} with a 'model' entry)")
    if resumable and not isinstance(state.get("training"), dict):
        raise CheckpointError(f"{path!r} holds a model but no training state (optimizer step, RNG, "
                              "epoch), so a run cannot resume from it; it was written by "
                              "`chainrule train --save` or by hand. Resume from a checkpoint "
                              "written by ModelCheckpoint / `chainrule train --out`")
    if model is not None:
        check_model_state(model, state["model"], path)
    return state


def check_model_state(model, model_state, where="checkpoint"):
    """Raise CheckpointError naming every parameter that is missing, unexpected or of another
    shape, when ``model_state`` (a state dict) does not belong to ``model``."""
    own = model.state_dict()
    if not isinstance(model_state, dict):
        raise CheckpointError(f"{where!r}: the 'model' entry is not a state dict")
    missing = [k for k in own if k not in model_state]
    unexpected = [k for k in model_state if k not in own]
    shapes = [f"{k} {tuple(np.shape(model_state[k]))} in the checkpoint vs "
              f"{tuple(own[k].shape)} in the model"
              for k in own if k in model_state and np.shape(model_state[k]) != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("shapes differ: " + "; ".join(shapes))
        if missing:
            parts.append(f"missing {missing}")
        if unexpected:
            parts.append(f"unexpected {unexpected}")
        raise CheckpointError(f"{where!r} is from another model ({type(model).__name__} with "
                              f"{model.num_parameters()} parameters): " + "; ".join(parts))


def _set_rng(gen, state, what):
    if state is None or gen is None:
        return
    kind = gen.bit_generator.state["bit_generator"]
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        got = state.get("bit_generator") if isinstance(state, dict) else state
        raise CheckpointError(f"the {what} generator is a {kind}, the checkpoint holds {got!r}")
    gen.bit_generator.state = state


def check_resumable(trainer, state, where="checkpoint"):
    """Raise CheckpointError unless ``state`` can resume ``trainer``'s run: it has training state,
    its model state fits the model, and it was written with the same optimizer class and with a
    scheduler exactly when the trainer has one. Changes nothing."""
    if not isinstance(state.get("training"), dict):
        raise CheckpointError(f"{where!r} holds no training state; a run cannot resume from it")
    tr = state["training"]
    check_model_state(trainer.model, state["model"], where)
    opt = trainer.optimizer
    want = tr.get("optimizer_class")
    if opt is not None and want is not None and type(opt).__name__ != want:
        raise CheckpointError(f"{where!r} was written with the {want} optimizer, this trainer "
                              f"uses {type(opt).__name__}")
    if (trainer.scheduler is None) != (tr.get("scheduler") is None):
        has = "has" if tr.get("scheduler") is not None else "has no"
        raise CheckpointError(f"{where!r} {has} scheduler state, but this trainer "
                              f"{'has no' if trainer.scheduler is None else 'has a'} scheduler")
    n_done = state.get("epoch")
    if not isinstance(n_done, int) or n_done < 0:
        raise CheckpointError(f"{where!r}: bad epoch count {n_done!r}")


def restore_training_state(trainer, state, loader=None, where="checkpoint"):
    """Load model, optimizer, scheduler, RNG states and history from ``state`` into ``trainer``;
    returns the number of epochs completed. All or nothing: on any error everything is put back
    as it was and CheckpointError is raised. Callback states are restored separately
    (``restore_callback_states``), after the callbacks' ``on_train_begin``."""
    check_resumable(trainer, state, where)
    tr = state["training"]
    opt = trainer.optimizer
    epochs = tr.get("history_epochs", [])
    n_done = state["epoch"]

    saved = {"model": trainer.model.state_dict(),
             "optimizer": opt.state_dict() if opt is not None else None,
             "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
             "rng": backend.get_rng_state(),
             "loader": _rng_state(getattr(loader, "generator", None)),
             "transform": _rng_state(getattr(loader, "transform_generator", None)),
             "history": (list(trainer.history.epoch), copy.deepcopy(trainer.history.history))}
    try:
        trainer.model.load_state_dict(state["model"])
        if opt is not None and state.get("optimizer") is not None:
            opt.load_state_dict(copy.deepcopy(state["optimizer"]))
        if trainer.scheduler is not None:
            trainer.scheduler.load_state_dict(copy.deepcopy(tr["scheduler"]))
        rng = tr.get("rng") or {}
        _set_rng(backend.get_rng(), rng.get("global"), "global")
        if loader is not None:
            _set_rng(loader.generator, rng.get("loader"), "data loader's shuffling")
            _set_rng(loader.transform_generator, rng.get("transform"), "data loader's transform")
        history = state.get("history") or {}
        trainer.history.epoch = [int(e) for e in epochs]
        trainer.history.history = {k: list(v) for k, v in history.items()}
    except Exception as e:
        trainer.model.load_state_dict(saved["model"])
        if opt is not None:
            opt.load_state_dict(saved["optimizer"])
        if trainer.scheduler is not None:
            trainer.scheduler.load_state_dict(saved["scheduler"])
        backend.set_rng_state(saved["rng"])
        if loader is not None:
            loader.generator.bit_generator.state = saved["loader"]
            loader.transform_generator.bit_generator.state = saved["transform"]
        trainer.history.epoch, trainer.history.history = saved["history"]
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"cannot resume from {where!r}: {type(e).__name__}: {e}") from e
    return n_done


def restore_callback_states(callbacks, state):
    """Give each callback its saved state (matched by class name and position)."""
    saved = (state.get("training") or {}).get("callbacks") or {}
    cbs = [cb for cb in callbacks if type(cb).__name__ != "History"]
    for key, cb in zip(_callback_keys(cbs), cbs):
        if key in saved:
            cb.load_state_dict(saved[key])
