"""Resumable training: a run interrupted after epoch k (by an exception mid-epoch, or by SIGKILL
of the process) and resumed from its last checkpoint equals the uninterrupted run bit for bit,
with dropout (global RNG), shuffling (the loader's generator) and live augmentation (its child
generator). Bad checkpoints are clear errors that change nothing, in memory or on disk."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import ArrayDataset, DataLoader
from chainrule.io import CheckpointError
from chainrule.train import (CSVLogger, EarlyStopping, LambdaCallback, LearningRateScheduler,
                             ModelCheckpoint, Trainer, load_checkpoint)

EPOCHS = 5


def data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = ((X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.8)).astype(np.int64)
    return X[:96], y[:96], X[96:], y[96:]


def jitter(x, rng):
    """A random augmentation drawing from the loader's transform generator."""
    return x + 0.05 * rng.standard_normal(x.shape).astype(x.dtype)


def build(kind, seed, run_dir, hidden=16):
    """A fresh process's view of the run: model, optimizer, scheduler, loader, callbacks, all
    constructed from scratch (the global seed differs between the first run and a resume)."""
    cr.manual_seed(seed)
    X, y, Xv, yv = data()
    model = nn.Sequential(nn.Linear(6, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 3))
    cbs = [ModelCheckpoint(os.path.join(run_dir, "ckpt")),
           CSVLogger(os.path.join(run_dir, "history.csv"))]
    if kind == "sgd":
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        sched = optim.StepLR(opt, step_size=2, gamma=0.5)
        loader = DataLoader(ArrayDataset(X, y), batch_size=16, shuffle=True)   # seeded globally
        cbs.append(EarlyStopping(patience=100))
    else:
        opt = optim.Adam(model.parameters(), lr=0.01)
        sched = None
        loader = DataLoader(ArrayDataset(X, y), batch_size=16, shuffle=True, transform=jitter)
        cbs += [LearningRateScheduler(optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)),
                EarlyStopping(patience=100, restore_best_weights=True)]
    trainer = Trainer(model, opt, scheduler=sched)
    return trainer, loader, (Xv, yv), cbs


class Interrupt(Exception):
    pass


def run(kind, run_dir, interrupt_at=None, resume=None, seed=0):
    trainer, loader, val, cbs = build(kind, seed, run_dir)
    if interrupt_at is not None:
        def stop(step, logs):
            if (trainer.epoch, step) == interrupt_at:
                raise Interrupt
        cbs.append(LambdaCallback(on_batch_end=stop))
    trainer.fit(loader, epochs=EPOCHS, val_data=val, callbacks=cbs, progress=False, resume=resume)
    return trainer


def assert_same_run(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), k
    assert a.history.epoch == b.history.epoch
    assert set(a.history.history) == set(b.history.history)
    for k in a.history.history:
        if k != "time":
            assert a.history[k] == b.history[k], k
    oa, ob = a.optimizer.state_dict(), b.optimizer.state_dict()
    for i in oa["state"]:
        for k, v in oa["state"][i].items():
            assert np.array_equal(v, ob["state"][i][k]), (i, k)
    assert oa["param_groups"][0]["lr"] == ob["param_groups"][0]["lr"]


def csv_without_time(path):
    with open(path) as f:
        rows = [line.rstrip("\n").split(",") for line in f]
    t = rows[0].index("time")
    return [r[:t] + r[t + 1:] for r in rows]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_interrupted_mid_epoch_and_resumed_equals_uninterrupted(kind, tmp_path):
    full = run(kind, tmp_path / "full")
    with pytest.raises(Interrupt):
        run(kind, tmp_path / "cut", interrupt_at=(2, 3))       # in the 3rd epoch, 4th batch
    ckpt = tmp_path / "cut" / "ckpt" / "last.ckpt"
    assert load_checkpoint(ckpt)["epoch"] == 2                  # lost only the epoch under way
    resumed = run(kind, tmp_path / "cut", resume=ckpt, seed=123)   # another process, other seed
    assert resumed.initial_epoch == 2 and resumed.epoch == EPOCHS
    assert_same_run(full, resumed)
    assert csv_without_time(tmp_path / "full/history.csv") == \
        csv_without_time(tmp_path / "cut/history.csv")
    # the resumed run keeps writing checkpoints that equal the uninterrupted run's
    a, b = (load_checkpoint(tmp_path / d / "ckpt/last.ckpt") for d in ("full", "cut"))
    assert a["training"]["rng"] == b["training"]["rng"]
    for k in a["model"]:
        assert np.array_equal(a["model"][k], b["model"][k])


def test_resume_of_a_finished_run_trains_nothing_and_more_epochs_continue(tmp_path):
    full = run("sgd", tmp_path / "a")
    ckpt = tmp_path / "a/ckpt/last.ckpt"
    again = run("sgd", tmp_path / "a", resume=ckpt, seed=9)
    assert_same_run(full, again)
    trainer, loader, val, cbs = build("sgd", 5, tmp_path / "a")
    trainer.fit(loader, epochs=EPOCHS + 2, val_data=val, callbacks=cbs, progress=False, resume=ckpt)
    assert trainer.history.epoch == list(range(EPOCHS + 2))


if __name__ == "__main__":
    # Run by the SIGKILL test: train in a real process and kill it, hard, in the middle of an
    # epoch; nothing gets to clean up, as when a machine loses power.
    import signal
    _trainer, _loader, _val, _cbs = build("sgd", 0, sys.argv[1])

    def _kill(step, logs):
        if (_trainer.epoch, step) == (3, 2):
            os.kill(os.getpid(), signal.SIGKILL)
    _trainer.fit(_loader, epochs=EPOCHS, val_data=_val, progress=False,
                 callbacks=_cbs + [LambdaCallback(on_batch_end=_kill)])
    sys.exit(0)


def test_killed_process_resumes_bit_for_bit(tmp_path):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), str(tmp_path / "killed")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    ckpt = tmp_path / "killed/ckpt/last.ckpt"
    assert load_checkpoint(ckpt)["epoch"] == 3
    assert not [f for f in os.listdir(ckpt.parent) if f.endswith(".tmp")]
    resumed = run("sgd", tmp_path / "killed", resume=ckpt, seed=77)
    assert_same_run(run("sgd", tmp_path / "full"), resumed)


# -- bad checkpoints change nothing -----------------------------------------------------------------

def snapshot(directory):
    out = {}
    for root, _, files in os.walk(directory):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[p] = (hashlib.sha256(fh.read()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


@pytest.fixture
def run_dir(tmp_path):
    trainer, loader, val, cbs = build("sgd", 0, tmp_path)
    trainer.fit(loader, epochs=2, val_data=val, callbacks=cbs, progress=False)
    return tmp_path


def attempt(run_dir, resume, hidden=16):
    """Try to resume into run_dir; returns (error, weights before, weights after, rng before/after)."""
    trainer, loader, val, cbs = build("sgd", 4, run_dir, hidden=hidden)
    before = trainer.model.state_dict()
    rng_before = cr.get_rng_state()
    with pytest.raises(CheckpointError) as info:
        trainer.fit(loader, epochs=EPOCHS, val_data=val, callbacks=cbs, progress=False,
                    resume=resume)
    after = trainer.model.state_dict()
    for k in before:
        assert np.array_equal(before[k], after[k]), k
    assert cr.get_rng_state() == rng_before
    assert trainer.history.epoch == []
    return str(info.value)


@pytest.mark.parametrize("keep", [0, 10, 0.5, -20])
def test_truncated_checkpoint_is_a_clear_error_and_touches_nothing(run_dir, keep):
    src = run_dir / "ckpt/last.ckpt"
    blob = src.read_bytes()
    n = int(len(blob) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(blob) + keep)
    bad = run_dir / "ckpt/truncated.ckpt"
    bad.write_bytes(blob[:n])
    files = snapshot(run_dir)
    msg = attempt(run_dir, bad)
    assert str(bad) in msg and ("truncated or corrupt" in msg or "is empty" in msg
                                or "not a chainrule checkpoint" in msg), msg
    assert snapshot(run_dir) == files


def test_checkpoint_of_another_model_is_a_clear_error_and_touches_nothing(run_dir, tmp_path):
    other = tmp_path / "other"
    trainer, loader, val, cbs = build("sgd", 0, other, hidden=8)
    trainer.fit(loader, epochs=1, val_data=val, callbacks=cbs, progress=False)
    files = snapshot(run_dir)
    msg = attempt(run_dir, other / "ckpt/last.ckpt")
    assert "is from another model" in msg and "0.weight (8, 6) in the checkpoint vs (16, 6)" in msg
    assert snapshot(run_dir) == files
    # and through load_checkpoint(path, model)
    with pytest.raises(CheckpointError, match="another model"):
        load_checkpoint(other / "ckpt/last.ckpt", model=build("sgd", 0, other)[0].model)


def test_a_failure_half_way_through_restoring_rolls_everything_back(run_dir):
    state = load_checkpoint(run_dir / "ckpt/last.ckpt")
    state["optimizer"]["state"][0]["momentum_buffer"] = np.zeros((2, 2), np.float32)
    files = snapshot(run_dir)
    msg = attempt(run_dir, state)                # the model loads first, then the optimizer fails
    assert "cannot resume" in msg and "momentum_buffer" in msg
    assert snapshot(run_dir) == files


def test_wrong_optimizer_scheduler_and_model_only_files_are_refused(run_dir, tmp_path):
    state = load_checkpoint(run_dir / "ckpt/last.ckpt")
    state["training"]["optimizer_class"] = "Adam"
    assert "written with the Adam optimizer, this trainer uses SGD" in attempt(run_dir, state)
    state = load_checkpoint(run_dir / "ckpt/last.ckpt")
    state["training"]["scheduler"] = None
    assert "has no scheduler state" in attempt(run_dir, state)
    plain = tmp_path / "model.npz"
    cr.save({"format": "chainrule-model", "model": state["model"]}, plain)
    assert "no training state" in attempt(run_dir, plain)
    cr.save({"weights": np.zeros(3)}, tmp_path / "foreign.npz")
    assert "not a model checkpoint" in attempt(run_dir, tmp_path / "foreign.npz")
    np.savez(tmp_path / "numpy.npz", a=np.zeros(2))
    assert "not a chainrule checkpoint" in attempt(run_dir, tmp_path / "numpy.npz")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(run_dir)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.ckpt")
