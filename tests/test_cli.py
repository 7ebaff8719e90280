"""The ``chainrule`` command: help, training on digits / MNIST-1D / a CSV file, --save, and errors."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.data.datasets import digits_split
from chainrule.models import mlp
from chainrule.nn import functional as F
from cli_helpers import run

ACCURACY_LINE = re.compile(r"^test_accuracy=([01]\.\d{4})$", re.M)


def accuracy_of(out):
    """The fraction on the ``test_accuracy=`` line, which must be the last line."""
    lines = out.strip().splitlines()
    m = ACCURACY_LINE.fullmatch(lines[-1])
    assert m, f"last line is not test_accuracy=<fraction>: {lines[-1]!r}"
    value = float(m.group(1))
    assert 0.0 <= value <= 1.0
    return value


def chainrule_script():
    """The installed console script (next to this interpreter, else on PATH)."""
    here = os.path.join(os.path.dirname(sys.executable), "chainrule")
    path = here if os.path.exists(here) else shutil.which("chainrule")
    assert path, "the chainrule console script is not installed (pip install -e .)"
    return path


# -- help -----------------------------------------------------------------------------------------

def test_top_level_help(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert "usage: chainrule" in out and "train" in out and "chainrule train --help" in out


def test_no_command_prints_help_and_version_works(capsys):
    code, out, _ = run([], capsys)
    assert code == 0 and "usage: chainrule" in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"chainrule {cr.__version__}"


def test_train_help_lists_datasets_and_options(capsys):
    code, out, _ = run(["train", "--help"], capsys)
    assert code == 0
    assert "usage: chainrule train" in out
    for word in ("digits", "mnist1d", "CSV", "test_accuracy=", "--dataset", "--label-column",
                 "--hidden", "--activation", "--optimizer", "--lr", "--epochs", "--batch-size",
                 "--seed", "--save", "--no-progress", "sgd", "adam", "(default: 50)"):
        assert word in out, word
    assert "(default: True)" not in out and "(default: None)" not in out   # no backwards flags


# -- training -------------------------------------------------------------------------------------

def test_train_digits_for_three_epochs(capsys):
    code, out, err = run(["train", "--epochs", "3", "--no-progress"], capsys)
    assert code == 0, err
    assert "dataset=digits" in out and "test=360" in out and "classes=10" in out
    assert "epochs=3" in out and "trained 3 epochs" in out
    assert accuracy_of(out) > 0.9
    assert re.search(r"^test_loss=\d+\.\d{4}$", out, re.M)
    assert "epoch 1/3" not in err                              # --no-progress: no bars


def test_train_is_repeatable_and_honours_the_model_flags(capsys):
    argv = ["train", "--epochs", "2", "--no-progress", "--optimizer", "adam", "--hidden", "32,16",
            "--activation", "tanh", "--dropout", "0.1", "--batch-size", "64", "--seed", "3"]
    code, out1, err = run(argv, capsys)
    assert code == 0, err
    assert "Linear(in_features=64, out_features=32" in out1
    assert "Linear(in_features=32, out_features=16" in out1
    assert "Linear(in_features=16, out_features=10" in out1
    assert "Tanh()" in out1 and "Dropout" in out1 and "ReLU" not in out1
    assert "optimizer=adam lr=0.001" in out1 and "batch_size=64" in out1
    _, out2, _ = run(argv, capsys)
    timeless = lambda out: [l for l in out.splitlines() if not l.startswith("trained ")]
    assert timeless(out1) == timeless(out2)                    # same seed, same numbers


def test_default_train_via_the_console_script(tmp_path):
    """The real default run, as a user types it: digits, 50 epochs, progress bars on."""
    proc = subprocess.run([chainrule_script(), "train"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "epoch 50/50" in proc.stderr                         # the progress bars
    assert accuracy_of(proc.stdout) >= 0.97


def test_console_script_exit_status_on_error(tmp_path):
    proc = subprocess.run([chainrule_script(), "train", "--dataset", "missing.csv"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and "missing.csv" in proc.stderr


def test_save_writes_a_loadable_model(tmp_path, capsys):
    path = tmp_path / "model.npz"
    code, out, err = run(["train", "--epochs", "2", "--no-progress", "--save", str(path)], capsys)
    assert code == 0, err
    assert path.exists() and f"saved model to {path}" in out
    printed_acc = accuracy_of(out)
    printed_loss = float(re.search(r"^test_loss=(\S+)$", out, re.M).group(1))

    state = cr.load(path)
    assert state["format"] == "chainrule-model"
    config = state["config"]
    assert config["kind"] == "mlp" and config["in_features"] == 64 and config["out_features"] == 10
    assert len(state["history"]["loss"]) == 2
    model = mlp(config["in_features"], tuple(config["hidden"]), config["out_features"],
                config["activation"], config["dropout"])
    model.load_state_dict(state["model"])

    # the same test split, scaled with the saved training statistics, gives the printed numbers
    _, _, X_test, y_test = digits_split(test_fraction=0.2, seed=0)
    mean, std = state["standardize"]["mean"], state["standardize"]["std"]
    X_test = ((X_test - mean) / std).astype(np.float32)
    scores = cr.train.predict(model, X_test)
    assert scores.shape == (360, 10)
    assert f"{(scores.argmax(axis=1) == y_test).mean():.4f}" == f"{printed_acc:.4f}"
    loss = float(F.cross_entropy(cr.tensor(scores), cr.tensor(y_test)).data)
    assert loss == pytest.approx(printed_loss, abs=2e-4)


def write_csv(path, n=60, seed=0):
    """Three separable classes with text labels, the label in the middle column."""
    rng = np.random.default_rng(seed)
    names = ["setosa", "versicolor", "virginica"]
    with open(path, "w") as f:
        f.write("sepal,petal,y,width\n")
        for i in range(n):
            c = i % 3
            a, b, w = rng.normal(size=3) * 0.3 + 2.0 * c
            f.write(f"{a:.3f},{b:.3f},{names[c]},{w:.3f}\n")
    return path


@pytest.mark.parametrize("label", ["y", "2"])
def test_train_on_a_csv_with_text_labels(tmp_path, capsys, label):
    csv = write_csv(tmp_path / "flowers.csv")
    code, out, err = run(["train", "--dataset", str(csv), "--label-column", label, "--epochs", "15",
                          "--hidden", "16", "--no-progress"], capsys)
    assert code == 0, err
    assert "features=3 classes=3" in out and "test=12" in out
    assert accuracy_of(out) >= 0.9


def test_train_on_mnist1d(capsys):
    code, out, err = run(["train", "--dataset", "mnist1d", "--epochs", "2", "--no-progress"], capsys)
    assert code == 0, err
    assert "dataset=mnist1d" in out and "test=1000" in out and "features=40 classes=10" in out
    assert accuracy_of(out) > 0.3                            # chance is 0.1


# -- bad input ------------------------------------------------------------------------------------

BAD = {
    "missing csv": (["--dataset", "{tmp}/nope.csv"], "no such file"),
    # a directory is read as an image folder (one sub-folder per class)
    "directory": (["--dataset", "{tmp}"], "expected one sub-folder per class"),
    "unknown label column": (["--dataset", "{csv}", "--label-column", "species"],
                             "no label column 'species'"),
    "label index out of range": (["--dataset", "{csv}", "--label-column", "9"], "out of range"),
    "hidden not numbers": (["--hidden", "abc"], "--hidden expects sizes like 256"),
    "hidden zero": (["--hidden", "64,0"], "--hidden sizes must be positive"),
    "zero epochs": (["--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
    "epochs not a number": (["--epochs", "ten"], "argument --epochs: expected a positive integer"),
    "batch size zero": (["--batch-size", "0"], "argument --batch-size"),
    "test fraction": (["--test-fraction", "1.5"], "expected a fraction between 0 and 1"),
    "unknown optimizer": (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    "dropout": (["--dropout", "1.5", "--epochs", "1"], "argument --dropout: expected a probability in [0, 1]"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_with_a_clear_message(case, tmp_path, capsys):
    csv = write_csv(tmp_path / "data.csv", n=30)
    args, expected = BAD[case]
    argv = ["train", "--no-progress"] + [a.format(tmp=tmp_path, csv=csv) for a in args]
    code, out, err = run(argv, capsys)         # an exception other than SystemExit would fail here
    assert code not in (0, None), out
    assert "chainrule train: error:" in err and expected in err, err
    assert "Traceback" not in err and "test_accuracy" not in out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_reported_without_a_traceback(capsys):
    code, out, err = run(["train", "--epochs", "1", "--lr", "1e6", "--no-progress"], capsys)
    assert code == 2
    assert re.search(r"chainrule train: error: fit: the loss became (nan|inf) at epoch 1, step \d+",
                     err), err
    assert "Traceback" not in err and "test_accuracy" not in out
