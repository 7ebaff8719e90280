"""Many-to-many: a label for every time step. A bidirectional LSTM tags each word of sentences from
a small generated grammar with its part of speech (DET, ADJ, NOUN, VERB, ADV, PREP, CONJ, NUM).

Most words have one tag, but 'light', 'train', 'watch', 'plant', 'book' and 'paint' are nouns in
one place and verbs in another, so a tagger that only looks words up (the baseline: each word's
most frequent training tag) gets about a quarter of them wrong; the LSTM reads the context.
Padding positions are masked out of the loss and of the accuracy.

    python examples/tagging.py
"""
import time

import numpy as np

import chainrule as cr
from chainrule.data.text import Vocabulary
from chainrule.models.sequence import SequenceTagger
from chainrule.applications.sequence_tasks import (AMBIGUOUS, TAGS, evaluate_tagger, make_tagging_data, train_tagger)


def encode(data, words, tags):
    ids, lengths = words.encode_batch([w for w, _ in data])
    t, _ = tags.encode_batch([t for _, t in data])
    return ids, t, lengths


def most_frequent_tag_baseline(train, test):
    counts = {}
    for ws, ts in train:
        for w, t in zip(ws, ts):
            counts.setdefault(w, {}).setdefault(t, 0)
            counts[w][t] += 1
    best = {w: max(c, key=c.get) for w, c in counts.items()}
    right = [best.get(w) == t for ws, ts in test for w, t in zip(ws, ts)]
    return float(np.mean(right))


def ambiguous_accuracy(model, data, words, tags, which=AMBIGUOUS):
    """Accuracy on the words whose tag depends on the context."""
    ids, t, lengths = encode(data, words, tags)
    model.eval()
    with cr.no_grad():
        pred = model(ids, lengths).numpy().argmax(-1)
    mask = np.isin(ids, [words.index(w) for w in which])
    return float((pred == t)[mask].mean())


def main(n_train=2000, n_test=500, epochs=6, seed=0, verbose=True):
    """Returns {'test_accuracy', 'ambiguous_accuracy', 'baseline_accuracy'}."""
    say = print if verbose else (lambda *a, **k: None)
    train, test = make_tagging_data(n_train, seed=seed), make_tagging_data(n_test, seed=seed + 1)
    words = Vocabulary.build([w for w, _ in train])                  # <pad> = 0, <unk> = 1
    tags = Vocabulary(TAGS, specials=("<pad>",), unk=None)            # tag 0 only pads
    ws, ts = test[0]
    say("e.g. " + " ".join(f"{w}/{t}" for w, t in zip(ws, ts)))
    X_tr, Y_tr, L_tr = encode(train, words, tags)
    X_te, Y_te, L_te = encode(test, words, tags)

    cr.manual_seed(seed)
    model = SequenceTagger(len(words), len(tags), embedding_dim=32, hidden_size=64,
                           bidirectional=True, padding_idx=words.pad_index)

    def show(epoch, logs):
        say(f"epoch {epoch + 1}  loss {logs['loss']:.4f}  train accuracy {logs['accuracy']:.4f}  "
            f"test accuracy {logs['val_accuracy']:.4f}  ({logs['time']:.1f} s)")

    t0 = time.perf_counter()
    train_tagger(model, X_tr, Y_tr, L_tr, epochs=epochs, batch_size=32, lr=5e-3, seed=seed,
                 val_data=(X_te, Y_te, L_te), on_epoch_end=show)
    acc = evaluate_tagger(model, X_te, Y_te, L_te)
    amb = ambiguous_accuracy(model, test, words, tags)
    base = most_frequent_tag_baseline(train, test)
    base_amb = most_frequent_tag_baseline(
        train, [([w], [t]) for ws, ts in test for w, t in zip(ws, ts) if w in AMBIGUOUS])
    say(f"trained in {time.perf_counter() - t0:.1f} s")
    say(f"per-token test accuracy {acc:.4f} (most-frequent-tag baseline {base:.4f}); on "
        f"the noun-or-verb words {amb:.4f} (baseline {base_amb:.4f})")
    probe = "the old train light a green watch".split()
    ids, lengths = words.encode_batch([probe])
    model.eval()
    with cr.no_grad():
        pred = model(ids, lengths).numpy().argmax(-1)[0]
    say(" ".join(f"{w}/{tags.token(i)}" for w, i in zip(probe, pred)))
    say(f"test_accuracy={acc:.4f}")
    return {"test_accuracy": acc, "ambiguous_accuracy": amb, "baseline_accuracy": base,
            "baseline_ambiguous_accuracy": base_amb}


if __name__ == "__main__":
    main()
