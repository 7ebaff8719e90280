"""The Sequential fusions of the fast path (chainrule/fast/fusion.py): ReLU -> max pooling run as
pooling -> ReLU, and Conv2d (-> ReLU) -> MaxPool2d(2) run as one op (ConvMaxPool2d), bit for bit
the layers run one by one. (Moved here from tests/nn/test_conv_layers.py.)"""
import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.fast import fusion
from chainrule.nn import functional as F

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


# -- Sequential runs ReLU -> max pooling as pooling -> ReLU (exact) -------------------------------
def _layer_by_layer(model, x):
    for layer in model:
        x = layer(x)
    return x


@pytest.mark.parametrize("pool", [
    lambda: nn.MaxPool2d(2), lambda: nn.MaxPool2d(3, stride=2, padding=1),
    lambda: nn.MaxPool2d(2, ceil_mode=True), lambda: nn.MaxPool2d((2, 3), dilation=(1, 2)),
])
def test_sequential_relu_max_pool_rewrite_is_exact(pool):
    """Outputs and every gradient bit-identical to running the layers one by one, on inputs with
    ties, exact zeros and windows that are all negative (where ReLU zeroes the gradient)."""
    cr.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), pool(), nn.Flatten()).double()
    rng = np.random.default_rng(1)
    xs = rng.integers(-2, 3, (4, 2, 7, 9)).astype(np.float64)     # integers: many ties and zeros
    g = rng.standard_normal(model(cr.tensor(xs)).shape)
    res = []
    for run in (model, lambda x: _layer_by_layer(model, x)):
        model.zero_grad()
        x = cr.tensor(xs, requires_grad=True)
        y = run(x)
        (y * cr.tensor(g)).sum().backward()
        res.append([y.data, x.grad.data] + [p.grad.data for p in model.parameters()])
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


def test_sequential_relu_max_pool_1d_and_the_gradient_of_negative_windows():
    m = nn.Sequential(nn.ReLU(), nn.MaxPool1d(2)).double()
    x = cr.tensor(np.array([[[-1.0, -2.0, 3.0, 3.0, 0.0, -1.0]]]), requires_grad=True)
    y = m(x)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [[[0.0, 3.0, 0.0]]])
    np.testing.assert_array_equal(x.grad.data, [[[0, 0, 1, 0, 0, 0]]])   # first maximum, as torch


def test_sequential_rewrite_stays_off_when_hooks_watch_the_layers():
    model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    seen = []
    handle = model[0].register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    model(cr.randn(1, 1, 4, 4))
    assert seen == [(1, 1, 4, 4)]                  # the ReLU's own (unpooled) output
    handle.remove()
    seen2 = []
    model[1].register_forward_hook(lambda mod, inp, out: seen2.append(inp[0].shape))
    model(cr.randn(1, 1, 4, 4))
    assert seen2 == [(1, 1, 4, 4)]                 # the pooling's input is the ReLU's output


# -- Sequential runs Conv2d (-> ReLU) -> MaxPool2d(2) as one op (exact) ----------------------------
_CONV_POOL_CASES = [
    # (in, out, kernel, conv options, input (N, C, H, W)): even and odd conv outputs, groups,
    # stride, padding, dilation, no bias, non-square, batch of one
    (6, 16, 5, {}, (3, 6, 14, 14)),
    (2, 3, 3, {"padding": 1}, (2, 2, 7, 9)),
    (4, 6, (3, 2), {"groups": 2, "bias": False}, (1, 4, 8, 7)),
    (3, 4, 3, {"stride": 2, "padding": 2}, (2, 3, 11, 10)),
    (2, 2, 3, {"dilation": 2, "padding": "same"}, (2, 2, 6, 9)),
]


def _model_runs(model, xs, g, runs):
    res = []
    for run in runs:
        model.zero_grad()
        x = cr.tensor(xs, requires_grad=True)
        y = run(x)
        (y * cr.tensor(g)).sum().backward()
        res.append([y.data, x.grad.data] + [p.grad.data for p in model.parameters()])
    return res


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", _CONV_POOL_CASES)
def test_sequential_conv_max_pool_fusion_is_exact(case, relu, dtype):
    """The fused op gives outputs and every gradient bit-identical to the layers run one by one,
    on integer inputs (many ties and zeros) and on random ones."""
    cin, cout, k, opts, shape = case
    cr.manual_seed(0)
    layers = [nn.Conv2d(cin, cout, k, **opts)] + ([nn.ReLU()] if relu else []) + [nn.MaxPool2d(2)]
    model = nn.Sequential(*layers, nn.Flatten()).to(dtype)
    assert fusion.plan(model._layers)[0] == ("conv_relu_pool" if relu else "conv_pool", 3 if relu else 2)
    assert fusion.conv_pooled(model[0], cr.tensor(np.zeros(shape, dtype))) is not None   # fused here
    rng = np.random.default_rng(1)
    for xs in (rng.integers(-2, 3, shape).astype(dtype), rng.standard_normal(shape).astype(dtype)):
        g = rng.standard_normal(model(cr.tensor(xs)).shape).astype(dtype)
        fused, plain = _model_runs(model, xs, g, (model, lambda x: _layer_by_layer(model, x)))
        for a, b in zip(fused, plain):
            assert a.dtype == b.dtype == dtype
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", _CONV_POOL_CASES)
def test_conv_max_pool_op_against_torch(case):
    """ConvMaxPool2d.apply on its own against torch's conv2d then max_pool2d, float64, forward
    and the gradients of x, weight and bias, and by finite differences."""
    from chainrule.gradcheck import gradcheck
    from chainrule.fast.conv import ConvMaxPool2d
    cin, cout, k, opts, shape = case
    conv = nn.Conv2d(cin, cout, k, **opts).double()
    tconv = torch.nn.Conv2d(cin, cout, k, **opts).double()
    conv.load_state_dict({n: v.detach().numpy() for n, v in tconv.state_dict().items()})
    x = np.random.default_rng(2).standard_normal(shape)
    kw = dict(stride=conv.stride, padding=conv._pads, dilation=conv.dilation, groups=conv.groups)
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    xc = cr.tensor(x, requires_grad=True)
    y = ConvMaxPool2d.apply(xc, *params, **kw)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(tconv(xt), 2)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    up = np.random.default_rng(3).standard_normal(y.shape)
    y.backward(up)
    yt.backward(torch.tensor(up))
    np.testing.assert_allclose(xc.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    for p, tp in zip(params, tconv.parameters()):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-12, atol=1e-12)
    # finite differences on one image: over LeNet's 1200 windows a step of eps can flip a
    # near-tied maximum, where the derivative does not exist
    xg = cr.tensor(x[:1], requires_grad=True)
    assert gradcheck(lambda a, *ps: ConvMaxPool2d.apply(a, *ps, **kw), (xg, *params), eps=1e-7)


def test_conv_max_pool_fusion_skips_large_maps_and_hooks_and_allows_retain_graph():
    conv = nn.Conv2d(1, 2, 3, padding=1)
    assert fusion.conv_pooled(conv, cr.randn(2, 1, 28, 28)) is None      # 784 positions: batch-outermost
    assert fusion.conv_pooled(conv, cr.randn(2, 1, 1, 3)) is None        # no whole 2x2 window
    assert not nn.MaxPool2d(2, stride=1)._2x2 and not nn.MaxPool2d(2, ceil_mode=True)._2x2
    # a pooling changed after the Sequential was built is honoured (and checked again)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)).double()
    x = cr.tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)))
    assert model(x).shape == (2, 2, 3, 3)
    model[1].kernel_size = 3
    assert repr(model[1]) == "MaxPool2d(kernel_size=3, stride=2)" and not model[1]._2x2
    np.testing.assert_array_equal(model(x).data, F.max_pool2d(model[0](x), 3, 2).data)
    with pytest.raises(ValueError, match="kernel_size"):
        model[1].kernel_size = 0
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
    seen = []
    model[0].register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    model(cr.randn(1, 1, 6, 6))
    assert seen == [(1, 2, 4, 4)]                  # the convolution's own (unpooled) output
    # a second backward through a retained graph finds everything the first one used
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)).double()
    x = cr.tensor(np.random.default_rng(0).standard_normal((2, 1, 6, 6)), requires_grad=True)
    y = model(x).sum()
    y.backward(retain_graph=True)
    first = [x.grad.data.copy()] + [p.grad.data.copy() for p in model.parameters()]
    y.backward()
    for a, p in zip(first, [x] + list(model.parameters())):
        np.testing.assert_allclose(p.grad.data, 2 * a, rtol=1e-13)


def test_conv_max_pool_fusion_is_exact_over_random_geometries():
    """200 seeded random Conv2d (-> ReLU) -> MaxPool2d(2) stacks (groups, stride, dilation, every
    padding form, odd and tiny sizes, both dtypes): fused and layer-by-layer results are equal."""
    rng = np.random.default_rng(123)
    fused = 0
    for _ in range(200):
        g = int(rng.choice([1, 1, 2, 3]))
        cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 4))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s, d = int(rng.choice([1, 1, 2, 3])), int(rng.choice([1, 1, 2]))
        pad = [int(rng.integers(0, 3)), "valid", (int(rng.integers(0, 3)), int(rng.integers(0, 3))),
               "same" if s == 1 else 1][int(rng.integers(0, 4))]
        shape = (int(rng.integers(1, 4)), cin, int(rng.integers(2, 17)), int(rng.integers(2, 17)))
        dtype = [np.float32, np.float64][int(rng.integers(0, 2))]
        layers = [nn.Conv2d(cin, cout, k, stride=s, padding=pad, dilation=d, groups=g,
                            bias=bool(rng.integers(0, 2)))]
        layers += [nn.ReLU()] if rng.integers(0, 2) else []
        model = nn.Sequential(*layers, nn.MaxPool2d(2)).to(dtype)
        xs = rng.integers(-2, 3, shape).astype(dtype)
        try:
            out = _layer_by_layer(model, cr.tensor(xs))
        except ValueError:
            continue                                   # kernel larger than the padded input
        fused += fusion.conv_pooled(model[0], cr.tensor(xs)) is not None
        g_up = rng.standard_normal(out.shape).astype(dtype)
        a, b = _model_runs(model, xs, g_up, (model, lambda x: _layer_by_layer(model, x)))
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    assert fused > 100                                 # most geometries took the fused path


@pytest.mark.parametrize("need_x, need_w, need_b", [
    (False, True, True), (True, False, True), (True, True, False), (False, False, True),
    (True, False, False), (False, True, False)])
def test_conv_max_pool_fusion_with_some_gradients_not_needed(need_x, need_w, need_b):
    """The first layer's input needs no gradient; frozen weights or bias need none either."""
    cr.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).double()
    model[0].weight.requires_grad_(need_w)
    model[0].bias.requires_grad_(need_b)
    xs = np.random.default_rng(0).integers(-2, 3, (2, 3, 6, 7)).astype(np.float64)
    assert fusion.conv_pooled(model[0], cr.tensor(xs)) is not None
    res = []
    for run in (model, lambda x: _layer_by_layer(model, x)):
        model.zero_grad()
        x = cr.tensor(xs, requires_grad=need_x)
        y = run(x)
        y.sum().backward()
        res.append([y.data] + [t.grad.data if t.grad is not None else None
                               for t in (x, model[0].weight, model[0].bias)])
    assert [r is None for r in res[0][1:]] == [not need_x, not need_w, not need_b]
    for a, b in zip(*res):
        if a is not None:
            np.testing.assert_array_equal(a, b)
