"""Pictures of a ConvNet (chainrule.viz): the first layer's filters and one input's feature maps,
saved as PNG files that hold what they should."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.models import alexnet_small, lenet5
from chainrule.viz import plot_feature_maps, plot_first_layer

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def image_size(path):
    from PIL import Image
    with Image.open(path) as im:
        return im.size


def digit_like(seed=0, channels=1, size=8):
    return np.random.default_rng(seed).random((channels, size, size)).astype(np.float32)


def test_first_layer_filters_of_a_convnet(tmp_path):
    cr.manual_seed(0)
    model = lenet5(1, 10, 8)
    path = tmp_path / "pics" / "filters.png"
    fig = plot_first_layer(model, path)
    assert path.read_bytes()[:8] == PNG and min(image_size(path)) > 50
    np.testing.assert_array_equal(fig.tiles, model[0].weight.data)        # 6 filters 1x3x3
    assert fig.tiles.shape == (6, 1, 3, 3)
    assert "0.weight: 6 filters of 1x3x3" in fig.axes[0].get_title()


def test_first_layer_filters_in_colour_and_capped():
    model = alexnet_small(3, 10, 32, width=8)
    fig = plot_first_layer(model, max_units=5)
    assert fig.tiles.shape == (5, 3, 3, 3)                                 # RGB tiles


def test_feature_maps_of_one_input_at_a_layer(tmp_path):
    cr.manual_seed(0)
    model = lenet5(1, 10, 8, channels=(8, 16), batch_norm=True)
    x = digit_like()
    path = tmp_path / "maps.png"
    fig = plot_feature_maps(model, x, "2", path)                           # the first ReLU
    assert path.read_bytes()[:8] == PNG and min(image_size(path)) > 50
    model.eval()
    with cr.no_grad():
        want = model[2](model[1](model[0](cr.tensor(x[None])))).data[0]
    model.train()
    np.testing.assert_allclose(fig.maps, want, rtol=1e-6)
    assert fig.maps.shape == (8, 8, 8) and (fig.maps >= 0).all()
    title = fig.axes[0].get_title()
    assert "layer 2 (ReLU): 8 feature maps of 8x8" in title
    # after the second pooling: 16 maps of 2x2; a batch of one and a Tensor work too
    fig = plot_feature_maps(model, cr.tensor(x[None]), "7")
    assert fig.maps.shape == (16, 2, 2)


def test_feature_maps_keep_the_model_mode_and_the_rng():
    cr.manual_seed(0)
    model = alexnet_small(3, 10, 16, width=4, dropout=0.5)
    model.train()
    rng = cr.get_rng_state()
    fig = plot_feature_maps(model, digit_like(channels=3, size=16), "0", max_maps=3)
    assert fig.maps.shape == (4, 16, 16) and "(first 3 of 4)" in fig.axes[0].get_title()
    assert model.training and cr.get_rng_state() == rng


def test_feature_maps_errors_name_the_problem():
    model = lenet5(1, 10, 8)
    x = digit_like()
    with pytest.raises(ValueError, match=r"no layer 'conv9'; its layers are 0, 1, 2"):
        plot_feature_maps(model, x, "conv9")
    with pytest.raises(ValueError, match=r"layer '7' \(Linear\) gives shape \(1, 120\)"):
        plot_feature_maps(model, x, "7")
    with pytest.raises(ValueError, match=r"one input \(C, H, W\) or \(1, C, H, W\), got shape "
                                         r"\(2, 1, 8, 8\)"):
        plot_feature_maps(model, np.zeros((2, 1, 8, 8), np.float32), "0")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.spare = nn.Conv2d(1, 1, 1)                                # never called

        def forward(self, x):
            return self.conv(x)
    with pytest.raises(ValueError, match="layer 'spare' was not called"):
        plot_feature_maps(Net(), x, "spare")
