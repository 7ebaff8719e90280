"""chainrule/nn layers against torch.nn: Linear, activations, Dropout, Flatten, loss modules, init
distribution, error messages, and bit-for-bit repeatable seeded training."""
import math

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from helpers import assert_close, randn

TNN = torch.nn


def copy_to_torch(cr_module, t_module):
    """Give a torch module the chainrule module's parameters (state dicts map one to one)."""
    t_module.load_state_dict({k: torch.tensor(v) for k, v in cr_module.state_dict().items()})
    return t_module.double()


def compare_modules(cr_m, t_m, x, rtol=1e-10, atol=1e-12):
    """Forward, input gradient and every parameter gradient, with a random upstream gradient."""
    xc = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yc, yt = cr_m(xc), t_m(xt)
    assert yc.shape == tuple(yt.shape) and yc.dtype == np.float64
    assert_close(yc, yt, rtol, atol, "forward")
    g = np.random.default_rng(7).standard_normal(yc.shape)
    yc.backward(g)
    yt.backward(torch.tensor(g))
    assert_close(xc.grad, xt.grad, rtol, atol, "input gradient")
    tparams = dict(t_m.named_parameters())
    cparams = dict(cr_m.named_parameters())
    assert set(cparams) == set(tparams)
    for name, p in cparams.items():
        assert p.grad is not None and p.grad.dtype == np.float64, name
        assert_close(p.grad, tparams[name].grad, rtol, atol, f"gradient of {name}")


# -- Linear ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (1, 3), (2, 4, 3), (3,), (2, 1, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    m = nn.Linear(3, 4, bias=bias).double()
    t = copy_to_torch(m, TNN.Linear(3, 4, bias=bias))
    compare_modules(m, t, randn(shape))
    if not bias:
        assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]


def test_linear_shapes_and_dtype():
    m = nn.Linear(3, 4)
    assert m.weight.shape == (4, 3) and m.bias.shape == (4,)
    assert m.weight.dtype == np.float32 and m(cr.randn(2, 3)).dtype == np.float32
    assert nn.Linear(3, 4, dtype=np.float64).weight.dtype == np.float64
    assert repr(m) == "Linear(in_features=3, out_features=4, bias=True)"


def test_linear_input_without_grad_gets_none():
    m = nn.Linear(3, 2)
    x = cr.randn(4, 3)
    m(x).sum().backward()
    assert x.grad is None and m.weight.grad is not None


def test_linear_shape_error_names_layer_and_shapes():
    m = nn.Linear(784, 256)
    with pytest.raises(ValueError) as e:
        m(cr.zeros(64, 785))
    msg = str(e.value)
    assert "Linear(in_features=784" in msg and "(64, 785)" in msg and "784" in msg
    with pytest.raises(ValueError, match="Linear\\(in_features=784"):
        m(cr.tensor(1.0))


def test_linear_dtype_error_is_clear():
    with pytest.raises(TypeError, match="float64.*float32"):
        nn.Linear(3, 2)(cr.randn(2, 3, dtype=np.float64))


def test_linear_default_init_matches_torch_distribution():
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, as torch.nn.Linear
    fan_in, fan_out = 400, 500
    m = nn.Linear(fan_in, fan_out)
    t = TNN.Linear(fan_in, fan_out)
    bound = 1 / math.sqrt(fan_in)
    for ours, theirs in ((m.weight.data, t.weight.detach().numpy()), (m.bias.data, t.bias.detach().numpy())):
        assert np.abs(ours).max() <= bound
        assert np.abs(ours).max() > 0.98 * bound            # the whole interval is used
        tol = 6 / math.sqrt(ours.size)                      # loose enough for the bias' 500 values
        assert abs(ours.mean()) < tol * bound
        np.testing.assert_allclose(ours.var(), bound ** 2 / 3, rtol=5 * tol)
        np.testing.assert_allclose(ours.var(), theirs.var(), rtol=10 * tol)
    # the histogram matches a uniform one
    hist, _ = np.histogram(m.weight.data, bins=10, range=(-bound, bound))
    np.testing.assert_allclose(hist / m.weight.data.size, 0.1, atol=0.005)


def test_linear_init_is_seeded():
    cr.manual_seed(3)
    a = nn.Linear(5, 4)
    cr.manual_seed(3)
    b = nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, nn.Linear(5, 4).weight.data)


def test_mlp_matches_torch():
    m = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2),
                      nn.LogSoftmax(dim=1)).double()
    t = copy_to_torch(m, TNN.Sequential(TNN.Linear(3, 5), TNN.Tanh(), TNN.Linear(5, 4), TNN.ReLU(),
                                        TNN.Linear(4, 2), TNN.LogSoftmax(dim=1)))
    compare_modules(m, t, randn((6, 3)))


# -- shape and activation modules ---------------------------------------------------------------------------
@pytest.mark.parametrize("cr_m,t_m", [
    (nn.ReLU(), TNN.ReLU()), (nn.Sigmoid(), TNN.Sigmoid()), (nn.Tanh(), TNN.Tanh()),
    (nn.LeakyReLU(), TNN.LeakyReLU()), (nn.LeakyReLU(0.2), TNN.LeakyReLU(0.2)),
    (nn.Softmax(dim=1), TNN.Softmax(dim=1)), (nn.Softmax(axis=-1), TNN.Softmax(dim=-1)),
    (nn.LogSoftmax(dim=1), TNN.LogSoftmax(dim=1)),
    (nn.Flatten(), TNN.Flatten()), (nn.Flatten(0, 1), TNN.Flatten(0, 1)), (nn.Identity(), TNN.Identity()),
], ids=lambda m: repr(m))
def test_parameterless_modules_match_torch(cr_m, t_m):
    compare_modules(cr_m, t_m, randn((2, 3, 4), away_from_zero=0.01))
    compare_modules(cr_m, t_m, randn((1, 3, 2), away_from_zero=0.01))


def test_flatten_accepts_arrays():
    assert nn.Flatten()(np.zeros((2, 3, 4))).shape == (2, 12)


# -- dropout --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_is_inverted_and_preserves_expectation(p):
    d = nn.Dropout(p)
    x = cr.tensor(np.ones((200, 250)), requires_grad=True)
    y = d(x)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], 1 / (1 - p), rtol=1e-12)    # survivors scaled
    assert abs(1 - kept.mean() - p) < 0.01                                # about p dropped
    assert abs(y.data.mean() - 1.0) < 0.03                                 # E[y] = x
    g = np.random.default_rng(0).standard_normal(x.shape)
    y.backward(g)
    np.testing.assert_allclose(x.grad.data, g * y.data, rtol=1e-12)       # the same mask and scale


def test_dropout_identity_in_eval_and_edge_probabilities():
    x = cr.randn(3, 4, requires_grad=True)
    d = nn.Dropout(0.5).eval()
    assert d(x) is x
    assert nn.Dropout(0.0)(x) is x
    y = nn.Dropout(1.0)(x)
    assert not y.data.any() and y.shape == x.shape
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="probability"):
            nn.Dropout(bad)


def test_dropout_mask_is_seeded_by_manual_seed():
    x = cr.tensor(np.ones((4, 6)))
    cr.manual_seed(11)
    a = nn.Dropout(0.5)(x).data
    cr.manual_seed(11)
    b = nn.Dropout(0.5)(x).data
    np.testing.assert_array_equal(a, b)
    c = nn.Dropout(0.5)(x).data
    assert not np.array_equal(a, c)            # the generator moves on


def test_dropout_keeps_dtype():
    for dt in (np.float32, np.float64):
        y = nn.Dropout(0.3)(cr.tensor(np.ones((3, 3), dt)))
        assert y.dtype == dt


# -- loss modules ---------------------------------------------------------------------------------------------
LOSSES = [
    (lambda r: nn.CrossEntropyLoss(reduction=r), lambda r: TNN.CrossEntropyLoss(reduction=r), "labels"),
    (lambda r: nn.CrossEntropyLoss(reduction=r, label_smoothing=0.1),
     lambda r: TNN.CrossEntropyLoss(reduction=r, label_smoothing=0.1), "labels"),
    (lambda r: nn.NLLLoss(reduction=r), lambda r: TNN.NLLLoss(reduction=r), "labels"),
    (lambda r: nn.MultiClassHingeLoss(reduction=r), lambda r: _times_c(TNN.MultiMarginLoss(reduction=r)), "labels"),
    (lambda r: nn.MSELoss(reduction=r), lambda r: TNN.MSELoss(reduction=r), "real"),
    (lambda r: nn.L2Loss(reduction=r), lambda r: TNN.MSELoss(reduction=r), "real"),
    (lambda r: nn.L2Loss(reduction=r, half=True), lambda r: _half(TNN.MSELoss(reduction=r)), "real"),
    (lambda r: nn.L1Loss(reduction=r), lambda r: TNN.L1Loss(reduction=r), "real"),
    (lambda r: nn.BCEWithLogitsLoss(reduction=r), lambda r: TNN.BCEWithLogitsLoss(reduction=r), "prob"),
    (lambda r: nn.HingeLoss(reduction=r), lambda r: _hinge(r), "sign"),
]


def _times_c(loss):
    return lambda x, y: loss(x, y) * x.shape[1]


def _half(loss):
    return lambda x, y: 0.5 * loss(x, y)


def _hinge(r):
    def f(x, y):
        v = torch.clamp(1 - y * x, min=0)
        return v.mean() if r == "mean" else v.sum() if r == "sum" else v
    return f


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("make_cr,make_t,kind", LOSSES, ids=[str(i) for i in range(len(LOSSES))])
def test_loss_modules_match_torch(make_cr, make_t, kind, reduction):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3))
    y = {"labels": rng.integers(0, 3, 5), "real": rng.standard_normal((5, 3)),
         "prob": rng.random((5, 3)), "sign": np.sign(rng.standard_normal((5, 3)))}[kind]
    loss_c, loss_t = make_cr(reduction), make_t(reduction)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lc, lt = loss_c(xc, cr.tensor(y)), loss_t(xt, torch.tensor(y))
    assert_close(lc, lt)
    g = rng.standard_normal(lc.shape)
    lc.backward(g)
    lt.backward(torch.tensor(g))
    assert_close(xc.grad, xt.grad)


def test_loss_module_details():
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="average")
    z = nn.ZeroOneLoss()(cr.tensor(np.array([[1.0, 0.0], [0.0, 1.0]]), requires_grad=True), [0, 0])
    assert z.item() == 0.5
    with pytest.raises(RuntimeError, match="zero_one_loss"):
        z.backward()


# -- seeded training repeats bit for bit -------------------------------------------------------------------------
def _train(seed, steps=5, lr=0.1):
    cr.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    x = cr.randn(16, 4)
    y = cr.randint(0, 3, 16)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        with cr.no_grad():
            for p in model.parameters():
                p.data -= lr * p.grad.data          # plain SGD, by hand
        losses.append(loss.item())
    return model.state_dict(), losses


def test_seeded_training_repeats_bit_for_bit():
    sd1, l1 = _train(0)
    sd2, l2 = _train(0)
    assert l1 == l2
    for k in sd1:
        assert sd1[k].tobytes() == sd2[k].tobytes(), k
    sd3, l3 = _train(1)
    assert l3 != l1
    assert l1[-1] < l1[0]                          # and it does learn


def test_training_step_matches_torch():
    # one SGD step on the same MLP and batch gives the same weights as torch
    m = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    t = copy_to_torch(m, TNN.Sequential(TNN.Linear(4, 6), TNN.Tanh(), TNN.Linear(6, 3)))
    x = randn((8, 4))
    y = np.random.default_rng(0).integers(0, 3, 8)
    for _ in range(3):
        m.zero_grad()
        nn.CrossEntropyLoss()(m(cr.tensor(x)), y).backward()
        with cr.no_grad():
            for p in m.parameters():
                p.data -= 0.5 * p.grad.data
        t.zero_grad()
        TNN.CrossEntropyLoss()(t(torch.tensor(x)), torch.tensor(y)).backward()
        with torch.no_grad():
            for p in t.parameters():
                p -= 0.5 * p.grad
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(m.state_dict()[k], v.numpy(), rtol=1e-10, atol=1e-12)
