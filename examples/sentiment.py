"""Many-to-one: sentiment of a review with an LSTM, from a TSV file of (text, label).

The example first writes a synthetic but not trivial data set, reviews.tsv: templated reviews with
negation and contrast, so that word order matters ('not bad' is positive, 'not good' negative; in
'X, but Y' the clause after 'but' decides). Then it does what `chainrule sentiment reviews.tsv`
does: tokenize, build a vocabulary (<pad> = 0, <unk> = 1) from the training texts, pad each batch
and give the LSTM each text's length, so the state that reaches the classifier is the one after
the text's last real word. A bag-of-words logistic regression is the baseline that cannot read
order.

    python examples/sentiment.py            # writes reviews.tsv in a temporary folder
"""
import os
import tempfile
import time

import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import train_val_split
from chainrule.data.text import Vocabulary, read_labeled_text, tokenize, write_labeled_text
from chainrule.models.sequence import SequenceClassifier
from chainrule.applications.sequence_tasks import make_sentiment_data
from chainrule.nn import functional as F
from chainrule.train import Trainer


def bag_of_words_baseline(X_tr, y_tr, X_te, y_te, vocab_size, epochs=30, seed=0):
    """Logistic regression on word counts: the same words in any order look the same to it."""
    def counts(X):
        c = np.zeros((len(X), vocab_size), dtype=np.float32)
        for i, row in enumerate(X):
            np.add.at(c[i], row[row > 1], 1.0)       # skip <pad> and <unk>
        return c
    cr.manual_seed(seed)
    model = nn.Linear(vocab_size, 2)
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=0.05))
    trainer.fit((counts(X_tr), y_tr), epochs=epochs, batch_size=64, seed=seed, progress=False)
    return trainer.evaluate((counts(X_te), y_te))["accuracy"]


def main(n=4000, epochs=8, hidden_size=64, embedding_dim=32, seed=0, folder=None, verbose=True):
    """Returns {'test_accuracy', 'baseline_accuracy', 'predictions'}."""
    say = print if verbose else (lambda *a, **k: None)
    folder = folder or tempfile.mkdtemp(prefix="chainrule_sentiment_")
    path = os.path.join(folder, "reviews.tsv")
    texts, labels = make_sentiment_data(n, seed=seed)
    write_labeled_text(path, texts, labels)
    say(f"wrote {path}: {n} reviews, e.g.")
    for t, lab in list(zip(texts, labels))[:4]:
        say(f"  {lab}\t{t}")

    texts, y, classes = read_labeled_text(path)                 # errors would name the line
    idx_tr, idx_te, y_tr, y_te = train_val_split(np.arange(len(texts)), y, val_fraction=0.2,
                                                 seed=seed, stratify=y)
    tok_tr = [tokenize(texts[i]) for i in idx_tr]
    tok_te = [tokenize(texts[i]) for i in idx_te]
    vocab = Vocabulary.build(tok_tr)
    X_tr, len_tr = vocab.encode_batch(tok_tr)                   # (N, T) padded with 0, lengths
    X_te, _ = vocab.encode_batch(tok_te)
    say(f"classes {classes}; vocabulary of {len(vocab)} ({vocab.tokens[:6]} ...); "
        f"longest text {len_tr.max()} tokens")

    cr.manual_seed(seed)
    model = SequenceClassifier(len(vocab), len(classes), embedding_dim, hidden_size, cell="lstm",
                               padding_idx=vocab.pad_index)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    trainer = Trainer(model, opt, clip_grad_norm=1.0,
                      scheduler=optim.CosineAnnealingLR(opt, T_max=epochs, eta_min=1.5e-4))
    t0 = time.perf_counter()
    trainer.fit((X_tr, y_tr), epochs=epochs, batch_size=32, seed=seed, progress=verbose)
    took = time.perf_counter() - t0
    acc = trainer.evaluate((X_te, y_te))["accuracy"]
    base = bag_of_words_baseline(X_tr, y_tr, X_te, y_te, len(vocab), seed=seed)
    say(f"LSTM: test accuracy {acc:.4f} after {epochs} epochs ({took:.1f} s); "
        f"bag-of-words baseline {base:.4f}")

    probes = ["the movie was not bad at all", "the movie was not good",
              "a boring plot, but the acting was wonderful",
              "a wonderful plot, but the acting was boring",
              "i expected the film to be dull and it was not", "the ending was never charming"]
    ids, _ = vocab.encode_batch([tokenize(t) for t in probes])
    model.eval()
    with cr.no_grad():
        p = F.softmax(model(ids), axis=1).numpy()
    preds = []
    for t, row in zip(probes, p):
        k = int(row.argmax())
        preds.append(classes[k])
        say(f"  {classes[k]} ({row[k]:.2f})  {t}")
    say(f"test_accuracy={acc:.4f}")
    return {"test_accuracy": acc, "baseline_accuracy": base, "predictions": dict(zip(probes, preds))}


if __name__ == "__main__":
    main()
