"""The ready ConvNets accept the image sizes their pooling allows."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.models import alexnet_small, lenet5, vgg_small


@pytest.mark.parametrize("size", [8, 13, 28, 32])
def test_alexnet_small_takes_sizes_that_pooling_floors(size):
    out = alexnet_small(1, 7, size, width=8)(cr.randn(2, 1, size, size))
    assert out.shape == (2, 7)


def test_alexnet_small_rejects_images_too_small_to_pool_three_times():
    with pytest.raises(ValueError, match="at least 8"):
        alexnet_small(1, 10, 7)


@pytest.mark.parametrize("size", [8, 28])
def test_lenet5_and_vgg_output_scores(size):
    x = cr.randn(3, 1, size, size)
    assert lenet5(1, 10, size)(x).shape == (3, 10)
    assert vgg_small(1, 10, size, config=(4, "M", 8, "M"), hidden=16)(x).shape == (3, 10)
    assert np.isfinite(lenet5(1, 10, size)(x).data).all()
