"""Sequence classification and tagging as tasks: masked losses and accuracy over padded batches,
training and scoring a tagger, and the synthetic data sets (part-of-speech tagging of a small
grammar, sentiment with negation and contrast) that the examples and the CLI use.

>>> ids, tags, lengths = make_tagging_data(2000, seed=0)
>>> model = SequenceTagger(vocab_size, len(TAGS))
>>> train_tagger(model, ids, tags, lengths, epochs=10)
"""
import numpy as np

from .. import optim
from ..autograd import Tensor
from ..data import DataLoader, TensorDataset
from ..nn import functional as F
from ..train import LambdaCallback, Trainer

__all__ = ['masked_cross_entropy', 'masked_accuracy', 'train_tagger', 'evaluate_tagger', 'AMBIGUOUS', 'TAGS', 'make_tagging_data', 'make_sentiment_data']


def _mask(targets, lengths):
    t = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    m = np.arange(t.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return t, m


def masked_cross_entropy(logits, targets, lengths):
    """Mean cross-entropy over the real steps: logits (N, T, C), targets (N, T), lengths (N,)."""
    t, m = _mask(targets, lengths)
    C = logits.shape[-1]
    per = F.cross_entropy(logits.reshape(-1, C), np.where(m, t, 0).reshape(-1), reduction="none")
    w = m.reshape(-1).astype(per.dtype)
    return (per * w).sum() / float(max(w.sum(), 1))


def masked_accuracy(logits, targets, lengths):
    """Fraction of real steps whose argmax equals the target."""
    t, m = _mask(targets, lengths)
    pred = (logits.data if isinstance(logits, Tensor) else np.asarray(logits)).argmax(axis=-1)
    return float((pred == t)[m].mean())


def train_tagger(model, ids, tags, lengths, epochs=10, batch_size=32, lr=3e-3, clip=1.0, seed=0,
                 val_data=None, on_epoch_end=None):
    """Train a tagger with Adam on masked cross-entropy (gradient clipping ``clip``), on
    ``Trainer``. ``val_data``: (ids, tags, lengths). Returns a history of per-epoch 'loss',
    'accuracy' (both over the real tokens), 'time' (and 'val_accuracy'); ``on_epoch_end(epoch,
    logs)`` gets the same keys."""
    ids, tags, lengths = np.asarray(ids), np.asarray(tags), np.asarray(lengths)
    if not (len(ids) == len(tags) == len(lengths)):
        raise ValueError(f"train_tagger: {len(ids)} sequences, {len(tags)} tag rows, "
                         f"{len(lengths)} lengths")
    if ids.shape != tags.shape:
        raise ValueError(f"train_tagger: ids {ids.shape} and tags {tags.shape} differ in shape")
    opt = optim.Adam(model.parameters(), lr=lr)
    eval_fn = None
    if val_data is not None:
        eval_fn = lambda m, epoch: {"val_accuracy": evaluate_tagger(m, *val_data)}  # noqa: E731
    keys = ("loss", "accuracy") + (("val_accuracy",) if val_data is not None else ()) + ("time",)
    report = [LambdaCallback(on_epoch_end=on_epoch_end, keys=keys)] if on_epoch_end else []
    trainer = Trainer(model, opt, clip_grad_norm=clip, compute_loss=_tagging_loss)
    trainer.fit((ids, tags, lengths), epochs=int(epochs), batch_size=batch_size, seed=seed,
                progress=False, eval_fn=eval_fn, callbacks=report)
    return {k: trainer.history.history.get(k, [])
            for k in ("loss", "accuracy", "time") + keys[2:-1]}


def _tagging_loss(model, batch):
    """Masked cross-entropy of a padded batch (ids, tags, lengths), trimmed to its longest
    sequence, weighted by its real tokens, with their accuracy."""
    x, y, ln = (b.data for b in batch)
    T = int(ln.max())
    x, y = x[:, :T], y[:, :T]
    logits = model(x, ln)
    return {"loss": masked_cross_entropy(logits, y, ln), "size": int(ln.sum()),
            "accuracy": masked_accuracy(logits, y, ln)}


def evaluate_tagger(model, ids, tags, lengths, batch_size=512):
    """Per-token accuracy over the real steps (eval mode, no gradients)."""
    # in order; seeded only so that making the loader draws nothing from the global generator
    data = DataLoader(TensorDataset(ids, tags, lengths), batch_size=batch_size, seed=0)
    return Trainer(model, None, compute_loss=_tagging_loss).evaluate(data)["accuracy"]


AMBIGUOUS = ("light", "train", "watch", "plant", "book", "paint")


TAGS = ("DET", "ADJ", "NOUN", "VERB", "ADV", "PREP", "CONJ", "NUM")


_LEX = {
    "DET": ["the", "a", "every", "some", "this", "that"],
    "ADJ": ["small", "green", "old", "quick", "heavy", "bright", "quiet", "strange"],
    "NOUN": ["dog", "cat", "river", "city", "teacher", "engine", "garden", "song", "light", "train",
             "watch", "plant", "book", "paint"],
    "VERB": ["sees", "likes", "builds", "follows", "paints", "hears", "crosses", "finds"],
    "ADV": ["slowly", "often", "quietly", "again", "today"],
    "PREP": ["near", "under", "behind", "with", "across"],
    "CONJ": ["and", "but"],
    "NUM": ["two", "three", "seven", "ten"],
}


def make_tagging_data(n, seed=0):
    """``n`` sentences of a small grammar with their part-of-speech tags, as (words, tags) lists:

        S -> NP VP [CONJ S];  NP -> DET [ADJ]* NOUN | NUM [ADJ] NOUN;  VP -> VERB NP [PREP NP] [ADV]

    The nouns 'light', 'train', 'watch', 'plant', 'book' and 'paint' also appear in the verb's
    place ('the old dog watch a plant'): their tag follows from the context only, so a tagger that
    looks words up cannot be perfect (see ``AMBIGUOUS``).
    """
    rng = np.random.default_rng(seed)
    verb_forms = list(AMBIGUOUS)             # also nouns: the tag depends on the position

    def pick(tag):
        return _LEX[tag][int(rng.integers(len(_LEX[tag])))]

    def np_():
        if rng.random() < 0.2:
            words, tags = [pick("NUM")], ["NUM"]
        else:
            words, tags = [pick("DET")], ["DET"]
        for _ in range(int(rng.integers(0, 3))):
            words.append(pick("ADJ")), tags.append("ADJ")
        words.append(pick("NOUN")), tags.append("NOUN")
        return words, tags

    def clause(depth):
        w, t = np_()
        if rng.random() < 0.4:          # a noun-or-verb word used as a verb
            v = verb_forms[int(rng.integers(len(verb_forms)))]
        else:
            v = pick("VERB")
        w, t = w + [v], t + ["VERB"]
        w2, t2 = np_()
        w, t = w + w2, t + t2
        if rng.random() < 0.4:
            w3, t3 = np_()
            w, t = w + [pick("PREP")] + w3, t + ["PREP"] + t3
        if rng.random() < 0.3:
            w, t = w + [pick("ADV")], t + ["ADV"]
        if depth < 1 and rng.random() < 0.3:
            w4, t4 = clause(depth + 1)
            w, t = w + [pick("CONJ")] + w4, t + ["CONJ"] + t4
        return w, t

    return [clause(0) for _ in range(int(n))]


_POS_ADJ = ["good", "great", "wonderful", "excellent", "brilliant", "enjoyable", "charming",
            "moving", "funny", "beautiful", "clever", "delightful"]


_NEG_ADJ = ["bad", "terrible", "awful", "boring", "dull", "poor", "weak", "painful", "tedious",
            "forgettable", "clumsy", "annoying"]


_NOUNS = ["movie", "film", "story", "plot", "acting", "script", "ending", "soundtrack", "cast",
          "direction", "dialogue", "pacing"]


_INTENS = ["", "", "very ", "really ", "quite ", "truly ", "rather "]


_FILLER = ["honestly", "overall", "to be fair", "in the end", "frankly", "all in all", "i think",
           "for me"]


def make_sentiment_data(n, seed=0):
    """``n`` synthetic movie reviews with labels 'pos' / 'neg', as (texts, labels) lists.

    Reviews are built from templates with negation and contrast, so that word order matters and a
    bag of words is not enough: 'not bad' is positive, 'not good' negative; in 'X, but Y' the
    clause after 'but' decides; 'i expected it to be good, it was not' ends on the verdict.
    """
    rng = np.random.default_rng(seed)
    ch = lambda xs: xs[int(rng.integers(len(xs)))]   # noqa: E731

    def phrase(positive):
        """A phrase whose sentiment is ``positive``, maybe through a negation."""
        negate = rng.random() < 0.4
        adj = ch(_NEG_ADJ if positive == negate else _POS_ADJ)
        noun = ch(_NOUNS)
        if negate:
            form = ch([f"the {noun} was not {ch(_INTENS)}{adj}", f"the {noun} is not {adj} at all",
                       f"not a {adj} {noun}", f"the {noun} was never {adj}",
                       f"i would not call the {noun} {adj}"])
        else:
            form = ch([f"the {noun} was {ch(_INTENS)}{adj}", f"a {ch(_INTENS)}{adj} {noun}",
                       f"the {noun} is {adj}", f"what a {adj} {noun}"])
        return form

    texts, labels = [], []
    for _ in range(int(n)):
        positive = bool(rng.random() < 0.5)
        kind = rng.random()
        if kind < 0.35:
            text = phrase(positive)
        elif kind < 0.7:                                   # contrast: the second clause decides
            text = f"{phrase(not positive)}, but {phrase(positive)}"
        elif kind < 0.85:                                  # the verdict comes last
            exp = ch(_POS_ADJ if positive else _NEG_ADJ)
            exp_neg = ch(_NEG_ADJ if positive else _POS_ADJ)
            text = ch([f"i expected the {ch(_NOUNS)} to be {exp_neg} and it was not",
                       f"i expected the {ch(_NOUNS)} to be {exp} and it was"])
        else:
            text = f"{phrase(positive)} and {phrase(positive)}"
        if rng.random() < 0.3:
            text = f"{ch(_FILLER)}, {text}"
        texts.append(text + ch([".", "!", ".", ""]))
        labels.append("pos" if positive else "neg")
    return texts, labels
