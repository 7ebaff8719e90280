"""The README's runnable Python snippets run as a new user would paste them: the quick start, then
the Trainer / callbacks / metrics snippet after it, and the ConvNet snippet. (The text, sequence and
transfer snippets read the user's own files and are API references; examples/ runs those tasks.)"""
import os
import re

import matplotlib
import pytest

matplotlib.use("Agg")

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")


def _blocks():
    with open(README, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def _block_starting(prefix):
    found = [b for b in _blocks() if b.startswith(prefix)]
    assert len(found) == 1, f"README: expected one python block starting with {prefix!r}"
    return found[0]


def _run(code, ns, name):
    exec(compile(code, f"README.md ({name})", "exec"), ns)
    return ns


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)            # the snippets write model.npz, runs/a/..., *.png
    return tmp_path


def test_quick_start_then_the_training_snippet(in_tmp, capsys):
    ns = _run(_block_starting("import numpy as np\nimport chainrule as cr"), {}, "quick start")
    assert ns["model"].num_parameters() == 9610
    assert ns["history"]["val_accuracy"][-1] > 0.9
    assert ns["cr"].load("model.npz").keys() == ns["model"].state_dict().keys()
    ns = _run(_block_starting("from chainrule.train import (Trainer"), ns, "training")
    out = capsys.readouterr().out
    assert "Total params: 9,610" in out and "weighted avg" in out
    for f in ("lr_find.png", "accuracy.png", "weights.png", "runs/a/history.csv",
              "runs/a/checkpoints/last.ckpt", "runs/a/checkpoints/best.ckpt"):
        assert (in_tmp / f).exists(), f
    assert max(ns["trainer"].history["val_accuracy"]) > 0.9


def test_convnet_snippet(in_tmp, capsys):
    _run(_block_starting("from chainrule.data import DataLoader"), {}, "ConvNets")
    assert "Total params: 147,454 (trainable 147,454, frozen 0)" in capsys.readouterr().out
    assert (in_tmp / "filters.png").exists() and (in_tmp / "maps.png").exists()
