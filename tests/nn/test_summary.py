"""Model summary (chainrule.nn.summary) of ConvNets: every layer's output shape and parameter count,
trainable and frozen totals; the model's mode, running statistics and the RNG are left alone."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.models import alexnet_small, lenet5, vgg_small
from chainrule.nn.summary import summary


def conv_params(cin, cout, k):
    return cout * cin * k * k + cout


def test_lenet5_on_28x28_lists_every_layer_with_shape_and_parameters():
    model = lenet5(1, 10, 28)
    s = summary(model, (1, 28, 28))
    assert [(r["name"], r["type"], r["output_shape"], r["params"]) for r in s.rows] == [
        ("0", "Conv2d", (1, 6, 28, 28), conv_params(1, 6, 5)),
        ("1", "ReLU", (1, 6, 28, 28), 0),
        ("2", "MaxPool2d", (1, 6, 14, 14), 0),
        ("3", "Conv2d", (1, 16, 10, 10), conv_params(6, 16, 5)),
        ("4", "ReLU", (1, 16, 10, 10), 0),
        ("5", "MaxPool2d", (1, 16, 5, 5), 0),
        ("6", "Flatten", (1, 400), 0),
        ("7", "Linear", (1, 120), 400 * 120 + 120),
        ("8", "ReLU", (1, 120), 0),
        ("9", "Linear", (1, 84), 120 * 84 + 84),
        ("10", "ReLU", (1, 84), 0),
        ("11", "Linear", (1, 10), 84 * 10 + 10)]
    assert s.total_params == s.trainable_params == model.num_parameters() == 61_706
    assert s.frozen_params == 0
    text = str(s)
    assert text.splitlines()[0] == "Sequential, input (1, 28, 28)"
    assert "(1, 16, 5, 5)" in text and "2,416" in text
    assert text.splitlines()[-1] == "Total params: 61,706 (trainable 61,706, frozen 0)"


def test_lenet5_options_on_digits_and_batch_norm_parameters():
    model = lenet5(1, 10, 8, channels=(32, 64), hidden=(100,), batch_norm=True)
    s = summary(model, (1, 8, 8), batch_size=4)
    by = {r["name"]: r for r in s.rows}
    assert [r["type"] for r in s.rows][:4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert by["0"]["output_shape"] == (4, 32, 8, 8) and by["0"]["params"] == conv_params(1, 32, 3)
    # BatchNorm2d holds weight and bias (2 C); its running statistics are buffers, not parameters
    assert by["1"]["params"] == 64 and by["5"]["params"] == 128
    assert by["8"]["output_shape"] == (4, 256)                      # 64 channels x 2 x 2
    assert s.rows[-1]["output_shape"] == (4, 10)
    assert sum(r["params"] for r in s.rows) == s.total_params == model.num_parameters()


def test_frozen_layers_are_marked_and_counted_apart():
    model = lenet5(1, 10, 8, channels=(8, 16), batch_norm=True)
    model[0].requires_grad_(False)                 # the first convolution: frozen
    model[1].weight.requires_grad = False          # batch norm: only its scale frozen
    s = summary(model, (1, 8, 8))
    frozen = conv_params(1, 8, 3) + 8
    assert s.frozen_params == frozen
    assert s.trainable_params == model.num_parameters(trainable_only=True) == s.total_params - frozen
    lines = str(s).splitlines()
    assert "Conv2d (frozen)" in lines[3] and "BatchNorm2d (partly frozen)" in lines[4]
    assert "(frozen)" not in lines[7]                                # the second convolution
    assert lines[-1] == (f"Total params: {s.total_params:,} (trainable {s.trainable_params:,}, "
                         f"frozen {frozen:,})")
    d = s.to_dict()
    assert d["frozen_params"] == frozen and d["trainable_params"] == s.trainable_params
    assert d["layers"][0]["trainable"] == 0 and d["layers"][1]["trainable"] == 8
    assert f"frozen {frozen:,}" in s.to_html()
    model.requires_grad_(True)
    assert summary(model, (1, 8, 8)).frozen_params == 0


@pytest.mark.parametrize("build, shape, last_conv", [
    (lambda: alexnet_small(3, 10, 32, width=8), (3, 32, 32), (1, 16, 4, 4)),
    (lambda: vgg_small(3, 10, 32, config=(8, "M", 16, "M"), batch_norm=True, hidden=32),
     (3, 32, 32), (1, 16, 8, 8)),
])
def test_alexnet_and_vgg_summaries(build, shape, last_conv):
    model = build()
    s = summary(model, shape)
    pools = [r for r in s.rows if r["type"] == "MaxPool2d"]
    assert pools[-1]["output_shape"] == last_conv
    assert s.rows[-1]["output_shape"] == (1, 10)
    assert s.total_params == model.num_parameters() == sum(r["params"] for r in s.rows)
    assert "LocalResponseNorm" in str(s) or "BatchNorm2d" in str(s)


def test_summary_leaves_mode_running_statistics_and_rng_alone():
    cr.manual_seed(0)
    model = vgg_small(1, 10, 8, config=(4, "M"), batch_norm=True, hidden=8, dropout=0.5)
    model.train()
    bn = model[1]
    before = bn.running_mean.data.copy()
    rng = cr.get_rng_state()
    summary(model, (1, 8, 8), input=np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(
        np.float32))
    assert model.training and all(m.training for m in model.modules())
    np.testing.assert_array_equal(bn.running_mean.data, before)
    assert cr.get_rng_state() == rng


def test_summary_of_a_single_conv_layer():
    s = summary(nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 9, 9))
    assert len(s.rows) == 1 and s.rows[0]["output_shape"] == (1, 4, 5, 5)
    assert s.total_params == conv_params(3, 4, 3)
