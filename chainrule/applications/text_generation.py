"""Text generation with a character-level language model (``chainrule.models.char_rnn.CharRNN``):
training with truncated back-propagation through time, evaluation in nats per character, sampling
with temperature and top-k, and checkpoints that carry the vocabulary.

>>> text = read_text("input.txt")
>>> model, vocab, history = train_char_rnn(text, epochs=20, seq_len=64, batch_size=32)
>>> save_char_rnn("char.ckpt", model, vocab)
>>> model, vocab, meta = load_char_rnn("char.ckpt")
>>> print(sample(model, vocab, prime="Alice ", length=300, temperature=0.8, top_k=5, seed=0))
"""
import math

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad
from ..data.text import CharVocabulary, Vocabulary
from ..io import load, save
from .. import optim
from ..nn import functional as F
from ..train import LambdaCallback, Trainer
from ..train.bptt import truncated_bptt_chunks
from ..models.char_rnn import CharRNN

__all__ = ['CHECKPOINT_KIND', 'sample_next', 'sample', 'make_streams', 'evaluate_char_rnn', 'train_char_rnn', 'save_char_rnn', 'load_char_rnn']


CHECKPOINT_KIND = "chainrule.char_rnn"


def _check_sampling(temperature, top_k):
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"sample: temperature must be a positive number, got {temperature!r} "
                         f"(use top_k=1 for greedy decoding)")
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise ValueError(f"sample: top_k must be a positive integer or None, got {top_k!r}")


def sample_next(logits, temperature=1.0, top_k=None, rng=None):
    """Draw one id per row of ``logits`` (N, V) (or (V,)) from softmax(logits / temperature),
    restricted to the ``top_k`` most likely ids. ``top_k=1`` is greedy (argmax) and draws nothing."""
    _check_sampling(temperature, top_k)
    z = np.asarray(logits.data if isinstance(logits, Tensor) else logits, dtype=np.float64)
    one = z.ndim == 1
    z = np.atleast_2d(z)
    if top_k == 1:
        ids = z.argmax(axis=1)
        return int(ids[0]) if one else ids
    z = z / temperature
    if top_k is not None and top_k < z.shape[1]:
        kth = np.partition(z, -int(top_k), axis=1)[:, -int(top_k)][:, None]
        z = np.where(z >= kth, z, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    cdf = np.cumsum(p, axis=1)
    rng = backend.get_rng() if rng is None else rng
    u = rng.random((z.shape[0], 1)) * cdf[:, -1:]
    ids = np.minimum((cdf <= u).sum(axis=1), z.shape[1] - 1)
    return int(ids[0]) if one else ids


def sample(model, vocab, prime, length=200, temperature=1.0, top_k=None, seed=None):
    """Generate ``length`` characters after ``prime``; returns prime + the generated text.

    The model reads the prime (at least one character, all in ``vocab``), then feeds each drawn
    character back in. ``temperature`` < 1 sharpens the distribution, > 1 flattens it; ``top_k``
    keeps only the k most likely characters at each step (``top_k=1``: greedy, deterministic).
    ``seed`` seeds a private generator (same seed, same text); None draws from chainrule's global
    generator. Runs in eval mode without gradients; the model's mode is restored afterwards.

    >>> sample(model, vocab, "The ", length=100, temperature=0.7, top_k=10, seed=1)
    """
    _check_sampling(temperature, top_k)
    if not isinstance(prime, str) or not prime:
        raise ValueError("sample: prime must be a non-empty string (the text to continue)")
    if int(length) != length or length < 0:
        raise ValueError(f"sample: length must be a non-negative integer, got {length!r}")
    if len(vocab) != model.vocab_size:
        raise ValueError(f"sample: the vocabulary has {len(vocab)} entries but the model "
                         f"{model.vocab_size} outputs")
    encode = vocab.encode
    ids = encode(prime, what="prime text") if isinstance(vocab, CharVocabulary) else encode(list(prime))
    rng = np.random.default_rng(seed) if seed is not None else backend.get_rng()
    was_training = model.training
    model.eval()
    out = []
    try:
        with no_grad():
            logits, state = model(ids[None, :])
            for _ in range(int(length)):
                nxt = sample_next(logits.data[0, -1], temperature, top_k, rng)
                out.append(nxt)
                logits, state = model(np.array([[nxt]], dtype=np.int64), state)
    finally:
        model.train(was_training)
    return prime + "".join(vocab.token(i) for i in out)


def make_streams(ids, batch_size):
    """Cut a long id sequence (L,) into ``batch_size`` parallel streams for truncated BPTT:
    inputs x (N, S) and next-character targets y (N, S), S = (L - 1) // N. Stream n continues the
    text where stream n - 1's part ends, so a state carried along a row reads the text in order."""
    ids = np.asarray(ids, dtype=np.int64)
    n = int(batch_size)
    s = (len(ids) - 1) // n
    if s < 1:
        raise ValueError(f"make_streams: {len(ids)} characters are too few for {n} streams; use a "
                         f"smaller batch size (at most {max(len(ids) - 1, 1)}) or a longer text")
    x = ids[:n * s].reshape(n, s)
    y = ids[1:n * s + 1].reshape(n, s)
    return x, y


def _lm_loss(logits, y):
    V = logits.shape[-1]
    y = y.data if isinstance(y, Tensor) else np.asarray(y)
    return F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))


def evaluate_char_rnn(model, ids, seq_len=256, batch_size=1):
    """Mean cross-entropy per character (nats) of predicting ``ids`` (L,) one step ahead, carrying
    the state across chunks, in eval mode without gradients."""
    x, y = make_streams(ids, batch_size)
    trainer = Trainer(model, None, compute_loss=_lm_loss_per_char, stateful=True)
    return trainer.evaluate(lambda epoch: truncated_bptt_chunks(x, seq_len, y))["loss"]


def _lm_loss_per_chunk(model, batch, state):
    """A training chunk (x, y) from ``state``: its loss weighs as many steps as it has."""
    x, y = batch
    logits, state = model(x, state)
    return {"loss": _lm_loss(logits, y), "size": x.shape[1]}, state


def _lm_loss_per_char(model, batch, state):
    """An evaluation chunk (start, x, y): its loss weighs as many characters as it scores."""
    _, x, y = batch
    logits, state = model(x, state)
    return {"loss": _lm_loss(logits, y), "size": y.size}, state


def train_char_rnn(text, vocab=None, model=None, epochs=10, seq_len=64, batch_size=32, lr=2e-3,
                   clip=5.0, embedding_dim=64, hidden_size=128, num_layers=1, dropout=0.0,
                   cell="lstm", val_fraction=0.1, seed=0, on_epoch_end=None, progress=None):
    """Train a character LM on ``text`` with truncated BPTT (a stateful ``Trainer``); returns
    (model, vocab, history).

    The text (its first 1 - ``val_fraction``) is cut into ``batch_size`` streams that are walked in
    chunks of ``seq_len`` steps: forward from the carried, detached state, cross-entropy over every
    step, backward through the chunk only, ``clip_grad_norm_(clip)``, an Adam step. Each epoch starts
    the streams at a new random offset in [0, seq_len) so chunk boundaries move. The rest of the
    text is the validation set. ``history``: per-epoch lists 'loss', 'val_loss' (nats per char;
    divide by ln 2 for bits) and 'time' (seconds).

    ``seed`` seeds chainrule's global generator (initialisation of a new model) and the offsets, so
    a run repeats bit for bit. ``on_epoch_end(epoch, logs)`` is called after each epoch with the
    history's keys; ``progress(step, n_steps, loss)`` after each chunk.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("train_char_rnn: the text is empty")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"train_char_rnn: val_fraction must be in [0, 1), got {val_fraction}")
    backend.manual_seed(seed)
    vocab = CharVocabulary.build(text) if vocab is None else vocab
    ids = vocab.encode(text, what="training text")
    n_val = int(len(ids) * val_fraction)
    if val_fraction and n_val < 2:
        n_val = 0
    train_ids, val_ids = (ids[:-n_val], ids[-n_val:]) if n_val else (ids, None)
    if len(train_ids) < batch_size * 2 + 1:
        raise ValueError(f"train_char_rnn: the training text has {len(train_ids)} characters, too "
                         f"few for a batch of {batch_size} streams; lower --batch-size")
    if model is None:
        model = CharRNN(len(vocab), embedding_dim, hidden_size, num_layers, dropout, cell)
    elif model.vocab_size != len(vocab):
        raise ValueError(f"train_char_rnn: the model has {model.vocab_size} outputs, the "
                         f"vocabulary {len(vocab)} characters")
    rng = np.random.default_rng(seed)
    max_offset = max(0, min(seq_len, len(train_ids) - 2 * batch_size - 1))

    def chunks(epoch):
        # after the first epoch the streams start at a random offset, so chunk boundaries move
        offset = int(rng.integers(0, max_offset)) if max_offset > 1 and epoch else 0
        x, y = make_streams(train_ids[offset:], batch_size)
        return [(xc, yc) for _, xc, yc in truncated_bptt_chunks(x, seq_len, y)]

    trainer = Trainer(model, optim.Adam(model.parameters(), lr=lr), clip_grad_norm=clip,
                      compute_loss=_lm_loss_per_chunk, stateful=True)
    eval_fn = None
    if val_ids is not None:
        eval_fn = lambda m, epoch: {  # noqa: E731
            "val_loss": evaluate_char_rnn(m, val_ids, seq_len=max(seq_len, 128))}
    callbacks = []
    if on_epoch_end is not None:
        callbacks.append(LambdaCallback(on_epoch_end=on_epoch_end, keys=("loss", "val_loss", "time")))
    if progress is not None:
        callbacks.append(LambdaCallback(on_batch_end=lambda step, logs: progress(
            step + 1, trainer.steps_per_epoch, logs["loss"])))
    trainer.fit(chunks, epochs=int(epochs), progress=False, eval_fn=eval_fn, callbacks=callbacks)
    history = {k: trainer.history.history.get(k, []) for k in ("loss", "val_loss", "time")}
    if not history["val_loss"]:
        del history["val_loss"]
    return model, vocab, history


def save_char_rnn(path, model, vocab, **meta):
    """Write model configuration, weights and vocabulary to one checkpoint (``chainrule.save``);
    ``meta``: anything else to keep (history, training settings), plain data only."""
    save({"kind": CHECKPOINT_KIND, "config": model.config(), "vocab": vocab.state_dict(),
          "model": model.state_dict(), "meta": meta}, path)
    return path


def load_char_rnn(path):
    """(model, vocab, meta) from a checkpoint written by :func:`save_char_rnn` (``chainrule
    train-char``); the model comes back in eval mode."""
    state = load(path)
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path}: not a character language-model checkpoint (write one with "
                         f"'chainrule train-char TEXTFILE --out DIR')")
    model = CharRNN(**state["config"])
    model.load_state_dict(state["model"])
    model.eval()
    vocab = Vocabulary.from_state_dict(state["vocab"])
    return model, vocab, state.get("meta", {})
