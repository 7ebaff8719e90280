"""The sequence subcommands (chainrule.cli.sequences): train-char -> generate round trip, sentiment on a
TSV file, seq2seq, mnist1d-seq, gradient-flow, their errors; and the sequence examples."""
import ast
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from cli_helpers import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SEQ_EXAMPLES = ["char_lm", "sentiment", "seq2seq_reverse", "tagging", "mnist1d_sequences",
                "gradient_flow"]


def last_value(out, name):
    line = out.strip().splitlines()[-1]
    m = re.fullmatch(rf"{name}=(.+)", line)
    assert m, f"last line is not {name}=...: {line!r}"
    return m.group(1)


@pytest.fixture
def tiny_text(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 10)
    return p


CHAR_ARGS = ["--epochs", "2", "--hidden", "16", "--embedding-dim", "8", "--batch-size", "4",
             "--seq-len", "16", "--sample-length", "20", "--no-progress"]


def test_help_lists_the_sequence_commands(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for cmd in ("train-char", "generate", "sentiment", "seq2seq", "mnist1d-seq", "gradient-flow"):
        assert cmd in out
    code, out, _ = run(["generate", "--help"], capsys)
    assert code == 0 and "--temperature" in out and "--top-k" in out and "--prime" in out


def test_train_char_then_generate_round_trip(tmp_path, tiny_text, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run(["train-char", str(tiny_text), "--out", str(out_dir)] + CHAR_ARGS, capsys)
    assert code == 0, err
    ckpt = last_value(out, "checkpoint")
    assert os.path.exists(ckpt) and ckpt == str(out_dir / "char_rnn.ckpt")
    assert "epoch 1/2" in out and "epoch 2/2" in out and "val_loss=" in out
    losses = [float(v) for v in re.findall(r"  loss=([\d.]+)", out)]
    assert len(losses) == 2 and losses[1] < losses[0]
    with open(out_dir / "history.csv") as f:
        assert f.readline().strip() == "epoch,loss,val_loss,time"
    # generate: from the run directory or the file; greedy is deterministic; the prime comes first
    code, g1, err = run(["generate", str(out_dir), "--length", "25", "--top-k", "1",
                         "--prime", "the c"], capsys)
    assert code == 0, err
    code, g2, _ = run(["generate", ckpt, "--length", "25", "--top-k", "1", "--prime", "the c",
                       "--seed", "9"], capsys)
    assert g1 == g2 and g1.startswith("the c") and len(g1.rstrip("\n")) == 30
    code, s1, _ = run(["generate", ckpt, "--length", "40", "--temperature", "1.5", "--seed", "1"], capsys)
    code, s2, _ = run(["generate", ckpt, "--length", "40", "--temperature", "1.5", "--seed", "1"], capsys)
    assert code == 0 and s1 == s2 and s1.startswith("t")            # default prime: first char


def test_generate_and_train_char_errors(tmp_path, tiny_text, capsys):
    out_dir = tmp_path / "run"
    assert run(["train-char", str(tiny_text), "--out", str(out_dir), "--epochs", "1",
                "--hidden", "8", "--embedding-dim", "4", "--batch-size", "2", "--sample-length",
                "0", "--no-progress"], capsys)[0] == 0
    code, _, err = run(["generate", str(out_dir), "--prime", "the Zebra"], capsys)
    assert code == 2
    assert "chainrule generate: error: unknown character 'Z' (U+005A) at position 4" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, _, err = run(["train-char", str(empty), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "empty.txt: the file is empty" in err
    code, _, err = run(["train-char", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run(["generate", str(tmp_path / "missing.ckpt")], capsys)
    assert code == 2 and "no such checkpoint" in err
    code, _, err = run(["generate", str(tiny_text)], capsys)
    assert code == 2 and "not a chainrule checkpoint" in err
    code, _, err = run(["generate", str(out_dir), "--temperature", "0"], capsys)
    assert code == 2 and "expected a positive number" in err
    code, _, err = run(["train-char", str(tiny_text)], capsys)        # --out is required
    assert code == 2 and "--out" in err


def write_reviews(path, n=120, seed=0):
    from chainrule.data.text import write_labeled_text
    from chainrule.applications.sequence_tasks import make_sentiment_data
    texts, labels = make_sentiment_data(n, seed=seed)
    write_labeled_text(path, texts, labels)
    return path


def test_sentiment_on_a_tsv_file(tmp_path, capsys):
    train = write_reviews(tmp_path / "train.tsv")
    code, out, err = run(["sentiment", str(train), "--epochs", "2", "--hidden", "8",
                          "--embedding-dim", "8", "--no-progress", "--out", str(tmp_path / "s"),
                          "--predict", "the movie was not bad"], capsys)
    assert code == 0, err
    acc = float(last_value(out, "test_accuracy"))
    assert 0 <= acc <= 1
    assert "classes ['neg', 'pos']" in out and "epoch 2/2" in out
    assert re.search(r"^(neg|pos)\t0\.\d{3}\tthe movie was not bad$", out, re.M)
    assert os.path.exists(tmp_path / "s" / "sentiment.ckpt")
    # the alias and a separate test file
    test = write_reviews(tmp_path / "test.tsv", n=30, seed=1)
    code, out, err = run(["train-sentiment", str(train), "--test", str(test), "--epochs", "1",
                          "--hidden", "8", "--embedding-dim", "8", "--val-fraction", "0",
                          "--no-progress"], capsys)
    assert code == 0, err
    assert "30 test texts" in out


def test_sentiment_bad_line_is_named(tmp_path, capsys):
    p = tmp_path / "bad.tsv"
    p.write_text("text\tlabel\ngood film\tpos\nbad film\tneg\nthis line has no label\n")
    code, _, err = run(["sentiment", str(p)], capsys)
    assert code == 2
    assert "chainrule sentiment: error:" in err and "bad.tsv, line 4: expected 2 fields" in err
    one = tmp_path / "one.tsv"
    one.write_text("good\tpos\nfine\tpos\n")
    code, _, err = run(["sentiment", str(one)], capsys)
    assert code == 2 and "need two classes" in err


def test_seq2seq_command(capsys):
    code, out, err = run(["seq2seq", "--task", "sort", "--train-size", "200", "--test-size", "20",
                          "--max-len", "4", "--epochs", "1", "--hidden", "16",
                          "--embedding-dim", "8"], capsys)
    assert code == 0, err
    assert 0 <= float(last_value(out, "exact_match")) <= 1
    assert "task sort: 200 training pairs, 20 held-out" in out
    code, _, err = run(["seq2seq", "--min-len", "5", "--max-len", "3"], capsys)
    assert code == 2 and "--min-len 5 is larger than --max-len 3" in err
    code, _, err = run(["seq2seq", "--task", "translate"], capsys)
    assert code == 2 and "invalid choice" in err


@pytest.mark.parametrize("model", ["gru", "tdnn"])
def test_mnist1d_seq_command(model, capsys, monkeypatch):
    import chainrule.data.datasets as ds
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 40)).astype(np.float32)
    y = rng.integers(0, 10, 96)
    monkeypatch.setattr(ds, "mnist1d", lambda: (X[:64], y[:64], X[64:], y[64:]))   # generating takes s
    code, out, err = run(["mnist1d-seq", "--model", model, "--epochs", "1", "--hidden", "8",
                          "--channels", "4", "--no-progress"], capsys)
    assert code == 0, err
    assert 0 <= float(last_value(out, "test_accuracy")) <= 1
    assert f"mnist1d: 64 training, 32 test signals of 40 steps; {model}:" in out


def test_gradient_flow_command(tmp_path, capsys):
    png = tmp_path / "gf.png"
    code, out, err = run(["gradient-flow", "--out", str(png), "--seq-len", "15", "--hidden", "8",
                          "--clip-steps", "5", "--dpi", "30"], capsys)
    assert code == 0, err
    assert last_value(out, "png") == str(png)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "vanilla RNN, tanh, default init: ||dL/dh_1|| / ||dL/dh_T||" in out


def test_console_script_has_the_commands():
    here = os.path.join(os.path.dirname(sys.executable), "chainrule")
    exe = [here] if os.path.exists(here) else [sys.executable, "-m", "chainrule.cli"]
    proc = subprocess.run(exe + ["seq2seq", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--task" in proc.stdout


# -- examples -------------------------------------------------------------------------------------

def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SEQ_EXAMPLES)
def test_sequence_examples_use_only_the_public_api(name):
    with open(os.path.join(EXAMPLES, f"{name}.py")) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chainrule"):
            assert not any(part.startswith("_") for part in node.module.split(".")), node.module
            assert not any(a.name.startswith("_") for a in node.names), ast.dump(node)


def test_small_runs_of_the_examples(tmp_path):
    h, samples = load_example("char_lm").main(epochs=2, batch_size=4, hidden_size=16,
                                              embedding_dim=8, sample_length=10, verbose=False)
    assert h["loss"][-1] < h["loss"][0] and all(s.startswith("Alice ") for s in samples.values())
    r = load_example("seq2seq_reverse").main(n_train=200, n_test=20, max_len=4, epochs=1,
                                             hidden_size=16, verbose=False)
    assert 0 <= r["exact_match"] <= 1 and len(r["examples"]) == 6
    r = load_example("tagging").main(n_train=100, n_test=30, epochs=1, verbose=False)
    assert 0 <= r["test_accuracy"] <= 1 and r["baseline_accuracy"] > 0.8
    r = load_example("sentiment").main(n=100, epochs=1, hidden_size=8, embedding_dim=8,
                                       folder=str(tmp_path), verbose=False)
    assert os.path.exists(tmp_path / "reviews.tsv") and 0 <= r["test_accuracy"] <= 1
    d = load_example("gradient_flow").main(str(tmp_path / "g.png"), seq_len=10, clip_steps=3,
                                            dpi=30)
    assert os.path.exists(tmp_path / "g.png") and len(d["norms"]) == 4
