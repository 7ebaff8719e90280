"""Trainer as the one loop under every trainer: compute_loss for batches of any shape (sizes and
metrics per batch), stateful batches (truncated BPTT), data drawn per epoch, eval_fn, EpochLog and
LambdaCallback(keys=...). The hand-written loops these replace are written out here once, to pin
that the Trainer gives the same numbers bit for bit."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.autograd import is_grad_enabled
from chainrule.nn import functional as F
from chainrule.optim import clip_grad_norm_
from chainrule.train import EpochLog, LambdaCallback, Trainer
from chainrule.train.bptt import truncated_bptt_chunks

V, H = 6, 8


class Tagger(nn.Module):
    """Embedding + GRU + Linear over padded id sequences: ids (N, T), lengths (N,) -> (N, T, V)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, 4)
        self.rnn = nn.GRU(4, H, batch_first=True)
        self.head = nn.Linear(H, V)

    def forward(self, x, state=None, lengths=None):
        out, state = self.rnn(self.emb(x), state, lengths=lengths) if lengths is not None \
            else self.rnn(self.emb(x), state)
        return self.head(out), state


def padded_data(n=40, T=7, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, T + 1, size=n)
    ids = rng.integers(1, V, size=(n, T))
    ids[np.arange(T)[None, :] >= lengths[:, None]] = 0
    tags = (ids + 1) % V
    return ids, tags, lengths


def masked_loss(model, batch):
    """Mean cross-entropy over the real steps, trimmed to the batch's longest sequence."""
    x, y, ln = (b.data for b in batch)
    T = int(ln.max())
    x, y = x[:, :T], y[:, :T]
    logits, _ = model(x, lengths=ln)
    mask = (np.arange(T)[None, :] < ln[:, None]).reshape(-1)
    per = F.cross_entropy(logits.reshape(-1, V), np.where(mask, y.reshape(-1), 0), reduction="none")
    n = int(mask.sum())
    correct = int(((logits.data.argmax(-1) == y).reshape(-1) & mask).sum())
    return {"loss": (per * mask.astype(per.dtype)).sum() / float(n), "size": n,
            "accuracy": (correct, n), "mean_length": float(ln.mean())}


def test_compute_loss_equals_the_hand_written_loop_bit_for_bit():
    ids, tags, lengths = padded_data()
    cr.manual_seed(0)
    model = Tagger()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    history = Trainer(model, opt, clip_grad_norm=0.5, compute_loss=masked_loss).fit(
        (ids, tags, lengths), epochs=3, batch_size=8, seed=4, progress=False)

    cr.manual_seed(0)
    ref = Tagger()
    ropt = optim.Adam(ref.parameters(), lr=1e-2)
    rng = np.random.default_rng(4)                  # a seeded loader draws one permutation an epoch
    losses, accs, means = [], [], []
    for _ in range(3):
        ref.train()
        order = rng.permutation(len(ids))
        total = seen = correct = 0
        length_sum = 0.0
        for b in range(0, len(ids), 8):
            idx = order[b:b + 8]
            batch = [cr.tensor(a[idx]) for a in (ids, tags, lengths)]
            ropt.zero_grad()
            out = masked_loss(ref, batch)
            out["loss"].backward()
            clip_grad_norm_(list(ref.parameters()), 0.5)
            ropt.step()
            total += float(out["loss"].data) * out["size"]
            seen += out["size"]
            correct += out["accuracy"][0]
            length_sum += out["mean_length"] * out["size"]
        losses.append(total / seen)
        accs.append(correct / seen)
        means.append(length_sum / seen)
    assert history["loss"] == losses                # the epoch means weigh batches by their size
    assert history["accuracy"] == accs              # a (numerator, denominator) pair: summed apart
    assert history["mean_length"] == means          # a number: weighted by the size
    for p, q in zip(model.parameters(), ref.parameters()):
        assert p.data.tobytes() == q.data.tobytes()
    ev = Trainer(model, None, compute_loss=masked_loss).evaluate((ids, tags, lengths))
    assert set(ev) == {"loss", "accuracy", "mean_length"}


def test_tuples_of_any_arity_must_agree_in_length():
    ids, tags, lengths = padded_data()
    trainer = Trainer(Tagger(), None, compute_loss=masked_loss)
    with pytest.raises(ValueError, match=r"\[40, 40, 39\] rows"):
        trainer.evaluate((ids, tags, lengths[:-1]))
    with pytest.raises(TypeError, match="without 'loss'"):
        Trainer(Tagger(), None, compute_loss=lambda m, b: {"size": 1}).evaluate((ids, tags, lengths))
    with pytest.raises(ValueError, match="stateful=True needs compute_loss"):
        Trainer(Tagger(), None, stateful=True)


def lm_step(model, batch, state, seen):
    x, y = batch
    seen.append(state)
    logits, state = model(x, state)
    return {"loss": F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)), "size": x.shape[1]}, state


def test_stateful_carries_a_detached_state_and_matches_hand_written_tbptt():
    seq = np.tile(np.arange(V), 12).reshape(2, -1)          # two streams
    x, y = seq[:, :-1], seq[:, 1:]
    chunks = [(xc, yc) for _, xc, yc in truncated_bptt_chunks(x, 8, y)]
    seen = []
    cr.manual_seed(3)
    model = Tagger()
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-2), clip_grad_norm=1.0,
                      compute_loss=lambda m, b, s: lm_step(m, b, s, seen), stateful=True)
    history = trainer.fit(lambda epoch: chunks, epochs=2, progress=False)
    assert len(seen) == 2 * len(chunks)
    assert seen[0] is None and seen[len(chunks)] is None          # each epoch starts afresh
    for s in seen[1:len(chunks)]:                                 # then the state is carried,
        assert isinstance(s, cr.Tensor) and not s.requires_grad and s.grad_fn is None  # detached

    cr.manual_seed(3)
    ref = Tagger()
    opt = optim.Adam(ref.parameters(), lr=1e-2)
    losses = []
    for _ in range(2):
        state, total, steps = None, 0.0, 0
        for xc, yc in chunks:
            opt.zero_grad()
            out, state = lm_step(ref, (xc, yc), state, [])
            out["loss"].backward()
            clip_grad_norm_(list(ref.parameters()), 1.0)
            opt.step()
            state = state.detach()
            total += float(out["loss"].data) * xc.shape[1]
            steps += xc.shape[1]
        losses.append(total / steps)
    assert history["loss"] == losses
    for p, q in zip(model.parameters(), ref.parameters()):
        assert p.data.tobytes() == q.data.tobytes()
    seen.clear()
    trainer.evaluate(lambda epoch: chunks)
    assert seen[0] is None and seen[1] is not None


def test_data_as_a_function_of_the_epoch():
    ids, tags, lengths = padded_data()
    calls, steps = [], []

    def per_epoch(epoch):
        calls.append(epoch)
        idx = np.arange(epoch, len(ids), 3)                       # different rows each epoch
        return [tuple(cr.tensor(a[idx]) for a in (ids, tags, lengths))]

    model = Tagger()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), compute_loss=masked_loss)
    spy = LambdaCallback(on_batch_end=lambda step, logs: steps.append(trainer.steps_per_epoch))
    trainer.fit(per_epoch, epochs=2, progress=False, callbacks=[spy])
    trainer.fit(per_epoch, epochs=1, progress=False)              # the epochs count on
    assert calls == [0, 1, 2] and steps == [1, 1]

    def generated(epoch):
        yield from per_epoch(epoch)

    trainer.fit(generated, epochs=1, progress=False)
    assert trainer.steps_per_epoch is None and len(trainer.history["loss"]) == 4


def test_eval_fn_runs_in_eval_mode_without_gradients_and_logs_its_keys():
    ids, tags, lengths = padded_data()
    model = Tagger()
    modes = []

    def eval_fn(m, epoch):
        modes.append((m.training, is_grad_enabled(), epoch))
        return {"val_score": float(epoch)}

    got = []
    report = LambdaCallback(on_epoch_end=lambda e, logs: got.append(logs), keys=("val_score", "loss"))
    history = Trainer(model, optim.SGD(model.parameters(), lr=0.1), compute_loss=masked_loss).fit(
        (ids, tags, lengths), epochs=2, progress=False, eval_fn=eval_fn, callbacks=[report])
    assert modes == [(False, False, 0), (False, False, 1)] and model.training
    assert history["val_score"] == [0.0, 1.0]
    assert [list(logs) for logs in got] == [["val_score", "loss"]] * 2    # only these, in order
    with pytest.raises(TypeError, match="eval_fn must return a dict"):
        Trainer(model, optim.SGD(model.parameters(), lr=0.1), compute_loss=masked_loss).fit(
            (ids, tags, lengths), epochs=1, progress=False, eval_fn=lambda m, e: 0.5)


def test_epoch_log_writes_a_line_per_epoch_or_one_bar(capsys):
    ids, tags, lengths = padded_data()
    model = Tagger()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), compute_loss=masked_loss)
    lines = []
    line = lambda epoch, logs: f"loss {logs['loss']:.3f}"  # noqa: E731
    trainer.fit((ids, tags, lengths), epochs=2, progress=False,
                callbacks=[EpochLog(line, log=lines.append)])
    assert [ln.split(" loss ")[0] for ln in lines] == ["epoch 1/2", "epoch 2/2"]
    assert lines[1].endswith(f"{trainer.history['loss'][1]:.3f}")
    trainer.fit((ids, tags, lengths), epochs=1, progress=False,
                callbacks=[EpochLog(line, bar=True, desc="tagger")])
    err = capsys.readouterr().err
    assert "tagger" in err and "1/1" in err and f"loss {trainer.history['loss'][-1]:.3f}" in err
    with pytest.raises(TypeError, match="format must be callable"):
        EpochLog("loss")
