"""Whole sequences classified end to end, as ``chainrule sentiment`` and ``chainrule mnist1d-seq``
do it: labelled texts split, tokenized and encoded with a vocabulary of the training texts, then
a ``SequenceClassifier``; MNIST-1D signals read as 40-step sequences by a GRU or a TDNN. Both
train with one recipe (``adam_cosine_trainer``): Adam, gradient-norm clipping, cosine decay.

    >>> data = prepare_texts(texts, labels, **{k: SENTIMENT_DEFAULTS[k] for k in TEXT_SETTINGS})
    >>> model = sentiment_model(data.vocab, n_classes=2)
    >>> trainer = adam_cosine_trainer(model, lr=3e-3, epochs=10, clip=1.0, eta_min=3e-3 / 20)
    >>> trainer.fit((data.X_train, data.y_train), epochs=10, val_data=data.val)

The settings' defaults (SENTIMENT_DEFAULTS, MNIST1D_DEFAULTS) are those of the commands.
"""
from dataclasses import dataclass

import numpy as np

SENTIMENT_DEFAULTS = {
    "test_fraction": 0.2, "val_fraction": 0.1, "min_freq": 1, "max_len": 200,
    "cell": "lstm", "embedding_dim": 32, "hidden": 64, "bidirectional": False, "dropout": 0.0,
    "epochs": 10, "batch_size": 32, "lr": 3e-3, "clip": 1.0, "seed": 0,
    "eta_min_divisor": 20,             # cosine decay to lr / 20
}
TEXT_SETTINGS = ("test_fraction", "val_fraction", "min_freq", "max_len", "seed")

MNIST1D_DEFAULTS = {
    "model": "gru", "hidden": 128, "channels": 64, "epochs": 40, "batch_size": 64, "lr": 3e-3,
    "clip": 1.0, "val_fraction": 0.0, "seed": 0,
    "eta_min_divisor": 50,             # cosine decay to lr / 50
}


def adam_cosine_trainer(model, lr, epochs, clip, eta_min=0.0):
    """A ``Trainer`` with Adam at ``lr``, gradients clipped to norm ``clip`` and the learning rate
    decayed along a cosine to ``eta_min`` over ``epochs``."""
    from .. import optim
    from ..train import Trainer
    opt = optim.Adam(model.parameters(), lr=lr)
    return Trainer(model, opt, clip_grad_norm=clip,
                   scheduler=optim.CosineAnnealingLR(opt, T_max=epochs, eta_min=eta_min))


@dataclass
class TextData:
    """Encoded texts: training (X_train, y_train), validation ``val`` ((X, y) or None), test
    (X_test, y_test), the ``vocab`` built from the training texts, and how many texts each has."""
    X_train: np.ndarray
    y_train: np.ndarray
    val: tuple
    X_test: np.ndarray
    y_test: np.ndarray
    vocab: object
    max_len: int

    def describe(self, classes):
        n_val = 0 if self.val is None else len(self.val[1])
        return (f"{len(self.y_train)} training, {n_val} validation, {len(self.y_test)} test texts; "
                f"classes {classes}; vocabulary {len(self.vocab)} (<pad>, <unk>, "
                f"{len(self.vocab) - 2} words)")


def prepare_texts(texts, labels, test_texts=None, test_labels=None, *, test_fraction, val_fraction,
                  min_freq, max_len, seed):
    """Split, tokenize and encode labelled texts. Without ``test_texts``, a stratified
    ``test_fraction`` of them is the test set (seed ``seed``); ``val_fraction`` of the rest
    validates each epoch (seed ``seed + 1``; 0: none). The vocabulary (<pad>, <unk>, words seen
    ``min_freq`` times) comes from the training texts only; each text keeps ``max_len`` tokens."""
    from ..data import train_val_split
    from ..data.text import Vocabulary, tokenize
    if test_texts is not None:
        tr_idx, y_tr, y_te = np.arange(len(texts)), labels, test_labels
    else:
        tr_idx, te_idx, y_tr, y_te = train_val_split(np.arange(len(texts)), labels,
                                                     val_fraction=test_fraction, seed=seed,
                                                     stratify=labels)
        test_texts = [texts[i] for i in te_idx]
    tr_texts = [texts[i] for i in tr_idx]
    val_texts = None
    if val_fraction:
        sub_tr, sub_val, y_tr, y_val = train_val_split(np.arange(len(tr_texts)), y_tr,
                                                       val_fraction=val_fraction, seed=seed + 1,
                                                       stratify=y_tr)
        val_texts = [tr_texts[i] for i in sub_val]
        tr_texts = [tr_texts[i] for i in sub_tr]
    tr_tok = [tokenize(t) for t in tr_texts]
    vocab = Vocabulary.build(tr_tok, min_freq=min_freq)
    X_tr, _ = vocab.encode_batch(tr_tok, max_len=max_len)
    X_te, _ = vocab.encode_batch([tokenize(t) for t in test_texts], max_len=max_len)
    val = None
    if val_texts is not None:
        X_val, _ = vocab.encode_batch([tokenize(t) for t in val_texts], max_len=max_len)
        val = (X_val, y_val)
    return TextData(X_tr, y_tr, val, X_te, y_te, vocab, max_len)


def sentiment_model(vocab, n_classes, cell, embedding_dim, hidden, bidirectional, dropout):
    """A ``SequenceClassifier`` over ``vocab`` (its padding never read)."""
    from ..models.sequence import SequenceClassifier
    return SequenceClassifier(len(vocab), n_classes, embedding_dim, hidden, cell=cell,
                              bidirectional=bidirectional, dropout=dropout,
                              padding_idx=vocab.pad_index)


def classify_texts(model, vocab, texts, max_len):
    """Class probabilities (N, classes) of raw ``texts``."""
    from ..autograd import no_grad
    from ..data.text import tokenize
    model.eval()
    ids, _ = vocab.encode_batch([tokenize(t) for t in texts], max_len=max_len)
    with no_grad():
        return model(ids).softmax(axis=1).data


def save_text_classifier(path, model, vocab, classes):
    """One checkpoint with the model's config and weights, its vocabulary and class names."""
    from .. import save
    save({"kind": "chainrule.sentiment", "config": model.config(), "classes": list(classes),
          "vocab": vocab.state_dict(), "model": model.state_dict()}, path)
    return path


def mnist1d_model(kind, hidden, channels):
    """A GRU over the 40 steps (final state -> Linear) or a TDNN (dilated Conv1d over time)."""
    from ..models.sequence import TDNN, GRUClassifier
    if kind == "gru":
        return GRUClassifier(1, hidden, 10)
    if kind == "tdnn":
        return TDNN(1, 10, channels=channels)
    raise ValueError(f"unknown MNIST-1D sequence model {kind!r}: 'gru' or 'tdnn'")


def mnist1d_data(val_fraction, seed):
    """(train, val, test) of MNIST-1D as (X (N, 40), y) pairs; ``val`` a stratified
    ``val_fraction`` of the training set (seed ``seed``), None for 0."""
    from ..data import train_val_split
    from ..data.datasets import mnist1d
    X_tr, y_tr, X_te, y_te = mnist1d()
    val = None
    if val_fraction:
        X_tr, X_val, y_tr, y_val = train_val_split(X_tr, y_tr, val_fraction=val_fraction,
                                                   seed=seed, stratify=y_tr)
        val = (X_val, y_val)
    return (X_tr, y_tr), val, (X_te, y_te)
