"""Callbacks in the fit loop: EarlyStopping, ModelCheckpoint, LearningRateScheduler, CSVLogger,
LambdaCallback and user subclasses."""
import csv
import math
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.train import (Callback, CSVLogger, EarlyStopping, LambdaCallback,
                             LearningRateScheduler, ModelCheckpoint, Trainer)


def blobs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[0.0, 4.0], [4.0, -2.0], [-4.0, -2.0]])
    X = centres[y] + 0.5 * rng.standard_normal((n, 2))
    return X.astype(np.float32), y.astype(np.int64)


def trainer(lr=0.1, scheduler=None):
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return Trainer(model, opt, scheduler=scheduler(opt) if scheduler else None)


class Script(Callback):
    """Replaces the logged value of ``key`` by a scripted sequence, to drive monitors exactly."""

    order = -50

    def __init__(self, key, values):
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


# -- EarlyStopping --------------------------------------------------------------------------------

def test_early_stopping_waits_patience_epochs_after_the_best():
    t = trainer()
    es = EarlyStopping(monitor="val_loss", patience=2)
    # History runs before the scripted values, so drive a custom monitored key instead
    es.monitor = "score"
    vals = [5.0, 4.0, 4.5, 3.0, 3.5, 3.2, 3.1, 1.0]
    h = t.fit(blobs(), epochs=8, callbacks=[Script("score", vals), es], progress=False)
    assert h.epoch == [0, 1, 2, 3, 4, 5]            # best at epoch 3, two epochs without it
    assert es.best == 3.0 and es.best_epoch == 3 and es.stopped_epoch == 5


def test_early_stopping_min_delta_mode_max_and_baseline():
    t = trainer()
    es = EarlyStopping(monitor="acc_like", patience=1, min_delta=0.05, mode="max")
    t.fit(blobs(), epochs=6, callbacks=[Script("acc_like", [0.5, 0.53, 0.6, 0.62, 0.9, 1.0]), es],
          progress=False)
    assert es.best == 0.5 and es.stopped_epoch == 1            # 0.53 is not 0.05 better
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="val_loss").mode == "min"
    es = EarlyStopping(monitor="s", patience=0, baseline=1.0)
    h = trainer().fit(blobs(), epochs=5, callbacks=[Script("s", [2.0, 0.5, 0.1, 0.1, 0.1]), es],
                      progress=False)
    assert h.epoch == [0]                                      # never beat the baseline


def test_early_stopping_restores_the_best_weights():
    t = trainer()
    snapshots = {}
    keep = LambdaCallback(on_epoch_end=lambda e, logs: snapshots.__setitem__(e, t.model.state_dict()))
    es = EarlyStopping(monitor="s", patience=2, restore_best_weights=True)
    t.fit(blobs(), epochs=10, callbacks=[Script("s", [3, 1, 2, 2, 2, 2, 2, 2, 2, 2]), keep, es],
          progress=False)
    assert es.stopped_epoch == 3
    final = t.model.state_dict()
    for k in final:
        np.testing.assert_array_equal(final[k], snapshots[1][k])
    assert not np.array_equal(final["0.weight"], snapshots[3]["0.weight"])


def test_early_stopping_names_a_missing_monitor():
    with pytest.raises(ValueError, match=r"'val_loss' is not in the logs .*pass val_data"):
        trainer().fit(blobs(), epochs=2, callbacks=[EarlyStopping()], progress=False)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


# -- ModelCheckpoint ------------------------------------------------------------------------------

def test_model_checkpoint_directory_keeps_last_and_best(tmp_path):
    t = trainer()
    saved = {}

    def spy(epoch, logs):
        saved[epoch] = t.model.state_dict()
    mc = ModelCheckpoint(tmp_path / "ckpt", monitor="s", extra={"note": "hello"})
    t.fit(blobs(), epochs=5, callbacks=[Script("s", [3.0, 1.0, 2.0, 0.5, 0.7]),
                                        LambdaCallback(on_epoch_end=spy), mc], progress=False)
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["best.ckpt", "last.ckpt"]
    last, best = cr.load(tmp_path / "ckpt/last.ckpt"), cr.load(tmp_path / "ckpt/best.ckpt")
    assert last["epoch"] == 5 and best["epoch"] == 4 and mc.best_epoch == 3 and mc.best == 0.5
    assert last["note"] == "hello" and last["format"] == "chainrule-model"
    for k in saved[4]:
        np.testing.assert_array_equal(last["model"][k], saved[4][k])
        np.testing.assert_array_equal(best["model"][k], saved[3][k])
    assert len(best["history"]["loss"]) == 4 and len(last["history"]["loss"]) == 5
    assert best["training"]["callbacks"]["ModelCheckpoint"]["best"] == 0.5   # its own update
    assert not [f for f in os.listdir(tmp_path / "ckpt") if f.endswith(".tmp")]


def test_model_checkpoint_file_pattern_and_save_best_only(tmp_path):
    t = trainer()
    pattern = str(tmp_path / "e{epoch:02d}-{s:.1f}.ckpt")
    mc = ModelCheckpoint(pattern, monitor="s", save_best_only=True)
    t.fit(blobs(), epochs=4, callbacks=[Script("s", [3.0, 1.0, 2.0, 0.5]), mc], progress=False)
    assert sorted(os.listdir(tmp_path)) == ["e01-3.0.ckpt", "e02-1.0.ckpt", "e04-0.5.ckpt"]
    assert mc.best_path == str(tmp_path / "e04-0.5.ckpt")
    t = trainer()
    every = ModelCheckpoint(tmp_path / "every" / "model.ckpt")
    with pytest.warns(UserWarning, match="no best checkpoint"):   # no val_loss: no best
        t.fit(blobs(), epochs=2, callbacks=[every], progress=False)
    assert cr.load(tmp_path / "every/model.ckpt")["epoch"] == 2
    with pytest.raises(ValueError, match="not in the logs"):
        trainer().fit(blobs(), epochs=1, progress=False,
                      callbacks=[ModelCheckpoint(tmp_path / "x.ckpt", save_best_only=True)])


# -- learning-rate schedules ------------------------------------------------------------------------

def test_lr_scheduler_callback_steps_each_epoch_and_logs_the_lr_used():
    t = trainer(lr=0.1)
    sched = optim.StepLR(t.optimizer, step_size=1, gamma=0.5)
    h = t.fit(blobs(), epochs=3, callbacks=[LearningRateScheduler(sched)], progress=False)
    assert np.allclose(h["lr"], [0.1, 0.05, 0.025])
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)


def test_reduce_on_plateau_gets_the_monitored_value():
    t = trainer(lr=0.1)
    sched = optim.ReduceLROnPlateau(t.optimizer, factor=0.5, patience=0)
    seen = []
    orig = sched.step
    sched.step = lambda metric: (seen.append(metric), orig(metric))
    h = t.fit(blobs(), epochs=3, val_data=blobs(30, 1), progress=False,
              callbacks=[LearningRateScheduler(sched)])
    assert seen == h["val_loss"]
    t = trainer(lr=0.1)
    sched = optim.ReduceLROnPlateau(t.optimizer, factor=0.5, patience=0)
    t.fit(blobs(), epochs=4, progress=False,
          callbacks=[Script("s", [1.0, 2.0, 2.0, 0.5]), LearningRateScheduler(sched, monitor="s")])
    assert sched.best == 0.5 and t.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)


def test_trainer_scheduler_argument_and_function_schedules():
    t = trainer(lr=0.2, scheduler=lambda opt: optim.ReduceLROnPlateau(opt, factor=0.1, patience=0))
    t.fit(blobs(), epochs=2, progress=False)
    assert t.scheduler.last_epoch == 2
    t = trainer(lr=0.2)
    h = t.fit(blobs(), epochs=3, progress=False,
              callbacks=[LearningRateScheduler(lambda epoch, lr: 0.2 / (epoch + 1))])
    assert np.allclose(h["lr"], [0.2, 0.1, 0.2 / 3])
    with pytest.raises(ValueError, match="returned nan"):
        trainer().fit(blobs(), epochs=1, progress=False,
                      callbacks=[LearningRateScheduler(lambda e, lr: float("nan"))])


def test_one_cycle_steps_per_batch():
    X, y = blobs()
    t = trainer()
    steps = 3 * math.ceil(len(X) / 16)
    sched = optim.OneCycleLR(t.optimizer, max_lr=0.5, total_steps=steps)
    t.fit((X, y), epochs=3, batch_size=16, progress=False,
          callbacks=[LearningRateScheduler(sched, interval="batch")])
    assert sched.last_epoch == steps


# -- CSVLogger ----------------------------------------------------------------------------------------

def test_csv_logger_writes_and_flushes_a_row_per_epoch(tmp_path):
    path = tmp_path / "logs" / "history.csv"
    rows_seen = []

    def look(epoch, logs):               # runs after the logger: the row is already on disk
        with open(path) as f:
            rows_seen.append(len(f.read().strip().splitlines()) - 1)
    t = trainer()
    logger = CSVLogger(path)
    logger.order = -1
    h = t.fit(blobs(), epochs=3, val_data=blobs(30, 1), progress=False,
              callbacks=[LambdaCallback(on_epoch_end=look), logger])
    assert rows_seen == [1, 2, 3]
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["val_loss"]) for r in rows] == h["val_loss"]       # exact (repr)


def test_csv_logger_append_and_rewrite_from_history(tmp_path):
    path = tmp_path / "h.csv"
    t = trainer()
    t.fit(blobs(), epochs=2, progress=False, callbacks=[CSVLogger(path)])
    t2 = trainer()
    t2.fit(blobs(), epochs=1, progress=False, callbacks=[CSVLogger(path, append=True)])
    with open(path) as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1", "0"]
    t.fit(blobs(), epochs=1, progress=False, callbacks=[CSVLogger(path)])   # continues t's history
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert [float(r["loss"]) for r in rows] == t.history["loss"]


# -- users' own callbacks --------------------------------------------------------------------------

def test_lambda_and_subclassed_callbacks_see_every_hook():
    calls = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            calls.append(("train_begin", self.trainer.epoch))

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            calls.append(("epoch_end", epoch, round(logs["loss"], 6) == round(logs["loss"], 6)))
            if epoch == 1:
                self.trainer.stop_training = True

        def on_train_end(self, logs=None):
            calls.append(("train_end",))
    batches = []
    lam = LambdaCallback(on_batch_end=lambda step, logs: batches.append(logs["loss"]))
    h = trainer().fit(blobs(), epochs=5, batch_size=30, callbacks=[Recorder(), lam], progress=False)
    assert calls == [("train_begin", 0), ("epoch_begin", 0), ("epoch_end", 0, True),
                     ("epoch_begin", 1), ("epoch_end", 1, True), ("train_end",)]
    assert len(batches) == 6 and h.epoch == [0, 1]
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        LambdaCallback(on_epoch_end=3)
    with pytest.raises(TypeError, match="Callback objects"):
        trainer().fit(blobs(), epochs=1, callbacks=[lambda: 0], progress=False)
