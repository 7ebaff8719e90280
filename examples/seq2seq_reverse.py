"""Sequence to sequence: an encoder-decoder learns to reverse digit strings (or, with --task,
to sort them or to rewrite dates such as 'March 7, 2024' or '07/03/2024' as '2024-03-07').

The encoder LSTM reads the source (many-to-one); its final state starts the decoder LSTM, which
writes the target one token at a time (one-to-many), also reading the encoder's summary at every
step (Cho et al. 2014). Training uses teacher forcing: the decoder reads the true previous token.
At test time it decodes greedily, reading its own previous prediction, on sources never seen in
training; a sequence counts only if every token and the final <eos> are right (exact match).

    python examples/seq2seq_reverse.py                 # reverse, lengths 3..10
    python examples/seq2seq_reverse.py --task dates
"""
import argparse
import time

import chainrule as cr
from chainrule.models.seq2seq import Seq2Seq
from chainrule.applications.seq2seq import (build_vocabs, exact_match_accuracy, make_task, train_seq2seq)


def main(task="reverse", n_train=20000, n_test=1000, min_len=3, max_len=10, epochs=8,
         hidden_size=128, cell="lstm", seed=0, verbose=True):
    """Returns {'exact_match', 'history', 'examples'}."""
    say = print if verbose else (lambda *a, **k: None)
    train = make_task(task, n_train, min_len, max_len, seed=seed)
    test = make_task(task, n_test, min_len, max_len, seed=seed + 1,
                     exclude={"".join(s) for s, _ in train})        # held out: unseen sources
    src_vocab, tgt_vocab = build_vocabs(train)
    cr.manual_seed(seed)
    model = Seq2Seq(len(src_vocab), len(tgt_vocab), embedding_dim=32, hidden_size=hidden_size,
                    cell=cell, bos_index=tgt_vocab.bos_index, eos_index=tgt_vocab.eos_index)
    say(f"{task}: {len(train)} training pairs, {len(test)} held-out pairs, "
        f"{model.num_parameters()} parameters")

    def show(epoch, logs):
        say(f"epoch {epoch + 1}  loss {logs['loss']:.4f}  exact match on 200 held-out "
            f"{logs['val_exact_match']:.3f}  ({logs['time']:.1f} s)")

    t0 = time.perf_counter()
    history = train_seq2seq(model, train, src_vocab, tgt_vocab, epochs=epochs, batch_size=64,
                            lr=3e-3, clip=1.0, seed=seed, val_pairs=test[:200], on_epoch_end=show)
    acc, preds = exact_match_accuracy(model, test, src_vocab, tgt_vocab, return_predictions=True)
    say(f"trained in {time.perf_counter() - t0:.1f} s")
    examples = []
    for (s, t), p in list(zip(test, preds))[:6]:
        examples.append(("".join(s), "".join(p), "".join(t)))
        verdict = "ok" if p == t else f"wrong (want {''.join(t)})"
        say(f"  {''.join(s):>20} -> {''.join(p):<20} {verdict}")
    say(f"exact_match={acc:.4f}")
    return {"exact_match": acc, "history": history, "examples": examples}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=["reverse", "sort", "dates"], default="reverse")
    ap.add_argument("--epochs", type=int, default=8)
    main(**vars(ap.parse_args()))
