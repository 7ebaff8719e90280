"""The fit / evaluate / predict loop (chainrule.train): History, data forms, modes, callbacks,
NaN detection, seeded repeatability and the progress bar."""
import math
import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import ArrayDataset, DataLoader
from chainrule.models import mlp
from chainrule.nn import functional as F
from chainrule.train import Callback, History, Trainer, evaluate, fit, predict

N, D, C = 90, 2, 3


def blobs(n=N, seed=0):
    """Three well separated Gaussian blobs in 2-D: float32 (n, 2) features, int64 (n,) labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % C
    centres = np.array([[0.0, 4.0], [4.0, -2.0], [-4.0, -2.0]])
    X = centres[y] + 0.5 * rng.standard_normal((n, D))
    return X.astype(np.float32), y.astype(np.int64)


def linear_model():
    return nn.Sequential(nn.Linear(D, C))


def sgd(model, lr=0.1):
    return optim.SGD(model.parameters(), lr=lr)


# -- fit and History ------------------------------------------------------------------------------

def test_fit_returns_history_with_one_entry_per_epoch():
    X, y = blobs()
    model = linear_model()
    trainer = Trainer(model, sgd(model))
    history = trainer.fit((X, y), epochs=4, val_data=blobs(30, seed=1), batch_size=16, progress=False)
    assert isinstance(history, History) and history is trainer.history
    assert history.epoch == [0, 1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert len(history[key]) == 4, key
        assert all(isinstance(v, float) and math.isfinite(v) for v in history[key]), key
    assert history["lr"] == [0.1] * 4
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"] + history["val_accuracy"])
    assert "History(epochs=4" in repr(history)


def test_fit_lowers_the_loss_on_a_separable_problem():
    X, y = blobs()
    model = linear_model()
    history = fit(model, sgd(model), (X, y), epochs=10, batch_size=16, progress=False)
    assert history["loss"][-1] < 0.25 * history["loss"][0]
    assert history["accuracy"][-1] == 1.0
    assert Trainer(model, None).evaluate((X, y))["accuracy"] == 1.0


def test_fit_again_continues_the_history():
    X, y = blobs()
    model = linear_model()
    trainer = Trainer(model, sgd(model))
    trainer.fit((X, y), epochs=2, progress=False)
    history = trainer.fit((X, y), epochs=3, progress=False)
    assert history.epoch == [0, 1, 2, 3, 4]
    assert len(history["loss"]) == 5


def test_history_lr_follows_the_scheduler():
    X, y = blobs()
    model = linear_model()
    opt = sgd(model, lr=0.1)
    trainer = Trainer(model, opt, scheduler=optim.StepLR(opt, step_size=1, gamma=0.5))
    history = trainer.fit((X, y), epochs=3, progress=False)
    assert np.allclose(history["lr"], [0.1, 0.05, 0.025])     # the lr each epoch trained with


def test_fit_with_gradient_clipping_runs():
    X, y = blobs()
    model = linear_model()
    history = Trainer(model, sgd(model), clip_grad_norm=0.5).fit((X, y), epochs=3, progress=False)
    assert history["loss"][-1] < history["loss"][0]


def _data_forms(X, y, batch_size):
    return {
        "arrays": (X, y),
        "list": [X, y],
        "tensors": (cr.tensor(X), cr.tensor(y)),
        "dataset": ArrayDataset(X, y),
        "loader": DataLoader(ArrayDataset(X, y), batch_size=batch_size, shuffle=False),
    }


@pytest.mark.parametrize("form", ["arrays", "list", "tensors", "dataset", "loader"])
def test_fit_accepts_arrays_datasets_and_loaders(form):
    """Unshuffled, every form of the same data gives the very same training run."""
    X, y = blobs()
    runs = {}
    for name in ("arrays", form):
        cr.manual_seed(3)
        model = linear_model()
        data = _data_forms(X, y, 16)[name]
        val = _data_forms(X[:30], y[:30], 16)[name]
        history = fit(model, sgd(model), data, epochs=3, val_data=val, batch_size=16, shuffle=False,
                      progress=False)
        runs[name] = (history, model.state_dict())
    (h0, s0), (h1, s1) = runs["arrays"], runs[form]
    for key in ("loss", "accuracy", "val_accuracy"):
        assert h1[key] == h0[key], key
    # a validation loader keeps its own batch size, so the mean is summed in another order
    assert h1["val_loss"] == pytest.approx(h0["val_loss"], rel=1e-6)
    for k in s0:
        assert np.array_equal(s0[k], s1[k]), k
    assert h1["loss"][-1] < h1["loss"][0]


def test_fit_rejects_bad_data_and_callbacks():
    X, y = blobs()
    model = linear_model()
    trainer = Trainer(model, sgd(model))
    with pytest.raises(TypeError, match="DataLoader, a Dataset or a tuple"):
        trainer.fit(X, epochs=1, progress=False)
    with pytest.raises(ValueError, match="90 rows but y has 89"):
        trainer.fit((X, y[:-1]), epochs=1, progress=False)
    with pytest.raises(TypeError, match="callbacks must be Callback objects"):
        trainer.fit((X, y), epochs=1, callbacks=[lambda *a: None], progress=False)


# -- evaluate -------------------------------------------------------------------------------------

class Probe(nn.Module):
    """A linear layer that records the mode and grad mode each forward pass ran in."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, C)
        self.calls = []

    def forward(self, x):
        out = self.lin(x)
        self.calls.append((self.training, cr.is_grad_enabled(), out.requires_grad, out.grad_fn))
        return out


def test_evaluate_runs_in_eval_mode_without_a_graph_and_restores_train_mode():
    X, y = blobs()
    model = Probe()
    assert model.training
    result = Trainer(model, sgd(model)).evaluate((X, y), batch_size=32)
    assert len(model.calls) == 3                               # 90 rows in batches of 32
    for training, grad_enabled, requires_grad, grad_fn in model.calls:
        assert (training, grad_enabled, requires_grad, grad_fn) == (False, False, False, None)
    assert model.training                                      # put back
    assert all(p.grad is None for p in model.parameters())

    # the numbers: the mean loss over all rows (the last batch is smaller) and the accuracy
    with cr.no_grad():
        logits = model.lin(cr.tensor(X))
    expected_loss = float(F.cross_entropy(logits, cr.tensor(y)).data)
    assert set(result) == {"loss", "accuracy"}
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["accuracy"] == pytest.approx(float((logits.data.argmax(1) == y).mean()))
    assert evaluate(model, (X, y)) == pytest.approx(result)    # the module-level function


def test_evaluate_keeps_eval_mode_and_is_deterministic_with_dropout():
    X, y = blobs()
    model = mlp(D, (32,), C, dropout=0.5)
    trainer = Trainer(model, sgd(model))
    first, second = trainer.evaluate((X, y)), trainer.evaluate((X, y))
    assert first == second                                     # dropout is off in eval mode
    assert model.training
    model.eval()
    trainer.evaluate((X, y))
    assert not model.training                                  # a model in eval mode stays there


# -- predict --------------------------------------------------------------------------------------

def test_predict_returns_one_numpy_array_for_arrays_tensors_and_loaders():
    X, y = blobs()
    model = mlp(D, (16,), C, dropout=0.5)
    with cr.no_grad():
        model.eval()
        expected = model(cr.tensor(X)).data
        model.train()
    trainer = Trainer(model, sgd(model))
    for out in (trainer.predict(X, batch_size=32), predict(model, X), predict(model, cr.tensor(X)),
                predict(model, DataLoader(ArrayDataset(X, y), batch_size=7))):
        assert isinstance(out, np.ndarray) and not isinstance(out, cr.Tensor)
        assert out.shape == (N, C) and out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


# -- callbacks ------------------------------------------------------------------------------------

class Recorder(Callback):
    def __init__(self, stop_at_epoch=None):
        self.events = []
        self.stop_at_epoch = stop_at_epoch

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin", None, dict(logs)))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch, dict(logs)))

    def on_batch_end(self, step, logs=None):
        self.events.append(("batch_end", step, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, dict(logs)))
        if epoch == self.stop_at_epoch:
            self.trainer.stop_training = True

    def on_train_end(self, logs=None):
        self.events.append(("train_end", None, dict(logs)))


def test_callback_hooks_are_called_in_order_with_logs():
    X, y = blobs()
    model = linear_model()
    trainer = Trainer(model, sgd(model))
    rec = Recorder()
    trainer.fit((X, y), epochs=2, val_data=(X, y), batch_size=32, callbacks=[rec], progress=False)
    assert rec.trainer is trainer
    kinds = [(kind, i) for kind, i, _ in rec.events]
    per_epoch = lambda e: [("epoch_begin", e), ("batch_end", 0), ("batch_end", 1), ("batch_end", 2),
                           ("epoch_end", e)]
    assert kinds == [("train_begin", None)] + per_epoch(0) + per_epoch(1) + [("train_end", None)]
    for kind, _, logs in rec.events:
        if kind == "batch_end":
            assert set(logs) == {"loss"} and math.isfinite(logs["loss"])
    epoch_logs = [logs for kind, _, logs in rec.events if kind == "epoch_end"]
    for e, logs in enumerate(epoch_logs):
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(logs)
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            assert logs[key] == trainer.history[key][e]


def test_stop_training_ends_after_the_current_epoch():
    X, y = blobs()
    model = linear_model()
    trainer = Trainer(model, sgd(model))
    rec = Recorder(stop_at_epoch=1)
    history = trainer.fit((X, y), epochs=10, batch_size=32, callbacks=[rec], progress=False)
    assert history.epoch == [0, 1]
    assert len(history["loss"]) == 2
    assert rec.events[-1][0] == "train_end"
    assert [i for kind, i, _ in rec.events if kind == "epoch_end"] == [0, 1]

    # stop_training is reset by the next fit, and a request from a batch hook ends that epoch
    class StopMidEpoch(Callback):
        def on_batch_end(self, step, logs=None):
            if step == 0:
                self.trainer.stop_training = True

    history = trainer.fit((X, y), epochs=5, batch_size=32, callbacks=[StopMidEpoch()],
                          progress=False)
    assert history.epoch == [0, 1, 2]                          # one more, full epoch


# -- regression -----------------------------------------------------------------------------------

def test_regression_with_mse_loss_has_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5], dtype=np.float32) + 0.3)[:, None]
    model = nn.Linear(3, 1)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss_fn=F.mse_loss)
    history = trainer.fit((X, y), epochs=20, val_data=(X[:16], y[:16]), batch_size=16,
                          progress=False)
    assert set(history.history) == {"loss", "val_loss", "lr", "time"}
    assert history["loss"][-1] < 1e-3 * history["loss"][0]
    result = trainer.evaluate((X, y))
    assert set(result) == {"loss"} and result["loss"] < 1e-3
    pred = trainer.predict(X)
    assert pred.shape == (64, 1)
    np.testing.assert_allclose(pred, y, atol=0.05)
    np.testing.assert_allclose(model.weight.data, [[1.0, -2.0, 0.5]], atol=0.02)


# -- NaN / inf losses -----------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_in_the_inputs_stops_fit_naming_epoch_and_step():
    X, y = blobs()
    X[41, 0] = np.nan                          # row 41, batches of 8: the sixth batch (rows 40..47)
    model = linear_model()
    rec = Recorder()
    with pytest.raises(FloatingPointError) as info:
        fit(model, sgd(model), (X, y), epochs=3, batch_size=8, shuffle=False, callbacks=[rec],
            progress=False)
    msg = str(info.value)
    assert re.search(r"\bepoch 1\b", msg) and re.search(r"\bstep 6\b", msg), msg
    assert "nan" in msg
    assert [i for kind, i, _ in rec.events if kind == "batch_end"] == [0, 1, 2, 3, 4]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_in_a_later_epoch_names_that_epoch():
    X, y = blobs()
    model = linear_model()

    class Poison(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                model[0].weight.data[0, 0] = np.nan

    with pytest.raises(FloatingPointError) as info:
        fit(model, sgd(model), (X, y), epochs=5, batch_size=16, callbacks=[Poison()], progress=False)
    msg = str(info.value)
    assert re.search(r"\bepoch 3\b", msg) and re.search(r"\bstep 1\b", msg), msg


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_huge_learning_rate_stops_fit_with_floating_point_error():
    X, y = blobs()
    X = X * 1e3
    model = mlp(D, (16,), C)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=1e30))
    with pytest.raises(FloatingPointError, match=r"the loss became (nan|inf) at epoch 1, step \d+"):
        trainer.fit((X, y), epochs=3, batch_size=8, progress=True)


# -- seeded repeatability -------------------------------------------------------------------------

def _seeded_run(global_seed, loader_seed=None):
    cr.manual_seed(global_seed)
    X, y = blobs()
    model = mlp(D, (16,), C, dropout=0.2)            # dropout draws from the RNG every step
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, opt, (X, y), epochs=3, val_data=(X[:30], y[:30]), batch_size=16,
                  seed=loader_seed, progress=False)
    return model.state_dict(), {k: v for k, v in history.history.items() if k != "time"}


@pytest.mark.parametrize("loader_seed", [None, 7])
def test_seeded_runs_repeat_bit_for_bit(loader_seed):
    state1, hist1 = _seeded_run(5, loader_seed)
    state2, hist2 = _seeded_run(5, loader_seed)
    assert hist1 == hist2                                       # exact float equality
    assert state1.keys() == state2.keys()
    for k in state1:
        a, b = np.asarray(state1[k]), np.asarray(state2[k])
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), k
    state3, hist3 = _seeded_run(6, loader_seed)                 # and the seed matters
    assert hist3 != hist1
    assert any(not np.array_equal(state1[k], state3[k]) for k in state1)


# -- progress bar ---------------------------------------------------------------------------------

def test_progress_bar_shows_the_running_loss(capsys, monkeypatch):
    from functools import partial

    from chainrule.train import loop
    from tqdm import tqdm

    # tqdm redraws at most every 0.1 s; draw on every update so the running numbers show up
    monkeypatch.setattr(loop, "_tqdm", lambda: partial(tqdm, mininterval=0, miniters=1))
    X, y = blobs()
    model = linear_model()
    trainer = Trainer(model, sgd(model))
    history = trainer.fit((X, y), epochs=2, val_data=(X, y), batch_size=8, progress=True)
    err = capsys.readouterr().err                               # tqdm writes to stderr
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert "12/12" in err                                       # 90 rows in batches of 8
    # during the epoch: the running mean loss and accuracy
    running = re.findall(r"\| (\d+)/12 \[[^]]*, loss=(\d+\.\d{4}), acc=(\d\.\d{4})\]", err)
    assert running and any(int(step) < 12 for step, _, _ in running), err
    # at the end of each epoch: the epoch's numbers, validation included
    for e in range(2):
        assert (f"loss={history['loss'][e]:.4f}, accuracy={history['accuracy'][e]:.4f}, "
                f"val_loss={history['val_loss'][e]:.4f}, "
                f"val_accuracy={history['val_accuracy'][e]:.4f}]") in err


def test_progress_bar_with_the_default_tqdm(capsys):
    X, y = blobs()
    model = linear_model()
    history = fit(model, sgd(model), (X, y), epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and f"loss={history['loss'][-1]:.4f}" in err


def test_no_progress_prints_nothing(capsys):
    X, y = blobs()
    model = linear_model()
    fit(model, sgd(model), (X, y), epochs=2, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_per_step_outputs_count_token_accuracy():
    """A tagger's (N, T, C) scores against (N, T) labels: accuracy over tokens, fit runs."""
    import chainrule as cr
    from chainrule import nn, optim
    from chainrule.train import Trainer
    from chainrule.train.loop import _n_correct

    out = np.zeros((2, 3, 4))
    out[..., 1] = 1                                     # predicts class 1 everywhere
    y = np.array([[1, 1, 0], [1, 2, 1]])
    assert _n_correct(out, y) == (4, 6)
    assert _n_correct(out.transpose(0, 2, 1), y) == (4, 6)   # (N, C, T) layout

    X = np.random.default_rng(0).standard_normal((40, 5, 3)).astype(np.float32)
    Y = (X[..., 0] > 0).astype(np.int64)              # a label per time step
    model = nn.Linear(3, 2)
    loss = lambda o, t: nn.functional.cross_entropy(o.reshape(-1, 2), t.reshape(-1))  # noqa: E731
    hist = Trainer(model, optim.SGD(model.parameters(), lr=0.5), loss).fit((X, Y), epochs=15, progress=False)
    assert hist["accuracy"][-1] > 0.9
