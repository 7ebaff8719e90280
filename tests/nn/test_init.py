"""chainrule/nn/init.py: each initialiser's bounds and variance against its formula (and torch's)."""
import math

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.nn import init

SHAPE = (300, 400)          # fan_out 300, fan_in 400: 120,000 samples, statistics good to ~1%


def param(*shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


def check_uniform(t, bound):
    a = t.data
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    assert abs(a.mean()) < 0.01 * bound
    np.testing.assert_allclose(a.var(), bound ** 2 / 3, rtol=0.02)


def check_normal(t, std, mean=0.0):
    a = t.data
    assert abs(a.mean() - mean) < 0.01 * std + 1e-12
    np.testing.assert_allclose(a.std(), std, rtol=0.01)
    # a normal, not a uniform: about 4.6% of values beyond 2 std
    assert 0.04 < np.mean(np.abs(a - mean) > 2 * std) < 0.052


def test_fan_in_and_fan_out_match_torch():
    for shape in [(4, 3), (8, 3, 5, 5), (6, 2, 7)]:
        ours = init.calculate_fan_in_and_fan_out(param(*shape))
        theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
        assert ours == theirs
    with pytest.raises(ValueError, match="2 dimensions"):
        init.calculate_fan_in_and_fan_out(param(5))


@pytest.mark.parametrize("nl,arg", [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                                    ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None),
                                    ("conv2d", None)])
def test_calculate_gain_matches_torch(nl, arg):
    assert init.calculate_gain(nl, arg) == pytest.approx(torch.nn.init.calculate_gain(nl, arg))


def test_calculate_gain_unknown():
    with pytest.raises(ValueError, match="unknown"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_uniform(gain):
    t = param(*SHAPE)
    assert init.xavier_uniform_(t, gain=gain) is t
    check_uniform(t, gain * math.sqrt(6 / (SHAPE[0] + SHAPE[1])))


@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_xavier_normal(gain):
    t = param(*SHAPE)
    init.xavier_normal_(t, gain=gain)
    check_normal(t, gain * math.sqrt(2 / (SHAPE[0] + SHAPE[1])))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nl,a", [("relu", 0.0), ("leaky_relu", 0.0), ("leaky_relu", math.sqrt(5)),
                                  ("tanh", 0.0)])
def test_kaiming(mode, nl, a):
    fan = SHAPE[1] if mode == "fan_in" else SHAPE[0]
    gain = torch.nn.init.calculate_gain(nl, a)
    t = param(*SHAPE)
    init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nl)
    check_uniform(t, gain * math.sqrt(3 / fan))
    init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nl)
    check_normal(t, gain / math.sqrt(fan))


def test_kaiming_defaults_are_he_init():
    # defaults: a=0, fan_in, leaky_relu (gain sqrt 2) -> bound sqrt(6 / fan_in), std sqrt(2 / fan_in)
    t = param(*SHAPE)
    init.kaiming_uniform_(t)
    check_uniform(t, math.sqrt(6 / SHAPE[1]))
    init.kaiming_normal_(t)
    check_normal(t, math.sqrt(2 / SHAPE[1]))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(t, mode="fan_avg")


def test_conv_shaped_weights_use_the_receptive_field():
    t = param(64, 16, 3, 3)
    init.kaiming_normal_(t, nonlinearity="relu")
    np.testing.assert_allclose(t.data.std(), math.sqrt(2 / (16 * 9)), rtol=0.02)


def test_small_gaussian_zeros_ones_constant():
    t = param(*SHAPE)
    assert init.small_gaussian_(t) is t
    check_normal(t, 0.001)
    init.small_gaussian_(t, std=0.01)
    check_normal(t, 0.01)
    arr = t.data
    assert init.zeros_(t) is t and not t.data.any()
    assert t.data is arr                                   # filled in place
    init.ones_(t)
    assert (t.data == 1).all()
    init.constant_(t, 0.25)
    assert (t.data == 0.25).all() and t.dtype == np.float32


def test_uniform_and_normal():
    t = param(*SHAPE, dtype=np.float64)
    init.uniform_(t, -2.0, 4.0)
    a = t.data
    assert a.min() >= -2.0 and a.max() < 4.0
    np.testing.assert_allclose(a.mean(), 1.0, atol=0.02)
    np.testing.assert_allclose(a.var(), 36 / 12, rtol=0.02)
    init.normal_(t, mean=3.0, std=0.5)
    check_normal(t, 0.5, mean=3.0)
    assert t.dtype == np.float64


def test_initialisers_are_seeded():
    t1, t2 = param(5, 4), param(5, 4)
    for f in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_,
              init.small_gaussian_):
        cr.manual_seed(42)
        f(t1)
        cr.manual_seed(42)
        f(t2)
        np.testing.assert_array_equal(t1.data, t2.data)


def test_default_linear_init_bounds():
    w, b = param(20, 50), param(20)
    init.default_linear_init_(w, b)
    bound = 1 / math.sqrt(50)
    assert np.abs(w.data).max() <= bound and np.abs(b.data).max() <= bound
    init.default_linear_init_(w, None)                     # no bias is fine
