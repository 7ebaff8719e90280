"""The command line around a run: `train --config/--out/--resume`, `evaluate`, `predict`,
`summary`, `report` (see tests/viz/test_report.py) and `lr-find`."""
import contextlib
import hashlib
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

import chainrule as cr
from chainrule.cli import main
from chainrule.models.registry import build_model
from chainrule.data.datasets import digits_split
from chainrule.train import ModelCheckpoint, predict
from cli_helpers import run

ARGS = ["--hidden", "32", "--dropout", "0.2", "--no-progress"]


def last_value(out, key):
    return float(re.search(rf"^{key}=(\S+)$", out, re.M).group(1))


def snapshot(directory):
    out = {}
    for root, _, files in os.walk(directory):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[p] = (hashlib.sha256(fh.read()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """A finished 3-epoch run with --out and --save; (directory, saved model, stdout)."""
    d = tmp_path_factory.mktemp("cli")
    buf = io.StringIO()                      # capsys is function-scoped: capture by hand
    with contextlib.redirect_stdout(buf):
        code = main(["train", "--epochs", "3", "--out", str(d / "A"), "--save", str(d / "A.npz")]
                    + ARGS)
    assert code == 0
    return d / "A", d / "A.npz", buf.getvalue()


# -- configuration files ------------------------------------------------------------------------------

def test_config_file_with_command_line_overrides(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text('epochs = 2\nhidden = [16, 8]\nstandardize = true\n\n'
                   '[optim]\noptimizer = "adam"\nbatch-size = 64\nlr = 0.005\n')
    code, out, err = run(["train", "--config", str(cfg), "--epochs", "1", "--no-progress"], capsys)
    assert code == 0, err
    assert "epochs=1" in out and "optimizer=adam lr=0.005" in out and "batch_size=64" in out
    assert "Linear(in_features=64, out_features=16" in out and "trained 1 epochs" in out


@pytest.mark.parametrize("text, expected", [
    ("epoch = 3\nfoo = 1\n", "unknown keys 'epoch', 'foo'; valid keys: activation, augment, "
                             "batch_norm, batch_size, "),
    ("[model]\nhiden = [3]\n", "unknown key 'hiden'; valid keys:"),
    ("hidden = true\n", "'hidden' must be a list of sizes"),
    ("optimizer = 'lbfgs'\n", "'optimizer' must be one of sgd, adam, adamw, rmsprop"),
    ("epochs = 0\n", "'epochs': expected a positive integer, got 0"),
    ("progress = 1\n", "'progress' must be true or false"),
    ("epochs = [\n", "not valid TOML"),
])
def test_bad_config_files_are_clear_errors(tmp_path, capsys, text, expected):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    code, out, err = run(["train", "--config", str(cfg)], capsys)
    assert code == 2 and f"chainrule train: error: {cfg}: " in err and expected in err, err
    assert "Traceback" not in err
    if "unknown" in expected:
        for key in ("epochs", "hidden", "lr", "optimizer", "seed", "dataset", "out"):
            assert key in err


# -- run directory and resume -------------------------------------------------------------------------

def test_train_out_writes_the_run_directory(run_a):
    d, saved, out = run_a
    assert sorted(os.listdir(d)) == ["checkpoints", "config.json", "history.csv", "metrics.json",
                                     "plots", "report.html", "summary.json"]
    assert f"wrote run directory {d} (report: {d}/report.html)" in out
    metrics = json.loads((d / "metrics.json").read_text())
    assert f"{metrics['test']['accuracy']:.4f}" == f"{last_value(out, 'test_accuracy'):.4f}"
    assert np.array(metrics["confusion_matrix"]).sum() == 360
    last = cr.load(d / "checkpoints/last.ckpt")
    assert last["format"] == "chainrule-model" and last["epoch"] == 3
    assert last["config"] == {"kind": "mlp", "in_features": 64, "hidden": [32], "out_features": 10,
                              "activation": "relu", "dropout": 0.2}
    assert last["run_config"]["epochs"] == 3 and last["classes"] == [str(i) for i in range(10)]
    assert set(last["standardize"]) == {"mean", "std"}
    old_style = cr.load(saved)                     # --save keeps its layout, with extras
    assert {"format", "config", "model", "optimizer", "history", "standardize"} <= set(old_style)


class Killed(BaseException):
    """Stands for the process dying right after a checkpoint was written."""


def test_cli_run_interrupted_and_resumed_equals_the_uninterrupted_run(run_a, tmp_path, capsys,
                                                                      monkeypatch):
    d_a, _, out_a = run_a
    d_b = tmp_path / "B"
    original = ModelCheckpoint.on_epoch_end

    def dies_after_epoch_1(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise Killed
    monkeypatch.setattr(ModelCheckpoint, "on_epoch_end", dies_after_epoch_1)
    with pytest.raises(Killed):
        main(["train", "--epochs", "3", "--out", str(d_b)] + ARGS)
    monkeypatch.setattr(ModelCheckpoint, "on_epoch_end", original)
    capsys.readouterr()
    assert cr.load(d_b / "checkpoints/last.ckpt")["epoch"] == 1 and not (d_b / "report.html").exists()

    code, out, err = run(["train", "--resume", str(d_b), "--no-progress"], capsys)   # settings from the run
    assert code == 0, err
    assert "resuming from" in out and "after epoch 1" in out and "epochs=3" in out
    a, b = cr.load(d_a / "checkpoints/last.ckpt"), cr.load(d_b / "checkpoints/last.ckpt")
    for k in a["model"]:
        assert np.array_equal(a["model"][k], b["model"][k]), k
    for k in a["history"]:
        if k != "time":
            assert a["history"][k] == b["history"][k], k
    strip = lambda p: [l.split(",")[:-1] for l in p.read_text().splitlines()]   # time is last
    assert strip(d_a / "history.csv") == strip(d_b / "history.csv")
    assert last_value(out, "test_accuracy") == last_value(out_a, "test_accuracy")
    assert last_value(out, "test_loss") == last_value(out_a, "test_loss")
    assert (d_b / "report.html").exists()


def test_out_does_not_overwrite_a_run_unless_asked(run_a, tmp_path, capsys):
    d = tmp_path / "C"
    assert run(["train", "--epochs", "1", "--out", str(d)] + ARGS, capsys)[0] == 0
    files = snapshot(d)
    code, out, err = run(["train", "--epochs", "1", "--out", str(d)] + ARGS, capsys)
    assert code == 2 and "already holds a run" in err and f"--resume {d}" in err
    assert snapshot(d) == files
    code, out, err = run(["train", "--epochs", "1", "--out", str(d), "--overwrite"] + ARGS, capsys)
    assert code == 0, err


def test_bad_resume_is_a_clear_error_and_touches_nothing(run_a, tmp_path, capsys):
    d_a = run_a[0]
    files = snapshot(d_a)
    blob = (d_a / "checkpoints/last.ckpt").read_bytes()
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(blob[: len(blob) // 2])
    code, out, err = run(["train", "--resume", str(bad), "--out", str(d_a)] + ARGS, capsys)
    assert code == 2 and "truncated or corrupt" in err and str(bad) in err, err
    # the run's own checkpoint, but flags that build another model
    code, out, err = run(["train", "--resume", str(d_a), "--hidden", "48", "--no-progress"], capsys)
    assert code == 2 and "is from another model" in err and "(32, 64) in the checkpoint vs (48, 64)" in err
    code, out, err = run(["train", "--resume", str(run_a[1])], capsys)       # a --save file
    assert code == 2 and "no training state" in err
    code, out, err = run(["train", "--resume", str(tmp_path)], capsys)
    assert code == 2 and "no checkpoint to resume from" in err
    assert snapshot(d_a) == files
    assert "Traceback" not in err


# -- evaluate / predict / summary / lr-find ----------------------------------------------------------

def test_evaluate_a_run_directory_a_checkpoint_and_a_csv(run_a, tmp_path, capsys):
    d, saved, out_a = run_a
    code, out, err = run(["evaluate", str(d), "--checkpoint", "last"], capsys)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == f"test_accuracy={last_value(out_a, 'test_accuracy'):.4f}"
    assert "macro avg" in out and "confusion matrix" in out and "examples=360" in out
    code, out, err = run(["evaluate", str(saved)], capsys)            # the --save file
    assert code == 0 and last_value(out, "test_accuracy") == last_value(out_a, "test_accuracy")
    code, out, err = run(["evaluate", str(d)], capsys)                # best.ckpt by default
    assert code == 0 and "best.ckpt" in out
    # any CSV with the same features
    _, _, X, y = digits_split(test_fraction=0.2, seed=0)
    csv = tmp_path / "test.csv"
    with open(csv, "w") as f:
        f.write(",".join(f"f{i}" for i in range(64)) + ",label\n")
        for xi, yi in zip(X, y):
            f.write(",".join(repr(float(v)) for v in xi) + f",{yi}\n")
    code, out, err = run(["evaluate", str(d), "--checkpoint", "last", "--dataset", str(csv)], capsys)
    assert code == 0, err
    assert abs(last_value(out, "test_accuracy") - last_value(out_a, "test_accuracy")) < 1e-4
    code, out, err = run(["evaluate", str(tmp_path / "missing")], capsys)
    assert code == 2 and "chainrule evaluate: error:" in err


def test_predict_a_csv_and_an_image_folder(run_a, tmp_path, capsys):
    d = run_a[0]
    Xtr, ytr, X, y = digits_split(test_fraction=0.2, seed=0)
    X, y = X[:12], y[:12]
    csv = tmp_path / "new.csv"
    with open(csv, "w") as f:
        f.write("label," + ",".join(f"f{i}" for i in range(64)) + "\n")   # label column ignored
        for xi, yi in zip(X, y):
            f.write(f"{yi}," + ",".join(repr(float(v)) for v in xi) + "\n")
    out_csv = tmp_path / "pred.csv"
    code, out, err = run(["predict", str(d), "--input", str(csv), "--output", str(out_csv),
                          "--checkpoint", "last"], capsys)
    assert code == 0, err
    rows = [l.split(",") for l in out_csv.read_text().splitlines()]
    assert rows[0][:4] == ["id", "class_index", "class", "confidence"] and len(rows[0]) == 14
    state = cr.load(d / "checkpoints/last.ckpt")
    model = build_model(state["config"])
    model.load_state_dict(state["model"])
    st = state["standardize"]
    expected = predict(model, ((X - st["mean"]) / st["std"]).astype(np.float32)).argmax(axis=1)
    assert [int(r[1]) for r in rows[1:]] == expected.tolist()
    probs = np.array([[float(v) for v in r[4:]] for r in rows[1:]])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # the same digits as 8x8 PNG files in a folder tree
    for i, xi in enumerate(X):
        sub = tmp_path / "imgs" / ("a" if i < 6 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(xi.reshape(8, 8) * 255).astype(np.uint8)).save(sub / f"{i:02d}.png")
    code, out, err = run(["predict", str(d), "--input", str(tmp_path / "imgs"), "--checkpoint",
                          "last"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[1].startswith("a/00.png,") and len(lines) == 13
    agree = np.mean([int(l.split(",")[1]) == e for l, e in zip(lines[1:], expected)])
    assert agree >= 11 / 12                                 # 8-bit images, nearly the same inputs
    code, out, err = run(["predict", str(d), "--input", str(tmp_path / "imgs" / "nope.csv")], capsys)
    assert code == 2 and "chainrule predict: error:" in err


def test_summary_of_the_default_model_and_of_a_checkpoint(run_a, capsys):
    code, out, err = run(["summary"], capsys)
    assert code == 0, err
    assert "Linear  (1, 256)      16,640" in out and "Total params: 19,210" in out
    code, out, err = run(["summary", str(run_a[0]), "--hidden", "8"], capsys)
    assert code == 0 and "(1, 32)" in out and "Total params: 2,410" in out   # the checkpoint's model
    code, out, err = run(["summary", "--hidden", "16,8", "--activation", "tanh"], capsys)
    assert code == 0 and "Tanh" in out and "(1, 8)" in out


def test_lr_find_command(tmp_path, capsys):
    plot = tmp_path / "lr.png"
    code, out, err = run(["lr-find", "--hidden", "32", "--num-steps", "60", "--plot", str(plot)],
                         capsys)
    assert code == 0, err
    lr = last_value(out, "suggested_lr")
    assert 1e-4 < lr < 10 and plot.read_bytes()[:4] == b"\x89PNG"
    assert out.strip().splitlines()[-1].startswith("suggested_lr=")
    code, out, err = run(["lr-find", "--start-lr", "1", "--end-lr", "0.1"], capsys)
    assert code == 2 and "--start-lr (1.0) must be below --end-lr (0.1)" in err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_flag_names_the_op(capsys):
    code, out, err = run(["train", "--epochs", "1", "--lr", "1e12", "--detect-anomaly"] + ARGS,
                         capsys)
    assert code == 2
    assert re.search(r"chainrule train: error: \w+(\.backward returned| produced) (nan|inf)", err), err
    assert "Traceback" not in err
