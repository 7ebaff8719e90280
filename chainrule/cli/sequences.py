"""The sequence subcommands: ``train-char``, ``generate``, ``sentiment``, ``seq2seq``,
``mnist1d-seq`` and ``gradient-flow``:

    chainrule train-char input.txt --out runs/char          # character LM, truncated BPTT
    chainrule generate runs/char --length 500 --temperature 0.8 --top-k 10 --prime "The " --seed 1
    chainrule sentiment reviews.tsv --epochs 10              # many-to-one LSTM classifier
    chainrule seq2seq --task reverse                         # encoder-decoder, exact-match accuracy
    chainrule mnist1d-seq --model gru                        # or --model tdnn
    chainrule gradient-flow --out gradient_flow.png          # vanishing / exploding, clipping

Each ends with a line ``name=value`` (``checkpoint=``, ``test_accuracy=``, ``exact_match=``, ``png=``)
except ``generate``, which prints only the generated text.
"""
import math
import os
import sys
import time

import numpy as np

from ..applications.sequence_classification import MNIST1D_DEFAULTS as MNIST1D
from ..applications.sequence_classification import SENTIMENT_DEFAULTS as SENTIMENT
from ..applications.seq2seq import make_task, train_seq2seq
from ..applications.text_generation import train_char_rnn
from ..models.seq2seq import Seq2Seq
from .common import (HelpFormatter, column, defaults_of, epoch_printer, fraction, named_checkpoint,
                     nonneg_int, positive_float, positive_int, progress_bar, seed, unit_interval,
                     write_history)

CHAR_CKPT = "char_rnn.ckpt"
SENTIMENT_CKPT = "sentiment.ckpt"
SEQ2SEQ_CKPT = "seq2seq.ckpt"


def add_commands(sub):
    """Add the sequence subcommands to the ``chainrule`` parser's subparsers ``sub``."""
    HF, pos_int, pos_float = HelpFormatter, positive_int, positive_float

    # -- train-char ---------------------------------------------------------------------------------
    c = sub.add_parser(
        "train-char", help="train a character-level language model on a text file",
        description="Train a character-level LSTM language model (Embedding -> LSTM -> Linear) on "
                    "TEXTFILE with truncated back-propagation through time: the text is cut into "
                    "--batch-size streams walked in chunks of --seq-len characters, the hidden "
                    "state carried from chunk to chunk, gradients clipped to --clip. The last "
                    "--val-fraction of the text is held out. Writes OUT/char_rnn.ckpt (after every "
                    "epoch) and OUT/history.csv, prints a sample, and ends with "
                    "'checkpoint=<path>'. Then: chainrule generate OUT.",
        formatter_class=HF)
    c.add_argument("textfile", metavar="TEXTFILE", help="a UTF-8 text file (any language)")
    c.add_argument("--out", required=True, metavar="DIR", help="where to write the checkpoint")
    m = c.add_argument_group("model")
    fn = defaults_of(train_char_rnn, hidden="hidden_size", layers="num_layers")
    m.add_argument("--cell", choices=["lstm", "gru", "rnn"], default=fn["cell"],
                   help="recurrent layer")
    m.add_argument("--embedding-dim", type=pos_int, default=fn["embedding_dim"],
                   help="character embedding size")
    m.add_argument("--hidden", type=pos_int, default=fn["hidden"], help="hidden units per layer")
    m.add_argument("--layers", type=pos_int, default=fn["layers"], help="stacked recurrent layers")
    m.add_argument("--dropout", type=unit_interval, default=fn["dropout"],
                   help="dropout between layers")
    o = c.add_argument_group("training")
    # the command's own default, not train_char_rnn's
    o.add_argument("--epochs", type=pos_int, default=20, help="passes over the text")
    o.add_argument("--seq-len", type=pos_int, default=fn["seq_len"],
                   help="truncated-BPTT chunk: steps back-propagated through")
    o.add_argument("--batch-size", type=pos_int, default=fn["batch_size"],
                   help="parallel streams of text")
    o.add_argument("--lr", type=pos_float, default=fn["lr"], help="Adam learning rate")
    o.add_argument("--clip", type=pos_float, default=fn["clip"],
                   help="gradient-norm clipping threshold")
    o.add_argument("--val-fraction", type=unit_interval, default=fn["val_fraction"],
                   help="share of the text (its end) held out for validation")
    o.add_argument("--seed", type=seed, default=fn["seed"], help="seed for initialisation and offsets")
    o.add_argument("--sample-length", type=nonneg_int, default=200,
                   help="characters of the sample printed at the end (0: none)")
    o.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    c.set_defaults(func=cmd_train_char, outputs={"out": "dir"})

    # -- generate -----------------------------------------------------------------------------------
    g = sub.add_parser(
        "generate", help="generate text with a trained character language model",
        description="Load a checkpoint written by 'chainrule train-char' (or its OUT directory) "
                    "and print --prime followed by --length generated characters. Each character "
                    "is drawn from softmax(logits / --temperature) restricted to the --top-k most "
                    "likely ones (--top-k 1: greedy, the same text every time).",
        formatter_class=HF)
    g.add_argument("checkpoint", metavar="CHECKPOINT", help="char_rnn.ckpt, or the train-char --out DIR")
    g.add_argument("--length", type=nonneg_int, default=300, help="characters to generate")
    g.add_argument("--temperature", type=pos_float, default=1.0,
                   help="< 1: safer, more repetitive; > 1: more surprising")
    g.add_argument("--top-k", type=nonneg_int, default=0,
                   help="sample among the k most likely characters only (0: all)")
    g.add_argument("--prime", default=None,
                   help="text to start from (default: the first character of the training text)")
    g.add_argument("--seed", type=seed, default=None, help="seed for sampling (default: random)")
    g.set_defaults(func=cmd_generate)

    # -- sentiment ----------------------------------------------------------------------------------
    s = sub.add_parser(
        "sentiment", aliases=["train-sentiment"],
        help="train a many-to-one LSTM text classifier on a CSV/TSV of (text, label)",
        description="Read TRAIN (CSV or TSV: a text column and a label column, an optional header "
                    "row), tokenize, build a vocabulary with <pad> and <unk> from the training "
                    "texts, and train Embedding -> LSTM -> Linear on each text's final state "
                    "(variable lengths, padding never read). Tests on --test, or on a held-out "
                    "--test-fraction of TRAIN; ends with 'test_accuracy=<fraction>'.",
        formatter_class=HF)
    s.add_argument("train", metavar="TRAIN", help="CSV/TSV file of (text, label) rows")
    s.add_argument("--test", metavar="TEST", help="a separate test file in the same format")
    s.add_argument("--test-fraction", type=fraction, default=SENTIMENT["test_fraction"],
                   help="without --test: the share of TRAIN held out for the test")
    s.add_argument("--val-fraction", type=unit_interval, default=SENTIMENT["val_fraction"],
                   help="share of the training rows used for per-epoch validation (0: none)")
    s.add_argument("--text-column", default=None, help="name or index of the text column")
    s.add_argument("--label-column", default=None, help="name or index of the label column")
    s.add_argument("--min-freq", type=pos_int, default=SENTIMENT["min_freq"],
                   help="rarer words become <unk>")
    s.add_argument("--max-len", type=pos_int, default=SENTIMENT["max_len"], help="tokens kept per text")
    m = s.add_argument_group("model")
    m.add_argument("--cell", choices=["lstm", "gru", "rnn"], default=SENTIMENT["cell"],
                   help="recurrent layer")
    m.add_argument("--embedding-dim", type=pos_int, default=SENTIMENT["embedding_dim"],
                   help="word embedding size")
    m.add_argument("--hidden", type=pos_int, default=SENTIMENT["hidden"], help="hidden units")
    m.add_argument("--bidirectional", action="store_true", default=SENTIMENT["bidirectional"],
                   help="read the texts both ways")
    m.add_argument("--dropout", type=unit_interval, default=SENTIMENT["dropout"],
                   help="dropout before the classifier")
    o = s.add_argument_group("training")
    o.add_argument("--epochs", type=pos_int, default=SENTIMENT["epochs"],
                   help="passes over the training rows")
    o.add_argument("--batch-size", type=pos_int, default=SENTIMENT["batch_size"], help="texts per step")
    o.add_argument("--lr", type=pos_float, default=SENTIMENT["lr"], help="Adam learning rate")
    o.add_argument("--clip", type=pos_float, default=SENTIMENT["clip"],
                   help="gradient-norm clipping threshold")
    o.add_argument("--seed", type=seed, default=SENTIMENT["seed"],
                   help="seed for splits, initialisation, shuffling")
    o.add_argument("--out", metavar="DIR", help="write the model, vocabulary and classes here")
    o.add_argument("--predict", action="append", metavar="TEXT", default=[],
                   help="after training, classify this text (repeatable)")
    o.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    s.set_defaults(func=cmd_sentiment, outputs={"out": "dir"})

    # -- seq2seq ------------------------------------------------------------------------------------
    q = sub.add_parser(
        "seq2seq", help="train an encoder-decoder on a generated task; report exact-match accuracy",
        description="Generate a task (reverse: a digit string -> reversed; sort: -> its digits "
                    "sorted; dates: 'March 7, 2024' / '07/03/2024' / ... -> '2024-03-07'), train "
                    "an encoder-decoder (the encoder's final state starts the decoder) with "
                    "teacher forcing, decode held-out sources greedily and end with "
                    "'exact_match=<fraction>' (whole output sequence right).",
        formatter_class=HF)
    q.add_argument("--task", choices=["reverse", "sort", "dates"], default="reverse",
                   help="the task to learn")
    q.add_argument("--train-size", type=pos_int, default=20000, help="training pairs")
    q.add_argument("--test-size", type=pos_int, default=1000,
                   help="held-out pairs (sources never seen in training)")
    task, net, fit = (defaults_of(make_task), defaults_of(Seq2Seq, hidden="hidden_size"),
                      defaults_of(train_seq2seq))
    q.add_argument("--min-len", type=pos_int, default=task["min_len"],
                   help="reverse/sort: shortest source")
    q.add_argument("--max-len", type=pos_int, default=task["max_len"],
                   help="reverse/sort: longest source")
    m = q.add_argument_group("model")
    # the command's own cell and epochs, not Seq2Seq's / train_seq2seq's defaults
    m.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm", help="recurrent layers")
    m.add_argument("--embedding-dim", type=pos_int, default=net["embedding_dim"],
                   help="token embedding size")
    m.add_argument("--hidden", type=pos_int, default=net["hidden"], help="hidden units")
    o = q.add_argument_group("training")
    o.add_argument("--epochs", type=pos_int, default=8, help="passes over the training pairs")
    o.add_argument("--batch-size", type=pos_int, default=fit["batch_size"], help="pairs per step")
    o.add_argument("--lr", type=pos_float, default=fit["lr"],
                   help="Adam learning rate (cosine decay)")
    o.add_argument("--clip", type=pos_float, default=fit["clip"],
                   help="gradient-norm clipping threshold")
    o.add_argument("--seed", type=seed, default=fit["seed"], help="seed for data and initialisation")
    o.add_argument("--out", metavar="DIR", help="write the model and vocabularies here")
    q.set_defaults(func=cmd_seq2seq, outputs={"out": "dir"})

    # -- mnist1d-seq --------------------------------------------------------------------------------
    n = sub.add_parser(
        "mnist1d-seq", help="classify MNIST-1D as sequences with a GRU or a TDNN",
        description="MNIST-1D (4000 training and 1000 test signals of 40 samples, 10 classes) read "
                    "as a sequence: a GRU over the 40 steps (its final state -> Linear), or a "
                    "time-delay network (Conv1d layers with dilations 1, 2, 4, 8 over time, "
                    "average over time -> Linear). Ends with 'test_accuracy=<fraction>'.",
        formatter_class=HF)
    n.add_argument("--model", choices=["gru", "tdnn"], default=MNIST1D["model"],
                   help="the architecture")
    n.add_argument("--hidden", type=pos_int, default=MNIST1D["hidden"], help="GRU hidden units")
    n.add_argument("--channels", type=pos_int, default=MNIST1D["channels"],
                   help="TDNN channels per layer")
    n.add_argument("--epochs", type=pos_int, default=MNIST1D["epochs"],
                   help="passes over the training set")
    n.add_argument("--batch-size", type=pos_int, default=MNIST1D["batch_size"], help="signals per step")
    n.add_argument("--lr", type=pos_float, default=MNIST1D["lr"],
                   help="Adam learning rate, with cosine decay to lr/50")
    n.add_argument("--clip", type=pos_float, default=MNIST1D["clip"],
                   help="gradient-norm clipping threshold")
    n.add_argument("--val-fraction", type=unit_interval, default=MNIST1D["val_fraction"],
                   help="share of the training set used for per-epoch validation (0: none)")
    n.add_argument("--seed", type=seed, default=MNIST1D["seed"],
                   help="seed for initialisation and shuffling")
    n.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    n.set_defaults(func=cmd_mnist1d_seq)

    # -- gradient-flow ------------------------------------------------------------------------------
    f = sub.add_parser(
        "gradient-flow", help="plot how gradients vanish or explode through time (PNG)",
        description="For a vanilla RNN and an LSTM, plot ||dL/dh_t|| against t for a loss on the "
                    "last state of a --seq-len step sequence, then train an exploding RNN with "
                    "and without gradient clipping. Writes a PNG; ends with 'png=<path>'.",
        formatter_class=HF)
    f.add_argument("--out", default="gradient_flow.png", metavar="PNG", help="the image to write")
    f.add_argument("--seq-len", type=pos_int, default=100, help="steps back through time")
    f.add_argument("--hidden", type=pos_int, default=32, help="hidden units")
    f.add_argument("--clip-steps", type=pos_int, default=200, help="SGD steps of the clipping runs")
    f.add_argument("--max-norm", type=pos_float, default=1.0, help="clipping threshold")
    f.add_argument("--seed", type=seed, default=0, help="seed")
    f.add_argument("--dpi", type=pos_int, default=110, help="image resolution (dots per inch)")
    f.set_defaults(func=cmd_gradient_flow, outputs={"out": "file"})


# -- train-char / generate --------------------------------------------------------------------------

def cmd_train_char(args):
    from ..data.text import read_text
    from ..applications.text_generation import sample, save_char_rnn

    text = read_text(args.textfile)
    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, CHAR_CKPT)
    print(f"text: {args.textfile}, {len(text)} characters, {len(set(text))} distinct")
    settings = {k: getattr(args, k) for k in ("cell", "embedding_dim", "hidden", "layers", "dropout",
                                              "epochs", "seq_len", "batch_size", "lr", "clip",
                                              "val_fraction", "seed")}
    history = {"loss": [], "val_loss": [], "time": []}
    bar = {"b": None}
    state = {}

    def progress(i, n, loss):
        if bar["b"] is None:
            bar["b"] = progress_bar(n, "train-char", args.progress)
        if bar["b"] is not None:
            bar["b"].update(1)
            bar["b"].set_postfix(loss=f"{loss:.3f}", refresh=False)

    def on_epoch_end(epoch, logs):
        if bar["b"] is not None:
            bar["b"].close()
            bar["b"] = None
        for k in history:
            if k in logs:
                history[k].append(logs[k])
        val = f"  val_loss={logs['val_loss']:.4f}" if "val_loss" in logs else ""
        print(f"epoch {epoch + 1}/{args.epochs}  loss={logs['loss']:.4f}{val}  ({logs['time']:.1f} s)",
              flush=True)
        save_char_rnn(ckpt, state["model"], state["vocab"], start=text[0], source=args.textfile,
                      settings=settings, epoch=epoch + 1, history=history)

    from ..data.text import CharVocabulary
    from ..models.char_rnn import CharRNN
    from .. import manual_seed
    vocab = CharVocabulary.build(text)
    manual_seed(args.seed)
    model = CharRNN(len(vocab), args.embedding_dim, args.hidden, args.layers, args.dropout, args.cell)
    state.update(model=model, vocab=vocab)
    print(f"vocabulary: {len(vocab)} characters; model: {model.num_parameters()} parameters")
    t0 = time.perf_counter()
    train_char_rnn(text, vocab=vocab, model=model, epochs=args.epochs, seq_len=args.seq_len,
                   batch_size=args.batch_size, lr=args.lr, clip=args.clip,
                   val_fraction=args.val_fraction, seed=args.seed, on_epoch_end=on_epoch_end,
                   progress=progress)
    write_history(os.path.join(args.out, "history.csv"), history)
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    if history["val_loss"]:
        v = history["val_loss"][-1]
        print(f"val_loss={v:.4f} ({v / math.log(2):.3f} bits per character)")
    if args.sample_length:
        print("sample (temperature 0.8, top-k 10):")
        print(sample(model, vocab, text[0], args.sample_length, temperature=0.8, top_k=10,
                     seed=args.seed))
    print(f"checkpoint={ckpt}")
    return 0


def cmd_generate(args):
    from ..applications.text_generation import load_char_rnn, sample

    path = named_checkpoint(args.checkpoint, CHAR_CKPT)
    model, vocab, meta = load_char_rnn(path)
    prime = args.prime if args.prime is not None else meta.get("start") or vocab.token(0)
    text = sample(model, vocab, prime, args.length, temperature=args.temperature,
                  top_k=args.top_k or None, seed=args.seed)
    sys.stdout.write(text + "\n")
    return 0


# -- sentiment --------------------------------------------------------------------------------------

def cmd_sentiment(args):
    from .. import manual_seed
    from ..applications.sequence_classification import (TEXT_SETTINGS, adam_cosine_trainer,
                                                        classify_texts, prepare_texts,
                                                        save_text_classifier, sentiment_model)
    from ..data.text import read_labeled_text

    columns = dict(text_column=column(args.text_column), label_column=column(args.label_column))
    texts, labels, classes = read_labeled_text(args.train, **columns)
    if len(classes) < 2:
        raise ValueError(f"{args.train}: all rows have the label {classes[0]!r}; need two classes")
    test_texts = test_labels = None
    if args.test:
        test_texts, test_labels, _ = read_labeled_text(args.test, classes=classes, **columns)
    data = prepare_texts(texts, labels, test_texts, test_labels,
                         **{k: getattr(args, k) for k in TEXT_SETTINGS})
    print(data.describe(classes))
    manual_seed(args.seed)
    model = sentiment_model(data.vocab, len(classes), args.cell, args.embedding_dim, args.hidden,
                            args.bidirectional, args.dropout)
    trainer = adam_cosine_trainer(model, args.lr, args.epochs, args.clip,
                                  eta_min=args.lr / SENTIMENT["eta_min_divisor"])
    t0 = time.perf_counter()
    trainer.fit((data.X_train, data.y_train), epochs=args.epochs, val_data=data.val,
                batch_size=args.batch_size, seed=args.seed, progress=args.progress,
                callbacks=[epoch_printer(args.epochs)])
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    res = trainer.evaluate((data.X_test, data.y_test))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = save_text_classifier(os.path.join(args.out, SENTIMENT_CKPT), model, data.vocab,
                                    classes)
        print(f"checkpoint: {path}")
    if args.predict:
        p = classify_texts(model, data.vocab, args.predict, args.max_len)
        for t, row in zip(args.predict, p):
            k = int(row.argmax())
            print(f"{classes[k]}\t{row[k]:.3f}\t{t}")
    print(f"test_loss={res['loss']:.4f}")
    print(f"test_accuracy={res['accuracy']:.4f}")
    return 0


# -- seq2seq ----------------------------------------------------------------------------------------

def cmd_seq2seq(args):
    from .. import manual_seed, save
    from ..applications.seq2seq import build_vocabs, exact_match_accuracy

    if args.min_len > args.max_len:
        raise ValueError(f"--min-len {args.min_len} is larger than --max-len {args.max_len}")
    train = make_task(args.task, args.train_size, args.min_len, args.max_len, seed=args.seed)
    test = make_task(args.task, args.test_size, args.min_len, args.max_len, seed=args.seed + 10_000,
                     exclude={"".join(s) for s, _ in train})
    src_vocab, tgt_vocab = build_vocabs(train)
    manual_seed(args.seed)
    model = Seq2Seq(len(src_vocab), len(tgt_vocab), args.embedding_dim, args.hidden, cell=args.cell,
                    bos_index=tgt_vocab.bos_index, eos_index=tgt_vocab.eos_index,
                    pad_index=tgt_vocab.pad_index)
    ex = train[0]
    print(f"task {args.task}: {len(train)} training pairs, {len(test)} held-out; e.g. "
          f"{''.join(ex[0])!r} -> {''.join(ex[1])!r}; model: {model.num_parameters()} parameters")
    val = test[:min(200, len(test))]

    def on_epoch_end(epoch, logs):
        print(f"epoch {epoch + 1}/{args.epochs}  loss={logs['loss']:.4f}  "
              f"held-out exact match (first {len(val)})={logs['val_exact_match']:.3f}  "
              f"({logs['time']:.1f} s)", flush=True)

    t0 = time.perf_counter()
    train_seq2seq(model, train, src_vocab, tgt_vocab, epochs=args.epochs, batch_size=args.batch_size,
                  lr=args.lr, clip=args.clip, seed=args.seed, val_pairs=val, on_epoch_end=on_epoch_end)
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    acc, preds = exact_match_accuracy(model, test, src_vocab, tgt_vocab, return_predictions=True)
    for (s, t), p in list(zip(test, preds))[:5]:
        mark = "ok " if p == list(t) else "BAD"
        print(f"  {mark} {''.join(s)!r:>24} -> {''.join(p)!r}  (want {''.join(t)!r})")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, SEQ2SEQ_CKPT)
        save({"kind": "chainrule.seq2seq", "task": args.task, "config": model.config(),
              "src_vocab": src_vocab.state_dict(), "tgt_vocab": tgt_vocab.state_dict(),
              "model": model.state_dict()}, path)
        print(f"checkpoint: {path}")
    print(f"exact_match={acc:.4f}")
    return 0


# -- mnist1d-seq ------------------------------------------------------------------------------------

def cmd_mnist1d_seq(args):
    from .. import manual_seed
    from ..applications.sequence_classification import (adam_cosine_trainer, mnist1d_data,
                                                        mnist1d_model)

    (X_tr, y_tr), val, test = mnist1d_data(args.val_fraction, args.seed)
    manual_seed(args.seed)
    model = mnist1d_model(args.model, args.hidden, args.channels)
    print(f"mnist1d: {len(X_tr)} training, {len(test[0])} test signals of {X_tr.shape[1]} steps; "
          f"{args.model}: {model.num_parameters()} parameters")
    trainer = adam_cosine_trainer(model, args.lr, args.epochs, args.clip,
                                  eta_min=args.lr / MNIST1D["eta_min_divisor"])
    t0 = time.perf_counter()
    trainer.fit((X_tr, y_tr), epochs=args.epochs, val_data=val, batch_size=args.batch_size,
                seed=args.seed, progress=args.progress, callbacks=[epoch_printer(args.epochs)])
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    res = trainer.evaluate(test)
    print(f"test_loss={res['loss']:.4f}")
    print(f"test_accuracy={res['accuracy']:.4f}")
    return 0


# -- gradient-flow ----------------------------------------------------------------------------------

def cmd_gradient_flow(args):
    from ..viz.gradient_flow import plot_gradient_flow

    d = plot_gradient_flow(args.out, seq_len=args.seq_len, hidden_size=args.hidden,
                           clip_steps=args.clip_steps, max_norm=args.max_norm, seed=args.seed,
                           dpi=args.dpi)
    for label, n in d["norms"].items():
        print(f"{label}: ||dL/dh_1|| / ||dL/dh_T|| = {n[0] / n[-1]:.3g}")
    for name, r in d["clipping"].items():
        ls = r["loss"]
        fin = ls[np.isfinite(ls)]
        end = f"final loss {fin[-1]:.4f}" if len(fin) == len(ls) else \
            f"diverged at step {len(fin) + 1}"
        print(f"clipping run, {name}: {end}")
    print(f"png={d['path']}")
    return 0
