"""Plots (chainrule.viz.plots): each writes a PNG that shows what it should, and the model summary."""
import sys

import numpy as np
import pytest
from PIL import Image

import chainrule as cr
from chainrule import nn
from chainrule.models import mlp
from chainrule.nn.summary import summary
from chainrule.train import History
from chainrule.viz import (plot_accuracy, plot_confusion_matrix, plot_first_layer, plot_history,
                           plot_loss, plot_lr)

HISTORY = {"loss": [1.2, 0.6, 0.4, 0.3, 0.25], "val_loss": [1.3, 0.8, 0.7, 0.72, 0.75],
           "accuracy": [0.6, 0.8, 0.88, 0.93, 0.96], "val_accuracy": [0.55, 0.72, 0.75, 0.74, 0.74],
           "lr": [0.1, 0.1, 0.01, 0.01, 0.001]}


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def count_near(img, rgb, tol=40):
    return int((np.abs(img - np.array(rgb)).sum(axis=2) < tol).sum())


def test_loss_and_accuracy_curves_with_the_gap_shaded(tmp_path):
    fig = plot_loss(HISTORY, tmp_path / "loss.png")
    img = pixels(tmp_path / "loss.png")
    assert count_near(img, (31, 119, 180)) > 200 and count_near(img, (255, 127, 14)) > 200
    ax = fig.axes[0]
    assert [l.get_label() for l in ax.get_lines()] == ["train", "validation"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), HISTORY["val_loss"])
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [1, 2, 3, 4, 5])

    fig = plot_accuracy(HISTORY, tmp_path / "acc.png")
    ax = fig.axes[0]
    assert len(ax.collections) == 1                      # the shaded train - validation gap
    assert any("gap" in t.get_text() for t in ax.texts)  # and the final gap written
    img = pixels(tmp_path / "acc.png")
    assert count_near(img, (247, 221, 221), tol=25) > 2000   # light red shading


def test_history_object_lr_and_plot_history(tmp_path):
    h = History()
    for i in range(5):
        h.on_epoch_end(i, {k: v[i] for k, v in HISTORY.items()})
    fig = plot_lr(h, tmp_path / "lr.png")
    assert fig.axes[0].get_yscale() == "log"             # spans a factor of 100
    assert count_near(pixels(tmp_path / "lr.png"), (44, 160, 44)) > 100
    assert plot_lr([0.1, 0.1, 0.05]).axes[0].get_yscale() == "linear"
    out = plot_history(h, tmp_path / "plots")
    assert sorted(out) == ["accuracy", "loss", "lr"]
    for p in out.values():
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(KeyError, match="neither 'accuracy' nor 'val_accuracy'"):
        plot_accuracy({"loss": [1.0]})


def test_confusion_matrix_plot(tmp_path):
    cm = np.array([[50, 2, 0], [5, 40, 5], [0, 0, 48]])
    fig = plot_confusion_matrix(cm, tmp_path / "cm.png", class_names=["cat", "dog", "eel"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "eel"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(v) for v in cm.ravel())
    assert count_near(pixels(tmp_path / "cm.png"), (8, 48, 107), tol=60) > 1000   # dark cells
    fig = plot_confusion_matrix(cm, normalize=True)
    assert [t.get_text() for t in fig.axes[0].texts][:5] == ["0.96", "0.04", "0.00", "0.10", "0.80"]
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)))


def test_first_layer_of_an_mlp_on_images_and_of_a_conv(tmp_path):
    cr.manual_seed(0)
    model = mlp(64, (12,), 10)
    w = model.state_dict()["0.weight"]
    w[3] = 0.0
    w[3, [0, 9, 18, 27]] = 1.0                           # a diagonal stroke in unit 3
    model.load_state_dict({**model.state_dict(), "0.weight": w})
    fig = plot_first_layer(model, tmp_path / "w.png")
    assert fig.tiles.shape == (12, 1, 8, 8)
    np.testing.assert_array_equal(fig.tiles[3, 0], w[3].reshape(8, 8))
    mosaic = fig.axes[0].images[0].get_array()           # 3 x 4 tiles of 8x8, 1 pixel apart
    assert mosaic.shape == (3 * 9 - 1, 4 * 9 - 1)
    tile3 = mosaic[0:8, 27:35]
    assert tile3[2, 2] == 1.0 and tile3[0, 1] == 0.0 and mosaic.mask[8, 0]
    assert count_near(pixels(tmp_path / "w.png"), (255, 0, 0), tol=80) > 50
    # conv first layer (out, C, kh, kw): one tile per filter, RGB for 3 channels
    conv = np.random.default_rng(0).standard_normal((6, 3, 5, 5))
    fig = plot_first_layer(conv, tmp_path / "conv.png")
    assert fig.tiles.shape == (6, 3, 5, 5)
    rgb = fig.axes[0].images[0].get_array()
    assert rgb.shape == (2 * 6 - 1, 3 * 6 - 1, 3) and rgb.min() == 0 and rgb.max() == 1
    assert plot_first_layer(mlp(3 * 16, (4,), 2), image_shape=(3, 4, 4)).axes
    with pytest.raises(ValueError, match="cannot guess an image shape for 10 inputs"):
        plot_first_layer(mlp(10, (4,), 2))
    with pytest.raises(ValueError, match="has 60 pixels, the layer 64 inputs"):
        plot_first_layer(model, image_shape=(6, 10))


def test_missing_matplotlib_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install chainrule\[plot\]"):
        plot_loss(HISTORY)


def test_summary_lists_layers_shapes_and_parameters():
    cr.manual_seed(0)
    model = mlp(64, (32, 16), 10, dropout=0.5)
    model.train()
    rng = cr.get_rng_state()
    s = summary(model, (64,))
    assert [(r["name"], r["type"], r["output_shape"], r["params"]) for r in s.rows] == [
        ("0", "Linear", (1, 32), 64 * 32 + 32), ("1", "ReLU", (1, 32), 0),
        ("2", "Dropout", (1, 32), 0), ("3", "Linear", (1, 16), 32 * 16 + 16),
        ("4", "ReLU", (1, 16), 0), ("5", "Dropout", (1, 16), 0),
        ("6", "Linear", (1, 10), 16 * 10 + 10)]
    assert s.total_params == model.num_parameters() == s.trainable_params
    assert model.training and cr.get_rng_state() == rng      # mode and RNG left alone
    text = str(s)
    assert "Output shape" in text and "(1, 32)" in text and f"{s.total_params:,}" in text
    assert "<table" in s.to_html() and s.to_dict()["layers"][0]["output_shape"] == "(1, 32)"
    model[0].requires_grad_(False)
    assert summary(model, (64,)).trainable_params == s.total_params - (64 * 32 + 32)


def test_summary_of_nested_modules_and_repeated_calls():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
            self.head = nn.Linear(4, 2)
            self.scale = nn.Parameter(np.ones(2, np.float32))

        def forward(self, x):
            x = self.body(self.body(x))                    # a shared block, called twice
            return self.head(x) * self.scale
    s = summary(Net(), (4,), batch_size=3)
    by = {r["name"]: r for r in s.rows}
    assert by["body.0"]["calls"] == 2 and by["head"]["output_shape"] == (3, 2)
    assert sum(r["params"] for r in s.rows) == s.total_params == 20 + 10 + 2
    assert "(x2)" in str(s)
