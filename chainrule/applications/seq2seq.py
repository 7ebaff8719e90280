"""Sequence-to-sequence tasks for ``chainrule.models.seq2seq.Seq2Seq``: the toy tasks (reverse, sort,
dates), vocabularies, training with teacher forcing, greedy prediction and exact-match accuracy.

>>> pairs = make_task("reverse", 5000, seed=0)            # [(['3','1','4'], ['4','1','3']), ...]
>>> src_vocab, tgt_vocab = build_vocabs(pairs)
>>> model = Seq2Seq(len(src_vocab), len(tgt_vocab), bos_index=tgt_vocab.bos_index,
...                 eos_index=tgt_vocab.eos_index)
>>> train_seq2seq(model, pairs, src_vocab, tgt_vocab, epochs=10)
>>> exact_match_accuracy(model, test_pairs, src_vocab, tgt_vocab)
"""
import calendar

import numpy as np

from .. import optim
from ..data.text import BOS, EOS, PAD, UNK, Vocabulary
from ..nn import functional as F
from ..models.seq2seq import _arr, greedy_decode
from ..train import LambdaCallback, Trainer

__all__ = ['masked_cross_entropy', 'make_task', 'TASKS', 'build_vocabs', 'encode_pairs', 'train_seq2seq', 'predict_pairs', 'exact_match_accuracy']


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
    over the epochs), on ``Trainer``. Returns a history dict with per-epoch 'loss', 'time', 'lr'
    and, with ``val_pairs``, 'val_exact_match'; ``on_epoch_end(epoch, logs)`` gets the same keys."""
    if not pairs:
        raise ValueError("train_seq2seq: no training pairs")
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = None
    if cosine and epochs > 1:
        sched = optim.CosineAnnealingLR(opt, T_max=int(epochs), eta_min=lr / 20)
    eval_fn = None
    if val_pairs is not None:
        eval_fn = lambda m, epoch: {  # noqa: E731
            "val_exact_match": exact_match_accuracy(m, val_pairs, src_vocab, tgt_vocab)}
    keys = ("loss", "lr") + (("val_exact_match",) if val_pairs is not None else ()) + ("time",)
    trainer = Trainer(model, opt, scheduler=sched, clip_grad_norm=clip,
                      compute_loss=_teacher_forced_loss)
    report = [LambdaCallback(on_epoch_end=on_epoch_end, keys=keys)] if on_epoch_end else []
    trainer.fit(encode_pairs(pairs, src_vocab, tgt_vocab), epochs=int(epochs), batch_size=batch_size,
                seed=seed, progress=False, eval_fn=eval_fn, callbacks=report)
    return {k: trainer.history.history.get(k, []) for k in ("loss", "lr", "time") + keys[2:-1]}


def _teacher_forced_loss(model, batch):
    src, src_len, tgt_in, tgt_out = (b.data for b in batch)
    # trim the padding the batch does not need
    S, T = int(src_len.max()), int((tgt_out != model.pad_index).sum(1).max())
    logits = model(src[:, :S], src_len, tgt_in[:, :T])
    return masked_cross_entropy(logits, tgt_out[:, :T], model.pad_index)


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
