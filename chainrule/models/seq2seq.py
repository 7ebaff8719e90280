"""Sequence to sequence (Sutskever et al. 2014; Cho et al. 2014): an encoder reads the source
(many-to-one) into its final state, a decoder started from that state writes the target
(one-to-many). Trained with teacher forcing (the decoder reads the true previous token), decoded
greedily (it reads its own previous prediction), scored by exact match of whole sequences.

>>> pairs = make_task("reverse", 5000, seed=0)            # [(['3','1','4'], ['4','1','3']), ...]
>>> src_vocab, tgt_vocab = build_vocabs(pairs)
>>> model = Seq2Seq(len(src_vocab), len(tgt_vocab), bos_index=tgt_vocab.bos_index,
...                 eos_index=tgt_vocab.eos_index)
>>> train_seq2seq(model, pairs, src_vocab, tgt_vocab, epochs=10)
>>> exact_match_accuracy(model, test_pairs, src_vocab, tgt_vocab)
"""
import calendar
import math
import time

import numpy as np

from .. import nn, optim
from ..autograd import Tensor, no_grad
from ..data.text import BOS, EOS, PAD, UNK, Vocabulary
from ..nn import functional as F
from ..optim import backward_and_step
from ..tensor_api import cat, zeros

__all__ = ["Seq2Seq", "make_task", "TASKS", "build_vocabs", "encode_pairs", "train_seq2seq",
           "greedy_decode", "predict_pairs", "exact_match_accuracy", "masked_cross_entropy"]

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _arr(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def masked_cross_entropy(logits, targets, pad_index=0):
    """Mean cross-entropy over the non-padding positions: logits (N, T, C), targets (N, T) ints."""
    y = _arr(targets).reshape(-1)
    C = logits.shape[-1]
    per = F.cross_entropy(logits.reshape(-1, C), y, reduction="none")
    mask = (y != pad_index).astype(per.dtype)
    n = mask.sum()
    if n == 0:
        raise ValueError("masked_cross_entropy: every target is padding")
    return (per * mask).sum() / float(n)


class Seq2Seq(nn.Module):
    """Encoder-decoder.

    encoder: Embedding(src_vocab_size, E) -> ``cell`` (E -> H, ``num_layers``), many-to-one: its final
    state (each sequence's last real step, via lengths) summarises the source;
    decoder: Embedding(tgt_vocab_size, E) -> ``cell`` started from that state -> Linear(H, V).
    With ``feed_context`` (Cho et al. 2014) the decoder also reads the encoder's summary c (the last
    layer's final h) next to every input token, [embed(y_{t-1}), c], so it does not have to carry the
    whole source in its own state.

    forward(src (N, S), src_lengths (N,), tgt_in (N, T)) -> logits (N, T, V): teacher forcing, where
    tgt_in is <bos> followed by the target shifted right.
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, embedding_dim=32, hidden_size=128,
                 num_layers=1, cell="gru", bos_index=2, eos_index=3, pad_index=0, feed_context=True,
                 dropout=0.0):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"Seq2Seq: cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.src_vocab_size, self.tgt_vocab_size = int(src_vocab_size), int(tgt_vocab_size)
        self.embedding_dim, self.hidden_size = int(embedding_dim), int(hidden_size)
        self.num_layers, self.cell, self.dropout = int(num_layers), cell, float(dropout)
        self.bos_index, self.eos_index, self.pad_index = int(bos_index), int(eos_index), int(pad_index)
        self.feed_context = bool(feed_context)
        rnn = _CELLS[cell]
        drop = dropout if num_layers > 1 else 0.0
        self.src_embedding = nn.Embedding(src_vocab_size, embedding_dim, padding_idx=pad_index)
        self.encoder = rnn(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
                           dropout=drop)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embedding_dim, padding_idx=pad_index)
        dec_in = embedding_dim + (hidden_size if feed_context else 0)
        self.decoder = rnn(dec_in, hidden_size, num_layers=num_layers, batch_first=True, dropout=drop)
        self.head = nn.Linear(hidden_size, tgt_vocab_size)

    def config(self):
        return {k: getattr(self, k) for k in (
            "src_vocab_size", "tgt_vocab_size", "embedding_dim", "hidden_size", "num_layers", "cell",
            "bos_index", "eos_index", "pad_index", "feed_context", "dropout")}

    def encode(self, src, src_lengths=None):
        """src (N, S) ids -> the encoder's final state (h_n, or (h_n, c_n) for an LSTM), each
        sequence's after its last real token when ``src_lengths`` is given."""
        _, state = self.encoder(self.src_embedding(src), lengths=src_lengths)
        return state

    def _context(self, state):
        h = state[0] if isinstance(state, tuple) else state
        return h[-1]                                     # (N, H): the last layer's summary

    def decode(self, tgt_in, state, context=None):
        """One or more decoder steps: tgt_in (N, T) ids, state -> (logits (N, T, V), new state)."""
        e = self.tgt_embedding(tgt_in)
        if self.feed_context:
            n, t = e.shape[0], e.shape[1]
            c = context.reshape(n, 1, self.hidden_size) + zeros(n, t, self.hidden_size, dtype=e.dtype)
            e = cat([e, c], axis=2)
        out, state = self.decoder(e, state)
        return self.head(out), state

    def forward(self, src, src_lengths, tgt_in):
        state = self.encode(src, src_lengths)
        ctx = self._context(state) if self.feed_context else None
        logits, _ = self.decode(tgt_in, state, ctx)
        return logits


def greedy_decode(model, src, src_lengths, max_len):
    """(N, max_len) ids: from <bos>, feed back the argmax at each step; positions after a
    sequence's <eos> are filled with padding. Eval mode, no gradients."""
    was = model.training
    model.eval()
    try:
        with no_grad():
            state = model.encode(src, src_lengths)
            ctx = model._context(state) if model.feed_context else None
            n = _arr(src).shape[0]
            tok = np.full((n, 1), model.bos_index, dtype=np.int64)
            out = np.full((n, max_len), model.pad_index, dtype=np.int64)
            done = np.zeros(n, dtype=bool)
            for t in range(max_len):
                logits, state = model.decode(tok, state, ctx)
                nxt = logits.data[:, -1].argmax(axis=1)
                out[:, t] = np.where(done, model.pad_index, nxt)
                done |= nxt == model.eos_index
                if done.all():
                    break
                tok = nxt[:, None].astype(np.int64)
    finally:
        model.train(was)
    return out


# -- tasks ------------------------------------------------------------------------------------------

_MONTHS = list(calendar.month_name)[1:]


def _date_formats(y, m, d, rng):
    name = _MONTHS[m - 1]
    forms = [f"{name} {d}, {y}", f"{d} {name} {y}", f"{name[:3]} {d} {y}", f"{d:02d}/{m:02d}/{y}",
             f"{d}.{m}.{y}", f"{name[:3].upper()} {d:02d}, {y}", f"{d} {name[:3].lower()} {y}"]
    return forms[int(rng.integers(len(forms)))]


def make_task(task, n, min_len=3, max_len=10, alphabet="0123456789", seed=0, exclude=()):
    """``n`` (source tokens, target tokens) pairs of a toy task, as lists of single characters:

    - 'reverse': a random string over ``alphabet`` of length min_len..max_len -> the string reversed;
    - 'sort': the same -> its characters sorted;
    - 'dates': a date between 1950 and 2049 written one of seven ways ('March 7, 2024',
      '07/03/2024', '7 mar 2024', ...) -> ISO '2024-03-07'.

    ``exclude``: sources (strings) that must not appear (e.g. the training set's, for a held-out
    test set). Each source appears once.
    """
    if task not in TASKS:
        raise ValueError(f"make_task: task must be one of {TASKS}, got {task!r}")
    if not 1 <= min_len <= max_len:
        raise ValueError(f"make_task: need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    rng = np.random.default_rng(seed)
    seen = set(exclude)
    pairs = []
    letters = list(alphabet)
    tries = 0
    while len(pairs) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"make_task: could not draw {n} distinct {task} examples (only "
                             f"{len(pairs)}); allow longer sequences or a larger alphabet")
        if task == "dates":
            y, m = int(rng.integers(1950, 2050)), int(rng.integers(1, 13))
            d = int(rng.integers(1, calendar.monthrange(y, m)[1] + 1))
            src, tgt = _date_formats(y, m, d, rng), f"{y:04d}-{m:02d}-{d:02d}"
        else:
            k = int(rng.integers(min_len, max_len + 1))
            src = "".join(letters[i] for i in rng.integers(0, len(letters), k))
            tgt = src[::-1] if task == "reverse" else "".join(sorted(src))
        if src in seen:
            continue
        seen.add(src)
        pairs.append((list(src), list(tgt)))
    return pairs


TASKS = ("reverse", "sort", "dates")


def build_vocabs(pairs):
    """(source vocabulary, target vocabulary) of the tokens in ``pairs``, each with <pad> = 0,
    <unk> = 1, <bos> = 2, <eos> = 3."""
    specials = (PAD, UNK, BOS, EOS)
    src = Vocabulary.build([s for s, _ in pairs], specials=specials)
    tgt = Vocabulary.build([t for _, t in pairs], specials=specials)
    return src, tgt


def encode_pairs(pairs, src_vocab, tgt_vocab):
    """Padded arrays for training: src (N, S), src_lengths (N,), tgt_in (N, T) = <bos> + target,
    tgt_out (N, T) = target + <eos>, padding 0 (= <pad>)."""
    src, src_len = src_vocab.encode_batch([s for s, _ in pairs])
    tgt_in, _ = tgt_vocab.encode_batch([t for _, t in pairs], add_bos=True)
    tgt_out, _ = tgt_vocab.encode_batch([t for _, t in pairs], add_eos=True)
    return src, src_len, tgt_in, tgt_out


def train_seq2seq(model, pairs, src_vocab, tgt_vocab, epochs=10, batch_size=64, lr=3e-3, clip=1.0,
                  seed=0, val_pairs=None, on_epoch_end=None, cosine=True):
    """Teacher-forced training (Adam, gradient clipping, masked cross-entropy over the target
    tokens and the final <eos>; with ``cosine`` the learning rate falls to lr/20 along a cosine
    over the epochs). Returns a history dict with per-epoch 'loss', 'time', 'lr' and, with
    ``val_pairs``, 'val_exact_match'."""
    if not pairs:
        raise ValueError("train_seq2seq: no training pairs")
    src, src_len, tgt_in, tgt_out = encode_pairs(pairs, src_vocab, tgt_vocab)
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = None
    if cosine and epochs > 1:
        sched = optim.CosineAnnealingLR(opt, T_max=int(epochs), eta_min=lr / 20)
    rng = np.random.default_rng(seed)
    history = {"loss": [], "lr": [], "time": []}
    if val_pairs is not None:
        history["val_exact_match"] = []
    n = len(pairs)
    for epoch in range(int(epochs)):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(n)
        total = 0.0
        for b in range(0, n, batch_size):
            idx = order[b:b + batch_size]
            # trim the padding the batch does not need
            S, T = int(src_len[idx].max()), int((tgt_out[idx] != model.pad_index).sum(1).max())
            opt.zero_grad()
            logits = model(src[idx, :S], src_len[idx], tgt_in[idx, :T])
            loss = masked_cross_entropy(logits, tgt_out[idx, :T], model.pad_index)
            lv = backward_and_step(loss, opt, clip)
            if not math.isfinite(lv):
                raise FloatingPointError(f"train_seq2seq: the loss became {lv} at epoch {epoch + 1}")
            total += lv * len(idx)
        logs = {"loss": total / n, "lr": opt.param_groups[0]["lr"]}
        if sched is not None:
            sched.step()
        if val_pairs is not None:
            logs["val_exact_match"] = exact_match_accuracy(model, val_pairs, src_vocab, tgt_vocab)
        logs["time"] = time.perf_counter() - t0
        for k in history:
            history[k].append(logs[k])
        if on_epoch_end is not None:
            on_epoch_end(epoch, logs)
    return history


def predict_pairs(model, sources, src_vocab, tgt_vocab, max_len=None, batch_size=512):
    """Greedy outputs (token lists, cut at <eos>) for a list of source token lists."""
    preds = []
    for b in range(0, len(sources), batch_size):
        chunk = sources[b:b + batch_size]
        src, src_len = src_vocab.encode_batch(chunk)
        m = max_len or int(src_len.max()) * 2 + 4
        ids = greedy_decode(model, src, src_len, m)
        preds.extend(tgt_vocab.decode(row) for row in ids)
    return preds


def exact_match_accuracy(model, pairs, src_vocab, tgt_vocab, max_len=None, return_predictions=False):
    """Fraction of ``pairs`` whose greedy output equals the whole target exactly."""
    if not pairs:
        raise ValueError("exact_match_accuracy: no pairs")
    if max_len is None:
        max_len = max(len(t) for _, t in pairs) + 2
    preds = predict_pairs(model, [s for s, _ in pairs], src_vocab, tgt_vocab, max_len)
    acc = float(np.mean([p == list(t) for p, (_, t) in zip(preds, pairs)]))
    return (acc, preds) if return_predictions else acc

